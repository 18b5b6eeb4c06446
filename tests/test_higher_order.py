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

SETTINGS = settings(deadline=None)  # example counts come from the profile (conftest.py)


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
    with tg.detect_anomaly(), np.errstate(divide="ignore"):
        y = x.sqrt().sum()
        # the rule's own ops are checked too: Sqrt's rule divides by 2 sqrt(0)
        with pytest.raises(tg.AnomalyError, match="anomaly: (forward of Div|backward of Sqrt)"):
            tg.autograd.grad(y, x, create_graph=True)


def test_backward_inputs_accumulates_only_there():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), x.numpy())


def test_grad_computes_only_the_gradients_that_lead_to_its_inputs():
    seen = []

    class Scale(Function):
        saved_inputs = ("a", "b")

        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, grad):
            seen.append(self.needs_input_grad)
            return (grad * self.b if self.needs_input_grad[0] else None,
                    grad * self.a if self.needs_input_grad[1] else None)

    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = Scale.apply(x, w).sum()
    (gx,) = tg.autograd.grad(y, x, create_graph=True)  # w's gradient is not asked for
    assert seen == [(True, False)]
    y.backward()  # afterwards, every input's gradient again
    assert seen[-1] == (True, True) and w.grad is not None
    np.testing.assert_allclose(gx.numpy(), w.numpy())


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


class DetachedUpstream(Function):
    """y = 2x whose graph rule detaches the upstream gradient: right values, right d/dx (zero),
    but no derivative with respect to the upstream gradient u."""
    saved_inputs = ()

    def forward(self, x):
        return x * 2

    def backward(self, grad):
        return grad * 2


DetachedUpstream.graph_backward = lambda self, grad, output: grad.detach() * 2.0


def test_gradgradcheck_checks_the_derivative_in_the_upstream_gradient_too():
    with pytest.raises(GradcheckError, match=r"grad_output \(the upstream gradient u\)"):
        gradgradcheck(lambda t: DetachedUpstream.apply(t), np.array([0.5, 1.0]))


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


# ----------------------------------------------------------------------------------------------------
# Shape and indexing ops


@SETTINGS
@given(data=st.data())
def test_shape_ops_twice_differentiable(data):
    shape = data.draw(st.sampled_from([(2, 3), (1, 3, 2), (3, 1, 2, 2)]))
    x = data.draw(arrays(shape, min_value=-2, max_value=2))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    target = data.draw(st.sampled_from([(2,), (3, 1)])) + shape
    assert gradgradcheck(lambda t: t.transpose(perm) * t.transpose(perm), x)
    assert gradgradcheck(lambda t: t.reshape(-1) * t.reshape(-1)[::-1], x)
    assert gradgradcheck(lambda t: t.broadcast_to(target) ** 2, x)
    assert gradgradcheck(lambda t: tg.concatenate([t * t, t.exp()], axis=-1), x)
    assert gradgradcheck(lambda t: tg.stack([t * t, t], axis=1).sum(axis=0), x)
    assert gradgradcheck(lambda t: t.squeeze().expand_dims(0) * t.flatten().sum(), x)
    assert gradgradcheck(lambda t: [p * p for p in t.split(1, axis=0)][0], x)


@SETTINGS
@given(data=st.data())
def test_getitem_twice_differentiable(data):
    shape = data.draw(st.sampled_from([(4,), (3, 4), (2, 3, 2)]))
    x = data.draw(arrays(shape, min_value=-2, max_value=2))
    rows = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=4))
    step = data.draw(st.sampled_from([1, -1, 2]))
    assert gradgradcheck(lambda t: t[rows] * t[rows], x)
    assert gradgradcheck(lambda t: t[::step, ...] ** 3, x)


def test_indexing_ops_twice_differentiable():
    r = np.random.default_rng(0)
    x = r.standard_normal((3, 4))
    mask = np.array([True, False, True, False])  # broadcast over rows
    assert gradgradcheck(lambda t: t[1:, ::2] * t[:2, 1::2], x)
    assert gradgradcheck(lambda t: t[[0, 0, 2], [1, 1, 3]] ** 3, x)  # a repeated position
    assert gradgradcheck(lambda t: t[t.numpy() > 0] ** 2, x)
    assert gradgradcheck(lambda t: t.masked_fill(mask, 0.5) * t, x)
    assert gradgradcheck(lambda t: tg.tril(t) * tg.triu(t, -1), x)
    w = r.standard_normal((5, 3))
    assert gradgradcheck(lambda w: tg.nn.functional.embedding(np.array([[0, 4, 4], [2, 0, 1]]), w)
                         ** 2, w)


# ----------------------------------------------------------------------------------------------------
# Activations, softmax, layer norm, losses, attention, dropout


F = tg.nn.functional

ACTIVATIONS = {
    "relu": lambda x: F.relu(x) * x,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2) * x,
    "leaky_relu_steep": lambda x: F.leaky_relu(x, -1.5) * x,
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "softplus": lambda x: F.softplus(x),
    "softplus_threshold": lambda x: F.softplus(x, beta=4.0, threshold=2.0) * x,
    "sigmoid": lambda x: F.sigmoid(x),
    "tanh": lambda x: F.tanh(x),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@SETTINGS
