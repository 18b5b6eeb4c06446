"""The reference kernels: the specification every faster implementation is held to.

Plain array code, forward and backward side by side (llm.c's layout), for NumPy and CuPy alike
(``xp = array_module(x)``). Speed is not the point here; readability and exactness are. The Numba
(``kernels/cpu``) and CUDA (``kernels/cuda``) implementations expose the same names and signatures,
and tests compare them with these functions over random shapes.

Conventions shared by every family:

- ``<name>_fwd(inputs..., hyperparameters)`` returns the output, followed by the small statistics
  the backward needs (mean and rstd for layer norm, the log-sum-exp for attention, ...).
- ``<name>_bwd(d_output, what it reads..., hyperparameters)`` returns one gradient per
  differentiable input, in the order of the forward's inputs. Backwards recompute what is cheap to
  recompute (the normalised input of layer norm, the probabilities of attention) instead of saving it.
- dtypes are preserved: float32 in, float32 out. Constants are Python floats, so they take the
  array's dtype and never upcast it.
- No input checking: the ops in ``tinygrad_pt/ops`` check user input before calling a kernel.

Families (``registry.FAMILIES`` lists the function names of each):
  matmul, softmax (softmax and log_softmax), cross_entropy, layer_norm, gelu (with erf),
  attention, nt_xent, adamw, dropout.
"""
from __future__ import annotations

import math

import numpy as np

# Absolute imports in kernels/: the package is installed as tinygrad_pt.kernels, and absolute
# names also work when a tool imports these files by path (pytest --doctest-modules kernels/).
from tinygrad_pt.backend import array_module

# ----------------------------------------------------------------------------------------------------
# matmul


def matmul_fwd(a, b):
    """y = a @ b for a (..., n, k) and b (..., k, m) with equal batch axes -> (..., n, m)."""
    return a @ b


def matmul_bwd(dy, a, b):
    """da = dy @ b^T, db = a^T @ dy (batch axes kept; no broadcasting to undo)."""
    da = dy @ b.swapaxes(-1, -2)
    db = a.swapaxes(-1, -2) @ dy
    return da, db


# ----------------------------------------------------------------------------------------------------
# softmax and log_softmax


def _finite_max(x, axis):
    """The max along `axis` (kept), with -inf replaced by 0: a row that is all -inf then shifts by
    0 instead of by -inf, which would turn it into NaN (-inf - -inf) before exp."""
    xp = array_module(x)
    m = x.max(axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, 0.0).astype(x.dtype, copy=False)


def softmax_fwd(x, axis=-1):
    """y = exp(x - max) / sum(exp(x - max)) along `axis`; y is all that the backward needs.

    Shifted by the max, so exp cannot overflow (logits of +-1e4 are fine). Entries of -inf get
    probability 0. A slice that is all -inf has no distribution: it gives NaN (0/0), as PyTorch.
    """
    xp = array_module(x)
    e = xp.exp(x - _finite_max(x, axis))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_bwd(dy, y, axis=-1):
    """dx = y * (dy - sum(dy * y)) along `axis` (the Jacobian diag(y) - y y^T applied to dy)."""
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def log_softmax_fwd(x, axis=-1):
    """y = x - logsumexp(x) along `axis`, with the log-sum-exp shifted by the max.

    Entries of -inf give -inf. A slice that is all -inf gives NaN (-inf - -inf), as PyTorch: the
    log-probabilities of an empty distribution are undefined. Other slices are unaffected.
    """
    xp = array_module(x)
    m = _finite_max(x, axis)
    shifted = x - m
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax_bwd(dy, y, axis=-1):
    """dx = dy - exp(y) * sum(dy) along `axis` (exp(y) is the softmax).

    Where y = -inf, exp(y) = 0 and dx = dy: finite. Only a slice that is all -inf, whose forward
    was already NaN, gets a NaN gradient; that is forced, not introduced here.
    """
    return dy - array_module(y).exp(y) * dy.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------------------------------
# cross-entropy: log_softmax + negative log-likelihood + label smoothing, fused


