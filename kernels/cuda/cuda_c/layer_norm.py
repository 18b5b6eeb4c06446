"""Layer norm over the last axis, CUDA C for CuPy's RawModule.

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``layer_norm_fwd(x, weight, bias, eps) -> (y, mean, rstd)`` and
``layer_norm_bwd(dy, x, weight, mean, rstd) -> (dx, dweight, dbias)``. x (..., C), CuPy
float32 / float64.

Kernels (V-wide packs where C allows, ``_common``):
- ``layer_norm_fwd<T, V>``: one block per row. Sweep 1: Welford's running mean and M2 per thread
  (one read of the row, no sum(x^2) - mean^2 cancellation), merged across the block by Chan's
  rule through warp shuffles; sweep 2 writes y = (x - mean) rstd w + b and thread 0 mean, rstd.
- ``layer_norm_bwd_dx<T, V>``: one block per row; xhat = (x - mean) rstd recomputed (llm.c).
  Sweep 1 takes sum(g) and sum(g xhat), g = dy w, in one block reduction; sweep 2 writes
  dx = rstd (g - mean(g) - xhat mean(g xhat)).
- ``layer_norm_bwd_dparams<T, V>``: dweight and dbias sum over rows. A grid of (column packs,
  row chunks): each thread sums one pack of columns over one chunk of rows (neighbouring
  threads, neighbouring columns: coalesced) into a (chunks, C) partial; CuPy then sums the
  partials over the chunks. No atomics: the same input gives the same bits on every run.

Precision: float32 in float, float64 in double; mean and rstd are returned in x's dtype and the
backward reads those, as the reference does.
"""
from __future__ import annotations

import numpy as np

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from .._checks import as_rows, check_layer_norm_bwd, check_layer_norm_fwd
from ._common import HEADER, ctype, expressions, get_kernel, row_threads, vector_width

SOURCE = HEADER + r"""
// Welford / Chan: (count, mean, M2 = sum (x - mean)^2) of the values seen.
template <typename T> struct Moments { T n, mean, m2; };

template <typename T>
__device__ __forceinline__ Moments<T> merge_moments(Moments<T> a, Moments<T> b) {
    const T n = a.n + b.n;
    if (n == T(0)) return a;
    const T d = b.mean - a.mean, fb = b.n / n;
    return Moments<T>{n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
}

template <typename T> __device__ __forceinline__ Moments<T> block_moments(Moments<T> st) {
    __shared__ T part[3][32];
    for (int o = 16; o > 0; o >>= 1) {
        Moments<T> other{__shfl_xor_sync(FULL_MASK, st.n, o),
                         __shfl_xor_sync(FULL_MASK, st.mean, o),
                         __shfl_xor_sync(FULL_MASK, st.m2, o)};
        st = merge_moments(st, other);
    }
    if (blockDim.x == 32) return st;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) { part[0][warp] = st.n; part[1][warp] = st.mean; part[2][warp] = st.m2; }
    __syncthreads();
    const bool live = lane < (int)(blockDim.x >> 5);
    st = live ? Moments<T>{part[0][lane], part[1][lane], part[2][lane]}
              : Moments<T>{T(0), T(0), T(0)};
    for (int o = 16; o > 0; o >>= 1) {
        Moments<T> other{__shfl_xor_sync(FULL_MASK, st.n, o),
                         __shfl_xor_sync(FULL_MASK, st.mean, o),
                         __shfl_xor_sync(FULL_MASK, st.m2, o)};
        st = merge_moments(st, other);
    }
    return st;
}

// x, y: C-contiguous (rows, c), c % V == 0; weight, bias: (c,) when has_weight / has_bias.
template <typename T, int V>
__global__ void layer_norm_fwd(const T* __restrict__ x, const T* __restrict__ weight,
                               const T* __restrict__ bias, int has_weight, int has_bias, T eps,
                               int c, T* __restrict__ y, T* __restrict__ mean,
                               T* __restrict__ rstd) {
    const long long row = blockIdx.x;
    const T* xr = x + row * c;
    T* yr = y + row * c;
    const int packs = c / V;
    Moments<T> st{T(0), T(0), T(0)};
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        const Pack<T, V> p = load_pack<T, V>(xr, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) {  // Welford's update
            st.n += T(1);
            const T d = p.v[q] - st.mean;
            st.mean += d / st.n;
            st.m2 += d * (p.v[q] - st.mean);
        }
    }
    st = block_moments(st);
    const T mu = st.mean, rs = T(1) / k_sqrt(st.m2 / T(c) + eps);  // biased variance, as PyTorch
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        Pack<T, V> p = load_pack<T, V>(xr, k);
        Pack<T, V> w, b;
        if (has_weight) w = load_pack<T, V>(weight, k);
        if (has_bias) b = load_pack<T, V>(bias, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) {
            T v = (p.v[q] - mu) * rs;
            if (has_weight) v *= w.v[q];
            if (has_bias) v += b.v[q];
            p.v[q] = v;
        }
        store_pack<T, V>(yr, k, p);
    }
    if (threadIdx.x == 0) { mean[row] = mu; rstd[row] = rs; }
}

template <typename T, int V>
__global__ void layer_norm_bwd_dx(const T* __restrict__ dy, const T* __restrict__ x,
                                  const T* __restrict__ weight, int has_weight,
                                  const T* __restrict__ mean, const T* __restrict__ rstd, int c,
                                  T* __restrict__ dx) {
    const long long row = blockIdx.x;
    const T* dyr = dy + row * c;
    const T* xr = x + row * c;
    T* dxr = dx + row * c;
    const int packs = c / V;
    const T mu = mean[row], rs = rstd[row];
    T s_g = T(0), s_gx = T(0);
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        const Pack<T, V> g = load_pack<T, V>(dyr, k), p = load_pack<T, V>(xr, k);
        Pack<T, V> w;
        if (has_weight) w = load_pack<T, V>(weight, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) {
            const T gq = has_weight ? g.v[q] * w.v[q] : g.v[q];
            s_g += gq;
            s_gx += gq * ((p.v[q] - mu) * rs);
        }
    }
    block_sum2(s_g, s_gx);
    const T g_mean = s_g / T(c), gx_mean = s_gx / T(c);
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        Pack<T, V> g = load_pack<T, V>(dyr, k);
        const Pack<T, V> p = load_pack<T, V>(xr, k);
        Pack<T, V> w;
        if (has_weight) w = load_pack<T, V>(weight, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) {
            const T gq = has_weight ? g.v[q] * w.v[q] : g.v[q];
            const T xhat = (p.v[q] - mu) * rs;
            g.v[q] = rs * (gq - g_mean - xhat * gx_mean);
        }
        store_pack<T, V>(dxr, k, g);
    }
}

// Partial column sums: thread (pack k, chunk blockIdx.y) sums rows [y0, y1) of its V columns.
// part_w, part_b: (gridDim.y, c).
template <typename T, int V>
__global__ void layer_norm_bwd_dparams(const T* __restrict__ dy, const T* __restrict__ x,
                                       const T* __restrict__ mean, const T* __restrict__ rstd,
                                       long long rows, int c, int rows_per_chunk,
                                       T* __restrict__ part_w, T* __restrict__ part_b) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= c / V) return;
    const long long y0 = (long long)blockIdx.y * rows_per_chunk;
    const long long y1 = y0 + rows_per_chunk < rows ? y0 + rows_per_chunk : rows;
    Pack<T, V> sw, sb;
    #pragma unroll
    for (int q = 0; q < V; ++q) { sw.v[q] = T(0); sb.v[q] = T(0); }
    for (long long i = y0; i < y1; ++i) {
        const Pack<T, V> g = load_pack<T, V>(dy + i * c, k), p = load_pack<T, V>(x + i * c, k);
        const T mu = mean[i], rs = rstd[i];
        #pragma unroll
        for (int q = 0; q < V; ++q) {
            sw.v[q] += g.v[q] * ((p.v[q] - mu) * rs);
            sb.v[q] += g.v[q];
        }
    }
    store_pack<T, V>(part_w + (long long)blockIdx.y * c, k, sw);
    store_pack<T, V>(part_b + (long long)blockIdx.y * c, k, sb);
}
"""

