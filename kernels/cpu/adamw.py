"""AdamW, one fused sweep updating p, m, v in place (Numba, CPU).

Same name, signature and result as ``kernels/reference.py``:
``adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)`` (PyTorch's rule, step
counting from 1), updating the arrays p, m, v in place and returning None.

Variants:
- ``_adamw_flat`` (used): one parallel sweep; each element reads p, g, m, v once and writes p, m,
  v once (7 accesses, the least possible), where the reference's eight array statements make
  about 20 passes and several temporaries. The arithmetic is the reference's, operation by
  operation, in the arrays' dtype with each constant rounded to that dtype first (as NumPy rounds
  a Python float), so the results agree bit for bit (the tests check several steps).
- Fallback: the reference, for what the kernel cannot update in place or does not take: p, m or v
  not C-contiguous or read-only, g of another shape or dtype, float16, CuPy, empty arrays;
  ``_common.fallback_counts`` records it.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import as_flat, fallback, launch, why_not

# ----------------------------------------------------------------------------------------------------
# Kernel: p, g, m, v C-contiguous 1-D of one dtype; every scalar of that dtype.


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _adamw_flat(p, g, m, v, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size,
                inv_sqrt_bias2, eps):
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = m[i] * beta1 + gi * one_minus_beta1  # first moment
        vi = v[i] * beta2 + gi * gi * one_minus_beta2  # second moment
        m[i] = mi
        v[i] = vi
        # decoupled decay, then the bias-corrected step
        p[i] = p[i] * decay - (mi * step_size) / (np.sqrt(vi) * inv_sqrt_bias2 + eps)


# ----------------------------------------------------------------------------------------------------
# Wrapper with the reference's signature


def _in_place_ok(a):
    return a.flags.c_contiguous and a.flags.writeable


def adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """One AdamW step on p, m, v in place:

        p -= lr * weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p -= lr * (m / (1 - beta1^step)) / (sqrt(v) / sqrt(1 - beta2^step) + eps)
    """
    reason = why_not(p, g, m, v) or (
        None if g.shape == m.shape == v.shape == p.shape
        else f"shapes p {p.shape}, g {g.shape}, m {m.shape}, v {v.shape} differ") or (
        None if all(_in_place_ok(a) for a in (p, m, v))
        else "p, m or v not C-contiguous and writeable")
    if reason:
        fallback("adamw_update", reason)
        return reference.adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)
    t = p.dtype.type  # each constant rounded to the arrays' dtype, as NumPy does
    bias1 = 1.0 - beta1 ** step
    bias2 = 1.0 - beta2 ** step
    launch(_adamw_flat, p.size, p.reshape(-1), as_flat(g), m.reshape(-1), v.reshape(-1),
           t(1.0 - lr * weight_decay), t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2),
           t(lr / bias1), t(1.0 / math.sqrt(bias2)), t(eps))
