"""Reductions: sum/mean/max/min/var/std/logsumexp over None/int/tuple/negative axes with keepdims,
checked against plain-Python loops over each reduced slice and by float64 gradcheck."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_pt as tg
from tinygrad_pt.testing import gradcheck
from tinygrad_pt.testing.strategies import arrays, axes, shapes

SMALL = dict(max_dims=3, max_side=4)


def reduce_ref(x, axis, keepdims, fn):
    """fn(list of floats) applied to every slice over `axis`, with NumPy's output shape."""
    ndim = x.ndim
    if axis is None:
        red = tuple(range(ndim))
    else:
        axis = (axis,) if isinstance(axis, int) else axis
        red = tuple(sorted(a % ndim for a in axis)) if ndim else ()
    kept = [i for i in range(ndim) if i not in red]
    moved = np.transpose(x, kept + list(red))
    rows = moved.reshape(moved.shape[:len(kept)] + (-1,))
    out = np.empty(rows.shape[:-1])
    for idx in np.ndindex(*out.shape):
        out[idx] = fn([float(v) for v in rows[idx]])
    if keepdims:
        out = out.reshape([1 if i in red else n for i, n in enumerate(x.shape)])
    return out


def _mean(v):
    return math.fsum(v) / len(v)


def _var(v, ddof=0):
    m = _mean(v)
    return math.fsum((e - m) ** 2 for e in v) / (len(v) - ddof)


def _lse(v):
    m = max(v)
    return m + math.log(math.fsum(math.exp(e - m) for e in v))


REDUCTIONS = {
    # name: (call, scalar reference, needs distinct elements for gradcheck)
    "sum": (lambda t, ax, kd: t.sum(axis=ax, keepdims=kd), math.fsum, False),
    "mean": (lambda t, ax, kd: t.mean(axis=ax, keepdims=kd), _mean, False),
    "max": (lambda t, ax, kd: t.max(axis=ax, keepdims=kd), max, True),
    "min": (lambda t, ax, kd: t.min(axis=ax, keepdims=kd), min, True),
    "var": (lambda t, ax, kd: t.var(axis=ax, keepdims=kd), _var, False),
    "std": (lambda t, ax, kd: t.std(axis=ax, keepdims=kd), lambda v: math.sqrt(_var(v)), True),
    "logsumexp": (lambda t, ax, kd: tg.logsumexp(t, axis=ax, keepdims=kd), _lse, False),
    "tg.sum": (lambda t, ax, kd: tg.sum(t, axis=ax, keepdims=kd), math.fsum, False),
    "tg.mean": (lambda t, ax, kd: tg.mean(t, axis=ax, keepdims=kd), _mean, False),
    "tg.max": (lambda t, ax, kd: tg.max(t, axis=ax, keepdims=kd), max, True),
    "tg.min": (lambda t, ax, kd: tg.min(t, ax, kd), min, True),
    "tg.var": (lambda t, ax, kd: tg.var(t, axis=ax, keepdims=kd), _var, False),
    "tg.std": (lambda t, ax, kd: tg.std(t, axis=ax, keepdims=kd), lambda v: math.sqrt(_var(v)), True),
}


