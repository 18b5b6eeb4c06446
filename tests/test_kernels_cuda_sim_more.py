"""The Numba-CUDA kernels of the elementwise and contrastive families, held to the reference.

GELU (exact and tanh), AdamW and NT-Xent in ``kernels/cuda`` are compared with
``kernels/reference.py``, forward and backward (AdamW: p, m and v after each of several steps),
over hypothesis-drawn tiny shapes, both dtypes and edge values: |x| up to 1e30 for GELU (and the
limits at 1e200, where the reference's tanh-form backward overflows to NaN), weight decay 0 and
> 0, first steps and late steps for AdamW, rows of zeros (norm clamped at 1e-12), tiny and large
rows for NT-Xent. Sizes go past one block of 16 threads and, for the grid-stride loops, past the
simulator's grid of 2 blocks (32 threads), so every loop wraps at least once.

Runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1 python -m pytest ...``; the variable
must be set before numba.cuda is first imported, so the test does not set it) or on a real GPU
with CuPy; otherwise the module is skipped.

How a result is compared: the reference runs in float64 on the same values (a float32 input is
widened exactly). GELU and AdamW: the kernel's result, in the input's dtype, must satisfy
|got - want| <= TOL * eps(dtype) * (|want| + scale), TOL = 64 ulps, scale the magnitude that sets
the absolute error. NT-Xent: the tolerance of tests/test_kernels_cpu_nt_xent.py, which grows with
the feature size d and 1 / temperature (the error of a similarity, amplified by exp). NaN never
passes.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_asserts import assert_close, nt_xent_dz_magnitude

from cuda_sim import SIMULATOR, skip_unless_cuda_or_simulator, to_device, to_host  # noqa: E402,F401

skip_unless_cuda_or_simulator()

from tinygrad_pt.kernels import reference as R  # noqa: E402
from tinygrad_pt.kernels.cuda import adamw as cu_adamw  # noqa: E402
from tinygrad_pt.kernels.cuda import gelu as cu_gelu  # noqa: E402
from tinygrad_pt.kernels.cuda import nt_xent as cu_nt_xent  # noqa: E402

TOL = 64
DTYPES = (np.float32, np.float64)
# 0-d, one element, below one block, above the simulator's grid of 32 threads (several shapes)
SHAPES = st.sampled_from([(), (1,), (5,), (33,), (2, 3, 7), (70,)])
FEW = settings(max_examples=10, deadline=None)


def assert_ulps(got, want, dtype, scale=1.0, what=""):
    """|got - want| <= TOL ulps of dtype times (|want| + scale), elementwise, got of dtype."""
    tol = TOL * np.finfo(dtype).eps * (np.abs(want) + scale)
    assert_close(what, to_host(got), want, tol, dtype)


f64 = lambda a: a.astype(np.float64)  # noqa: E731


# --------------------------------------------------------------------------------------------------
# GELU


@st.composite
def gelu_inputs(draw, dtype):
    """x of a tiny shape: normal * 4 (the curved part), or |x| log-uniform in [1e-3, 1e30] with
    either sign; sometimes a strided view."""
    shape = draw(SHAPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = rng.standard_normal(shape) * 4.0
    else:
        x = 10.0 ** rng.uniform(-3.0, 30.0, shape) * rng.choice([-1.0, 1.0], shape)
    x = np.asarray(x, dtype)
    if x.ndim and draw(st.booleans()):  # every other element of a wider array: not contiguous
        wide = np.repeat(x, 2, axis=-1)
        x = wide[..., ::2]
    return x, rng


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@FEW
@given(dtype=st.sampled_from(DTYPES), data=st.data())
def test_gelu_matches_reference(approximate, dtype, data):
    x, rng = data.draw(gelu_inputs(dtype))
    y = cu_gelu.gelu_fwd(to_device(x), approximate)
    assert_ulps(y, R.gelu_fwd(f64(x), approximate), dtype, 1.0, "gelu_fwd")

    dy = np.asarray(rng.standard_normal(x.shape), dtype)
    dx = cu_gelu.gelu_bwd(to_device(dy), to_device(x), approximate)
    want = R.gelu_bwd(f64(dy), f64(x), approximate)
    assert_ulps(dx, want, dtype, max(float(np.abs(dy).max(initial=0.0)), 1e-300), "gelu_bwd")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_saturates_without_nan(approximate, dtype):
    """From |x| = 1e4 on GELU(x) is exactly x or -0 and GELU'(x) 1 or 0, for every finite x. The
    reference computes x^3 unclamped: in float64 its tanh-form backward is NaN from |x| ~ 1.3e154
    on; the kernel, which clamps x before the cubic, is not."""
    big = [1e4, 1e30, 3e38] + ([1e154, 1e200, 1.7e308] if dtype == np.float64 else [])
    x = np.array([s * v for v in big for s in (1.0, -1.0)], dtype)
    y = to_host(cu_gelu.gelu_fwd(to_device(x), approximate))
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0.0))
    assert np.signbit(y[x < 0]).all()  # x * 0 with x < 0: -0, as the reference
    dx = to_host(cu_gelu.gelu_bwd(to_device(np.ones_like(x)), to_device(x), approximate))
    np.testing.assert_array_equal(dx, np.where(x > 0, 1.0, 0.0))
    with np.errstate(over="ignore", invalid="ignore"):
        want = R.gelu_bwd(np.ones(x.shape), f64(x), approximate)
    finite = np.isfinite(want)
    assert finite[np.abs(x) <= 3e38].all()  # the reference too, up to float32's range
    np.testing.assert_array_equal(dx[finite], want[finite])


def test_gelu_plain_values():
    """Against Python's math, not the reference's formulas: GELU(x) = x (1 + erf(x / sqrt 2)) / 2,
    the tanh form as GPT-2 writes it, and central differences of each for the derivative."""
    x = np.linspace(-4.0, 4.0, 37)
    exact = lambda v: v * (1.0 + math.erf(v / math.sqrt(2.0))) / 2.0  # noqa: E731
    approx = lambda v: 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi)  # noqa: E731
                                                  * (v + 0.044715 * v ** 3)))
    for approximate, fn in (("none", exact), ("tanh", approx)):
        y = to_host(cu_gelu.gelu_fwd(to_device(x), approximate))
        dx = to_host(cu_gelu.gelu_bwd(to_device(np.ones_like(x)), to_device(x), approximate))
        for i, v in enumerate(x.tolist()):
            assert y[i] == pytest.approx(fn(v), rel=1e-13, abs=1e-15)
            h = 1e-6
            assert dx[i] == pytest.approx((fn(v + h) - fn(v - h)) / (2 * h), rel=1e-7, abs=1e-9)


def test_gelu_bad_input():
    with pytest.raises(TypeError, match=r"gelu_fwd: x has dtype int64"):
        cu_gelu.gelu_fwd(to_device(np.zeros(3, np.int64)))
    with pytest.raises(TypeError, match=r"gelu_bwd: the arrays must share one dtype"):
        cu_gelu.gelu_bwd(to_device(np.zeros(3, np.float32)), to_device(np.zeros(3)))
    with pytest.raises(ValueError, match=r"gelu_bwd: dy shape \(4,\) != x shape \(3,\)"):
        cu_gelu.gelu_bwd(to_device(np.zeros(4)), to_device(np.zeros(3)), "tanh")
    empty = to_host(cu_gelu.gelu_fwd(to_device(np.zeros((0, 3), np.float32))))
    assert empty.shape == (0, 3) and empty.dtype == np.float32


# --------------------------------------------------------------------------------------------------
# AdamW


@FEW
@given(dtype=st.sampled_from(DTYPES), shape=SHAPES, weight_decay=st.sampled_from([0.0, 0.1]),
       betas=st.sampled_from([(0.9, 0.999), (0.0, 0.99), (0.5, 0.9)]),
       first_step=st.sampled_from([1, 2, 1000]), steps=st.integers(1, 4),
       lr=st.sampled_from([1e-3, 0.1]), seed=st.integers(0, 2**32 - 1))
def test_adamw_matches_reference(dtype, shape, weight_decay, betas, first_step, steps, lr, seed):
    """Several steps from fresh state (first_step 1) or as if resumed late (bias corrections ~1),
    the kernel's float32/float64 p, m, v against the reference's float64 ones after each step.
    Some gradients are 0 and some strided. The arrays compared are the ones passed in: an update
    that was not in place would leave them behind the reference."""
    rng = np.random.default_rng(seed)
    beta1, beta2 = betas
    p = np.asarray(rng.standard_normal(shape), dtype)
    if first_step == 1:
        m, v = np.zeros_like(p), np.zeros_like(p)
    else:  # state of a run in progress, v >= m^2 as a run's own state is (bounded steps)
        m = np.asarray(rng.standard_normal(shape) * 0.1, dtype)
        v = np.asarray(m.astype(np.float64) ** 2 + rng.random(shape) * 0.01, dtype)
    p_ref, m_ref, v_ref = f64(p), f64(m), f64(v)
    p_d, m_d, v_d = to_device(p), to_device(m), to_device(v)
    for step in range(first_step, first_step + steps):
        g = rng.standard_normal(shape) * rng.choice([0.0, 1e-3, 1.0], shape)
        g = np.asarray(g, dtype)
        g_in = np.repeat(g[..., None], 2, axis=-1)[..., 0] if g.ndim and step % 2 else g
        assert cu_adamw.adamw_update(p_d, to_device(g_in), m_d, v_d, step, lr, beta1, beta2,
                                     1e-8, weight_decay) is None
        R.adamw_update(p_ref, f64(g), m_ref, v_ref, step, lr, beta1, beta2, 1e-8, weight_decay)
        g_scale = float(np.abs(g).max(initial=0.0))
        what = f"after step {step}"
        assert_ulps(m_d, m_ref, dtype, g_scale, f"m {what}")
        assert_ulps(v_d, v_ref, dtype, g_scale * g_scale, f"v {what}")
        # p moves by about lr per step; its error is a few ulps of p plus a few of that move
        assert_ulps(p_d, p_ref, dtype, 4.0 * lr, f"p {what}")


def test_adamw_one_step_by_a_loop():
    """One step against PyTorch's rule written as a plain loop over elements."""
    p = np.array([1.0, -2.0, 0.5, 0.0])
    g = np.array([0.1, 0.2, -0.3, 0.0])
    m = np.array([0.01, 0.0, -0.02, 0.0])
    v = np.array([1e-4, 0.0, 4e-4, 0.0])
    lr, b1, b2, eps, wd, step = 0.01, 0.9, 0.999, 1e-8, 0.1, 3
    want_p, want_m, want_v = [], [], []
    for pi, gi, mi, vi in zip(p.tolist(), g.tolist(), m.tolist(), v.tolist()):
        pi = pi - lr * wd * pi
        mi = b1 * mi + (1 - b1) * gi
        vi = b2 * vi + (1 - b2) * gi * gi
        m_hat, v_hat = mi / (1 - b1 ** step), vi / (1 - b2 ** step)
        want_p.append(pi - lr * m_hat / (math.sqrt(v_hat) + eps))
        want_m.append(mi)
        want_v.append(vi)
    p_d, m_d, v_d = to_device(p.copy()), to_device(m.copy()), to_device(v.copy())
    cu_adamw.adamw_update(p_d, to_device(g), m_d, v_d, step, lr, b1, b2, eps, wd)
    np.testing.assert_allclose(to_host(p_d), want_p, rtol=1e-14)
    np.testing.assert_allclose(to_host(m_d), want_m, rtol=1e-14)
    np.testing.assert_allclose(to_host(v_d), want_v, rtol=1e-14)


