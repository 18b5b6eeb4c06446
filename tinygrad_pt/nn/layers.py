"""Layers: Linear, Embedding, LayerNorm, Dropout and the activation modules.

Each layer holds its Parameters and calls the functional API (``tinygrad_pt.nn.functional``) in
``forward``; the math and the gradients live there. Names, argument order, defaults, shapes and
initialisation are PyTorch's, so a model reads (and loads weights) the same way:

  Linear.weight (out_features, in_features), bias (out_features,)   ~ U(-1/sqrt(in), 1/sqrt(in))
  Embedding.weight (num_embeddings, embedding_dim)                    ~ N(0, 1)
  LayerNorm.weight = 1, LayerNorm.bias = 0, both of normalized_shape

Parameters are float32 unless ``dtype=`` (or later ``.to(dtype=...)``) says otherwise. Random
initial values come from the cpu generator, so ``tg.manual_seed(s)`` fixes the model.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import FLOAT_DTYPES, canonical_device, default_float, resolve_dtype, to_device
from ..ops.shape import flatten
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "LeakyReLU", "Tanh",
           "Sigmoid", "Identity", "Flatten"]


def positive_int(layer: str, name: str, value) -> int:
    """`value` as an int > 0: TypeError for a non-integer (a bool included), ValueError for
    zero or less. Shared with the models' constructors (models/ae.py)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{layer}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{layer}: {name} must be positive, got {value}")
    return int(value)


def _new_parameter(layer: str, shape, dtype, device) -> Parameter:
    """An uninitialised Parameter of `shape` (float32 unless asked), on `device`."""
    dtype = default_float if dtype is None else resolve_dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{layer}: parameters must have a floating-point dtype, got {dtype}")
    p = Parameter(np.empty(shape, dtype=dtype))
    if device is not None:
        p.data = to_device(p.data, canonical_device(device))
    return p


# ----------------------------------------------------------------------------------------------------
# Linear, Embedding, LayerNorm

class Linear(Module):
    """y = x @ weight.T + bias, over the last axis: (..., in_features) -> (..., out_features).

    Weight and bias start uniform in (-k, k), k = 1/sqrt(in_features): PyTorch's default
    (its kaiming_uniform_ with a = sqrt(5) works out to this bound).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = _new_parameter("Linear", (self.out_features, self.in_features), dtype, device)
        init.uniform_(self.weight, -bound, bound)
        if bias:
            self.bias = _new_parameter("Linear", (self.out_features,), dtype, device)
            init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: integer indices (...) -> rows of weight, (..., embedding_dim).

    The weight (num_embeddings, embedding_dim) starts N(0, 1), as PyTorch's. Indices outside
    [0, num_embeddings) are an error (F.embedding checks), never wrapped around.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        self.weight = _new_parameter("Embedding", (self.num_embeddings, self.embedding_dim),
                                     dtype, device)
        init.normal_(self.weight)

    def forward(self, idx):
        return F.embedding(idx, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise over the trailing `normalized_shape` axes, then scale and shift:

        y = (x - mean) / sqrt(var + eps) * weight + bias     (biased variance, as PyTorch)

    weight starts at 1 and bias at 0 (both of shape normalized_shape); ``elementwise_affine=False``
    has neither, ``bias=False`` only the weight.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(
            positive_int("LayerNorm", "normalized_shape", n) for n in normalized_shape)
        if not self.normalized_shape:
            raise ValueError("LayerNorm: normalized_shape must have at least one axis, got ()")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = init.ones_(
                _new_parameter("LayerNorm", self.normalized_shape, dtype, device))
            if bias:
                self.bias = init.zeros_(
                    _new_parameter("LayerNorm", self.normalized_shape, dtype, device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


# ----------------------------------------------------------------------------------------------------
# Dropout

class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p); in eval
    mode (``model.eval()``) the identity."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        is_number = isinstance(p, (int, float, np.floating)) and not isinstance(p, bool)
        if not is_number or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# ----------------------------------------------------------------------------------------------------
# Activations and shape helpers (no parameters)

class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """y = x * Phi(x) (``approximate="none"``, exact) or its tanh approximation (``"tanh"``, as
    GPT-2)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Identity(Module):
    """y = x (a placeholder where a model optionally has a layer)."""

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        try:
            return flatten(x, self.start_dim, self.end_dim)
        except ValueError as e:  # said again in the layer's terms (start_dim, not start_axis)
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do "
                             f"not select axes of an input of shape {x.shape} ({e})") from None

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
