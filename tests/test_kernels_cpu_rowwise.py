"""The Numba CPU kernels of the row-wise and elementwise families, held to the reference.

softmax / log_softmax, cross-entropy, layer norm, GELU, dropout and AdamW in ``kernels/cpu`` are
compared with ``kernels/reference.py`` (the specification) forward and backward, over
hypothesis-drawn shapes (odd sizes: rows and columns of 1, 3, 65, 127), both dtypes, any axis,
non-contiguous inputs, large logits (+-1e4), -inf entries, ignored rows and label smoothing.

How a result is compared (``assert_close_report``): the reference runs in float64 on the same
input values (a float32 input is widened exactly), and the kernel's result, in the input's dtype,
must satisfy |got - want| <= TOL * eps(dtype) * (|want| + scale), with TOL = 64 ulps, eps the
dtype's machine epsilon (1.2e-7 for float32, 2.2e-16 for float64) and `scale` the magnitude of
the inputs that set the absolute error (1 for probabilities, max |x| for log-probabilities and
losses). NaN must match NaN and infinities must match exactly. On failure the first mismatches
are listed with their index and both values. Dropout and AdamW must match bit for bit.

Every kernel compiles once per dtype on its first call (about a second each); with Numba's cache
(``kernels/cpu/__pycache__``) later runs load them instead.
"""
import inspect
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_pt.kernels import reference as R
from tinygrad_pt.kernels import registry
from tinygrad_pt.kernels.cpu import _common
from tinygrad_pt.kernels.cpu import adamw as nb_adamw
from tinygrad_pt.kernels.cpu import cross_entropy as nb_ce
from tinygrad_pt.kernels.cpu import dropout as nb_dropout
from tinygrad_pt.kernels.cpu import gelu as nb_gelu
from tinygrad_pt.kernels.cpu import layer_norm as nb_ln
from tinygrad_pt.kernels.cpu import softmax as nb_softmax

MODULES = {"softmax": nb_softmax, "cross_entropy": nb_ce, "layer_norm": nb_ln, "gelu": nb_gelu,
           "dropout": nb_dropout, "adamw": nb_adamw}
TOL = 64  # ulps of the dtype, relative to |want| + scale (see the module docstring)
DTYPES = st.sampled_from([np.float32, np.float64])
# Sizes: the odd ones named by the issue, and anything up to 130.
SIDES = st.one_of(st.sampled_from([1, 3, 65, 127]), st.integers(1, 130))
# Up to 3 axes, at most 20,000 elements (a larger draw keeps its last two axes).
SHAPES = st.lists(SIDES, min_size=1, max_size=3).map(
    lambda s: tuple(s) if math.prod(s) <= 20_000 else tuple(s[-2:]))


def assert_close_report(got, want, scale=1.0, what="", tol=TOL, show=8):
    """got (in the kernel's dtype) against want (float64) to tol ulps of got's dtype, relative to
    |want| + scale; NaN must match NaN, infinities must match. Lists the first mismatches."""
    got = np.asarray(got)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    g = got.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(want)
    same_inf = np.isinf(want) & (g == want)
    limit = tol * np.finfo(got.dtype).eps * (np.abs(np.where(np.isfinite(want), want, 0)) + scale)
    with np.errstate(invalid="ignore"):
        ok = both_nan | same_inf | (np.abs(g - want) <= limit)
    if not ok.all():
        bad = np.argwhere(~ok)
        lines = [f"  at {tuple(int(i) for i in idx)}: got {float(g[tuple(idx)])!r}, expected "
                 f"{float(want[tuple(idx)])!r} (limit {limit[tuple(idx)]:.3g})"
                 for idx in bad[:show]]
        raise AssertionError(f"{what}: {len(bad)} of {g.size} entries differ beyond {tol} ulps "
                             f"of {got.dtype} (scale {scale:g}):\n" + "\n".join(lines))