def test_adamw_non_contiguous_state_runs_the_reference_and_says_so():
    rng = np.random.default_rng(3)
    p = rng.standard_normal((4, 6))[:, ::2]  # a view: no flat view to update in place
    g, m, v = rng.standard_normal((4, 3)), np.zeros((4, 3)), np.zeros((4, 3))
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    p_d, m_d, v_d = to_device(p), to_device(m), to_device(v)
    with pytest.warns(RuntimeWarning, match=r"adamw_update: p, m or v is not C-contiguous"):
        cu_adamw.adamw_update(p_d, to_device(g), m_d, v_d, 1, 0.1, 0.9, 0.999, 1e-8, 0.1)
    R.adamw_update(p_ref, g, m_ref, v_ref, 1, 0.1, 0.9, 0.999, 1e-8, 0.1)
    np.testing.assert_array_equal(to_host(p_d), p_ref)
    np.testing.assert_array_equal(to_host(m_d), m_ref)


def test_adamw_bad_input():
    z32, z64 = to_device(np.zeros(3, np.float32)), to_device(np.zeros(3))
    with pytest.raises(TypeError, match=r"adamw_update: the arrays must share one dtype"):
        cu_adamw.adamw_update(z32, z64, z32, z32, 1, 0.1, 0.9, 0.999, 1e-8, 0.0)
    with pytest.raises(ValueError, match=r"adamw_update: m shape \(4,\) != p shape \(3,\)"):
        cu_adamw.adamw_update(z64, z64, to_device(np.zeros(4)), z64, 1, 0.1, 0.9, 0.999, 1e-8,
                              0.0)
    with pytest.raises(ValueError, match=r"adamw_update: step is 0; expected a count from 1"):
        cu_adamw.adamw_update(z64, z64, z64, z64, 0, 0.1, 0.9, 0.999, 1e-8, 0.0)


