"""tg.autograd.functional (vjp, jvp, hvp, vhp, jacobian, hessian) against finite differences, and
second derivatives against PyTorch where it is installed."""
import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt.autograd import functional as AF

F = tg.nn.functional
EPS = 1e-6


def t64(a, requires_grad=False):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def numeric_jacobian(fn, xs):
    """d fn(*xs) / d xs[j] by central differences: one array of shape out.shape + xs[j].shape
    per input (fn takes and returns NumPy arrays)."""
    xs = [np.array(x, dtype=np.float64) for x in xs]
    out = fn(*xs)
    blocks = []
    for x in xs:
        block = np.zeros(out.shape + x.shape)
        for idx in np.ndindex(*x.shape):
            orig = x[idx]
            x[idx] = orig + EPS
            plus = fn(*xs)
            x[idx] = orig - EPS
            minus = fn(*xs)
            x[idx] = orig
            block[(...,) + idx] = (plus - minus) / (2 * EPS)
        blocks.append(block)
    return blocks


def on_arrays(func):
    """func on Tensors as a function of NumPy arrays, without a graph."""
    def run(*arrays):
        with tg.no_grad():
            return func(*[t64(a) for a in arrays]).numpy()
    return run


def first_grad(func):
    """x -> d func(x) / dx (first order) as NumPy, for a one-element func."""
    def run(*arrays):
        xs = [t64(a, requires_grad=True) for a in arrays]
        return np.concatenate([g.numpy().reshape(-1) for g in tg.autograd.grad(func(*xs), xs)])
    return run


R = np.random.default_rng(0)
X, Y = R.standard_normal((3,)), R.standard_normal((2, 3))


def f_vec(x, y):
    return (y @ x).tanh() * x[:2]  # (2,)


def f_scalar(x, y):
    return ((y @ x).exp() * (x * x).sum()).sum() + (y * y * y).sum()


def test_vjp_matches_finite_differences_and_returns_output_and_product():
    v = R.standard_normal(2)
    out, (gx, gy) = AF.vjp(f_vec, (t64(X), t64(Y)), t64(v))
    jx, jy = numeric_jacobian(on_arrays(f_vec), [X, Y])
    np.testing.assert_allclose(out.numpy(), on_arrays(f_vec)(X, Y))
    np.testing.assert_allclose(gx.numpy(), np.tensordot(v, jx, axes=1), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gy.numpy(), np.tensordot(v, jy, axes=1), rtol=1e-6, atol=1e-8)
    assert not gx.requires_grad and not out.requires_grad


def test_vjp_of_a_single_input_returns_a_tensor_and_v_may_be_omitted_for_a_scalar():
    out, g = AF.vjp(lambda x: (x * x).sum(), t64(X))
    assert isinstance(g, tg.Tensor)
    np.testing.assert_allclose(g.numpy(), 2 * X)
    with pytest.raises(RuntimeError, match="v can be omitted only"):
        AF.vjp(lambda x: x * 2, t64(X))


def test_jvp_by_the_double_vjp_trick_matches_finite_differences():
    vx, vy = R.standard_normal(3), R.standard_normal((2, 3))
    out, jv = AF.jvp(f_vec, (t64(X), t64(Y)), (t64(vx), t64(vy)))
    step = on_arrays(f_vec)
    numeric = (step(X + EPS * vx, Y + EPS * vy) - step(X - EPS * vx, Y - EPS * vy)) / (2 * EPS)
    np.testing.assert_allclose(jv.numpy(), numeric, rtol=1e-6, atol=1e-8)
    assert isinstance(jv, tg.Tensor)  # the structure of the output


def test_jvp_of_a_tuple_output():
    v = R.standard_normal(3)
    _, (a, b) = AF.jvp(lambda x: (x.sin(), x.sum()), t64(X), t64(v))
    np.testing.assert_allclose(a.numpy(), np.cos(X) * v)
    np.testing.assert_allclose(b.numpy(), v.sum())


