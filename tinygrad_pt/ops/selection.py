"""Selecting and comparing elementwise: maximum, minimum, clip, where (differentiable: the
gradient goes to the operand that was picked) and the comparisons (==, <, ...: boolean results,
no gradient). Operands meet as in arithmetic (ops/elementwise.py's binary_operands).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, broadcast_shape, unbroadcast
from ..backend import array_module
from ..tensor import Tensor, as_array
from .elementwise import binary_operands

__all__ = ["maximum", "minimum", "clip", "where", "equal", "not_equal", "less", "less_equal",
           "greater", "greater_equal"]


# ----------------------------------------------------------------------------------------------------
# Selection: maximum, minimum, clip, where

class _Extremum(Function):
    """maximum/minimum: the gradient goes to the chosen operand; ties split it evenly (PyTorch)."""

    saved_inputs = ()  # a and b set only the (piecewise constant) shares
    pick = None  # "max" or "min"

    def forward(self, a, b):
        xp = array_module(a, b)
        self.a, self.b = a, b
        return xp.maximum(a, b) if self.pick == "max" else xp.minimum(a, b)

    def backward(self, grad):
        a, b = self.a, self.b
        wins = (a > b) if self.pick == "max" else (a < b)
        # a's share: 1 where a was chosen, 1/2 on ties, 0 otherwise (b gets the rest)
        share = wins.astype(grad.dtype) + (a == b).astype(grad.dtype) * 0.5
        ga = unbroadcast(grad * share, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad * (1 - share), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Maximum(_Extremum):
    pick = "max"


class Minimum(_Extremum):
    pick = "min"


class Clip(Function):
    """y = min(max(x, lo), hi); the gradient passes where lo <= x <= hi (PyTorch's clamp)."""

    saved_inputs = ()  # the mask is piecewise constant

    def forward(self, x, lo, hi):
        xp = array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            self.inside &= x >= lo
        if hi is not None:
            self.inside &= x <= hi
        return xp.clip(x, lo, hi)

    def backward(self, grad):
        return grad * self.inside


class Where(Function):
    """y = a where cond else b; the gradient is routed the same way (cond gets none)."""

    saved_inputs = ()

    def forward(self, cond, a, b):
        self.cond, self.a_shape, self.b_shape = cond, a.shape, b.shape
        return array_module(a, b).where(cond, a, b)

    def backward(self, grad):
        zero = grad.dtype.type(0)
        xp = array_module(grad)
        ga = unbroadcast(xp.where(self.cond, grad, zero), self.a_shape) \
            if self.needs_input_grad[1] else None
        gb = unbroadcast(xp.where(self.cond, zero, grad), self.b_shape) \
            if self.needs_input_grad[2] else None
        return None, ga, gb


def maximum(a, b) -> Tensor:
    return Maximum.apply(*binary_operands("maximum", a, b))


def minimum(a, b) -> Tensor:
    return Minimum.apply(*binary_operands("minimum", a, b))


def clip(x: Tensor, a_min=None, a_max=None) -> Tensor:
    """NumPy's clip with scalar bounds (either may be None); the output keeps x's dtype.
    The gradient passes where a_min <= x <= a_max, bounds included (PyTorch's clamp)."""
    if a_min is None and a_max is None:
        raise ValueError("clip: at least one of a_min and a_max must be given")
    for name, bound in (("a_min", a_min), ("a_max", a_max)):
        if bound is not None and not isinstance(bound, (int, float, np.integer, np.floating)):
            raise TypeError(f"clip: {name} must be a Python or NumPy number (or None), got "
                            f"{type(bound).__name__}")
    if a_min is not None and a_max is not None and a_min > a_max:
        raise ValueError(f"clip: a_min ({a_min}) is greater than a_max ({a_max})")
    # Bounds as Python numbers: a NumPy float64 bound would upcast a float32 tensor.
    lo = None if a_min is None else _as_python_number(a_min, x.dtype)
    hi = None if a_max is None else _as_python_number(a_max, x.dtype)
    return Clip.apply(x, lo=lo, hi=hi)


def _as_python_number(v, dtype):
    v = v.item() if isinstance(v, np.generic) else v
    return float(v) if dtype.kind == "f" else v


def where(condition, a, b) -> Tensor:
    """Elementwise `a` where `condition` is true, else `b` (NumPy's where, three arguments).

    `condition` is a boolean Tensor, array or Python bool; `a` and `b` may be Tensors or scalars
    (two scalars give the default float dtype, or int64 for two ints).
    """
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):  # two scalars: a sets the dtype
        a = Tensor(a, device=condition.device if isinstance(condition, Tensor) else None)
    a, b = binary_operands("where", a, b)
    if isinstance(condition, Tensor):
        cond = condition
    else:
        cond = Tensor._make(as_array(condition))
        if cond.device != a.device:
            raise RuntimeError(f"where: condition is on {cond.device} but a and b are on "
                               f"{a.device}; move it with .to(device) first")
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be a boolean tensor, got dtype {cond.dtype}")
    if broadcast_shape(cond.shape, a.shape, b.shape) is None:
        raise ValueError(f"where: condition {cond.shape}, a {a.shape} and b {b.shape} cannot be "
                         "broadcast together")
    return Where.apply(cond, a, b)


# ----------------------------------------------------------------------------------------------------
# Comparisons: not differentiable, they return boolean tensors

def _compare(name, fn):
    def compare(a, b) -> Tensor:
        a, b = binary_operands(name, a, b)
        return Tensor._make(fn(a.data, b.data))
    compare.__name__ = name
    compare.__doc__ = f"Elementwise {name} as a boolean tensor (no gradient)."
    return compare


equal = _compare("equal", lambda a, b: a == b)
not_equal = _compare("not_equal", lambda a, b: a != b)
less = _compare("less", lambda a, b: a < b)
less_equal = _compare("less_equal", lambda a, b: a <= b)
greater = _compare("greater", lambda a, b: a > b)
greater_equal = _compare("greater_equal", lambda a, b: a >= b)


TENSOR_METHODS = {
    "maximum": maximum, "minimum": minimum, "clip": clip,
    "__eq__": equal, "__ne__": not_equal, "__lt__": less, "__le__": less_equal,
    "__gt__": greater, "__ge__": greater_equal,
}
