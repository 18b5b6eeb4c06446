"""Attention at short sequence lengths: one head at a time, its products through BLAS, its softmax
in one fused pass, everything in cache. The ``blas`` variant of kernels/cpu/attention.py, which
picks it below a measured size.

At short T the T x T scores of one head are small (T = 128: 64 KiB in float32), so the memory
argument for flash attention does not hold there, and BLAS's register-tiled products beat the
tiled kernel's vectorised loops several-fold. One parallel loop runs over batch*head; a thread
takes a head and does all of it, a block of queries at a time, in buffers of its own that stay
in its core's cache (causal: a block's keys end at its last query, so nothing above the diagonal
is multiplied):

    forward   S = q_blk k^T                      (BLAS)
              P = softmax(scale * S, causal), lse = logsumexp per row   (one pass, in S)
              out_blk = P v                      (BLAS)
    backward  S = q_blk k^T, dP = dout_blk v^T   (BLAS)
              P = exp(scale * S - lse), dS = scale * P * (dP - rowsum(dout * out))  (one pass)
              dq_blk = dS k; dv += P^T dout_blk, dk += dS^T q_blk   (BLAS)

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
reference's (query i sees key j when j <= i). Memory: one (block, T_k) buffer per thread in the
forward, two and two (T_k, D) in the backward; attention.py uses this variant only below
``BLAS_MAX_SCORES`` scores per head.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from tinygrad_pt import threads  # absolute: kernels/ installs as tinygrad_pt.kernels

from ._common import HELPER, row_dot, run_on_threads, shifted_exp_in_place, vexp

# np.dot in Numba code calls SciPy's BLAS (scipy.linalg.cython_blas), which loads its own OpenBLAS
# on first use. Loaded here, now, so that the thread policy sees it and can set it to one thread
# before the first product inside a parallel loop (a multi-threaded BLAS call per Numba thread
# would oversubscribe the cores).
import scipy.linalg.cython_blas  # noqa: E402,F401  (imported for its side effect)

threads.blas_library_loaded()

# Attention runs in blocks of queries. Causal, a block meets the keys up to its last query only:
# the scores above the diagonal are never computed (at T = 1024 the step is 1.6x faster than
# with whole heads; at T = 128, two blocks, as fast). At least BLOCK_Q queries a block (BLAS's
# efficiency falls off below), at most MAX_BLOCKS blocks: a thread's buffers hold one block's
# scores, so memory is (T_q / MAX_BLOCKS) x T_k per buffer, not T_q x T_k.
BLOCK_Q = 64
MAX_BLOCKS = 8


@njit(**HELPER)
def _softmax_block(s, causal, scale, lse, q0):
    """S (rows, keys) of one block of queries, the first being query q0 -> P in place, and lse
    (rows,). As the softmax kernel (kernels/cpu/softmax.py): vectorised sweeps over a row in
    cache, exp by vexp, the sum in float64; the masked tail of a causal row is set to 0."""
    rows, keys = s.shape
    for r in range(rows):
        row = s[r]
        n = min(q0 + r + 1, keys) if causal else keys  # >= 1: query i always sees key 0
        seen, tail = row[:n], row[n:]
        for j in range(n):
            seen[j] = seen[j] * scale
        m, total = shifted_exp_in_place(seen)
        inv = 1.0 / total
        for j in range(n):
            seen[j] = seen[j] * inv
        for j in range(tail.shape[0]):  # indexed from 0, not from n: no negative-index check
            tail[j] = 0
        lse[r] = m + np.log(total)


@njit(**HELPER)
def _dscores_block(s, dp, dout, out, causal, scale, lse, delta, q0):
    """S -> P and dP -> dS = scale * P * (dP - rowsum(dout * out)), both in place, for one
    block of queries (the first being q0). delta (rows,) receives the row sums in the data's
    dtype, so that the sweep stays in it."""
    rows, keys = s.shape
    for r in range(rows):
        srow, dprow = s[r], dp[r]
        n = min(q0 + r + 1, keys) if causal else keys
        delta[r] = row_dot(dout[r], out[r])
        d_i, shift = delta[r], lse[r]
        for j in range(n):
            p = vexp(srow[j] * scale - shift)
            srow[j] = p
            dprow[j] = scale * p * (dprow[j] - d_i)
        s_tail, dp_tail = srow[n:], dprow[n:]
        for j in range(s_tail.shape[0]):
            s_tail[j] = 0
            dp_tail[j] = 0


@njit(**HELPER)
def _keys_of(q0, q1, tk, causal):
    """How many keys the queries q0..q1-1 see: up to the block's last query when causal."""
    return min(q1, tk) if causal else tk


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _fwd_heads(q, k, v, causal, scale, block, out, lse, scores):
    """out, lse for every head, in parallel, a block of `block` queries at a time; scores
    (threads, block * T_k): one buffer per thread."""
    tq, tk = q.shape[1], k.shape[1]
    for b in prange(q.shape[0]):
        buf = scores[numba.get_thread_id()]  # owned by this thread for the whole iteration
        for q0 in range(0, tq, block):
            q1 = min(q0 + block, tq)
            keys = _keys_of(q0, q1, tk, causal)
            s = buf[:(q1 - q0) * keys].reshape((q1 - q0, keys))
            np.dot(q[b, q0:q1], k[b, :keys].T, s)
            _softmax_block(s, causal, scale, lse[b, q0:q1], q0)
            np.dot(s, v[b, :keys], out[b, q0:q1])


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _bwd_heads(dout, q, k, v, out, lse, causal, scale, block, dq, dk, dv, scores, dscores,
               dk_part, dv_part, delta):
    """dq, dk, dv for every head, in parallel, a block of queries at a time; scores, dscores:
    one (block * T_k) buffer per thread each; dk_part, dv_part: one (T_k, D) buffer per thread
    each, for a block's share of dk and dv (added up over the blocks); delta (BH, T_q) scratch."""
    tq, tk = q.shape[1], k.shape[1]
    for b in prange(q.shape[0]):
        t = numba.get_thread_id()
        dk[b, :, :] = 0
        dv[b, :, :] = 0
        for q0 in range(0, tq, block):
            q1 = min(q0 + block, tq)
            keys = _keys_of(q0, q1, tk, causal)
            s = scores[t, :(q1 - q0) * keys].reshape((q1 - q0, keys))
            dp = dscores[t, :(q1 - q0) * keys].reshape((q1 - q0, keys))
            np.dot(q[b, q0:q1], k[b, :keys].T, s)
            np.dot(dout[b, q0:q1], v[b, :keys].T, dp)
            _dscores_block(s, dp, dout[b, q0:q1], out[b, q0:q1], causal, scale, lse[b, q0:q1],
                           delta[b, q0:q1], q0)
            np.dot(dp, k[b, :keys], dq[b, q0:q1])
            dv_blk, dk_blk = dv_part[t, :keys], dk_part[t, :keys]
            np.dot(s.T, dout[b, q0:q1], dv_blk)
            np.dot(dp.T, q[b, q0:q1], dk_blk)
            dv[b, :keys] += dv_blk
            dk[b, :keys] += dk_blk