def test_assert_close_report_lists_the_first_mismatches():
    want = np.linspace(0, 1, 10)
    got = want.astype(np.float32)
    assert_close_report(got, want)  # float32 rounding is far inside 64 ulps
    got[3] += 1e-4
    with pytest.raises(AssertionError, match=r"probe: 1 of 10 entries .*\n  at \(3,\): got "):
        assert_close_report(got, want, what="probe")
    with pytest.raises(AssertionError, match=r"got nan, expected 0\.0"):
        assert_close_report(np.array([np.nan]), np.array([0.0]))


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def draw_array(rng, shape, dtype, scale):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def maybe_strided(a, strided):
    """a itself, or an equal array that is a non-contiguous view (every other column of a wider
    array), to exercise the wrappers' copy path."""
    if not strided:
        return a
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


# ----------------------------------------------------------------------------------------------------
# The modules as a whole


@pytest.mark.parametrize("family", sorted(MODULES))
def test_signatures_equal_the_reference(family):
    for name in registry.FAMILIES[family]:
        fast, ref = getattr(MODULES[family], name), getattr(R, name)
        assert inspect.signature(fast) == inspect.signature(ref), name


def test_import_compiles_nothing():
    code = ("import tinygrad_pt.kernels.cpu.softmax as s, tinygrad_pt.kernels.cpu.cross_entropy "
            "as c, tinygrad_pt.kernels.cpu.layer_norm as l, tinygrad_pt.kernels.cpu.gelu as g, "
            "tinygrad_pt.kernels.cpu.dropout as d, tinygrad_pt.kernels.cpu.adamw as a\n"
            "kernels = [s._softmax_rows, s._softmax_bwd_rows, c._cross_entropy_fwd_rows, "
            "c._cross_entropy_bwd_rows, l._layer_norm_fwd_rows, l._layer_norm_bwd_rows, "
            "g._gelu_tanh_fwd_flat, g._gelu_tanh_bwd_flat, g._gelu_erf_fwd_flat, "
            "g._gelu_erf_bwd_flat, g._gelu_erf32_fwd_flat, g._gelu_erf32_bwd_flat, "
            "d._dropout_flat, a._adamw_flat]\n"
            "print(sum(len(k.signatures) for k in kernels))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vexp_is_accurate_to_about_one_ulp(dtype):
    from numba import njit  # noqa: PLC0415

    @njit(error_model="numpy")
    def apply(t, out):
        for i in range(t.shape[0]):
            out[i] = _common.vexp(t[i])

    lo = -87.3 if dtype == np.float32 else -708.3
    t = np.concatenate([np.linspace(lo, 0, 200_001), np.linspace(-1, 1, 10_001),
                        np.linspace(0, 80, 1001)]).astype(dtype)
    got = np.empty_like(t)
    apply(t, got)
    want = np.exp(t.astype(np.longdouble))
    ulps = np.abs(got - want) / np.spacing(want.astype(dtype)).astype(np.longdouble)
    assert ulps.max() <= 2, f"worst {float(ulps.max())} ulps at t={t[ulps.argmax()]}"
    special = np.array([-np.inf, np.nan, 2 * lo, 1e30, 0.0], dtype)
    out = np.empty_like(special)
    apply(special, out)
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == 0 and out[3] == np.inf and out[4] == 1


# ----------------------------------------------------------------------------------------------------
# softmax and log_softmax


@given(SHAPES, st.data(), DTYPES, st.sampled_from([1.0, 30.0, 1e4]), st.booleans(),
       st.booleans())
def test_softmax_forward_and_backward(shape, data, dtype, scale, strided, with_minus_inf):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = draw_array(rng, shape, dtype, scale)
    if with_minus_inf:
        x[rng.random(shape) < 0.2] = -np.inf
        np.moveaxis(x, axis, -1)[..., 0] = 0.0  # every slice along the axis keeps a finite entry
    x = maybe_strided(x, strided)
    dy = maybe_strided(draw_array(rng, shape, dtype, 1.0), strided)
    for fwd, bwd, log in ((nb_softmax.softmax_fwd, nb_softmax.softmax_bwd, False),
                          (nb_softmax.log_softmax_fwd, nb_softmax.log_softmax_bwd, True)):
        name = "log_softmax" if log else "softmax"
        y = fwd(x, axis)
        want = getattr(R, name + "_fwd")(f64(x), axis)
        assert y.dtype == dtype
        # log-probabilities are absolute quantities of the size of the logits
        assert_close_report(y, want, scale=scale if log else 1.0, what=f"{name}_fwd")
        dx = bwd(dy, y, axis)
        assert dx.dtype == dtype
        want_dx = getattr(R, name + "_bwd")(f64(dy), f64(y), axis)
        # dx = y (dy - sum(dy y)) or dy - exp(y) sum(dy): errors scale with the sums
        sums = np.abs(f64(dy).sum(axis=axis)).max() if log else np.abs(f64(dy)).max()
        assert_close_report(dx, want_dx, scale=1.0 + float(sums), what=f"{name}_bwd")
        assert np.isfinite(dx).all()  # -inf entries give finite gradients


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_large_logits_and_masked_rows(dtype):
    x = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4], [0.0, -np.inf, 1.0, -np.inf],
                  [-np.inf] * 4], dtype=dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        want_y, want_ly = R.softmax_fwd(f64(x)), R.log_softmax_fwd(f64(x))
    y, ly = nb_softmax.softmax_fwd(x), nb_softmax.log_softmax_fwd(x)
    assert np.isfinite(y[:3]).all() and np.isfinite(ly[:2]).all()  # no overflow, no NaN
    assert np.isnan(y[3]).all() and np.isnan(ly[3]).all()  # all -inf: NaN, as the reference
    assert ly[2, 1] == -np.inf and y[2, 1] == 0.0
    assert_close_report(y, want_y, what="softmax_fwd")
    assert_close_report(ly, want_ly, scale=1e4, what="log_softmax_fwd")
    dy = np.linspace(-1, 1, 16).reshape(4, 4).astype(dtype)
    dx, dlx = nb_softmax.softmax_bwd(dy, y), nb_softmax.log_softmax_bwd(dy, ly)
    assert np.isfinite(dx[:3]).all() and np.isfinite(dlx[:3]).all()
    assert dlx[2, 1] == dy[2, 1] and dx[2, 1] == 0.0


