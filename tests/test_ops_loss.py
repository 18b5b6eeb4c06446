"""Losses: mse_loss, binary_cross_entropy(_with_logits), cross_entropy, nll_loss, nt_xent.

Forwards against per-element Python math, gradients by gradcheck over hypothesis-drawn shapes,
every reduction, and the bad inputs that must raise.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
from tinygrad_pt.ops import loss as L
from tinygrad_pt.testing import gradcheck

rng = np.random.default_rng(11)

lead_shapes = st.lists(st.integers(1, 3), max_size=2).map(tuple)
reductions = st.sampled_from(["mean", "sum", "none"])


def randn(*shape):
    return rng.standard_normal(shape)


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def reduce_(values, reduction, denom=None):
    values = np.asarray(values, dtype=np.float64)
    if reduction == "none":
        return values
    total = float(values.sum())
    if reduction == "sum":
        return total
    return total / (values.size if denom is None else denom)


# ----------------------------------------------------------------------------------------------------
# mse_loss


@given(st.lists(st.integers(1, 3), max_size=3).map(tuple), reductions)
def test_mse_loss(shape, reduction):
    x, y = randn(*shape), randn(*shape)
    got = L.mse_loss(tg.tensor(x), y, reduction=reduction)  # target as a NumPy array
    want = reduce_([(a - b) ** 2 for a, b in zip(x.reshape(-1), y.reshape(-1))], reduction)
    np.testing.assert_allclose(got.numpy(), np.reshape(want, got.shape), rtol=1e-12)
    assert gradcheck(lambda a, b: L.mse_loss(a, b, reduction=reduction), leaf(x), leaf(y))


def test_mse_loss_weighted_mean_and_dtypes():
    x, y, w = randn(2, 3), randn(2, 3), rng.random((2, 3))
    got = L.mse_loss(tg.tensor(x), tg.tensor(y), weight=w)
    assert got.item() == pytest.approx(float((w * (x - y) ** 2).sum() / w.sum()))
    assert gradcheck(lambda a: L.mse_loss(a, y, weight=w), leaf(x))
    x32 = tg.tensor(x.astype(np.float32), requires_grad=True)
    out = L.mse_loss(x32, y)  # a float64 target does not upcast a float32 input
    assert out.dtype == np.float32
    out.backward()
    assert x32.grad.dtype == np.float32


# ----------------------------------------------------------------------------------------------------
# binary_cross_entropy


def bce_ref(p, y):
    return -(y * max(math.log(p), -100) if p > 0 else y * -100) - \
        ((1 - y) * max(math.log(1 - p), -100) if p < 1 else (1 - y) * -100)


@given(st.lists(st.integers(1, 3), max_size=3).map(tuple), reductions)
def test_binary_cross_entropy(shape, reduction):
    p = rng.uniform(0.05, 0.95, shape)
    y = rng.random(shape)
    got = L.binary_cross_entropy(tg.tensor(p), tg.tensor(y), reduction=reduction)
    want = reduce_([bce_ref(a, b) for a, b in zip(p.reshape(-1), y.reshape(-1))], reduction)
    np.testing.assert_allclose(got.numpy(), np.reshape(want, got.shape), rtol=1e-12)
    assert gradcheck(lambda a, b: L.binary_cross_entropy(a, b, reduction=reduction), leaf(p),
                     leaf(y))


def test_binary_cross_entropy_at_zero_and_one_is_clamped():
    p = tg.tensor([0.0, 1.0, 0.0, 1.0], dtype=np.float64, requires_grad=True)
    y = np.array([0.0, 1.0, 1.0, 0.0])
    out = L.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_allclose(out.numpy(), [0.0, 0.0, 100.0, 100.0])
    out.sum().backward()
    assert np.isfinite(p.grad.numpy()).all()
    np.testing.assert_allclose(p.grad.numpy()[2:], [-1e12, 1e12])  # (x - y) / max(x(1-x), 1e-12)


def test_binary_cross_entropy_weight():
    p, y, w = rng.uniform(0.1, 0.9, (2, 3)), rng.random((2, 3)), rng.random(3)
    got = L.binary_cross_entropy(tg.tensor(p), y, weight=w, reduction="sum")
    want = sum(w[j] * bce_ref(p[i, j], y[i, j]) for i in range(2) for j in range(3))
    assert got.item() == pytest.approx(want, rel=1e-12)


# ----------------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits


def bce_logits_ref(x, y, pw=1.0):
    log_sig = -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))
    log_one_minus = log_sig - x  # log(1 - sigmoid(x)) = log sigmoid(x) - x
    return -(pw * y * log_sig + (1 - y) * log_one_minus)


@given(st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), reductions, st.booleans())
def test_binary_cross_entropy_with_logits(shape, reduction, with_pos_weight):
    x, y = randn(*shape) * 3, rng.random(shape)
    pw = rng.random(shape[-1]) * 3 if with_pos_weight else None
    got = L.binary_cross_entropy_with_logits(tg.tensor(x), y, reduction=reduction, pos_weight=pw)
    flat_pw = np.broadcast_to(pw if pw is not None else 1.0, shape).reshape(-1)
    want = reduce_([bce_logits_ref(a, b, c) for a, b, c in
                    zip(x.reshape(-1), y.reshape(-1), flat_pw)], reduction)
    np.testing.assert_allclose(got.numpy(), np.reshape(want, got.shape), rtol=1e-11)
    if pw is None:
        assert gradcheck(lambda a, b: L.binary_cross_entropy_with_logits(a, b, reduction=reduction),
                         leaf(x), leaf(y))
    else:
        assert gradcheck(lambda a, b, c: L.binary_cross_entropy_with_logits(
            a, b, reduction=reduction, pos_weight=c), leaf(x), leaf(y), leaf(pw))


def test_binary_cross_entropy_with_logits_large_logits():
    x = tg.tensor([-1000.0, 1000.0, -1000.0, 1000.0], requires_grad=True)
    y = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    with np.errstate(over="raise", invalid="raise"):
        out = L.binary_cross_entropy_with_logits(x, y, reduction="none")
        out.sum().backward()
    np.testing.assert_allclose(out.numpy(), [0.0, 0.0, 1000.0, 1000.0])
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, -1.0, 1.0])
    assert out.dtype == np.float32


# ----------------------------------------------------------------------------------------------------
# cross_entropy and nll_loss


def loop_cross_entropy(x, t, weight, ignore_index, eps, reduction):
    """-log of the gathered softmax probabilities, by loops; returns (per-row, reduced)."""
    c = x.shape[-1]
    rows, tt = x.reshape(-1, c), t.reshape(-1)
    w = np.ones(c) if weight is None else weight
    per_row, denom = [], 0.0
    for r, ti in zip(rows, tt):
        if ti == ignore_index:
            per_row.append(0.0)
            continue
        m = max(r)
        lse = m + math.log(sum(math.exp(v - m) for v in r))
        nll = lse - r[ti]
        smooth = sum(w[j] * (lse - r[j]) for j in range(c)) / c
        per_row.append((1 - eps) * w[ti] * nll + eps * smooth)
        denom += w[ti]
    per_row = np.array(per_row).reshape(t.shape)
    if reduction == "none":
        return per_row
    return per_row.sum() / denom if reduction == "mean" else per_row.sum()


@given(lead_shapes, st.integers(1, 4), reductions, st.sampled_from([0.0, 0.2]), st.booleans(),
       st.booleans())
def test_cross_entropy(lead, c, reduction, eps, weighted, with_ignored):
    x = randn(*lead, c) * 2
    t = rng.integers(0, c, lead)
    if with_ignored and t.size > 1:
        t.reshape(-1)[0] = -100
    w = rng.random(c) + 0.5 if weighted else None
    got = L.cross_entropy(tg.tensor(x), t, weight=w, reduction=reduction, label_smoothing=eps)
    want = loop_cross_entropy(x, t, w, -100, eps, reduction)
    assert got.shape == (lead if reduction == "none" else ())
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda a: L.cross_entropy(a, t, weight=w, reduction=reduction,
                                               label_smoothing=eps), leaf(x))


def test_cross_entropy_custom_ignore_index_and_zero_gradient_rows():
    x = tg.tensor(randn(4, 3), requires_grad=True)
    t = tg.tensor(np.array([0, 5, 2, 5]))
    out = L.cross_entropy(x, t, ignore_index=5)
    want = loop_cross_entropy(x.numpy(), t.numpy(), None, 5, 0.0, "mean")
    assert out.item() == pytest.approx(want, rel=1e-6)
    out.backward()
    g = x.grad.numpy()
    assert (g[1] == 0).all() and (g[3] == 0).all() and (g[0] != 0).all()


def test_cross_entropy_all_rows_ignored_is_nan_with_zero_gradient():
    x = tg.tensor(randn(3, 4), requires_grad=True)
    out = L.cross_entropy(x, np.full(3, -100))
    assert math.isnan(out.item())  # 0 / 0, as PyTorch
    out.backward()
    assert (x.grad.numpy() == 0).all()
    assert L.cross_entropy(x, np.full(3, -100), reduction="sum").item() == 0.0


def test_cross_entropy_large_logits_and_float32():
    x = tg.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], requires_grad=True)
    out = L.cross_entropy(x, np.array([1, 0]), label_smoothing=0.1)
    assert out.dtype == np.float32 and np.isfinite(out.item())
    out.backward()
    assert x.grad.dtype == np.float32 and np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy().sum(axis=1), 0, atol=1e-6)  # softmax minus target


def test_cross_entropy_unbatched_input():
    x = randn(5)
    got = L.cross_entropy(tg.tensor(x), np.array(2))
    assert got.shape == () and got.item() == pytest.approx(
        loop_cross_entropy(x[None], np.array([2]), None, -100, 0.0, "mean"))


def test_cross_entropy_bad_inputs():
    x = tg.zeros(2, 3)
    with pytest.raises(TypeError, match="cross_entropy: target must hold integer class indices, "
                                        "got dtype float64"):
        L.cross_entropy(x, np.array([0.0, 1.0]))
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of range for 3 classes "
                                         r"\(expected 0 <= target < 3, or ignore_index=-100\)"):
        L.cross_entropy(x, np.array([0, 3]))
    with pytest.raises(IndexError, match="target -1 is out of range for 3 classes"):
        L.cross_entropy(x, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"target shape \(3,\) must equal the input's shape without "
                                         r"its last \(class\) axis, \(2,\)"):
        L.cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"):
        L.cross_entropy(x, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        L.cross_entropy(x, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="input must have a class axis"):
        L.cross_entropy(tg.tensor(1.0), np.array(0))
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\) = \(3,\), got \(2,\)"):
        L.cross_entropy(x, np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(TypeError, match="cross_entropy: input must be a floating-point tensor"):
        L.cross_entropy(tg.tensor([[1, 2]]), np.array([0]))


@given(lead_shapes, st.integers(1, 4), reductions, st.booleans())
def test_nll_loss(lead, c, reduction, weighted):
    logp = randn(*lead, c)
    t = rng.integers(0, c, lead)
    if t.size > 1:
        t.reshape(-1)[-1] = -100
    w = rng.random(c) + 0.5 if weighted else None
    got = L.nll_loss(tg.tensor(logp), t, weight=w, reduction=reduction)
    wv = np.ones(c) if w is None else w
    per, denom = np.zeros(lead), 0.0
    for idx in np.ndindex(*lead):
        if t[idx] != -100:
            per[idx] = -wv[t[idx]] * logp[idx][t[idx]]
            denom += wv[t[idx]]
    want = per if reduction == "none" else (per.sum() / denom if reduction == "mean" else per.sum())
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert gradcheck(lambda a: L.nll_loss(a, t, weight=w, reduction=reduction), leaf(logp))


def test_cross_entropy_equals_nll_of_log_softmax():
    x, t = randn(5, 4), rng.integers(0, 4, 5)
    a = L.cross_entropy(tg.tensor(x), t)
    b = L.nll_loss(tg.log_softmax(tg.tensor(x), axis=-1), t)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


# ----------------------------------------------------------------------------------------------------
# nt_xent


def loop_nt_xent(z1, z2, tau):
    z = np.concatenate([z1, z2])
    m, n = len(z), len(z1)
    u = [r / max(math.sqrt(sum(v * v for v in r)), 1e-12) for r in z]
    total = 0.0
    for i in range(m):
        logits = {j: float(np.dot(u[i], u[j])) / tau for j in range(m) if j != i}
        total += math.log(sum(math.exp(s) for s in logits.values())) - logits[(i + n) % m]
    return total / m


@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([0.07, 0.5, 1.0]))
def test_nt_xent(n, d, tau):
    z1, z2 = randn(n, d), randn(n, d)
    got = L.nt_xent(tg.tensor(z1), tg.tensor(z2), temperature=tau)
    assert got.shape == () and got.item() == pytest.approx(loop_nt_xent(z1, z2, tau), rel=1e-12)
    assert gradcheck(lambda a, b: L.nt_xent(a, b, tau), leaf(z1), leaf(z2))


def test_nt_xent_float32_and_identical_views():
    z = tg.randn(4, 8, requires_grad=True)
    loss = L.nt_xent(z, z * 1.0, temperature=0.1)
    assert loss.dtype == np.float32
    loss.backward()
    assert z.grad.dtype == np.float32 and np.isfinite(z.grad.numpy()).all()
    # Scaling a view does not change cosine similarities.
    a = L.nt_xent(z, z * 3.0, temperature=0.1).item()
    assert a == pytest.approx(loss.item(), rel=1e-5)


def test_nt_xent_bad_inputs():
    with pytest.raises(ValueError, match=r"nt_xent: z1 and z2 must be two non-empty \(N, D\) tensors "
                                         r"of the same shape, got \(2, 3\) and \(3, 3\)"):
        L.nt_xent(tg.zeros(2, 3), tg.zeros(3, 3))
    with pytest.raises(ValueError, match="got \\(3,\\) and \\(3,\\)"):
        L.nt_xent(tg.zeros(3), tg.zeros(3))
    with pytest.raises(ValueError, match="temperature must be a positive number, got 0"):
        L.nt_xent(tg.ones(2, 3), tg.ones(2, 3), temperature=0)


# ----------------------------------------------------------------------------------------------------
# Shared rules: shapes never broadcast, reductions checked, targets as arrays or tensors


@pytest.mark.parametrize("loss", ["mse_loss", "binary_cross_entropy",
                                  "binary_cross_entropy_with_logits"])
def test_shape_mismatch_and_bad_reduction(loss):
    fn = getattr(L, loss)
    x = tg.full((2, 3), 0.5)
    with pytest.raises(ValueError, match=rf"{loss}: target shape \(3,\) differs from input shape "
                                         r"\(2, 3\); they must be equal \(no broadcasting\)"):
        fn(x, np.full(3, 0.5))
    with pytest.raises(ValueError, match=rf"{loss}: reduction must be one of"):
        fn(x, np.full((2, 3), 0.5), reduction="mean ")
    with pytest.raises(TypeError, match=rf"{loss}: input must be a Tensor, got ndarray"):
        fn(np.zeros(3), np.zeros(3))
    same = fn(x, tg.full((2, 3), 0.5)).item()  # a Tensor target works as an array target does
    assert same == pytest.approx(fn(x, np.full((2, 3), 0.5)).item())


def test_binary_cross_entropy_refuses_values_outside_unit_interval():
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities "
                                             r"in \[0, 1\], got"):
            L.binary_cross_entropy(tg.tensor([0.5, bad]), np.array([1.0, 0.0]))


def test_pos_weight_must_broadcast_to_input():
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) must broadcast to the input's "
                                         r"shape \(2, 3\)"):
        L.binary_cross_entropy_with_logits(tg.zeros(2, 3), np.zeros((2, 3)), pos_weight=np.ones(2))
