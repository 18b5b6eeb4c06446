"""The Numba CPU attention kernels (kernels/cpu/attention.py) against the reference.

The reference runs in float64 on the same (already rounded) inputs. A kernel may differ from it
by rounding only, and rounding errors grow with what was summed, so each element's tolerance is

    tol = C * eps(dtype) * (1 + max|S|) * magnitude

where max|S| bounds the scores (an error in a score becomes a relative error of its probability
after exp), and magnitude is the same formula evaluated on absolute values (|P| @ |v| for out,
scale * |dS| @ |k| for dq, ...): what the element was summed from, not what is left after
cancellation. C = 16: the worst case over 150 random cases, large scores included, needed 1.5.
A floor of a few times the dtype's smallest normal number covers probabilities that underflow
in float32. On failure the first mismatches are listed with index and both values.
"""
import math
import subprocess
import sys
import tracemalloc

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_asserts import assert_close, attention_reference_and_tolerances
from tinygrad_pt.kernels import reference as R
from tinygrad_pt.kernels.cpu import attention as A

C = 16.0

lengths = st.one_of(st.sampled_from([1, 3, 65, 127]), st.integers(1, 150))
head_dims = st.sampled_from([1, 8, 64])
dtypes = st.sampled_from([np.float32, np.float64])
leads = st.sampled_from([(), (1,), (2,), (2, 3)])


def check_against_reference(q, k, v, causal, scale, dtype, rng, variant="auto"):
    out, lse = A.attention_fwd(q, k, v, causal, scale, variant=variant)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dq, dk, dv = A.attention_bwd(dout, q, k, v, out, lse, causal, scale, variant=variant)
    want = attention_reference_and_tolerances(q, k, v, dout, causal, scale, dtype, C)
    for name, got in (("out", out), ("lse", lse), ("dq", dq), ("dk", dk), ("dv", dv)):
        assert_close(name, got, *want[name], dtype)
        assert np.isfinite(got).all(), f"{name} has NaN or Inf"


