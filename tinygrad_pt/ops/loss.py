"""Losses: mse_loss, binary_cross_entropy(_with_logits), cross_entropy, nll_loss, nt_xent.

Every loss takes ``reduction="mean" | "sum" | "none"``. Targets may be Tensors or arrays (on the
same device as the input: never copied silently). Shapes are checked, never broadcast silently.

cross_entropy takes logits (..., C) with the class axis LAST (this project's contract, not
PyTorch's class-axis-1) and integer class indices (...). It and nt_xent are one Function each over
the fused kernels (``tinygrad_pt.kernels``); mse_loss is a composition.

These functions are reached through ``tinygrad_pt.nn.functional`` (F), so nothing is added to the
top-level ``tg`` namespace.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, broadcasts_to, unbroadcast
from ..backend import array_module
from ..checks import check_values
from ..kernels.registry import kernels_for
from ..tensor import Tensor, as_array
from .activation import sigmoid, softmax, softplus, stable_sigmoid
from .arguments import check_float_tensor
from .selection import maximum, where
from .indexing import GetItemBackward
from .shape import concatenate

_NORM_EPS = 1e-12  # F.normalize's clamp on the norm (the nt_xent kernels' too)

__all__ = []  # losses live in tg.nn.functional

REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------------------
# Checking inputs


def _check_reduction(op: str, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _as_tensor_on(op: str, name: str, value, like: Tensor) -> Tensor:
    """`value` (Tensor, array, list) as a Tensor on like's device; a device mismatch is an error."""
    if isinstance(value, Tensor):
        t = value
    else:
        try:
            t = Tensor._make(as_array(value))
        except TypeError as e:
            raise TypeError(f"{op}: {name} must be a Tensor or an array, got "
                            f"{type(value).__name__}") from e
    if t.device != like.device:
        raise RuntimeError(f"{op}: {name} is on {t.device} but the input is on {like.device}; "
                           "move it with .to(device) first")
    return t


def _float_target(op: str, target, like: Tensor) -> Tensor:
    """A float target of exactly like's shape, in like's dtype (no silent broadcasting)."""
    t = _as_tensor_on(op, "target", target, like)
    if t.shape != like.shape:
        raise ValueError(f"{op}: target shape {t.shape} differs from input shape {like.shape}; "
                         "they must be equal (no broadcasting)")
    if t.dtype != like.dtype:
        t = t.to(dtype=like.dtype)  # differentiable cast (a float64 target for a float32 input)
    return t


def _elementwise_weight(op: str, weight, like: Tensor) -> Tensor:
    """A rescaling weight that broadcasts to like's shape (never enlarging it)."""
    w = _as_tensor_on(op, "weight", weight, like)
    if not broadcasts_to(w.shape, like.shape):
        raise ValueError(f"{op}: weight of shape {w.shape} must broadcast to the input's shape "
                         f"{like.shape}")
    return w if w.dtype == like.dtype else w.to(dtype=like.dtype)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# ----------------------------------------------------------------------------------------------------
# mse_loss


def mse_loss(input: Tensor, target, reduction: str = "mean", weight=None) -> Tensor:  # noqa: A002
    """(input - target)^2, reduced. input and target must have the same shape.

    weight (optional, the same shape too) multiplies each squared error; "mean" is then the
    weighted mean sum(w (x - y)^2) / sum(w), as PyTorch.
    """
    op = "mse_loss"
    check_float_tensor(op, input, "input")
    _check_reduction(op, reduction)
    diff = input - _float_target(op, target, input)
    squared = diff * diff
    if weight is None:
        return _reduce(squared, reduction)
    w = _as_tensor_on(op, "weight", weight, input)
    if w.shape != input.shape:
        raise ValueError(f"{op}: weight shape {w.shape} differs from input shape {input.shape}; "
                         "they must be equal")
    w = w if w.dtype == input.dtype else w.to(dtype=input.dtype)
    weighted = squared * w
    if reduction == "mean":
        return weighted.sum() / w.sum()
    return _reduce(weighted, reduction)


# ----------------------------------------------------------------------------------------------------
# binary_cross_entropy


