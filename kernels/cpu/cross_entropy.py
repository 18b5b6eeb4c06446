"""Cross-entropy of logits (N, C) against class indices (N,), fused row by row (Numba, CPU).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``cross_entropy_fwd(logits, target, ignore_index, label_smoothing, weight) -> (losses, probs)``
and ``cross_entropy_bwd(dlosses, probs, target, ignore_index, label_smoothing, weight)``.

Variants:
- ``_cross_entropy_fwd_rows`` (used): softmax, log and the one-hot pick in one parallel loop
  over rows. A row of logits is read from memory once and its probabilities written once; in
  cache, one sweep finds the max, one writes exp(x - max), one sums it, one scales by 1/sum. The
  loss needs only lse = max + log(sum) and the target's logit: loss = w[t] * (lse - x[t]), and
  with label smoothing eps also sum_c w[c] * (lse - x[c]) = lse * sum(w) - sum(w * x), one more
  sweep in cache. The forward saves what the reference saves: the probabilities.
- ``_cross_entropy_bwd_rows`` (used): llm.c's fused softmax-minus-one-hot, one sweep per row:
  dlogits[i, j] = dl_i * (a_i * p_ij - b_i * w_j) - dl_i * (1 - eps) * w[t_i] * [j == t_i]
  with a_i = (1 - eps) w[t_i] + eps * sum(w) / C and b_i = eps / C (w = 1 without weights).
  Ignored rows are written as exact zeros whatever dlosses holds there (inf, NaN).
- Fallback: the reference, for what the kernels do not take (float16, CuPy, empty arrays,
  weights or probabilities of another dtype); ``_common.fallback_counts`` records it.

Targets are checked here although the op checks them too: a kernel that reads logits[i, t] with
t out of range would read memory it does not own, so an out-of-range target is an IndexError.

Precision: exp in the logits' dtype (about 1 ulp); sums, lse, the losses and every gradient entry
in float64, rounded once to the dtype.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import as_flat, as_rows, fallback, launch, row_dot, row_sum, shifted_exp, why_not

# ----------------------------------------------------------------------------------------------------
# Kernels. logits, probs, dlogits: C-contiguous (N, C); target: int64 (N,); weight: (C,) in the
# logits' dtype (read only when has_weight); w_sum: float64 sum of the weights (C without them);
# ignore_index: int64; eps (label smoothing): float64.


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _cross_entropy_fwd_rows(logits, target, weight, has_weight, w_sum, ignore_index, eps, probs,
                            losses):
    n, c = logits.shape
    for i in prange(n):
        xi, pi = logits[i], probs[i]
        m, s = shifted_exp(xi, pi)
        inv_s = 1.0 / s
        for j in range(c):
            pi[j] = pi[j] * inv_s
        t = target[i]
        if t == ignore_index:
            losses[i] = 0.0  # the probabilities above are still returned, as the reference
        else:
            lse = m + np.log(s)  # -log p[i, j] = lse - x[i, j]
            w_t = weight[t] if has_weight else 1.0
            loss = (1.0 - eps) * w_t * (lse - xi[t])
            if eps != 0.0:
                # sum_c w[c] * (lse - x[c]): each term >= 0, the sum computed in one sweep
                wx = row_dot(weight, xi) if has_weight else row_sum(xi)
                loss += eps / c * (lse * w_sum - wx)
            losses[i] = loss


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _cross_entropy_bwd_rows(dlosses, probs, target, weight, has_weight, w_sum, ignore_index, eps,
                            dlogits):
    n, c = probs.shape
    for i in prange(n):
        pi, di = probs[i], dlogits[i]
        t = target[i]
        if t == ignore_index:
            for j in range(c):
                di[j] = 0.0
        else:
            dl = np.float64(dlosses[i])
            w_t = weight[t] if has_weight else 1.0
            a = dl * ((1.0 - eps) * w_t + eps * w_sum / c)  # coefficient of p_ij
            b = dl * eps / c  # coefficient of w_j
            if has_weight:
                for j in range(c):
                    di[j] = a * pi[j] - b * weight[j]
                di[t] = a * pi[t] - b * weight[t] - dl * (1.0 - eps) * w_t  # the one-hot
            else:
                for j in range(c):
                    di[j] = a * pi[j] - b
                di[t] = a * pi[t] - b - dl * (1.0 - eps)


# ----------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def _targets(target, n, c, ignore_index, name):
    """target as int64 (N,), contiguous; IndexError when one is outside [0, C) and not ignored."""
    t = as_flat(np.asarray(target, dtype=np.int64))
    if t.shape[0] != n:
        raise ValueError(f"{name}: target must have one entry per row ({n}), got shape "
                         f"{np.shape(target)}")
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        i = int(np.argmax(bad))
        raise IndexError(f"{name}: target[{i}] = {int(t[i])} is outside [0, {c}) and is not "
                         f"ignore_index={ignore_index}")
    return t


def _weights(weight, c, dtype):
    """(weight array, has_weight, float64 sum of the weights)."""
    if weight is None:
        return np.ones(1, dtype), False, float(c)  # never read
    w = as_flat(weight)
    return w, True, float(w.sum(dtype=np.float64))


def cross_entropy_fwd(logits, target, ignore_index=-100, label_smoothing=0.0, weight=None):
    """Per-row cross-entropy of logits (N, C) against integer targets (N,) -> (losses (N,), probs).

    loss_i = (1 - eps) * w[t_i] * (-log p[i, t_i]) + eps / C * sum_c w[c] * (-log p[i, c]);
    0 where t_i == ignore_index.
    """
    arrays = (logits,) if weight is None else (logits, weight)
    reason = why_not(*arrays) or (None if logits.ndim == 2 else f"logits of shape {logits.shape}")
    if reason:
        fallback("cross_entropy_fwd", reason)
        return reference.cross_entropy_fwd(logits, target, ignore_index=ignore_index,
                                           label_smoothing=label_smoothing, weight=weight)
    n, c = logits.shape
    t = _targets(target, n, c, ignore_index, "cross_entropy_fwd")
    w, has_weight, w_sum = _weights(weight, c, logits.dtype)
    x = as_rows(logits)
    probs = np.empty_like(x)
    losses = np.empty(n, dtype=logits.dtype)
    launch(_cross_entropy_fwd_rows, x.size, x, t, w, has_weight, w_sum, np.int64(ignore_index),
           float(label_smoothing), probs, losses)
    return losses, probs


def cross_entropy_bwd(dlosses, probs, target, ignore_index=-100, label_smoothing=0.0,
                      weight=None):
    """dlogits (N, C) from dlosses (N,); ignored rows get exactly 0."""
    arrays = (probs,) if weight is None else (probs, weight)
    reason = why_not(*arrays) or (None if probs.ndim == 2 else f"probs of shape {probs.shape}")
    if reason:
        fallback("cross_entropy_bwd", reason)
        return reference.cross_entropy_bwd(dlosses, probs, target, ignore_index=ignore_index,
                                           label_smoothing=label_smoothing, weight=weight)
    n, c = probs.shape
    t = _targets(target, n, c, ignore_index, "cross_entropy_bwd")
    w, has_weight, w_sum = _weights(weight, c, probs.dtype)
    # In the probabilities' dtype, as the reference; a broadcast view (a mean's gradient) is copied.
    dl = as_flat(np.broadcast_to(np.asarray(dlosses, dtype=probs.dtype), (n,)))
    p = as_rows(probs)
    dlogits = np.empty_like(p)
    launch(_cross_entropy_bwd_rows, p.size, dl, p, t, w, has_weight, w_sum, np.int64(ignore_index),
           float(label_smoothing), dlogits)
    return dlogits
