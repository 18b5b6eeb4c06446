"""Softmax and log-softmax along any axis, one thread block per row (Numba-CUDA).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``softmax_fwd(x, axis)``, ``softmax_bwd(dy, y, axis)``, ``log_softmax_fwd(x, axis)``,
``log_softmax_bwd(dy, y, axis)``. CuPy float32 / float64 arrays on a GPU; NumPy arrays under the
simulator (``NUMBA_ENABLE_CUDASIM=1``). Other dtypes raise TypeError.

Layout (``_common``): launched with (N,) blocks of THREADS threads, block i owns row i. Forward:
each thread takes the max of its strided columns, the block reduces them in shared memory; then
the same for the sum of exp(x - max); then each thread writes its columns. Three sweeps over a row
read from global memory (L1/L2 serve the second and third for rows of a few thousand entries).
Backward: one block reduction (sum(dy * y), or sum(dy) for log-softmax), then the combination.

Variants:
- This one (shared-memory tree reductions) runs under the CUDA simulator, which does not support
  warp shuffles in every Numba version, so its logic is tested on any machine.
- Planned, faster on a GPU: a CuPy RawModule (CUDA C) with warp shuffles (``__shfl_xor_sync``)
  for the reductions and an online max and sum (one sweep fewer), one warp per row for short rows.

Axis: moved last and made contiguous (a copy only when it is not the last axis of a contiguous
array); the result is returned in x's axis order.

Precision: the max is exact; exp(x - max), the sums and the final combination are computed in
float64 also for float32 rows, and rounded once on store.

Non-finite input: -inf entries get probability 0 (log-probability -inf); a row that is all -inf
gives NaN, as the reference. Under the simulator the arithmetic is Python's, which raises on
0 / 0 and log(0), so the empty-distribution case writes NaN explicitly instead of dividing.
"""
from __future__ import annotations

import math

from numba import cuda, float64

from ._checks import softmax_rows_bwd, softmax_rows_fwd
from ._common import THREADS, block_sum, row_shift

# --------------------------------------------------------------------------------------------------
# Kernels: x, y, dy, dx are C-contiguous (N, C) arrays of one dtype; log is a bool. Block i: row i.


@cuda.jit
def _softmax_rows(x, y, log):
    """y = softmax(x) per row, or log_softmax(x) when log is True."""
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    c = x.shape[1]
    m = row_shift(buf, x, i)  # shift: exp(x - m) <= 1 cannot overflow
    s = 0.0
    for j in range(t, c, THREADS):
        s += math.exp(float64(x[i, j]) - m)
    s = block_sum(buf, s)
    if s == 0.0:  # all -inf: no distribution (0/0 and -inf - -inf in the reference)
        for j in range(t, c, THREADS):
            y[i, j] = math.nan
    elif log:
        log_s = math.log(s)
        for j in range(t, c, THREADS):
            y[i, j] = (float64(x[i, j]) - m) - log_s
    else:
        inv_s = 1.0 / s
        for j in range(t, c, THREADS):
            y[i, j] = math.exp(float64(x[i, j]) - m) * inv_s


@cuda.jit
def _softmax_bwd_rows(dy, y, dx, log):
    """softmax:     dx = y * (dy - sum(dy * y))
    log_softmax: dx = dy - exp(y) * sum(dy)          (per row)"""
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    c = y.shape[1]
    s = 0.0
    for j in range(t, c, THREADS):
        s += float64(dy[i, j]) if log else float64(dy[i, j]) * y[i, j]
    s = block_sum(buf, s)
    for j in range(t, c, THREADS):
        if log:
            dx[i, j] = float64(dy[i, j]) - math.exp(float64(y[i, j])) * s
        else:
            dx[i, j] = float64(y[i, j]) * (float64(dy[i, j]) - s)


# --------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def _launch_fwd(rows, y, log):
    _softmax_rows[rows.shape[0], THREADS](rows, y, log)


def _launch_bwd(dy_rows, y_rows, dx, log):
    _softmax_bwd_rows[y_rows.shape[0], THREADS](dy_rows, y_rows, dx, log)


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
