"""Higher-order gradients: backward(create_graph=True), tg.autograd.grad, gradgradcheck."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_pt as tg
from tinygrad_pt.autograd import Function
from tinygrad_pt.testing import GradcheckError, gradgradcheck
from tinygrad_pt.testing.strategies import arrays, axes, broadcastable_shapes, matmul_shapes

SETTINGS = settings(max_examples=15, deadline=None)


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ----------------------------------------------------------------------------------------------------
# The engine


def test_backward_create_graph_gives_a_grad_that_differentiates_again():
    x = leaf([0.5, -1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad  # 3 x^2, with a graph
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())


def test_create_graph_grads_accumulate_into_grad():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward(create_graph=True)
    (x * x * x).sum().backward(create_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 3 * x.numpy() ** 2)
    (gx,) = tg.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(gx.numpy(), 2 + 6 * x.numpy())


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x, y = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    out = (x * y).sum()
    gx, gy = tg.autograd.grad(out, (x, y))
    np.testing.assert_allclose(gx.numpy(), y.numpy())
    np.testing.assert_allclose(gy.numpy(), x.numpy())
    assert x.grad is None and y.grad is None
    assert not gx.requires_grad  # create_graph=False: plain values


def test_grad_of_several_outputs_with_grad_outputs_sums_them():
    x = leaf([1.0, 2.0, 3.0])
    a, b = x * 2.0, x * x
    u, v = np.array([1.0, 0.5, -1.0]), np.array([2.0, 1.0, 0.0])
    (gx,) = tg.autograd.grad([a, b], [x], grad_outputs=[u, v])
    np.testing.assert_allclose(gx.numpy(), 2 * u + 2 * x.numpy() * v)


def test_grad_with_respect_to_an_intermediate():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    out = (h * h).sum()
    gh, gx = tg.autograd.grad(out, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    np.testing.assert_allclose(gx.numpy(), 18 * x.numpy())


def test_unused_input_is_an_error_unless_allow_unused():
    x, z = leaf([1.0]), leaf([2.0])
    out = (x * x).sum()
    with pytest.raises(RuntimeError, match=r"inputs\[1\].*not used.*allow_unused=True"):
        tg.autograd.grad(out, [x, z], retain_graph=True)
    gx, gz = tg.autograd.grad(out, [x, z], allow_unused=True)
    assert gz is None and gx.numpy() == pytest.approx([2.0])


def test_grad_refuses_inputs_and_outputs_without_grad():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match=r"inputs\[0\].*does not require grad"):
        tg.autograd.grad((x * 2).sum(), tg.tensor([1.0]))
    with pytest.raises(RuntimeError, match=r"outputs\[0\].*does not require grad"):
        tg.autograd.grad(tg.tensor([1.0]).sum(), x)
    with pytest.raises(RuntimeError, match="only for a tensor with one element"):
        tg.autograd.grad(tg.concatenate([x, x]), x)


def test_retain_graph_defaults_to_create_graph_and_a_freed_graph_names_the_op():
    x = leaf([0.5, 1.5])
    y = x.exp().sum()
    tg.autograd.grad(y, x, create_graph=True)
    tg.autograd.grad(y, x)  # retained by the first call; this one frees it
    with pytest.raises(RuntimeError, match="backward through (Exp|Sum) a second time"):
        tg.autograd.grad(y, x)


def test_third_derivative_by_repeating_grad():
    x = leaf([0.3, -0.7, 1.1])
    y = x.sin().sum()
    (g1,) = tg.autograd.grad(y, x, create_graph=True)       # cos
    (g2,) = tg.autograd.grad(g1.sum(), x, create_graph=True)  # -sin
    (g3,) = tg.autograd.grad(g2.sum(), x, create_graph=True)  # -cos
    (g4,) = tg.autograd.grad(g3.sum(), x)                     # sin
    np.testing.assert_allclose(g3.numpy(), -np.cos(x.numpy()))
    np.testing.assert_allclose(g4.numpy(), np.sin(x.numpy()))


def test_gradient_of_a_gradient_norm_penalty():
    """The WGAN-GP shape of computation: d/dw of ||d f / d x||^2."""
    r = np.random.default_rng(0)
    x, w = leaf(r.standard_normal((4, 3))), leaf(r.standard_normal((3, 1)))
    (gx,) = tg.autograd.grad((x @ w).tanh().sum(), x, create_graph=True)
    penalty = ((gx * gx).sum(axis=1).sqrt() - 1.0) ** 2
    penalty.mean().backward()
    assert w.grad is not None and w.grad.shape == (3, 1)
    assert gradgradcheck(lambda x, w: (x @ w).tanh(), (x.numpy(), w.numpy()))


def test_hooks_under_create_graph_get_tensors_with_graphs():
    x = leaf([1.0, 2.0])
    h = x * x
    seen = []
    h.register_hook(lambda g: seen.append(g) or g * 2.0)
    (h * x).sum().backward(create_graph=True)
    assert seen[0].requires_grad  # d/dh (h x) = x: the graph reaches x
    np.testing.assert_allclose(x.grad.numpy(), x.numpy() ** 2 + 2 * (2 * x.numpy() * x.numpy()))


def test_an_op_without_double_backward_raises_naming_it():
    class Cube(Function):
        def forward(self, x):
            self.x = x
            return x ** 3

        def backward(self, grad):
            return grad * 3 * self.x ** 2

    x = leaf([1.0, 2.0])
    y = Cube.apply(x).sum()
    with pytest.raises(RuntimeError, match="Cube has no double backward"):
        tg.autograd.grad(y, x, create_graph=True)
    (g,) = tg.autograd.grad(Cube.apply(x).sum(), x)  # first order is unaffected
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])


def test_a_rule_that_hides_a_tensor_in_numpy_is_an_error_not_a_constant():
    class Sin(Function):
        saved_inputs = ("x",)

        def forward(self, x):
            self.x = x
            return np.sin(x)

        def backward(self, grad):
            return grad * np.cos(np.asarray(self.x))  # np.asarray of a Tensor: a constant

    x = leaf([0.5])
    with pytest.raises(TypeError, match="turned a Tensor into a NumPy array"):
        tg.autograd.grad(Sin.apply(x).sum(), x, create_graph=True)


def test_first_order_path_never_calls_graph_backward(monkeypatch):
    def fail(self, grad, output):
        raise AssertionError("graph_backward on the first-order path")

    monkeypatch.setattr(Function, "graph_backward", fail)
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    ((x @ x).exp().sum(axis=0) * x[0]).sum().backward()
    assert x.grad is not None


def test_inplace_write_after_forward_is_refused_under_create_graph():
    x = leaf([1.0, 2.0])
    a = tg.tensor([3.0, 4.0], dtype=np.float64)
    y = (x * a).sum()
    with tg.no_grad():
        a.mul_(2.0)
    with pytest.raises(RuntimeError, match="backward through Mul: its input 1"):
        tg.autograd.grad(y, x, create_graph=True)


def test_anomaly_mode_checks_create_graph_backwards():
    x = leaf([0.0, 1.0])
    with tg.detect_anomaly():
        y = x.sqrt().sum()
        # the rule's own ops are checked too: Sqrt's rule divides by 2 sqrt(0)
        with pytest.raises(tg.AnomalyError, match="anomaly: (forward of Div|backward of Sqrt)"):
            tg.autograd.grad(y, x, create_graph=True)


def test_backward_inputs_accumulates_only_there():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), x.numpy())


def test_autograd_namespace():
    assert callable(tg.autograd.grad)
    assert callable(tg.autograd.functional.hvp)
    from tinygrad_pt.autograd.functional import hessian, jacobian, jvp, vjp  # noqa: F401
    assert callable(tg.testing.gradgradcheck)


# ----------------------------------------------------------------------------------------------------
# gradgradcheck itself


class WrongSecondDerivative(Function):
    """y = x^3 with a correct first derivative and a graph rule off by 1% (the second
    derivative 6x becomes 6.06x)."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, grad):
        return grad * 3 * self.x ** 2

    def graph_backward(self, grad, output):
        (x,) = self.inputs
        return grad * 3 * x ** 2 * 1.01 + (grad * 0 - grad * 3 * x.detach() ** 2 * 0.01)


