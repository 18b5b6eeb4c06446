"""AdamW, one fused elementwise kernel updating p, m, v in place, CUDA C for CuPy's RawModule.

Same name, signature and result as ``kernels/reference.py``:
``adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)`` (PyTorch's rule, step
counting from 1), updating p, m (exp_avg) and v (exp_avg_sq) in place and returning None.
CuPy float32 / float64; other dtypes raise TypeError, shapes that differ ValueError.

Kernel ``adamw<T, V>``: a grid-stride loop over V-wide packs of the four flat arrays, then the
n % V tail. Each element reads p, g, m, v once and writes p, m, v once: 7 accesses, 28 bytes per
float32 parameter, the least the update allows. The per-step scalars (1 - lr wd,
lr / (1 - beta1^step), 1 / sqrt(1 - beta2^step)) are computed once on the host.

In place through flat views, which exist only for C-contiguous p, m, v (the optimizer's state is
made by zeros_like, as contiguous as the parameter); for one that is not, the call runs the
reference and says so with a RuntimeWarning, as the Numba-CUDA kernel does.

Precision: float32 in float (as PyTorch's fused AdamW), float64 in double.
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import adamw_done_without_kernel, as_flat
from ._common import (FLAT_THREADS, HEADER, ctype, expressions, flat_blocks, get_kernel,
                      vector_width)

SOURCE = HEADER + r"""
template <typename T> __device__ __forceinline__ void adamw_one(T& p, T g, T& m, T& v, T decay,
        T beta1, T beta2, T step_size, T inv_sqrt_bias2, T eps) {
    m = m * beta1 + g * (T(1) - beta1);        // first moment
    v = v * beta2 + g * g * (T(1) - beta2);    // second moment
    // decoupled decay of the old p, then the bias-corrected step
    p = p * decay - (m * step_size) / (k_sqrt(v) * inv_sqrt_bias2 + eps);
}

template <typename T, int V>
__global__ void adamw(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                      T* __restrict__ v, long long n, T decay, T beta1, T beta2, T step_size,
                      T inv_sqrt_bias2, T eps) {
    const long long packs = n / V, stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (long long k = first; k < packs; k += stride) {
        Pack<T, V> pp = load_pack<T, V>(p, k), mm = load_pack<T, V>(m, k);
        Pack<T, V> vv = load_pack<T, V>(v, k);
        const Pack<T, V> gg = load_pack<T, V>(g, k);
        #pragma unroll
        for (int q = 0; q < V; ++q)
            adamw_one(pp.v[q], gg.v[q], mm.v[q], vv.v[q], decay, beta1, beta2, step_size,
                      inv_sqrt_bias2, eps);
        store_pack<T, V>(p, k, pp);
        store_pack<T, V>(m, k, mm);
        store_pack<T, V>(v, k, vv);
    }
    for (long long i = packs * V + first; i < n; i += stride)
        adamw_one(p[i], g[i], m[i], v[i], decay, beta1, beta2, step_size, inv_sqrt_bias2, eps);
}
"""

NAME_EXPRESSIONS = expressions("adamw")


def adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """One AdamW step on p, m, v in place:

        p -= lr * weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p -= lr * (m / (1 - beta1^step)) / (sqrt(v) / sqrt(1 - beta2^step) + eps)
    """
    if adamw_done_without_kernel(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay,
                                 "CUDA C kernel"):
        return None
    bias1 = 1.0 - beta1 ** step
    bias2 = 1.0 - beta2 ** step
    # reshape(-1) of a C-contiguous array is a view: the kernel writes into p, m, v themselves
    flat = [p.reshape(-1), as_flat(g), m.reshape(-1), v.reshape(-1)]
    n = p.size
    vw = vector_width(p.dtype, *flat)
    s = p.dtype.type
    fn = get_kernel(__name__, SOURCE, NAME_EXPRESSIONS, f"adamw<{ctype(p.dtype)}, {vw}>")
    fn((flat_blocks(max(1, n // vw)),), (FLAT_THREADS,),
       (*flat, np.int64(n), s(1.0 - lr * weight_decay), s(beta1), s(beta2), s(lr / bias1),
        s(1.0 / math.sqrt(bias2)), s(eps)))
    return None
