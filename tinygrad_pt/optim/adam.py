"""Adam and AdamW, as llm.c's ``gpt2_update`` reads: one commented line per moment.

PyTorch's rule at step t (g the gradient, p the parameter, m and v the moment estimates):

    g  = g + weight_decay * p            Adam: L2 penalty added to the gradient
    p  = p * (1 - lr * weight_decay)     AdamW: decoupled decay, applied to p before the step
    m  = beta1 * m + (1 - beta1) * g
    v  = beta2 * v + (1 - beta2) * g^2
    p  = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
from __future__ import annotations


from ..backend import array_module
from ..kernels import registry
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)``.

    weight_decay is an L2 penalty added to the gradient (use AdamW for decoupled decay).
    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), in the parameter's dtype.
    """
    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    STATE_NAMES = REQUIRED_STATE = ("step", "exp_avg", "exp_avg_sq")

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        name = type(self).__name__
        betas = group.get("betas", (0.9, 0.999))
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: invalid betas={betas!r}, expected two numbers in [0, 1)")
        eps = group.get("eps", 1e-8)
        if not eps >= 0:
            raise ValueError(f"{name}: invalid eps={eps!r}, expected >= 0")

    def _update(self, p, grad, group, state):
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        xp = array_module(p.data)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] = t = state["step"] + 1
        m, v = state["exp_avg"], state["exp_avg_sq"]

        # The update rule is written once, in kernels/reference.py's adamw_update (one commented
        # line per moment, bias correction, decoupled decay); the registry hands back that
        # reference or a fused kernel held to it (kernels/cpu, kernels/cuda). Adam differs only in
        # how it decays: an L2 penalty folded into the gradient, then no decoupled decay.
        g, decoupled_decay = grad, weight_decay
        if weight_decay != 0 and not self.decoupled_weight_decay:
            # asarray: on a 0-d parameter the sum is a NumPy scalar, which the kernel refuses
            g = xp.asarray(g + weight_decay * p.data)
            decoupled_decay = 0.0
        registry.kernels_for("adamw", xp).adamw_update(p.data, g, m, v, t, lr, beta1, beta2, eps,
                                                       decoupled_decay)


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)``: Adam with
    decoupled weight decay, ``p *= 1 - lr * weight_decay`` before each Adam step (Loshchilov and
    Hutter). State as Adam's."""
    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