NAME_EXPRESSIONS = (expressions("layer_norm_fwd") + expressions("layer_norm_bwd_dx")
                    + expressions("layer_norm_bwd_dparams"))

_DPARAMS_THREADS = 128
_DPARAMS_BLOCKS = 132 * 8  # about eight blocks per SM of an H100/H200


def _kernel(template, dtype, v):
    return get_kernel(__name__, SOURCE, NAME_EXPRESSIONS, f"{template}<{ctype(dtype)}, {v}>")


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
    w = rows if weight is None else xp.ascontiguousarray(weight)  # unread when absent
    b = rows if bias is None else xp.ascontiguousarray(bias)
    y = xp.empty_like(rows)
    mean = xp.empty(n, x.dtype)
    rstd = xp.empty(n, x.dtype)
    v = vector_width(x.dtype, rows, y, w, b, row_length=c)
    _kernel("layer_norm_fwd", x.dtype, v)(
        (n,), (row_threads(c // v),),
        (rows, w, b, np.int32(weight is not None), np.int32(bias is not None),
         x.dtype.type(eps), np.int32(c), y, mean, rstd))
    return y.reshape(x.shape), mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])


def layer_norm_bwd(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias); dweight is None when weight is None.

    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight, xhat recomputed;
    dweight = sum over rows of dy * xhat, dbias = sum over rows of dy.
    """
    check_layer_norm_bwd(dy, x, weight, mean, rstd)
    if x.ndim == 0 or x.size == 0:
        return reference.layer_norm_bwd(dy, x, weight, mean, rstd)
    xp = array_module(x)
    rows, dy_rows = as_rows(x), as_rows(dy)
    n, c = rows.shape
    w = rows if weight is None else xp.ascontiguousarray(weight)
    mean_flat = xp.ascontiguousarray(mean).reshape(n)
    rstd_flat = xp.ascontiguousarray(rstd).reshape(n)
    dx = xp.empty_like(rows)
    v = vector_width(x.dtype, rows, dy_rows, dx, w, row_length=c)
    _kernel("layer_norm_bwd_dx", x.dtype, v)(
        (n,), (row_threads(c // v),),
        (dy_rows, rows, w, np.int32(weight is not None), mean_flat, rstd_flat, np.int32(c), dx))
    # dweight, dbias: enough row chunks to fill the GPU, partial sums added by CuPy.
    col_blocks = (c // v + _DPARAMS_THREADS - 1) // _DPARAMS_THREADS
    chunks = max(1, min(n, _DPARAMS_BLOCKS // col_blocks))
    per_chunk = (n + chunks - 1) // chunks
    chunks = (n + per_chunk - 1) // per_chunk
    part_w = xp.empty((chunks, c), x.dtype)
    part_b = xp.empty((chunks, c), x.dtype)
    _kernel("layer_norm_bwd_dparams", x.dtype, v)(
        (col_blocks, chunks), (_DPARAMS_THREADS,),
        (dy_rows, rows, mean_flat, rstd_flat, np.int64(n), np.int32(c), np.int32(per_chunk),
         part_w, part_b))
    dweight = part_w.sum(axis=0) if weight is not None else None
    return dx.reshape(x.shape), dweight, part_b.sum(axis=0)
