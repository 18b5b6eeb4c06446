"""Activation ops: relu, leaky_relu, sigmoid, tanh, gelu, softplus, softmax, log_softmax.

Forward values are checked against per-element Python math (or per-slice loops); gradients by
gradcheck in float64 over hypothesis-drawn shapes, axes and non-contiguous layouts.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_pt as tg
from tinygrad_pt.testing import gradcheck

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def away_from(values, points, gap=0.05):
    """Values nudged at least `gap` away from each kink in `points` (finite differences there are
    meaningless)."""
    v = np.array(values, dtype=np.float64)
    for p in points:
        close = np.abs(v - p) < gap
        v[close] = p + np.where(v[close] >= p, gap, -gap)
    return v


def float_arrays(shape, lo=-4.0, hi=4.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False))


def elementwise(fn, x):
    return np.vectorize(fn, otypes=[np.float64])(x)


def sigmoid_ref(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


ELEMENTWISE = {
    "relu": (tg.relu, lambda v: v if v > 0 else 0.0, [0.0]),
    "leaky_relu": (lambda t: tg.leaky_relu(t, 0.2), lambda v: v if v > 0 else 0.2 * v, [0.0]),
    "sigmoid": (tg.sigmoid, sigmoid_ref, []),
    "tanh": (tg.tanh, math.tanh, []),
    "gelu": (tg.gelu, lambda v: v * 0.5 * (1 + math.erf(v / math.sqrt(2))), []),
    "gelu_tanh": (lambda t: tg.gelu(t, approximate="tanh"),
                  lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))),
                  []),
    "softplus": (tg.softplus, lambda v: math.log1p(math.exp(v)), []),
    "softplus_beta": (lambda t: tg.softplus(t, beta=2.0, threshold=3.0),
                      lambda v: v if 2 * v > 3 else math.log1p(math.exp(2 * v)) / 2, [1.5]),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@given(data=st.data())
def test_elementwise_forward_and_gradient(name, data):
    op, scalar_ref, kinks = ELEMENTWISE[name]
    x = away_from(data.draw(float_arrays(data.draw(shapes))), kinks)
    y = op(tg.tensor(x))
    assert y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), elementwise(scalar_ref, x), rtol=1e-12, atol=1e-14)
    assert gradcheck(op, tg.tensor(x, requires_grad=True))


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_keeps_float32_and_non_contiguous_inputs(name):
    op, scalar_ref, kinks = ELEMENTWISE[name]
    base = away_from(np.random.default_rng(0).standard_normal((4, 3)) * 3, kinks)
    x32 = base.astype(np.float32).T  # non-contiguous
    t = tg.tensor(x32, requires_grad=True)
    y = op(t)
    assert y.dtype == np.float32 and y.shape == (3, 4)
    np.testing.assert_allclose(y.numpy(), elementwise(scalar_ref, x32.astype(np.float64)),
                               rtol=2e-6, atol=1e-6)
    y.backward(np.ones((3, 4), np.float32))
    assert t.grad.dtype == np.float32
    assert gradcheck(op, tg.tensor(np.ascontiguousarray(base).T, requires_grad=True))


def test_relu_and_leaky_relu_gradients_at_zero_follow_pytorch():
    x = tg.tensor([0.0, 0.0], requires_grad=True)
    tg.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
    x = tg.tensor([0.0], requires_grad=True)
    tg.leaky_relu(x, 0.1).sum().backward()
    assert x.grad.numpy()[0] == pytest.approx(0.1)


def test_sigmoid_is_stable_for_large_inputs():
    x = tg.tensor([-1000.0, -80.0, 0.0, 80.0, 1000.0], requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # overflow would raise
        y = tg.sigmoid(x)
        y.backward(np.ones(5, np.float32))
    assert y.numpy()[0] == 0.0 and y.numpy()[-1] == 1.0 and y.numpy()[2] == 0.5
    assert np.isfinite(x.grad.numpy()).all()


def test_softplus_threshold_and_large_inputs():
    x = tg.tensor([-1000.0, -30.0, 19.0, 21.0, 1000.0], dtype=np.float64, requires_grad=True)
    with np.errstate(over="raise"):
        y = tg.softplus(x)
        y.backward(np.ones(5))
    np.testing.assert_allclose(y.numpy(), [0.0, math.log1p(math.exp(-30)), math.log1p(math.exp(19)),
                                           21.0, 1000.0], rtol=1e-14)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, sigmoid_ref(-30), sigmoid_ref(19), 1.0, 1.0])
    # A huge threshold must not overflow either: log1p(exp(z)) is never formed directly.
    with np.errstate(over="raise"):
        assert tg.softplus(tg.tensor([1000.0]), threshold=1e6).numpy()[0] == pytest.approx(1000.0)


def test_gelu_exact_and_tanh_agree_with_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-8, 8, 101)
    for approximate in ("none", "tanh"):
        t = tg.tensor(x, requires_grad=True)
        tg.gelu(t, approximate=approximate).backward(np.ones_like(x))
        xt = torch.tensor(x, requires_grad=True)
        torch.nn.functional.gelu(xt, approximate=approximate).backward(torch.ones_like(xt))
        np.testing.assert_allclose(t.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------------------------------
# softmax and log_softmax


def loop_softmax(x, axis):
    moved = np.moveaxis(x, axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        m = max(moved[idx])
        e = [math.exp(v - m) for v in moved[idx]]
        out[idx] = [v / sum(e) for v in e]
    return np.moveaxis(out, -1, axis)


@given(data=st.data(), log=st.booleans())
def test_softmax_forward_and_gradient(data, log):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(float_arrays(shape, -10, 10))
    op = tg.log_softmax if log else tg.softmax
    y = op(tg.tensor(x), axis=axis)
    want = loop_softmax(x, axis)
    np.testing.assert_allclose(y.numpy(), np.log(want) if log else want, rtol=1e-11, atol=1e-14)
    assert gradcheck(lambda t: op(t, axis=axis), tg.tensor(x, requires_grad=True))


@pytest.mark.parametrize("log", [False, True])
def test_softmax_on_a_zero_d_tensor_and_a_transposed_one(log):
    op = tg.log_softmax if log else tg.softmax
    y = op(tg.tensor(3.0))
    assert y.shape == () and y.item() == (0.0 if log else 1.0)
    x = np.random.default_rng(1).standard_normal((3, 4)).T  # non-contiguous (4, 3)
    want = loop_softmax(x, 0)
    np.testing.assert_allclose(op(tg.tensor(x), axis=0).numpy(), np.log(want) if log else want,
                               rtol=1e-12)
    assert gradcheck(lambda t: op(t, axis=0), tg.tensor(x, requires_grad=True))
    assert gradcheck(lambda t: op(t), tg.tensor(2.0, dtype=np.float64, requires_grad=True))


@pytest.mark.parametrize("log", [False, True])
def test_softmax_large_logits_and_masked_entries(log):
    op = tg.log_softmax if log else tg.softmax
    x = tg.tensor([[1e4, -1e4, 0.0], [0.0, -np.inf, 1.0]], requires_grad=True)
    y = op(x, axis=-1)
    assert y.dtype == np.float32
    probs = np.exp(y.numpy()) if log else y.numpy()
    np.testing.assert_allclose(probs, [[1, 0, 0], [1 / (1 + math.e), 0, math.e / (1 + math.e)]],
                               rtol=1e-6, atol=1e-7)
    y.backward(np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], np.float32))
    assert np.isfinite(x.grad.numpy()).all()


def test_tensor_methods_and_exports():
    x = tg.tensor([[-1.0, 2.0]])
    assert x.relu().tolist() == [[0.0, 2.0]]
    np.testing.assert_allclose(x.sigmoid().numpy(), [[sigmoid_ref(-1), sigmoid_ref(2)]], rtol=1e-6)
    np.testing.assert_allclose(x.tanh().numpy(), np.tanh([[-1.0, 2.0]]), rtol=1e-6)
    np.testing.assert_allclose(x.softmax(axis=1).numpy().sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(x.log_softmax().numpy(), np.log(loop_softmax(np.array([[-1.0, 2.0]]), 1)),
                               rtol=1e-6)
    for name in ("relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "softplus",
                 "leaky_relu"):
        assert callable(getattr(tg, name))


def test_same_results_under_every_kernel_setting():
    from tinygrad_pt.kernels import registry
    saved = registry.kernel_settings()
    x = np.random.default_rng(2).standard_normal((3, 5))
    try:
        results = []
        for setting in ("reference", "fast"):
            tg.set_kernels(setting)
            results.append([tg.softmax(tg.tensor(x)).numpy(), tg.gelu(tg.tensor(x)).numpy()])
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    finally:
        registry.set_kernels(**saved)


# ----------------------------------------------------------------------------------------------------
# Bad input


def test_bad_inputs_raise_with_clear_messages():
    x = tg.tensor([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"gelu: approximate must be one of \('none', 'tanh'\), got 'exact'"):
        tg.gelu(x, approximate="exact")
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range for a tensor with 2"):
        tg.softmax(x, axis=2)
    with pytest.raises(TypeError, match=r"log_softmax: axis must be a single int, got \(0, 1\)"):
        tg.log_softmax(x, axis=(0, 1))
    with pytest.raises(ValueError, match="axis 1 is out of range for a 0-d tensor"):
        tg.softmax(tg.tensor(1.0), axis=1)
    with pytest.raises(TypeError, match="relu: expected a floating-point tensor, got dtype int64"):
        tg.relu(tg.tensor([1, 2]))
    with pytest.raises(TypeError, match="sigmoid: expected a Tensor, got ndarray"):
        tg.sigmoid(np.zeros(3))
    with pytest.raises(ValueError, match="softplus: beta must be non-zero"):
        tg.softplus(x, beta=0)
