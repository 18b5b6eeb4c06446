"""What the CUDA C kernels share: a CUDA C header (packed 16-byte loads, warp-shuffle and block
reductions, the math of each dtype) and the Python side (the module cache, the choice of vector
width, launch shapes).

Every family module holds ``SOURCE`` (this ``HEADER`` followed by its kernels, templates over the
element type T and the vector width V) and ``NAME_EXPRESSIONS`` (each instantiation launched, e.g.
``"softmax_fwd<float, 4>"``). CuPy's RawModule compiles exactly that pair on a GPU; the NVRTC test
(tests/test_cuda_c_compile.py) compiles the same pair for sm_90 on machines without one.

Vector width: a row of a float32 array is read as float4 (``Pack<float, 4>``, one 16-byte load),
of float64 as double2 (``Pack<double, 2>``) when every pointer is 16-byte aligned and (for row
kernels) the row length is a multiple of V, so every row starts aligned; otherwise V = 1, plain
scalar accesses (still coalesced: neighbouring threads, neighbouring addresses). The elementwise
kernels take packs over the aligned bulk and scalars for the tail of n % V elements.

Reductions: ``warp_sum`` / ``warp_max`` combine a warp's 32 lanes with ``__shfl_xor_sync`` (five
butterfly steps, every lane gets the result, no shared memory); a block reduction writes one
value per warp to shared memory, and then every warp reduces those partials itself, so the result
reaches all threads with two barriers and no broadcast step.
"""
from __future__ import annotations

import numpy as np

# Compiler options for CuPy's RawModule and for NVRTC alike (the architecture is added by each:
# CuPy picks the device's, the NVRTC test sm_90). No fast-math: erfc, exp and division stay IEEE.
OPTIONS = ("--std=c++17",)

HEADER = r"""
// ---- kernels/cuda/cuda_c/_common.py: shared by every family --------------------------------
#define FULL_MASK 0xffffffffu

// V consecutive elements as one aligned access: Pack<float, 4> compiles to ld.global.v4.f32 and
// Pack<double, 2> to ld.global.v2.f64 (16 bytes); V = 1 is a scalar.
template <typename T, int V> struct alignas(sizeof(T) * V) Pack { T v[V]; };

template <typename T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* __restrict__ p, long long k) {
    return reinterpret_cast<const Pack<T, V>*>(p)[k];
}
template <typename T, int V>
__device__ __forceinline__ void store_pack(T* __restrict__ p, long long k, const Pack<T, V>& q) {
    reinterpret_cast<Pack<T, V>*>(p)[k] = q;
}

// The math of each dtype: float32 data is computed in float (expf, erfcf: the CuPy reference
// computes in float32 too), float64 in double.
__device__ __forceinline__ float  k_exp(float x)  { return expf(x); }
__device__ __forceinline__ double k_exp(double x) { return exp(x); }
__device__ __forceinline__ float  k_log(float x)  { return logf(x); }
__device__ __forceinline__ double k_log(double x) { return log(x); }
__device__ __forceinline__ float  k_sqrt(float x)  { return sqrtf(x); }
__device__ __forceinline__ double k_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float  k_erfc(float x)  { return erfcf(x); }
__device__ __forceinline__ double k_erfc(double x) { return erfc(x); }
__device__ __forceinline__ float  k_max(float a, float b)   { return fmaxf(a, b); }
__device__ __forceinline__ double k_max(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float  k_abs(float x)  { return fabsf(x); }
__device__ __forceinline__ double k_abs(double x) { return fabs(x); }
__device__ __forceinline__ bool k_finite(float x)  { return isfinite(x); }
__device__ __forceinline__ bool k_finite(double x) { return isfinite(x); }
template <typename T> __device__ __forceinline__ T k_inf();
template <> __device__ __forceinline__ float  k_inf<float>()  { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double k_inf<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}
template <typename T> __device__ __forceinline__ T k_nan();
template <> __device__ __forceinline__ float  k_nan<float>()  { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double k_nan<double>() {
    return __longlong_as_double(0x7ff8000000000000LL);
}

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// The sum of v over the block (blockDim.x a multiple of 32, at most 1024), to every thread.
// The first barrier keeps a warp from overwriting the partials while a slower warp still reads
// those of the previous call; a block of one warp needs no shared memory at all.
template <typename T> __device__ __forceinline__ T block_sum(T v) {
    __shared__ T part[32];
    v = warp_sum(v);
    if (blockDim.x == 32) return v;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    return warp_sum(lane < (int)(blockDim.x >> 5) ? part[lane] : T(0));
}

// Two sums at once (one pair of barriers for both).
template <typename T> __device__ __forceinline__ void block_sum2(T& a, T& b) {
    __shared__ T part[2][32];
    a = warp_sum(a);
    b = warp_sum(b);
    if (blockDim.x == 32) return;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) { part[0][warp] = a; part[1][warp] = b; }
    __syncthreads();
    const bool live = lane < (int)(blockDim.x >> 5);
    a = warp_sum(live ? part[0][lane] : T(0));
    b = warp_sum(live ? part[1][lane] : T(0));
}

// Online softmax statistics (Milakov and Gimelshein): the running max m of the values seen and
// s = sum exp(x - m), updated with one exp per value. -inf values add nothing; NaN propagates
// through s. An empty state is (-inf, 0).
template <typename T> struct MaxSum { T m, s; };

template <typename T> __device__ __forceinline__ void push(MaxSum<T>& st, T x) {
    if (x > st.m) { st.s = st.s * k_exp(st.m - x) + T(1); st.m = x; }   // exp(-inf) = 0
    else if (x != -k_inf<T>()) st.s += k_exp(x - st.m);                   // NaN lands here too
}

template <typename T> __device__ __forceinline__ MaxSum<T> merge(MaxSum<T> a, MaxSum<T> b) {
    const T m = k_max(a.m, b.m);
    if (m == -k_inf<T>()) return MaxSum<T>{m, a.s + b.s};  // both empty (0, or NaN kept)
    return MaxSum<T>{m, a.s * k_exp(a.m - m) + b.s * k_exp(b.m - m)};
}

template <typename T> __device__ __forceinline__ MaxSum<T> warp_max_sum(MaxSum<T> st) {
    for (int o = 16; o > 0; o >>= 1) {
        MaxSum<T> other{__shfl_xor_sync(FULL_MASK, st.m, o), __shfl_xor_sync(FULL_MASK, st.s, o)};
        st = merge(st, other);
    }
    return st;
}

template <typename T> __device__ __forceinline__ MaxSum<T> block_max_sum(MaxSum<T> st) {
    __shared__ T part_m[32], part_s[32];
    st = warp_max_sum(st);
    if (blockDim.x == 32) return st;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) { part_m[warp] = st.m; part_s[warp] = st.s; }
    __syncthreads();
    const bool live = lane < (int)(blockDim.x >> 5);
    return warp_max_sum(MaxSum<T>{live ? part_m[lane] : -k_inf<T>(), live ? part_s[lane] : T(0)});
}

// The reference's shift (_finite_max): the max when finite, else 0; and the sum taken relative to
// it. A row holding +inf gets s = exp(inf) = inf (its probabilities NaN and 0, as the reference);
// an all -inf row gets s = 0 (NaN: no distribution).
template <typename T> __device__ __forceinline__ void shift_of(MaxSum<T> st, T& shift, T& s) {
    shift = k_finite(st.m) ? st.m : T(0);
    s = st.m == shift ? st.s : st.s * k_exp(st.m - shift);
}

// One row's shift and sum of exp (shift_of) in one sweep over its `packs` packs of V values,
// reduced over the block: the first pass of softmax and of cross-entropy.
template <typename T, int V>
__device__ __forceinline__ void row_shift_sum(const T* __restrict__ xr, int packs, T& shift, T& s) {
    MaxSum<T> st{-k_inf<T>(), T(0)};
    for (int k = threadIdx.x; k < packs; k += blockDim.x) {
        const Pack<T, V> p = load_pack<T, V>(xr, k);
        #pragma unroll
        for (int q = 0; q < V; ++q) push(st, p.v[q]);
    }
    shift_of(block_max_sum(st), shift, s);
}
// ---- end of the shared header -----------------------------------------------------------------
"""

