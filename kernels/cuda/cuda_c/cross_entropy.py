"""Fused cross-entropy of logits (N, C) against class indices (N,), CUDA C for CuPy's RawModule.

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``cross_entropy_fwd(logits, target, ignore_index, label_smoothing, weight) -> (losses, probs)``
and ``cross_entropy_bwd(dlosses, probs, target, ignore_index, label_smoothing, weight)``.
CuPy float32 / float64 logits; integer targets (read as int64).

Kernels (one block per row, V-wide packs where C allows, ``_common``):
- ``cross_entropy_fwd<T, V>``: sweep 1, the online max and sum of exp (``push``), so
  lse = max + log(sum) without a third sweep; sweep 2 writes p = exp(x - lse) (the one N x C
  array the backward reads: the reference makes log p and then exp(log p), two of them) and, with
  label smoothing, sums w_c (lse - x_c). Thread 0 writes the loss from lse and x[t].
- ``cross_entropy_bwd<T, V>``: llm.c's fused softmax-minus-one-hot, one sweep:
  dlogits = dl * ((1 - eps) w[t] (p - [j == t]) + eps / C (W p - w_j)), W = sum(w) taken once by
  CuPy on the device (no host sync). Ignored rows are exact zeros whatever dlosses holds there.

Targets: unlike the Numba-CUDA kernel, no host-side check (it costs a sync per call): the op
checks them. A target outside [0, C) that is not ignore_index reads nothing out of bounds; its
row gets a NaN loss and NaN gradients, so the error cannot pass unseen.

Precision: float32 in float, float64 in double. An all -inf row: NaN probabilities and loss.
"""
from __future__ import annotations

import numpy as np

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from .._checks import as_rows, check_float, check_targets
from ._common import HEADER, ctype, expressions, get_kernel, row_threads, vector_width

SOURCE = HEADER + r"""
// logits, probs, dlogits: C-contiguous (N, c), c % V == 0; target: (N,) int64; weight: (c,) when
// has_weight, else unread (w = 1). Block `blockIdx.x` owns one row.
template <typename T, int V>
__global__ void cross_entropy_fwd(const T* __restrict__ logits,
                                  const long long* __restrict__ target,
                                  const T* __restrict__ weight, int has_weight,
                                  long long ignore_index, T eps, int c,
                                  T* __restrict__ losses, T* __restrict__ probs) {
    const long long row = blockIdx.x;
    const T* xr = logits + row * c;
    T* pr = probs + row * c;
    const int packs = c / V;
    T shift, s;
    row_shift_sum<T, V>(xr, packs, shift, s);
    const T lse = s > T(0) ? shift + k_log(s) : k_nan<T>();  // all -inf: no distribution
    T smooth = T(0);
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        Pack<T, V> p = load_pack<T, V>(xr, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) {
            const T neg_logp = lse - p.v[q];
            if (eps != T(0)) smooth += (has_weight ? weight[k * V + q] : T(1)) * neg_logp;
            p.v[q] = k_exp(-neg_logp);
        }
        store_pack<T, V>(pr, k, p);
    }
    if (eps != T(0)) smooth = block_sum(smooth);  // the same branch in every thread of the block
    if (threadIdx.x == 0) {
        const long long t = target[row];
        T loss;
        if (t == ignore_index) loss = T(0);
        else if (t < 0 || t >= c) loss = k_nan<T>();  // the op checks; never read out of bounds
        else {
            loss = (has_weight ? weight[t] : T(1)) * (lse - xr[t]) * (T(1) - eps);
            if (eps != T(0)) loss += smooth * (eps / T(c));
        }
        losses[row] = loss;
    }
}

// w_sum: a device scalar, sum(weight) (unread without weights: W = c).
template <typename T, int V>
__global__ void cross_entropy_bwd(const T* __restrict__ dlosses, const T* __restrict__ probs,
                                  const long long* __restrict__ target,
                                  const T* __restrict__ weight, const T* __restrict__ w_sum,
                                  int has_weight, long long ignore_index, T eps, int c,
                                  T* __restrict__ dlogits) {
    const long long row = blockIdx.x;
    const T* pr = probs + row * c;
    T* dr = dlogits + row * c;
    const int packs = c / V;
    const long long t = target[row];
    const bool ignored = t == ignore_index;
    const bool valid = !ignored && t >= 0 && t < c;
    const T dl = ignored ? T(0) : (valid ? dlosses[row] : k_nan<T>());
    const T w_t = valid ? (has_weight ? weight[t] : T(1)) : T(0);
    const T big_w = has_weight ? *w_sum : T(c);
    const T a = w_t * (T(1) - eps), b = eps / T(c);
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        Pack<T, V> p = load_pack<T, V>(pr, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) {
            const long long j = (long long)k * V + q;
            T d = a * (j == t ? p.v[q] - T(1) : p.v[q]);
            if (eps != T(0)) d += (big_w * p.v[q] - (has_weight ? weight[j] : T(1))) * b;
            p.v[q] = ignored ? T(0) : d * dl;
        }
        store_pack<T, V>(dr, k, p);
    }
}
"""

NAME_EXPRESSIONS = expressions("cross_entropy_fwd") + expressions("cross_entropy_bwd")


def _kernel(template, dtype, v):
    return get_kernel(__name__, SOURCE, NAME_EXPRESSIONS, f"{template}<{ctype(dtype)}, {v}>")


def cross_entropy_fwd(logits, target, ignore_index=-100, label_smoothing=0.0, weight=None):
    """Per-row cross-entropy of logits (N, C) against integer targets (N,)
    -> (losses (N,), probs (N, C))."""
    check_float("cross_entropy_fwd", logits=logits, weight=weight)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy_fwd: logits has shape {logits.shape}; expected (N, C)")
    check_targets("cross_entropy_fwd", logits.shape[0], target)
    if logits.size == 0:
        return reference.cross_entropy_fwd(logits, target, ignore_index, label_smoothing, weight)
    xp = array_module(logits)
    rows = as_rows(logits)
    n, c = rows.shape
    t = xp.ascontiguousarray(target, dtype=np.int64)
    w = rows if weight is None else xp.ascontiguousarray(weight)  # unread without weights
    losses = xp.empty(n, logits.dtype)
    probs = xp.empty_like(rows)
    v = vector_width(rows.dtype, rows, probs, None if weight is None else w, row_length=c)
    scalar = rows.dtype.type
    _kernel("cross_entropy_fwd", rows.dtype, v)(
        (n,), (row_threads(c // v),),
        (rows, t, w, np.int32(weight is not None), np.int64(ignore_index),
         scalar(label_smoothing), np.int32(c), losses, probs))
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
    check_targets("cross_entropy_bwd", n, target)
    if probs.size == 0:
        return reference.cross_entropy_bwd(dlosses, probs, target, ignore_index, label_smoothing,
                                           weight)
    xp = array_module(probs)
    p = as_rows(probs)
    t = xp.ascontiguousarray(target, dtype=np.int64)
    w = p if weight is None else xp.ascontiguousarray(weight)
    w_sum = p if weight is None else w.sum(keepdims=True)  # stays on the device: no sync
    dlogits = xp.empty_like(p)
    v = vector_width(p.dtype, p, dlogits, None if weight is None else w, row_length=c)
    _kernel("cross_entropy_bwd", p.dtype, v)(
        (n,), (row_threads(c // v),),
        (xp.ascontiguousarray(dlosses), p, t, w, w_sum, np.int32(weight is not None),
         np.int64(ignore_index), p.dtype.type(label_smoothing), np.int32(c), dlogits))
    return dlogits
