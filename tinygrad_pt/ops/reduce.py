"""Reductions: sum, mean, max, min, var, std, logsumexp (differentiable); argmax, argmin, any, all.

NumPy's names and meanings: ``axis`` is None (all), an int or a tuple; ``keepdims``; ``var`` has
``ddof=0``; ``x.max(axis)`` returns values only. PyTorch's ``dim=`` and ``keepdim=`` are aliases,
except that they make max/min return PyTorch's (values, indices) and var/std ask for the
correction (see those functions).

NOTE: this module defines functions named sum, max and min, which shadow Python's builtins of
those names inside it: don't call ``max(a, b)`` on numbers here.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from .arguments import alias
from .selection import where

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "argmax",
           "argmin"]


def normalize_axis(op: str, axis, ndim: int) -> tuple:
    """`axis` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, got "
                        f"{type(axis).__name__}")
    if ndim == 0:  # a 0-d tensor reduces over axis 0 / -1 to itself (as PyTorch allows)
        bad = [a for a in axes if isinstance(a, bool) or a not in (0, -1)]
        if bad:
            raise ValueError(f"{op}: axis {axis} is out of range for a 0-d tensor")
        return ()
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis {axis} holds a {type(a).__name__}; expected ints")
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} "
                             f"dimension(s)")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis} repeats an axis")
    return tuple(sorted(out))


