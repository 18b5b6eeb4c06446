"""Activations: relu, leaky_relu, sigmoid, tanh, gelu, softplus, softmax, log_softmax.

Elementwise activations keep what their backward reads (relu its mask, sigmoid and tanh their
output). gelu, softmax and log_softmax call the kernel registry (``tinygrad_pt.kernels``), so the
reference or a faster implementation runs, per ``tg.set_kernels``. leaky_relu is a composition.
"""
from __future__ import annotations

import math

from ..autograd import Function
from ..backend import array_module
from ..kernels.reference import erfc
from ..kernels.registry import kernels_for
from ..tensor import Tensor
from .arguments import alias, check_float_tensor, one_axis
from .selection import where

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "softmax", "log_softmax"]


# ----------------------------------------------------------------------------------------------------
# Elementwise


class ReLU(Function):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch)."""
    saved_inputs = ()  # the mask is piecewise constant

    def forward(self, x):
        self.mask = x > 0
        return array_module(x).maximum(x, 0.0)  # 0.0 for negatives (x * mask would give -0.0)

    def backward(self, grad):
        return grad * self.mask


def stable_sigmoid(x):
    """1 / (1 + exp(-x)) with no overflow for any x and full relative precision for x << 0:

        sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|))

    (for x >= 0 that is 1 / (1 + e^-x); for x < 0 it is e^x / (1 + e^x)), so both exponents are
    <= 0. Written without a select: NumPy's where over a random sign mask ran ~15x slower than
    these four elementwise passes (65,536 float32: 250 us against 17 us, NumPy 2.4, measured)."""
    xp = array_module(x)
    y = xp.exp(xp.minimum(x, 0.0)) / (1.0 + xp.exp(-xp.abs(x)))
    return xp.asarray(y, dtype=x.dtype)  # an array also for 0-d x (NumPy returns a scalar)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)), written so that exp never overflows; dy/dx = y (1 - y)."""
    saved_inputs, saved_output = (), "y"

    def forward(self, x):
        self.y = stable_sigmoid(x)
        return self.y

    def backward(self, grad):
        return grad * self.y * (1.0 - self.y)


