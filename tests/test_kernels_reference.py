"""The reference kernels (the specification) and the kernel registry.

Each forward is compared with an independent computation (plain Python loops in float64, or math
written differently), each backward is gradchecked through a tiny Function that wraps the pair,
and the edge cases the docstrings promise (large logits, -inf, ignored rows, clamped norms) are
checked explicitly.
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
from tinygrad_pt.autograd import Function
from tinygrad_pt.kernels import reference as R
from tinygrad_pt.kernels import registry
from tinygrad_pt.testing import gradcheck

rng = np.random.default_rng(1234)


def randn(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


small_dims = st.integers(1, 4)


# ----------------------------------------------------------------------------------------------------
# erf / erfc


def test_erf_matches_math_erf_to_double_precision():
    xs = np.concatenate([np.linspace(-6, 6, 4001), np.geomspace(1e-300, 1e-3, 50),
                         -np.geomspace(1e-300, 1e-3, 50), [0.0, 1.99999999, 2.0, 2.00000001]])
    got = R.erf(xs)
    want = np.array([math.erf(v) for v in xs])
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    assert rel.max() < 1e-12, f"worst at x={xs[rel.argmax()]}: {got[rel.argmax()]} vs {want[rel.argmax()]}"


def test_erfc_is_accurate_in_the_right_tail():
    xs = np.concatenate([np.linspace(-5, 26, 5001), [2.0, 10.0, 20.0]])
    got = R.erfc(xs)
    want = np.array([math.erfc(v) for v in xs])
    rel = np.abs(got - want) / want
    assert rel.max() < 1e-12, f"worst at x={xs[rel.argmax()]}"
    assert R.erfc(np.array([30.0]))[0] == 0.0  # underflows cleanly, no NaN
    assert R.erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]


def test_erf_keeps_float32():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    y = R.erf(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [math.erf(float(v)) for v in x], rtol=1e-6, atol=1e-7)
    z = R.erfc(np.array(1.0, np.float16))  # SciPy has no float16 loop: cast back; 0-d stays 0-d
    assert isinstance(z, np.ndarray) and z.shape == () and z.dtype == np.float16


# ----------------------------------------------------------------------------------------------------
# matmul


class MatmulK(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return R.matmul_fwd(a, b)

    def backward(self, grad):
        return R.matmul_bwd(grad, self.a, self.b)


@given(st.integers(0, 2), small_dims, small_dims, small_dims)
def test_matmul_forward_and_backward(batch, n, k, m):
    lead = (2,) * batch
    a, b = randn(*lead, n, k), randn(*lead, k, m)
    y = R.matmul_fwd(a, b)
    a3, b3, y3 = a.reshape(-1, n, k), b.reshape(-1, k, m), y.reshape(-1, n, m)
    for s in range(a3.shape[0]):
        for i in range(n):
            for j in range(m):
                assert y3[s, i, j] == pytest.approx(sum(a3[s, i, t] * b3[s, t, j]
                                                        for t in range(k)), abs=1e-12)
    assert gradcheck(lambda a, b: MatmulK.apply(a, b), leaf(a), leaf(b))


# ----------------------------------------------------------------------------------------------------
# softmax / log_softmax


def loop_softmax(x, axis):
    """Softmax by a Python loop over the 1-D slices along `axis`, in float64."""
    moved = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = sum(e)
        out[idx] = [v / s for v in e]
    return np.moveaxis(out, -1, axis)


class SoftmaxK(Function):
    def forward(self, x, axis, log):
        self.axis, self.log = axis, log
        self.y = (R.log_softmax_fwd if log else R.softmax_fwd)(x, axis)
        return self.y

    def backward(self, grad):
        return (R.log_softmax_bwd if self.log else R.softmax_bwd)(grad, self.y, self.axis)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data(), st.booleans())
def test_softmax_and_log_softmax(shape, data, log):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = randn(*shape) * 3
    expected = loop_softmax(x, axis)
    got = (R.log_softmax_fwd if log else R.softmax_fwd)(x, axis)
    np.testing.assert_allclose(got, np.log(expected) if log else expected, rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda t: SoftmaxK.apply(t, axis=axis, log=log), leaf(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_large_logits_stay_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    y, ly = R.softmax_fwd(x), R.log_softmax_fwd(x)
    assert y.dtype == dtype and ly.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(ly).all()
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], atol=1e-6)
    np.testing.assert_allclose(ly[0], [0, -2e4, -1e4], rtol=1e-6)
    dy = np.ones_like(x)
    assert np.isfinite(R.softmax_bwd(dy, y)).all()
    assert np.isfinite(R.log_softmax_bwd(dy, ly)).all()


def test_softmax_with_minus_inf_entries_and_rows():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]])
    with np.errstate(invalid="ignore", divide="ignore"):  # the all -inf row: 0/0 and log(0)
        y, ly = R.softmax_fwd(x), R.log_softmax_fwd(x)
    # A partly masked row: the masked entry gets probability 0, log-probability -inf ...
    e = math.exp(1.0)
    np.testing.assert_allclose(y[0], [1 / (1 + e), 0.0, e / (1 + e)])
    assert ly[0, 1] == -np.inf
    # ... and finite gradients: d log_softmax / dx at the masked entry is dy there.
    dy = np.array([[0.3, -0.7, 0.2], [1.0, 1.0, 1.0]])
    dlx = R.log_softmax_bwd(dy, ly)
    dx = R.softmax_bwd(dy, y)
    assert np.isfinite(dlx[0]).all() and np.isfinite(dx[0]).all()
    assert dlx[0, 1] == pytest.approx(-0.7)
    assert dx[0, 1] == 0.0
    # An all -inf row has no distribution: NaN (as PyTorch), confined to that row.
    assert np.isnan(y[1]).all() and np.isnan(ly[1]).all() and np.isnan(dlx[1]).all()


# ----------------------------------------------------------------------------------------------------
# cross-entropy


def loop_cross_entropy(x, t, weight, ignore_index, eps):
    """-log of the gathered probabilities, smoothed, by a loop over rows and classes."""
    n, c = x.shape
    w = np.ones(c) if weight is None else weight
    out = np.zeros(n)
    for i in range(n):
        if t[i] == ignore_index:
            continue
        p = loop_softmax(x[i], 0)
        nll = -math.log(p[t[i]])
        smooth = sum(w[j] * -math.log(p[j]) for j in range(c)) / c
        out[i] = (1 - eps) * w[t[i]] * nll + eps * smooth
    return out


class CrossEntropyK(Function):
    def forward(self, x, target, weight, ignore_index, eps):
        self.args = (target, ignore_index, eps, weight)
        losses, self.probs = R.cross_entropy_fwd(x, target, ignore_index, eps, weight)
        return losses

    def backward(self, grad):
        return R.cross_entropy_bwd(grad, self.probs, *self.args), None


@given(st.integers(1, 5), st.integers(1, 5), st.sampled_from([0.0, 0.1, 1.0]), st.booleans(),
       st.booleans())
def test_cross_entropy(n, c, eps, weighted, with_ignored):
    x = randn(n, c) * 2
    t = rng.integers(0, c, n)
    if with_ignored:
        t[0] = -100
    weight = rng.random(c) + 0.5 if weighted else None
    losses, probs = R.cross_entropy_fwd(x, t, -100, eps, weight)
    np.testing.assert_allclose(losses, loop_cross_entropy(x, t, weight, -100, eps), rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(probs, loop_softmax(x, 1), rtol=1e-12)
    target = tg.tensor(t)
    assert gradcheck(lambda v: CrossEntropyK.apply(v, target, weight=weight, ignore_index=-100,
                                                   eps=eps), leaf(x))
    if with_ignored:  # an ignored row: zero loss, zero gradient, even for a non-finite dloss
        dlosses = np.ones(n)
        dlosses[0] = np.inf
        d = R.cross_entropy_bwd(dlosses, probs, t, -100, eps, weight)
        assert losses[0] == 0.0 and (d[0] == 0.0).all()


def test_cross_entropy_large_logits_and_float32():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=np.float32)
    t = np.array([1, 0])
    losses, probs = R.cross_entropy_fwd(x, t, -100, 0.1)
    d = R.cross_entropy_bwd(np.ones(2, np.float32), probs, t, -100, 0.1)
    assert losses.dtype == np.float32 and d.dtype == np.float32
    assert np.isfinite(losses).all() and np.isfinite(d).all()
    # row 0: nll = 2e4; smoothing term = (2e4 + 0 + 1e4) / 3
    assert losses[0] == pytest.approx(0.9 * 2e4 + 0.1 * 1e4, rel=1e-6)


# ----------------------------------------------------------------------------------------------------
# layer norm


class LayerNormK(Function):
    def forward(self, x, *wb, eps):
        self.x = x
        self.w = wb[0] if wb else None
        y, self.mean, self.rstd = R.layer_norm_fwd(x, self.w, wb[1] if wb else None, eps)
        return y

    def backward(self, grad):
        dx, dw, db = R.layer_norm_bwd(grad, self.x, self.w, self.mean, self.rstd)
        return (dx, dw, db) if self.w is not None else dx


@given(st.lists(st.integers(1, 3), max_size=2), st.integers(1, 5), st.booleans())
def test_layer_norm(lead, c, affine):
    x = randn(*lead, c) * 2 + 1
    w, b = randn(c), randn(c)
    y, mean, rstd = R.layer_norm_fwd(x, w if affine else None, b if affine else None, 1e-5)
    for idx in np.ndindex(*lead):
        row = [float(v) for v in x[idx]]
        mu = sum(row) / c
        var = sum((v - mu) ** 2 for v in row) / c
        assert mean[idx] == pytest.approx(mu) and rstd[idx] == pytest.approx(1 / math.sqrt(var + 1e-5))
        want = [(v - mu) / math.sqrt(var + 1e-5) * (w[j] if affine else 1) + (b[j] if affine else 0)
                for j, v in enumerate(row)]
        np.testing.assert_allclose(y[idx], want, rtol=1e-10, atol=1e-12)
    if affine:
        assert gradcheck(lambda x, w, b: LayerNormK.apply(x, w, b, eps=1e-5), leaf(x), leaf(w),
                         leaf(b))
    else:
        assert gradcheck(lambda x: LayerNormK.apply(x, eps=1e-5), leaf(x))


# ----------------------------------------------------------------------------------------------------
# GELU


class GeluK(Function):
    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        return R.gelu_fwd(x, approximate)

    def backward(self, grad):
        return R.gelu_bwd(grad, self.x, self.approximate)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    x = np.concatenate([randn(40) * 3, [0.0, -10.0, 10.0, -40.0]])
    if approximate == "none":
        want = [v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x]
    else:
        want = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
                for v in x]
    # The tanh form loses relative accuracy where 1 + tanh(u) cancels (x << 0), hence atol there.
    atol = 1e-300 if approximate == "none" else 1e-15
    np.testing.assert_allclose(R.gelu_fwd(x, approximate), want, rtol=1e-12, atol=atol)
    assert gradcheck(lambda t: GeluK.apply(t, approximate=approximate), leaf(x[:30]))
    x32 = x.astype(np.float32)
    assert R.gelu_fwd(x32, approximate).dtype == np.float32
    assert R.gelu_bwd(x32, x32, approximate).dtype == np.float32


def test_exact_gelu_left_tail_is_not_rounded_to_zero():
    # x * Phi(x) for x = -10 is about -7.6e-23: 1 + erf(x / sqrt 2) would round it to 0.
    assert R.gelu_fwd(np.array([-10.0]), "none")[0] == pytest.approx(-10 * 0.5 * math.erfc(10 / math.sqrt(2)),
                                                                      rel=1e-12)


# ----------------------------------------------------------------------------------------------------
# attention


def loop_attention(q, k, v, causal, scale):
    """out and lse by an explicit loop over (batch, query), skipping keys after the query."""
    lead = q.shape[:-2]
    tq, tk = q.shape[-2], k.shape[-2]
    out = np.zeros(lead + (tq, v.shape[-1]))
    lse = np.zeros(lead + (tq,))
    for b in np.ndindex(*lead):
        for i in range(tq):
            keys = [j for j in range(tk) if not causal or j <= i]
            s = [scale * float(np.dot(q[b][i], k[b][j])) for j in keys]
            m = max(s)
            e = [math.exp(v_ - m) for v_ in s]
            z = sum(e)
            lse[b][i] = m + math.log(z)
            out[b][i] = sum(e[n] / z * v[b][j] for n, j in enumerate(keys))
    return out, lse


class AttentionK(Function):
    def forward(self, q, k, v, causal, scale):
        self.args = (q, k, v)
        self.causal, self.scale = causal, scale
        self.out, self.lse = R.attention_fwd(q, k, v, causal, scale)
        return self.out

    def backward(self, grad):
        return R.attention_bwd(grad, *self.args, self.out, self.lse, self.causal, self.scale)


@given(st.lists(st.integers(1, 2), max_size=2), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.integers(1, 3), st.booleans())
def test_attention(lead, tq, tk, d, dv, causal):
    q, k, v = randn(*lead, tq, d), randn(*lead, tk, d), randn(*lead, tk, dv)
    scale = 1 / math.sqrt(d)
    out, lse = R.attention_fwd(q, k, v, causal, scale)
    want_out, want_lse = loop_attention(q, k, v, causal, scale)
    np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lse, want_lse, rtol=1e-12)
    assert gradcheck(lambda q, k, v: AttentionK.apply(q, k, v, causal=causal, scale=scale),
                     leaf(q), leaf(k), leaf(v))


def test_attention_large_scores_and_float32():
    q = np.full((1, 3, 2), 100.0, np.float32)
    k = randn(1, 3, 2, dtype=np.float32) * 100
    v = randn(1, 3, 2, dtype=np.float32)
    out, lse = R.attention_fwd(q, k, v, True, 1.0)
    dq, dk, dv = R.attention_bwd(np.ones_like(out), q, k, v, out, lse, True, 1.0)
    for a in (out, lse, dq, dk, dv):
        assert a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_allclose(out[0, 0], v[0, 0], rtol=1e-6)  # the first query sees one key


# ----------------------------------------------------------------------------------------------------
# NT-Xent


def loop_nt_xent(z1, z2, tau):
    z = np.concatenate([z1, z2])
    m = z.shape[0]
    n = m // 2
    u = [row / max(math.sqrt(sum(float(c) ** 2 for c in row)), 1e-12) for row in z]
    total = 0.0
    for i in range(m):
        sims = {j: float(np.dot(u[i], u[j])) / tau for j in range(m) if j != i}
        pos = (i + n) % m
        total += -sims[pos] + math.log(sum(math.exp(s) for s in sims.values()))
    return total / m


class NTXentK(Function):
    def forward(self, z1, z2, tau):
        self.tau = tau
        loss, *self.saved = R.nt_xent_fwd(z1, z2, tau)
        return loss

    def backward(self, grad):
        return R.nt_xent_bwd(grad, *self.saved, self.tau)


@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([0.1, 0.5, 2.0]))
def test_nt_xent(n, d, tau):
    z1, z2 = randn(n, d), randn(n, d)
    loss, u, norms, probs = R.nt_xent_fwd(z1, z2, tau)
    assert loss.shape == () and norms.shape == (2 * n,) and probs.shape == (2 * n, 2 * n)
    assert float(loss) == pytest.approx(loop_nt_xent(z1, z2, tau), rel=1e-12)
    assert (np.diag(probs) == 0).all()  # self-similarity excluded
    assert gradcheck(lambda a, b: NTXentK.apply(a, b, tau=tau), leaf(z1), leaf(z2))


def test_nt_xent_zero_row_is_clamped_not_nan():
    z1 = np.array([[0.0, 0.0], [1.0, 2.0]])
    z2 = np.array([[0.5, -1.0], [2.0, 0.0]])
    loss, *saved = R.nt_xent_fwd(z1, z2, 0.5)
    assert float(loss) == pytest.approx(loop_nt_xent(z1, z2, 0.5))
    dz1, dz2 = R.nt_xent_bwd(1.0, *saved, 0.5)
    assert np.isfinite(dz1).all() and np.isfinite(dz2).all()
    # At the clamp the map is z / 1e-12, linear: the gradient there is du / 1e-12, so a tiny step
    # in z changes the loss as predicted (checked with a step far below the clamp).
    h = 1e-16
    zp, zm = z1.copy(), z1.copy()
    zp[0, 0], zm[0, 0] = h, -h
    numeric = (float(R.nt_xent_fwd(zp, z2, 0.5)[0]) - float(R.nt_xent_fwd(zm, z2, 0.5)[0])) / (2 * h)
    assert numeric == pytest.approx(dz1[0, 0], rel=1e-4)


# ----------------------------------------------------------------------------------------------------
# AdamW and dropout


def test_adamw_update_follows_pytorch_rule():
    p, g = randn(5), randn(5)
    m, v = randn(5) * 0.1, np.abs(randn(5)) * 0.1
    lr, b1, b2, eps, wd, step = 1e-2, 0.9, 0.99, 1e-8, 0.1, 3
    want = []
    for i in range(5):  # the rule, one element at a time, in plain Python
        pi = p[i] * (1 - lr * wd)
        mi = b1 * m[i] + (1 - b1) * g[i]
        vi = b2 * v[i] + (1 - b2) * g[i] ** 2
        pi -= lr * (mi / (1 - b1 ** step)) / (math.sqrt(vi / (1 - b2 ** step)) + eps)
        want.append((pi, mi, vi))
    R.adamw_update(p, g, m, v, step, lr, b1, b2, eps, wd)
    np.testing.assert_allclose(p, [w[0] for w in want], rtol=1e-12)
    np.testing.assert_allclose(m, [w[1] for w in want], rtol=1e-12)
    np.testing.assert_allclose(v, [w[2] for w in want], rtol=1e-12)


def test_adamw_update_matches_torch_over_steps():
    torch = pytest.importorskip("torch")
    p0 = randn(4, 3, dtype=np.float32)
    tp = torch.nn.Parameter(torch.tensor(p0))
    opt = torch.optim.AdamW([tp], lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for step in range(1, 6):
        g = randn(4, 3, dtype=np.float32)
        tp.grad = torch.tensor(g)
        opt.step()
        R.adamw_update(p, g, m, v, step, 1e-2, 0.8, 0.95, 1e-6, 0.05)
        assert p.dtype == np.float32 and m.dtype == np.float32
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_kernels():
    x = randn(3, 4, dtype=np.float32)
    mask = rng.random((3, 4)) >= 0.25
    y = R.dropout_fwd(x, mask, 0.25)
    assert y.dtype == np.float32
    for idx in np.ndindex(3, 4):
        assert y[idx] == pytest.approx(x[idx] / 0.75 if mask[idx] else 0.0, rel=1e-6)
    np.testing.assert_array_equal(R.dropout_bwd(x, mask, 0.25), y)
    assert (R.dropout_fwd(x, np.zeros_like(mask), 1.0) == 0).all()  # p = 1: zeros, no inf


# ----------------------------------------------------------------------------------------------------
# The registry


@pytest.fixture
def restore_kernels():
    saved = registry.kernel_settings()
    yield
    registry.set_kernels(**saved)


def test_every_family_is_in_the_reference():
    for family, names in registry.FAMILIES.items():
        for name in names:
            assert callable(getattr(R, name)), f"reference lacks {name} of {family}"


def test_set_kernels_and_which(restore_kernels):
    tg.set_kernels("reference")
    assert registry.kernel_settings() == {"default": "reference"}
    assert all(registry.which(f) == "reference" for f in registry.FAMILIES)
    assert registry.kernels_for("softmax", np) is R
    tg.set_kernels(attention="fast")
    assert registry.kernel_settings() == {"default": "reference", "attention": "fast"}
    tg.set_kernels(attention=None)  # back to the default
    assert registry.kernel_settings() == {"default": "reference"}
    tg.set_kernels("fast")
    # Without faster implementations registered, "fast" falls back to the reference, and says so.
    if not registry.FAST["cpu"].get("softmax"):
        assert registry.which("softmax", "cpu") == "reference"
    assert registry.kernels_for("softmax", "cpu") is registry.kernels_for("softmax", np)


def test_set_kernels_default_clears_per_family_choices(restore_kernels):
    tg.set_kernels(softmax="reference", attention="reference")
    tg.set_kernels("fast")
    assert registry.kernel_settings() == {"default": "fast"}


def test_unknown_names_raise_and_list_valid_ones(restore_kernels):
    before = registry.kernel_settings()
    with pytest.raises(ValueError, match=r"unknown setting 'fastest'.*\['reference', 'fast'\]"):
        tg.set_kernels("fastest")
    with pytest.raises(ValueError, match=r"unknown kernel family 'softmx'.*'softmax'"):
        tg.set_kernels(softmx="reference")
    with pytest.raises(ValueError, match=r"unknown implementation 'cuda' for family 'softmax'"):
        tg.set_kernels(softmax="cuda") if not registry.FAST["cuda"].get("softmax") \
            else tg.set_kernels(softmax="nonexistent")
    with pytest.raises(ValueError, match="unknown kernel family 'nope'"):
        registry.kernels_for("nope", np)
    with pytest.raises(ValueError, match="unknown kernel family 'nope'"):
        registry.which("nope")
    with pytest.raises(TypeError, match="expected an array module"):
        registry.kernels_for("softmax", 3)
    assert registry.kernel_settings() == before  # a failed call changes nothing


def test_a_named_implementation_that_fails_to_load_is_an_error(restore_kernels, monkeypatch):
    monkeypatch.setitem(registry.FAST["cpu"], "gelu", [("numba", "tinygrad_pt.kernels.no_such")])
    tg.set_kernels(gelu="numba")
    with pytest.raises(RuntimeError, match="'numba' of 'gelu' was asked for but could not be loaded"):
        registry.kernels_for("gelu", np)
    monkeypatch.setattr(registry, "_warned", set())
    tg.set_kernels(gelu="fast")  # under "fast" it is skipped, with a warning, for the reference
    with pytest.warns(RuntimeWarning, match="numba unavailable: ModuleNotFoundError"):
        assert registry.kernels_for("gelu", np) is R
    assert registry.which("gelu") == ("reference (numba unavailable: ModuleNotFoundError: No "
                                      "module named 'tinygrad_pt.kernels.no_such')")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same reason again: no second warning
        tg.set_kernels(gelu="fast")
        assert registry.kernels_for("gelu", np) is R
    assert registry.which("gelu").startswith("reference (numba unavailable")
    tg.set_kernels(gelu="reference")
    assert registry.which("gelu") == "reference"  # chosen, not fallen back: nothing to explain


def test_a_registered_fast_module_is_used(restore_kernels, monkeypatch):
    # A stand-in "fast" module: the reference itself under another name.
    monkeypatch.setitem(registry.FAST["cpu"], "softmax",
                        [("numba", "tinygrad_pt.kernels.reference")])
    tg.set_kernels("fast")
    assert registry.which("softmax") == "numba"
    assert registry.which("softmax", "cuda") == "reference"
    tg.set_kernels(softmax="reference")
    assert registry.which("softmax") == "reference"


def test_environment_variable_sets_the_default(restore_kernels, monkeypatch):
    monkeypatch.setenv("TINYGRAD_PT_KERNELS", "reference, attention=fast")
    registry._apply_env()
    assert registry.kernel_settings() == {"default": "reference", "attention": "fast"}
    monkeypatch.setenv("TINYGRAD_PT_KERNELS", "turbo")
    with pytest.raises(ValueError, match=r"TINYGRAD_PT_KERNELS='turbo'.*unknown setting"):
        registry._apply_env()


def test_environment_variable_read_at_import():
    import subprocess
    import sys
    code = "import tinygrad_pt as tg; from tinygrad_pt.kernels import registry as r; print(r.kernel_settings())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "TINYGRAD_PT_KERNELS": "reference"})
    assert out.returncode == 0, out.stderr
    assert "'default': 'reference'" in out.stdout
