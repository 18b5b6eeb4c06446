"""GELU, exact (erf) and tanh-approximated, fused elementwise (Numba, CPU).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):
``gelu_fwd(x, approximate)`` and ``gelu_bwd(dy, x, approximate)``; approximate "tanh" or
anything else for the exact form, as the reference. Any shape and strides.

Variants:
- ``_gelu_tanh_*_flat`` and ``_gelu_erf_*_flat`` (used): one parallel sweep over the flattened
  array, reading x (and dy) once and writing once; the reference makes a temporary array per operation.
  tanh form: 1 + tanh(u) = 2 / (1 + exp(-2u)) = 2 s with s the logistic sigmoid of 2u, so
      GELU(x) = x * s,   GELU'(x) = s + 2 x s (1 - s) du/dx
  with s and s (1 - s) = e / (1 + e)^2 from e = exp(-2|u|) <= 1: no overflow for any x, no
  cancellation in 1 + tanh(u) for negative x (the reference loses the digits there), and exp is
  ``_common.vexp``, which vectorizes. Exact form: GELU(x) = x * Phi(x), Phi(x) = erfc(-x / sqrt 2)
  / 2, GELU'(x) = Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi). float64 data: libm's erfc
  (math.erfc). float32 data: ``_erfc32_parts`` below, arithmetic that vectorizes.
- ``_erfc32_parts``: erfc(z) for z >= 0 as t * exp(-z^2 + P(t)), t = 1 / (1 + z / 2), P a degree-10
  polynomial in t (``_erfc32_parts``). The form is the classical one for erfc (the exp carries the Gaussian decay,
  so P only has to follow a smooth, bounded function of t in (0, 1]); the coefficients were
  fitted here, by least squares in the Chebyshev basis against SciPy's erfcx on z in [0, 12]
  (24,000 points), and have a maximum relative error of 3.5e-8 in float64, under one float32
  ulp; evaluated in float32, Horner's rounding brings it to a few ulps. For x >= 0, Phi = 1 -
  erfc(z) / 2, where erfc(z) <= 1 and the subtraction loses nothing that float32 could show.
- Fallback: the reference, for what the kernels do not take (float16, CuPy, empty arrays, dy of
  another shape or dtype); ``_common.fallback_counts`` records it.

Precision. The tanh form computes in the input's dtype (float32 math for float32 data, with
``vexp`` in float32), as PyTorch's CPU kernel does: a few float32 ulps from the exact value
(tests/test_kernels_cpu_rowwise.py holds it to the float64 reference). It first computed in
float64 and rounded once; in the small GPT's step that made GELU 16% of the time (28 ms of 175
per step, ``tg.profile()``), against float32's vectorised sweep at half the bytes per lane.
The exact (erf) form computed in float64 with libm's erfc (a scalar call per element) until
``_erfc32_parts``: on float32 data it now runs in float32 and vectorizes. 2^20 float32 elements
on one thread of the 2-core VM: forward 17.4 ms -> 1.2 ms, backward 1.7 ms. Both polynomials (P
here, exp's inside ``vexp``) are now Horner chains of ``_common.muladd`` (one FMA per step where
the CPU has it): on one Zen 5 core, the same 2^20 elements' forward went 1.2 -> 0.63 ms and
backward 1.55 -> 0.85 ms (PyTorch's exact GELU forward there: 0.31 ms). The tanh form went 0.59
-> 0.37 ms forward, 0.77 -> 0.52 ms backward from vexp's change alone. float64 data keeps libm's
erfc.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import as_flat, fallback, launch, muladd, vexp, why_not

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CUBIC = 0.044715

# ----------------------------------------------------------------------------------------------------
# Kernels: x, y, dy, dx are C-contiguous 1-D arrays of one dtype; tanh is a bool.


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_tanh_fwd_flat(x, y, k):
    # k = (sqrt(2/pi), 0.044715, 1, 2, 3, 0) in x's dtype: the math stays in that dtype
    c, a, one, two, zero = k[0], k[1], k[2], k[3], k[5]
    for i in prange(x.shape[0]):
        xi = x[i]
        u = c * (xi + a * xi * xi * xi)
        e = vexp(-two * abs(u))
        s = (one if u >= zero else e) / (one + e)  # sigmoid(2u) = (1 + tanh(u)) / 2
        y[i] = xi * s


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_tanh_bwd_flat(dy, x, dx, k):
    c, a, one, two, three, zero = k[0], k[1], k[2], k[3], k[4], k[5]
    for i in prange(x.shape[0]):
        xi = x[i]
        u = c * (xi + a * xi * xi * xi)
        e = vexp(-two * abs(u))
        s = (one if u >= zero else e) / (one + e)
        du = c * (one + three * a * xi * xi)
        # s (1 - s) = e / (1 + e)^2; where e underflows the term is 0 (not 0 * inf = NaN)
        tail = two * xi * du * (e / ((one + e) * (one + e))) if e > zero else zero
        dx[i] = dy[i] * (s + tail)


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_erf_fwd_flat(x, y):
    for i in prange(x.shape[0]):
        xi = np.float64(x[i])
        y[i] = 0.5 * xi * math.erfc(-_INV_SQRT_2 * xi)


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_erf_bwd_flat(dy, x, dx):
    for i in prange(x.shape[0]):
        xi = np.float64(x[i])
        cdf = 0.5 * math.erfc(-_INV_SQRT_2 * xi)
        pdf = _INV_SQRT_2PI * math.exp(-0.5 * xi * xi)
        dx[i] = dy[i] * (cdf + xi * pdf)


# P(t) of _erfc32, constant term first (see the module docstring for how they were fitted), as
# float32 constants: Numba folds module-level scalars into the code, so the loop vectorizes.
(_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7, _P8, _P9, _P10) = (np.float32(c) for c in (
    -1.2655516132, 1.0011749866, 0.3599218177, 0.193185063, -0.5885608875, 1.360010582,
    -3.0416242788, 3.6793141842, -2.4010205825, 0.8184168647, -0.1152661014))
_F32_INV_SQRT_2, _F32_INV_SQRT_2PI = np.float32(_INV_SQRT_2), np.float32(_INV_SQRT_2PI)


@njit(fastmath=False, cache=True, error_model="numpy", inline="always")
def _erfc32_parts(z):
    """(t, P(t)) for a float32 z >= 0: erfc(z) = t * exp(P(t) - z^2). Inlined into the kernels
    by Numba itself (inline="always"): the forward and the backward share it, each computes the
    exp it needs."""
    t = np.float32(1.0) / muladd(np.float32(0.5), z, np.float32(1.0))
    p = muladd(t, muladd(t, muladd(t, _P10, _P9), _P8), _P7)  # Horner, written out
    p = muladd(t, muladd(t, muladd(t, p, _P6), _P5), _P4)
    p = muladd(t, muladd(t, muladd(t, p, _P3), _P2), _P1)
    return t, muladd(t, p, _P0)


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_erf32_fwd_flat(x, y):
    half, one, zero = np.float32(0.5), np.float32(1.0), np.float32(0.0)
    for i in prange(x.shape[0]):
        xi = x[i]
        z = abs(xi) * _F32_INV_SQRT_2
        t, poly = _erfc32_parts(z)
        e = t * vexp(poly - z * z)  # erfc(|x| / sqrt 2)
        y[i] = xi * (half * e if xi < zero else one - half * e)


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _gelu_erf32_bwd_flat(dy, x, dx):
    half, one, zero = np.float32(0.5), np.float32(1.0), np.float32(0.0)
    for i in prange(x.shape[0]):
        xi = x[i]
        z = abs(xi) * _F32_INV_SQRT_2
        t, poly = _erfc32_parts(z)
        g = vexp(-z * z)  # exp(-x^2 / 2), which phi(x) needs as well
        e = t * vexp(poly) * g
        phi = half * e if xi < zero else one - half * e
        dx[i] = dy[i] * (phi + xi * (_F32_INV_SQRT_2PI * g))


def _tanh_constants(dtype):
    return np.array([_SQRT_2_OVER_PI, _CUBIC, 1.0, 2.0, 3.0, 0.0], dtype=dtype)


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
    if approximate == "tanh":
        launch(_gelu_tanh_fwd_flat, flat.size, flat, y, _tanh_constants(flat.dtype))
    elif flat.dtype == np.float32:
        launch(_gelu_erf32_fwd_flat, flat.size, flat, y)
    else:
        launch(_gelu_erf_fwd_flat, flat.size, flat, y)
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
    if approximate == "tanh":
        launch(_gelu_tanh_bwd_flat, flat.size, as_flat(dy), flat, dx, _tanh_constants(flat.dtype))
    elif flat.dtype == np.float32:
        launch(_gelu_erf32_bwd_flat, flat.size, as_flat(dy), flat, dx)
    else:
        launch(_gelu_erf_bwd_flat, flat.size, as_flat(dy), flat, dx)
    return dx.reshape(x.shape)