# ----------------------------------------------------------------------------------------------------
# cross-entropy


@given(SIDES, SIDES, DTYPES, st.sampled_from([0.0, 0.1, 1.0]), st.booleans(),
       st.sampled_from([1.0, 1e4]), st.booleans(), st.integers(0, 2**32 - 1))
def test_cross_entropy_forward_and_backward(n, c, dtype, eps, weighted, scale, strided, seed):
    rng = np.random.default_rng(seed)
    x = maybe_strided(draw_array(rng, (n, c), dtype, scale), strided)
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.3] = -100
    w = (rng.random(c) + 0.5).astype(dtype) if weighted else None
    losses, probs = nb_ce.cross_entropy_fwd(x, t, -100, eps, w)
    want_losses, want_probs = R.cross_entropy_fwd(f64(x), t, -100, eps, f64(w))
    assert losses.dtype == dtype and probs.dtype == dtype
    assert_close_report(losses, want_losses, scale=4 * scale, what="cross_entropy_fwd losses")
    assert_close_report(probs, want_probs, what="cross_entropy_fwd probs")
    ignored = t == -100
    assert (losses[ignored] == 0).all()
    dl = draw_array(rng, n, dtype, 1.0)
    dl[ignored] = np.inf  # what a mean over no rows sends; ignored rows must stay exactly 0
    d = nb_ce.cross_entropy_bwd(dl, probs, t, -100, eps, w)
    want_d = R.cross_entropy_bwd(f64(dl), f64(probs), t, -100, eps, f64(w))
    assert d.dtype == dtype
    assert_close_report(d, want_d, scale=4 * (1 + float(np.abs(dl[~ignored]).max(initial=0))),
                        what="cross_entropy_bwd")
    assert (d[ignored] == 0).all()


