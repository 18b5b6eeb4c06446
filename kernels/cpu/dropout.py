"""Dropout's apply-mask, fused elementwise (Numba, CPU).

Same names, signatures and results as ``kernels/reference.py``: ``dropout_fwd(x, mask, p)`` and
``dropout_bwd(dy, mask, p)``, both y = x * mask / (1 - p) with a boolean mask (True = kept) drawn
by the op. Any shape and strides.

Variants:
- ``_dropout_flat`` (used, by both functions): one parallel sweep reading x and the mask once and
  writing y once; the reference makes a temporary for x * mask and another for the scale.
  Each element is x * scale where kept and x * 0 where dropped, in x's dtype with the scale
  rounded to it first: bit for bit the reference's (x * mask) * scale, signed zeros and
  inf * 0 = NaN included.
- Fallback: the reference, for what the kernel does not take (float16, CuPy, empty arrays, a mask
  that is not boolean or not of x's shape, which the reference would broadcast);
  ``_common.fallback_counts`` records it.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import as_flat, fallback, launch, why_not

# ----------------------------------------------------------------------------------------------------
# Kernel: x, y C-contiguous 1-D of one dtype; mask C-contiguous 1-D bool; keep and drop scalars of
# x's dtype (1 / (1 - p) and 0).


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _dropout_flat(x, mask, keep, drop, y):
    for i in prange(x.shape[0]):
        y[i] = x[i] * (keep if mask[i] else drop)


# ----------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def _apply(name, x, mask, p):
    reason = why_not(x) or (
        None if isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == x.shape
        else f"mask of dtype {getattr(mask, 'dtype', type(mask).__name__)} and shape "
             f"{getattr(mask, 'shape', None)} for x of shape {x.shape}")
    if reason:
        fallback(name, reason)
        return getattr(reference, name)(x, mask, p)
    flat = as_flat(x)
    y = np.empty_like(flat)
    scale = reference._dropout_scale(p)  # 1 / (1 - p), or 0 for p = 1
    launch(_dropout_flat, flat.size, flat, as_flat(mask), x.dtype.type(scale), x.dtype.type(0.0), y)
    return y.reshape(x.shape)


def dropout_fwd(x, mask, p):
    """y = x * mask / (1 - p), mask boolean (True = kept)."""
    return _apply("dropout_fwd", x, mask, p)


def dropout_bwd(dy, mask, p):
    """dx = dy * mask / (1 - p)."""
    return _apply("dropout_bwd", dy, mask, p)
