"""scaled_dot_product_attention, PyTorch's signature and meaning.

Unmasked attention without dropout is one Function whose forward and backward call the attention
kernels (flash-style: the per-row log-sum-exp is kept, the probabilities are not); attention with
an explicit mask or dropout is composed of existing ops and needs no backward of its own.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..kernels.registry import kernels_for
from ..tensor import Tensor, as_array
from .arguments import check_float_tensor
from .dropout import check_probability, dropout
from .selection import where
from .linalg import matmul

__all__ = []  # reached as F.scaled_dot_product_attention (nn/functional.py), not as tg.*


class Attention(Function):
    """out = softmax(scale * q k^T [causal mask]) v through the attention kernels, which keep the
    per-row log-sum-exp so that backward recomputes the probabilities instead of storing them."""

    def forward(self, q, k, v, causal, scale):
        xp = array_module(q)
        self.kern = kernels_for("attention", xp)
        # Heads split off a projection arrive as strided views; the kernels need contiguous
        # rows. Made contiguous once here and kept, so the backward does not copy them again.
        q, k, v = (xp.ascontiguousarray(a) for a in (q, k, v))
        self.q, self.k, self.v, self.causal, self.scale = q, k, v, causal, scale
        self.out, self.lse = self.kern.attention_fwd(q, k, v, causal, scale)
        return self.out

    def backward(self, grad):
        dq, dk, dv = self.kern.attention_bwd(grad, self.q, self.k, self.v, self.out, self.lse,
                                             self.causal, self.scale)
        need = self.needs_input_grad
        return dq if need[0] else None, dk if need[1] else None, dv if need[2] else None

    def graph_backward(self, grad, output):
        """attention_bwd (kernels/reference.py) with Tensor ops; the probabilities are a softmax
        of the scores recomputed from q and k, so every line differentiates again."""
        from .activation import softmax  # noqa: PLC0415 (a sibling module)

        q, k, v = self.inputs
        s = (q @ k.swapaxes(-1, -2)) * self.scale  # (..., Tq, Tk)
        if self.causal:  # key j visible to query i when j <= i (top-left aligned, as the kernels)
            t_q, t_k = q.shape[-2], k.shape[-2]
            xp = array_module(q.data)
            visible = xp.arange(t_k)[None, :] <= xp.arange(t_q)[:, None]
            s = where(Tensor._make(visible), s, -math.inf)
        p = softmax(s, axis=-1)
        dp = grad @ v.swapaxes(-1, -2)
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        need = self.needs_input_grad
        dq = (ds @ k) * self.scale if need[0] else None
        dk = (ds.swapaxes(-1, -2) @ q) * self.scale if need[1] else None
        dv = p.swapaxes(-1, -2) @ grad if need[2] else None
        return dq, dk, dv


def _mask_array(mask, like: Tensor):
    """The raw boolean or float array of attn_mask, on like's device (a clear error otherwise)."""
    if isinstance(mask, Tensor):
        if mask.device != like.device:
            raise RuntimeError(f"scaled_dot_product_attention: attn_mask is on {mask.device} but "
                               f"the query is on {like.device}")
        return mask
    arr = as_array(mask)
    if like.device != "cpu" and isinstance(arr, np.ndarray):
        raise RuntimeError("scaled_dot_product_attention: attn_mask is a NumPy array but the "
                           f"query is on {like.device}; move it with tg.tensor(mask, device=...)")
    return Tensor._make(arr)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) v, PyTorch's signature and meaning.

    q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev); scale defaults to 1/sqrt(E).
    is_causal: query i attends to keys j <= i. attn_mask (broadcastable to (..., L, S)): boolean
    (True = may attend) or float (added to the scores); a query row whose keys are all masked gives
    zeros, as PyTorch. dropout_p > 0 drops attention weights (always, as PyTorch's
    function does; modules pass 0 in eval mode).

    Without a mask or dropout, and with equal leading axes, one Function calls the attention
    kernels; otherwise the op is composed of matmul, where, softmax and dropout.
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", q), ("key", k), ("value", v)):
        check_float_tensor(op, t, name)
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dimensions (..., length, "
                             f"features), got shape {t.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: expected query (..., L, E), key (..., S, E), value (..., S, Ev); "
                         f"got query {q.shape}, key {k.shape}, value {v.shape}")
    dropout_p = check_probability(op, "dropout_p", dropout_p)
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: give either attn_mask or is_causal=True, not both")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    scale = float(scale)

    same_batch = q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
    if attn_mask is None and dropout_p == 0.0 and same_batch:
        return Attention.apply(q, k, v, causal=bool(is_causal), scale=scale)

    from .activation import softmax  # noqa: PLC0415 (a sibling module)
    from .shape import swapaxes  # noqa: PLC0415

    scores = matmul(q, swapaxes(k, -1, -2)) * scale  # (..., L, S)
    length, source = q.shape[-2], k.shape[-2]
    xp = array_module(q.data)
    allowed = None
    if is_causal:
        allowed = Tensor._make(xp.tri(length, source, dtype=bool))
    elif attn_mask is not None:
        mask = _mask_array(attn_mask, q)
        try:
            np.broadcast_shapes(mask.shape, scores.shape)
        except ValueError:
            raise ValueError(f"{op}: attn_mask of shape {mask.shape} cannot be broadcast to the "
                             f"scores' shape {scores.shape} (..., L, S)") from None
        if mask.dtype == np.bool_:
            allowed = mask
        elif mask.dtype.kind == "f":
            scores = scores + mask
        else:
            raise TypeError(f"{op}: attn_mask must be boolean or floating-point, got dtype "
                            f"{mask.dtype}")
    if allowed is not None:
        scores = where(allowed, scores, -math.inf)
    if attn_mask is not None:
        # A query whose keys are all masked (-inf) has no distribution: it gets weights 0, not
        # NaN, as PyTorch does (its "safe softmax"). Its scores are replaced before the softmax
        # too, so that no NaN reaches the backward either.
        any_key = Tensor._make((scores.data != -math.inf).any(axis=-1, keepdims=True))
        weights = where(any_key, softmax(where(any_key, scores, 0.0), axis=-1), 0.0)
    else:
        weights = softmax(scores, axis=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return matmul(weights, v)