def test_cross_entropy_broadcast_upstream_gradient():
    """A mean's gradient arrives as a read-only broadcast view (stride 0)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(np.float32)
    t = rng.integers(0, 7, 5)
    _, probs = nb_ce.cross_entropy_fwd(x, t)
    dl = np.broadcast_to(np.float32(0.2), (5,))
    assert_close_report(nb_ce.cross_entropy_bwd(dl, probs, t),
                        R.cross_entropy_bwd(np.full(5, 0.2), f64(probs), t), what="bwd")


def test_cross_entropy_rejects_targets_out_of_range():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(IndexError, match=r"cross_entropy_fwd: target\[1\] = 4 is outside \[0, 4\)"):
        nb_ce.cross_entropy_fwd(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match=r"target\[2\] = -1 is outside .* ignore_index=-100"):
        nb_ce.cross_entropy_bwd(np.ones(3, np.float32), x, np.array([0, 1, -1]))
    with pytest.raises(ValueError, match=r"one entry per row \(3\), got shape \(2,\)"):
        nb_ce.cross_entropy_fwd(x, np.array([0, 1]))


# ----------------------------------------------------------------------------------------------------
# layer norm


@given(st.lists(SIDES, min_size=0, max_size=2), SIDES, DTYPES, st.booleans(), st.booleans(),
       st.sampled_from([0.0, 1e3]), st.booleans(), st.integers(0, 2**32 - 1))
def test_layer_norm_forward_and_backward(lead, c, dtype, with_weight, with_bias, offset, strided,
                                         seed):
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + (c,)
    if math.prod(shape) > 20_000:
        shape = (3, c)
    x = maybe_strided((draw_array(rng, shape, dtype, 2.0) + offset).astype(dtype), strided)
    w = draw_array(rng, c, dtype, 1.0) if with_weight else None
    b = draw_array(rng, c, dtype, 1.0) if with_bias else None
    y, mean, rstd = nb_ln.layer_norm_fwd(x, w, b, 1e-5)
    want_y, want_mean, want_rstd = R.layer_norm_fwd(f64(x), f64(w), f64(b), 1e-5)
    assert y.dtype == mean.dtype == rstd.dtype == dtype
    assert mean.shape == rstd.shape == shape[:-1]
    # y carries the rounding of x (relative to x's size, offset included) times rstd
    assert_close_report(mean, want_mean, scale=offset + 2, what="layer_norm mean")
    assert_close_report(rstd, want_rstd, what="layer_norm rstd")
    y_scale = (offset + 2) * float(np.max(want_rstd)) * (1 + (0 if w is None else np.abs(w).max()))
    assert_close_report(y, want_y, scale=y_scale, what="layer_norm_fwd y")
    dy = draw_array(rng, shape, dtype, 1.0)
    dx, dw, db = nb_ln.layer_norm_bwd(dy, x, w, mean, rstd)
    want_dx, want_dw, want_db = R.layer_norm_bwd(f64(dy), f64(x), f64(w), f64(mean), f64(rstd))
    rows = math.prod(shape[:-1])
    assert_close_report(dx, want_dx, scale=y_scale * float(np.max(want_rstd)), what="dx")
    assert_close_report(db, want_db, scale=rows, what="dbias")
    if w is None:
        assert dw is None
    else:
        assert_close_report(dw, want_dw, scale=rows * y_scale, what="dweight")


# ----------------------------------------------------------------------------------------------------
# GELU


@given(st.one_of(st.just(()), SHAPES), DTYPES, st.sampled_from(["none", "tanh"]),
       st.sampled_from([1.0, 5.0, 1e4]), st.booleans(), st.integers(0, 2**32 - 1))
def test_gelu_forward_and_backward(shape, dtype, approximate, scale, strided, seed):
    rng = np.random.default_rng(seed)
    x = draw_array(rng, shape, dtype, scale)
    if shape:
        x = maybe_strided(x, strided)
    y = nb_gelu.gelu_fwd(x, approximate)
    assert y.dtype == dtype and y.shape == shape
    # GELU(x) is x times a number in [0, 1]: the error scales with |x|, not with |GELU(x)|, where
    # the tail (x -> -inf) makes GELU(x) tiny.
    x_size = float(np.abs(x).max()) if x.size else 1.0
    assert_close_report(y, R.gelu_fwd(f64(x), approximate), scale=x_size, what="gelu_fwd")
    dy = draw_array(rng, shape, dtype, 1.0)
    dx = nb_gelu.gelu_bwd(dy, x, approximate)
    assert_close_report(dx, R.gelu_bwd(f64(dy), f64(x), approximate), scale=1.0,
                        what="gelu_bwd")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tanh_is_accurate_in_the_left_tail(dtype):
    """1 + tanh(u) cancels for u << 0 (it is 2e-29 at x = -9, where tanh(u) rounds to -1 even in
    float64); the kernel computes it as 2 sigmoid(2u) instead. Against x / 2 * (1 + tanh(u)) in
    50-digit decimal arithmetic, it stays within a few dozen ulps of GELU(x) itself in either
    dtype (the kernel computes in the input's dtype): exp(2u) multiplies the rounding error of u
    by |2u| <= 66 (the condition number of exp; no formula in the working precision avoids it).
    Measured: at most ~25 ulps in float32. (1 + tanh(u), as written, loses every digit here.)"""
    from decimal import Decimal, localcontext  # noqa: PLC0415

    x = np.linspace(-9, -3, 61).astype(dtype)
    want = []
    with localcontext() as ctx:
        ctx.prec = 50
        for v in x.tolist():
            d = Decimal(v)
            u = Decimal(math.sqrt(2 / math.pi)) * (d + Decimal(0.044715) * d ** 3)
            e2u = (2 * u).exp()
            want.append(float(d / 2 * (1 + (e2u - 1) / (e2u + 1))))
    got = nb_gelu.gelu_fwd(x, "tanh")
    assert_close_report(got, np.array(want), scale=0.0, tol=64 if dtype == np.float32 else 128,
                        what="gelu tanh tail")


def test_exact_gelu_in_float32_is_accurate_over_its_whole_range():
    """The float32 erf path (kernels/cpu/gelu.py, ``_erfc32_parts``) on a dense grid, tails and
    special values included, against the float64 reference: relative to GELU(x) itself for
    |x| < 5 (measured: at most 19 ulps), relative to |x| beyond, where GELU(x) -> 0 and exp's
    condition number |x|^2 / 2 magnifies the rounding of its argument; GELU' to 64 ulps of 1."""
    x = np.linspace(-12, 12, 240_001).astype(np.float32)
    want = R.gelu_fwd(x.astype(np.float64))
    got = nb_gelu.gelu_fwd(x)
    near = np.abs(x) < 5
    assert_close_report(got[near], want[near], scale=0.0, tol=32, what="gelu erf, |x| < 5")
    assert_close_report(got, want, scale=12.0, what="gelu erf")
    assert_close_report(nb_gelu.gelu_bwd(np.ones_like(x), x),
                        R.gelu_bwd(np.ones_like(want), x.astype(np.float64)), scale=1.0,
                        what="gelu erf bwd")
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 1e30], np.float32)
    with np.errstate(invalid="ignore"):  # -inf * 0 is NaN in the reference too
        assert_close_report(nb_gelu.gelu_fwd(special), R.gelu_fwd(special.astype(np.float64)),
                            scale=0.0, what="gelu erf specials")


