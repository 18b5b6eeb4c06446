"""Normalization and friends: layer_norm, dropout, scaled_dot_product_attention, normalize.

layer_norm, dropout and (unmasked) attention are one Function each whose forward and backward call
the kernel registry; attention with an explicit mask or dropout, and normalize, are compositions of
existing ops (they need no backward of their own).
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..backend import array_module, rng
from ..kernels.registry import kernels_for
from ..tensor import Tensor, as_array
from .elementwise import maximum, sqrt, where
from .linalg import matmul
from .reduce import normalize_axis

__all__ = ["layer_norm"]


def _check_float_tensor(op: str, name: str, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {x.dtype}")


# ----------------------------------------------------------------------------------------------------
# layer_norm


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the normalised trailing axes.

    The trailing axes are flattened into one of size C for the kernels; weight and bias, when
    given, are inputs after x (so backward returns 1, 2 or 3 gradients). Saves x, weight, and the
    per-row mean and rstd; the normalised x is recomputed in backward.
    """

    def forward(self, x, *params, n_axes, has_weight, has_bias, eps):
        self.k = kernels_for("layer_norm", array_module(x))
        c = math.prod(x.shape[x.ndim - n_axes:])
        self.x_shape, self.n_params = x.shape, len(params)
        self.x = x.reshape(x.shape[:x.ndim - n_axes] + (c,))
        self.w = params[0].reshape(c) if has_weight else None
        b = params[-1].reshape(c) if has_bias else None
        self.param_shapes = [p.shape for p in params]
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        y, self.mean, self.rstd = self.k.layer_norm_fwd(self.x, self.w, b, eps)
        return y.reshape(self.x_shape)

    def backward(self, grad):
        dx, dw, db = self.k.layer_norm_bwd(grad.reshape(self.x.shape), self.x, self.w,
                                           self.mean, self.rstd)
        grads = [dx.reshape(self.x_shape)]
        if self.has_weight:
            grads.append(dw.reshape(self.param_shapes[0]))
        if self.has_bias:
            grads.append(db.reshape(self.param_shapes[-1]))
        return tuple(grads)

    def graph_backward(self, grad, output):
        """layer_norm_bwd (kernels/reference.py) with Tensor ops: mean and rstd are recomputed
        from the x Tensor (the saved ones would be constants), so the rule differentiates again."""
        x = self.inputs[0].reshape(self.x.shape)  # (..., C)
        dy = grad.reshape(self.x.shape)
        centered = x - x.mean(axis=-1, keepdims=True)
        rstd = 1.0 / ((centered * centered).mean(axis=-1, keepdims=True) + self.eps).sqrt()
        xhat = centered * rstd
        g = dy * self.inputs[1].reshape(-1) if self.has_weight else dy
        dx = (g - g.mean(axis=-1, keepdims=True)
              - xhat * (g * xhat).mean(axis=-1, keepdims=True)) * rstd
        rows = tuple(range(dy.ndim - 1))  # every axis but the normalised one
        grads = [dx.reshape(self.x_shape)]
        if self.has_weight:
            grads.append((dy * xhat).sum(axis=rows).reshape(self.param_shapes[0]))
        if self.has_bias:
            grads.append(dy.sum(axis=rows).reshape(self.param_shapes[-1]))
        return tuple(grads)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing axes `normalized_shape` (an int or a tuple), then scale and shift.

        y = (x - mean) / sqrt(var + eps) * weight + bias

    mean and (biased) var are taken over the last len(normalized_shape) axes of x, which must equal
    normalized_shape; weight and bias are None or of shape normalized_shape. Output: x's shape.

    >>> import tinygrad_pt as tg
    >>> y = layer_norm(tg.tensor([[1.0, 2.0, 3.0]]), 3)
    >>> [round(v, 4) for v in y.numpy()[0].tolist()]
    [-1.2247, 0.0, 1.2247]
    """
    _check_float_tensor("layer_norm", "x", x)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    if not shape or any(not isinstance(n, (int, np.integer)) or n <= 0 for n in shape):
        raise ValueError(f"layer_norm: normalized_shape must be one or more positive ints, got "
                         f"{normalized_shape!r}")
    shape = tuple(int(n) for n in shape)
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} must equal the trailing axes of "
                         f"x, got x of shape {x.shape}")
    params = []
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            _check_float_tensor("layer_norm", name, p)
            if p.shape != shape:
                raise ValueError(f"layer_norm: {name} must have shape normalized_shape {shape}, "
                                 f"got {p.shape}")
            params.append(p)
    if eps < 0:
        raise ValueError(f"layer_norm: eps must be non-negative, got {eps}")
    return LayerNorm.apply(x, *params, n_axes=len(shape), has_weight=weight is not None,
                           has_bias=bias is not None, eps=float(eps))


# ----------------------------------------------------------------------------------------------------
# dropout


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


def _check_p(op: str, name: str, p):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) \
            or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (inverted dropout).

    The mask comes from the device's generator (``tg.manual_seed``). training=False (or p=0)
    returns x unchanged; p=1 gives zeros (and zero gradients). Same shape and dtype as x.
    """
    _check_float_tensor("dropout", "x", x)
    p = _check_p("dropout", "p", p)
    if not training or p == 0.0:
        return x
    mask = rng(x.device).random(x.shape) >= p  # P(kept) = 1 - p
    return Dropout.apply(x, mask=mask, p=p)


# ----------------------------------------------------------------------------------------------------
# scaled_dot_product_attention


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
        _check_float_tensor(op, name, t)
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dimensions (..., length, "
                             f"features), got shape {t.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: expected query (..., L, E), key (..., S, E), value (..., S, Ev); "
                         f"got query {q.shape}, key {k.shape}, value {v.shape}")
    dropout_p = _check_p(op, "dropout_p", dropout_p)
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


# ----------------------------------------------------------------------------------------------------
# normalize


def normalize(x: Tensor, p: float = 2.0, axis: int | None = None, eps: float = 1e-12, *,
              dim: int | None = None) -> Tensor:
    """x / max(||x||_p, eps) along `axis` (alias `dim`; default 1, as PyTorch's F.normalize).

    A composition of existing ops. For p = 2 the norm is written sqrt(max(sum x^2, eps^2)), equal
    in value to max(sqrt(sum x^2), eps) but with a finite gradient (zero through the norm) for an
    all-zero slice, where sqrt's derivative at 0 would make NaN.
    """
    _check_float_tensor("normalize", "x", x)
    if axis is not None and dim is not None:
        raise TypeError("normalize: give axis or its alias dim, not both")
    axis = 1 if axis is None and dim is None else (axis if axis is not None else dim)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"normalize: axis must be an int, got {axis!r}")
    axis = normalize_axis("normalize", axis, x.ndim)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"normalize: p must be a positive number (or inf), got {p!r}")
    if p == 2:
        norm = sqrt(maximum((x * x).sum(axis=axis, keepdims=True), float(eps) ** 2))
    elif math.isinf(p):
        norm = maximum(x.abs().max(axis=axis, keepdims=True), float(eps))
    else:
        powered = (x.abs() ** float(p)).sum(axis=axis, keepdims=True)
        norm = maximum(powered, float(eps) ** p) ** (1.0 / p)
    return x / norm
