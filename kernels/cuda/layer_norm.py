"""Layer norm over the last axis, one thread block per row (Numba-CUDA).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``layer_norm_fwd(x, weight, bias, eps) -> (y, mean, rstd)`` and
``layer_norm_bwd(dy, x, weight, mean, rstd) -> (dx, dweight, dbias)``. x (..., C), CuPy
float32 / float64 on a GPU, NumPy under the simulator (``NUMBA_ENABLE_CUDASIM=1``).

Kernels:
- ``_layer_norm_fwd_rows``: (N,) blocks, block i owns row i (``_common``). Two block reductions
  in shared memory, the mean and then the variance around it (two-pass: no cancellation, unlike
  sum(x^2) - mean^2), then each thread writes its columns of y; mean and rstd are saved.
- ``_layer_norm_dx_rows``: (N,) blocks. xhat = (x - mean) * rstd is recomputed, not saved
  (llm.c); with g = dy * weight, two block sums give mean(g) and mean(g * xhat), then
  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
- ``_layer_norm_dparams_cols``: the second small kernel, for dweight and dbias, which sum over
  the rows: one thread per column (ceil(C / THREADS) blocks), looping over all N rows, so
  neighbouring threads read neighbouring addresses. No partial sums and no atomics: each column
  is summed by one thread in row order, so the result is reproducible. It has only C threads,
  which underfills a GPU for small C and large N; the planned faster variant (with the CuPy
  RawModule one using warp shuffles) has each row block add per-block partials of a chunk of rows
  and a second pass add the chunks.

Precision: all sums and the per-element math run in float64 also for float32 input, and are
rounded once on store. mean and rstd are returned in x's dtype (as the reference), and the
backward reads those rounded values, as the reference does.
"""
from __future__ import annotations

import math

from numba import cuda, float64

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from ._checks import check_layer_norm_bwd, check_layer_norm_fwd
from ._common import THREADS, as_rows, block_sum

# --------------------------------------------------------------------------------------------------
# Kernels. x, y, dy, dx: C-contiguous (N, C); weight, bias: (C,) (ones and zeros when the op has
# none); mean, rstd: (N,), all in x's dtype; eps: a Python float.


@cuda.jit
def _layer_norm_fwd_rows(x, weight, bias, eps, y, mean, rstd):
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    c = x.shape[1]
    s = 0.0
    for j in range(t, c, THREADS):
        s += float64(x[i, j])
    mu = block_sum(buf, s) / c
    s = 0.0
    for j in range(t, c, THREADS):
        d = float64(x[i, j]) - mu
        s += d * d
    rs = 1.0 / math.sqrt(block_sum(buf, s) / c + eps)  # biased variance, as PyTorch
    for j in range(t, c, THREADS):
        y[i, j] = (float64(x[i, j]) - mu) * rs * weight[j] + bias[j]
    if t == 0:
        mean[i] = mu
        rstd[i] = rs


@cuda.jit
def _layer_norm_dx_rows(dy, x, weight, mean, rstd, dx):
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    c = x.shape[1]
    mu, rs = float64(mean[i]), float64(rstd[i])
    s_g = 0.0
    s_gx = 0.0
    for j in range(t, c, THREADS):
        g = float64(dy[i, j]) * weight[j]
        s_g += g
        s_gx += g * ((float64(x[i, j]) - mu) * rs)
    g_mean = block_sum(buf, s_g) / c
    gx_mean = block_sum(buf, s_gx) / c
    for j in range(t, c, THREADS):
        g = float64(dy[i, j]) * weight[j]
        xhat = (float64(x[i, j]) - mu) * rs
        dx[i, j] = rs * (g - g_mean - xhat * gx_mean)


@cuda.jit
def _layer_norm_dparams_cols(dy, x, mean, rstd, dweight, dbias):
    """dweight[j] = sum_i dy[i, j] * xhat[i, j], dbias[j] = sum_i dy[i, j]: one thread per j."""
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    n, c = x.shape
    if j < c:
        s_w = 0.0
        s_b = 0.0
        for i in range(n):
            d = float64(dy[i, j])
            s_w += d * ((float64(x[i, j]) - mean[i]) * rstd[i])
            s_b += d
        dweight[j] = s_w
        dbias[j] = s_b


# --------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def layer_norm_fwd(x, weight, bias, eps):
    """y = (x - mean) * rstd * weight + bias over the last axis of x (..., C) -> (y, mean, rstd);
    mean and rstd = 1 / sqrt(var + eps) have shape x.shape[:-1]; weight and bias (C,) or None."""
    check_layer_norm_fwd(x, weight, bias)
    if x.ndim == 0 or x.size == 0:
        return reference.layer_norm_fwd(x, weight, bias, eps)
    c = x.shape[-1]
    xp = array_module(x)
    rows = as_rows(x)
    n = rows.shape[0]
    w = xp.ones(c, x.dtype) if weight is None else xp.ascontiguousarray(weight)
    b = xp.zeros(c, x.dtype) if bias is None else xp.ascontiguousarray(bias)
    y = xp.empty_like(rows)
    mean = xp.empty(n, x.dtype)
    rstd = xp.empty(n, x.dtype)
    _layer_norm_fwd_rows[n, THREADS](rows, w, b, float(eps), y, mean, rstd)
    return y.reshape(x.shape), mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])


def layer_norm_bwd(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias); dweight is None when weight is None.

    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight, xhat recomputed;
    dweight = sum over rows of dy * xhat, dbias = sum over rows of dy (the second kernel).
    """
    check_layer_norm_bwd(dy, x, weight, mean, rstd)
    if x.ndim == 0 or x.size == 0:
        return reference.layer_norm_bwd(dy, x, weight, mean, rstd)
    xp = array_module(x)
    rows, dy_rows = as_rows(x), as_rows(dy)
    n, c = rows.shape
    w = xp.ones(c, x.dtype) if weight is None else xp.ascontiguousarray(weight)
    mean_flat = xp.ascontiguousarray(mean).reshape(n)
    rstd_flat = xp.ascontiguousarray(rstd).reshape(n)
    dx = xp.empty_like(rows)
    _layer_norm_dx_rows[n, THREADS](dy_rows, rows, w, mean_flat, rstd_flat, dx)
    dweight = xp.empty(c, x.dtype)
    dbias = xp.empty(c, x.dtype)
    _layer_norm_dparams_cols[(c + THREADS - 1) // THREADS, THREADS](dy_rows, rows, mean_flat,
                                                                     rstd_flat, dweight, dbias)
    return dx.reshape(x.shape), dweight if weight is not None else None, dbias