# ----------------------------------------------------------------------------------------------------
# dropout and AdamW: bit for bit


@given(SHAPES, DTYPES, st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_dropout_equals_the_reference_bit_for_bit(shape, dtype, p, strided, seed):
    rng = np.random.default_rng(seed)
    x = maybe_strided(draw_array(rng, shape, dtype, 3.0), strided)
    x.flat[0] = np.inf  # inf * 0 = NaN where dropped, as the reference
    mask = rng.random(shape) >= p
    for fast, ref in ((nb_dropout.dropout_fwd, R.dropout_fwd),
                      (nb_dropout.dropout_bwd, R.dropout_bwd)):
        with np.errstate(invalid="ignore"):  # the reference's inf * 0
            want = ref(x, mask, p)
        got = fast(x, mask, p)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_array_equal(got, want)
        assert (np.signbit(got) == np.signbit(want)).all()  # signed zeros too


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_steps_equal_the_reference_bit_for_bit(dtype, weight_decay):
    rng = np.random.default_rng(7)
    shape = (65, 3)
    p = draw_array(rng, shape, dtype, 1.0)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    p_id = id(p)
    for step in range(1, 6):
        g = maybe_strided(draw_array(rng, shape, dtype, 1.0), step % 2 == 0)
        assert nb_adamw.adamw_update(p, g, m, v, step, 1e-2, 0.9, 0.999, 1e-8, weight_decay) \
            is None
        R.adamw_update(p_ref, g, m_ref, v_ref, step, 1e-2, 0.9, 0.999, 1e-8, weight_decay)
        np.testing.assert_array_equal(p, p_ref, err_msg=f"p after step {step}")
        np.testing.assert_array_equal(m, m_ref, err_msg=f"m after step {step}")
        np.testing.assert_array_equal(v, v_ref, err_msg=f"v after step {step}")
    assert id(p) == p_id and p.dtype == dtype


# ----------------------------------------------------------------------------------------------------
# Large inputs: the kernels run on all of the framework's threads (small ones on one: the thread
# policy, tinygrad_pt/threads.py)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_take_the_parallel_path(dtype, monkeypatch):
    import numba  # noqa: PLC0415

    from tinygrad_pt import threads as policy
    rng = np.random.default_rng(11)
    n, c = 301, 129  # 38,829 elements; LN: 64 chunks
    # The policy's threshold lowered, so that a small, fast test takes the parallel path.
    monkeypatch.setattr(policy, "KERNEL_PARALLEL_MIN_ELEMENTS", n * c)
    monkeypatch.setattr(policy, "_requested", None)  # every core (conftest asks for one)
    monkeypatch.setattr(policy, "ADAPTIVE", False)  # even when other processes hold cores
    assert policy.kernel_threads(n * c) == policy.get_num_threads()
    threads = numba.get_num_threads()
    x, dy = draw_array(rng, (n, c), dtype, 5.0), draw_array(rng, (n, c), dtype, 1.0)
    y = nb_softmax.softmax_fwd(x)
    assert_close_report(y, R.softmax_fwd(f64(x)), what="softmax_fwd")
    assert_close_report(nb_softmax.log_softmax_bwd(dy, np.log(y)),
                        R.log_softmax_bwd(f64(dy), np.log(f64(y))), scale=30.0, what="lsm bwd")
    t = rng.integers(0, c, n)
    losses, probs = nb_ce.cross_entropy_fwd(x, t, label_smoothing=0.1)
    want_losses, want_probs = R.cross_entropy_fwd(f64(x), t, label_smoothing=0.1)
    assert_close_report(losses, want_losses, scale=20.0, what="cross_entropy_fwd")
    assert_close_report(nb_ce.cross_entropy_bwd(dy[:, 0], probs, t, label_smoothing=0.1),
                        R.cross_entropy_bwd(f64(dy[:, 0]), f64(probs), t, label_smoothing=0.1),
                        scale=4.0, what="cross_entropy_bwd")
    w, b = draw_array(rng, c, dtype, 1.0), draw_array(rng, c, dtype, 1.0)
    out, mean, rstd = nb_ln.layer_norm_fwd(x, w, b, 1e-5)
    assert_close_report(out, R.layer_norm_fwd(f64(x), f64(w), f64(b), 1e-5)[0], scale=4.0,
                        what="layer_norm_fwd")
    for got, want, what in zip(nb_ln.layer_norm_bwd(dy, x, w, mean, rstd),
                               R.layer_norm_bwd(f64(dy), f64(x), f64(w), f64(mean), f64(rstd)),
                               ("dx", "dweight", "dbias")):
        assert_close_report(got, want, scale=n, what=f"layer_norm_bwd {what}")
    for approximate in ("none", "tanh"):
        assert_close_report(nb_gelu.gelu_bwd(dy, x, approximate),
                            R.gelu_bwd(f64(dy), f64(x), approximate), what="gelu_bwd")
    mask = rng.random((n, c)) > 0.5
    np.testing.assert_array_equal(nb_dropout.dropout_fwd(x, mask, 0.5),
                                  R.dropout_fwd(x, mask, 0.5))
    p, m, v = x.copy(), np.zeros_like(x), np.zeros_like(x)
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    nb_adamw.adamw_update(p, dy, m, v, 1, 1e-2, 0.9, 0.999, 1e-8, 0.1)
    R.adamw_update(p_ref, dy, m_ref, v_ref, 1, 1e-2, 0.9, 0.999, 1e-8, 0.1)
    np.testing.assert_array_equal(p, p_ref)
    assert numba.get_num_threads() == threads


def test_small_calls_restore_the_thread_count():
    import numba  # noqa: PLC0415

    threads = numba.get_num_threads()
    nb_softmax.softmax_fwd(np.ones((2, 3)))
    assert numba.get_num_threads() == threads


# ----------------------------------------------------------------------------------------------------
# Awkward inputs: the reference runs, and the fallback is recorded


def _fell_back(name, call):
    before = sum(n for (fn, _), n in _common.fallback_counts.items() if fn == name)
    result = call()
    after = sum(n for (fn, _), n in _common.fallback_counts.items() if fn == name)
    assert after == before + 1, f"{name} did not record its fallback"
    return result


def test_float16_and_empty_inputs_fall_back_to_the_reference():
    x16 = np.linspace(-2, 2, 12, dtype=np.float16).reshape(3, 4)
    y = _fell_back("softmax_fwd", lambda: nb_softmax.softmax_fwd(x16))
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, R.softmax_fwd(x16))
    g = _fell_back("gelu_fwd", lambda: nb_gelu.gelu_fwd(x16, "tanh"))
    np.testing.assert_array_equal(g, R.gelu_fwd(x16, "tanh"))
    empty = np.zeros((0, 5), np.float32)
    assert _fell_back("log_softmax_fwd", lambda: nb_softmax.log_softmax_fwd(empty)).shape == (0, 5)
    y, mean, rstd = _fell_back("layer_norm_fwd",
                               lambda: nb_ln.layer_norm_fwd(empty, None, None, 1e-5))
    assert y.shape == (0, 5) and mean.shape == (0,)


