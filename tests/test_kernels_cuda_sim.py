"""The Numba-CUDA kernels of the row-wise families, held to the reference.

softmax / log_softmax, cross-entropy and layer norm in ``kernels/cuda`` are compared with
``kernels/reference.py`` forward and backward, over hypothesis-drawn tiny shapes (rows 1..4,
columns 1, 3, 33, 65: below and above one block of 16 threads, which the kernels use
under the simulator), both dtypes, any axis, large
logits (+-1e4), -inf entries (an all -inf row gives NaN, as the reference), ignored rows,
class weights and label smoothing.

Runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1 python -m pytest ...``; the variable
must be set before numba.cuda is first imported, so the test does not set it) or on a real GPU
with CuPy; otherwise the module is skipped. The simulator runs each GPU thread as a Python
thread, so the shapes are tiny and the examples few.

How a result is compared: the reference runs in float64 on the same values (a float32 input is
widened exactly); the kernel's result, in the input's dtype, must satisfy
|got - want| <= TOL * eps(dtype) * (|want| + scale), TOL = 64 ulps, scale the magnitude that sets
the absolute error (1 for probabilities, max |x| for log-probabilities). NaN must match NaN and
infinities must match exactly.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st


from cuda_sim import SIMULATOR, skip_unless_cuda_or_simulator, to_device, to_host  # noqa: E402,F401

skip_unless_cuda_or_simulator()

from tinygrad_pt.kernels import reference as R  # noqa: E402
from tinygrad_pt.kernels.cuda import cross_entropy as cu_ce  # noqa: E402
from tinygrad_pt.kernels.cuda import layer_norm as cu_ln  # noqa: E402
from tinygrad_pt.kernels.cuda import softmax as cu_softmax  # noqa: E402

TOL = 64
DTYPES = (np.float32, np.float64)
ROWS = st.integers(1, 4)
COLS = st.sampled_from([1, 3, 33, 65])
FEW = settings(max_examples=10, deadline=None)


def assert_close(got, want, dtype, scale=1.0, what=""):
    got = to_host(got)
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    got64 = got.astype(np.float64)
    nan_ok = np.array_equal(np.isnan(got64), np.isnan(want))
    assert nan_ok, f"{what}: NaN at {np.argwhere(np.isnan(got64) != np.isnan(want))[:5]}"
    inf = np.isinf(want)
    assert np.array_equal(got64[inf], want[inf]), f"{what}: infinities differ"
    finite = np.isfinite(want)
    bound = TOL * np.finfo(dtype).eps * (np.abs(want[finite]) + scale)
    err = np.abs(got64[finite] - want[finite])
    bad = err > bound
    assert not bad.any(), (f"{what}: {bad.sum()} mismatches; first got {got64[finite][bad][:3]}, "
                           f"want {want[finite][bad][:3]}")


@st.composite
def logits(draw, dtype):
    """(rows, cols) logits of the dtype: normal, or +-1e4, with some -inf entries and, sometimes,
    a row all -inf."""
    n, c = draw(ROWS), draw(COLS)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    big = draw(st.booleans())
    x = rng.standard_normal((n, c)) * (1e4 if big else 3.0)
    if draw(st.booleans()):
        x[rng.random((n, c)) < 0.3] = -np.inf
    if draw(st.booleans()):
        x[rng.integers(n)] = -np.inf
    return x.astype(dtype), rng


# --------------------------------------------------------------------------------------------------
# softmax and log_softmax


@pytest.mark.parametrize("log", [False, True])
@FEW
@given(dtype=st.sampled_from(DTYPES), data=st.data())
def test_softmax_matches_reference(log, dtype, data):
    x, rng = data.draw(logits(dtype))
    fwd, bwd = ("log_softmax_fwd", "log_softmax_bwd") if log else ("softmax_fwd", "softmax_bwd")
    with np.errstate(divide="ignore", invalid="ignore"):  # the all -inf row's NaN is expected
        want = getattr(R, fwd)(x.astype(np.float64))
    finite_x = x[np.isfinite(x)]
    scale = max(1.0, float(np.abs(finite_x).max())) if log and finite_x.size else 1.0
    y = getattr(cu_softmax, fwd)(to_device(x))
    assert_close(y, want, dtype, scale, fwd)

    dy = rng.standard_normal(x.shape).astype(dtype)
    y_host = to_host(y)
    with np.errstate(invalid="ignore"):
        want_dx = getattr(R, bwd)(dy.astype(np.float64), y_host.astype(np.float64))
    dx = getattr(cu_softmax, bwd)(to_device(dy), to_device(y_host))
    assert_close(dx, want_dx, dtype, float(np.abs(dy).max()) * 4.0, bwd)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_any_axis(axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2))
    y = to_host(cu_softmax.softmax_fwd(to_device(x), axis))
    assert_close(y, R.softmax_fwd(x, axis), np.float64)
    # an independent check: the probabilities along the axis sum to 1
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)
    dy = rng.standard_normal(x.shape)
    dx = cu_softmax.log_softmax_bwd(to_device(dy), to_device(np.log(y)), axis)
    assert_close(dx, R.log_softmax_bwd(dy, np.log(y), axis), np.float64, 4.0)


def test_softmax_plain_loop():
    """Forward against a plain Python loop, not the reference's formula."""
    x = np.array([[1.0, 2.0, 3.0], [-np.inf, 0.0, -np.inf], [1e4, -1e4, 1e4]])
    want = np.empty_like(x)
    for i, row in enumerate(x):
        m = max(row)
        e = [np.exp(v - m) for v in row]
        want[i] = [v / sum(e) for v in e]
    assert_close(cu_softmax.softmax_fwd(to_device(x)), want, np.float64)
    assert to_host(cu_softmax.softmax_fwd(to_device(x)))[1].tolist() == [0.0, 1.0, 0.0]


