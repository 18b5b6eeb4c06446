"""Normalization: layer_norm and normalize.

layer_norm is one Function whose forward and backward call the kernel registry; normalize is a
composition of existing ops (it needs no backward of its own). dropout and attention have their
own files (ops/dropout.py, ops/attention.py).
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..kernels.registry import kernels_for
from ..tensor import Tensor
from .arguments import check_float_tensor
from .elementwise import sqrt
from .selection import maximum
from .reduce import normalize_axis

__all__ = ["layer_norm"]


# ----------------------------------------------------------------------------------------------------
# layer_norm


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the normalised trailing axes.

    The trailing axes are flattened into one of size C for the kernels; weight and bias, when
    given, are inputs after x (so backward returns 1, 2 or 3 gradients). Saves x, weight, and the
    per-row mean and rstd; the normalised x is recomputed in backward.
    """

    def forward(self, x, *params, n_axes, has_weight, has_bias, eps):
        self.k = kernels_for("layer_norm", array_module(x))
        c = math.prod(x.shape[x.ndim - n_axes:])
        self.x_shape, self.n_params = x.shape, len(params)
        self.x = x.reshape(x.shape[:x.ndim - n_axes] + (c,))
        self.w = params[0].reshape(c) if has_weight else None
        b = params[-1].reshape(c) if has_bias else None
        self.param_shapes = [p.shape for p in params]
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        y, self.mean, self.rstd = self.k.layer_norm_fwd(self.x, self.w, b, eps)
        return y.reshape(self.x_shape)

    def backward(self, grad):
        dx, dw, db = self.k.layer_norm_bwd(grad.reshape(self.x.shape), self.x, self.w,
                                           self.mean, self.rstd)
        grads = [dx.reshape(self.x_shape)]
        if self.has_weight:
            grads.append(dw.reshape(self.param_shapes[0]))
        if self.has_bias:
            grads.append(db.reshape(self.param_shapes[-1]))
        return tuple(grads)

    def graph_backward(self, grad, output):
        """layer_norm_bwd (kernels/reference.py) with Tensor ops: mean and rstd are recomputed
        from the x Tensor (the saved ones would be constants), so the rule differentiates again."""
        x = self.inputs[0].reshape(self.x.shape)  # (..., C)
        dy = grad.reshape(self.x.shape)
        centered = x - x.mean(axis=-1, keepdims=True)
        rstd = 1.0 / ((centered * centered).mean(axis=-1, keepdims=True) + self.eps).sqrt()
        xhat = centered * rstd
        g = dy * self.inputs[1].reshape(-1) if self.has_weight else dy
        dx = (g - g.mean(axis=-1, keepdims=True)
              - xhat * (g * xhat).mean(axis=-1, keepdims=True)) * rstd
        rows = tuple(range(dy.ndim - 1))  # every axis but the normalised one
        grads = [dx.reshape(self.x_shape)]
        if self.has_weight:
            grads.append((dy * xhat).sum(axis=rows).reshape(self.param_shapes[0]))
        if self.has_bias:
            grads.append(dy.sum(axis=rows).reshape(self.param_shapes[-1]))
        return tuple(grads)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing axes `normalized_shape` (an int or a tuple), then scale and shift.

        y = (x - mean) / sqrt(var + eps) * weight + bias

    mean and (biased) var are taken over the last len(normalized_shape) axes of x, which must equal
    normalized_shape; weight and bias are None or of shape normalized_shape. Output: x's shape.

    >>> import tinygrad_pt as tg
    >>> y = layer_norm(tg.tensor([[1.0, 2.0, 3.0]]), 3)
    >>> [round(v, 4) for v in y.numpy()[0].tolist()]
    [-1.2247, 0.0, 1.2247]
    """
    check_float_tensor("layer_norm", x, "x")
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    if not shape or any(not isinstance(n, (int, np.integer)) or n <= 0 for n in shape):
        raise ValueError(f"layer_norm: normalized_shape must be one or more positive ints, got "
                         f"{normalized_shape!r}")
    shape = tuple(int(n) for n in shape)
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} must equal the trailing axes of "
                         f"x, got x of shape {x.shape}")
    params = []
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            check_float_tensor("layer_norm", p, name)
            if p.shape != shape:
                raise ValueError(f"layer_norm: {name} must have shape normalized_shape {shape}, "
                                 f"got {p.shape}")
            params.append(p)
    if eps < 0:
        raise ValueError(f"layer_norm: eps must be non-negative, got {eps}")
    return LayerNorm.apply(x, *params, n_axes=len(shape), has_weight=weight is not None,
                           has_bias=bias is not None, eps=float(eps))


# ----------------------------------------------------------------------------------------------------
# normalize


def normalize(x: Tensor, p: float = 2.0, axis: int | None = None, eps: float = 1e-12, *,
              dim: int | None = None) -> Tensor:
    """x / max(||x||_p, eps) along `axis` (alias `dim`; default 1, as PyTorch's F.normalize).

    A composition of existing ops. For p = 2 the norm is written sqrt(max(sum x^2, eps^2)), equal
    in value to max(sqrt(sum x^2), eps) but with a finite gradient (zero through the norm) for an
    all-zero slice, where sqrt's derivative at 0 would make NaN.
    """
    check_float_tensor("normalize", x, "x")
    if axis is not None and dim is not None:
        raise TypeError("normalize: give axis or its alias dim, not both")
    axis = 1 if axis is None and dim is None else (axis if axis is not None else dim)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"normalize: axis must be an int, got {axis!r}")
    axis = normalize_axis("normalize", axis, x.ndim)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"normalize: p must be a positive number (or inf), got {p!r}")
    if p == 2:
        norm = sqrt(maximum((x * x).sum(axis=axis, keepdims=True), float(eps) ** 2))
    elif math.isinf(p):
        norm = maximum(x.abs().max(axis=axis, keepdims=True), float(eps))
    else:
        powered = (x.abs() ** float(p)).sum(axis=axis, keepdims=True)
        norm = maximum(powered, float(eps) ** p) ** (1.0 / p)
    return x / norm