def test_hvp_and_vhp_match_finite_differences_of_the_gradient():
    vx, vy = R.standard_normal(3), R.standard_normal((2, 3))
    out, (hx, hy) = AF.hvp(f_scalar, (t64(X), t64(Y)), (t64(vx), t64(vy)))
    g = first_grad(f_scalar)
    numeric = (g(X + EPS * vx, Y + EPS * vy) - g(X - EPS * vx, Y - EPS * vy)) / (2 * EPS)
    got = np.concatenate([hx.numpy().reshape(-1), hy.numpy().reshape(-1)])
    np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-7)
    assert float(out.numpy()) == pytest.approx(float(on_arrays(f_scalar)(X, Y)))
    _, (wx, wy) = AF.vhp(f_scalar, (t64(X), t64(Y)), (t64(vx), t64(vy)))
    np.testing.assert_allclose(wx.numpy(), hx.numpy(), rtol=1e-10)


def test_hessian_of_one_input_and_of_a_tuple():
    h = AF.hessian(lambda x: (x.tanh() * x).sum(), t64(X))
    (numeric,) = numeric_jacobian(first_grad(lambda x: (x.tanh() * x).sum()), [X])
    assert isinstance(h, tg.Tensor) and h.shape == (3, 3)
    np.testing.assert_allclose(h.numpy(), numeric, rtol=1e-5, atol=1e-7)
    hs = AF.hessian(f_scalar, (t64(X), t64(Y)))
    jx, jy = numeric_jacobian(first_grad(f_scalar), [X, Y])  # rows: the flattened gradient
    assert hs[0][1].shape == (3, 2, 3) and hs[1][0].shape == (2, 3, 3)
    np.testing.assert_allclose(hs[0][0].numpy(), jx[:3], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hs[0][1].numpy(), jy[:3], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hs[1][1].numpy(), jy[3:].reshape(2, 3, 2, 3), rtol=1e-5, atol=1e-7)