def test_mismatched_or_unusual_arguments_fall_back_to_the_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    # a float mask is not the kernel's boolean mask
    fmask = (rng.random((4, 6)) > 0.5).astype(np.float32)
    np.testing.assert_array_equal(
        _fell_back("dropout_fwd", lambda: nb_dropout.dropout_fwd(x, fmask, 0.5)),
        R.dropout_fwd(x, fmask, 0.5))
    # float64 class weights with float32 logits: the reference's upcast, not a silent cast
    t = np.array([0, 1, 2, 3])
    w64 = np.ones(6)
    losses, _ = _fell_back("cross_entropy_fwd", lambda: nb_ce.cross_entropy_fwd(x, t, weight=w64))
    assert losses.dtype == R.cross_entropy_fwd(x, t, weight=w64)[0].dtype
    # AdamW cannot update a non-contiguous p in place through a flat view
    p = np.ones((6, 4), np.float32).T
    p_ref = p.copy()
    g = np.full((4, 6), 0.5, np.float32)
    m, v, m_ref, v_ref = (np.zeros((4, 6), np.float32) for _ in range(4))
    _fell_back("adamw_update",
               lambda: nb_adamw.adamw_update(p, g, m, v, 1, 0.1, 0.9, 0.999, 1e-8, 0.0))
    R.adamw_update(p_ref, g, m_ref, v_ref, 1, 0.1, 0.9, 0.999, 1e-8, 0.0)
    np.testing.assert_array_equal(p, p_ref)
