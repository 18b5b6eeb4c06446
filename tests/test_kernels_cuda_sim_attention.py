"""The Numba-CUDA flash-attention kernels (kernels/cuda/attention.py) against the reference.

Forward (out, lse) and backward (dq, dk, dv) over hypothesis-drawn tiny shapes: batch*head 1 or
2 (with 0, 1 or 2 leading axes), T_q and T_k in {1, 3, 5, 9} drawn apart (so T_q != T_k), head
dims D and Dv in {1, 4, 8} drawn apart, causal or not, float32 and float64. Under the simulator
the kernels use blocks of 4 rows and shared tiles of 3 rows, so lengths of 5 and 9 cross tile
edges with ragged last tiles; one GPU-only test takes lengths past the GPU's tiles. Large scores
(scale 50, |S| in the thousands) must not overflow.

Runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1 python -m pytest ...``; the variable
must be set before numba.cuda is first imported, so the test does not set it) or on a real GPU
with CuPy; otherwise the module is skipped. The simulator runs each GPU thread as a Python
thread, so the shapes are tiny and the examples few.

How a result is compared: the reference runs in float64 on the same values (a float32 input is
widened exactly). The kernels sum in the input's dtype, and rounding errors grow with what was
summed, so each element's bound is

    |got - want| <= TOL * eps(dtype) * (1 + max|S|) * magnitude + floor,   TOL = 16 ulps,

where max|S| bounds the scores (an error in a score becomes a relative error of its probability
after exp) and magnitude is the element's formula on absolute values (|P| @ |v| for out,
scale * |dS| @ |k| for dq, ...): what it was summed from, not what is left after cancellation.
The floor covers probabilities that underflow in float32. NaN and Inf never pass.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st


from cuda_sim import SIMULATOR, skip_unless_cuda_or_simulator, to_device, to_host  # noqa: E402,F401

skip_unless_cuda_or_simulator()

from kernel_asserts import assert_close, attention_reference_and_tolerances  # noqa: E402
from tinygrad_pt.kernels.cuda import attention as cu_attn  # noqa: E402

TOL = 16
DTYPES = (np.float32, np.float64)
LEADS = st.sampled_from([(), (1,), (2,), (1, 2)])  # batch*head 1 or 2
LENGTHS = st.sampled_from([1, 3, 5, 9])
HEAD_DIMS = st.sampled_from([1, 4, 8])


def check_against_reference(q, k, v, causal, scale, rng):
    """The kernels' forward, then their backward from their own out and lse (as an op calls
    them), each result against the float64 reference."""
    dtype = q.dtype
    out, lse = cu_attn.attention_fwd(to_device(q), to_device(k), to_device(v), causal, scale)
    out, lse = to_host(out), to_host(lse)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = cu_attn.attention_bwd(*(to_device(x) for x in (dout, q, k, v, out, lse)), causal,
                                  scale)
    want = attention_reference_and_tolerances(q, k, v, dout, causal, scale, dtype, TOL)
    got = dict(zip(("out", "lse", "dq", "dk", "dv"), (out, lse) + tuple(map(to_host, grads))))
    for name, value in got.items():
        assert np.isfinite(value).all(), f"{name} has NaN or Inf"
        assert_close(name, value, *want[name], dtype)
    return got


def draw(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# --------------------------------------------------------------------------------------------------
# Forward and backward against the reference


@settings(max_examples=40, deadline=None)
@given(lead=LEADS, tq=LENGTHS, tk=LENGTHS, d=HEAD_DIMS, dv=HEAD_DIMS, causal=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_attention_matches_reference(lead, tq, tk, d, dv, causal, dtype, seed):
    rng = np.random.default_rng(seed)
    q, k, v = draw(rng, lead + (tq, d), dtype), draw(rng, lead + (tk, d), dtype), \
        draw(rng, lead + (tk, dv), dtype)
    got = check_against_reference(q, k, v, causal, 1.0 / math.sqrt(d), rng)
    assert got["out"].shape == lead + (tq, dv) and got["lse"].shape == lead + (tq,)
    if causal:  # an independent check: query 0 sees key 0 only, so out[0] = v[0]
        np.testing.assert_allclose(got["out"][..., 0, :], v[..., 0, :],
                                   rtol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [True, False])
def test_large_scores_do_not_overflow(dtype, causal):
    """scale 50 with q, k ~ 3 N(0, 1): |S| in the thousands, where a plain exp(S) overflows in
    both dtypes (float32 past 88, float64 past 709). The online softmax only ever takes exp of
    S - (running max) <= 0."""
    rng = np.random.default_rng(11)
    q, k, v = draw(rng, (2, 9, 8), dtype, 3.0), draw(rng, (2, 7, 8), dtype, 3.0), \
        draw(rng, (2, 7, 4), dtype)
    s = 50.0 * (q.astype(np.float64) @ k.astype(np.float64).swapaxes(-1, -2))
    assert np.abs(s).max() > 1000  # the regime this test is about
    got = check_against_reference(q, k, v, causal, 50.0, rng)
    # independently of the reference: max_j S_ij <= lse_i <= max_j S_ij + log(T_k)
    if causal:
        s = np.where(np.arange(7)[None, :] <= np.arange(9)[:, None], s, -np.inf)
    row_max = s.max(-1)
    slack = 16 * np.finfo(dtype).eps * np.abs(row_max)
    assert (got["lse"] >= row_max - slack).all()
    assert (got["lse"] <= row_max + math.log(7) + slack).all()


@pytest.mark.skipif(SIMULATOR, reason="GPU tile sizes: too slow as Python threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [True, False])
def test_gpu_tiles_with_ragged_edges(dtype, causal):
    """On a GPU (64-row blocks, 32- or 16-row shared tiles): lengths past several tiles, not a
    multiple of them, and the largest head dim the kernels take."""
    rng = np.random.default_rng(12)
    q, k, v = draw(rng, (3, 150, 128), dtype), draw(rng, (3, 77, 128), dtype), \
        draw(rng, (3, 77, 40), dtype)
    check_against_reference(q, k, v, causal, 1.0 / math.sqrt(128), rng)


def test_non_contiguous_inputs():
    """(B, T, H, D) transposed to (B, H, T, D), as attention heads are made: not contiguous."""
    rng = np.random.default_rng(13)
    q, k, v = (draw(rng, (1, 5, 2, 4), np.float64).transpose(0, 2, 1, 3) for _ in range(3))
    assert not q.flags.c_contiguous
    got = check_against_reference(q, k, v, True, 0.5, rng)
    assert got["dq"].shape == (1, 2, 5, 4)


def test_empty_inputs_get_the_reference_answer():
    q = np.zeros((2, 0, 4), np.float32)
    k = np.ones((2, 3, 4), np.float32)
    out, lse = cu_attn.attention_fwd(to_device(q), to_device(k), to_device(k), True, 0.5)
    assert to_host(out).shape == (2, 0, 4) and to_host(lse).shape == (2, 0)


def test_bad_input():
    x = to_device(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match=r"attention_fwd: k has dtype int64"):
        cu_attn.attention_fwd(x, to_device(np.zeros((2, 3, 4), np.int64)), x, False, 1.0)
    with pytest.raises(TypeError, match=r"attention_fwd: the arrays must share one dtype"):
        cu_attn.attention_fwd(x, x, to_device(np.zeros((2, 3, 4))), False, 1.0)
    with pytest.raises(ValueError, match=r"attention_fwd: q \(2, 3, 4\), k \(2, 3, 5\), "
                                         r"v \(2, 3, 4\) do not agree"):
        cu_attn.attention_fwd(x, to_device(np.zeros((2, 3, 5), np.float32)), x, False, 1.0)
    big = to_device(np.zeros((1, 2, 129), np.float32))
    with pytest.raises(ValueError, match=r"attention_fwd: head dims D=129, Dv=129; the CUDA "
                                         r"kernel takes at most 128"):
        cu_attn.attention_fwd(big, big, big, False, 1.0)
    lse = to_device(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"attention_bwd: lse has shape \(2, 4\); expected "
                                         r"\(2, 3\)"):
        cu_attn.attention_bwd(x, x, x, x, x, lse, True, 1.0)