def test_jacobian_structures():
    jx, jy = numeric_jacobian(on_arrays(f_vec), [X, Y])
    j = AF.jacobian(f_vec, (t64(X), t64(Y)))
    assert isinstance(j, tuple) and j[1].shape == (2, 2, 3)
    np.testing.assert_allclose(j[0].numpy(), jx, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(j[1].numpy(), jy, rtol=1e-6, atol=1e-8)
    single = AF.jacobian(lambda x: x.exp(), t64(X))
    np.testing.assert_allclose(single.numpy(), np.diag(np.exp(X)))
    both = AF.jacobian(lambda x, y: (x * 2, (y * y).sum()), (t64(X), t64(Y)))
    assert both[0][0].shape == (3, 3) and both[1][1].shape == (2, 3)
    np.testing.assert_allclose(both[1][1].numpy(), 2 * Y)
    np.testing.assert_allclose(both[0][1].numpy(), np.zeros((3, 2, 3)))  # unused: zeros


def test_strict_mode_refuses_an_independent_output():
    with pytest.raises(RuntimeError, match="does not depend on input 1"):
        AF.jacobian(lambda x, y: x * 2, (t64(X), t64(Y)), strict=True)


def test_functional_leaves_inputs_and_grads_untouched():
    x = t64(X, requires_grad=True)
    AF.hvp(lambda t: (t ** 3).sum(), x, t64(np.ones(3)))
    assert x.grad is None


def test_create_graph_results_can_be_differentiated_again():
    x = t64(X, requires_grad=True)
    _, hv = AF.hvp(lambda t: (t ** 4).sum(), x, t64(np.ones(3)), create_graph=True)  # 12 x^2
    np.testing.assert_allclose(hv.numpy(), 12 * X ** 2)
    (g3,) = tg.autograd.grad(hv.sum(), x)  # the third derivative: 24 x
    np.testing.assert_allclose(g3.numpy(), 24 * X)


# ----------------------------------------------------------------------------------------------------
# Second derivatives against PyTorch


def torch_or_skip():
    return pytest.importorskip("torch")


def second_derivatives(lib, fn, arrays, u, v):
    """d<v, d<u, fn(x)>/dx>/dx for each input, in tinygrad_pt ("tg") or torch."""
    if lib == "tg":
        xs = [t64(a, requires_grad=True) for a in arrays]
        gs = tg.autograd.grad(fn(*xs), xs, grad_outputs=t64(u), create_graph=True)
        total = sum((g * t64(w)).sum() for g, w in zip(gs, v))
        return [None if g is None else g.numpy()
                for g in tg.autograd.grad(total, xs, allow_unused=True)]
    torch = torch_or_skip()
    xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    gs = torch.autograd.grad(fn(*xs), xs, grad_outputs=torch.tensor(u), create_graph=True)
    total = sum((g * torch.tensor(w)).sum() for g, w in zip(gs, v))
    return [None if g is None else g.numpy()
            for g in torch.autograd.grad(total, xs, allow_unused=True)]


def torch_cases():
    torch = torch_or_skip()
    tF = torch.nn.functional
    r = np.random.default_rng(7)
    target = np.array([0, 2, 1, 3])
    causal_q, causal_k = r.standard_normal((2, 3, 4)), r.standard_normal((2, 5, 4))
    return {
        "tanh''": ((lambda x: F.tanh(x)), (lambda x: torch.tanh(x)), [r.standard_normal((3, 4))]),
        "softplus": ((lambda x: F.softplus(x, beta=2.0, threshold=3.0)),
                     (lambda x: tF.softplus(x, beta=2.0, threshold=3.0)),
                     [r.standard_normal((3, 4))]),
        "softmax": ((lambda x: F.softmax(x, axis=0)), (lambda x: torch.softmax(x, dim=0)),
                    [r.standard_normal((3, 4))]),
        "log_softmax": ((lambda x: F.log_softmax(x, axis=-1)),
                        (lambda x: torch.log_softmax(x, dim=-1)), [r.standard_normal((3, 4))]),
        "layer_norm": ((lambda x, w, b: F.layer_norm(x, (4,), w, b)),
                       (lambda x, w, b: tF.layer_norm(x, (4,), w, b)),
                       [r.standard_normal((3, 4)), r.standard_normal(4), r.standard_normal(4)]),
        "cross_entropy": ((lambda x: F.cross_entropy(x, target, label_smoothing=0.1,
                                                     weight=np.arange(1.0, 5.0))),
                          (lambda x: tF.cross_entropy(x, torch.tensor(target), label_smoothing=0.1,
                                                      weight=torch.arange(1.0, 5.0,
                                                                          dtype=torch.float64))),
                          [r.standard_normal((4, 4))]),
        "matmul_chain": ((lambda a, b, c: (a @ b).tanh() @ c), (lambda a, b, c: (a @ b).tanh() @ c),
                         [r.standard_normal((2, 3)), r.standard_normal((3, 4)),
                          r.standard_normal((4, 2))]),
        "attention": ((lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
                      (lambda q, k, v: tF.scaled_dot_product_attention(q, k, v, is_causal=True)),
                      [causal_q, causal_k, r.standard_normal((2, 5, 3))]),
        "gelu": ((lambda x: F.gelu(x)), (lambda x: tF.gelu(x)), [r.standard_normal((3, 4))]),
        "bce_with_logits": ((lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid())),
                            (lambda x, y: tF.binary_cross_entropy_with_logits(x, y.sigmoid())),
                            [r.standard_normal((3, 4)), r.standard_normal((3, 4))]),
    }


CASES = ["tanh''", "softplus", "softmax", "log_softmax", "layer_norm", "cross_entropy",
         "matmul_chain", "attention", "gelu", "bce_with_logits"]


@pytest.mark.torch
@pytest.mark.parametrize("name", CASES)
def test_second_derivatives_match_pytorch(name):
    ours, theirs, arrays = torch_cases()[name]
    with tg.no_grad():
        out_shape = ours(*[t64(a) for a in arrays]).shape
    r = np.random.default_rng(11)
    u = r.standard_normal(out_shape)
    v = [r.standard_normal(a.shape) for a in arrays]
    got = second_derivatives("tg", ours, arrays, u, v)
    want = second_derivatives("torch", theirs, arrays, u, v)
    for i, (g, w) in enumerate(zip(got, want)):
        w = np.zeros_like(arrays[i]) if w is None else w
        g = np.zeros_like(arrays[i]) if g is None else g
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-9, err_msg=f"{name}: input {i}")


@pytest.mark.torch
def test_functional_matches_pytorch():
    torch = torch_or_skip()
    TF = torch.autograd.functional
    x, v = R.standard_normal(3), R.standard_normal(3)
    ours = AF.hessian(lambda t: (t.tanh() * t.exp()).sum(), t64(x)).numpy()
    theirs = TF.hessian(lambda t: (t.tanh() * t.exp()).sum(), torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    _, ours = AF.jvp(lambda t: t.sin() * t, t64(x), t64(v))
    _, theirs = TF.jvp(lambda t: t.sin() * t, torch.tensor(x), torch.tensor(v))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10)
