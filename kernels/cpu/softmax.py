"""Softmax and log-softmax along any axis, fused row by row (Numba, CPU).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``softmax_fwd(x, axis)``, ``softmax_bwd(dy, y, axis)``, ``log_softmax_fwd(x, axis)``,
``log_softmax_bwd(dy, y, axis)``. NumPy float32 and float64 arrays of any shape and strides.

Variants:
- ``_softmax_rows`` / ``_softmax_bwd_rows`` (used): one parallel loop over rows. A row is read
  from memory once and written once; the sweeps inside it (max; exp into y; sum; scale or
  shift) run on a row already in cache (1024 float32 are 4 KiB; L1 holds 48 KiB). One exp per
  element, by ``_common.vexp``, which LLVM vectorizes. Softmax and log-softmax share the kernel
  (the flag ``log``), so each dtype compiles one forward and one backward.
- Online max and sum (Milakov and Gimelshein, 2018), not kept: one sweep keeps the running max
  and rescales the running sum whenever the max grows, a second writes exp(x - max) / sum. It
  saves the max sweep, which is cheap on a row in cache, but pays two exps per element and its
  first sweep (a branch and a loop-carried sum) does not vectorize: on 4096 x 1024 float32, one
  thread, it took 92 ms against 16 ms for ``_softmax_rows`` (min of 15 runs; reference 40 ms).
- Fallback: the reference, for what the kernels do not take (float16, empty or 0-d arrays, CuPy
  arrays, dy and y of different shapes or dtypes); ``_common.fallback_counts`` records it.

Axis: moved last; copied to a contiguous (N, C) array only when it is not one already (the last
axis of a C-contiguous array is not copied). The result is returned as a view in x's axis order.

Precision: the max is exact; exp runs in the row's dtype (about 1 ulp); the sums (sum of exp,
sum of dy * y, sum of dy) accumulate in float64 also for float32 rows; the last step (scale by
1/sum, subtract log(sum), the backward's combination) is done in float64 and rounded once.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import as_rows, fallback, launch, row_dot, row_sum, shifted_exp, vexp, why_not

# ----------------------------------------------------------------------------------------------------
# Kernels: x, y, dy, dx are C-contiguous (N, C) arrays of one dtype; log is a bool.


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _softmax_rows(x, y, log):
    """y = softmax(x) per row, or log_softmax(x) when log is True."""
    n, c = x.shape
    for i in prange(n):
        xi, yi = x[i], y[i]
        m, s = shifted_exp(xi, yi)  # exp kept in y (the row is in cache), summed in float64
        if log:
            log_s = np.log(s)
            for j in range(c):
                yi[j] = (xi[j] - m) - log_s
        else:
            inv_s = 1.0 / s  # a row that is all -inf: 0 * inf = NaN, as the reference
            for j in range(c):
                yi[j] = yi[j] * inv_s


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _softmax_bwd_rows(dy, y, dx, log):
    """softmax:     dx = y * (dy - sum(dy * y))
    log_softmax: dx = dy - exp(y) * sum(dy)          (per row)"""
    n, c = y.shape
    for i in prange(n):
        dyi, yi, dxi = dy[i], y[i], dx[i]
        if log:
            s = row_sum(dyi)
            # exp(y) first, into dx, then the combination: two sweeps over a row in cache ran
            # 15% faster than one (6.6 against 7.7 ms on 4096 x 1024, one thread), as the exp
            # loop then stays all float32 and vectorizes best
            for j in range(c):
                dxi[j] = vexp(yi[j])
            for j in range(c):
                dxi[j] = dyi[j] - dxi[j] * s
        else:
            s = row_dot(dyi, yi)
            for j in range(c):
                dxi[j] = yi[j] * (dyi[j] - s)


# ----------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def _forward(x, axis, log):
    name = "log_softmax_fwd" if log else "softmax_fwd"
    reason = why_not(x) or ("0-d array" if x.ndim == 0 else None)
    if reason:
        fallback(name, reason)
        return getattr(reference, name)(x, axis)
    moved = np.moveaxis(x, axis, -1)  # a view; AxisError (as the reference) for a bad axis
    rows = as_rows(moved)
    y = np.empty_like(rows)
    launch(_softmax_rows, rows.size, rows, y, log)
    return np.moveaxis(y.reshape(moved.shape), -1, axis)


def _backward(dy, y, axis, log):
    name = "log_softmax_bwd" if log else "softmax_bwd"
    reason = why_not(y, dy) or ("0-d array" if y.ndim == 0 else None) or (
        f"dy shape {dy.shape} != y shape {y.shape}" if dy.shape != y.shape else None)
    if reason:
        fallback(name, reason)
        return getattr(reference, name)(dy, y, axis)
    y_moved = np.moveaxis(y, axis, -1)
    y_rows, dy_rows = as_rows(y_moved), as_rows(np.moveaxis(dy, axis, -1))
    dx = np.empty_like(y_rows)
    launch(_softmax_bwd_rows, y_rows.size, dy_rows, y_rows, dx, log)
    return np.moveaxis(dx.reshape(y_moved.shape), -1, axis)


def softmax_fwd(x, axis=-1):
    """y = exp(x - max) / sum(exp(x - max)) along `axis`; y is all the backward needs."""
    return _forward(x, axis, False)


def softmax_bwd(dy, y, axis=-1):
    """dx = y * (dy - sum(dy * y)) along `axis`."""
    return _backward(dy, y, axis, False)


def log_softmax_fwd(x, axis=-1):
    """y = x - max - log(sum(exp(x - max))) along `axis`."""
    return _forward(x, axis, True)


def log_softmax_bwd(dy, y, axis=-1):
    """dx = dy - exp(y) * sum(dy) along `axis`."""
    return _backward(dy, y, axis, True)
