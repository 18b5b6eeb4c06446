"""A blocked (tiled) Numba matmul: a study kernel, measured against NumPy's BLAS.

Same names, signatures and results as ``kernels/reference.py``:

    matmul_fwd(a, b, *, variant="auto") -> a @ b      a (..., n, k), b (..., k, m), equal batch axes
    matmul_bwd(dy, a, b, *, variant="auto") -> (dy @ b^T, a^T @ dy)

``variant`` (keyword only, beyond the reference's signature) forces one of the variants below,
for tests and benchmarks; callers through the registry get "auto".

The backward is the same kernel run on transposed operands. The transposed view is copied to
C-contiguous first (O(k m) work against the product's O(n k m)), so that one compiled signature
per dtype serves forward and backward alike. float32 and float64 run here; other dtypes, 1-D
operands and broadcast batch axes are handed to the reference (NumPy's a @ b).

Variants (``variant=`` picks one; "auto" takes the blocked kernel except for tiny products):

1. naive (``_matmul_naive``): the i-k-j loop order. For each row i of c and each p,
   c[i, :] += a[i, p] * b[p, :]: the inner loop runs along rows of b and c, which are contiguous,
   so it vectorises (the i-j-k order would be a dot product per element: a reduction that
   fastmath=False keeps scalar). In parallel over the rows. It streams all of b once per row of
   c: fine while b fits in the cache, slow after.
2. blocked (``_matmul_blocked``): the same product in tiles that stay in the caches. In parallel
   over (batch, block of BLOCK_N rows); for each slab of BLOCK_K columns of a (rows of b) and
   each panel of BLOCK_M columns of b, a BLOCK_K x BLOCK_M block of b (128 KB in float32) is
   reused by all BLOCK_N rows while it sits in L2, and each row of c's panel (1 KB) is updated
   in L1. The inner update takes four rows of b per pass over the row of c:
       c[i, j] += (a[i,p] b[p,j] + a[i,p+1] b[p+1,j]) + (a[i,p+2] b[p+2,j] + a[i,p+3] b[p+3,j])
   one load and store of c per four products.

Measured, float32 (2 cores of an Intel Xeon KVM guest with AVX-512, which LLVM calls rocketlake;
Numba 0.68, NumPy 2.4 with OpenBLAS 0.3.31; one warm-up call, then the best of 9 runs, 4 for the
last shape; the machine quiet, load average 1.3 to 1.9):

                                  2 threads each                     1 thread each
    shape                         naive    blocked  NumPy (BLAS)     naive    blocked  NumPy
    256 x 256 @ 256 x 256         0.7 ms   0.6 ms   0.1 ms           0.9 ms   0.8 ms   0.2 ms
    512 x 512 @ 512 x 512         9.4 ms   3.7 ms   0.9 ms           9.8 ms   9.0 ms   1.7 ms
    1024 x 1024 @ 1024 x 1024     54 ms    33 ms    6.9 ms           147 ms   81 ms    15 ms
    8192 x 768 @ 768 x 3072       1.15 s   0.79 s   0.24 s           2.57 s   1.16 s   0.23 s
    (that last row in GFLOP/s:    34       49       161              15       33       168)

Under load (other jobs on the 2 cores, load average 7 to 9) every time grew, OpenBLAS's with two
threads the most (512^3: 56 ms, its threads waiting for each other when one is descheduled).

What limits the Numba kernels: fastmath=False forbids contracting a * b + c into one FMA, so
every product is a multiply and an add; LLVM keeps the accumulator (a row of c) in memory, not
in registers, and uses 256-bit vectors on this CPU. OpenBLAS's hand-written kernels keep a
register tile of c and issue 512-bit FMAs: 3 to 6 times the blocked kernel's speed here on the
shapes from 512 up. Decision: the registry keeps NumPy's BLAS for matmul on the CPU (the op calls
``a @ b``); this module is for study (naive -> blocked is 1.5 to 2.5x on the large shapes, where
b no longer fits in the cache) and runs only when asked for by name, ``tg.set_kernels(
matmul="numba")`` (``registry.BY_NAME``), which routes matmul and F.linear through it.

Compilation: ``@njit(parallel=True, fastmath=False, cache=True)``, lazily on the first call, once
per dtype; without a cache it took 0.5 s (naive) and 1.2 s (blocked) of CPU time per dtype here.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference

__all__ = ["matmul_fwd", "matmul_bwd"]

BLOCK_N = 32  # rows of a and c per parallel job
BLOCK_K = 128  # columns of a (rows of b) per slab
BLOCK_M = 256  # columns of b and c per panel
NAIVE_MAX_FLOPS = 32 ** 3  # "auto": products of fewer multiply-adds than this take the naive loop
VARIANTS = ("auto", "naive", "blocked")

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@njit(parallel=True, fastmath=False, cache=True)
def _matmul_naive(a, b, c):
    """c = a @ b for a (B, n, k), b (B, k, m), c (B, n, m), C-contiguous; i-k-j order."""
    nb, n, k = a.shape
    m = b.shape[2]
    for job in prange(nb * n):
        z, i = job // n, job % n
        a_i, c_i, b_z = a[z, i], c[z, i], b[z]  # views: the inner loops index 1-D rows
        for j in range(m):
            c_i[j] = 0.0
        for p in range(k):
            aip, b_p = a_i[p], b_z[p]
            for j in range(m):
                c_i[j] += aip * b_p[j]


@njit(parallel=True, fastmath=False, cache=True)
def _matmul_blocked(a, b, c, block_n, block_k, block_m):
    """c = a @ b for a (B, n, k), b (B, k, m), c (B, n, m), C-contiguous, in cache-sized tiles.

    The inner loops index 1-D row views (c_i, b0..b3): written with 3-D indices inside the
    prange, the same loop ran 5x slower (it was not vectorised)."""
    nb, n, k = a.shape
    m = b.shape[2]
    row_blocks = (n + block_n - 1) // block_n
    for job in prange(nb * row_blocks):
        z, i0 = job // row_blocks, (job % row_blocks) * block_n
        i1 = min(i0 + block_n, n)
        a_z, b_z, c_z = a[z], b[z], c[z]
        for i in range(i0, i1):
            c_z[i, :] = 0.0
        for p0 in range(0, k, block_k):  # a slab of a's columns, b's rows
            p1 = min(p0 + block_k, k)
            for j0 in range(0, m, block_m):  # a panel of b's and c's columns
                j1 = min(j0 + block_m, m)
                width = j1 - j0
                for i in range(i0, i1):  # every row of the job reuses the block b[p0:p1, j0:j1]
                    a_i, c_i = a_z[i], c_z[i, j0:j1]
                    p = p0
                    while p + 4 <= p1:
                        a0, a1, a2, a3 = a_i[p], a_i[p + 1], a_i[p + 2], a_i[p + 3]
                        b0, b1 = b_z[p, j0:j1], b_z[p + 1, j0:j1]
                        b2, b3 = b_z[p + 2, j0:j1], b_z[p + 3, j0:j1]
                        for j in range(width):
                            c_i[j] += (a0 * b0[j] + a1 * b1[j]) + (a2 * b2[j] + a3 * b3[j])
                        p += 4
                    for p in range(p, p1):
                        aip, b_p = a_i[p], b_z[p, j0:j1]
                        for j in range(width):
                            c_i[j] += aip * b_p[j]


def _contiguous_3d(x, dtype):
    """(..., r, c) -> (B, r, c): C-contiguous and writeable (else another Numba signature)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    x = x.reshape((-1,) + x.shape[-2:]) if x.size else x.reshape((0,) + x.shape[-2:])
    return x if x.flags.writeable else x.copy()


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"matmul: unknown variant {variant!r}; expected one of {VARIANTS}")