def test_gradgradcheck_passes_correct_ops_and_names_a_wrong_double_backward():
    x = np.array([0.5, -1.5, 2.0])
    assert gradgradcheck(lambda t: (t ** 3).sum(), x) is True
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(lambda t: WrongSecondDerivative.apply(t), x)
    msg = str(info.value)
    assert msg.startswith("gradgradcheck failed for") and "eps=1e-06" in msg
    assert "analytic" in msg and "numeric" in msg


def test_gradgradcheck_random_directions_for_large_inputs():
    r = np.random.default_rng(1)
    a, b = r.standard_normal((20, 30)), r.standard_normal((30, 20))
    assert gradgradcheck(lambda a, b: (a @ b).tanh(), (a, b))


# ----------------------------------------------------------------------------------------------------
# Elementwise, reduce and matmul: every op twice differentiable, over hypothesis-drawn shapes


def pair(shapes_strategy, **kw):
    return shapes_strategy.flatmap(lambda s: st.tuples(arrays(s[0], **kw), arrays(s[1], **kw)))


BINARY = {
    "add": lambda a, b: (a + b) * (a + b),
    "sub": lambda a, b: (a - b) * a,
    "mul": lambda a, b: a * b * a,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a.abs() ** b,
    "maximum": lambda a, b: tg.maximum(a, b) * a,
    "minimum": lambda a, b: tg.minimum(a, b) * b,
    "where": lambda a, b: tg.where(a > b, a * a, b * a),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(ab=pair(broadcastable_shapes(max_dims=3, max_side=3), min_magnitude=0.5, max_value=3,
               min_value=-3, unique=True))
def test_binary_ops_twice_differentiable(name, ab):
    a, b = ab
    if name == "maximum" or name == "minimum" or name == "where":
        b = b + 0.123  # no ties between a and b (the subgradient there is not a derivative)
    assert gradgradcheck(BINARY[name], (a, b), atol=1e-4, rtol=1e-3)


UNARY = {
    "neg": lambda x: -x * x,
    "exp": lambda x: x.exp(),
    "log": lambda x: x.abs().log(),
    "sqrt": lambda x: x.abs().sqrt(),
    "abs": lambda x: x.abs() * x,
    "sin": lambda x: x.sin(),
    "cos": lambda x: x.cos(),
    "pow_scalar": lambda x: x.abs() ** 2.5 + x ** 2 + x ** 0,
    "clip": lambda x: x.clip(-1.0, 1.0) * x,
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(x=arrays(st.sampled_from([(), (3,), (2, 3)]), min_magnitude=0.2, min_value=-3,
                max_value=3))
def test_unary_ops_twice_differentiable(name, x):
    if name == "clip":
        x = np.where(np.abs(np.abs(x) - 1.0) < 1e-3, x + 0.01, x)  # not at a bound
    assert gradgradcheck(UNARY[name], x, atol=1e-4)


REDUCE = {
    "sum": lambda x, ax: x.sum(axis=ax) * x.sum(axis=ax),
    "mean": lambda x, ax: x.mean(axis=ax, keepdims=True) * x,
    "max": lambda x, ax: x.max(axis=ax) ** 2,
    "min": lambda x, ax: x.min(axis=ax, keepdims=True) * x,
    "var": lambda x, ax: x.var(axis=ax),
    "std": lambda x, ax: x.std(axis=ax),
    "logsumexp": lambda x, ax: x.logsumexp(axis=ax),
}


@pytest.mark.parametrize("name", sorted(REDUCE))
@SETTINGS
@given(data=st.data())
def test_reductions_twice_differentiable(name, data):
    x = data.draw(arrays(st.sampled_from([(4,), (2, 3), (2, 3, 2)]), unique=True, min_value=-3,
                         max_value=3))
    ax = data.draw(axes(x.ndim))
    # distinct values at least 0.5 apart: no ties for max/min, no constant slice for std
    ranks = np.argsort(np.argsort(x.reshape(-1))).reshape(x.shape)
    x = ranks * 0.5 - 1.0 + x * 1e-3
    assert gradgradcheck(lambda t: REDUCE[name](t, ax), x, atol=1e-4)


@SETTINGS
@given(ab=pair(matmul_shapes(max_batch_dims=2, max_side=3), min_value=-2, max_value=2))
def test_matmul_twice_differentiable(ab):
    a, b = ab
    assert gradgradcheck(lambda a, b: (a @ b) * (a @ b), (a, b))


def test_linear_twice_differentiable():
    r = np.random.default_rng(0)
    x, w, b = r.standard_normal((2, 3, 4)), r.standard_normal((5, 4)), r.standard_normal(5)
    assert gradgradcheck(lambda x, w, b: tg.nn.functional.linear(x, w, b).tanh(), (x, w, b))
    assert gradgradcheck(lambda x, w: tg.nn.functional.linear(x, w) ** 2, (x, w))


def test_float32_and_casts_keep_their_dtypes_under_create_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)  # float32
    y = (x.to(dtype=np.float64) * x.double()).sum()
    (g,) = tg.autograd.grad(y, x, create_graph=True)
    assert g.dtype == np.float32
    (gg,) = tg.autograd.grad(g.sum(), x)
    assert gg.dtype == np.float32 and gg.numpy() == pytest.approx([2.0, 2.0])
    assert math.isclose(float(g.numpy()[1]), 4.0)
