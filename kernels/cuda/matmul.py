"""A tiled shared-memory matmul (Numba-CUDA): a study kernel, to be measured against cuBLAS.

Same names, signatures and results as ``kernels/reference.py``:

    matmul_fwd(a, b) -> a @ b                    a (n, k), b (k, m) -> (n, m)
    matmul_bwd(dy, a, b) -> (dy @ b^T, a^T @ dy)

CuPy float32 / float64 arrays on a GPU; NumPy arrays under the simulator
(``NUMBA_ENABLE_CUDASIM=1``). Only 2-D operands of those dtypes take the kernel (a float32 with a
float64 operand is cast to float64 first, as NumPy would promote); batched or 1-D operands, other
dtypes, empty products and grids too large for one launch are handed to the reference
(``a @ b``, which also raises NumPy's or CuPy's error for shapes that do not align).

Algorithm (the classic tiled kernel). c is cut into TILE x TILE tiles, one thread block per tile,
launched as a grid of (ceil(m / TILE), ceil(n / TILE)) blocks of (TILE, TILE) threads; thread
(tx, ty) of block (bx, by) owns c[i, j], i = by * TILE + ty, j = bx * TILE + tx. The k axis is
walked in steps of TILE; at each step:

1. every thread loads one element of a's tile, a[i, p0 + tx], and one of b's tile,
   b[p0 + ty, j], into shared memory (threads with neighbouring tx read neighbouring addresses
   of a row: coalesced); an element outside a or b is stored as 0, so the edge tiles of sizes
   that TILE does not divide add nothing;
2. a barrier (``syncthreads``): the tiles are complete;
3. each thread adds sum_q sa[ty, q] * sb[q, tx] to its accumulator (sa[ty, q] is the same
   address for a row of threads, a broadcast; sb[q, tx] neighbouring addresses, no bank
   conflicts);
4. a second barrier before the tiles are overwritten.

Every thread takes part in every barrier, also those outside c (no early return: a thread that
left would hang or corrupt the block); only threads inside c store.

Arithmetic intensity per tile and k-step: 2 * TILE^2 elements come from global memory and
TILE^3 multiply-adds (2 * TILE^3 flops) use them, so TILE / 4 flop per byte in float32 (4 at
TILE = 16, 8 at 32) and TILE / 8 in float64. An H100 needs about 15 to 20 flop per byte of HBM
traffic to be compute-bound in float32; L2 serves part of the re-reads (a tile of a is read by
every block of its tile row), but at these tile sizes the kernel is bandwidth-bound.

Why it will lose to cuBLAS (~51 TFLOP/s float32 on an H100, ~407 with TF32; DESIGN.md):
- no register blocking: each thread computes one element of c, so each multiply-add costs two
  shared-memory loads; the load/store units, not the FMA units, set the pace;
- small tiles: TILE / 4 flop per byte, where cuBLAS's 128 x 128 (or larger) block tiles reach 32;
- no tensor cores (TF32 / FP16 mma), which Numba does not expose, and no overlap of the next
  tile's loads with the current tile's math (cp.async double buffering);
- the launch from Python (Numba's argument handling) costs tens of microseconds, which dominates
  small products.
Next step: register blocking, i.e. a block tile of 64 x 64 or 128 x 128 with a k-slab of 8 or
16, each thread computing an 8 x 8 micro-tile of c in registers from 8 values of a and 8 of b
per q (2 / 8 shared loads per multiply-add instead of 2); then vectorised 128-bit loads and
double-buffered shared tiles; tensor cores need CUDA C (a CuPy RawModule with mma/WMMA).

Precision: the accumulator has the operands' dtype (a float32 register for float32), as cuBLAS
without TF32: a float64 accumulator would run a float32 product at the FP64 rate and would not
be the same computation that it is measured against. The products are summed in k order, each
a * b + acc contracted into one FMA, so the rounding error of c[i, j] is bounded by about
k * eps * (|a| @ |b|)[i, j], and a run is reproducible (no atomics, fixed order).

What the compiler makes of it (``numba.cuda.compile_ptx`` for sm_90, TILE = 16, float32): the
q loop fully unrolled into 16 ``fma.rn.f32`` with 32 ``ld.shared`` (the two loads per
multiply-add counted above), two ``bar.sync`` per k-step, two 1 KB shared arrays.

Backward: the forward kernel on transposed operands, made by a transposed copy
(``ascontiguousarray(b.T)``): the kernel's loads are coalesced only along rows of a C-contiguous
array (reading b^T through its strides would make neighbouring threads read addresses a whole
row of b apart), and one compiled layout per dtype serves forward and backward alike. The copy
costs O(k * m) memory traffic against the product's O(n * k * m) work.

TILE: 16 on a GPU (256 threads, 1 KB of shared memory per float32 tile, 2 KB for the pair; 32
would give 1,024 threads, the most a block may hold, and fewer resident blocks per SM). 4 under
the simulator, which runs each thread as a Python thread: sizes 1..9 then cover one, two and
three tiles, with ragged edges, on every axis.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32, float64

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from ._common import SIMULATOR

__all__ = ["matmul_fwd", "matmul_bwd"]

TILE = 4 if SIMULATOR else 16
MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y (the row tiles); larger n goes to the reference

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _tiled_kernel(dtype):
    """The kernel for one dtype (a Numba type): the shared tiles and the accumulator need the
    dtype at compile time, so it is a closure constant, one kernel object per dtype."""

    @cuda.jit
    def kernel(a, b, c):
        """c = a @ b for C-contiguous a (n, k), b (k, m), c (n, m); block (bx, by): c's tile."""
        sa = cuda.shared.array((TILE, TILE), dtype)
        sb = cuda.shared.array((TILE, TILE), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        i = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        n, k = a.shape
        m = b.shape[1]
        acc = dtype(0.0)
        for p0 in range(0, k, TILE):
            # 1. load one element of each tile; outside the operands, 0. (One zeroed tile would
            # do if 0 * x were always 0; both are zeroed because shared memory that was never
            # written may hold the bits of NaN or Inf, and 0 * NaN = NaN.)
            if i < n and p0 + tx < k:
                sa[ty, tx] = a[i, p0 + tx]
            else:
                sa[ty, tx] = 0.0
            if p0 + ty < k and j < m:
                sb[ty, tx] = b[p0 + ty, j]
            else:
                sb[ty, tx] = 0.0
            cuda.syncthreads()  # 2. both tiles complete
            for q in range(TILE):  # 3. a row of sa times a column of sb
                acc += sa[ty, q] * sb[q, tx]
            cuda.syncthreads()  # 4. everyone is done reading before the next load
        if i < n and j < m:
            c[i, j] = acc

    return kernel


_KERNELS = {np.dtype(np.float32): _tiled_kernel(float32),
            np.dtype(np.float64): _tiled_kernel(float64)}


def _handled(a, b, *more):
    """The common dtype when the kernel takes these operands, else None (the reference runs):
    float32/64, all 2-D, a's columns matching b's rows, nothing empty, a grid CUDA can launch.
    Checked here because a kernel reading past an array's end would not raise: it would read
    other memory."""
    arrays = (a, b) + more
    dtype = np.result_type(*(x.dtype for x in arrays))
    if dtype not in _DTYPES or any(x.ndim != 2 for x in arrays) or a.shape[1] != b.shape[0]:
        return None
    if a.size == 0 or b.size == 0 or (a.shape[0] + TILE - 1) // TILE > MAX_GRID_Y:
        return None  # empty: zeros (or a sum over nothing), as the reference gives them
    return dtype


def _product(a, b, dtype):
    """a (n, k) @ b (k, m) by the tiled kernel; the operands are made C-contiguous in dtype."""
    xp = array_module(a, b)
    a = xp.ascontiguousarray(a, dtype=dtype)
    b = xp.ascontiguousarray(b, dtype=dtype)
    n, m = a.shape[0], b.shape[1]
    c = xp.empty((n, m), dtype)
    grid = ((m + TILE - 1) // TILE, (n + TILE - 1) // TILE)  # (column tiles, row tiles)
    _KERNELS[dtype][grid, (TILE, TILE)](a, b, c)
    return c


def matmul_fwd(a, b):
    """y = a @ b for a (n, k) and b (k, m) -> (n, m)."""
    dtype = _handled(a, b)
    if dtype is None:
        return reference.matmul_fwd(a, b)
    return _product(a, b, dtype)


def matmul_bwd(dy, a, b):
    """da = dy @ b^T, db = a^T @ dy: the forward's kernel on transposed copies."""
    dtype = _handled(a, b, dy)
    if dtype is None or dy.shape != (a.shape[0], b.shape[1]):
        return reference.matmul_bwd(dy, a, b)
    return _product(dy, b.T, dtype), _product(a.T, dy, dtype)