class Tanh(Function):
    """y = tanh(x); dy/dx = 1 - y^2."""
    saved_inputs, saved_output = (), "y"

    def forward(self, x):
        self.y = array_module(x).tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1.0 - self.y * self.y)


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (PyTorch's rule);
    dy/dx = sigmoid(beta x), and 1 in the linear region."""

    def forward(self, x, beta, threshold):
        xp = array_module(x)
        z = x * beta
        self.z, self.linear, self.beta = z, z > threshold, beta
        # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): exp cannot overflow whatever the threshold.
        soft = (xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))) * (1.0 / beta)
        return xp.where(self.linear, x, soft).astype(x.dtype, copy=False)

    def backward(self, grad):
        xp = array_module(grad)
        z = self.z
        slope = stable_sigmoid(self.z)
        slope[self.linear] = 1.0  # few entries pass the threshold: a sparse write, not a select
        return (grad * slope).astype(grad.dtype, copy=False)

    def graph_backward(self, grad, output):
        (x,) = self.inputs
        return grad * where(Tensor._make(self.linear), 1.0, sigmoid(x * self.beta))


class GELU(Function):
    """y = x * Phi(x) (exact, with erf) or its tanh approximation; through the gelu kernels."""

    def forward(self, x, approximate):
        self.k = kernels_for("gelu", array_module(x))
        self.x, self.approximate = x, approximate
        return self.k.gelu_fwd(x, approximate)

    def backward(self, grad):
        return self.k.gelu_bwd(grad, self.x, self.approximate)

    def graph_backward(self, grad, output):
        """The kernels' gelu_bwd (kernels/reference.py) written with Tensor ops; the exact form
        takes Phi from NormalCdf, whose own derivative phi is composed of exp."""
        (x,) = self.inputs
        if self.approximate == "tanh":
            t = tanh((x + x * x * x * _GELU_CUBIC) * _SQRT_2_OVER_PI)
            du = (x * x * (3.0 * _GELU_CUBIC) + 1.0) * _SQRT_2_OVER_PI
            return grad * ((t + 1.0) * 0.5 + x * (1.0 - t * t) * du * 0.5)
        return grad * (NormalCdf.apply(x) + x * _normal_pdf(x))


_GELU_CUBIC = 0.044715
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _normal_pdf(x):
    """phi(x) = exp(-x^2 / 2) / sqrt(2 pi), for arrays or (through their namespace) Tensors."""
    return array_module(x).exp(x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))


class NormalCdf(Function):
    """y = Phi(x) = erfc(-x / sqrt 2) / 2, the standard normal CDF; dy/dx = phi(x). Used by
    gelu's double backward (Phi has no Tensor op of its own)."""
    saved_inputs = ("x",)

    def forward(self, x):
        self.x = x
        return (erfc(x * (-1.0 / math.sqrt(2.0))) * 0.5).astype(x.dtype, copy=False)

    def backward(self, grad):
        return grad * _normal_pdf(self.x)


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise; the gradient at 0 is 0."""
    check_float_tensor("relu", x)
    return ReLU.apply(x)


class LeakyReLU(Function):
    """y = x where x > 0, else slope * x; dy/dx = 1 where x > 0, else slope (slope at 0, as
    PyTorch). For 0 <= slope <= 1, y = max(x, slope x) and dy/dx = max(1[x > 0], slope): no
    select over the sign mask, which NumPy runs ~15x slower (see stable_sigmoid)."""
    saved_inputs = ()  # the mask is piecewise constant

    def forward(self, x, slope):
        xp = array_module(x)
        self.mask, self.slope = x > 0, slope
        if 0.0 <= slope <= 1.0:
            return xp.maximum(x, x * x.dtype.type(slope))
        return xp.where(self.mask, x, x * x.dtype.type(slope))

    def backward(self, grad):
        xp = array_module(grad)
        if 0.0 <= self.slope <= 1.0:
            return grad * xp.maximum(self.mask.astype(grad.dtype), grad.dtype.type(self.slope))
        return xp.where(self.mask, grad, grad * grad.dtype.type(self.slope))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (at 0 the gradient is negative_slope, as PyTorch)."""
    check_float_tensor("leaky_relu", x)
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) \
            or not math.isfinite(negative_slope):
        raise TypeError(f"leaky_relu: negative_slope must be a finite number, got "
                        f"{negative_slope!r}")
    return LeakyReLU.apply(x, slope=float(negative_slope))


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), stable for large |x| (sigmoid(-1000) is 0, not a NaN or overflow)."""
    check_float_tensor("sigmoid", x)
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    """tanh(x) elementwise; the gradient is 1 - tanh(x)^2."""
    check_float_tensor("tanh", x)
    return Tanh.apply(x)


GELU_APPROXIMATIONS = ("none", "tanh")


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU(x) = x * Phi(x), Phi the standard normal CDF.

    approximate="none" (default, PyTorch's) is exact (erf); "tanh" is
    x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), GPT-2's. Same shape and dtype as x.
    """
    check_float_tensor("gelu", x)
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu: approximate must be one of {GELU_APPROXIMATIONS}, "
                         f"got {approximate!r}")
    return GELU.apply(x, approximate=approximate)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, reverting to x where beta x > threshold (PyTorch's)."""
    check_float_tensor("softplus", x)
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero, got 0")
    return Softplus.apply(x, beta=float(beta), threshold=float(threshold))


# ----------------------------------------------------------------------------------------------------
# softmax and log_softmax


class Softmax(Function):
    """y = softmax(x) along an axis; dx = y (dy - sum(dy y)). Keeps only y."""

    def forward(self, x, axis):
        self.k = kernels_for("softmax", array_module(x))
        self.axis, self.shape = axis, x.shape
        self.y = self.k.softmax_fwd(x.reshape(-1) if x.ndim == 0 else x, axis)
        return self.y.reshape(self.shape)

    def backward(self, grad):
        return self.k.softmax_bwd(grad.reshape(self.y.shape), self.y, self.axis).reshape(self.shape)

    def graph_backward(self, grad, y):
        return y * (grad - (grad * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - logsumexp(x) along an axis; dx = dy - exp(y) sum(dy). Keeps only y."""

    def forward(self, x, axis):
        self.k = kernels_for("softmax", array_module(x))
        self.axis, self.shape = axis, x.shape
        self.y = self.k.log_softmax_fwd(x.reshape(-1) if x.ndim == 0 else x, axis)
        return self.y.reshape(self.shape)

    def backward(self, grad):
        g = self.k.log_softmax_bwd(grad.reshape(self.y.shape), self.y, self.axis)
        return g.reshape(self.shape)

    def graph_backward(self, grad, y):
        return grad - y.exp() * grad.sum(axis=self.axis, keepdims=True)


def _along_axis(fn_class, op: str, x: Tensor, axis) -> Tensor:
    check_float_tensor(op, x)
    # A 0-d tensor is a slice of one value: the Function runs it as shape (1,).
    return fn_class.apply(x, axis=one_axis(op, axis, x.ndim, scalar_ok=True))


def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis` (alias dim; default the last axis), shifted by the max,
    so +-1e4 logits are fine.

    Same shape and dtype as x. Entries of -inf get probability 0; a slice that is all -inf is
    NaN (as PyTorch).

    >>> import tinygrad_pt as tg
    >>> tg.softmax(tg.tensor([0.0, 0.0])).numpy()
    array([0.5, 0.5], dtype=float32)
    """
    return _along_axis(Softmax, "softmax", x, alias("softmax", "axis", axis, "dim", dim, -1))


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along `axis` (alias dim; default the last axis): the log-probabilities,
    accurate where softmax underflows.

    Entries of -inf give -inf (their gradient stays finite); a slice that is all -inf is NaN in
    forward and backward (as PyTorch; other slices are unaffected).
    """
    return _along_axis(LogSoftmax, "log_softmax", x,
                       alias("log_softmax", "axis", axis, "dim", dim, -1))


TENSOR_METHODS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
                  "log_softmax": log_softmax}