def spaced(shape):
    """Distinct values at least 1/80 apart: max/min/std gradients are smooth there (a finite
    difference across a near-tie would see a kink that the analytic gradient does not)."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-400, 400).map(lambda k: k / 80),
                      unique=True)


@st.composite
def array_and_axis(draw, distinct=False):
    shape = draw(shapes(**SMALL))
    x = draw(spaced(shape) if distinct else arrays(shape, min_value=-5.0, max_value=5.0))
    return x, draw(axes(x.ndim)), draw(st.booleans())


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction_forward_and_gradcheck(name, data):
    call, ref, distinct = REDUCTIONS[name]
    x, axis, keepdims = data.draw(array_and_axis(distinct=distinct))
    out = call(tg.tensor(x, requires_grad=True), axis, keepdims)
    want = reduce_ref(x, axis, keepdims, ref)
    assert out.shape == want.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: call(t, axis, keepdims), x)


@pytest.mark.parametrize("ddof", [0, 1, 2])
@given(data=st.data())
def test_var_std_ddof(ddof, data):
    x = data.draw(spaced(shapes(min_dims=1, **SMALL)))
    axis = data.draw(axes(x.ndim, allow_none=False).filter(lambda a: a != ()))
    n = x.size // reduce_ref(x, axis, False, len).size
    assume(n > ddof)
    want = reduce_ref(x, axis, False, lambda v: _var(v, ddof))
    np.testing.assert_allclose(tg.tensor(x).var(axis=axis, ddof=ddof).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(tg.tensor(x).std(axis=axis, ddof=ddof).numpy(), np.sqrt(want),
                               rtol=1e-10)
    assert gradcheck(lambda t: t.var(axis=axis, ddof=ddof), x)
    assert gradcheck(lambda t: t.std(axis=axis, ddof=ddof), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "logsumexp"])
def test_reductions_keep_dtype_in_value_and_gradient(name, dtype):
    call = REDUCTIONS[name][0]
    x = tg.tensor(np.arange(6, dtype=dtype).reshape(2, 3), requires_grad=True)
    y = call(x, 1, False)
    assert y.dtype == dtype and y.shape == (2,)
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_max_min_ties_share_gradient_evenly():
    x = tg.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])
    x.zero_grad()
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.zero_grad()
    x.min(axis=0, keepdims=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1, 0, 0], [0, 1, 1]])


def test_std_of_constant_slice_has_zero_gradient():
    x = tg.tensor(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]]), requires_grad=True)
    x.std(axis=1).sum().backward()
    g = x.grad.numpy()
    np.testing.assert_array_equal(g[0], [0.0, 0.0, 0.0])  # PyTorch's rule, not 0/0 = NaN
    np.testing.assert_allclose(g[1], np.array([-1, 0, 1]) / (3 * math.sqrt(2 / 3)))


def test_logsumexp_is_stable_and_its_gradient_is_softmax():
    x = tg.tensor(np.array([[1000.0, 1000.0], [-1000.0, 0.0]]), requires_grad=True)
    y = tg.logsumexp(x, axis=1)
    np.testing.assert_allclose(y.numpy(), [1000 + math.log(2), math.log1p(math.exp(-1000))])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, 0.5], [0.0, 1.0]])
    with np.errstate(divide="ignore"):  # log(0): the honest answer for a fully masked row
        all_masked = tg.logsumexp(tg.tensor(np.array([-np.inf, -np.inf])))
    assert all_masked.item() == -np.inf
    assert x.logsumexp(axis=0, keepdims=True).shape == (1, 2)


def test_zero_d_and_empty_tuple_axes():
    x = tg.tensor(np.float64(3.0), requires_grad=True)
    for y in (x.sum(), x.mean(axis=0), x.max(axis=-1), x.var(), tg.logsumexp(x, axis=()),
              x.sum(axis=())):
        assert y.shape == ()
    x.sum(axis=0).backward()
    assert x.grad.item() == 1.0
    m = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    s = m.sum(axis=())  # NumPy: reduce nothing
    np.testing.assert_array_equal(s.numpy(), m.numpy())
    s.backward(np.full((2, 3), 2.0))
    np.testing.assert_array_equal(m.grad.numpy(), np.full((2, 3), 2.0))


def test_sum_over_empty_axis_and_integer_sum():
    x = tg.tensor(np.zeros((2, 0)), requires_grad=True)
    y = x.sum(axis=1)
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0])
    y.backward(np.ones(2))
    assert x.grad.shape == (2, 0)
    i = tg.tensor(np.array([[1, 2], [3, 4]]))
    assert i.sum().dtype == np.int64 and i.sum(axis=0).numpy().tolist() == [4, 6]
    assert i.max(axis=1).numpy().tolist() == [2, 4]


@given(arrays(shapes(min_dims=1, **SMALL)), st.data())
def test_argmax_argmin_any_all_match_numpy(x, data):
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    t = tg.tensor(x)
    assert t.argmax(axis=axis).numpy().tolist() == np.argmax(x, axis=axis).tolist()
    assert tg.argmin(t, axis=axis).numpy().tolist() == np.argmin(x, axis=axis).tolist()
    assert t.argmax(axis=axis).dtype == np.int64
    pos = tg.tensor(x > 0)
    assert pos.any(axis=axis).numpy().tolist() == np.any(x > 0, axis=axis).tolist()
    assert pos.all(axis=axis).numpy().tolist() == np.all(x > 0, axis=axis).tolist()


def test_mean_gradient_value():
    x = tg.tensor(np.ones((2, 4)), requires_grad=True)
    x.mean(axis=(0, -1)).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 4), 1 / 8))