class BinaryCrossEntropy(Function):
    """loss = -(y log x + (1 - y) log(1 - x)), each log clamped at -100 (PyTorch's rule, so x = 0
    or 1 gives a finite loss).

    dloss/dx = (x - y) / max(x (1 - x), 1e-12)   (PyTorch's clamp)
    dloss/dy = log(1 - x) - log(x)               (both logs clamped)
    """

    def forward(self, x, y):
        xp = array_module(x)
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
            self.log_x = xp.maximum(xp.log(x), -100.0)
            self.log_1mx = xp.maximum(xp.log(1.0 - x), -100.0)
        self.x, self.y = x, y
        return -(y * self.log_x + (1.0 - y) * self.log_1mx)

    def backward(self, grad):
        xp = array_module(grad)
        x, y = self.x, self.y
        gx = grad * (x - y) / xp.maximum(x * (1.0 - x), 1e-12) if self.needs_input_grad[0] \
            else None
        gy = grad * (self.log_1mx - self.log_x) if self.needs_input_grad[1] else None
        return gx, gy

    def graph_backward(self, grad, output):
        """backward's rule with Tensor ops, the clamped logs recomputed from x."""
        x, y = self.inputs
        gx = gy = None
        if self.needs_input_grad[0]:
            gx = grad * (x - y) / maximum(x * (1.0 - x), 1e-12)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # log(0) = -inf, clamped as in forward
                gy = grad * (maximum((1.0 - x).log(), -100.0) - maximum(x.log(), -100.0))
        return gx, gy


def binary_cross_entropy(input: Tensor, target, weight=None,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """-w (y log x + (1 - y) log(1 - x)), with input x in [0, 1] (probabilities) and target y of
    the same shape; logs are clamped at -100 as PyTorch. weight (optional) broadcasts to x.

    Inputs outside [0, 1] raise ValueError (use binary_cross_entropy_with_logits for logits).
    """
    op = "binary_cross_entropy"
    check_float_tensor(op, input, "input")
    _check_reduction(op, reduction)
    y = _float_target(op, target, input)
    xp = array_module(input.data)
    outside = (input.data < 0) | (input.data > 1) | xp.isnan(input.data)

    def not_probabilities():
        bad = float(input.data[outside].reshape(-1)[0])
        raise ValueError(f"{op}: input must hold probabilities in [0, 1], got {bad}; pass logits "
                         "to binary_cross_entropy_with_logits instead")
    check_values(outside, not_probabilities)  # on cuda: at the next host read (checks.py)
    loss = BinaryCrossEntropy.apply(input, y)
    if weight is not None:
        loss = loss * _elementwise_weight(op, weight, input)
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits


class BinaryCrossEntropyWithLogits(Function):
    """loss = (1 - y) x + l * softplus(-x),  l = 1 + (pos_weight - 1) y,
    with softplus(-x) = log(1 + e^-x) = max(-x, 0) + log1p(e^-|x|) (no overflow for any x).
    Without pos_weight (l = 1) this is max(x, 0) - x y + log1p(e^-|x|).

    dloss/dx = (1 - y) - l * sigmoid(-x)
    dloss/dy = -x + (pos_weight - 1) softplus(-x)
    dloss/dpos_weight = y * softplus(-x)   (summed back to pos_weight's shape)
    """

    def forward(self, x, y, *pos_weight):
        xp = array_module(x)
        self.x, self.y = x, y
        self.pw = pos_weight[0] if pos_weight else None
        self.sp = xp.maximum(-x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus(-x)
        lw = 1.0 if self.pw is None else (self.pw - 1.0) * y + 1.0
        return (1.0 - y) * x + lw * self.sp

    def backward(self, grad):
        xp = array_module(grad)
        x, y, pw = self.x, self.y, self.pw
        grads = [None, None] + ([None] if pw is not None else [])
        if self.needs_input_grad[0]:
            sig_neg = stable_sigmoid(-x)
            lw = 1.0 if pw is None else (pw - 1.0) * y + 1.0
            grads[0] = grad * ((1.0 - y) - lw * sig_neg)
        if self.needs_input_grad[1]:
            grads[1] = grad * (-x if pw is None else (pw - 1.0) * self.sp - x)
        if pw is not None and self.needs_input_grad[2]:
            grads[2] = unbroadcast(grad * y * self.sp, pw.shape)
        return tuple(grads)

    def graph_backward(self, grad, output):
        """backward's rule with Tensor ops: sigmoid(-x) and softplus(-x) of the x Tensor."""
        x, y = self.inputs[:2]
        pw = self.inputs[2] if len(self.inputs) == 3 else None
        sp = softplus(-x)
        grads = [None] * len(self.inputs)
        if self.needs_input_grad[0]:
            lw = 1.0 if pw is None else (pw - 1.0) * y + 1.0
            grads[0] = grad * ((1.0 - y) - lw * sigmoid(-x))
        if self.needs_input_grad[1]:
            grads[1] = grad * (-x if pw is None else (pw - 1.0) * sp - x)
        if pw is not None and self.needs_input_grad[2]:
            grads[2] = unbroadcast(grad * y * sp, pw.shape)
        return tuple(grads)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None,  # noqa: A002
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """Binary cross-entropy of sigmoid(input) against target, computed from the logits stably:

        loss = max(x, 0) - x y + log(1 + exp(-|x|))

    pos_weight (broadcast along the last axis, e.g. one per class) weighs the positive term:
    loss = (1 - y) x + (1 + (pos_weight - 1) y) log(1 + exp(-x)). weight broadcasts to x.
    """
    op = "binary_cross_entropy_with_logits"
    check_float_tensor(op, input, "input")
    _check_reduction(op, reduction)
    y = _float_target(op, target, input)
    inputs = [input, y]
    if pos_weight is not None:
        pw = _as_tensor_on(op, "pos_weight", pos_weight, input)
        if not broadcasts_to(pw.shape, input.shape):
            raise ValueError(f"{op}: pos_weight of shape {pw.shape} must broadcast to the input's "
                             f"shape {input.shape}")
        inputs.append(pw.to(dtype=input.dtype) if pw.dtype != input.dtype else pw)
    loss = BinaryCrossEntropyWithLogits.apply(*inputs)
    if weight is not None:
        loss = loss * _elementwise_weight(op, weight, input)
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------------------------------
# cross_entropy and nll_loss: class indices, class axis last


def _class_targets(op: str, target, scores: Tensor, ignore_index: int):
    """The raw integer target array, checked: shape scores.shape[:-1], integer dtype, values in
    [0, C) or equal to ignore_index."""
    t = _as_tensor_on(op, "target", target, scores)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype} "
                        "(class probabilities are not supported; the class axis is the last one)")
    if t.shape != scores.shape[:-1]:
        raise ValueError(f"{op}: target shape {t.shape} must equal the input's shape without its "
                         f"last (class) axis, {scores.shape[:-1]}; input shape is {scores.shape} "
                         "(..., C), class axis last")
    c = scores.shape[-1]
    data = t.data
    bad = ((data < 0) | (data >= c)) & (data != ignore_index)

    def out_of_range():  # an out-of-range class must not be wrapped or ignored
        value = int(data[bad].reshape(-1)[0])
        raise IndexError(f"{op}: target {value} is out of range for {c} classes (expected "
                         f"0 <= target < {c}, or ignore_index={ignore_index})")
    check_values(bad, out_of_range)  # on cuda: at the next host read (checks.py)
    return data


