"""The autograd core: graph order, accumulation, retain_graph, freeing, no_grad, hooks, anomaly mode."""
import gc
import sys
import weakref

import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt import autograd
from tinygrad_pt.autograd import Function, topological_order


def leaf(values, dtype=np.float64):
    return tg.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ----------------------------------------------------------------------------------------------------
# Graph order

def test_reused_intermediate_gets_every_contribution():
    # p feeds q and also the root directly: p must receive q's gradient before it propagates.
    x = leaf([1.0, 2.0])
    p = x * 2
    q = p * 3
    (p + q).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0])  # d(2x + 6x)/dx


def test_diamond_with_shared_subexpression_matches_hand_derivative():
    x = leaf([0.5, -1.5, 2.0])
    a = x * x          # x^2
    b = a * x          # x^3
    c = a + b          # x^2 + x^3
    y = (c * a).sum()  # x^4 + x^5
    y.backward()
    xv = x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), 4 * xv**3 + 5 * xv**4)


def test_topological_order_puts_every_tensor_after_its_inputs():
    x = leaf([1.0])
    a = x * 2
    b = a * a
    c = b + a
    d = c * b + x
    order = topological_order(d)
    pos = {id(t): i for i, t in enumerate(order)}
    assert len(pos) == len(order) == 6  # x, a, b, c, c * b, d: each once
    for t in order:
        for parent in getattr(t._ctx, "inputs", ()):
            if parent.requires_grad:
                assert pos[id(parent)] < pos[id(t)]
    assert order[-1] is d


def test_ten_thousand_op_chain_within_default_recursion_limit():
    limit = sys.getrecursionlimit()
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0 + 0.0  # 20,000 ops
    y.sum().backward()
    assert sys.getrecursionlimit() == limit
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


# ----------------------------------------------------------------------------------------------------
# Accumulation and retain_graph

def test_tensor_used_twice_accumulates_both_paths():
    x = leaf([3.0])
    (x * x + x).sum().backward()
    assert x.grad.numpy().tolist() == [7.0]  # 2x + 1


def test_same_tensor_as_both_operands():
    x = leaf([3.0, -2.0])
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_backward_twice_with_retain_graph_accumulates():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward through Sum a second time.*retain_graph=True"):
        y.backward()


def test_second_backward_reaching_freed_inner_op_names_it():
    x = leaf([1.0, 2.0])
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match=r"backward through Exp a second time"):
        (h * 2).sum().backward()


def test_accumulated_grad_is_owned_not_aliased():
    # x + x hands the same gradient array to both slots: .grad must be a private copy.
    x = leaf([1.0, 2.0])
    g = np.ones(2)
    y = x + 0.0
    y.backward(g)
    x.grad.data *= 10
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_a_leaf_keeps_a_gradient_only_it_holds_and_copies_any_other():
    made = {}

    class Fresh(Function):  # its backward makes a new array: the leaf may keep it
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            made["dx"] = grad * 2
            return made["dx"]

    class Saved(Function):  # returns an array it saved: it must not become .grad itself
        def forward(self, a):
            self.k = np.full_like(a, 3.0)
            return a * 3

        def backward(self, grad):
            return self.k

    class SavedOwner(Function):  # returns a view of an array it saved
        def forward(self, a):
            self.k = np.full((1, a.size), 3.0)
            return a * 3

        def backward(self, grad):
            return self.k.reshape(-1)

    class FreshView(Function):  # a kernel's habit: a new flat array, returned reshaped
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            made["flat"] = (grad * 2).reshape(-1)
            return made["flat"].reshape(grad.shape)

    x = leaf([1.0, 2.0])
    Fresh.apply(x).backward(np.ones(2))
    assert x.grad.data is made.pop("dx")  # kept, not copied
    x = leaf([[1.0, 2.0]])
    FreshView.apply(x).backward(np.ones((1, 2)))
    assert np.shares_memory(x.grad.data, made.pop("flat"))
    for op in (Saved, SavedOwner):
        y = leaf([1.0, 2.0])
        out = op.apply(y)
        out.backward(np.ones(2), retain_graph=True)
        y.grad.data *= 10  # an optimizer or a clip writes .grad in place
        y.grad = None
        out.backward(np.ones(2))  # the retained graph still has its own saved array
        np.testing.assert_array_equal(y.grad.numpy(), [3.0, 3.0])
    # two leaves given one array (a + b), a passthrough (reshape), a hook that keeps what it is
    # given: each .grad is a private array
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    g = np.ones((2, 1))
    c = leaf([1.0, 2.0])
    c.reshape(2, 1).backward(g)
    assert not np.shares_memory(c.grad.data, g)
    kept = []
    d = leaf([1.0, 2.0])
    d.register_hook(lambda t: kept.append(t))
    (d * 2).sum().backward()
    assert not np.shares_memory(d.grad.data, kept[0].data)
    # a gradient summed from two paths is the sweep's own: kept as it is, and right
    e = leaf([1.0, 2.0])
    (e * 2 + e * 3).sum().backward()
    np.testing.assert_array_equal(e.grad.numpy(), [5.0, 5.0])