ROW_THREADS_MAX = 512
FLAT_THREADS = 256


def cupy():
    """CuPy, imported on first launch: importing a kernel module needs neither CuPy nor a GPU
    (the NVRTC test reads SOURCE and NAME_EXPRESSIONS only)."""
    import cupy as cp  # noqa: PLC0415 (optional dependency, GPU only)
    return cp


_modules: dict = {}  # (module name, device id) -> cupy.RawModule


def get_kernel(module_name: str, source: str, name_expressions, expression: str):
    """The compiled kernel `expression` of a family's module on the current device: one
    RawModule per family and device, compiled on first use (CuPy also keeps the binary in its
    on-disk cache, so a second process does not compile again)."""
    cp = cupy()
    key = (module_name, cp.cuda.Device().id)
    mod = _modules.get(key)
    if mod is None:
        mod = cp.RawModule(code=source, options=OPTIONS, name_expressions=list(name_expressions))
        _modules[key] = mod
    return mod.get_function(expression)


def ctype(dtype) -> str:
    """The C type of a float32 / float64 dtype, as the name expressions spell it."""
    return {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[np.dtype(dtype)]


def vector_width(dtype, *arrays, row_length: int | None = None) -> int:
    """16 bytes' worth of elements (4 float32, 2 float64) when every array's data pointer is
    16-byte aligned and, for a row kernel, the row length is a multiple of that (so every row
    starts aligned); 1 otherwise."""
    v = 16 // np.dtype(dtype).itemsize
    if row_length is not None and row_length % v:
        return 1
    if any(a is not None and data_pointer(a) % 16 for a in arrays):
        return 1
    return v


def data_pointer(a) -> int:
    """The address of a's first element: CuPy's a.data.ptr; NumPy's a.ctypes.data (the kernels
    run on NumPy arrays in tests/cuda_c_host.py, which plays the GPU on the CPU)."""
    data = a.data
    return data.ptr if hasattr(data, "ptr") else a.ctypes.data


def row_threads(packs: int) -> int:
    """Threads per row for a row of `packs` vectors: about four packs per thread, a whole number
    of warps (32 for short rows: the block reductions then need no shared memory), at most
    ROW_THREADS_MAX. A first choice, to be tuned on the GPU."""
    t = 32
    while t < ROW_THREADS_MAX and t * 4 < packs:
        t *= 2
    return t


def flat_blocks(packs: int, threads: int = FLAT_THREADS) -> int:
    """Blocks for a grid-stride loop over `packs` vectors: enough to fill an H100/H200 (132 SMs,
    8 blocks of 256 threads each), never more than there is work."""
    return max(1, min(132 * 8, (packs + threads - 1) // threads))


def expressions(kernel: str) -> list[str]:
    """The four instantiations of a kernel template: float and double, vector and scalar."""
    return [f"{kernel}<float, 4>", f"{kernel}<float, 1>", f"{kernel}<double, 2>",
            f"{kernel}<double, 1>"]