# --------------------------------------------------------------------------------------------------
# NT-Xent

C = 16.0  # the CPU kernel test's constant: its worst case over 200 random cases needed 5.6


def nt_xent_tolerances(u, norms, probs, dloss, tau, dtype):
    """Elementwise tolerances (tests/test_kernels_cpu_nt_xent.py's model): a similarity carries
    about eps * d / tau of error, which exp turns into a relative error of each probability. The
    backward, run on the same saved arrays as the reference, errs only by rounding and by its sums
    of m and d terms (float64 ones for a float64 dtype): C * eps * (m + d) times its formula
    taken on absolute values."""
    m, d = u.shape
    info = np.finfo(dtype)
    growth = C * info.eps * (1.0 + d / tau)
    dz_abs = nt_xent_dz_magnitude(u, norms, probs, dloss, tau)
    return {
        "loss": growth * (1.0 + 1.0 / tau + math.log(m)),
        "u": C * info.eps * d * (np.abs(u) + info.tiny),
        "norms": C * info.eps * d * norms,
        "probs": growth * probs + C * info.tiny,
        "dz": C * info.eps * (m + d) * dz_abs + C * info.tiny,
    }


def check_nt_xent(z1, z2, tau, dtype, dloss):
    """Forward and backward of the kernels against the reference, within nt_xent_tolerances."""
    n = len(z1)
    loss, u, norms, probs = cu_nt_xent.nt_xent_fwd(to_device(z1), to_device(z2), tau)
    want_loss, want_u, want_norms, want_probs = R.nt_xent_fwd(f64(z1), f64(z2), tau)
    tol = nt_xent_tolerances(want_u, want_norms, want_probs, dloss, tau, dtype)
    assert to_host(loss).shape == ()
    assert_close("loss", to_host(loss), want_loss, tol["loss"], dtype)
    assert_close("u", to_host(u), want_u, tol["u"], dtype)
    assert_close("norms", to_host(norms), want_norms, tol["norms"], dtype)
    assert_close("probs", to_host(probs), want_probs, tol["probs"], dtype)
    assert (np.diag(to_host(probs)) == 0).all()  # self-similarity excluded, exactly

    # the backward from the kernel's own (rounded) saved arrays, as the op calls it
    u, norms, probs = to_host(u), to_host(norms), to_host(probs)
    dz1, dz2 = cu_nt_xent.nt_xent_bwd(to_device(np.asarray(dloss, dtype)), to_device(u),
                                      to_device(norms), to_device(probs), tau)
    want_dz1, want_dz2 = R.nt_xent_bwd(dloss, f64(u), f64(norms), f64(probs), tau)
    tol = nt_xent_tolerances(f64(u), f64(norms), f64(probs), dloss, tau, dtype)["dz"]
    assert_close("dz1", to_host(dz1), want_dz1, tol[:n], dtype)
    assert_close("dz2", to_host(dz2), want_dz2, tol[n:], dtype)


