"""Elementwise ops: arithmetic, exp/log/sqrt/abs, maximum/minimum, clip, where, comparisons.

Each Function keeps only what its backward reads (exp keeps its output, log its input) and undoes
broadcasting with the shared ``unbroadcast``, only when the shapes differ.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import array_module
from ..tensor import Tensor, lift

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "sin", "cos",
           "maximum", "minimum", "clip", "where", "equal", "not_equal", "less", "less_equal",
           "greater", "greater_equal"]


def binary_operands(op: str, a, b):
    """Both operands as Tensors (scalars take the tensor's dtype), their shapes broadcastable."""
    if isinstance(a, Tensor):
        b = lift(b, a)
    elif isinstance(b, Tensor):
        a = lift(a, b)
    else:
        raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    if a.shape != b.shape:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                             "(NumPy rules: trailing dimensions must match or be 1)") from None
    return a, b


# ----------------------------------------------------------------------------------------------------
# Arithmetic

class Add(Function):
    """y = a + b; dy/da = dy/db = 1."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad):
        return unbroadcast(grad, self.a_shape), unbroadcast(grad, self.b_shape)


class Sub(Function):
    """y = a - b; dy/da = 1, dy/db = -1."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad):
        gb = unbroadcast(-grad, self.b_shape) if self.needs_input_grad[1] else None
        return unbroadcast(grad, self.a_shape), gb


class Mul(Function):
    """y = a * b; dy/da = b, dy/db = a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        ga = unbroadcast(grad * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b; dy/da = 1/b, dy/db = -a/b^2 = -y/b."""

    def forward(self, a, b):
        self.b = b
        self.y = a / b
        self.a_shape = a.shape
        return self.y

    def backward(self, grad):
        gb_full = grad / self.b
        ga = unbroadcast(gb_full, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gb_full * self.y, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class PowScalar(Function):
    """y = x ** p for a constant p; dy/dx = p * x ** (p - 1)."""

    def forward(self, x, p):
        self.x, self.p = x, p
        return x ** p

    def backward(self, grad):
        p = self.p
        if p == 2:
            return grad * (self.x * 2)  # the common square, without a power call
        return grad * (p * self.x ** (p - 1))


class Pow(Function):
    """y = a ** b for two tensors; dy/da = b * a^(b-1), dy/db = y * log(a) (a > 0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, grad):
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(grad * self.b * self.a ** (self.b - 1), self.a.shape)
        if self.needs_input_grad[1]:
            xp = array_module(self.a)
            # log(a) is taken only where a > 0; elsewhere the derivative in b is set to 0 (as
            # PyTorch does for a == 0) rather than NaN.
            safe = xp.where(self.a > 0, self.a, 1)
            gb = unbroadcast(grad * self.y * xp.log(safe), self.b.shape)
        return ga, gb


def add(a, b) -> Tensor:
    return Add.apply(*binary_operands("add", a, b))


def sub(a, b) -> Tensor:
    return Sub.apply(*binary_operands("sub", a, b))


def mul(a, b) -> Tensor:
    return Mul.apply(*binary_operands("mul", a, b))


def div(a, b) -> Tensor:
    return Div.apply(*binary_operands("div", a, b))


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def pow(a, b) -> Tensor:  # noqa: A001 (NumPy's name)
    """a ** b. A Python-number exponent is a constant (no gradient flows to it)."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return PowScalar.apply(a, p=b)
    return Pow.apply(*binary_operands("pow", a, b))


# ----------------------------------------------------------------------------------------------------
# Unary math

class Exp(Function):
    """y = exp(x); dy/dx = y, so the output is kept, not the input."""

    def forward(self, x):
        self.y = array_module(x).exp(x)
        return self.y

    def backward(self, grad):
        return grad * self.y


class Log(Function):
    """y = log(x); dy/dx = 1/x."""

    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, grad):
        return grad / self.x


class Sqrt(Function):
    """y = sqrt(x); dy/dx = 1 / (2 y)."""

    def forward(self, x):
        self.y = array_module(x).sqrt(x)
        return self.y

    def backward(self, grad):
        return grad / (self.y * 2)


class Abs(Function):
    """y = |x|; dy/dx = sign(x) (0 at 0, as PyTorch)."""

    def forward(self, x):
        self.x = x
        return array_module(x).abs(x)

    def backward(self, grad):
        return grad * array_module(self.x).sign(self.x)


class Sin(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).sin(x)

    def backward(self, grad):
        return grad * array_module(self.x).cos(self.x)


class Cos(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).cos(x)

    def backward(self, grad):
        return -grad * array_module(self.x).sin(self.x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def abs(x: Tensor) -> Tensor:  # noqa: A001 (NumPy's name)
    return Abs.apply(x)


def sin(x: Tensor) -> Tensor:
    return Sin.apply(x)


def cos(x: Tensor) -> Tensor:
    return Cos.apply(x)


# ----------------------------------------------------------------------------------------------------
# Selection: maximum, minimum, clip, where

class _Extremum(Function):
    """maximum/minimum: the gradient goes to the chosen operand; ties split it evenly (PyTorch)."""
    pick = None  # "max" or "min"

    def forward(self, a, b):
        xp = array_module(a, b)
        self.a, self.b = a, b
        return xp.maximum(a, b) if self.pick == "max" else xp.minimum(a, b)

    def backward(self, grad):
        a, b = self.a, self.b
        wins = (a > b) if self.pick == "max" else (a < b)
        share = wins + (a == b) * 0.5  # 1 where a was chosen, 1/2 on ties, 0 otherwise
        share = share.astype(grad.dtype)
        ga = unbroadcast(grad * share, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad * (1 - share), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Maximum(_Extremum):
    pick = "max"


class Minimum(_Extremum):
    pick = "min"


class Clip(Function):
    """y = min(max(x, lo), hi); the gradient passes where lo <= x <= hi (PyTorch's clamp)."""

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
    """NumPy's clip with scalar bounds (either may be None)."""
    if a_min is None and a_max is None:
        raise ValueError("clip: at least one of a_min and a_max must be given")
    if a_min is not None and a_max is not None and a_min > a_max:
        raise ValueError(f"clip: a_min ({a_min}) is greater than a_max ({a_max})")
    return Clip.apply(x, lo=a_min, hi=a_max)


def where(condition, a, b) -> Tensor:
    """Elementwise `a` where `condition` is true, else `b` (NumPy's where, three arguments)."""
    a, b = binary_operands("where", a, b)
    cond = condition if isinstance(condition, Tensor) else lift(condition, a)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be a boolean tensor, got dtype {cond.dtype}")
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: condition {cond.shape}, a {a.shape} and b {b.shape} cannot be "
                         "broadcast together") from None
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


def _swap(fn):
    return lambda self, other: fn(other, self)


TENSOR_METHODS = {
    "__add__": add, "__radd__": _swap(add), "__sub__": sub, "__rsub__": _swap(sub),
    "__mul__": mul, "__rmul__": _swap(mul), "__truediv__": div, "__rtruediv__": _swap(div),
    "__neg__": neg, "__pow__": pow, "__rpow__": _swap(pow), "__abs__": abs,
    "__eq__": equal, "__ne__": not_equal, "__lt__": less, "__le__": less_equal,
    "__gt__": greater, "__ge__": greater_equal,
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "sin": sin, "cos": cos, "clip": clip,
}