def _block(tq):
    """Queries per block: BLOCK_Q or more, at most MAX_BLOCKS blocks. Causal, the keys above a
    block's diagonal are never multiplied; either way a thread's buffers hold one block's scores,
    (T_q / MAX_BLOCKS) x T_k at most, not T_q x T_k."""
    return max(BLOCK_Q, -(-tq // MAX_BLOCKS))


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
    n, block = _threads(bh, tq, tk), _block(tq)
    run_on_threads(n, _fwd_heads, q3, k3, v3, bool(causal), scale, block, out, lse,
                   np.empty((n, block * tk), q3.dtype))
    return out, lse


def attention_bwd(dout3, q3, k3, v3, out3, lse3, causal, scale):
    """(dq, dk, dv) of folded arrays, recomputing P from q, k and lse."""
    (bh, tq, d), (tk, dv_dim) = q3.shape, v3.shape[1:]
    dq, dk, dv = np.empty_like(q3), np.empty_like(k3), np.empty_like(v3)
    n, block = _threads(bh, tq, tk), _block(tq)
    dtype = q3.dtype
    run_on_threads(n, _bwd_heads, dout3, q3, k3, v3, out3, lse3, bool(causal), scale, block, dq,
                   dk, dv, np.empty((n, block * tk), dtype), np.empty((n, block * tk), dtype),
                   np.empty((n, tk, d), dtype), np.empty((n, tk, dv_dim), dtype),
                   np.empty_like(lse3))
    return dq, dk, dv
