"""PyTorch's spellings that NumPy has no word for, with PyTorch's meanings: ``view``, ``expand_as``,
``clamp``, ``norm``, ``cdist``, ``x.dim()``, ``x.t()``, ``x.long()``, ...

Each is built from the ops beside it (reshape, broadcast_to, where, sum, sqrt, ...), so each is
differentiable where PyTorch's is and needs no backward of its own; higher-order gradients come
with those ops. Where a PyTorch name collides with a NumPy one (split, transpose, max, size), the
NumPy meaning is the contract and the decision sits with the op itself (shape.py, reduce.py,
tensor.py); DESIGN.md's contract lists them, and the README's porting guide.

    >>> import tinygrad_pt as tg
    >>> x = tg.tensor([[3.0, 4.0], [0.0, 0.0]])
    >>> x.norm(dim=1).tolist()
    [5.0, 0.0]
    >>> x.view(4).clamp(min=1.0).tolist()
    [3.0, 4.0, 1.0, 1.0]
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from .arguments import alias, check_float_tensor, is_int
from .elementwise import sqrt
from .selection import Clip, _as_python_number, where
from .reduce import amax, amin, normalize_axis
from .shape import Transpose, expand, reshape

__all__ = ["clamp", "clamp_min", "clamp_max", "norm", "cdist"]


# ----------------------------------------------------------------------------------------------------
# Shapes: view, view_as, reshape_as, expand_as, t, contiguous

def view(x: Tensor, *shape) -> Tensor:
    """PyTorch's view: reshape (ints or one tuple, one -1 allowed). The result shares x's data
    where NumPy's reshape can view it; a non-contiguous x is copied instead of refused. A dtype
    (PyTorch's ``view(torch.int32)`` reinterprets the bytes) is refused."""
    if len(shape) == 1 and not is_int(shape[0]) and not isinstance(shape[0], (tuple, list)):
        raise TypeError(f"view: expected a shape (ints or one tuple), got {shape[0]!r}; "
                        "reinterpreting the bytes as another dtype is not supported, cast with "
                        ".to(dtype=...)")
    return reshape(x, *shape)


def view_as(x: Tensor, other: Tensor) -> Tensor:
    """x reshaped to other's shape."""
    return reshape(x, other.shape)


reshape_as = view_as


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    """x broadcast (as a view) to other's shape; the gradient sums over the copies."""
    return expand(x, *other.shape)


def t(x: Tensor) -> Tensor:
    """PyTorch's t(): a tensor of at most two dims with its axes swapped (0-d and 1-d unchanged)."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with at most 2 dims, got shape {x.shape}; use "
                         "transpose(i, j) or swapaxes")
    return Transpose.apply(x, axes=tuple(range(x.ndim))[::-1])


def contiguous(x: Tensor, memory_format=None) -> Tensor:
    """x itself: there is no strided layout to fix here (reshape copies where it must)."""
    return x


# ----------------------------------------------------------------------------------------------------
# clamp

def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def clamp(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 (PyTorch's names)
    """PyTorch's clamp: min(max(x, min), max), bounds numbers or tensors (broadcast), either may
    be None. The gradient passes to x where min <= x <= max, to a tensor bound where it won;
    where min > max the result is max (as PyTorch) rather than NumPy clip's error.

    >>> import tinygrad_pt as tg
    >>> tg.tensor([-2.0, 0.5, 3.0]).clamp(-1, 1).tolist()
    [-1.0, 0.5, 1.0]
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given, got neither")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and not (_is_number(bound) or isinstance(bound, Tensor)):
            raise TypeError(f"clamp: {name} must be a number, a Tensor or None, got "
                            f"{type(bound).__name__}")
    if not isinstance(min, Tensor) and not isinstance(max, Tensor):
        # Python numbers in x's dtype's kind: a NumPy float64 bound would upcast a float32 x.
        lo = None if min is None else _as_python_number(min, x.dtype)
        hi = None if max is None else _as_python_number(max, x.dtype)
        return Clip.apply(x, lo=lo, hi=hi)
    # Tensor bounds: two routings of the gradient (to x where it is kept, to the bound where the
    # bound is taken), as torch.clamp's backward splits it.
    y = x if min is None else where(x < min, min, x)
    return y if max is None else where(y > max, max, y)


def clamp_min(x: Tensor, min) -> Tensor:  # noqa: A002
    return clamp(x, min=min)


def clamp_max(x: Tensor, max) -> Tensor:  # noqa: A002
    return clamp(x, max=max)


# ----------------------------------------------------------------------------------------------------
# norm, cdist

def _root(s: Tensor, root) -> Tensor:
    """root(s) with a zero gradient where s == 0 (a zero vector), as PyTorch's norm backward
    defines it, instead of the inf * 0 = NaN of the root's derivative there."""
    zero = s == 0
    safe = where(zero, 1.0, s)  # no gradient reaches s through the replaced entries
    return where(zero, 0.0, root(safe))


def norm(x: Tensor, p="fro", dim=None, keepdim=None, *, dtype=None, axis=None,
         keepdims=None) -> Tensor:
    """PyTorch's torch.norm for vectors (torch.linalg.vector_norm): (sum |x|^p)^(1/p) over `dim`
    (None: all axes; an int or a tuple), p a positive number, inf (max |x|), -inf (min |x|),
    0 (the count of nonzeros, without gradient) or "fro" (2). NumPy's axis=/keepdims= are
    accepted as aliases; dtype= (the dtype to compute in) is keyword-only, as torch.norm puts
    out= before it. The gradient at a zero vector is 0 (PyTorch's choice); for inf and -inf
    ties share it evenly.

    >>> import tinygrad_pt as tg
    >>> tg.norm(tg.tensor([3.0, -4.0]), p=1).item()
    7.0
    """
    check_float_tensor("norm", x)
    if dtype is not None:
        x = x.to(dtype=dtype)
    if p == "fro":
        p = 2
    if not _is_number(p) or math.isnan(p) or (p < 0 and p != -math.inf):
        raise ValueError(f"norm: p must be a non-negative number, inf, -inf or 'fro', got "
                             f"{p!r} (matrix norms such as 'nuc' are not provided)")
    axes = normalize_axis("norm", alias("norm", "axis", axis, "dim", dim), x.ndim)
    keep = bool(alias("norm", "keepdims", keepdims, "keepdim", keepdim, False))
    if p == math.inf:
        return amax(x.abs(), axes, keep)
    if p == -math.inf:
        return amin(x.abs(), axes, keep)
    if p == 0:
        count = (x != 0).data.sum(axis=axes, keepdims=keep).astype(x.dtype)
        return Tensor._make(count)  # piecewise constant: PyTorch's gradient is zero
    if p == 2:
        return _root((x * x).sum(axes, keep), sqrt)
    if p == 1:
        return x.abs().sum(axes, keep)  # |x|'s gradient at 0 is already 0
    p = float(p)
    return _root((x.abs() ** p).sum(axes, keep), lambda s: s ** (1.0 / p))


_COMPUTE_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                  "donot_use_mm_for_euclid_dist")


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """PyTorch's cdist: the p-norm distance between each row of x1 (..., P, M) and each row of
    x2 (..., R, M), batch axes broadcast: (..., P, R). Differentiable in both (0 at a zero
    distance). Computed from the differences, (..., P, R, M) in memory, so always exactly
    (compute_mode is accepted; no matmul shortcut is taken).

    >>> import tinygrad_pt as tg
    >>> tg.cdist(tg.tensor([[0.0, 0.0]]), tg.tensor([[3.0, 4.0], [0.0, 1.0]])).tolist()
    [[5.0, 1.0]]
    """
    for name, a in (("x1", x1), ("x2", x2)):
        check_float_tensor("cdist", a, name)
        if a.ndim < 2:
            raise ValueError(f"cdist: {name} must have at least 2 dims (..., rows, features), "
                             f"got shape {a.shape}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist: x1 {x1.shape} and x2 {x2.shape} must have the same number of "
                         f"features (last axis), got {x1.shape[-1]} and {x2.shape[-1]}")
    try:
        np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    except ValueError:
        raise ValueError(f"cdist: the batch axes of x1 {x1.shape} and x2 {x2.shape} (all but the "
                         f"last two) cannot be broadcast together") from None
    if compute_mode not in _COMPUTE_MODES:
        raise ValueError(f"cdist: unknown compute_mode {compute_mode!r}, expected one of "
                         f"{_COMPUTE_MODES}")
    if isinstance(p, bool) or not _is_number(p) or p < 0:
        raise ValueError(f"cdist: p must be a non-negative number, got {p!r}")
    diff = x1.expand_dims(-2) - x2.expand_dims(-3)  # (..., P, R, M)
    return norm(diff, p=p, dim=-1)