def cross_entropy_fwd(logits, target, ignore_index=-100, label_smoothing=0.0, weight=None):
    """Per-row cross-entropy of logits (N, C) against integer targets (N,) -> (losses (N,), probs).

    With p = softmax(logits), eps = label_smoothing and class weights w (all 1 when None):
        loss_i = (1 - eps) * w[t_i] * (-log p[i, t_i]) + eps / C * sum_c w[c] * (-log p[i, c])
    which is PyTorch's rule (eps = 0 is the plain negative log-likelihood). Rows whose target is
    ignore_index have loss 0. Targets are assumed valid (0 <= t < C or ignore_index): the op checks.
    The probabilities (N, C) are returned for the backward (llm.c keeps them the same way).
    """
    xp = array_module(logits)
    n, c = logits.shape
    logp = log_softmax_fwd(logits, axis=-1)
    ignored = target == ignore_index
    safe_t = xp.where(ignored, 0, target)  # any valid index; the row is zeroed below
    nll = -logp[xp.arange(n), safe_t]  # (N,)
    if weight is not None:
        nll = nll * weight[safe_t]
    losses = nll * (1.0 - label_smoothing) if label_smoothing else nll
    if label_smoothing:
        neg_logp = -logp if weight is None else -logp * weight
        losses = losses + neg_logp.sum(axis=-1) * (label_smoothing / c)
    losses = xp.where(ignored, 0.0, losses).astype(logits.dtype, copy=False)
    return losses, xp.exp(logp)


def cross_entropy_bwd(dlosses, probs, target, ignore_index=-100, label_smoothing=0.0,
                      weight=None):
    """dlogits (N, C) from dlosses (N,): llm.c's fused softmax-minus-one-hot.

    d loss_i / d logits[i, j] = (1 - eps) * w[t_i] * (p_ij - [j == t_i])
                                + eps / C * (sum_c w[c] * p_ij - w[j])
    (with w = 1 the second term is eps * p_ij - eps / C). Ignored rows get exactly 0, even when
    dlosses is not finite there (a mean over zero rows divides by zero).
    """
    xp = array_module(probs)
    n, c = probs.shape
    ignored = target == ignore_index
    safe_t = xp.where(ignored, 0, target)
    rows = xp.arange(n)
    if weight is None:
        d = probs * (1.0 - label_smoothing)
        d[rows, safe_t] -= 1.0 - label_smoothing
        if label_smoothing:
            d = d + (probs - 1.0 / c) * label_smoothing
    else:
        w_t = weight[safe_t][:, None]  # (N, 1)
        d = probs * w_t * (1.0 - label_smoothing)
        d[rows, safe_t] -= w_t[:, 0] * (1.0 - label_smoothing)
        if label_smoothing:
            d = d + (probs * weight.sum() - weight) * (label_smoothing / c)
    # Zero the ignored rows' upstream gradient first: it may be inf or NaN there (a mean over zero
    # rows divides by zero), and inf * 0 would be NaN.
    dlosses = xp.where(ignored, 0.0, dlosses).astype(probs.dtype, copy=False)
    return d * dlosses[:, None]


# ----------------------------------------------------------------------------------------------------
# layer norm over the last axis


def layer_norm_fwd(x, weight, bias, eps):
    """y = (x - mean) * rstd * weight + bias over the last axis of x (..., C) -> (y, mean, rstd).

    mean and rstd = 1 / sqrt(var + eps) (biased variance, as PyTorch) have shape x.shape[:-1];
    weight and bias are (C,) or None (then 1 and 0).
    """
    xp = array_module(x)
    mean = x.mean(axis=-1)
    centered = x - mean[..., None]
    var = (centered * centered).mean(axis=-1)
    rstd = 1.0 / xp.sqrt(var + eps)
    y = centered * rstd[..., None]
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y, mean, rstd


def layer_norm_bwd(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias); dweight is None when weight is None (dbias is always computed: the
    op drops it when there is no bias).

    xhat = (x - mean) * rstd is recomputed, not saved (llm.c). With g = dy * weight:
        dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
        dweight = sum over rows of dy * xhat,  dbias = sum over rows of dy.
    """
    xhat = (x - mean[..., None]) * rstd[..., None]
    rows = tuple(range(dy.ndim - 1))  # every axis but the normalised one
    dbias = dy.sum(axis=rows)
    dweight = (dy * xhat).sum(axis=rows) if weight is not None else None
    g = dy * weight if weight is not None else dy
    dx = (g - g.mean(axis=-1, keepdims=True)
          - xhat * (g * xhat).mean(axis=-1, keepdims=True)) * rstd[..., None]
    return dx, dweight, dbias


# ----------------------------------------------------------------------------------------------------
# erf and erfc: SciPy's (cupyx.scipy.special's on the GPU)


def _special(x):
    """scipy.special, or cupyx.scipy.special for a CuPy array. Imported on first use, not with
    this module: SciPy's import takes longer than all of tinygrad_pt's, and only GELU needs it."""
    if array_module(x) is np:
        import scipy.special as special  # noqa: PLC0415 (see above)
    else:
        import cupyx.scipy.special as special  # noqa: PLC0415 (GPU only)
    return special


def erf(x):
    """The error function, elementwise, in x's dtype (a 0-d array stays an array)."""
    return array_module(x).asarray(_special(x).erf(x), dtype=x.dtype)


