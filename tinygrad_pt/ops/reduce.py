"""Reductions: sum, mean, max, min, var, std, logsumexp (differentiable); argmax, argmin, any, all.

NumPy's names and meanings: ``axis`` is None (all), an int or a tuple; ``keepdims``; ``var`` has
``ddof=0``; ``x.max(axis)`` returns values only.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor

__all__ = ["sum", "mean", "max", "min", "var", "std", "logsumexp", "argmax", "argmin"]


def normalize_axis(op: str, axis, ndim: int) -> tuple:
    """`axis` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if ndim == 0:  # a 0-d tensor reduces over axis 0 / -1 to itself (as PyTorch allows)
        bad = [a for a in axes if a not in (0, -1)]
        if bad:
            raise ValueError(f"{op}: axis {axis} is out of range for a 0-d tensor")
        return ()
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} "
                             f"dimension(s)")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis} repeats an axis")
    return tuple(sorted(out))


def _kept_shape(shape, axes):
    """The reduced shape with keepdims=True, so the gradient broadcasts back."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = sum of x over axes; dy/dx = 1 everywhere, so the gradient is broadcast back."""

    def forward(self, x, axes, keepdims):
        self.x_shape, self.axes = x.shape, axes
        return x.sum(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        g = grad.reshape(_kept_shape(self.x_shape, self.axes))
        return array_module(g).broadcast_to(g, self.x_shape)


class Mean(Function):
    """y = sum(x) / n over axes; dy/dx = 1/n."""

    def forward(self, x, axes, keepdims):
        self.x_shape, self.axes = x.shape, axes
        self.n = int(np.prod([x.shape[a] for a in axes]))
        return x.mean(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        g = grad.reshape(_kept_shape(self.x_shape, self.axes)) / max(self.n, 1)
        return array_module(g).broadcast_to(g, self.x_shape)


class _Extreme(Function):
    """max/min over axes; the gradient is shared evenly among the tied extreme elements
    (as torch.amax/amin do)."""
    pick = None

    def forward(self, x, axes, keepdims):
        if x.size == 0 or any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{self.pick}: cannot reduce over an empty axis (shape {x.shape})")
        y = x.max(axis=axes, keepdims=True) if self.pick == "max" else x.min(axis=axes, keepdims=True)
        self.x, self.y_kept, self.axes = x, y, axes
        return y if keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in axes])

    def backward(self, grad):
        mask = (self.x == self.y_kept).astype(grad.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return grad.reshape(self.y_kept.shape) * mask


class Max(_Extreme):
    pick = "max"


class Min(_Extreme):
    pick = "min"


class Var(Function):
    """y = sum((x - mean)^2) / (n - ddof); dy/dx = 2 (x - mean) / (n - ddof)."""

    def forward(self, x, axes, keepdims, ddof):
        self.x_shape, self.axes = x.shape, axes
        n = int(np.prod([x.shape[a] for a in axes]))
        self.denom = n - ddof
        self.centered = x - x.mean(axis=axes, keepdims=True)
        if self.denom <= 0:
            raise ValueError(f"var: ddof={ddof} leaves no degrees of freedom for {n} element(s)")
        return (self.centered * self.centered).sum(axis=axes, keepdims=keepdims) / self.denom

    def backward(self, grad):
        g = grad.reshape(_kept_shape(self.x_shape, self.axes))
        return g * self.centered * (2.0 / self.denom)


class LogSumExp(Function):
    """y = log(sum(exp(x))) over axes, shifted by the max so exp cannot overflow;
    dy/dx = exp(x - y) (the softmax)."""

    def forward(self, x, axes, keepdims):
        xp = array_module(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # an all -inf slice gives -inf, not NaN
        y = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        self.x, self.y_kept = x, y
        return y if keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in axes])

    def backward(self, grad):
        xp = array_module(grad)
        return grad.reshape(self.y_kept.shape) * xp.exp(self.x - self.y_kept)


def sum(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 (NumPy's name)
    return Sum.apply(x, axes=normalize_axis("sum", axis, x.ndim), keepdims=keepdims)


def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    if x.dtype.kind not in "f":
        raise TypeError(f"mean: expected a floating-point tensor, got dtype {x.dtype}")
    return Mean.apply(x, axes=normalize_axis("mean", axis, x.ndim), keepdims=keepdims)


def max(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """The largest values along `axis` (values only, as NumPy)."""
    return Max.apply(x, axes=normalize_axis("max", axis, x.ndim), keepdims=keepdims)


def min(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Min.apply(x, axes=normalize_axis("min", axis, x.ndim), keepdims=keepdims)


def var(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance with NumPy's default ddof=0 (PyTorch's default is 1: pass ddof=1 for that)."""
    return Var.apply(x, axes=normalize_axis("var", axis, x.ndim), keepdims=keepdims, ddof=ddof)


def std(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    return var(x, axis=axis, keepdims=keepdims, ddof=ddof) ** 0.5


def logsumexp(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return LogSumExp.apply(x, axes=normalize_axis("logsumexp", axis, x.ndim), keepdims=keepdims)


def argmax(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Indices of the largest values (int64, no gradient)."""
    return Tensor._make(x.data.argmax(axis=axis, keepdims=keepdims))


def argmin(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Tensor._make(x.data.argmin(axis=axis, keepdims=keepdims))


def _any(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Tensor._make(x.data.any(axis=axis, keepdims=keepdims))


def _all(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Tensor._make(x.data.all(axis=axis, keepdims=keepdims))


TENSOR_METHODS = {"sum": sum, "mean": mean, "max": max, "min": min, "var": var, "std": std,
                  "logsumexp": logsumexp, "argmax": argmax, "argmin": argmin,
                  "any": _any, "all": _all}
