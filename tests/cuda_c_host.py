"""Run the CUDA C kernels on the CPU: each family's SOURCE compiled by g++ with a small shim that
plays the GPU, so that their logic (indices, packs, tails, reductions, -inf handling) is tested
on machines without one. Not a simulator of performance, nor of every CUDA rule.

How the shim plays the GPU:
- a launch runs its blocks one after another; a block's threads are real std::threads, so
  ``__syncthreads`` is a std::barrier over the block and ``__shared__`` variables can be plain
  statics (only one block lives at a time);
- ``__shfl_xor_sync`` exchanges through a per-warp slot array between two barriers of the warp,
  so all 32 lanes must reach it together, as on the GPU (a kernel that calls it from divergent
  lanes deadlocks here instead of silently working);
- the math functions are the C library's (float: expf, erfcf, ...), the device's differ by ulps.

``emulated_get_kernel`` stands in for ``_common.get_kernel``: the Python launchers then run
unchanged on NumPy arrays (their pointers passed as the kernel's arguments).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SHIM = r"""
#include <math.h>
#include <barrier>
#include <cstring>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static  /* one block at a time: a static is that block's shared memory */
struct Dim3 { unsigned x = 0, y = 0, z = 0; };
static thread_local Dim3 threadIdx, blockIdx;
static Dim3 blockDim, gridDim;
static std::unique_ptr<std::barrier<>> g_block;
static std::vector<std::unique_ptr<std::barrier<>>> g_warp;
static unsigned char g_slot[1024][8];
inline void __syncthreads() { g_block->arrive_and_wait(); }
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int o) {
    const int t = threadIdx.x, lane = t & 31;
    std::barrier<>& bar = *g_warp[t >> 5];
    std::memcpy(g_slot[t], &v, sizeof(T));
    bar.arrive_and_wait();
    T r;
    std::memcpy(&r, g_slot[(t & ~31) | (lane ^ o)], sizeof(T));
    bar.arrive_and_wait();
    return r;
}
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }

template <typename... A, std::size_t... I>
void call_with(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*reinterpret_cast<std::remove_reference_t<A>*>(args[I])...);
}
template <typename... A>
void launch(void (*f)(A...), unsigned gx, unsigned gy, unsigned bx, void** args) {
    gridDim = Dim3{gx, gy, 1};
    blockDim = Dim3{bx, 1, 1};
    for (unsigned by = 0; by < gy; ++by)
        for (unsigned b = 0; b < gx; ++b) {
            g_block = std::make_unique<std::barrier<>>(bx);
            g_warp.clear();
            for (unsigned w = 0; w < (bx + 31) / 32; ++w)
                g_warp.push_back(
                    std::make_unique<std::barrier<>>(bx - 32 * w < 32 ? bx - 32 * w : 32));
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < bx; ++t)
                threads.emplace_back([=] {
                    threadIdx = Dim3{t, 0, 0};
                    blockIdx = Dim3{b, by, 0};
                    call_with(f, args, std::index_sequence_for<A...>{});
                });
            for (auto& th : threads) th.join();
        }
}
"""


def _wrappers(name_expressions) -> str:
    return "\n".join(f'extern "C" void launch_{i}(unsigned gx, unsigned gy, unsigned bx, '
                     f'void** args) {{ launch(&{expr}, gx, gy, bx, args); }}'
                     for i, expr in enumerate(name_expressions))


def compiler() -> str | None:
    return shutil.which("g++")


def build(source: str, name_expressions) -> ctypes.CDLL:
    """The shared library of `source` for the host, cached by content in the temp folder."""
    # (#pragma unroll, which g++ does not know, is ignored: -Wno-unknown-pragmas)
    code = SHIM + source + "\n" + _wrappers(name_expressions) + "\n"
    digest = hashlib.sha256(code.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "tinygrad_pt_cuda_c_host"
    folder.mkdir(exist_ok=True)
    lib = folder / f"{digest}.so"
    if not lib.exists():
        # per-process names until the final rename: pytest-xdist workers may build at once
        src = folder / f"{digest}.{os.getpid()}.cpp"
        src.write_text(code)
        tmp = folder / f"{digest}.{os.getpid()}.so"
        run = subprocess.run([compiler(), "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread",
                              "-Wno-unknown-pragmas", "-o", str(tmp), str(src)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError("g++ failed on the host build of the kernels:\n"
                               + run.stderr[-4000:])
        tmp.replace(lib)  # atomic: a parallel test process sees the whole library or none
        src.unlink()
    return ctypes.CDLL(str(lib))


def _arg(value):
    """A ctypes value for one kernel argument, as the launchers pass them."""
    if isinstance(value, np.ndarray):
        return ctypes.c_void_p(value.ctypes.data)
    kinds = {np.int32: ctypes.c_int32, np.int64: ctypes.c_int64, np.float32: ctypes.c_float,
             np.float64: ctypes.c_double}
    for t, c in kinds.items():
        if isinstance(value, t):
            return c(value)
    raise TypeError(f"host launch: an argument of type {type(value).__name__}")


class HostKernel:
    """Called as a CuPy RawKernel is: kernel(grid, block, args)."""

    def __init__(self, fn, key):
        self.fn, self.key = fn, key

    def __call__(self, grid, block, args):
        values = [_arg(a) for a in args]
        argv = (ctypes.c_void_p * len(values))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        gx, gy = (tuple(grid) + (1,))[:2]
        LAUNCHED.setdefault(self.key, []).append((tuple(grid), tuple(block)))
        self.fn(ctypes.c_uint(gx), ctypes.c_uint(gy), ctypes.c_uint(block[0]), argv)


_libs: dict = {}
# "family: expression" -> [(grid, block) of each launch]: what ran, for the tests' coverage
LAUNCHED: dict = {}


def emulated_get_kernel(module_name, source, name_expressions, expression):
    key = (module_name, hashlib.sha256(source.encode()).hexdigest())
    if key not in _libs:
        _libs[key] = build(source, name_expressions)
    index = list(name_expressions).index(expression)
    fn = getattr(_libs[key], f"launch_{index}")
    fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p]
    fn.restype = None
    return HostKernel(fn, f"{module_name.rsplit('.', 1)[1]}: {expression}")


def uses_only_known_builtins(source: str) -> list:
    """CUDA builtins in `source` that the shim does not define (to fail with a clear message)."""
    known = {"__syncthreads", "__shfl_xor_sync", "__int_as_float", "__longlong_as_double"}
    return sorted(set(re.findall(r"\b(__[a-z_]+)\s*\(", source)) - known)