def erfc(x):
    """1 - erf(x), accurate also where erf(x) is near 1 (the right tail), in x's dtype."""
    return array_module(x).asarray(_special(x).erfc(x), dtype=x.dtype)


# ----------------------------------------------------------------------------------------------------
# GELU

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715


def gelu_fwd(x, approximate="none"):
    """GELU(x) = x * Phi(x), Phi the standard normal CDF.

    "none" (exact):  Phi(x) = erfc(-x / sqrt(2)) / 2  (erfc keeps the left tail accurate).
    "tanh":          x / 2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))  (GPT-2's).
    """
    xp = array_module(x)
    if approximate == "tanh":
        inner = (x + x * x * x * _GELU_CUBIC) * _SQRT_2_OVER_PI
        return x * (xp.tanh(inner) + 1.0) * 0.5
    return x * erfc(x * -_INV_SQRT_2) * 0.5


def gelu_bwd(dy, x, approximate="none"):
    """dx = dy * GELU'(x).

    "none":  GELU'(x) = Phi(x) + x * phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
    "tanh":  with u = sqrt(2/pi) (x + 0.044715 x^3) and t = tanh(u):
             GELU'(x) = (1 + t) / 2 + x / 2 * (1 - t^2) * sqrt(2/pi) * (1 + 3 * 0.044715 x^2).
    """
    xp = array_module(x)
    if approximate == "tanh":
        x2 = x * x
        t = xp.tanh((x + x2 * x * _GELU_CUBIC) * _SQRT_2_OVER_PI)
        du = (x2 * (3.0 * _GELU_CUBIC) + 1.0) * _SQRT_2_OVER_PI
        return dy * ((t + 1.0) * 0.5 + x * (1.0 - t * t) * du * 0.5)
    cdf = erfc(x * -_INV_SQRT_2) * 0.5
    pdf = xp.exp(x * x * -0.5) * _INV_SQRT_2PI
    return dy * (cdf + x * pdf)


# ----------------------------------------------------------------------------------------------------
# attention (plain: materialises the T x T scores; it is the specification)


def _causal_mask(xp, t_q, t_k):
    """(T_q, T_k) booleans, True where query i may see key j: j <= i (PyTorch's is_causal,
    aligned at the top-left corner)."""
    return xp.arange(t_k)[None, :] <= xp.arange(t_q)[:, None]


def _attention_scores(q, k, causal, scale):
    """S = scale * q @ k^T (..., T_q, T_k), with -inf where the causal mask hides a key."""
    xp = array_module(q)
    s = (q @ k.swapaxes(-1, -2)) * scale
    if causal:
        s = xp.where(_causal_mask(xp, q.shape[-2], k.shape[-2]), s, -math.inf)
    return s


def attention_fwd(q, k, v, causal, scale):
    """out = softmax(scale * q k^T, masked) @ v -> (out (..., T_q, Dv), lse (..., T_q)).

    q (..., T_q, D), k (..., T_k, D), v (..., T_k, Dv), equal leading axes. lse is the per-row
    log-sum-exp of the scaled, masked scores: P = exp(S - lse), which is how the backward (and a
    flash-attention kernel) recovers the probabilities without storing them.
    """
    xp = array_module(q)
    s = _attention_scores(q, k, causal, scale)
    m = _finite_max(s, -1)
    e = xp.exp(s - m)
    denom = e.sum(axis=-1, keepdims=True)
    out = (e / denom) @ v
    lse = (xp.log(denom) + m)[..., 0]
    return out, lse


