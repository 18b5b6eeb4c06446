"""GELU, exact (erf) and tanh-approximated, fused elementwise (Numba, CPU).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``gelu_fwd(x, approximate)`` and ``gelu_bwd(dy, x, approximate)``; approximate "tanh" or
anything else for the exact form, as the reference. Any shape and strides.

Variants:
- ``_gelu_fwd_flat`` / ``_gelu_bwd_flat`` (used): one parallel sweep over the flattened array,
  reading x (and dy) once and writing once; the reference makes a temporary array per operation.
  tanh form: 1 + tanh(u) = 2 / (1 + exp(-2u)) = 2 s with s the logistic sigmoid of 2u, so
      GELU(x) = x * s,   GELU'(x) = s + 2 x s (1 - s) du/dx
  with s and s (1 - s) = e / (1 + e)^2 from e = exp(-2|u|) <= 1: no overflow for any x, no
  cancellation in 1 + tanh(u) for negative x (the reference loses the digits there), and exp is
  ``_common.vexp``, which vectorizes. Exact form: GELU(x) = x * erfc(-x / sqrt 2) / 2 with libm's
  erfc (math.erfc), GELU'(x) = Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi).
- Fallback: the reference, for what the kernels do not take (float16, CuPy, empty arrays, dy of
  another shape or dtype); ``_common.fallback_counts`` records it.

Precision: computed in float64 also for float32 input, rounded once: within a few ulps of the
exact GELU wherever float32 can represent it, and x^3 cannot overflow. It costs time: the tanh
form's forward took 3.2 ns per element on one core in float64 against 2.4 ns in float32
(measured on 2^20 elements); the kernel still beats the reference by the margin the benchmark
shows (benchmarks/results/kernels_cpu.md).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import as_flat, fallback, launch, vexp, why_not

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CUBIC = 0.044715

# ----------------------------------------------------------------------------------------------------
# Kernels: x, y, dy, dx are C-contiguous 1-D arrays of one dtype; tanh is a bool.


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_fwd_flat(x, y, tanh):
    if tanh:
        for i in prange(x.shape[0]):
            xi = np.float64(x[i])
            u = _SQRT_2_OVER_PI * (xi + _CUBIC * xi * xi * xi)
            e = vexp(-2.0 * abs(u))
            s = (1.0 if u >= 0.0 else e) / (1.0 + e)  # sigmoid(2u) = (1 + tanh(u)) / 2
            y[i] = xi * s
    else:
        for i in prange(x.shape[0]):
            xi = np.float64(x[i])
            y[i] = 0.5 * xi * math.erfc(-_INV_SQRT_2 * xi)


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_bwd_flat(dy, x, dx, tanh):
    if tanh:
        for i in prange(x.shape[0]):
            xi = np.float64(x[i])
            u = _SQRT_2_OVER_PI * (xi + _CUBIC * xi * xi * xi)
            e = vexp(-2.0 * abs(u))
            s = (1.0 if u >= 0.0 else e) / (1.0 + e)
            du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _CUBIC * xi * xi)
            # s (1 - s) = e / (1 + e)^2; where e underflows the term is 0 (not 0 * inf = NaN)
            tail = 2.0 * xi * du * (e / ((1.0 + e) * (1.0 + e))) if e > 0.0 else 0.0
            dx[i] = dy[i] * (s + tail)
    else:
        for i in prange(x.shape[0]):
            xi = np.float64(x[i])
            cdf = 0.5 * math.erfc(-_INV_SQRT_2 * xi)
            pdf = _INV_SQRT_2PI * math.exp(-0.5 * xi * xi)
            dx[i] = dy[i] * (cdf + xi * pdf)


# ----------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def gelu_fwd(x, approximate="none"):
    """GELU(x) = x * Phi(x); "tanh": x / 2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    reason = why_not(x)
    if reason:
        fallback("gelu_fwd", reason)
        return reference.gelu_fwd(x, approximate)
    flat = as_flat(x)
    y = np.empty_like(flat)
    launch(_gelu_fwd_flat, flat.size, flat, y, approximate == "tanh")
    return y.reshape(x.shape)


def gelu_bwd(dy, x, approximate="none"):
    """dx = dy * GELU'(x)."""
    reason = why_not(x, dy) or (
        f"dy shape {dy.shape} != x shape {x.shape}" if dy.shape != x.shape else None)
    if reason:
        fallback("gelu_bwd", reason)
        return reference.gelu_bwd(dy, x, approximate)
    flat = as_flat(x)
    dx = np.empty_like(flat)
    launch(_gelu_bwd_flat, flat.size, as_flat(dy), flat, dx, approximate == "tanh")
    return dx.reshape(x.shape)