def test_softmax_all_inf_row_is_nan():
    x = np.full((2, 3), -np.inf, np.float32)
    x[1] = [0.0, 1.0, 2.0]
    for fwd in (cu_softmax.softmax_fwd, cu_softmax.log_softmax_fwd):
        y = to_host(fwd(to_device(x)))
        assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


def test_softmax_bad_input():
    with pytest.raises(TypeError, match=r"softmax_fwd: x has dtype int64"):
        cu_softmax.softmax_fwd(to_device(np.zeros((2, 3), np.int64)))
    with pytest.raises(TypeError, match=r"softmax_bwd: the arrays must share one dtype"):
        cu_softmax.softmax_bwd(to_device(np.zeros((2, 3), np.float32)),
                               to_device(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"log_softmax_bwd: dy shape \(2, 4\) != y shape \(2, 3\)"):
        cu_softmax.log_softmax_bwd(to_device(np.zeros((2, 4))), to_device(np.zeros((2, 3))))


# --------------------------------------------------------------------------------------------------
# cross-entropy


@FEW
@given(dtype=st.sampled_from(DTYPES), data=st.data(), smoothing=st.sampled_from([0.0, 0.1]),
       weighted=st.booleans())
def test_cross_entropy_matches_reference(dtype, data, smoothing, weighted):
    x, rng = data.draw(logits(dtype))
    n, c = x.shape
    target = rng.integers(0, c, n)
    target[rng.random(n) < 0.3] = -100  # ignored rows
    w = (rng.random(c) + 0.5).astype(dtype) if weighted else None
    w64 = None if w is None else w.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        want_loss, want_p = R.cross_entropy_fwd(x.astype(np.float64), target, -100, smoothing, w64)
    finite_x = x[np.isfinite(x)]
    scale = 2.0 * max(1.0, float(np.abs(finite_x).max()) if finite_x.size else 1.0)
    loss, p = cu_ce.cross_entropy_fwd(to_device(x), to_device(target), -100, smoothing,
                                      to_device(w))
    assert_close(loss, want_loss, dtype, scale, "losses")
    assert_close(p, want_p, dtype, 1.0, "probs")

    p_host = to_host(p)
    dl = rng.standard_normal(n).astype(dtype)
    with np.errstate(invalid="ignore"):
        want_d = R.cross_entropy_bwd(dl.astype(np.float64), p_host.astype(np.float64), target,
                                     -100, smoothing, w64)
    # ignored rows are exact zeros in the kernel; the reference gives 0 * NaN = NaN there when
    # the row's probabilities are NaN (an all -inf row)
    want_d[target == -100] = 0.0
    d = cu_ce.cross_entropy_bwd(to_device(dl), to_device(p_host), to_device(target), -100,
                                smoothing, to_device(w))
    assert_close(d, want_d, dtype, 4.0 * float(np.abs(dl).max()), "dlogits")


def test_cross_entropy_plain_loop():
    """Loss against a plain Python loop: -log p[target], 0 for an ignored row."""
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [1e4, -1e4, 0.0]])
    target = np.array([2, -100, 1])
    loss = to_host(cu_ce.cross_entropy_fwd(to_device(x), to_device(target))[0])
    for i, row in enumerate(x):
        if target[i] == -100:
            assert loss[i] == 0.0
            continue
        m = max(row)
        lse = m + np.log(sum(np.exp(v - m) for v in row))
        assert loss[i] == pytest.approx(lse - row[target[i]], rel=1e-14)


