"""Gradient utilities: ``clip_grad_norm_``.

Clipping runs on the gradients' device with no host sync (the norm stays a 0-d array): the clip
factor min(1, max_norm / (total + 1e-6)) is applied unconditionally, as PyTorch does, instead of
testing ``total > max_norm`` in Python, which would copy the norm to the host every step.
"""
from __future__ import annotations

import math

from ..autograd import no_grad
from ..backend import array_module, default_float, device_of
from ..tensor import Tensor

__all__ = ["clip_grad_norm_"]


def _norm(g, p: float):
    """The p-norm of a raw array, in its dtype, as a 0-d array on its device."""
    xp = array_module(g)
    if g.size == 0:
        return xp.zeros((), dtype=g.dtype)
    if p == math.inf:
        return xp.abs(g).max()
    if p == 2.0:
        return xp.sqrt((g * g).sum())
    return (xp.abs(g) ** p).sum() ** (1.0 / p)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of `parameters` in place so that their joint norm is at most max_norm.

        total = || (||g_1||_p, ..., ||g_n||_p) ||_p   (the p-norm of all gradients as one vector)
        g_i  *= min(1, max_norm / (total + 1e-6))

    `parameters` is a Tensor or an iterable of Tensors (those whose ``.grad`` is None are skipped);
    ``norm_type`` is any p > 0 or ``math.inf`` (max |g|). Returns the total norm before clipping, a
    0-d Tensor on the gradients' device in their dtype (0.0 float32 on cpu when no gradient
    exists). ``error_if_nonfinite=True`` raises on a NaN/Inf norm (that check syncs with the GPU).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad.data for p in parameters if p.grad is not None]
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 (or math.inf), got {norm_type}")
    if not grads:
        return Tensor._make(array_module().zeros((), dtype=default_float))
    devices = {device_of(g) for g in grads}
    if len(devices) > 1:
        raise RuntimeError(f"clip_grad_norm_: the gradients are on several devices "
                           f"{sorted(devices)}")

    xp = array_module(grads[0])
    dtype = grads[0].dtype
    norms = xp.stack([_norm(g, norm_type).astype(dtype) for g in grads])
    total = xp.asarray(_norm(norms, norm_type))  # NumPy reductions give scalars: keep a 0-d array
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} is {total}; "
                           "some gradient is NaN or Inf")
    # Python floats keep float32 math in float32 (a NumPy float64 scalar would upcast it).
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    with no_grad():
        for g in grads:
            g *= coef.astype(g.dtype)
    return Tensor._make(total)
