"""Tensor: the dtype contract, creation, operator overloads with scalars and arrays, conversions."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
from tinygrad_pt.testing.strategies import arrays, broadcastable_shapes

# ----------------------------------------------------------------------------------------------------
# The dtype contract (DESIGN.md, "Contract details")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_tensor_from_ndarray_keeps_dtype(dtype):
    a = np.zeros((2, 3), dtype=dtype)
    assert tg.tensor(a).dtype == dtype


@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32), ([1.0, 2.0], np.float32), ([[1, 2.5]], np.float32), ([], np.float32),
    (3, np.int64), ([1, 2], np.int64), (True, np.bool_), ([True, False], np.bool_),
    (np.float64(2.0), np.float64), (np.int32(2), np.int32),
])
def test_tensor_from_python_values(data, dtype):
    t = tg.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=dtype))


def test_dtype_argument_overrides():
    assert tg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert tg.tensor(np.ones(2), dtype="float32").dtype == np.float32
    assert tg.tensor([1.0], dtype=np.int64).dtype == np.int64


def test_tensor_copies_the_array_it_is_given():
    a = np.array([1.0, 2.0])
    t = tg.tensor(a, requires_grad=True)
    t.data += 1  # what an optimizer does
    np.testing.assert_array_equal(a, [1.0, 2.0])
    u = tg.tensor(t)
    assert not np.shares_memory(u.data, t.data) and not u.requires_grad


def test_python_scalars_keep_the_tensor_dtype():
    x = tg.tensor([1.0, 2.0])  # float32
    for y in (x * 2.0, 2 * x, x / 3, 1 - x, x + 1, 2.0 ** x, x ** 2.5, -x, x - True,
              x * np.float64(2.0), np.float64(2.0) * x, x / np.float32(3), np.int64(2) + x):
        assert y.dtype == np.float32


def test_scalar_promotion_with_integer_and_bool_tensors():
    i = tg.tensor([1, 2])
    assert (i * 2).dtype == np.int64
    assert (i * 0.5).dtype == np.float32  # a float scalar: the default float, not float64
    np.testing.assert_array_equal((i * 0.5).numpy(), [0.5, 1.0])
    assert (i / 2).dtype == np.float32 and (3 / i).dtype == np.float32  # true division
    np.testing.assert_allclose((i / 2).numpy(), [0.5, 1.0])
    b = tg.tensor([True, False])
    assert (b + 1).dtype == np.int64
    np.testing.assert_array_equal((b + 1).numpy(), [2, 1])


def test_ndarrays_follow_numpy_promotion():
    x = tg.tensor([1.0, 2.0])  # float32
    assert (x + np.ones(2, np.float32)).dtype == np.float32
    assert (x + np.ones(2, np.float64)).dtype == np.float64  # as NumPy: arrays are not weak


# ----------------------------------------------------------------------------------------------------
# Operator overloads: scalars and arrays on either side, values and gradients


def _grad(fn, x):
    t = tg.tensor(x, requires_grad=True)
    out = fn(t)
    out.backward(np.ones(out.shape))
    return out.numpy(), t.grad.numpy()


@pytest.mark.parametrize("fn, value, grad", [
    (lambda t: 2 * t, lambda x: 2 * x, lambda x: np.full_like(x, 2)),
    (lambda t: t * 2, lambda x: 2 * x, lambda x: np.full_like(x, 2)),
    (lambda t: 1 - t, lambda x: 1 - x, lambda x: np.full_like(x, -1)),
    (lambda t: t - 1, lambda x: x - 1, lambda x: np.ones_like(x)),
    (lambda t: 3 + t, lambda x: 3 + x, lambda x: np.ones_like(x)),
    (lambda t: t / 4, lambda x: x / 4, lambda x: np.full_like(x, 0.25)),
    (lambda t: 2 / t, lambda x: 2 / x, lambda x: -2 / x**2),
    (lambda t: 2 ** t, lambda x: 2**x, lambda x: 2**x * np.log(2)),
    (lambda t: t ** 3, lambda x: x**3, lambda x: 3 * x**2),
    (lambda t: -t, lambda x: -x, lambda x: -np.ones_like(x)),
    (lambda t: +t, lambda x: x, lambda x: np.ones_like(x)),
    (lambda t: abs(t), lambda x: np.abs(x), lambda x: np.sign(x)),
    (lambda t: np.array([1.0, 2.0, 3.0]) + t, lambda x: x + [1, 2, 3], lambda x: np.ones_like(x)),
    (lambda t: np.array([1.0, 2.0, 3.0]) - t, lambda x: [1, 2, 3] - x, lambda x: -np.ones_like(x)),
    (lambda t: np.array([1.0, 2.0, 3.0]) * t, lambda x: x * [1, 2, 3],
     lambda x: np.array([1.0, 2, 3])),
    (lambda t: np.array([1.0, 2.0, 3.0]) / t, lambda x: [1, 2, 3] / x,
     lambda x: -np.array([1, 2, 3]) / x**2),
    (lambda t: t * [1.0, 2.0, 3.0], lambda x: x * [1, 2, 3], lambda x: np.array([1.0, 2, 3])),
])
def test_operator_overloads(fn, value, grad):
    x = np.array([0.5, -1.5, 2.0])
    out, g = _grad(fn, x)
    np.testing.assert_allclose(out, value(x), rtol=1e-12)
    np.testing.assert_allclose(g, grad(x), rtol=1e-12)


def test_ndarray_matmul_dispatches_to_tensor():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = tg.tensor(np.array([[1.0], [-1.0]]), requires_grad=True)
    y = a @ x
    assert isinstance(y, tg.Tensor)
    np.testing.assert_array_equal(y.numpy(), [[-1.0], [-1.0]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[4.0], [6.0]])  # column sums of a


def test_numpy_scalar_on_the_left_dispatches_to_tensor():
    x = tg.tensor([1.0, 2.0])
    y = np.float64(3.0) * x
    assert isinstance(y, tg.Tensor) and y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])


@given(broadcastable_shapes(max_dims=3, max_side=3).flatmap(
    lambda s: st.tuples(arrays(s[0]), arrays(s[1]))))
def test_broadcasting_operators_match_numpy(ab):
    a, b = ab
    ta, tb = tg.tensor(a), tg.tensor(b)
    for got, want in [(ta + tb, a + b), (ta - b, a - b), (a * tb, a * b),
                      (ta / (np.abs(b) + 1), a / (np.abs(b) + 1))]:
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_comparisons_return_bool_tensors_without_grad():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for got, want in [(x < 2, [True, False, False]), (x <= 2, [True, True, False]),
                      (x > 2, [False, False, True]), (x >= 2, [False, True, True]),
                      (x == 2, [False, True, False]), (x != 2, [True, False, True]),
                      (2 < x, [False, False, True]),
                      (np.array([3.0, 2.0, 1.0]) == x, [False, True, False])]:
        assert got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), want)


def test_inplace_operator_rebinds_to_new_tensor():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    y += 1  # no in-place op: a new tensor in the graph
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


# ----------------------------------------------------------------------------------------------------
# Attributes and conversions


def test_attributes():
    x = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.numel() == 6
    assert x.dtype == np.float64 and x.device == "cpu" and x.is_leaf and x.grad_fn is None
    y = x * 2
    assert not y.is_leaf and y.grad_fn.name == "Mul" and len(y) == 2


def test_numpy_returns_a_copy_and_item_float_int_bool():
    x = tg.tensor([[2.5]])
    a = x.numpy()
    a[0, 0] = 9
    assert x.item() == 2.5 and float(x) == 2.5 and int(x) == 2 and bool(x)
    assert not bool(tg.tensor(0.0))
    assert tg.tensor([[1, 2]]).tolist() == [[1, 2]]


def test_array_protocol():
    x = tg.tensor(np.arange(3.0))
    a = np.asarray(x)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, [0, 1, 2])
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert not np.shares_memory(np.array(x, copy=True), x.data)


def test_repr_shows_values_dtype_and_grad_state():
    assert repr(tg.tensor([1.0, 2.0])) == "tensor([1., 2.], dtype=float32)"
    x = tg.tensor([1.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<Mul>" in repr(x * 2)


def test_to_and_casts_are_differentiable():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    d = x.double()
    assert d.dtype == np.float64 and x.to("cpu") is x and x.to(np.float32) is x
    (d * d).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert x.to("float64").dtype == np.float64
    assert x.to(device="cpu", dtype=np.float16).dtype == np.float16
    assert d.float().dtype == np.float32


def test_to_copies_data_when_dtype_changes_only():
    x = tg.tensor([1.0, 2.0])
    y = x.to(dtype=np.float64)
    y.data[0] = 5
    assert x.numpy()[0] == 1.0


# ----------------------------------------------------------------------------------------------------
# Creation functions


def test_creation_shapes_dtypes_and_requires_grad():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros(2, 3).dtype == np.float32
    assert tg.ones((4,)).shape == (4,) and tg.ones(()).shape == ()
    assert tg.zeros(2, dtype=np.float64).dtype == np.float64
    assert tg.full((2,), 7).dtype == np.int64 and tg.full((2,), 7.0).dtype == np.float32
    assert tg.arange(5).dtype == np.int64 and tg.arange(0, 1, 0.25).dtype == np.float32
    np.testing.assert_array_equal(tg.arange(2, 8, 2).numpy(), [2, 4, 6])
    np.testing.assert_array_equal(tg.eye(2).numpy(), np.eye(2))
    r = tg.randn(3, 4, requires_grad=True)
    assert r.shape == (3, 4) and r.dtype == np.float32 and r.requires_grad
    u = tg.rand(100)
    assert ((u.numpy() >= 0) & (u.numpy() < 1)).all()
    k = tg.randint(0, 3, (50,))
    assert k.dtype == np.int64 and set(k.numpy().tolist()) <= {0, 1, 2}
    z = tg.zeros_like(tg.tensor(np.ones((2, 2))))
    assert z.dtype == np.float64 and z.shape == (2, 2) and tg.ones_like(z).numpy().sum() == 4


def test_manual_seed_reproduces_random_tensors():
    tg.manual_seed(123)
    a = tg.randn(5).numpy()
    tg.manual_seed(123)
    b = tg.randn(5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, tg.randn(5).numpy())
