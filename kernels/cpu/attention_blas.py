"""Attention at short sequence lengths: the scores through BLAS, the softmax through one fused Numba
pass. The ``blas`` variant of kernels/cpu/attention.py, which picks it below a measured size.

At short T the T x T scores of one head are small (T = 128: 64 KiB in float32), so the memory
argument for flash attention does not hold there, and BLAS's register-tiled products beat the
tiled kernel's vectorised loops several-fold. What is left to fuse is everything between the
products, which NumPy would do in half a dozen passes over (BH, T_q, T_k) arrays:

    forward   S = q k^T                      (BLAS, batched)
              P = softmax(scale * S, causal), lse = logsumexp per row   (one Numba pass, in S)
              out = P v                      (BLAS)
    backward  S = q k^T, dP = dout v^T       (BLAS)
              P = exp(scale * S - lse), dS = scale * P * (dP - rowsum(dout * out))  (one pass)
              dv = P^T dout, dq = dS k, dk = dS^T q   (BLAS)

Same names, arguments and results as the reference and the flash kernels: (BH, T_q, D)-folded,
C-contiguous float32/float64 arrays come in (attention.py folds them), the causal mask is the
reference's (query i sees key j when j <= i). Memory: two (BH, T_q, T_k) arrays in the backward,
one in the forward; attention.py uses this variant only below ``BLAS_MAX_SCORES`` scores per head.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_pt.threads import prepare_blas  # absolute: kernels/ installs as tinygrad_pt.kernels

from ._common import finite_or_zero, launch, row_dot, row_max, row_sum, vexp


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _softmax_scores(s, causal, scale, lse):
    """S (BH, T_q, T_k) -> P in place, and lse (BH, T_q), row by row in parallel. As the softmax
    kernel (kernels/cpu/softmax.py): vectorised sweeps over a row in cache, exp by vexp, the sum
    in float64; the masked tail of a causal row is set to 0."""
    bh, tq, tk = s.shape
    for r in prange(bh * tq):
        b, i = r // tq, r % tq
        row = s[b, i]
        n = min(i + 1, tk) if causal else tk  # >= 1: query i always sees key 0
        seen = row[:n]
        for j in range(n):
            seen[j] = seen[j] * scale
        m = finite_or_zero(row_max(seen))
        for j in range(n):
            seen[j] = vexp(seen[j] - m)
        total = row_sum(seen)
        inv = 1.0 / total
        for j in range(n):
            seen[j] = seen[j] * inv
        for j in range(n, tk):
            row[j] = 0
        lse[b, i] = m + np.log(total)


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _probs_and_dscores(s, dp, dout, out, causal, scale, lse, delta):
    """S -> P and dP -> dS = scale * P * (dP - rowsum(dout * out)), both in place. delta (BH, T_q)
    receives the row sums in the data's dtype, so that the sweep below stays in it."""
    bh, tq, tk = s.shape
    for r in prange(bh * tq):
        b, i = r // tq, r % tq
        srow, dprow = s[b, i], dp[b, i]
        n = min(i + 1, tk) if causal else tk
        delta[b, i] = row_dot(dout[b, i], out[b, i])
        d_i, shift = delta[b, i], lse[b, i]
        for j in range(n):
            srow[j] = vexp(srow[j] * scale - shift)
        for j in range(n):
            dprow[j] = scale * srow[j] * (dprow[j] - d_i)
        for j in range(n, tk):
            srow[j] = 0
            dprow[j] = 0


def _products(a, b):
    """a @ b, (BH, n, k) @ (BH, k, m): one BLAS call per head, each with the threads one
    (n, k, m) product earns (at short T: one, so no pool wakes for a tiny product)."""
    prepare_blas(a.shape[1] * a.shape[2] * b.shape[2])
    return a @ b


def attention_fwd(q3, k3, v3, causal, scale):
    """(out, lse) of folded (BH, T, D) float arrays; scale a scalar of their dtype."""
    s = _products(q3, k3.transpose(0, 2, 1))
    lse = np.empty(s.shape[:2], s.dtype)
    launch(_softmax_scores, s.size, s, bool(causal), scale, lse)
    return _products(s, v3), lse


def attention_bwd(dout3, q3, k3, v3, out3, lse3, causal, scale):
    """(dq, dk, dv) of folded arrays, recomputing P from q, k and lse."""
    s = _products(q3, k3.transpose(0, 2, 1))
    dp = _products(dout3, v3.transpose(0, 2, 1))
    launch(_probs_and_dscores, s.size, s, dp, dout3, out3, bool(causal), scale, lse3,
           np.empty_like(lse3))
    dv = _products(s.transpose(0, 2, 1), dout3)
    dq = _products(dp, k3)
    dk = _products(dp.transpose(0, 2, 1), q3)
    return dq, dk, dv