def draw(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ----------------------------------------------------------------------------------------------------
# Forward and backward against the reference


@given(leads, lengths, lengths, head_dims, head_dims, st.booleans(), dtypes,
       st.integers(0, 2 ** 32 - 1))
def test_tiled_matches_reference(lead, tq, tk, d, dv, causal, dtype, seed):
    """Odd lengths, tiles that do not divide them, T_q != T_k, D != Dv, causal or not."""
    rng = np.random.default_rng(seed)
    q, k, v = draw(rng, lead + (tq, d), dtype), draw(rng, lead + (tk, d), dtype), \
        draw(rng, lead + (tk, dv), dtype)
    check_against_reference(q, k, v, causal, 1.0 / math.sqrt(d), dtype, rng, variant="tiled")


@given(leads, lengths, lengths, head_dims, head_dims, st.booleans(), dtypes,
       st.integers(0, 2 ** 32 - 1))
def test_blas_variant_matches_reference(lead, tq, tk, d, dv, causal, dtype, seed):
    """The short-sequence variant (BLAS products, one fused softmax pass), forced, on the same
    draws as the tiled kernel."""
    rng = np.random.default_rng(seed)
    q, k, v = draw(rng, lead + (tq, d), dtype), draw(rng, lead + (tk, d), dtype), \
        draw(rng, lead + (tk, dv), dtype)
    check_against_reference(q, k, v, causal, 1.0 / math.sqrt(d), dtype, rng, variant="blas")


def test_auto_picks_blas_for_short_and_tiled_for_long_sequences():
    short = int(math.isqrt(A.BLAS_MAX_SCORES))
    assert A._variant("auto", short, short, 32, 32) == "blas"
    assert A._variant("auto", short + 1, short + 1, 32, 32) == "tiled"
    assert A._variant("auto", 4 * short, 4 * short, A.TILED_MAX_D + 1, 8) == "rows"


@pytest.mark.parametrize("block_q,block_k", [(5, 3), (8, 64), (64, 7)])
@pytest.mark.parametrize("causal", [True, False])
def test_tiled_with_odd_tile_sizes(monkeypatch, block_q, block_k, causal):
    """Tile sizes are runtime arguments: odd ones leave ragged tiles on every edge. (The query
    tile is also shrunk for small batches; 5 stays 5.)"""
    monkeypatch.setattr(A, "BLOCK_Q", block_q)
    monkeypatch.setattr(A, "BLOCK_K", block_k)
    rng = np.random.default_rng(block_q * 100 + block_k)
    q, k, v = draw(rng, (2, 3, 37, 8), np.float64), draw(rng, (2, 3, 41, 8), np.float64), \
        draw(rng, (2, 3, 41, 5), np.float64)
    check_against_reference(q, k, v, causal, 0.3, np.float64, rng, variant="tiled")


@settings(max_examples=10)
@given(st.sampled_from([(), (2,)]), lengths, lengths, head_dims, st.booleans(), dtypes,
       st.integers(0, 2 ** 32 - 1))
def test_rows_variant_matches_reference(lead, tq, tk, d, causal, dtype, seed):
    """The plain variant (the fallback for very large head dims), forced."""
    rng = np.random.default_rng(seed)
    q, k, v = draw(rng, lead + (tq, d), dtype), draw(rng, lead + (tk, d), dtype), \
        draw(rng, lead + (tk, d), dtype)
    check_against_reference(q, k, v, causal, 1.0 / math.sqrt(d), dtype, rng, variant="rows")


@pytest.mark.parametrize("variant", ["tiled", "blas"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [True, False])
def test_large_scores_stay_finite_and_close(dtype, causal, variant):
    """Scores of about +-1e4 (q, k ~ 100 * N(0, 1)): the online softmax rescales without
    overflow; the tolerance grows with max|S| as the rounding of a float32 score does."""
    rng = np.random.default_rng(7)
    q, k, v = draw(rng, (2, 70, 8), dtype, 100.0), draw(rng, (2, 70, 8), dtype, 100.0), \
        draw(rng, (2, 70, 8), dtype)
    scale = 1.0 / math.sqrt(8)
    s = scale * (q.astype(np.float64) @ k.astype(np.float64).swapaxes(-1, -2))
    assert np.abs(s).max() > 1e4  # the regime this test is about
    check_against_reference(q, k, v, causal, scale, dtype, rng, variant=variant)


def test_first_causal_row_copies_the_first_value():
    """With the top-left causal mask query 0 sees key 0 only: out[0] = v[0], lse[0] = S_00."""
    rng = np.random.default_rng(3)
    q, k, v = draw(rng, (4, 9, 8), np.float32), draw(rng, (4, 12, 8), np.float32), \
        draw(rng, (4, 12, 6), np.float32)
    out, lse = A.attention_fwd(q, k, v, True, 0.5)
    np.testing.assert_allclose(out[:, 0], v[:, 0], rtol=1e-6)
    np.testing.assert_allclose(lse[:, 0], 0.5 * (q[:, 0] * k[:, 0]).sum(-1), rtol=1e-5)


def test_non_contiguous_inputs_and_batch_shapes():
    """(B, T, H, D) transposed to (B, H, T, D), as attention heads are made: not contiguous."""
    rng = np.random.default_rng(4)
    q, k, v = (draw(rng, (2, 33, 3, 8), np.float32).transpose(0, 2, 1, 3) for _ in range(3))
    assert not q.flags.c_contiguous
    check_against_reference(q, k, v, True, 0.35, np.float32, rng)
    out, lse = A.attention_fwd(q, k, v, True, 0.35)
    assert out.shape == (2, 3, 33, 8) and lse.shape == (2, 3, 33)


def test_read_only_inputs():
    rng = np.random.default_rng(5)
    q = draw(rng, (3, 10, 8), np.float64)
    q.flags.writeable = False
    out, lse = A.attention_fwd(q, q, q, False, 0.3)
    want_out, want_lse = R.attention_fwd(q, q, q, False, 0.3)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-14)


def test_other_dtypes_and_shapes_go_to_the_reference():
    rng = np.random.default_rng(6)
    q = draw(rng, (2, 5, 4), np.float16)
    out, lse = A.attention_fwd(q, q, q, True, 0.5)
    want_out, want_lse = R.attention_fwd(q, q, q, True, 0.5)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, want_out)
    # Keys of another width than the queries: the reference's (NumPy's) error, not a bad read.
    with pytest.raises(ValueError, match="matmul"):
        A.attention_fwd(draw(rng, (2, 5, 4), np.float32), draw(rng, (2, 5, 3), np.float32),
                        draw(rng, (2, 5, 4), np.float32), False, 0.5)