def test_cross_entropy_bad_input():
    x = to_device(np.zeros((2, 3), np.float32))
    with pytest.raises(IndexError, match=r"cross_entropy_fwd: targets must lie in \[0, 3\)"):
        cu_ce.cross_entropy_fwd(x, to_device(np.array([0, 3])))
    with pytest.raises(ValueError, match=r"cross_entropy_fwd: target has shape \(3,\)"):
        cu_ce.cross_entropy_fwd(x, to_device(np.array([0, 1, 2])))
    with pytest.raises(TypeError, match=r"cross_entropy_bwd: target has dtype float32"):
        cu_ce.cross_entropy_bwd(to_device(np.ones(2, np.float32)), x,
                                to_device(np.zeros(2, np.float32)))


# --------------------------------------------------------------------------------------------------
# layer norm


@FEW
@given(dtype=st.sampled_from(DTYPES), n=ROWS, c=COLS, lead=st.booleans(), affine=st.booleans(),
       big=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_layer_norm_matches_reference(dtype, n, c, lead, affine, big, seed):
    rng = np.random.default_rng(seed)
    shape = (2, n, c) if lead else (n, c)
    x = (rng.standard_normal(shape) * (1e4 if big else 1.0) + 3.0).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731

    y, mean, rstd = cu_ln.layer_norm_fwd(to_device(x), to_device(w), to_device(b), 1e-5)
    want_y, want_mean, want_rstd = R.layer_norm_fwd(f64(x), f64(w), f64(b), 1e-5)
    w_scale = 1.0 if w is None else float(np.abs(w).max())
    assert_close(y, want_y, dtype, 4.0 * w_scale + 1.0, "y")
    assert_close(mean, want_mean, dtype, float(np.abs(x).max()), "mean")
    assert_close(rstd, want_rstd, dtype, 0.0, "rstd")

    # the backward, from the kernel's own (rounded) statistics, as an op would call it
    mean, rstd = to_host(mean), to_host(rstd)
    dy = rng.standard_normal(shape).astype(dtype)
    dx, dw, db = cu_ln.layer_norm_bwd(to_device(dy), to_device(x), to_device(w),
                                      to_device(mean), to_device(rstd))
    want_dx, want_dw, want_db = R.layer_norm_bwd(f64(dy), f64(x), f64(w), f64(mean), f64(rstd))
    rows = int(np.prod(shape[:-1]))
    assert_close(dx, want_dx, dtype, 8.0 * w_scale * float(np.max(rstd)), "dx")
    assert_close(db, want_db, dtype, 4.0 * rows, "dbias")
    if w is None:
        assert dw is None
    else:
        assert_close(dw, want_dw, dtype, 8.0 * rows, "dweight")


def test_layer_norm_plain_loop():
    """Forward against a plain Python loop, not the reference's formula."""
    x = np.array([[1.0, 2.0, 4.0], [5.0, 5.0, 5.0]])
    w, b = np.array([1.0, 2.0, -1.0]), np.array([0.0, 1.0, 0.5])
    y, mean, rstd = (to_host(a) for a in cu_ln.layer_norm_fwd(to_device(x), to_device(w),
                                                                to_device(b), 1e-5))
    for i, row in enumerate(x):
        mu = sum(row) / 3
        var = sum((v - mu) ** 2 for v in row) / 3
        assert mean[i] == pytest.approx(mu, rel=1e-14)
        assert rstd[i] == pytest.approx(1 / np.sqrt(var + 1e-5), rel=1e-14)
        for j in range(3):
            want = (row[j] - mu) / np.sqrt(var + 1e-5) * w[j] + b[j]
            assert y[i, j] == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_layer_norm_bad_input():
    x = to_device(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"layer_norm_fwd: the arrays must share one dtype"):
        cu_ln.layer_norm_fwd(x, to_device(np.ones(3)), None, 1e-5)
    with pytest.raises(ValueError, match=r"layer_norm_fwd: weight has shape \(4,\); expected"):
        cu_ln.layer_norm_fwd(x, to_device(np.ones(4, np.float32)), None, 1e-5)
    with pytest.raises(ValueError, match=r"layer_norm_bwd: dy shape \(2, 4\) != x shape"):
        cu_ln.layer_norm_bwd(to_device(np.zeros((2, 4), np.float32)), x, None,
                             to_device(np.zeros(2, np.float32)), to_device(np.ones(2, np.float32)))
