"""Cross-entropy of logits (N, C) against class indices (N,), one thread block per row
(Numba-CUDA).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``cross_entropy_fwd(logits, target, ignore_index, label_smoothing, weight) -> (losses, probs)``
and ``cross_entropy_bwd(dlosses, probs, target, ignore_index, label_smoothing, weight)``.
CuPy float32 / float64 logits on a GPU, NumPy under the simulator; integer targets.

Kernels ((N,) blocks of THREADS threads, block i owns row i; ``_common``):
- ``_cross_entropy_fwd_rows``: block max, then block sum of exp(x - max), so
  lse = max + log(sum) and log p_c = x_c - lse. Each thread writes its columns of the
  probabilities (what the backward reads, as the reference) and, with label smoothing eps, adds
  w_c * (lse - x_c) into a third block sum; thread 0 writes
  loss = (1 - eps) * w[t] * (lse - x[t]) + eps / C * sum_c w_c * (lse - x_c).
- ``_cross_entropy_bwd_rows``: llm.c's fused softmax-minus-one-hot, one sweep per row:
  dlogits[i, j] = dl_i * ((1 - eps) w[t] (p_ij - [j == t]) + eps / C (W p_ij - w_j)),
  W = sum(w), taken by a block sum (the weights are read once per row, as the row itself).
  Without weights the kernels read a vector of ones (W = C exactly), so one kernel serves both.
  Ignored rows are written as exact zeros whatever dlosses holds there (inf, NaN), as the Numba
  CPU kernel does.
- Planned, faster: the CuPy RawModule variant with warp-shuffle reductions (see ``softmax``).

Targets are checked here (IndexError) although the op checks them too: a kernel that reads
logits[i, t] with t out of range reads memory it does not own. On a GPU the check is one small
reduction and one host sync per call.

Precision: exp, the sums, lse, the losses and every gradient entry in float64, rounded once.
A row that is all -inf has no distribution: its probabilities and loss are NaN (0 when ignored).
"""
from __future__ import annotations

import math

from numba import cuda, float64

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from ._checks import check_targets
from ._common import THREADS, as_rows, block_sum, check_float, row_shift

# --------------------------------------------------------------------------------------------------
# Kernels. logits, probs, dlogits: C-contiguous (N, C); target: integer (N,); weight: (C,) in the
# logits' dtype (ones when the op has none); ignore_index: int; eps (label smoothing): float.


@cuda.jit
def _cross_entropy_fwd_rows(logits, target, ignore_index, eps, weight, losses, probs):
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    c = logits.shape[1]
    m = row_shift(buf, logits, i)
    s = 0.0
    for j in range(t, c, THREADS):
        s += math.exp(float64(logits[i, j]) - m)
    s = block_sum(buf, s)
    # all -inf: log p is NaN everywhere (no math.log(0): the simulator's Python would raise)
    lse = m + math.log(s) if s > 0.0 else math.nan
    smooth = 0.0
    for j in range(t, c, THREADS):
        neg_logp = lse - logits[i, j]
        probs[i, j] = math.exp(-neg_logp)
        if eps != 0.0:
            smooth += weight[j] * neg_logp
    if eps != 0.0:  # the same branch in every thread: the barriers inside are reached by all
        smooth = block_sum(buf, smooth)
    if t == 0:
        tgt = target[i]
        if tgt == ignore_index:
            losses[i] = 0.0
        else:
            loss = weight[tgt] * (lse - logits[i, tgt]) * (1.0 - eps)
            if eps != 0.0:
                loss += smooth * (eps / c)
            losses[i] = loss


@cuda.jit
def _cross_entropy_bwd_rows(dlosses, probs, target, ignore_index, eps, weight, dlogits):
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    c = probs.shape[1]
    w_sum = 0.0
    for j in range(t, c, THREADS):
        w_sum += weight[j]
    w_sum = block_sum(buf, w_sum)
    tgt = target[i]
    if tgt == ignore_index:
        for j in range(t, c, THREADS):
            dlogits[i, j] = 0.0
    else:
        dl = float64(dlosses[i])
        w_t = float64(weight[tgt])
        for j in range(t, c, THREADS):
            p = float64(probs[i, j])
            d = w_t * (p - 1.0 if j == tgt else p) * (1.0 - eps)
            if eps != 0.0:
                d += (w_sum * p - weight[j]) * (eps / c)
            dlogits[i, j] = d * dl


# --------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def _check(name, n, c, target, ignore_index):
    # The range check too (a host sync): these kernels index by the target unguarded. The CUDA C
    # ones guard it (NaN) and leave the range to the op.
    check_targets(name, n, target)
    bad = ((target < 0) | (target >= c)) & (target != ignore_index)
    if bool(bad.any()):  # one host sync on a GPU
        raise IndexError(f"{name}: targets must lie in [0, {c}) or equal ignore_index "
                         f"{ignore_index}; got {target[bad][:5].tolist()}")


def cross_entropy_fwd(logits, target, ignore_index=-100, label_smoothing=0.0, weight=None):
    """Per-row cross-entropy of logits (N, C) against integer targets (N,)
    -> (losses (N,), probs (N, C))."""
    check_float("cross_entropy_fwd", logits=logits, weight=weight)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy_fwd: logits has shape {logits.shape}; expected (N, C)")
    n, c = logits.shape
    _check("cross_entropy_fwd", n, c, target, ignore_index)
    if logits.size == 0:
        return reference.cross_entropy_fwd(logits, target, ignore_index, label_smoothing, weight)
    xp = array_module(logits)
    rows = as_rows(logits)
    w = xp.ones(c, logits.dtype) if weight is None else xp.ascontiguousarray(weight)
    losses = xp.empty(n, logits.dtype)
    probs = xp.empty_like(rows)
    _cross_entropy_fwd_rows[n, THREADS](rows, xp.ascontiguousarray(target), int(ignore_index),
                                        float(label_smoothing), w, losses, probs)
    return losses, probs


def cross_entropy_bwd(dlosses, probs, target, ignore_index=-100, label_smoothing=0.0,
                      weight=None):
    """dlogits (N, C) from dlosses (N,): softmax minus one-hot, smoothed and weighted."""
    check_float("cross_entropy_bwd", dlosses=dlosses, probs=probs, weight=weight)
    if probs.ndim != 2:
        raise ValueError(f"cross_entropy_bwd: probs has shape {probs.shape}; expected (N, C)")
    n, c = probs.shape
    if dlosses.shape != (n,):
        raise ValueError(f"cross_entropy_bwd: dlosses has shape {dlosses.shape}; expected ({n},)")
    _check("cross_entropy_bwd", n, c, target, ignore_index)
    if probs.size == 0:
        return reference.cross_entropy_bwd(dlosses, probs, target, ignore_index, label_smoothing,
                                           weight)
    xp = array_module(probs)
    w = xp.ones(c, probs.dtype) if weight is None else xp.ascontiguousarray(weight)
    dlogits = xp.empty_like(as_rows(probs))
    _cross_entropy_bwd_rows[n, THREADS](xp.ascontiguousarray(dlosses), as_rows(probs),
                                        xp.ascontiguousarray(target), int(ignore_index),
                                        float(label_smoothing), w, dlogits)
    return dlogits