def _class_weight(op: str, weight, scores: Tensor):
    if weight is None:
        return None
    w = _as_tensor_on(op, "weight", weight, scores)
    if w.shape != (scores.shape[-1],):
        raise ValueError(f"{op}: weight must have shape (C,) = ({scores.shape[-1]},), got "
                         f"{w.shape}")
    return w.data.astype(scores.dtype, copy=False)


def _row_scale(grad, reduction, denom, n):
    """dlosses (N,) from the upstream gradient of the reduced loss."""
    xp = array_module(grad)
    if reduction == "none":
        return grad.reshape(n)
    g = grad / denom if reduction == "mean" else grad
    return xp.broadcast_to(g, (n,))


class CrossEntropy(Function):
    """Cross-entropy of logits (N, C) against class indices (N,), fused (log_softmax + NLL + label
    smoothing) in the cross_entropy kernels; reduction is applied here.

    mean divides by the summed weight of the rows that are not ignored (their count without
    class weights), as PyTorch. Saves the probabilities (N, C) and the targets.
    """

    def forward(self, logits, target, weight, ignore_index, label_smoothing, reduction):
        xp = array_module(logits)
        self.k = kernels_for("cross_entropy", xp)
        self.target, self.weight = target, weight
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.reduction, self.n = reduction, logits.shape[0]
        losses, self.probs = self.k.cross_entropy_fwd(logits, target, ignore_index,
                                                      label_smoothing, weight)
        if reduction == "none":
            return losses
        total = losses.sum()
        if reduction == "sum":
            return total
        kept = target != ignore_index
        self.denom = (kept.sum() if weight is None
                      else xp.where(kept, weight[xp.where(kept, target, 0)], 0.0).sum())
        self.denom = self.denom.astype(logits.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):  # all rows ignored: 0/0 = NaN
            return total / self.denom

    def backward(self, grad):
        with np.errstate(invalid="ignore", divide="ignore"):
            dlosses = _row_scale(grad, self.reduction, getattr(self, "denom", None), self.n)
        dlogits = self.k.cross_entropy_bwd(dlosses, self.probs, self.target, self.ignore_index,
                                           self.label_smoothing, self.weight)
        return dlogits, None  # no gradient for the class indices

    def graph_backward(self, grad, output):
        """cross_entropy_bwd's rule (kernels/reference.py) with Tensor ops:
            dlogits_ij = dlosses_i * (a_i p_ij - b_ij),   p = softmax(logits) (a Tensor op)
            a_i = (1 - eps) w[t_i] + eps / C * sum_c w[c],   b_ij = (1 - eps) w[t_i] [j == t_i] + eps / C w[j]
        a and b are constants (0 on ignored rows), so only p and dlosses carry the graph."""
        (logits,) = self.inputs[:1]
        xp = array_module(self.probs)
        n, c = self.probs.shape
        kept = self.target != self.ignore_index
        safe_t, eps = xp.where(kept, self.target, 0), self.label_smoothing
        w = xp.ones(c, dtype=self.probs.dtype) if self.weight is None else self.weight
        w_t = xp.where(kept, w[safe_t], 0.0)  # (N,)
        a = w_t * (1.0 - eps) + xp.where(kept, w.sum() * (eps / c), 0.0)
        b = xp.where(kept[:, None], w * (eps / c), 0.0)  # (N, C)
        b[xp.arange(n), safe_t] += w_t * (1.0 - eps)
        with np.errstate(invalid="ignore", divide="ignore"):
            dlosses = _row_scale(grad, self.reduction, getattr(self, "denom", None), n)
        # Ignored rows get exactly 0, even where dlosses is not finite (a mean over zero rows).
        dlosses = where(Tensor._make(kept), dlosses, 0.0).reshape(n, 1)
        dtype = self.probs.dtype
        p = softmax(logits, axis=-1)
        return (p * a[:, None].astype(dtype) - b.astype(dtype)) * dlosses, None


