"""GELU, exact (erfc) and tanh-approximated, fused elementwise, CUDA C for CuPy's RawModule.

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``gelu_fwd(x, approximate)`` and ``gelu_bwd(dy, x, approximate)``; approximate "tanh" or anything
else for the exact form, as the reference. Any shape (a contiguous copy is flattened when x is
not contiguous); CuPy float32 / float64.

Kernels ``gelu_fwd<T, V>``, ``gelu_bwd<T, V>``: a grid-stride loop over V-wide packs of the flat
array, then the n % V tail element by element; each element read once and written once.
- tanh form, as the Numba kernels: 1 + tanh(u) = 2 s with s = sigmoid(2u), so GELU(x) = x s and
  GELU'(x) = s + 2 x s (1 - s) du/dx, with s and s (1 - s) = e / (1 + e)^2 from e = exp(-2|u|) <= 1:
  exp cannot overflow and 1 + tanh(u) does not cancel for negative x.
- exact form: GELU(x) = x erfc(-x / sqrt 2) / 2, GELU'(x) = Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi).
Large |x|: x is clamped to +-1e4 before the cubic, and phi is 0 beyond |x| = 40 (where
exp(-x^2 / 2) underflows anyway), so nothing overflows and no inf * 0 makes a NaN for finite x.

Precision: float32 in float (erfcf, expf), float64 in double.
"""
from __future__ import annotations

import math

import numpy as np

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from .._checks import as_flat, check_float, check_same_shape
from ._common import (FLAT_THREADS, HEADER, ctype, expressions, flat_blocks, get_kernel,
                      vector_width)

SOURCE = HEADER + f"""
#define SQRT_2_OVER_PI {math.sqrt(2.0 / math.pi)!r}
#define INV_SQRT_2 {1.0 / math.sqrt(2.0)!r}
#define INV_SQRT_2PI {1.0 / math.sqrt(2.0 * math.pi)!r}
""" + r"""
#define GELU_CUBIC 0.044715
#define GELU_SATURATE 1e4   // |x| beyond: e = exp(-2|u|) is 0, s exactly 0 or 1
#define GELU_PDF_ZERO 40.0  // |x| beyond: exp(-x^2 / 2) is 0 in float64

// (s, ds) of the tanh form: s = sigmoid(2u) = (1 + tanh u) / 2, ds = 2 s (1 - s) du/dx.
template <typename T> __device__ __forceinline__ void tanh_parts(T x, T& s, T& ds) {
    const T lim = T(GELU_SATURATE);
    const T xc = x > lim ? lim : (x < -lim ? -lim : x);
    const T u = T(SQRT_2_OVER_PI) * (xc + T(GELU_CUBIC) * xc * xc * xc);
    const T e = k_exp(T(-2) * k_abs(u));
    s = (u >= T(0) ? T(1) : e) / (T(1) + e);
    const T du = T(SQRT_2_OVER_PI) * (T(1) + T(3 * GELU_CUBIC) * xc * xc);
    ds = T(2) * du * (e / ((T(1) + e) * (T(1) + e)));
}

template <typename T> __device__ __forceinline__ T gelu(T x, int tanh_form) {
    if (tanh_form) { T s, ds; tanh_parts(x, s, ds); return x * s; }
    return T(0.5) * x * k_erfc(T(-INV_SQRT_2) * x);
}

template <typename T> __device__ __forceinline__ T gelu_grad(T x, int tanh_form) {
    if (tanh_form) {
        T s, ds;
        tanh_parts(x, s, ds);
        return s + (ds > T(0) ? x * ds : T(0));  // ds is 0 wherever x was clamped: never inf * 0
    }
    const T pdf = k_abs(x) >= T(GELU_PDF_ZERO) ? T(0) : T(INV_SQRT_2PI) * k_exp(T(-0.5) * x * x);
    return T(0.5) * k_erfc(T(-INV_SQRT_2) * x) + (pdf > T(0) ? x * pdf : T(0));
}

// x, y, dy, dx: C-contiguous, n elements, 16-byte aligned when V > 1.
template <typename T, int V>
__global__ void gelu_fwd(const T* __restrict__ x, T* __restrict__ y, long long n, int tanh_form) {
    const long long packs = n / V, stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (long long k = first; k < packs; k += stride) {
        Pack<T, V> p = load_pack<T, V>(x, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) p.v[q] = gelu(p.v[q], tanh_form);
        store_pack<T, V>(y, k, p);
    }
    for (long long i = packs * V + first; i < n; i += stride) y[i] = gelu(x[i], tanh_form);
}

template <typename T, int V>
__global__ void gelu_bwd(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx,
                         long long n, int tanh_form) {
    const long long packs = n / V, stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (long long k = first; k < packs; k += stride) {
        Pack<T, V> g = load_pack<T, V>(dy, k);
        const Pack<T, V> p = load_pack<T, V>(x, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) g.v[q] *= gelu_grad(p.v[q], tanh_form);
        store_pack<T, V>(dx, k, g);
    }
    for (long long i = packs * V + first; i < n; i += stride)
        dx[i] = dy[i] * gelu_grad(x[i], tanh_form);
}
"""

NAME_EXPRESSIONS = expressions("gelu_fwd") + expressions("gelu_bwd")


def _launch(template, out, *inputs, tanh):
    n = out.size
    v = vector_width(out.dtype, out, *inputs)
    fn = get_kernel(__name__, SOURCE, NAME_EXPRESSIONS, f"{template}<{ctype(out.dtype)}, {v}>")
    fn((flat_blocks(max(1, n // v)),), (FLAT_THREADS,), (*inputs, out, np.int64(n), np.int32(tanh)))


def gelu_fwd(x, approximate="none"):
    """GELU(x) = x * Phi(x); "tanh": x / 2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    check_float("gelu_fwd", x=x)
    if x.size == 0:  # nothing to launch: the reference's answer
        return reference.gelu_fwd(x, approximate)
    flat = as_flat(x)
    y = array_module(x).empty_like(flat)
    _launch("gelu_fwd", y, flat, tanh=approximate == "tanh")
    return y.reshape(x.shape)


def gelu_bwd(dy, x, approximate="none"):
    """dx = dy * GELU'(x)."""
    check_float("gelu_bwd", dy=dy, x=x)
    check_same_shape("gelu_bwd", "dy", dy, "x", x)
    if x.size == 0:
        return reference.gelu_bwd(dy, x, approximate)
    flat = as_flat(x)
    dx = array_module(x).empty_like(flat)
    _launch("gelu_bwd", dx, as_flat(dy), flat, tanh=approximate == "tanh")
    return dx.reshape(x.shape)