# ----------------------------------------------------------------------------------------------------
# Tensor's PyTorch spellings of what it has under NumPy's names

def _cast(dtype, name):
    def method(self: Tensor) -> Tensor:
        return self.to(dtype=dtype)
    method.__name__ = name
    method.__doc__ = f"``x.{name}()``: x cast to {np.dtype(dtype)} (PyTorch's name)."
    return method


def _not_a_pair(field):
    def get(self):
        raise AttributeError(f"'Tensor' object has no attribute {field!r}: x.max(axis) and "
                             f"x.min(axis) return the values only (NumPy's meaning); for "
                             f"PyTorch's (values, indices) write x.max(dim=...) or "
                             f"x.max(axis, return_indices=True)")
    return property(get)


TENSOR_METHODS = {
    "view": view, "view_as": view_as, "reshape_as": reshape_as, "expand_as": expand_as,
    "t": t, "contiguous": contiguous, "swapdims": lambda self, a, b: self.swapaxes(a, b),
    "clamp": clamp, "clamp_min": clamp_min, "clamp_max": clamp_max, "norm": norm,
    "dim": lambda self: self.ndim,
    "is_cuda": property(lambda self: self.device == "cuda", doc="device == 'cuda' (PyTorch)"),
    "long": _cast(np.int64, "long"), "int": _cast(np.int32, "int"), "bool": _cast(np.bool_, "bool"),
    "half": _cast(np.float16, "half"),
    "values": _not_a_pair("values"), "indices": _not_a_pair("indices"),
}
