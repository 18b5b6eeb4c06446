"""What the Numba-CUDA row-wise kernels share: the block size, a shared-memory block reduction,
the input checks and the reshape of (..., C) arrays to contiguous (N, C) rows.

Layout: one thread block per row. Thread t of a block visits the row's columns t, t + THREADS,
t + 2 * THREADS, ... (neighbouring threads read neighbouring addresses: coalesced), keeps its own
partial max or sum in a register, and the block combines the THREADS partials by a tree in shared
memory (``block_max``, ``block_sum``): log2(THREADS) halving steps with a barrier between them.
"""
from __future__ import annotations

import math

from numba import config, cuda, float64

# The pure-Python checks live in _checks (no Numba there), shared with the CUDA C kernels.
from ._checks import DTYPES, as_flat, as_rows, check_float, check_same_shape  # noqa: F401

SIMULATOR = bool(config.ENABLE_CUDASIM)

# Threads per block (a power of two, for the tree). 128 on a GPU: four warps, enough to keep a
# row of 1024 float32 in flight. The simulator runs each thread as a Python thread (a block of 32
# took twice as long as 16), so it uses 16: rows of 33 and 65 columns still wrap around the block.
THREADS = 16 if SIMULATOR else 128


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
