"""What the Numba-CUDA row-wise kernels share: the block size, a shared-memory block reduction,
the input checks and the reshape of (..., C) arrays to contiguous (N, C) rows.

Layout: one thread block per row. Thread t of a block visits the row's columns t, t + THREADS,
t + 2 * THREADS, ... (neighbouring threads read neighbouring addresses: coalesced), keeps its own
partial max or sum in a register, and the block combines the THREADS partials by a tree in shared
memory (``block_max``, ``block_sum``): log2(THREADS) halving steps with a barrier between them.
"""
from __future__ import annotations

import math

import numpy as np
from numba import config, cuda, float64

from tinygrad_pt.backend import array_module

SIMULATOR = bool(config.ENABLE_CUDASIM)

# Threads per block (a power of two, for the tree). 128 on a GPU: four warps, enough to keep a
# row of 1024 float32 in flight. The simulator runs each thread as a Python thread (a block of 32
# took twice as long as 16), so it uses 16: rows of 33 and 65 columns still wrap around the block.
THREADS = 16 if SIMULATOR else 128

DTYPES = (np.float32, np.float64)


@cuda.jit(device=True)
def block_max(buf, value):
    """The max of `value` over the block's threads, returned to every thread. buf: shared
    (THREADS,) float64. A barrier at the end lets the caller reuse buf at once."""
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step and buf[t + step] > buf[t]:
            buf[t] = buf[t + step]
        cuda.syncthreads()
        step //= 2
    result = buf[0]
    cuda.syncthreads()
    return result


@cuda.jit(device=True)
def block_sum(buf, value):
    """The sum of `value` over the block's threads (float64), as ``block_max``. The tree adds in
    a fixed order, so the result does not depend on thread timing: runs are reproducible."""
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step:
            buf[t] += buf[t + step]
        cuda.syncthreads()
        step //= 2
    result = buf[0]
    cuda.syncthreads()
    return result


@cuda.jit(device=True)
def finite_or_zero(m):
    """m when finite, else 0.0 (the reference's _finite_max: an all -inf row shifts by 0)."""
    if math.isinf(m) or math.isnan(m):
        return 0.0
    return m


def check_float(name, **arrays):
    """TypeError unless every array is float32 or float64, all of one dtype."""
    dtypes = {key: a.dtype for key, a in arrays.items() if a is not None}
    for key, dtype in dtypes.items():
        if dtype not in DTYPES:
            raise TypeError(f"{name}: {key} has dtype {dtype}; the CUDA kernels take float32 or "
                            f"float64")
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"{name}: the arrays must share one dtype; got {dtypes}")


def check_same_shape(name, a_name, a, b_name, b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: {a_name} shape {a.shape} != {b_name} shape {b.shape}")


def as_rows(x):
    """x (..., C) as a C-contiguous (N, C) array: a view when x already is contiguous."""
    xp = array_module(x)
    c = x.shape[-1]
    return xp.ascontiguousarray(x).reshape(-1, c)


@cuda.jit(device=True)
def row_shift(buf, x, i):
    """The shift for row i of x (N, C): its max over the block's strided columns, or 0 when that
    is not finite (an all -inf row), as the reference's _finite_max. exp(x - shift) <= 1."""
    m = -math.inf
    for j in range(cuda.threadIdx.x, x.shape[1], THREADS):
        if x[i, j] > m:
            m = float64(x[i, j])
    return finite_or_zero(block_max(buf, m))


# --------------------------------------------------------------------------------------------------
# Elementwise kernels (gelu, adamw): a grid-stride loop over a flat array. Thread k of a grid of G
# threads takes elements k, k + G, k + 2G, ... (neighbouring threads, neighbouring addresses), so
# one launch of a bounded grid covers any size. The bound: enough blocks to fill a GPU (an H100
# holds 132 SMs x 16 blocks of 128 threads); under the simulator, 2 blocks, so that arrays of more
# than 32 elements go round the loop and the tests exercise it.
MAX_BLOCKS = 2 if SIMULATOR else 4096


def flat_blocks(n):
    """Blocks of THREADS threads for a grid-stride loop over n > 0 elements."""
    return min(MAX_BLOCKS, (n + THREADS - 1) // THREADS)


def as_flat(x):
    """x as a C-contiguous 1-D array: a view when x already is contiguous, else a copy."""
    return array_module(x).ascontiguousarray(x).reshape(-1)
