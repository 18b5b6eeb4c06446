"""Elementwise ops: forward against independent references, float64 gradcheck over hypothesis shapes
(broadcasting, 0-d, size-1 axes, non-contiguous), float32 in -> float32 out, PyTorch's tie rules."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_pt as tg
from tinygrad_pt.testing import gradcheck
from tinygrad_pt.testing.strategies import arrays, broadcastable_shapes, shapes

SMALL = dict(max_dims=3, max_side=4)  # per-element gradcheck stays fast


def pairs(lo=-5.0, hi=5.0, **kw):
    """Two float64 arrays of mutually broadcastable shapes."""
    return broadcastable_shapes(**SMALL).flatmap(
        lambda s: st.tuples(arrays(s[0], min_value=lo, max_value=hi, **kw),
                            arrays(s[1], min_value=lo, max_value=hi, **kw)))


def loop(fn, *arrays_):
    """fn applied element by element over the broadcast arrays: a reference with no NumPy math."""
    bs = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays_])
    out = np.empty(bs[0].shape)
    for idx in np.ndindex(*out.shape):
        out[idx] = fn(*[float(b[idx]) for b in bs])
    return out


def t64(a):
    return tg.tensor(a, requires_grad=True)


# ----------------------------------------------------------------------------------------------------
# Binary arithmetic

BINARY = {
    "add": (lambda a, b: a + b, lambda x, y: x + y, {}),
    "sub": (lambda a, b: a - b, lambda x, y: x - y, {}),
    "mul": (lambda a, b: a * b, lambda x, y: x * y, {}),
    "div": (lambda a, b: a / b, lambda x, y: x / y, dict(min_magnitude=0.5)),
    "tg.add": (tg.add, lambda x, y: x + y, {}),
    "tg.sub": (tg.sub, lambda x, y: x - y, {}),
    "tg.mul": (tg.mul, lambda x, y: x * y, {}),
    "tg.div": (tg.div, lambda x, y: x / y, dict(min_magnitude=0.5)),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_forward_and_gradcheck(name, data):
    op, scalar_ref, kw = BINARY[name]
    a, b = data.draw(pairs(**kw))
    out = op(t64(a), t64(b))
    np.testing.assert_allclose(out.numpy(), loop(scalar_ref, a, b), rtol=1e-12, atol=1e-12)
    assert out.shape == np.broadcast_shapes(a.shape, b.shape) and out.dtype == np.float64
    assert gradcheck(op, a, b)


@given(pairs(lo=0.5, hi=3.0))
def test_pow_tensor_exponent_forward_and_gradcheck(ab):
    base, _ = ab
    exponent = ab[1] - 1.75  # exponents in [-1.25, 1.25]
    out = t64(base) ** t64(exponent)
    np.testing.assert_allclose(out.numpy(), loop(math.pow, base, exponent), rtol=1e-12)
    assert gradcheck(lambda a, b: a ** b, base, exponent)
    assert gradcheck(lambda a, b: tg.pow(a, b), base, exponent)


@pytest.mark.parametrize("p", [2, 3, -1, 0.5, 1.5, 0, 1, -2.5])
@given(data=st.data())
def test_pow_scalar_exponent(p, data):
    positive = p != int(p) or p < 0
    x = data.draw(arrays(shapes(**SMALL), min_value=0.3 if positive else -3.0, max_value=3.0,
                         min_magnitude=0.3))
    out = t64(x) ** p
    np.testing.assert_allclose(out.numpy(), loop(lambda v: math.pow(v, p), x), rtol=1e-12)
    assert gradcheck(lambda a: a ** p, x)


@given(arrays(shapes(**SMALL), min_value=-2.0, max_value=2.0))
def test_rpow_gradcheck(x):
    np.testing.assert_allclose((2.5 ** t64(x)).numpy(), loop(lambda v: 2.5 ** v, x), rtol=1e-12)
    assert gradcheck(lambda a: 2.5 ** a, x)


def test_pow_exponent_gradient_at_zero_and_negative_base_follows_pytorch():
    a = t64(np.array([0.0, 0.0, -2.0, 2.0]))
    b = t64(np.array([2.0, 0.0, 2.0, 3.0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        (a ** b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0, -4.0, 12.0])  # b * a^(b-1); 0 at b == 0
    gb = b.grad.numpy()
    assert gb[0] == 0.0 and gb[1] == 0.0  # 0 ** b for b >= 0: 0, not 0 * log(0) = NaN
    assert np.isnan(gb[2])  # no real derivative in b for a negative base
    assert gb[3] == pytest.approx(8 * math.log(2))


def test_pow_scalar_zero_exponent_has_zero_gradient_at_zero():
    x = t64(np.array([0.0, 3.0]))
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


# ----------------------------------------------------------------------------------------------------
# Unary math

UNARY = {
    # name: (op, scalar reference, strategy kwargs)
    "exp": (tg.exp, math.exp, dict(min_value=-5.0, max_value=5.0)),
    "log": (tg.log, math.log, dict(min_value=0.2, max_value=10.0)),
    "sqrt": (tg.sqrt, math.sqrt, dict(min_value=0.2, max_value=10.0)),
    "abs": (tg.abs, abs, dict(min_magnitude=0.1)),
    "sin": (tg.sin, math.sin, {}),
    "cos": (tg.cos, math.cos, {}),
    "neg": (tg.neg, lambda v: -v, {}),
    "x.exp": (lambda t: t.exp(), math.exp, dict(min_value=-5.0, max_value=5.0)),
    "x.log": (lambda t: t.log(), math.log, dict(min_value=0.2, max_value=10.0)),
    "x.sqrt": (lambda t: t.sqrt(), math.sqrt, dict(min_value=0.2, max_value=10.0)),
    "x.abs": (lambda t: t.abs(), abs, dict(min_magnitude=0.1)),
    "x.sin": (lambda t: t.sin(), math.sin, {}),
    "x.cos": (lambda t: t.cos(), math.cos, {}),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_forward_and_gradcheck(name, data):
    op, ref, kw = UNARY[name]
    x = data.draw(arrays(shapes(**SMALL), **kw))
    out = op(t64(x))
    assert out.shape == x.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), loop(ref, x), rtol=1e-12, atol=1e-15)
    assert gradcheck(op, x)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs", "sin", "cos", "neg"])
def test_unary_float32_in_float32_out_and_grad(name):
    op = UNARY[name][0]
    x = tg.tensor([0.5, 1.5, 2.5], requires_grad=True)
    y = op(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_abs_gradient_is_zero_at_zero():
    x = t64(np.array([-2.0, 0.0, 3.0]))
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1.0, 0.0, 1.0])


def test_non_contiguous_inputs():
    base = np.arange(1.0, 25.0).reshape(4, 6) / 7
    for x in (base.T, base[:, ::2], np.asfortranarray(base)):
        assert not x.flags.c_contiguous
        np.testing.assert_allclose(tg.tensor(x).exp().numpy(), loop(math.exp, x), rtol=1e-12)
        assert gradcheck(lambda a: (a * a).log(), x)
        assert gradcheck(lambda a, b: a / b, x, x.copy() + 1)


# ----------------------------------------------------------------------------------------------------
# maximum / minimum


@pytest.mark.parametrize("op, pick", [(tg.maximum, max), (tg.minimum, min)])
@given(data=st.data())
def test_extremum_forward_and_gradcheck(op, pick, data):
    a, b = data.draw(pairs())
    ab, bb = np.broadcast_arrays(a, b)
    assume(np.all(np.abs(ab - bb) > 1e-3))  # no ties: the finite difference straddles a kink
    np.testing.assert_array_equal(op(t64(a), t64(b)).numpy(), loop(pick, a, b))
    assert gradcheck(op, a, b)


def test_maximum_minimum_ties_split_the_gradient_evenly():
    a = t64(np.array([1.0, 2.0, 3.0]))
    b = t64(np.array([1.0, 0.0, 5.0]))
    tg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 0.0, 1.0])
    a.zero_grad(), b.zero_grad()
    tg.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0, 0.0])


def test_maximum_with_scalar_and_broadcast_tie():
    x = t64(np.array([[-1.0, 0.0, 2.0]]))
    y = tg.maximum(x, 0.0)  # relu, with the tie at 0 splitting the gradient
    np.testing.assert_array_equal(y.numpy(), [[0.0, 0.0, 2.0]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 0.5, 1.0]])
    assert x.maximum(1.0).dtype == np.float64 and tg.minimum(tg.tensor([1.0]), 0.5).dtype == np.float32


# ----------------------------------------------------------------------------------------------------
# clip and where


@given(arrays(shapes(**SMALL), min_value=-3.0, max_value=3.0),
       st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None), (0.0, 0.0)]))
def test_clip_forward_and_gradcheck(x, bounds):
    lo, hi = bounds
    lo_ = -math.inf if lo is None else lo
    hi_ = math.inf if hi is None else hi
    assume(all(abs(v - lo_) > 1e-3 and abs(v - hi_) > 1e-3 for v in x.ravel()))
    out = tg.clip(t64(x), lo, hi)
    np.testing.assert_array_equal(out.numpy(), loop(lambda v: min(max(v, lo_), hi_), x))
    assert gradcheck(lambda a: a.clip(lo, hi), x)


def test_clip_gradient_passes_at_the_bounds_and_keeps_dtype():
    x = tg.tensor([-1.0, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    y = x.clip(np.float64(0.0), 1)  # NumPy-scalar bounds must not upcast float32
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0, 1.0, 0.0])


@given(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4).flatmap(
    lambda bs: st.tuples(hnp.arrays(np.bool_, bs.input_shapes[0]), arrays(bs.input_shapes[1]),
                         arrays(bs.input_shapes[2]))))
def test_where_forward_and_gradcheck(cab):
    cond, a, b = cab
    out = tg.where(tg.tensor(cond), t64(a), t64(b))
    np.testing.assert_array_equal(out.numpy(), loop(lambda c, x, y: x if c else y, cond, a, b))
    assert gradcheck(lambda x, y: tg.where(tg.tensor(cond), x, y), a, b)


def test_where_routes_gradient_and_accepts_scalars_and_arrays():
    x = t64(np.array([1.0, -2.0, 3.0]))
    y = tg.where(x.data > 0, x, 0.0)  # a NumPy bool condition and a scalar branch
    np.testing.assert_array_equal(y.numpy(), [1.0, 0.0, 3.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])
    z = tg.where(tg.tensor([True, False]), 1.0, 0.0)
    assert z.dtype == np.float32 and z.numpy().tolist() == [1.0, 0.0]
    assert tg.where(True, tg.tensor([1.0, 2.0]), 5.0).numpy().tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------------------------------
# Comparisons and dtypes


@given(pairs())
def test_comparisons_match_python(ab):
    a, b = ab
    a = np.round(a)  # small integers, so that equal elements occur
    b = np.round(b)
    ta = tg.tensor(a)
    for op, ref in [(tg.less, lambda x, y: x < y), (tg.less_equal, lambda x, y: x <= y),
                    (tg.greater, lambda x, y: x > y), (tg.greater_equal, lambda x, y: x >= y),
                    (tg.equal, lambda x, y: x == y), (tg.not_equal, lambda x, y: x != y)]:
        got = op(ta, b)
        assert got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), loop(lambda x, y: float(ref(x, y)), a, b) == 1)


@pytest.mark.parametrize("op", [tg.add, tg.sub, tg.mul, tg.div, tg.maximum, tg.minimum, tg.pow])
def test_binary_float32_stays_float32_with_float32_gradients(op):
    a = tg.tensor([[0.5, 1.5, 2.5]], requires_grad=True)
    b = tg.tensor([[1.0], [2.0]], requires_grad=True)
    y = op(a, b)
    assert y.dtype == np.float32 and y.shape == (2, 3)
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32
    assert a.grad.shape == (1, 3) and b.grad.shape == (2, 1)


def test_integer_operand_meets_float_tensor_without_upcast():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    i = tg.tensor([3, 4])
    y = x * i
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    assert (x + np.array([1, 2])).dtype == np.float32
