"""dropout: one Function whose forward and backward call the kernel registry.

The mask is drawn here, from the device's generator (``backend.rng``), and handed to the kernel,
so the kernels stay deterministic functions of their inputs.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import array_module, rng
from ..kernels.registry import kernels_for
from ..tensor import Tensor
from .arguments import check_float_tensor

__all__ = []  # reached as F.dropout (nn/functional.py), not as tg.dropout


class Dropout(Function):
    """y = x * mask / (1 - p), mask drawn by dropout() (True = kept); dx = dy * mask / (1 - p)."""

    def forward(self, x, mask, p):
        self.k = kernels_for("dropout", array_module(x))
        self.mask, self.p = mask, p
        return self.k.dropout_fwd(x, mask, p)

    def backward(self, grad):
        return self.k.dropout_bwd(grad, self.mask, self.p)

    def graph_backward(self, grad, output):
        return grad * self.mask * (0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p))  # p = 1: zeros


def check_probability(op: str, name: str, p):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) \
            or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (inverted dropout).

    The mask comes from the device's generator (``tg.manual_seed``). training=False (or p=0)
    returns x unchanged; p=1 gives zeros (and zero gradients). Same shape and dtype as x.
    """
    check_float_tensor("dropout", x, "x")
    p = check_probability("dropout", "p", p)
    if not training or p == 0.0:
        return x
    mask = rng(x.device).random(x.shape) >= p  # P(kept) = 1 - p
    return Dropout.apply(x, mask=mask, p=p)