def _kept_shape(shape, axes):
    """The reduced shape with keepdims=True, so the gradient broadcasts back."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _count(shape, axes) -> int:
    """How many elements each reduced slice holds."""
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _drop_axes(y, axes):
    """A keepdims=True result reshaped to keepdims=False."""
    return y.reshape([n for i, n in enumerate(y.shape) if i not in axes])


class Sum(Function):
    """y = sum of x over axes; dy/dx = 1 everywhere, so the gradient is broadcast back."""
    saved_inputs = ()  # linear in grad

    def forward(self, x, axes, keepdims):
        self.x_shape, self.axes = x.shape, axes
        return x.sum(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        g = grad.reshape(_kept_shape(self.x_shape, self.axes))
        return array_module(g).broadcast_to(g, self.x_shape)


class Mean(Function):
    """y = sum(x) / n over axes; dy/dx = 1/n."""
    saved_inputs = ()

    def forward(self, x, axes, keepdims):
        self.x_shape, self.axes = x.shape, axes
        n = _count(x.shape, axes)
        self.scale = 1.0 / n if n else 0.0  # an empty slice has nothing to send a gradient to
        return x.mean(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        g = grad.reshape(_kept_shape(self.x_shape, self.axes)) * self.scale
        return array_module(g).broadcast_to(g, self.x_shape)


class _Extreme(Function):
    """max/min over axes; the gradient is shared evenly among the tied extreme elements
    (as torch.amax/amin do)."""
    pick = None
    saved_inputs = ()  # x and the extremum set only the (piecewise constant) mask

    def forward(self, x, axes, keepdims):
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{self.pick}: cannot reduce over an empty axis (shape "
                             f"{tuple(x.shape)}, axes {axes}): the {self.pick}imum of no elements "
                             "is undefined")
        y = x.max(axis=axes, keepdims=True) if self.pick == "max" else x.min(axis=axes, keepdims=True)
        self.x, self.y_kept, self.axes = x, y, axes
        return y if keepdims else _drop_axes(y, axes)

    def backward(self, grad):
        mask = (self.x == self.y_kept).astype(grad.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return grad.reshape(self.y_kept.shape) * mask


class Max(_Extreme):
    pick = "max"


class Min(_Extreme):
    pick = "min"


class Var(Function):
    """y = sum((x - mean)^2) / (n - ddof); dy/dx = 2 (x - mean) / (n - ddof).

    (The mean's own dependence on x drops out: the centred values sum to zero.)
    """

    def forward(self, x, axes, keepdims, ddof):
        self.x_shape, self.axes = x.shape, axes
        self.denom = _degrees_of_freedom("var", x.shape, axes, ddof)
        self.centered = _centered(x, axes)
        return (self.centered * self.centered).sum(axis=axes, keepdims=keepdims) / self.denom

    def backward(self, grad):
        g = grad.reshape(_kept_shape(self.x_shape, self.axes))
        return g * self.centered * (2.0 / self.denom)

    def graph_backward(self, grad, output):
        (x,) = self.inputs
        g = grad.reshape(_kept_shape(self.x_shape, self.axes))
        return g * (x - x.mean(axis=self.axes, keepdims=True)) * (2.0 / self.denom)


class Std(Function):
    """y = sqrt(var(x)); dy/dx = (x - mean) / ((n - ddof) y), and 0 where y == 0 (a constant
    slice), as PyTorch defines it, rather than the 0 / 0 of the formula."""

    def forward(self, x, axes, keepdims, ddof):
        xp = array_module(x)
        self.x_shape, self.axes = x.shape, axes
        self.denom = _degrees_of_freedom("std", x.shape, axes, ddof)
        self.centered = _centered(x, axes)
        self.y_kept = xp.sqrt((self.centered * self.centered).sum(axis=axes, keepdims=True)
                              / self.denom)
        return self.y_kept if keepdims else _drop_axes(self.y_kept, axes)

    def backward(self, grad):
        xp = array_module(grad)
        y = self.y_kept
        scale = grad.reshape(y.shape) / (xp.where(y == 0, 1, y) * self.denom)
        return xp.where(y == 0, 0, scale) * self.centered

    def graph_backward(self, grad, output):
        (x,) = self.inputs
        y = output.reshape(self.y_kept.shape)
        constant = Tensor._make(self.y_kept == 0)  # a constant slice: gradient 0, as backward
        scale = grad.reshape(y.shape) / (where(constant, 1.0, y) * self.denom)
        return where(constant, 0.0, scale) * (x - x.mean(axis=self.axes, keepdims=True))


def _centered(x, axes):
    """x minus its mean over `axes`, exactly 0 on a constant slice.

    Computed as s - mean(s) with s = x - x0 (x0: the slice's first element), the same value in
    exact arithmetic. For a constant slice s is exactly 0, whereas mean(x) may round an ulp away
    from the value and leave a tiny nonzero spread; std's gradient there would be the ratio of
    two such crumbs. (The shift also reduces cancellation when the mean is large next to the
    spread.)
    """
    # (the leading Ellipsis keeps a 0-d x an array: NumPy's x[()] would be a scalar)
    x0 = x[(...,) + tuple(slice(0, 1) if i in axes else slice(None) for i in range(x.ndim))]
    shifted = x - x0
    return shifted - shifted.mean(axis=axes, keepdims=True)


def _degrees_of_freedom(op, shape, axes, ddof) -> int:
    n = _count(shape, axes)
    if n - ddof <= 0:
        raise ValueError(f"{op}: ddof={ddof} leaves no degrees of freedom: each slice over axes "
                         f"{axes} of shape {tuple(shape)} has {n} element(s)")
    return n - ddof


class LogSumExp(Function):
    """y = log(sum(exp(x))) over axes, shifted by the max so exp cannot overflow;
    dy/dx = exp(x - y) (the softmax)."""

    def forward(self, x, axes, keepdims):
        xp = array_module(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # an all -inf slice gives -inf, not NaN
        y = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        self.x, self.y_kept = x, y
        return y if keepdims else _drop_axes(y, axes)

    def backward(self, grad):
        xp = array_module(grad)
        return grad.reshape(self.y_kept.shape) * xp.exp(self.x - self.y_kept)

    def graph_backward(self, grad, output):
        (x,) = self.inputs
        y = output.reshape(self.y_kept.shape)
        return grad.reshape(y.shape) * (x - y).exp()


def _axes(op, x, axis, dim):
    return normalize_axis(op, alias(op, "axis", axis, "dim", dim), x.ndim)


def _keep(op, keepdims, keepdim) -> bool:
    return bool(alias(op, "keepdims", keepdims, "keepdim", keepdim, False))


# Each reduction takes NumPy's axis= and keepdims= and, as aliases, PyTorch's dim= and keepdim=
# (the same meaning), except where PyTorch's meaning differs: max/min (a (values, indices) pair)
# and var/std (n - 1 by default); see those.

def sum(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    return Sum.apply(x, axes=_axes("sum", x, axis, dim), keepdims=_keep("sum", keepdims, keepdim))


def mean(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    if x.dtype.kind not in "f":
        raise TypeError(f"mean: expected a floating-point tensor, got dtype {x.dtype}")
    return Mean.apply(x, axes=_axes("mean", x, axis, dim),
                      keepdims=_keep("mean", keepdims, keepdim))


# PyTorch's torch.return_types.max / min: a tuple (values, indices) with those field names.
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _extreme(op, cls, arg_op, x, axis, keepdims, dim, keepdim, return_indices):
    """max/min. NumPy's spellings (axis, keepdims) give the values only; PyTorch's (dim=,
    keepdim=), or return_indices=True, give the pair (values, indices) over one axis, as
    torch.max(x, dim) does: with PyTorch's spelling the values alone would make
    ``v, i = x.max(dim=1)`` unpack rows and ``x.max(1, keepdim=True)[0]`` take a row, silently."""
    if isinstance(axis, Tensor) or isinstance(dim, Tensor):
        raise TypeError(f"{op}: got a Tensor where an axis was expected; the elementwise "
                        f"{op}imum of two tensors is tg.{op}imum(a, b) (torch.{op}(a, b))")
    torch_spelling = dim is not None or keepdim is not None
    axis_ = alias(op, "axis", axis, "dim", dim)
    keep = _keep(op, keepdims, keepdim)
    if not (torch_spelling or return_indices):
        return cls.apply(x, axes=normalize_axis(op, axis_, x.ndim), keepdims=keep)
    if axis_ is None or isinstance(axis_, (tuple, list)):
        how = "dim=" if torch_spelling else "return_indices=True"
        raise TypeError(f"{op}: with {how} the result is the pair (values, indices) over one "
                        f"axis, so give one int axis, got {axis_!r}; for the values over several "
                        f"axes use {op}(axis=...) or a{op}")
    (a,) = normalize_axis(op, axis_, x.ndim) or (0,)
    values = cls.apply(x, axes=(a,) if x.ndim else (), keepdims=keep)
    indices = arg_op(x, a if x.ndim else None, keepdims=keep)
    return (MaxResult if op == "max" else MinResult)(values, indices)


def max(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None,  # noqa: A001
        return_indices: bool = False):
    """The largest values along `axis` (values only, as NumPy). ``x.max(dim=1)``,
    ``x.max(1, keepdim=True)`` (PyTorch's spellings) and ``return_indices=True`` give PyTorch's
    named pair instead: ``values, indices = x.max(dim=1)``; ``.values`` is differentiable.

    >>> import tinygrad_pt as tg
    >>> x = tg.tensor([[1.0, 5.0], [7.0, 2.0]])
    >>> x.max(1).tolist()
    [5.0, 7.0]
    >>> x.max(dim=1).indices.tolist()
    [1, 0]
    """
    return _extreme("max", Max, argmax, x, axis, keepdims, dim, keepdim, return_indices)


def min(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None,  # noqa: A001
        return_indices: bool = False):
    """The smallest values along `axis`; PyTorch's spellings give (values, indices), as max."""
    return _extreme("min", Min, argmin, x, axis, keepdims, dim, keepdim, return_indices)


def amax(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    """PyTorch's amax: the largest values over `axis` (an int or a tuple), values only."""
    return Max.apply(x, axes=_axes("amax", x, axis, dim), keepdims=_keep("amax", keepdims, keepdim))


def amin(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    """PyTorch's amin: the smallest values over `axis` (an int or a tuple), values only."""
    return Min.apply(x, axes=_axes("amin", x, axis, dim), keepdims=_keep("amin", keepdims, keepdim))


def _ddof(op, ddof, correction, unbiased, torch_spelling) -> int:
    """NumPy's ddof, or PyTorch's correction= (the same number) or unbiased= (True: 1)."""
    given = [(k, v) for k, v in (("ddof", ddof), ("correction", correction),
                                 ("unbiased", unbiased)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: give one of ddof, correction and unbiased, got "
                        + ", ".join(f"{k}={v!r}" for k, v in given))
    if not given:
        if torch_spelling:
            # x.var(dim=0) is PyTorch code, which divides by n - 1; NumPy's default divides by n.
            raise ValueError(f"{op}: PyTorch's {op}(dim=...) divides by n - 1 but this "
                             f"library's default (NumPy's) divides by n; say which: "
                             f"correction=1 (PyTorch's default) or ddof=0")
        return 0
    name, value = given[0]
    return int(bool(value)) if name == "unbiased" else value


def var(x: Tensor, axis=None, keepdims=None, ddof=None, *, dim=None, keepdim=None,
        correction=None, unbiased=None) -> Tensor:
    """Variance with NumPy's default ddof=0 (PyTorch's default is 1: pass ddof=1 or correction=1
    for that; with PyTorch's dim=/keepdim= one of them must be given)."""
    torch_spelling = dim is not None or keepdim is not None
    return Var.apply(x, axes=_axes("var", x, axis, dim), keepdims=_keep("var", keepdims, keepdim),
                     ddof=_ddof("var", ddof, correction, unbiased, torch_spelling))


def std(x: Tensor, axis=None, keepdims=None, ddof=None, *, dim=None, keepdim=None,
        correction=None, unbiased=None) -> Tensor:
    """Standard deviation, sqrt(var) with NumPy's default ddof=0 (pass ddof=1 or correction=1
    for PyTorch's; with PyTorch's dim=/keepdim= one of them must be given)."""
    torch_spelling = dim is not None or keepdim is not None
    return Std.apply(x, axes=_axes("std", x, axis, dim), keepdims=_keep("std", keepdims, keepdim),
                     ddof=_ddof("std", ddof, correction, unbiased, torch_spelling))


def logsumexp(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    return LogSumExp.apply(x, axes=_axes("logsumexp", x, axis, dim),
                           keepdims=_keep("logsumexp", keepdims, keepdim))


def _arg_axis(op, x, axis):
    """argmax/argmin take None or one int axis (NumPy), checked here for a clear message."""
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{op}: axis must be None or a single int, got {axis!r}")
    (a,) = normalize_axis(op, axis, x.ndim) or (None,)
    return a


def argmax(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    """Indices of the largest values (int64, no gradient); the first one on ties (NumPy)."""
    if x.size == 0:
        raise ValueError(f"argmax: cannot take the argmax of an empty tensor (shape {x.shape})")
    axis = _arg_axis("argmax", x, alias("argmax", "axis", axis, "dim", dim))
    return Tensor._make(x.data.argmax(axis=axis, keepdims=_keep("argmax", keepdims, keepdim)))


def argmin(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    """Indices of the smallest values (int64, no gradient); the first one on ties (NumPy)."""
    if x.size == 0:
        raise ValueError(f"argmin: cannot take the argmin of an empty tensor (shape {x.shape})")
    axis = _arg_axis("argmin", x, alias("argmin", "axis", axis, "dim", dim))
    return Tensor._make(x.data.argmin(axis=axis, keepdims=_keep("argmin", keepdims, keepdim)))


def _any(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    axis = alias("any", "axis", axis, "dim", dim)
    return Tensor._make(x.data.any(axis=axis, keepdims=_keep("any", keepdims, keepdim)))


def _all(x: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None) -> Tensor:
    axis = alias("all", "axis", axis, "dim", dim)
    return Tensor._make(x.data.all(axis=axis, keepdims=_keep("all", keepdims, keepdim)))


TENSOR_METHODS = {"sum": sum, "mean": mean, "max": max, "min": min, "var": var, "std": std,
                  "amax": amax, "amin": amin, "logsumexp": logsumexp, "argmax": argmax,
                  "argmin": argmin,
                  "any": _any, "all": _all}