def test_unknown_variant_is_an_error():
    x = np.ones((1, 2, 2))
    with pytest.raises(ValueError, match=r"attention: unknown variant 'fast'; expected one of "
                                         r"\('auto', 'blas', 'tiled', 'rows'\)"):
        A.attention_fwd(x, x, x, False, 1.0, variant="fast")
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        A.attention_bwd(x, x, x, x, x, x[..., 0], False, 1.0, variant="fast")


def test_mismatch_report_names_index_and_values():
    got = np.array([1.0, 2.0, 3.0])
    with pytest.raises(pytest.fail.Exception, match=r"(?s)1 of 3 elements differ.*at \(1,\): got 2\.0, "
                                                     r"want 2\.5"):
        assert_close("x", got, np.array([1.0, 2.5, 3.0]), np.full(3, 0.1), np.float64)


# ----------------------------------------------------------------------------------------------------
# Memory: O(T) per query row, never a T x T array


def _traced_peak(fn):
    """Peak bytes NumPy allocated (tracemalloc sees NumPy's buffers) while fn ran."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _nrt_allocations(fn):
    """How many arrays Numba's runtime allocated while fn ran (inside compiled code)."""
    from numba.core.runtime import _nrt_python, rtsys  # noqa: PLC0415
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats().alloc
        fn()
        return rtsys.get_allocation_stats().alloc - before
    finally:
        _nrt_python.memsys_disable_stats()


@pytest.mark.parametrize("causal", [True, False])
def test_memory_is_linear_in_sequence_length(causal):
    """At T = 1024 the scores of one head would be 4 MiB (float32). The forward allocates out,
    lse and tile-size scratch; the backward dq, dk, dv, scratch and one T-vector per thread.
    The kernels themselves allocate nothing (all scratch comes from the wrapper, so tracemalloc
    sees every byte)."""
    t, d, bh = 1024, 8, 2
    rng = np.random.default_rng(8)
    q, k, v = (draw(rng, (bh, t, d), np.float32) for _ in range(3))
    out, lse = A.attention_fwd(q, k, v, causal, 0.3, variant="tiled")  # compiled and warm
    dout = np.ones_like(out)
    A.attention_bwd(dout, q, k, v, out, lse, causal, 0.3, variant="tiled")
    threads = numba.get_num_threads()
    scores_bytes = bh * t * t * 4  # what a materialised P would take
    # Tile scratch per thread, forward: k_t (D x BK), a score row, acc (BQ x Dv), m, l.
    fwd_scratch = threads * (d * A.BLOCK_K + A.BLOCK_K + A.BLOCK_Q * d + 2 * A.BLOCK_Q) * 4
    fwd_peak = _traced_peak(lambda: A.attention_fwd(q, k, v, causal, 0.3, variant="tiled"))
    assert fwd_peak <= out.nbytes + lse.nbytes + fwd_scratch + 65536, fwd_peak
    assert fwd_peak < scores_bytes / 20
    # Backward: dq, dk, dv, and per thread k_t, v_t, two score rows per group row, delta (T).
    bwd_scratch = threads * (2 * d * A.BLOCK_K + 2 * 4 * A.BLOCK_K + t) * 4
    bwd_peak = _traced_peak(lambda: A.attention_bwd(dout, q, k, v, out, lse, causal, 0.3,
                                                    variant="tiled"))
    assert bwd_peak <= 3 * q.nbytes + bwd_scratch + 65536, bwd_peak
    assert bwd_peak < scores_bytes / 10
    # Inside the compiled kernels: a fixed handful of runtime allocations (Numba's parallel
    # scheduling), the same at T = 64 as at T = 1024: nothing per tile or per row.
    small = [draw(rng, (bh, 64, d), np.float32) for _ in range(3)]
    counts = {n: _nrt_allocations(lambda: A.attention_fwd(*arrays, causal, 0.3, variant="tiled"))
              for n, arrays in (("small", small), ("large", (q, k, v)))}
    assert counts["small"] == counts["large"] <= 32, counts


# ----------------------------------------------------------------------------------------------------
# Lazy compilation


def test_import_compiles_nothing():
    code = ("import tinygrad_pt.kernels.cpu.attention as A\n"
            "assert not A._fwd_tiled.signatures and not A._bwd_tiled.signatures\n"
            "assert not A._fwd_rows.signatures and not A._bwd_rows.signatures\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
