"""layer_norm, dropout, scaled_dot_product_attention and normalize.

Forwards against plain loops, gradients by gradcheck over hypothesis-drawn shapes, and every
documented edge case (p = 1 dropout, fully masked attention rows, zero vectors in normalize).
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
from tinygrad_pt.ops.attention import scaled_dot_product_attention
from tinygrad_pt.ops.dropout import dropout
from tinygrad_pt.ops.normalization import normalize
from tinygrad_pt.testing import gradcheck

rng = np.random.default_rng(7)


def randn(*shape):
    return rng.standard_normal(shape)


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ----------------------------------------------------------------------------------------------------
# layer_norm


def loop_layer_norm(x, n_axes, w, b, eps):
    lead = x.shape[:x.ndim - n_axes]
    out = np.empty_like(x)
    for idx in np.ndindex(*lead):
        vals = [float(v) for v in x[idx].reshape(-1)]
        mu = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - mu) ** 2 for v in vals) / len(vals) + eps)
        out[idx] = np.reshape([(v - mu) / sd for v in vals], x[idx].shape)
    if w is not None:
        out = out * w
    if b is not None:
        out = out + b
    return out


@given(st.lists(st.integers(1, 3), max_size=2), st.lists(st.integers(1, 3), min_size=1, max_size=2),
       st.booleans(), st.booleans())
def test_layer_norm_forward_and_gradient(lead, norm_shape, with_w, with_b):
    norm_shape = tuple(norm_shape)
    x = randn(*lead, *norm_shape) * 2 + 0.5
    w = randn(*norm_shape) if with_w else None
    b = randn(*norm_shape) if with_b else None
    arg = norm_shape[0] if len(norm_shape) == 1 else norm_shape  # an int or a tuple
    y = tg.layer_norm(tg.tensor(x), arg, None if w is None else tg.tensor(w),
                      None if b is None else tg.tensor(b), eps=1e-5)
    np.testing.assert_allclose(y.numpy(), loop_layer_norm(x, len(norm_shape), w, b, 1e-5),
                               rtol=1e-10, atol=1e-12)
    inputs = [leaf(x)] + [leaf(p) for p in (w, b) if p is not None]

    def fn(x, *params):
        it = iter(params)
        return tg.layer_norm(x, norm_shape, next(it) if with_w else None,
                             next(it) if with_b else None)
    assert gradcheck(fn, *inputs)


def test_layer_norm_float32_and_frozen_params():
    x = tg.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32).transpose(0, 2, 1),
                  requires_grad=True)  # non-contiguous (2, 4, 3)
    w, b = tg.ones(3), tg.zeros(3, requires_grad=True)  # w does not require grad
    y = tg.layer_norm(x, (3,), w, b)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32 and b.grad.dtype == np.float32 and w.grad is None
    np.testing.assert_allclose(b.grad.numpy(), [8, 8, 8])  # dbias sums over the 8 rows
    np.testing.assert_allclose(x.grad.numpy(), 0, atol=1e-5)  # y's rows sum to a constant


def test_layer_norm_bad_inputs():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\) must equal the trailing axes of "
                                         r"x, got x of shape \(2, 3\)"):
        tg.layer_norm(x, 4)
    with pytest.raises(ValueError, match=r"normalized_shape \(1, 2, 3\) must equal"):
        tg.layer_norm(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"weight must have shape normalized_shape \(3,\), got \(2,\)"):
        tg.layer_norm(x, 3, weight=tg.ones(2))
    with pytest.raises(ValueError, match="normalized_shape must be one or more positive ints"):
        tg.layer_norm(x, ())
    with pytest.raises(TypeError, match="layer_norm: x must be a floating-point tensor, got dtype int64"):
        tg.layer_norm(tg.tensor([[1, 2]]), 2)
    with pytest.raises(ValueError, match="eps must be non-negative"):
        tg.layer_norm(x, 3, eps=-1.0)


# ----------------------------------------------------------------------------------------------------
# dropout


def test_dropout_drops_and_scales_and_gradient_matches_forward():
    x = tg.tensor(rng.random((50, 40)).astype(np.float32) + 1, requires_grad=True)
    y = dropout(x, p=0.3)
    assert y.dtype == np.float32
    kept = y.numpy() != 0
    assert abs(1 - kept.mean() - 0.3) < 0.03  # 2000 draws: 3 sigma is about 0.031
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.7, rtol=1e-6)
    y.backward(np.ones(y.shape, np.float32))
    np.testing.assert_allclose(x.grad.numpy(), kept / np.float32(0.7), rtol=1e-6)


def test_dropout_edge_probabilities_and_eval_mode():
    x = tg.randn(4, 5, requires_grad=True)
    assert dropout(x, p=0.5, training=False) is x
    assert dropout(x, p=0.0) is x
    y = dropout(x, p=1.0)
    assert (y.numpy() == 0).all()
    y.backward(np.ones((4, 5), np.float32))
    assert (x.grad.numpy() == 0).all()


def test_dropout_is_reproducible_with_manual_seed():
    x = tg.ones(6, 6)
    tg.manual_seed(3)
    a = dropout(x, 0.5).numpy()
    tg.manual_seed(3)
    b = dropout(x, 0.5).numpy()
    c = dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_dropout_gradcheck_with_a_fixed_mask():
    x = leaf(randn(3, 4))

    def fn(t):
        tg.manual_seed(11)  # the same mask in every call gradcheck makes
        return dropout(t, 0.4)
    assert gradcheck(fn, x)


@pytest.mark.parametrize("p", [-0.1, 1.5, True, "0.5", float("nan")])
def test_dropout_bad_probability(p):
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\], got"):
        dropout(tg.ones(2), p=p)


# ----------------------------------------------------------------------------------------------------
# scaled_dot_product_attention


def loop_attention(q, k, v, allowed, scale):
    """Per (batch, query) loop; allowed(b, i, j) says whether the key takes part. A query with no
    allowed key gives zeros."""
    lead = q.shape[:-2]
    out = np.zeros(lead + (q.shape[-2], v.shape[-1]))
    for b in np.ndindex(*lead):
        for i in range(q.shape[-2]):
            keys = [j for j in range(k.shape[-2]) if allowed(b, i, j)]
            if not keys:
                continue
            s = [scale * float(np.dot(q[b][i], k[b][j])) for j in keys]
            m = max(s)
            e = [math.exp(x - m) for x in s]
            out[b][i] = sum(e[n] / sum(e) * v[b][j] for n, j in enumerate(keys))
    return out


@given(st.lists(st.integers(1, 2), max_size=2), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.booleans(), st.sampled_from([None, 0.3]))
def test_attention_kernel_path(lead, tq, tk, d, causal, scale):
    q, k, v = randn(*lead, tq, d), randn(*lead, tk, d), randn(*lead, tk, 2)
    y = scaled_dot_product_attention(tg.tensor(q), tg.tensor(k), tg.tensor(v), is_causal=causal,
                                     scale=scale)
    s = 1 / math.sqrt(d) if scale is None else scale
    want = loop_attention(q, k, v, lambda b, i, j: not causal or j <= i, s)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                                  scale=scale),
                     leaf(q), leaf(k), leaf(v))


@given(st.integers(1, 4), st.integers(1, 4))
def test_attention_boolean_and_float_masks(tq, tk):
    q, k, v = randn(2, tq, 3), randn(2, tk, 3), randn(2, tk, 2)
    mask = rng.random((tq, tk)) < 0.6  # some rows may be fully masked
    want = loop_attention(q, k, v, lambda b, i, j: mask[i, j], 1 / math.sqrt(3))
    for m in (mask, np.where(mask, 0.0, -np.inf)):  # boolean, and the equivalent float mask
        y = scaled_dot_product_attention(tg.tensor(q), tg.tensor(k), tg.tensor(v), attn_mask=m)
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-10, atol=1e-12)
        assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, attn_mask=m),
                         leaf(q), leaf(k), leaf(v))


def test_attention_additive_float_mask_and_broadcast_batch():
    q, k, v = randn(2, 1, 3, 4), randn(1, 2, 5, 4), randn(1, 2, 5, 3)  # batch axes broadcast
    bias = randn(3, 5)
    y = scaled_dot_product_attention(tg.tensor(q), tg.tensor(k), tg.tensor(v),
                                     attn_mask=tg.tensor(bias))
    assert y.shape == (2, 2, 3, 3)
    for b0, b1 in np.ndindex(2, 2):
        s = q[b0, 0] @ k[0, b1].T / 2.0 + bias
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        np.testing.assert_allclose(y.numpy()[b0, b1], p @ v[0, b1], rtol=1e-10)


def test_attention_causal_kernel_equals_composed_tril_mask():
    q, k, v = (tg.tensor(randn(2, 2, 5, 4), requires_grad=True) for _ in range(3))
    fused = scaled_dot_product_attention(q, k, v, is_causal=True)
    composed = scaled_dot_product_attention(q, k, v, attn_mask=np.tril(np.ones((5, 5), bool)))
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-12)
    u = randn(2, 2, 5, 4)
    fused.backward(u)
    grads = [t.grad.numpy() for t in (q, k, v)]
    for t in (q, k, v):
        t.zero_grad()
    composed.backward(u)
    for g, t in zip(grads, (q, k, v)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_attention_fully_masked_rows_give_zeros_and_finite_gradients():
    q, k, v = (tg.tensor(randn(1, 3, 2), requires_grad=True) for _ in range(3))
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])
    y = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (y.numpy()[0, 1] == 0).all()
    y.backward(np.ones((1, 3, 2)))
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()
    assert (q.grad.numpy()[0, 1] == 0).all()


def test_attention_dropout():
    q, k, v = tg.randn(2, 4, 3), tg.randn(2, 4, 3), tg.randn(2, 4, 3)
    tg.manual_seed(5)
    a = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    tg.manual_seed(5)
    b = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    plain = scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), plain.numpy())
    assert a.dtype == np.float32
    zero = scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    assert (zero.numpy() == 0).all()


def test_attention_float32():
    q, k, v = (tg.randn(1, 2, 4, 8, requires_grad=True) for _ in range(3))
    y = scaled_dot_product_attention(q, k, v, is_causal=True)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert all(t.grad.dtype == np.float32 for t in (q, k, v))


def test_attention_bad_inputs():
    q = tg.zeros(2, 3, 4)
    op = scaled_dot_product_attention
    with pytest.raises(ValueError, match=r"expected query \(\.\.\., L, E\), key \(\.\.\., S, E\).*"
                                         r"got query \(2, 3, 4\), key \(2, 3, 5\)"):
        op(q, tg.zeros(2, 3, 5), tg.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="key .* value"):
        op(q, tg.zeros(2, 3, 4), tg.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="query must have at least 2 dimensions"):
        op(tg.zeros(4), tg.zeros(3, 4), tg.zeros(3, 4))
    with pytest.raises(ValueError, match="either attn_mask or is_causal=True, not both"):
        op(q, q, q, attn_mask=np.ones((3, 3), bool), is_causal=True)
    with pytest.raises(TypeError, match="attn_mask must be boolean or floating-point, got dtype int64"):
        op(q, q, q, attn_mask=np.ones((3, 3), np.int64))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(2, 2\) cannot be broadcast to the "
                                         r"scores' shape \(2, 3, 3\)"):
        op(q, q, q, attn_mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match=r"dropout_p must be a probability in \[0, 1\], got 2"):
        op(q, q, q, dropout_p=2)
    with pytest.raises(TypeError, match="key must be a floating-point tensor"):
        op(q, tg.zeros(2, 3, 4, dtype=np.int64), q)


# ----------------------------------------------------------------------------------------------------
# normalize


def loop_normalize(x, p, axis, eps):
    moved = np.moveaxis(x, axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = [float(v) for v in moved[idx]]
        norm = max(abs(v) for v in row) if math.isinf(p) else sum(abs(v) ** p for v in row) ** (1 / p)
        out[idx] = [v / max(norm, eps) for v in row]
    return np.moveaxis(out, -1, axis)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data(),
       st.sampled_from([2.0, 1.0, 3.0, math.inf]))
def test_normalize_forward_and_gradient(shape, data, p):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = randn(*shape)
    x[np.abs(x) < 0.05] = 0.3  # |x| and the inf-norm's max have kinks at 0 and at ties
    y = normalize(tg.tensor(x), p=p, axis=axis)
    np.testing.assert_allclose(y.numpy(), loop_normalize(x, p, axis, 1e-12), rtol=1e-12)
    if not math.isinf(p):  # the max picks one element: ties make it non-differentiable
        assert gradcheck(lambda t: normalize(t, p=p, axis=axis), leaf(x))


def test_normalize_defaults_dim_alias_and_zero_rows():
    x = tg.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    y = normalize(x)  # p=2 along axis 1
    np.testing.assert_allclose(y.numpy(), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    y.backward(np.ones((2, 2), np.float32))
    g = x.grad.numpy()
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g[1], [1e12, 1e12], rtol=1e-5)  # x / eps near zero
    np.testing.assert_allclose(normalize(x, dim=0).numpy(), normalize(x, axis=0).numpy())
    np.testing.assert_allclose(normalize(x, dim=0).numpy()[:, 0], [1.0, 0.0])


def test_normalize_bad_inputs():
    x = tg.ones(2, 3)
    with pytest.raises(TypeError, match="normalize: give axis or its alias dim, not both"):
        normalize(x, axis=0, dim=1)
    with pytest.raises(ValueError, match="normalize: p must be a positive number"):
        normalize(x, p=0)
    with pytest.raises(ValueError, match="normalize: axis 2 is out of range"):
        normalize(x, axis=2)
    with pytest.raises(ValueError, match="normalize: axis 1 is out of range for a tensor with 1"):
        normalize(tg.ones(3))
