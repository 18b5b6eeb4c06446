"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

PyTorch's rule, step by step (g is the gradient, p the parameter, b the momentum buffer):

    g = g + weight_decay * p                       (L2 penalty, if weight_decay != 0)
    b = g                                          (first step)
    b = momentum * b + (1 - dampening) * g         (later steps)
    g = g + momentum * b   if nesterov   else  b   (if momentum != 0)
    p = p - lr * g
"""
from __future__ import annotations

from ..backend import array_module
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)``.

    State per parameter: ``momentum_buffer`` (when momentum != 0) and ``step``.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov)
        super().__init__(params, defaults)

    STATE_NAMES = ("step", "momentum_buffer")

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        momentum, dampening = group.get("momentum", 0.0), group.get("dampening", 0.0)
        if not momentum >= 0:
            raise ValueError(f"SGD: invalid momentum={momentum!r}, expected >= 0")
        if group.get("nesterov") and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={momentum}, dampening={dampening}")

    def _update(self, p, grad, group, state):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        state["step"] = state.get("step", 0) + 1
        g = grad
        if weight_decay != 0:
            g = g + weight_decay * p.data  # a new array: p.grad itself is left untouched
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # An owned array (never p.grad itself, nor the NumPy scalar that arithmetic on a
                # 0-d array gives): the buffer is updated in place below.
                buf = state["momentum_buffer"] = array_module(p.data).array(g, dtype=p.data.dtype)
            else:
                buf *= momentum
                buf += (1.0 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p.data -= lr * g