def attention_bwd(dout, q, k, v, out, lse, causal, scale):
    """(dq, dk, dv), recomputing P = exp(S - lse) (flash attention's backward, materialised).

        dv = P^T dout
        dP = dout v^T
        dS = P * (dP - rowsum(dout * out))      (rowsum(dout * out) = rowsum(P * dP))
        dq = scale * dS k,   dk = scale * dS^T q
    """
    xp = array_module(q)
    p = xp.exp(_attention_scores(q, k, causal, scale) - lse[..., None])
    dv = p.swapaxes(-1, -2) @ dout
    dp = dout @ v.swapaxes(-1, -2)
    ds = p * (dp - (dout * out).sum(axis=-1, keepdims=True))
    dq = (ds @ k) * scale
    dk = (ds.swapaxes(-1, -2) @ q) * scale
    return dq, dk, dv


# ----------------------------------------------------------------------------------------------------
# NT-Xent (SimCLR's contrastive loss)

_NORM_EPS = 1e-12  # F.normalize's clamp on the norm


def nt_xent_fwd(z1, z2, temperature):
    """SimCLR's NT-Xent loss of two views z1, z2 (N, D) -> (loss (0-d), u, norms, probs).

    u = z / max(||z||, 1e-12) row by row on the 2N rows [z1; z2]; S = u u^T / temperature with
    the diagonal (self-similarity) set to -inf; row i's positive is i + N (mod 2N):
        loss = mean_i ( logsumexp_j S_ij - S_i,pos(i) )
    Saved for the backward: u (2N, D), the clamped norms (2N,), probs = softmax(S) (2N, 2N).
    """
    xp = array_module(z1)
    n = z1.shape[0]
    z = xp.concatenate([z1, z2], axis=0)  # (2N, D)
    norms = xp.maximum(xp.sqrt((z * z).sum(axis=-1)), _NORM_EPS)
    u = z / norms[:, None]
    s = (u @ u.T) * (1.0 / temperature)
    s = xp.where(xp.eye(2 * n, dtype=bool), -math.inf, s)
    logp = log_softmax_fwd(s, axis=-1)
    pos = (xp.arange(2 * n) + n) % (2 * n)
    loss = xp.asarray(-logp[xp.arange(2 * n), pos].mean())
    return loss, u, norms, xp.exp(logp)


def nt_xent_bwd(dloss, u, norms, probs, temperature):
    """(dz1, dz2) from the scalar dloss.

        dS = dloss / 2N * (probs - onehot(pos))         (probs is 0 on the diagonal)
        du = (dS + dS^T) @ u / temperature
        dz = (du - u * <u, du>) / norm   where the norm was not clamped, else du / 1e-12.
    """
    xp = array_module(u)
    m = u.shape[0]
    n = m // 2
    pos = (xp.arange(m) + n) % m
    ds = probs.copy()
    ds[xp.arange(m), pos] -= 1.0
    ds = ds * (dloss * (1.0 / m))
    du = ((ds + ds.T) @ u) * (1.0 / temperature)
    # Above the clamp u = z / ||z|| and the projection removes the radial part; at the clamp the
    # divisor is a constant, so the gradient is just du / eps.
    radial = u * (u * du).sum(axis=-1, keepdims=True)
    clamped = (norms <= _NORM_EPS)[:, None]
    dz = xp.where(clamped, du, du - radial) / norms[:, None]
    return dz[:n], dz[n:]


# ----------------------------------------------------------------------------------------------------
# AdamW (in place)


def adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """One AdamW step on p, m, v in place (PyTorch's rule; step counts from 1):

        p -= lr * weight_decay * p                 decoupled weight decay
        m = beta1 * m + (1 - beta1) * g            first moment
        v = beta2 * v + (1 - beta2) * g^2          second moment
        p -= lr * (m / (1 - beta1^step)) / (sqrt(v) / sqrt(1 - beta2^step) + eps)
    """
    xp = array_module(p)
    if weight_decay:
        p *= 1.0 - lr * weight_decay
    m *= beta1
    m += g * (1.0 - beta1)
    v *= beta2
    v += g * g * (1.0 - beta2)
    bias1 = 1.0 - beta1 ** step
    bias2 = 1.0 - beta2 ** step
    p -= (m * (lr / bias1)) / (xp.sqrt(v) * (1.0 / math.sqrt(bias2)) + eps)


# ----------------------------------------------------------------------------------------------------
# dropout (the mask is drawn by the op from the device's generator)


def _dropout_scale(p):
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)  # p = 1 drops everything: zeros, not 0 * inf


def dropout_fwd(x, mask, p):
    """y = x * mask / (1 - p), mask boolean (True = kept)."""
    return x * mask * _dropout_scale(p)


def dropout_bwd(dy, mask, p):
    """dx = dy * mask / (1 - p)."""
    return dy * mask * _dropout_scale(p)