def _product(a, b, dtype, variant):
    """a (..., n, k) @ b (..., k, m) with equal batch axes, by the kernel `variant` picks."""
    n, k = a.shape[-2:]
    m = b.shape[-1]
    c = np.empty(a.shape[:-2] + (n, m), dtype)
    if c.size == 0 or k == 0:
        c[...] = 0.0  # an empty product, or a sum over nothing: zeros, as NumPy
        return c
    a3, b3, c3 = _contiguous_3d(a, dtype), _contiguous_3d(b, dtype), c.reshape(-1, n, m)
    if variant == "auto":
        variant = "naive" if n * k * m < NAIVE_MAX_FLOPS else "blocked"
    if variant == "naive":
        _matmul_naive(a3, b3, c3)
    else:
        _matmul_blocked(a3, b3, c3, BLOCK_N, BLOCK_K, BLOCK_M)
    return c


def _handled(a, b, *more):
    """The common dtype when the kernels take these operands, else None (the reference runs,
    and raises NumPy's error for shapes that do not align): float32/64, at least 2-D, equal
    batch axes, a's columns matching b's rows. Checked here because a kernel reading past an
    array's end would not raise: it would read other memory."""
    arrays = (a, b) + more
    dtype = np.result_type(*arrays)
    if dtype not in _FAST_DTYPES or any(x.ndim < 2 for x in arrays):
        return None
    if len({x.shape[:-2] for x in arrays}) != 1 or a.shape[-1] != b.shape[-2]:
        return None
    return dtype


def matmul_fwd(a, b, *, variant="auto"):
    """y = a @ b for a (..., n, k) and b (..., k, m) with equal batch axes -> (..., n, m);
    variant: "auto", "naive" or "blocked" (see the module docstring)."""
    _check_variant(variant)
    dtype = _handled(a, b)
    if dtype is None:
        return reference.matmul_fwd(a, b)
    return _product(a, b, dtype, variant)


def matmul_bwd(dy, a, b, *, variant="auto"):
    """da = dy @ b^T, db = a^T @ dy: the forward's kernel on transposed operands."""
    _check_variant(variant)
    dtype = _handled(a, b, dy)
    if dtype is None or dy.shape[-2:] != (a.shape[-2], b.shape[-1]):
        return reference.matmul_bwd(dy, a, b)
    return (_product(dy, b.swapaxes(-1, -2), dtype, variant),
            _product(a.swapaxes(-1, -2), dy, dtype, variant))
