"""tinygrad_pt.nn.functional (import as F): PyTorch's functional API over tinygrad_pt's ops.

PyTorch's names, argument order and defaults, with NumPy's ``axis=`` keyword where PyTorch says
``dim=`` (``dim=`` is accepted as an alias). Thin wrappers: the work is done in ``tinygrad_pt.ops``
(activation, normalization, dropout, attention, loss, indexing), whose docstrings give the
formulas. Where this project's contract differs from PyTorch, it says so:

- ``cross_entropy`` / ``nll_loss``: the class axis is the LAST axis of the input (..., C), and
  targets are integer class indices (...). PyTorch puts classes on axis 1.
- ``softmax`` / ``log_softmax`` without an axis use the last axis (PyTorch's implicit choice is
  deprecated).
- ``inplace=True`` is accepted and computes out of place (autograd tensors are not mutated).
- Losses take no ``size_average`` / ``reduce`` (deprecated in PyTorch): ``reduction=`` only.
  The arguments after those flags' places are keyword-only, so a call written positionally in
  PyTorch's order is a TypeError instead of binding a value to the wrong parameter.

    >>> import tinygrad_pt as tg
    >>> import tinygrad_pt.nn.functional as F
    >>> F.relu(tg.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""
from __future__ import annotations

from ..ops import activation as _act
from ..ops import attention as _attention
from ..ops import dropout as _dropout
from ..ops import linalg as _linalg
from ..ops import loss as _loss
from ..ops import normalization as _norm
from ..ops.arguments import alias as _alias
from ..tensor import Tensor

__all__ = ["relu", "gelu", "leaky_relu", "sigmoid", "tanh", "softplus", "softmax", "log_softmax",
           "layer_norm", "dropout", "normalize", "linear", "embedding", "mse_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
           "nll_loss", "scaled_dot_product_attention", "nt_xent"]


def _axis(op: str, axis, dim, default):
    """`axis`, or its alias `dim`; giving both is an error (the ops' own rule, arguments.alias)."""
    return _alias(op, "axis", axis, "dim", dim, default)


# ----------------------------------------------------------------------------------------------------
# Activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002 (PyTorch's names)
    """max(x, 0) elementwise (inplace is accepted; the result is a new tensor)."""
    return _act.relu(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """x * Phi(x): exact ("none", the default) or the tanh approximation ("tanh", GPT-2's)."""
    return _act.gelu(input, approximate=approximate)


def leaky_relu(input: Tensor, negative_slope: float = 0.01,  # noqa: A002
               inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return _act.leaky_relu(input, negative_slope=negative_slope)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """1 / (1 + exp(-x)), stable for large |x|."""
    return _act.sigmoid(input)


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    """tanh(x) elementwise; the gradient is 1 - tanh(x)^2."""
    return _act.tanh(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold."""
    return _act.softplus(input, beta=beta, threshold=threshold)


def _cast(input: Tensor, dtype) -> Tensor:
    return input if dtype is None else input.to(dtype=dtype)


def softmax(input: Tensor, axis: int | None = None, *, dim: int | None = None,  # noqa: A002
            dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis` (alias dim; default the last axis). dtype= casts the
    input first, as PyTorch."""
    return _act.softmax(_cast(input, dtype), axis=_axis("softmax", axis, dim, -1))


def log_softmax(input: Tensor, axis: int | None = None, *, dim: int | None = None,  # noqa: A002
                dtype=None) -> Tensor:
    """x - logsumexp(x) along `axis` (alias dim; default the last axis)."""
    return _act.log_softmax(_cast(input, dtype), axis=_axis("log_softmax", axis, dim, -1))


# ----------------------------------------------------------------------------------------------------
# Normalization, dropout, linear, embedding, attention


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,  # noqa: A002
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing axes normalized_shape."""
    return _norm.layer_norm(input, normalized_shape, weight=weight, bias=bias, eps=eps)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
            inplace: bool = False) -> Tensor:
    """Zero elements with probability p, scale the rest by 1/(1-p); the identity when not
    training."""
    return _dropout.dropout(input, p=p, training=training)


def normalize(input: Tensor, p: float = 2.0, axis: int | None = None, eps: float = 1e-12,  # noqa: A002
              *, dim: int | None = None) -> Tensor:
    """x / max(||x||_p, eps) along `axis` (alias dim; default 1, as PyTorch)."""
    return _norm.normalize(input, p=p, axis=_axis("normalize", axis, dim, 1), eps=eps)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """y = x @ weight.T + bias, with weight (out_features, in_features) and bias (out_features,)
    as nn.Linear holds them; x (..., in_features) -> (..., out_features)."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linear: {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input (..., in_features) of shape {input.shape} does not match "
                         f"weight (out_features, in_features) of shape {weight.shape}")
    if bias is not None:
        if not isinstance(bias, Tensor) or bias.shape != (weight.shape[0],):
            shape = bias.shape if isinstance(bias, Tensor) else type(bias).__name__
            raise ValueError(f"linear: bias must be a Tensor of shape ({weight.shape[0]},), got "
                             f"{shape}")
    if input.dtype.kind != "f" or weight.dtype.kind != "f":
        raise TypeError(f"linear: input and weight must be floating point, got {input.dtype} "
                        f"and {weight.dtype}")
    return _linalg.linear(input, weight, bias)  # one fused op (ops/linalg.py Linear)


def embedding(input, weight: Tensor, padding_idx=None, max_norm=None, norm_type: float = 2.0,  # noqa: A002
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of weight (num_embeddings, embedding_dim) at the integer indices `input` (any shape):
    (*input.shape, embedding_dim). Out-of-range or negative indices raise IndexError. Only
    PyTorch's defaults for the other options are supported."""
    unsupported = {"padding_idx": padding_idx, "max_norm": max_norm,
                   "scale_grad_by_freq": scale_grad_by_freq or None, "sparse": sparse or None}
    given = [k for k, v in unsupported.items() if v is not None]
    if given:
        raise NotImplementedError(f"embedding: {', '.join(given)} not supported; only the "
                                  "defaults are")
    from ..ops.indexing import embedding as _embedding  # noqa: PLC0415
    return _embedding(weight, input)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False) -> Tensor:
    """softmax(q k^T * scale + mask) v: q (..., L, E), k (..., S, E), v (..., S, Ev) ->
    (..., L, Ev); scale defaults to 1/sqrt(E); is_causal masks keys after the query."""
    if enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention: enable_gqa is not supported")
    return _attention.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask,
                                                   dropout_p=dropout_p, is_causal=is_causal,
                                                   scale=scale)


# ----------------------------------------------------------------------------------------------------
# Losses


def mse_loss(input: Tensor, target, *, reduction: str = "mean",  # noqa: A002
             weight=None) -> Tensor:
    """(input - target)^2 reduced; shapes must be equal. weight (optional, same shape) makes
    "mean" the weighted mean sum(w e) / sum(w)."""
    return _loss.mse_loss(input, target, reduction=reduction, weight=weight)


def binary_cross_entropy(input: Tensor, target, weight=None, *,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """-w (y log x + (1 - y) log(1 - x)) for probabilities x in [0, 1]; logs clamped at -100."""
    return _loss.binary_cross_entropy(input, target, weight=weight, reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, *,  # noqa: A002
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """Binary cross-entropy of sigmoid(x), from the logits x, stably:
    max(x, 0) - x y + log(1 + exp(-|x|)); pos_weight weighs the positive term."""
    return _loss.binary_cross_entropy_with_logits(input, target, weight=weight,
                                                  reduction=reduction, pos_weight=pos_weight)


def cross_entropy(input: Tensor, target, weight=None, *, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits (..., C), CLASS AXIS LAST, against integer class indices (...).

    ignore_index rows contribute nothing; label_smoothing mixes in the uniform distribution as
    PyTorch; weight (C,) weighs classes. For PyTorch's (N, C, d1, ...) layout move the class axis
    to the end first.
    """
    return _loss.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=label_smoothing)


def nll_loss(input: Tensor, target, weight=None, *, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """-input[..., target] for log-probabilities (..., C), class axis last."""
    return _loss.nll_loss(input, target, weight=weight, ignore_index=ignore_index,
                          reduction=reduction)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's NT-Xent loss of two views (N, D): normalised inside, positives i <-> i+N among the
    2N rows, self-similarity excluded, mean over the 2N rows."""
    return _loss.nt_xent(z1, z2, temperature=temperature)