@given(x=arrays(st.sampled_from([(), (4,), (2, 3)]), min_value=-4, max_value=4,
                min_magnitude=0.05))
def test_activations_twice_differentiable(name, x):
    if name == "softplus_threshold":
        x = np.where(np.abs(x * 4.0 - 2.0) < 0.05, x + 0.1, x)  # not at the threshold
    assert gradgradcheck(ACTIVATIONS[name], x, atol=1e-4)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
@SETTINGS
@given(data=st.data())
def test_softmax_twice_differentiable_along_any_axis(fn, data):
    x = data.draw(arrays(st.sampled_from([(), (4,), (2, 3), (2, 1, 3)]), min_value=-5,
                         max_value=5))
    axis = data.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))
    assert gradgradcheck(lambda t: fn(t, axis=axis), x, atol=1e-4)


@SETTINGS
@given(data=st.data())
def test_layer_norm_twice_differentiable(data):
    lead = data.draw(st.sampled_from([(), (3,), (2, 2)]))
    normalized = data.draw(st.sampled_from([(4,), (2, 3)]))
    x = data.draw(arrays(lead + normalized, min_value=-3, max_value=3))
    w, b = data.draw(arrays(normalized)), data.draw(arrays(normalized))
    assert gradgradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b), (x, w, b), atol=1e-4)
    assert gradgradcheck(lambda x: F.layer_norm(x, normalized), x, atol=1e-4)


@SETTINGS
@given(data=st.data())
def test_losses_twice_differentiable(data):
    shape = data.draw(st.sampled_from([(3,), (2, 3), (2, 1, 3)]))
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    x = data.draw(arrays(shape, min_value=-3, max_value=3))
    y = data.draw(arrays(shape, min_value=0.05, max_value=0.95))
    weight = data.draw(arrays(shape[-1:], min_value=0.5, max_value=2))
    assert gradgradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), (x, y))
    assert gradgradcheck(lambda x, y: F.binary_cross_entropy(F.sigmoid(x), y, weight=weight,
                                                             reduction=reduction), (x, y),
                         atol=1e-4)
    assert gradgradcheck(lambda x, y, pw: F.binary_cross_entropy_with_logits(
        x, y, reduction=reduction, pos_weight=pw), (x, y, weight), atol=1e-4)


@SETTINGS
@given(data=st.data())
def test_cross_entropy_and_nll_twice_differentiable(data):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4))
    x = data.draw(arrays((n, c), min_value=-4, max_value=4))
    target = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    if n > 1 and data.draw(st.booleans()):
        target[0] = -100  # ignored
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    smoothing = data.draw(st.sampled_from([0.0, 0.2]))
    weight = data.draw(st.none() | arrays((c,), min_value=0.5, max_value=2))
    assert gradgradcheck(lambda x: F.cross_entropy(x, target, weight=weight, reduction=reduction,
                                                   label_smoothing=smoothing), x, atol=1e-4)
    assert gradgradcheck(lambda x: F.nll_loss(F.log_softmax(x), target, weight=weight,
                                              reduction=reduction), x, atol=1e-4)


def test_cross_entropy_with_class_axis_and_leading_axes():
    r = np.random.default_rng(2)
    x, target = r.standard_normal((2, 3, 4)), np.array([[0, 3, 1], [2, 2, 0]])
    assert gradgradcheck(lambda x: F.cross_entropy(x, target), x)


@pytest.mark.parametrize("kind", ["fused", "causal", "bool_mask", "float_mask", "broadcast"])
def test_attention_twice_differentiable(kind):
    r = np.random.default_rng(3)
    q, k, v = r.standard_normal((2, 3, 4)), r.standard_normal((2, 5, 4)), r.standard_normal((2, 5, 2))
    kwargs = {"causal": {"is_causal": True},
              "bool_mask": {"attn_mask": r.standard_normal((3, 5)) > -0.5},
              "float_mask": {"attn_mask": r.standard_normal((3, 5))}}.get(kind, {})
    if kind == "broadcast":
        k, v = k[:1], v[:1]  # (1, 5, 4): the composed path
    assert gradgradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs),
                         (q, k, v), atol=1e-4)


def test_dropout_twice_differentiable_for_a_fixed_mask():
    x = np.random.default_rng(4).standard_normal((3, 4))

    def dropped(t):
        tg.manual_seed(0)  # the same mask at every call
        return F.dropout(t, 0.4) * t

    assert gradgradcheck(dropped, x)
    assert gradgradcheck(lambda t: F.dropout(t, 1.0) + t * t, x)


def test_nt_xent_and_normalize_twice_differentiable():
    r = np.random.default_rng(5)
    z1, z2 = r.standard_normal((3, 4)), r.standard_normal((3, 4))
    assert gradgradcheck(lambda a, b: F.nt_xent(a, b, temperature=0.3), (z1, z2), atol=1e-4)
    assert gradgradcheck(lambda a: F.normalize(a, axis=-1), z1)
