"""GELU, exact (erf) and tanh-approximated, fused elementwise (Numba-CUDA).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``gelu_fwd(x, approximate)`` and ``gelu_bwd(dy, x, approximate)``; approximate "tanh" or
anything else for the exact form, as the reference. Any shape (a contiguous copy is flattened
when x is not contiguous); CuPy float32 / float64 on a GPU, NumPy under the simulator
(``NUMBA_ENABLE_CUDASIM=1``). Other dtypes raise TypeError.

Kernels (``_gelu_fwd_flat``, ``_gelu_bwd_flat``): a grid-stride loop over the flattened array
(``_common.flat_blocks``), each element read once and written once, no shared memory.
- tanh form, as the Numba CPU kernel: 1 + tanh(u) = 2 s with s = sigmoid(2u), so
      GELU(x) = x s,   GELU'(x) = s + 2 x s (1 - s) du/dx,   u = sqrt(2/pi) (x + 0.044715 x^3),
  with s and s (1 - s) = e / (1 + e)^2 from e = exp(-2|u|) <= 1: exp cannot overflow, and
  1 + tanh(u) does not cancel for negative x.
- exact form: GELU(x) = x erfc(-x / sqrt 2) / 2, GELU'(x) = Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi),
  erfc and exp from libdevice (Python's math under the simulator).

Large |x|: x is clamped to +-_SATURATE before the cubic (tanh form) and to +-_PDF_ZERO before
x^2 (exact form), where the result no longer changes (e underflows to 0; exp(-x^2/2) is 0), so no
intermediate overflows and no inf * 0 makes a NaN: GELU(x) -> x or -0 and GELU'(x) -> 1 or 0 for
every finite x. The reference computes x^3 unclamped: in float64 its tanh-form backward is NaN
from |x| ~ 1.3e154 on. At x = +-inf the kernels give what the Numba CPU kernels give.

Precision: computed in float64 also for float32 input, and rounded once on store.
"""
from __future__ import annotations

import math

from numba import cuda, float64

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from ._common import THREADS, as_flat, check_float, check_same_shape, flat_blocks

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CUBIC = 0.044715
_SATURATE = 1e4  # |x| beyond: |u| > 3e10, e = exp(-2|u|) = 0 in float64, s exactly 0 or 1
_PDF_ZERO = 40.0  # |x| beyond: exp(-x^2 / 2) = exp(-800) = 0 in float64

# --------------------------------------------------------------------------------------------------
# Device functions: x is a float64 scalar.


@cuda.jit(device=True)
def _tanh_parts(x):
    """(s, ds) for the tanh form: s = sigmoid(2u) = (1 + tanh(u)) / 2 and ds = 2 s (1 - s) du/dx,
    where u = sqrt(2/pi) (x + 0.044715 x^3)."""
    xc = x  # clamped: no overflow in xc^3; s, ds unchanged beyond
    if xc > _SATURATE:  # (if, not min/max: Numba's CUDA target fails to type those builtins)
        xc = _SATURATE
    elif xc < -_SATURATE:
        xc = -_SATURATE
    u = _SQRT_2_OVER_PI * (xc + _CUBIC * xc * xc * xc)
    e = math.exp(-2.0 * abs(u))
    s = (1.0 if u >= 0.0 else e) / (1.0 + e)
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _CUBIC * xc * xc)
    return s, 2.0 * du * (e / ((1.0 + e) * (1.0 + e)))  # s (1 - s) = e / (1 + e)^2


@cuda.jit(device=True)
def _pdf(x):
    """phi(x) = exp(-x^2 / 2) / sqrt(2 pi), 0 where it underflows (x^2 never overflows)."""
    if abs(x) >= _PDF_ZERO:
        return 0.0
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


# --------------------------------------------------------------------------------------------------
# Kernels: x, y, dy, dx are C-contiguous 1-D arrays of one dtype; tanh is a bool.


@cuda.jit
def _gelu_fwd_flat(x, y, tanh):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        xi = float64(x[i])
        if tanh:
            s, _ = _tanh_parts(xi)
            y[i] = xi * s
        else:
            y[i] = 0.5 * xi * math.erfc(-_INV_SQRT_2 * xi)


@cuda.jit
def _gelu_bwd_flat(dy, x, dx, tanh):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        xi = float64(x[i])
        if tanh:
            s, ds = _tanh_parts(xi)
            # x * ds: ds is exactly 0 wherever x was clamped, so this is never inf * 0
            grad = s + (xi * ds if ds > 0.0 else 0.0)
        else:
            grad = 0.5 * math.erfc(-_INV_SQRT_2 * xi) + xi * _pdf(xi)
        dx[i] = float64(dy[i]) * grad


# --------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def gelu_fwd(x, approximate="none"):
    """GELU(x) = x * Phi(x); "tanh": x / 2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    check_float("gelu_fwd", x=x)
    if x.size == 0:  # nothing to launch: the reference's answer
        return reference.gelu_fwd(x, approximate)
    flat = as_flat(x)
    y = array_module(x).empty_like(flat)
    _gelu_fwd_flat[flat_blocks(flat.size), THREADS](flat, y, approximate == "tanh")
    return y.reshape(x.shape)


def gelu_bwd(dy, x, approximate="none"):
    """dx = dy * GELU'(x)."""
    check_float("gelu_bwd", dy=dy, x=x)
    check_same_shape("gelu_bwd", "dy", dy, "x", x)
    if x.size == 0:
        return reference.gelu_bwd(dy, x, approximate)
    flat = as_flat(x)
    dx = array_module(x).empty_like(flat)
    _gelu_bwd_flat[flat_blocks(flat.size), THREADS](as_flat(dy), flat, dx, approximate == "tanh")
    return dx.reshape(x.shape)