@FEW
@given(n=st.sampled_from([1, 2, 5]), d=st.sampled_from([1, 3, 17]),
       tau=st.sampled_from([0.07, 0.5, 2.0]), dtype=st.sampled_from(DTYPES),
       scale=st.sampled_from([1.0, 1.0, 1e4, 1e-20]), zero_row=st.booleans(),
       dloss=st.floats(-3.0, 3.0), seed=st.integers(0, 2**32 - 1))
def test_nt_xent_matches_reference(n, d, tau, dtype, scale, zero_row, dloss, seed):
    """N = 1 (each row's only other row is its positive), 2 and 5; D = 17 past one block of 16
    threads; a row of zeros or rows of norm ~1e-20 (norm clamped at 1e-12) and rows of norm ~1e4.
    (2N past one block: test_nt_xent_past_one_block, as the simulator is slow per block.)"""
    rng = np.random.default_rng(seed)
    z1, z2 = (np.asarray(rng.standard_normal((n, d)) * scale, dtype) for _ in range(2))
    if zero_row:
        z2[n // 2] = 0.0
    check_nt_xent(z1, z2, tau, dtype, dloss)


def test_nt_xent_past_one_block():
    """2N = 18 rows and D = 17 features: both past one block of 16 threads, so each thread takes
    two columns of S in the forward and two features in the normalisation and the backward. One
    row of zeros, and one of norm 0.5e-12: clamped, yet u has norm 0.5, so the backward's
    clamped branch (no radial part removed) differs visibly from the other."""
    rng = np.random.default_rng(21)
    z1, z2 = (rng.standard_normal((9, 17)).astype(np.float32) for _ in range(2))
    z1[4] = 0.0
    z2[2] *= np.float32(0.5e-12 / np.linalg.norm(z2[2]))
    check_nt_xent(z1, z2, 0.1, np.float32, 1.5)


def test_nt_xent_loss_by_a_loop():
    """The loss against an explicit loop (independent of both implementations' formulas)."""
    rng = np.random.default_rng(12)
    z1, z2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    z = np.concatenate([z1, z2])
    u = [row / math.sqrt(sum(c * c for c in row)) for row in z]
    total = 0.0
    for i in range(6):
        sims = {j: float(np.dot(u[i], u[j])) / 0.5 for j in range(6) if j != i}
        total += math.log(sum(math.exp(s) for s in sims.values())) - sims[(i + 3) % 6]
    loss = to_host(cu_nt_xent.nt_xent_fwd(to_device(z1), to_device(z2), 0.5)[0])
    assert float(loss) == pytest.approx(total / 6, rel=1e-12)


def test_nt_xent_dloss_forms_and_views():
    """dloss as a 0-d array or a Python float gives the same gradient; strided views are read."""
    rng = np.random.default_rng(13)
    z1, z2 = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    _, *saved = cu_nt_xent.nt_xent_fwd(to_device(z1), to_device(z2), 0.5)
    a = cu_nt_xent.nt_xent_bwd(to_device(np.asarray(2.0, np.float32)), *saved, 0.5)
    b = cu_nt_xent.nt_xent_bwd(2.0, *saved, 0.5)
    for x, y in zip(a, b):
        x, y = to_host(x), to_host(y)
        assert x.dtype == np.float32 and x.shape == (4, 3)
        np.testing.assert_array_equal(x, y)
    wide = rng.standard_normal((4, 6))
    got = cu_nt_xent.nt_xent_fwd(to_device(wide[:, ::2]), to_device(wide[:, 1::2]), 0.5)
    want = R.nt_xent_fwd(wide[:, ::2], wide[:, 1::2], 0.5)
    for name, g, w in zip(("loss", "u", "norms", "probs"), got, want):
        assert_ulps(g, w, np.float64, 1.0, name)


def test_nt_xent_bad_input():
    z = to_device(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"nt_xent_fwd: z1 has dtype int64"):
        cu_nt_xent.nt_xent_fwd(to_device(np.ones((2, 3), np.int64)), z, 0.5)
    with pytest.raises(TypeError, match=r"nt_xent_fwd: the arrays must share one dtype"):
        cu_nt_xent.nt_xent_fwd(z, to_device(np.ones((2, 3))), 0.5)
    with pytest.raises(ValueError, match=r"nt_xent_fwd: z1 has shape \(2, 3\) and z2 \(2, 4\)"):
        cu_nt_xent.nt_xent_fwd(z, to_device(np.ones((2, 4), np.float32)), 0.5)
    _, u, norms, probs = cu_nt_xent.nt_xent_fwd(z, z, 0.5)
    with pytest.raises(ValueError, match=r"nt_xent_bwd: norms has shape \(4,\) and probs "
                                         r"\(4, 3\); expected \(4,\) and \(4, 4\)"):
        cu_nt_xent.nt_xent_bwd(1.0, u, norms, probs[:, :3], 0.5)
    with pytest.raises(ValueError, match=r"nt_xent_bwd: u has shape \(3, 3\); expected \(2N, D\)"):
        cu_nt_xent.nt_xent_bwd(1.0, u[:3], norms[:3], probs[:3, :3], 0.5)
    with pytest.raises(ValueError, match=r"nt_xent_bwd: dloss has shape \(2,\)"):
        cu_nt_xent.nt_xent_bwd(np.ones(2), u, norms, probs, 0.5)
