"""matmul: NumPy's semantics for 1-D, 2-D and batched N-D operands with broadcast batch axes,
checked against a plain loop of dot products and by float64 gradcheck."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
from tinygrad_pt.testing import gradcheck
from tinygrad_pt.testing.strategies import arrays, matmul_shapes


def matmul_loop(a, b):
    """a @ b by NumPy's rules, written as loops of fsum dot products (no np.matmul)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    A = np.broadcast_to(a2, batch + a2.shape[-2:])
    B = np.broadcast_to(b2, batch + b2.shape[-2:])
    n, k, m = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    out = np.empty(batch + (n, m))
    for idx in np.ndindex(*batch):
        for i in range(n):
            for j in range(m):
                out[idx + (i, j)] = math.fsum(A[idx + (i, p)] * B[idx + (p, j)] for p in range(k))
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def operands(shapes_):
    return st.tuples(arrays(shapes_[0], min_value=-3.0, max_value=3.0),
                     arrays(shapes_[1], min_value=-3.0, max_value=3.0))


@given(matmul_shapes(max_batch_dims=2, max_side=4).flatmap(operands))
def test_matmul_forward_matches_loop_and_numpy_shape(ab):
    a, b = ab
    out = tg.tensor(a) @ tg.tensor(b)
    want = matmul_loop(a, b)
    assert out.shape == want.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12, atol=1e-12)


@given(matmul_shapes(max_batch_dims=2, max_side=3).flatmap(operands))
def test_matmul_gradcheck(ab):
    a, b = ab
    assert gradcheck(lambda x, y: x @ y, a, b)
    assert gradcheck(tg.matmul, a, b)


@pytest.mark.parametrize("sa, sb", [
    ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)), ((5, 2, 3), (3,)), ((2, 3), (5, 3, 4)),
    ((1, 2, 3), (4, 3, 2)), ((4, 1, 2, 3), (5, 3, 2)), ((2, 1, 2, 3), (1, 3, 3, 2)),
])
def test_matmul_shape_cases(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    out = tg.matmul(tg.tensor(a), tg.tensor(b))
    np.testing.assert_allclose(out.numpy(), matmul_loop(a, b), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, y: x @ y, a, b)


def test_matmul_gradient_formula_2d():
    a = tg.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    b = tg.tensor(np.array([[5.0], [6.0]]), requires_grad=True)
    g = np.array([[1.0], [-1.0]])
    (a @ b).backward(g)
    np.testing.assert_array_equal(a.grad.numpy(), [[5.0, 6.0], [-5.0, -6.0]])  # g b^T
    np.testing.assert_array_equal(b.grad.numpy(), [[-2.0], [-2.0]])  # a^T g


def test_matmul_with_numpy_operands_on_either_side():
    w = tg.tensor(np.eye(3) * 2, requires_grad=True)
    x = np.arange(6.0).reshape(2, 3)
    y = x @ w
    np.testing.assert_array_equal(y.numpy(), x * 2)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.repeat(x.sum(0)[:, None], 3, axis=1))
    z = w @ np.ones(3)
    assert z.shape == (3,) and isinstance(z, tg.Tensor)
    assert w.matmul(np.ones((3, 1))).shape == (3, 1)


def test_matmul_float32_and_non_contiguous():
    a = tg.tensor(np.arange(12, dtype=np.float32).reshape(3, 4).T, requires_grad=True)  # (4, 3) view
    b = tg.tensor(np.ones((2, 3, 2), np.float32), requires_grad=True)
    y = a @ b
    assert y.dtype == np.float32 and y.shape == (2, 4, 2)
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32
    base = np.arange(1.0, 13.0).reshape(3, 4) / 5
    assert gradcheck(lambda x, y_: x @ y_, base.T, base[:, ::2])
    assert gradcheck(lambda x, y_: x @ y_, np.stack([base, base + 1])[:, :, ::-1], base.T)


def test_batched_times_matrix_sums_weight_gradient_over_batch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 3))
    w = tg.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    g = rng.standard_normal((4, 5, 2))
    (tg.tensor(x) @ w).backward(g)
    want = sum(x[i].T @ g[i] for i in range(4))
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)


# ----------------------------------------------------------------------------------------------------
# F.linear: one fused op (ops/linalg.py Linear), held to the composition x @ W.T + b

@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), k=st.integers(1, 5),
       m=st.integers(1, 5), bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_linear_matches_the_composition_and_gradchecks(lead, k, m, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(lead) + (k,))
    w, b = rng.standard_normal((m, k)), rng.standard_normal(m)
    xt, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    bt = tg.tensor(b, requires_grad=True) if bias else None
    y = tg.nn.functional.linear(xt, wt, bt)
    want = x @ w.T + (b if bias else 0.0)
    assert y.shape == want.shape
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
    inputs = (xt, wt) + ((bt,) if bias else ())
    assert gradcheck(lambda *t: tg.nn.functional.linear(*t), *inputs)


