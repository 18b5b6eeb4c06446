"""Layer norm over the last axis, fused row by row (Numba, CPU).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``layer_norm_fwd(x, weight, bias, eps) -> (y, mean, rstd)`` and
``layer_norm_bwd(dy, x, weight, mean, rstd) -> (dx, dweight, dbias)``. x of any leading shape.

Variants:
- ``_layer_norm_fwd_rows`` (used): one parallel loop over rows; a row is read from memory once
  and y written once. In cache: one sweep for the mean, one for the variance around it (two-pass:
  no cancellation, unlike sum(x^2) - mean^2, and the second sweep costs little on a row in cache),
  one writing y. mean and rstd are saved, as the reference.
- ``_layer_norm_bwd_rows`` (used): xhat = (x - mean) * rstd is recomputed, not saved (llm.c).
  Per row: one sweep computes g = dy * weight and xhat into two float64 scratch rows and adds
  dy * xhat and dy into the partial dweight and dbias; then dx = rstd * (g - mean(g) - xhat *
  mean(g * xhat)). dweight and dbias sum over all rows, so the rows are cut into at most 64
  fixed chunks (a function of N only, not of the thread count: the result is reproducible), each
  with its own partial sums, added at the end.
- Welford's one-sweep mean and variance would save the mean sweep, but it divides per element and
  its sequential update does not vectorize; the row is in cache, so two sweeps are cheaper.
- Fallback: the reference, for what the kernels do not take (float16, CuPy, empty arrays,
  parameters or statistics of another dtype); ``_common.fallback_counts`` records it.

Precision: mean, variance, the backward's row means and the dweight/dbias sums accumulate in
float64 also for float32 input (the sums are where rounding would pile up). The forward then
rounds mean and rstd to x's dtype once and computes y in x's dtype (a few float32 ulps, as
PyTorch's kernel; tests/test_kernels_cpu_rowwise.py holds it to the float64 reference); dx is
computed in float64 and rounded once. mean and rstd are returned in x's dtype (as the reference)
and the backward reads those rounded values.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import as_flat, as_rows, fallback, launch, row_dot, row_sq_dev, row_sum, why_not

_MAX_CHUNKS = 64  # partial dweight/dbias rows in the backward

# ----------------------------------------------------------------------------------------------------
# Kernels. x, y, dy, dx: C-contiguous (N, C); weight, bias: (C,) (ones and zeros when the op has
# none); mean, rstd: (N,), all in x's dtype; eps: float64.


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _layer_norm_fwd_rows(x, weight, bias, eps, y, mean, rstd):
    n, c = x.shape
    for i in prange(n):
        xi, yi = x[i], y[i]
        mu = row_sum(xi) / c
        mean[i] = mu
        rstd[i] = 1.0 / np.sqrt(row_sq_dev(xi, mu) / c + eps)  # biased variance, as PyTorch
        # The statistics read back rounded to x's dtype (the values the backward reads too), so
        # that the sweep over the row runs in x's dtype: float32 lanes, twice float64's width.
        m, rs = mean[i], rstd[i]
        for j in range(c):
            yi[j] = (xi[j] - m) * rs * weight[j] + bias[j]


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _layer_norm_bwd_rows(dy, x, weight, mean, rstd, dx, dweight_parts, dbias_parts):
    n, c = x.shape
    chunks = dweight_parts.shape[0]
    for k in prange(chunks):
        dw, db = dweight_parts[k], dbias_parts[k]  # this chunk's float64 partial sums
        g = np.empty(c)  # float64 scratch rows, one pair per chunk
        xhat = np.empty(c)
        for i in range(k * n // chunks, (k + 1) * n // chunks):
            dyi, xi, dxi = dy[i], x[i], dx[i]
            mu, rs = np.float64(mean[i]), np.float64(rstd[i])
            for j in range(c):
                xhat[j] = (xi[j] - mu) * rs
                g[j] = np.float64(dyi[j]) * weight[j]
                dw[j] += dyi[j] * xhat[j]
                db[j] += dyi[j]
            g_mean = row_sum(g) / c
            gx_mean = row_dot(g, xhat) / c
            for j in range(c):
                dxi[j] = rs * (g[j] - g_mean - xhat[j] * gx_mean)


# ----------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def layer_norm_fwd(x, weight, bias, eps):
    """y = (x - mean) * rstd * weight + bias over the last axis of x (..., C) -> (y, mean, rstd);
    mean and rstd = 1 / sqrt(var + eps) have shape x.shape[:-1]; weight and bias (C,) or None."""
    params = [p for p in (weight, bias) if p is not None]
    reason = why_not(x, *params) or ("0-d array" if x.ndim == 0 else None)
    if reason:
        fallback("layer_norm_fwd", reason)
        return reference.layer_norm_fwd(x, weight, bias, eps)
    rows = as_rows(x)
    n, c = rows.shape
    w = np.ones(c, x.dtype) if weight is None else as_flat(weight)
    b = np.zeros(c, x.dtype) if bias is None else as_flat(bias)
    y = np.empty_like(rows)
    mean = np.empty(n, x.dtype)
    rstd = np.empty(n, x.dtype)
    launch(_layer_norm_fwd_rows, rows.size, rows, w, b, float(eps), y, mean, rstd)
    return y.reshape(x.shape), mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])


def layer_norm_bwd(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias); dweight is None when weight is None.

    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight, xhat recomputed;
    dweight = sum over rows of dy * xhat, dbias = sum over rows of dy.
    """
    params = [] if weight is None else [weight]
    reason = why_not(x, dy, mean, rstd, *params) or ("0-d array" if x.ndim == 0 else None) or (
        f"dy shape {dy.shape} != x shape {x.shape}" if dy.shape != x.shape else None)
    if reason:
        fallback("layer_norm_bwd", reason)
        return reference.layer_norm_bwd(dy, x, weight, mean, rstd)
    rows, dy_rows = as_rows(x), as_rows(dy)
    n, c = rows.shape
    w = np.ones(c, x.dtype) if weight is None else as_flat(weight)
    dx = np.empty_like(rows)
    chunks = min(n, _MAX_CHUNKS)
    dweight_parts = np.zeros((chunks, c))
    dbias_parts = np.zeros((chunks, c))
    launch(_layer_norm_bwd_rows, rows.size, dy_rows, rows, w, as_flat(mean), as_flat(rstd), dx,
           dweight_parts, dbias_parts)
    dweight = dweight_parts.sum(axis=0).astype(x.dtype) if weight is not None else None
    return dx.reshape(x.shape), dweight, dbias_parts.sum(axis=0).astype(x.dtype)
