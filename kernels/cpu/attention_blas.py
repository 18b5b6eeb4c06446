"""Attention at short sequence lengths: one head at a time, its products through BLAS, its softmax
in one fused pass, everything in cache. The ``blas`` variant of kernels/cpu/attention.py, which
picks it below a measured size.

At short T the T x T scores of one head are small (T = 128: 64 KiB in float32), so the memory
argument for flash attention does not hold there, and BLAS's register-tiled products beat the
tiled kernel's vectorised loops several-fold. One parallel loop runs over batch*head; a thread
takes a head and does all of it in a scores buffer of its own, which stays in its core's cache:

    forward   S = q k^T                      (BLAS)
              P = softmax(scale * S, causal), lse = logsumexp per row   (one pass, in S)
              out = P v                      (BLAS)
    backward  S = q k^T, dP = dout v^T       (BLAS)
              P = exp(scale * S - lse), dS = scale * P * (dP - rowsum(dout * out))  (one pass)
              dv = P^T dout, dq = dS k, dk = dS^T q   (BLAS)

Why per head, not batched. The first version made the (BH, T_q, T_k) scores for all heads with
one batched NumPy product, softmaxed them in a parallel pass and multiplied again: at the GPT's
shape (BH = 64, T = 128) that is 4 MB per array, written by BLAS, swept by the pass and read back
from memory, a fresh allocation (page faults) per call, and on two threads it hardly got faster
(the products went parallel inside BLAS, the passes inside Numba: two thread pools taking turns).
Per head, the 64 KiB of scores never leave the cache, nothing of size BH x T x T is allocated, and
the only thread pool is Numba's; the products are single-threaded BLAS calls (``np.dot`` in Numba
calls SciPy's BLAS), which the threads below are set to for the call.

Same names, arguments and results as the reference and the flash kernels: (BH, T_q, D)-folded,
C-contiguous float32/float64 arrays come in (attention.py folds them), the causal mask is the
reference's (query i sees key j when j <= i). Memory: one (T_q, T_k) buffer per thread in the
forward, two in the backward; attention.py uses this variant only below ``BLAS_MAX_SCORES``
scores per head.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from tinygrad_pt import threads  # absolute: kernels/ installs as tinygrad_pt.kernels

from ._common import HELPER, finite_or_zero, row_dot, row_max, row_sum, run_on_threads, vexp

# np.dot in Numba code calls SciPy's BLAS (scipy.linalg.cython_blas), which loads its own OpenBLAS
# on first use. Loaded here, now, so that the thread policy sees it and can set it to one thread
# before the first product inside a parallel loop (a multi-threaded BLAS call per Numba thread
# would oversubscribe the cores).
import scipy.linalg.cython_blas  # noqa: E402,F401  (imported for its side effect)

threads.blas_library_loaded()


@njit(**HELPER)
def _softmax_head(s, causal, scale, lse):
    """S (T_q, T_k) of one head -> P in place, and lse (T_q,). As the softmax kernel
    (kernels/cpu/softmax.py): vectorised sweeps over a row in cache, exp by vexp, the sum in
    float64; the masked tail of a causal row is set to 0."""
    tq, tk = s.shape
    for i in range(tq):
        row = s[i]
        n = min(i + 1, tk) if causal else tk  # >= 1: query i always sees key 0
        seen, tail = row[:n], row[n:]
        for j in range(n):
            seen[j] = seen[j] * scale
        m = finite_or_zero(row_max(seen))
        for j in range(n):
            seen[j] = vexp(seen[j] - m)
        total = row_sum(seen)
        inv = 1.0 / total
        for j in range(n):
            seen[j] = seen[j] * inv
        for j in range(tail.shape[0]):  # indexed from 0, not from n: no negative-index check
            tail[j] = 0
        lse[i] = m + np.log(total)


@njit(**HELPER)
def _dscores_head(s, dp, dout, out, causal, scale, lse, delta):
    """S -> P and dP -> dS = scale * P * (dP - rowsum(dout * out)), both in place, for one head.
    delta (T_q,) receives the row sums in the data's dtype, so that the sweep stays in it."""
    tq, tk = s.shape
    for i in range(tq):
        srow, dprow = s[i], dp[i]
        n = min(i + 1, tk) if causal else tk
        delta[i] = row_dot(dout[i], out[i])
        d_i, shift = delta[i], lse[i]
        for j in range(n):
            p = vexp(srow[j] * scale - shift)
            srow[j] = p
            dprow[j] = scale * p * (dprow[j] - d_i)
        s_tail, dp_tail = srow[n:], dprow[n:]
        for j in range(s_tail.shape[0]):
            s_tail[j] = 0
            dp_tail[j] = 0


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _fwd_heads(q, k, v, causal, scale, out, lse, scores):
    """out, lse for every head, in parallel; scores (threads, T_q, T_k): one buffer per thread."""
    for b in prange(q.shape[0]):
        s = scores[numba.get_thread_id()]  # owned by this thread for the whole iteration
        np.dot(q[b], k[b].T, s)
        _softmax_head(s, causal, scale, lse[b])
        np.dot(s, v[b], out[b])


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _bwd_heads(dout, q, k, v, out, lse, causal, scale, dq, dk, dv, scores, dscores, delta):
    """dq, dk, dv for every head, in parallel; scores, dscores: one (T_q, T_k) buffer per thread
    each; delta (BH, T_q) scratch."""
    for b in prange(q.shape[0]):
        t = numba.get_thread_id()
        s, dp = scores[t], dscores[t]
        np.dot(q[b], k[b].T, s)
        np.dot(dout[b], v[b].T, dp)
        _dscores_head(s, dp, dout[b], out[b], causal, scale, lse[b], delta[b])
        np.dot(s.T, dout[b], dv[b])
        np.dot(dp, k[b], dq[b])
        np.dot(dp.T, q[b], dk[b])


def _threads(bh, tq, tk):
    """The Numba threads for BH heads of T_q x T_k scores (the policy's work measure: the scores;
    no more threads than heads), with every BLAS library on one thread for the products inside."""
    threads.prepare_blas(0)  # 0 multiply-adds: one BLAS thread (SciPy's as NumPy's)
    return min(threads.kernel_threads(bh * tq * tk), bh)


def attention_fwd(q3, k3, v3, causal, scale):
    """(out, lse) of folded (BH, T, D) float arrays; scale a scalar of their dtype."""
    (bh, tq, _), tk = q3.shape, k3.shape[1]
    out = np.empty((bh, tq, v3.shape[2]), q3.dtype)
    lse = np.empty((bh, tq), q3.dtype)
    n = _threads(bh, tq, tk)
    run_on_threads(n, _fwd_heads, q3, k3, v3, bool(causal), scale, out, lse,
                   np.empty((n, tq, tk), q3.dtype))
    return out, lse


def attention_bwd(dout3, q3, k3, v3, out3, lse3, causal, scale):
    """(dq, dk, dv) of folded arrays, recomputing P from q, k and lse."""
    (bh, tq, _), tk = q3.shape, k3.shape[1]
    dq, dk, dv = np.empty_like(q3), np.empty_like(k3), np.empty_like(v3)
    n = _threads(bh, tq, tk)
    run_on_threads(n, _bwd_heads, dout3, q3, k3, v3, out3, lse3, bool(causal), scale, dq, dk, dv,
                   np.empty((n, tq, tk), q3.dtype), np.empty((n, tq, tk), q3.dtype),
                   np.empty_like(lse3))
    return dq, dk, dv
