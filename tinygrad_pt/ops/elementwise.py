"""Elementwise ops: arithmetic and exp/log/sqrt/abs/sin/cos (selection and comparisons: ops/selection.py).

Each Function keeps only what its backward reads (exp keeps its output, log its input) and undoes
broadcasting with the shared ``unbroadcast``, only when the shapes differ.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, broadcast_shape, unbroadcast
from ..backend import array_module, default_float
from ..tensor import Tensor, lift

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "sin", "cos"]


def promote_pair(a: Tensor, b: Tensor):
    """PyTorch's promotion of two operands: an integer or bool tensor meeting a floating one
    becomes that float dtype (NumPy would make int64 with float32 into float64, a silent upcast);
    two floats keep NumPy's rule (float32 with float64 gives float64). The one rule for every
    binary op, matmul included."""
    ka, kb = a.data.dtype.kind, b.data.dtype.kind
    if ka != kb:
        if ka in "biu" and kb == "f":
            a = Tensor._make(a.data.astype(b.data.dtype))  # integers carry no gradient
        elif kb in "biu" and ka == "f":
            b = Tensor._make(b.data.astype(a.data.dtype))
    return a, b


def float_operand(x: Tensor) -> Tensor:
    """x, or for an integer or bool tensor x in the default float dtype: exp, log, sqrt, sin and
    cos of integers are floats, float32 as in PyTorch (NumPy would give float64)."""
    if isinstance(x, Tensor) and x.data.dtype.kind in "biu":
        return Tensor._make(x.data.astype(default_float))  # integers carry no gradient
    return x


def binary_operands(op: str, a, b):
    """Both operands as Tensors (scalars take the tensor's dtype), their shapes broadcastable.

    An integer or bool operand meeting a floating one is cast to that float dtype first (as
    PyTorch does): NumPy would make int64 with float32 into float64, a silent upcast.
    """
    if isinstance(a, Tensor):
        b = lift(b, a)
    elif isinstance(b, Tensor):
        a = lift(a, b)
    else:
        raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    a, b = promote_pair(a, b)
    if a.shape != b.shape and broadcast_shape(a.shape, b.shape) is None:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                         "(NumPy rules: trailing dimensions must match or be 1)")
    return a, b


# ----------------------------------------------------------------------------------------------------
# Arithmetic

class Add(Function):
    """y = a + b; dy/da = dy/db = 1."""

    saved_inputs = ()  # the rule reads only shapes: it is linear in grad

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad):
        ga = unbroadcast(grad, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad, self.b_shape) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    """y = a - b; dy/da = 1, dy/db = -1."""

    saved_inputs = ()

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad):
        ga = unbroadcast(grad, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-grad, self.b_shape) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    """y = a * b; dy/da = b, dy/db = a."""

    saved_inputs = ("a", "b")

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        ga = unbroadcast(grad * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b; dy/da = 1/b, dy/db = -a/b^2 = -y/b."""

    saved_inputs, saved_output = (None, "b"), "y"

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
    """y = -x; dy/dx = -1."""

    saved_inputs = ()

    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class PowScalar(Function):
    """y = x ** p for a constant p; dy/dx = p * x ** (p - 1) (0 for p == 0, as PyTorch, rather
    than 0 * x ** -1, which is NaN at x = 0)."""

    saved_inputs = ("x",)

    def forward(self, x, p):
        self.x, self.p = x, p
        return x ** p

    def backward(self, grad):
        p = self.p
        if p == 0:
            return grad * 0.0
        if p == 2:
            return grad * (self.x * 2.0)  # the common square, without a power call
        return grad * (p * self.x ** (p - 1))


class Pow(Function):
    """y = a ** b for two tensors; dy/da = b * a^(b-1), dy/db = y * log(a).

    As PyTorch defines the edge cases: dy/da is 0 where b == 0 (not 0 * a^-1, NaN at a = 0);
    dy/db is 0 where a == 0 and b >= 0, and NaN for a < 0 (no real derivative in b there).
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, grad):
        ga = gb = None
        xp = array_module(self.a)
        if self.needs_input_grad[0]:
            # where b == 0 the exponent b - 1 is replaced by 1, so that 0 * a^-1 (NaN at a = 0)
            # becomes 0 * a = 0
            da = self.b * self.a ** xp.where(self.b == 0, 1, self.b - 1)
            ga = unbroadcast(grad * da, self.a.shape)
        if self.needs_input_grad[1]:
            # a == 0 would give y * log(0) = 0 * -inf = NaN; its limit is 0 (for b > 0).
            zero_base = (self.a == 0) & (self.b >= 0)
            log_a = xp.log(xp.where(zero_base, 1, self.a))
            gb = unbroadcast(grad * self.y * log_a, self.b.shape)
        return ga, gb

    def graph_backward(self, grad, y):
        """backward's rule on Tensors; its masks come from the saved arrays (they are
        piecewise constant), the values from the input and output Tensors."""
        from .selection import where  # noqa: PLC0415 (selection.py builds on this module)

        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            exponent = where(Tensor._make(self.b == 0), 1.0, b - 1.0)
            ga = unbroadcast(grad * (b * a ** exponent), self.a.shape)
        if self.needs_input_grad[1]:
            zero_base = Tensor._make((self.a == 0) & (self.b >= 0))
            gb = unbroadcast(grad * y * log(where(zero_base, 1.0, a)), self.b.shape)
        return ga, gb


def add(a, b) -> Tensor:
    return Add.apply(*binary_operands("add", a, b))


def sub(a, b) -> Tensor:
    return Sub.apply(*binary_operands("sub", a, b))


def mul(a, b) -> Tensor:
    return Mul.apply(*binary_operands("mul", a, b))


def div(a, b) -> Tensor:
    """a / b, true division. Two integer operands give the default float (float32, as PyTorch),
    not NumPy's float64."""
    a, b = binary_operands("div", a, b)
    if a.dtype.kind in "biu":  # then b is an integer too (binary_operands casts mixed pairs)
        a, b = Tensor._make(a.data.astype(default_float)), Tensor._make(b.data.astype(default_float))
    return Div.apply(a, b)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def pow(a, b) -> Tensor:  # noqa: A001 (NumPy's name)
    """a ** b. A scalar exponent (Python or NumPy number) is a constant (no gradient flows to it);
    a tensor exponent gets a gradient; ``2 ** x`` works through ``__rpow__``."""
    if isinstance(a, Tensor) and isinstance(b, (int, float, np.integer, np.floating)) \
            and not isinstance(b, bool) and a.dtype.kind == "f":
        return PowScalar.apply(a, p=b.item() if isinstance(b, np.generic) else b)
    return Pow.apply(*binary_operands("pow", a, b))