def test_float32_graph_gives_float32_gradients():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([[1.0, 0.5], [0.25, 2.0]], requires_grad=True)
    y = ((x @ w) * 2.0 / 3 + 1).exp().log().sqrt().sum() + (x ** 2).mean()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_mixed_dtype_op_gives_each_input_its_own_dtype():
    a = tg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    b = tg.tensor(np.array([3.0, 4.0], np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])


# ----------------------------------------------------------------------------------------------------
# Freeing the graph

def test_graph_freed_after_backward_releases_saved_arrays():
    x = leaf(np.linspace(0.1, 1.0, 5))
    h = x * 3.0
    saved = weakref.ref(h.data)  # h is kept alive only as Exp's input
    e = h.exp()
    exp_fn = e.grad_fn
    out_ref = weakref.ref(exp_fn.y)
    y = e.sum()
    del h, e
    gc.collect()
    assert saved() is not None  # the graph keeps h alive until backward
    y.backward()
    gc.collect()
    assert saved() is None  # Exp dropped its inputs
    assert out_ref() is None  # and the output it saved
    assert not hasattr(exp_fn, "inputs") and not hasattr(exp_fn, "y")
    assert exp_fn.released_name == "Exp"


def test_retain_graph_keeps_saved_arrays():
    x = leaf([1.0, 2.0])
    e = x.exp()
    fn = e.grad_fn
    e.sum().backward(retain_graph=True)
    assert hasattr(fn, "y") and hasattr(fn, "inputs")


def test_function_does_not_hold_its_output_tensor():
    x = leaf([1.0, 2.0])
    y = x * 2
    fn = y.grad_fn
    ref = weakref.ref(y)
    del y
    gc.collect()
    assert ref() is None
    assert fn.inputs[0] is x


# ----------------------------------------------------------------------------------------------------
# no_grad, enable_grad, set_grad_enabled, detach, requires_grad_

def test_no_grad_context_records_nothing():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        y = (x * 2).exp()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert tg.is_grad_enabled()


def test_no_grad_decorator_with_and_without_parentheses():
    x = leaf([1.0])

    @tg.no_grad()
    def f(t):
        return t * 2

    @tg.no_grad
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    assert (x * 2).requires_grad
    assert f.__name__ == "f" and g.__name__ == "g"


def test_no_grad_decorator_is_reentrant_for_recursion():
    @tg.no_grad
    def depth(n):
        return depth(n - 1) if n else tg.is_grad_enabled()

    assert depth(3) is False
    assert tg.is_grad_enabled()  # a shared single "previous" slot would leave it off


def test_no_grad_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_set_grad_enabled():
    x = leaf([1.0])
    with tg.no_grad():
        with tg.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_detach_shares_data_and_stops_gradient():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    y = (d * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])  # d treated as a constant
    e = x.detach()
    assert np.shares_memory(e.data, x.data)


def test_requires_grad_inplace_returns_self():
    t = tg.tensor([1.0, 2.0])
    assert t.requires_grad_() is t and t.requires_grad
    (t * t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [2.0, 4.0])
    t.requires_grad_(False)
    assert not (t * t).requires_grad