def test_linear_gradients_have_the_parameters_layout_and_bias_promotes():
    x = tg.tensor(np.ones((2, 3, 4), np.float32), requires_grad=True)
    w = tg.tensor(np.ones((5, 4), np.float32), requires_grad=True)
    b64 = tg.tensor(np.ones(5), requires_grad=True)  # float64 bias: the output promotes
    y = tg.nn.functional.linear(x, w, b64)
    assert y.dtype == np.float64 and y.shape == (2, 3, 5)
    y.sum().backward()
    assert w.grad.shape == (5, 4) and w.grad.data.flags.c_contiguous
    np.testing.assert_array_equal(w.grad.numpy(), np.full((5, 4), 6.0))
    np.testing.assert_array_equal(b64.grad.numpy(), np.full(5, 6.0))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3, 4), 5.0))


def test_linear_rejects_integer_input():
    with pytest.raises(TypeError, match=r"linear: input and weight must be floating point"):
        tg.nn.functional.linear(tg.tensor(np.ones((2, 3), np.int64)), tg.tensor(np.ones((4, 3))))


# ----------------------------------------------------------------------------------------------------
# The matmul kernels, chosen by name: tg.set_kernels(matmul="numba") routes matmul and linear
# through kernels/cpu/matmul.py; BLAS (`a @ b`) stays the default, also under "fast".


@pytest.fixture
def numba_matmul(monkeypatch):
    """matmul="numba", with a count of the calls that reach the Numba module."""
    from tinygrad_pt.kernels import registry
    from tinygrad_pt.kernels.cpu import matmul as M
    calls = []
    for name in ("matmul_fwd", "matmul_bwd"):
        kernel = getattr(M, name)
        monkeypatch.setattr(M, name, lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    saved = registry.kernel_settings()
    tg.set_kernels(matmul="numba")
    yield calls
    registry.set_kernels(**saved)


def test_blas_is_the_default_and_fast_does_not_pick_the_study_kernel():
    from tinygrad_pt.kernels import registry
    saved = registry.kernel_settings()
    try:
        for setting in ("fast", "reference"):
            tg.set_kernels(setting)
            assert registry.which("matmul") == "reference"
            assert "matmul" not in registry.ROUTED
    finally:
        registry.set_kernels(**saved)


@pytest.mark.parametrize("sa, sb", [
    ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)), ((2, 3), (5, 3, 4)), ((4, 1, 2, 3), (5, 3, 2)),
])
def test_a_kernel_chosen_by_name_runs_matmul_forward_and_backward(numba_matmul, sa, sb):
    from tinygrad_pt.kernels import registry
    assert registry.which("matmul") == "numba"
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose((tg.tensor(a) @ tg.tensor(b)).numpy(), matmul_loop(a, b),
                               rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, y: x @ y, a, b)
    assert "matmul_fwd" in numba_matmul and "matmul_bwd" in numba_matmul


def test_a_kernel_chosen_by_name_runs_linear(numba_matmul):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    xt, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    y = tg.nn.functional.linear(xt, wt, tg.tensor(b))
    np.testing.assert_allclose(y.numpy(), x @ w.T + b, rtol=1e-12, atol=1e-12)
    y.sum().backward()
    assert wt.grad.shape == (5, 4) and wt.grad.data.flags.c_contiguous
    np.testing.assert_allclose(wt.grad.numpy(), np.ones((2, 3, 5)).reshape(-1, 5).T
                               @ x.reshape(-1, 4), rtol=1e-12)
    assert gradcheck(lambda *t: tg.nn.functional.linear(*t), xt, wt)
    assert numba_matmul.count("matmul_fwd") >= 3  # the forward and both gradient products


def test_the_cuda_matmul_is_offered_by_name_and_leaves_the_cpu_on_blas():
    from tinygrad_pt.kernels import registry
    saved = registry.kernel_settings()
    try:
        tg.set_kernels(matmul="cuda")  # accepted: kernels/cuda/matmul.py offers it on "cuda"
        assert registry.which("matmul", "cpu") == "reference"  # the CPU has no "cuda": "fast"
        with pytest.raises(ValueError, match=r"unknown implementation 'blocked' for family "
                                             r"'matmul'.*'numba'.*'cuda'|'cuda'.*'numba'"):
            tg.set_kernels(matmul="blocked")
    finally:
        registry.set_kernels(**saved)