# ----------------------------------------------------------------------------------------------------
# Unary math

class Exp(Function):
    """y = exp(x); dy/dx = y, so the output is kept, not the input."""

    saved_inputs, saved_output = (), "y"

    def forward(self, x):
        self.y = array_module(x).exp(x)
        return self.y

    def backward(self, grad):
        return grad * self.y


class Log(Function):
    """y = log(x); dy/dx = 1/x."""

    saved_inputs = ("x",)

    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, grad):
        return grad / self.x


class Sqrt(Function):
    """y = sqrt(x); dy/dx = 1 / (2 y)."""

    saved_inputs, saved_output = (), "y"

    def forward(self, x):
        self.y = array_module(x).sqrt(x)
        return self.y

    def backward(self, grad):
        return grad / (self.y * 2)


class Abs(Function):
    """y = |x|; dy/dx = sign(x) (0 at 0, as PyTorch)."""

    saved_inputs = ("x",)

    def forward(self, x):
        self.x = x
        return array_module(x).abs(x)

    def backward(self, grad):
        return grad * array_module(self.x).sign(self.x)


class Sin(Function):
    """y = sin(x); dy/dx = cos(x)."""

    saved_inputs = ("x",)

    def forward(self, x):
        self.x = x
        return array_module(x).sin(x)

    def backward(self, grad):
        return grad * array_module(self.x).cos(self.x)


class Cos(Function):
    """y = cos(x); dy/dx = -sin(x)."""

    saved_inputs = ("x",)

    def forward(self, x):
        self.x = x
        return array_module(x).cos(x)

    def backward(self, grad):
        return -grad * array_module(self.x).sin(self.x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(float_operand(x))


def log(x: Tensor) -> Tensor:
    return Log.apply(float_operand(x))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(float_operand(x))


def abs(x: Tensor) -> Tensor:  # noqa: A001 (NumPy's name)
    return Abs.apply(x)


def sin(x: Tensor) -> Tensor:
    return Sin.apply(float_operand(x))


def cos(x: Tensor) -> Tensor:
    return Cos.apply(float_operand(x))


def _swap(fn):
    return lambda self, other: fn(other, self)


TENSOR_METHODS = {
    "__add__": add, "__radd__": _swap(add), "__sub__": sub, "__rsub__": _swap(sub),
    "__mul__": mul, "__rmul__": _swap(mul), "__truediv__": div, "__rtruediv__": _swap(div),
    "__neg__": neg, "__pos__": lambda self: self, "__pow__": pow, "__rpow__": _swap(pow),
    "__abs__": abs, "pow": pow,
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "sin": sin, "cos": cos,
}