def test_ops_on_tensors_without_grad_record_nothing():
    a, b = tg.tensor([1.0]), tg.tensor([2.0])
    c = a * b
    assert not c.requires_grad and c.grad_fn is None


def test_integer_result_of_a_differentiable_input_is_not_recorded():
    x = leaf([1.5, 2.5])
    i = x.to(dtype=np.int64)
    assert i.dtype == np.int64 and not i.requires_grad and i.grad_fn is None


def test_zero_grad_clears():
    x = leaf([1.0])
    (x * 2).sum().backward()
    x.zero_grad()
    assert x.grad is None


# ----------------------------------------------------------------------------------------------------
# Hooks and retain_grad

def test_hook_sees_gradient_and_can_replace_it():
    x = leaf([1.0, 2.0])
    seen = []

    def double(g):
        seen.append(g.numpy())
        return g * 2

    handle = x.register_hook(double)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    handle.remove()
    x.zero_grad()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    assert len(seen) == 1


def test_hook_on_intermediate_changes_what_flows_upstream():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: g * 0)
    (h * h + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])  # only the direct x path remains


def test_hook_returning_none_keeps_gradient_and_bad_shape_raises():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: None)
    (x * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0])
    y = leaf([1.0, 2.0])
    y.register_hook(lambda g: tg.tensor(np.ones(3)))
    with pytest.raises(RuntimeError, match=r"hook returned a gradient of shape \(3,\), expected a "
                                           r"Tensor of shape \(2,\)"):
        (y * 5).sum().backward()
    z = leaf([1.0])
    z.register_hook(lambda g: 2.0)
    with pytest.raises(RuntimeError, match=r"hook returned a gradient of float, expected a Tensor"):
        (z * 5).sum().backward()


def test_retain_grad_keeps_intermediate_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    other = x * 4
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 2 * h.numpy())
    assert other.grad is None  # not retained
    np.testing.assert_array_equal(x.grad.numpy(), 18 * x.numpy() + 4)


def test_retain_grad_sees_hook_modified_gradient():
    x = leaf([1.0])
    h = x * 1.0
    h.retain_grad()
    h.register_hook(lambda g: g + 1)
    (h * 2).sum().backward()
    assert h.grad.numpy().tolist() == [3.0]
    assert x.grad.numpy().tolist() == [3.0]


# ----------------------------------------------------------------------------------------------------
# Custom Functions

