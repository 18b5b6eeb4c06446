"""Softmax and log-softmax along any axis, CUDA C for CuPy's RawModule.

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``softmax_fwd(x, axis)``, ``softmax_bwd(dy, y, axis)``, ``log_softmax_fwd(x, axis)``,
``log_softmax_bwd(dy, y, axis)``. CuPy float32 / float64 arrays; other dtypes raise TypeError.

Kernels (one block per row, ``_common.row_threads`` threads; V-wide packs, ``_common``):
- ``softmax_fwd<T, V>``: one sweep for the statistics, with the online max and sum (each value
  read once, one exp each, ``push``), combined across the block by warp shuffles; a second sweep
  writes exp(x - max) / sum, or x - max - log(sum). The second sweep re-reads a row the block has
  just read (16 KiB for 4096 float32), which L1/L2 still hold: about one read and one write of
  DRAM per element, the copy's traffic.
- ``softmax_bwd<T, V>``: one sweep for sum(dy * y) (log-softmax: sum(dy)), one to write dx.

Variants to try on a GPU (not written yet): one warp per row with several rows per block for
short rows, and a register-cached row (read exactly once) for rows up to a few thousand.

Precision: float32 rows are computed in float (as the CuPy reference), float64 in double.
Non-finite input follows the reference: -inf entries get probability 0, an all -inf row NaN.
"""
from __future__ import annotations

import numpy as np

from .._checks import softmax_rows_bwd, softmax_rows_fwd
from ._common import HEADER, ctype, expressions, get_kernel, row_threads, vector_width

SOURCE = HEADER + r"""
// x, y, dy, dx: C-contiguous (rows, c) with c % V == 0; block `blockIdx.x` owns one row.
template <typename T, int V>
__global__ void softmax_fwd(const T* __restrict__ x, T* __restrict__ y, int c, int log_out) {
    const long long base = (long long)blockIdx.x * c;
    const T* xr = x + base;
    T* yr = y + base;
    const int packs = c / V;
    T shift, s;
    row_shift_sum<T, V>(xr, packs, shift, s);
    const T inv_s = T(1) / s, log_s = k_log(s);
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        Pack<T, V> p = load_pack<T, V>(xr, k);
        #pragma unroll
        for (int q = 0; q < V; ++q)
            p.v[q] = log_out ? (p.v[q] - shift) - log_s : k_exp(p.v[q] - shift) * inv_s;
        store_pack<T, V>(yr, k, p);
    }
}

// softmax: dx = y * (dy - sum(dy * y));  log_softmax: dx = dy - exp(y) * sum(dy).
template <typename T, int V>
__global__ void softmax_bwd(const T* __restrict__ dy, const T* __restrict__ y,
                            T* __restrict__ dx, int c, int log_out) {
    const long long base = (long long)blockIdx.x * c;
    const T* dyr = dy + base;
    const T* yr = y + base;
    T* dxr = dx + base;
    const int packs = c / V;
    T s = T(0);
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        const Pack<T, V> g = load_pack<T, V>(dyr, k);
        const Pack<T, V> p = load_pack<T, V>(yr, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) s += log_out ? g.v[q] : g.v[q] * p.v[q];
    }
    s = block_sum(s);
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        Pack<T, V> g = load_pack<T, V>(dyr, k);
        const Pack<T, V> p = load_pack<T, V>(yr, k);
        #pragma unroll
        for (int q = 0; q < V; ++q)
            g.v[q] = log_out ? g.v[q] - k_exp(p.v[q]) * s : p.v[q] * (g.v[q] - s);
        store_pack<T, V>(dxr, k, g);
    }
}
"""

NAME_EXPRESSIONS = expressions("softmax_fwd") + expressions("softmax_bwd")


def _launch(kernel, out, *inputs, log):
    """One block per row of the (rows, c) arrays `inputs`, writing `out`."""
    rows, c = out.shape
    v = vector_width(out.dtype, out, *inputs, row_length=c)
    fn = get_kernel(__name__, SOURCE, NAME_EXPRESSIONS, f"{kernel}<{ctype(out.dtype)}, {v}>")
    fn((rows,), (row_threads(c // v),), (*inputs, out, np.int32(c), np.int32(log)))


def _launch_fwd(rows, y, log):
    _launch("softmax_fwd", y, rows, log=log)


def _launch_bwd(dy_rows, y_rows, dx, log):
    _launch("softmax_bwd", dx, dy_rows, y_rows, log=log)


def _forward(x, axis, log):
    return softmax_rows_fwd(x, axis, log, _launch_fwd)  # the checks and reshapes: _checks.py


def _backward(dy, y, axis, log):
    return softmax_rows_bwd(dy, y, axis, log, _launch_bwd)


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