def cross_entropy(input: Tensor, target, weight=None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits `input` (..., C), class axis LAST, and integer class indices
    `target` (...).

    Per row: (1 - eps) * w[t] * -log softmax(x)[t] + eps / C * sum_c w[c] * -log softmax(x)[c],
    with eps = label_smoothing (PyTorch's rule) and w the optional class weights (C,). Rows whose
    target is ignore_index contribute 0 and get zero gradient; "mean" divides by the number (the
    summed weight) of the other rows, so if every row is ignored the mean is NaN (0/0), as
    PyTorch, while the gradient is 0.

    Float targets raise TypeError; targets outside [0, C) other than ignore_index raise
    IndexError naming the value and C.
    """
    op = "cross_entropy"
    check_float_tensor(op, input, "input")
    _check_reduction(op, reduction)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class axis (..., C), got a 0-d tensor")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    target_data = _class_targets(op, target, input, int(ignore_index))
    w = _class_weight(op, weight, input)
    c = input.shape[-1]
    flat = input if input.ndim == 2 else input.reshape(-1, c)  # (N, C)
    out = CrossEntropy.apply(flat, Tensor._make(target_data.reshape(-1)), weight=w,
                             ignore_index=int(ignore_index),
                             label_smoothing=float(label_smoothing), reduction=reduction)
    return out.reshape(input.shape[:-1]) if reduction == "none" else out


class NLLLoss(Function):
    """loss_i = -w[t_i] * logp[i, t_i] (0 where t_i is ignore_index); dlogp = -w[t_i] at
    [i, t_i], 0 elsewhere. Reduction as cross_entropy's."""

    def forward(self, logp, target, weight, ignore_index, reduction):
        xp = array_module(logp)
        n = logp.shape[0]
        kept = target != ignore_index
        self.rows, self.safe_t = xp.arange(n), xp.where(kept, target, 0)
        w = xp.ones(n, dtype=logp.dtype) if weight is None else weight[self.safe_t]
        self.w = xp.where(kept, w, 0.0).astype(logp.dtype, copy=False)  # (N,), 0 when ignored
        self.shape, self.reduction = logp.shape, reduction
        losses = -logp[self.rows, self.safe_t] * self.w
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        self.denom = self.w.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return losses.sum() / self.denom

    def backward(self, grad):
        xp = array_module(grad)
        with np.errstate(invalid="ignore", divide="ignore"):
            dl = _row_scale(grad, self.reduction, getattr(self, "denom", None), self.shape[0])
        # Ignored rows have w = 0; where() keeps them exactly 0 even if dl is not finite.
        d_rows = xp.where(self.w != 0, -dl * self.w, 0.0).astype(grad.dtype, copy=False)
        g = xp.zeros(self.shape, dtype=grad.dtype)
        g[self.rows, self.safe_t] = d_rows
        return g, None

    def graph_backward(self, grad, output):
        """backward's rule with Tensor ops: linear in grad (dlogp does not depend on logp)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            dl = _row_scale(grad, self.reduction, getattr(self, "denom", None), self.shape[0])
        d_rows = where(Tensor._make(self.w != 0), -dl * self.w, 0.0)
        return GetItemBackward.apply(d_rows, x_shape=self.shape, index=(self.rows, self.safe_t),
                                     advanced=True), None


def nll_loss(input: Tensor, target, weight=None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities `input` (..., C), class axis last, at integer
    class indices `target` (...): -w[t] * input[..., t]. Same rules as cross_entropy (which is
    nll_loss(log_softmax(x), t) fused)."""
    op = "nll_loss"
    check_float_tensor(op, input, "input")
    _check_reduction(op, reduction)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class axis (..., C), got a 0-d tensor")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    target_data = _class_targets(op, target, input, int(ignore_index))
    w = _class_weight(op, weight, input)
    c = input.shape[-1]
    flat = input if input.ndim == 2 else input.reshape(-1, c)
    out = NLLLoss.apply(flat, Tensor._make(target_data.reshape(-1)), weight=w,
                        ignore_index=int(ignore_index), reduction=reduction)
    return out.reshape(input.shape[:-1]) if reduction == "none" else out


# ----------------------------------------------------------------------------------------------------
# nt_xent


class NTXent(Function):
    """SimCLR's NT-Xent loss through the nt_xent kernels (normalisation included)."""

    def forward(self, z1, z2, temperature):
        self.k = kernels_for("nt_xent", array_module(z1))
        self.temperature = temperature
        loss, *self.saved = self.k.nt_xent_fwd(z1, z2, temperature)
        return loss

    def backward(self, grad):
        return self.k.nt_xent_bwd(grad, *self.saved, self.temperature)

    def graph_backward(self, grad, output):
        """nt_xent_bwd's rule (kernels/reference.py) with Tensor ops, u and the probabilities
        recomputed from z1 and z2. The norm is sqrt(max(|z|^2, eps^2)): the same value as the
        kernel's max(|z|, eps), constant at the clamp, with no 0/0 in sqrt's derivative."""
        z1, z2 = self.inputs
        xp = array_module(z1.data)
        n = z1.shape[0]
        m, inv_t = 2 * n, 1.0 / self.temperature
        z = concatenate([z1, z2], axis=0)  # (2N, D)
        norms = maximum((z * z).sum(axis=-1, keepdims=True), _NORM_EPS ** 2).sqrt()  # (2N, 1)
        u = z / norms
        s = where(Tensor._make(xp.eye(m, dtype=bool)), -math.inf, (u @ u.T) * inv_t)
        positive = xp.zeros((m, m), dtype=z1.dtype)
        positive[xp.arange(m), (xp.arange(m) + n) % m] = 1.0
        ds = (softmax(s, axis=-1) - positive) * (grad * (1.0 / m))
        du = ((ds + ds.T) @ u) * inv_t
        clamped = Tensor._make(norms.data <= _NORM_EPS)
        dz = where(clamped, du, du - u * (u * du).sum(axis=-1, keepdims=True)) / norms
        return dz[:n], dz[n:]


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent (normalised temperature-scaled cross-entropy), SimCLR's contrastive loss.

    z1, z2 (N, D): two views of the same N examples. Each row is L2-normalised (norm clamped at
    1e-12, as F.normalize); on the 2N rows [z1; z2] the logits are cosine similarities divided by
    `temperature`, self-similarity excluded, and row i's positive is row i + N (mod 2N). The loss
    is the mean over the 2N rows of the cross-entropy: a 0-d tensor.
    """
    op = "nt_xent"
    check_float_tensor(op, z1, "z1")
    check_float_tensor(op, z2, "z2")
    if z1.ndim != 2 or z1.shape != z2.shape or z1.shape[0] == 0:
        raise ValueError(f"{op}: z1 and z2 must be two non-empty (N, D) tensors of the same shape, "
                         f"got {z1.shape} and {z2.shape}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not temperature > 0:
        raise ValueError(f"{op}: temperature must be a positive number, got {temperature!r}")
    return NTXent.apply(z1, z2, temperature=float(temperature))