class Cube(Function):
    """y = x^3; the custom-op pattern users follow."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, grad):
        return grad * 3 * self.x ** 2


def test_custom_function_backward_and_gradcheck():
    x = leaf([1.0, -2.0])
    Cube.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 12.0])
    assert tg.testing.gradcheck(lambda t: Cube.apply(t), np.array([0.3, -1.2, 2.0]))


def test_needs_input_grad_lets_backward_skip_work():
    calls = []

    class Probe(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, grad):
            calls.append(self.needs_input_grad)
            return None, grad

    a = tg.tensor([1.0])
    b = leaf([2.0])
    Probe.apply(a, b).sum().backward()
    assert calls == [(False, True)]
    assert b.grad.numpy().tolist() == [1.0]


def test_numpy_scalar_forward_result_becomes_0d_array():
    class Total(Function):
        def forward(self, x):
            self.shape = x.shape
            return float(x.sum())  # a Python float, not an array

        def backward(self, grad):
            return np.broadcast_to(grad, self.shape)

    x = leaf([1.0, 2.0])
    y = Total.apply(x)
    assert isinstance(y.data, np.ndarray) and y.shape == ()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_bad_backward_of_custom_op_is_named():
    class WrongCount(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, grad):
            return (grad,)

    class WrongShape(Function):
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            return grad.sum()

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"WrongCount.backward returned 1 gradients for 2 inputs"):
        WrongCount.apply(x, x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward: gradient 0 has shape \(\), but "
                                           r"input 0 has shape \(2,\)"):
        WrongShape.apply(x).sum().backward()


def test_a_backward_in_a_third_dtype_is_an_error_not_a_cast():
    # float32 in, float32 out, float16 gradient: no promotion explains it, so the op is at fault.
    class WrongDtype(Function):
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            return (grad * 2).astype(np.float16)

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"WrongDtype.backward: gradient 0 has dtype float16, but "
                                           r"input 0 has dtype float32 \(and the output float32\)"):
        WrongDtype.apply(x).sum().backward()


def test_a_promoted_input_gets_its_gradient_in_its_own_dtype():
    a = tg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    b = tg.tensor(np.array([3.0, 4.0], np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])


def test_a_hook_that_changes_the_dtype_is_refused():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: tg.tensor(g.numpy().astype(np.float64)))
    with pytest.raises(RuntimeError, match=r"hook returned a gradient of dtype float64, expected "
                                           r"float32"):
        (x * 2).sum().backward()


def test_assigning_a_mismatched_grad_is_refused():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad: assigned a gradient of dtype float64, but the "
                                           r"tensor has dtype float32"):
        p.grad = tg.tensor(np.ones(2))
    with pytest.raises(RuntimeError, match=r"grad: assigned a gradient of shape \(3,\), but the "
                                           r"tensor has shape \(2,\)"):
        p.grad = tg.ones(3)
    with pytest.raises(TypeError, match=r"grad: expected a Tensor or None, got ndarray"):
        p.grad = np.ones(2, np.float32)
    p.grad = tg.ones(2)
    p.grad = None
    assert p.grad is None


# ----------------------------------------------------------------------------------------------------
# Anomaly mode

def test_anomaly_forward_names_log_and_the_creating_line():
    x = tg.tensor([1.0, -1.0], requires_grad=True)
    with tg.detect_anomaly():
        with np.errstate(invalid="ignore"):
            with pytest.raises(tg.AnomalyError) as info:
                y = x * 2
                y.log()  # the line to be named
    msg = str(info.value)
    assert "forward of Log" in msg and "(2,) float32" in msg
    assert "test_autograd.py" in msg and "y.log()" in msg
    assert "ops/elementwise.py" not in msg  # frames of the op machinery are skipped


def test_anomaly_backward_names_sqrt_at_zero():
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt()
        z = (y * 3).sum()
        with np.errstate(divide="ignore"):
            with pytest.raises(tg.AnomalyError, match=r"backward of Sqrt .*NaN/Inf in the gradient "
                                                      r"of input 0") as info:
                z.backward()
    assert "y = x.sqrt()" in str(info.value)


def test_anomaly_reports_first_op_only_and_is_off_outside_block():
    with np.errstate(invalid="ignore"):
        bad = tg.tensor([-1.0]).log()  # outside the block: no error
        assert np.isnan(bad.numpy()).all()
        with tg.detect_anomaly():
            assert tg.autograd.is_anomaly_enabled()
            (bad * 2).exp()  # NaN in, NaN out: not the first op to see it, no error
        assert not tg.autograd.is_anomaly_enabled()


def test_anomaly_allows_declared_infinity_but_not_nan():
    class FillInf(Function):
        """-inf where x < 0 (like masked_fill for attention), NaN where x == 0 (a bug)."""
        anomaly_allows_inf = True

        def forward(self, x):
            return np.where(x < 0, -np.inf, np.where(x == 0, np.nan, x))

        def backward(self, grad):
            return grad

    with tg.detect_anomaly():
        y = FillInf.apply(tg.tensor([1.0, -1.0]))
        assert np.isneginf(y.numpy()[1])
        with pytest.raises(tg.AnomalyError, match="forward of FillInf"):
            FillInf.apply(tg.tensor([1.0, 0.0]))


def test_anomaly_decorator_form():
    @tg.detect_anomaly()
    def f():
        return tg.tensor([0.0]).log()

    with np.errstate(divide="ignore"):
        with pytest.raises(tg.AnomalyError, match="Log"):
            f()


def test_grad_enabled_flag_restored_by_module_switch():
    assert autograd.is_grad_enabled()
    with tg.no_grad():
        assert not autograd.is_grad_enabled()
    assert autograd.is_grad_enabled()
