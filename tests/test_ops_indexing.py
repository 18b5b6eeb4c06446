"""Indexing ops: x[key] (basic, integer-array, boolean and mixed), embedding, masked_fill,
tril/triu, and the refusal of item assignment.

The gradient oracle for anything that reads positions of x: number x's elements 0..size-1, index
those numbers with the same key in NumPy, and add each upstream gradient into the element it was
read from with np.bincount. That is the scatter-add written without add.at, so it is independent
of the implementation; gradcheck checks the same gradients against finite differences.
"""
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_pt as tg
from tinygrad_pt.ops.indexing import embedding
from tinygrad_pt.testing import gradcheck

NONEMPTY = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def data_of(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def leaf(shape, seed=0):
    return tg.tensor(data_of(shape, seed), requires_grad=True)


def read_gradient(shape, key, u):
    """d<u, x[key]>/dx: each element of u added to the element of x it was read from."""
    size = int(np.prod(shape))
    ids = np.arange(size).reshape(shape)
    read = ids[key]
    return np.bincount(np.ravel(read), weights=np.ravel(u), minlength=size).reshape(shape)


def as_numpy_key(key):
    if isinstance(key, tuple):
        return tuple(as_numpy_key(k) for k in key)
    return key.numpy() if isinstance(key, tg.Tensor) else key


def check_index(shape, key):
    """Forward against NumPy, the gradient against read_gradient, and gradcheck."""
    np_key = as_numpy_key(key)
    x = data_of(shape)
    t = tg.tensor(x, requires_grad=True)
    y = t[key]
    expected = x[np_key]
    assert y.shape == np.shape(expected)
    np.testing.assert_array_equal(y.numpy(), expected)
    u = data_of(y.shape, seed=1)
    y.backward(u)
    np.testing.assert_allclose(t.grad.numpy(), read_gradient(shape, np_key, u), atol=1e-12)
    if y.size:
        assert gradcheck(lambda a: a[key], leaf(shape))


# ----------------------------------------------------------------------------------------------------
# Basic indexing: ints, slices (any step), None, Ellipsis

@given(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4).flatmap(
    lambda s: st.tuples(st.just(s), hnp.basic_indices(s, min_dims=0, allow_newaxis=True,
                                                      allow_ellipsis=True))))
def test_basic_indexing(case):
    shape, key = case
    check_index(shape, key)


def test_basic_indexing_special_cases():
    check_index((4, 3), (slice(None, None, -1), slice(2, None, -2)))  # negative steps
    check_index((2, 3), (1, -1))  # a 0-d result
    check_index((), ())  # indexing a 0-d tensor with nothing
    check_index((), (None, Ellipsis))
    check_index((2, 3, 4), (Ellipsis, None, 1))
    assert [v.item() for v in tg.arange(3)] == [0, 1, 2]  # iteration goes through getitem


def test_basic_indexing_keeps_float32_through_backward():
    x = tg.randn(3, 4, requires_grad=True)
    x[1:, ::2].backward(np.ones((2, 2), np.float32))
    assert x.grad.dtype == np.float32
    assert x.grad.numpy().sum() == 4.0


# ----------------------------------------------------------------------------------------------------
# Integer arrays, repeated positions

@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3).flatmap(
    lambda s: st.tuples(st.just(s), hnp.integer_array_indices(
        s, result_shape=hnp.array_shapes(min_dims=0, max_dims=2, max_side=4)))))
def test_integer_array_indexing(case):
    shape, key = case
    check_index(shape, key)


def test_repeated_indices_accumulate_their_gradients():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].backward(np.array([1.0, 10.0, 100.0, 1000.0], np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), [1011.0, 0.0, 100.0])


def test_index_forms_list_array_tensor():
    check_index((4, 3), [3, -1, 0, 3])  # a list is an integer array, negatives wrap
    check_index((4, 3), np.array([[1, 1], [2, 0]]))
    check_index((4, 3), (tg.tensor([2, 2, 1]), slice(None)))
    check_index((4, 3), (slice(None), tg.tensor(1)))  # a 0-d integer tensor
    check_index((4, 3), [])  # an empty list reads nothing
    check_index((4, 3), ((0, 3), (1, 1)))  # tuples inside the key are arrays


@st.composite
def mixed_keys(draw):
    """Per axis a slice, an int or an integer array (repeats allowed), with None and one Ellipsis
    sprinkled in: the mixes NumPy allows (arrays separated by slices move to the front)."""
    shape = draw(NONEMPTY)
    length = draw(st.integers(0, 3))  # the arrays' common length (or 1, which broadcasts)
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["slice", "int", "array"]))
        if kind == "slice":
            items.append(draw(st.slices(n)))
        elif kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        else:
            size = draw(st.sampled_from([length, 1]))
            ids = draw(st.lists(st.integers(-n, n - 1), min_size=size, max_size=size))
            items.append(np.array(ids, dtype=np.int64))
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(items)))
        items = items[:cut] + [Ellipsis]  # the ellipsis stands for the axes left
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return shape, tuple(items)


@given(mixed_keys())
def test_mixed_indexing(case):
    shape, key = case
    check_index(shape, key)


# ----------------------------------------------------------------------------------------------------
# Boolean masks

@given(NONEMPTY.flatmap(lambda s: st.tuples(st.just(s), hnp.arrays(np.bool_, s))))
def test_full_boolean_mask(case):
    shape, mask = case
    check_index(shape, mask)
    check_index(shape, tg.tensor(mask))  # a bool Tensor works the same


@given(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4).flatmap(
    lambda s: st.tuples(st.just(s), hnp.arrays(np.bool_, s[:1]), hnp.arrays(np.bool_, s[1:2]),
                        st.slices(s[-1]))))
def test_boolean_masks_on_one_axis_with_slices(case):
    shape, first, second, last = case
    check_index(shape, (first, Ellipsis, last))
    check_index(shape, (slice(None, None, -1), None, second))


def test_boolean_mask_mixed_with_integer_array():
    mask = np.array([True, False, True])
    check_index((3, 4), (mask, [1, 1]))  # pairs: (0, 1) and (2, 1)
    check_index((3, 4), [True, False, True])  # a list of bools is a mask
    check_index((3, 4), (np.True_, 1))  # a 0-d mask adds an axis of size 1
    check_index((3, 4), (False, slice(None)))  # ... or of size 0


# ----------------------------------------------------------------------------------------------------
# getitem errors, item assignment

def test_getitem_errors():
    x = tg.zeros(3, 4)
    with pytest.raises(IndexError, match=r"getitem: index 5 is out of bounds for axis 0 with "
                                         r"size 3"):
        x[5]
    with pytest.raises(IndexError, match=r"getitem: index -5 is out of bounds for axis 1 with "
                                         r"size 4"):
        x[:, -5]
    with pytest.raises(IndexError, match=r"getitem: index 4 is out of bounds for axis 1 with "
                                         r"size 4"):
        x[..., [0, 4, 9]]
    with pytest.raises(IndexError, match=r"getitem: index 3 is out of bounds for axis 0"):
        x[tg.tensor([[0], [3]])]
    with pytest.raises(IndexError, match=r"getitem: too many indices for a tensor of shape "
                                         r"\(3, 4\): the index reads 3 axes"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"getitem: boolean index of shape \(2,\) does not match "
                                         r"axes 0..0 of the tensor of shape \(3, 4\) "
                                         r"\(sizes \(3,\)\)"):
        x[np.array([True, False])]
    with pytest.raises(IndexError, match=r"getitem: the index arrays have shapes \(2,\), \(3,\), "
                                         r"which cannot be broadcast together"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError, match=r"getitem: the index arrays have shapes \(2,\), \(3,\)"):
        x[[True, False, True], [0, 1, 2]]
    with pytest.raises(IndexError, match=r"getitem: index arrays must hold integers or booleans, "
                                         r"got dtype float32"):
        x[tg.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"getitem: only integers, slices, None, Ellipsis and "
                                         r"integer or boolean arrays/tensors are valid indices, "
                                         r"got float"):
        x[1.0]
    with pytest.raises(IndexError, match=r"getitem: an index can only have a single Ellipsis"):
        x[..., 0, ...]
    with pytest.raises(ValueError, match=r"getitem: slice step cannot be zero"):
        x[::0]


def test_setitem_is_refused():
    x = tg.zeros(3)
    with pytest.raises(TypeError, match=r"tensors are immutable in the autograd graph.*"
                                        r"tg.where\(mask, value, x\) or x.masked_fill"):
        x[0] = 1.0
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.0, 0.0])


# ----------------------------------------------------------------------------------------------------
# embedding

@given(st.integers(1, 6), st.integers(1, 4),
       hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3), st.data())
def test_embedding_gathers_rows_and_scatters_gradients(V, D, idx_shape, data):
    idx = data.draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(0, V - 1)))
    w = data_of((V, D))
    weight = tg.tensor(w, requires_grad=True)
    y = embedding(weight, tg.tensor(idx))
    assert y.shape == idx_shape + (D,)
    u = data_of(y.shape, seed=1)
    y.backward(u)
    expected_y = np.zeros(idx_shape + (D,))
    expected_grad = np.zeros((V, D))
    for pos in np.ndindex(*idx_shape):  # a plain loop over positions
        expected_y[pos] = w[idx[pos]]
        expected_grad[idx[pos]] += u[pos]
    np.testing.assert_array_equal(y.numpy(), expected_y)
    np.testing.assert_allclose(weight.grad.numpy(), expected_grad, atol=1e-12)
    assert gradcheck(lambda t: embedding(t, idx), leaf((V, D)))


def test_embedding_accepts_arrays_lists_and_keeps_float32():
    w = tg.randn(5, 3, requires_grad=True)
    y = embedding(w, [[4, 4], [0, 1]])
    assert y.shape == (2, 2, 3) and y.dtype == np.float32
    y.backward(np.ones((2, 2, 3), np.float32))
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1.0, 1.0, 0.0, 0.0, 2.0])
    assert embedding(w, np.array([2], np.int32)).shape == (1, 3)


def test_embedding_errors():
    w = tg.zeros(10, 3)
    with pytest.raises(IndexError, match=r"embedding: index 12 is out of range for 10 embeddings "
                                         r"\(valid: 0..9\)"):
        embedding(w, tg.tensor([1, 12, 3]))
    with pytest.raises(IndexError, match=r"embedding: index -1 is out of range for 10 embeddings"):
        embedding(w, [[0, -1]])
    with pytest.raises(TypeError, match=r"embedding: indices must be integers, got dtype float32"):
        embedding(w, tg.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"embedding: indices must be integers, got dtype bool"):
        embedding(w, np.array([True]))
    with pytest.raises(ValueError, match=r"embedding: weight must be 2-D \(num_embeddings, "
                                         r"embedding_dim\), got shape \(10,\)"):
        embedding(tg.zeros(10), [0])
    with pytest.raises(TypeError, match=r"embedding: weight must be a Tensor, got ndarray"):
        embedding(np.zeros((10, 3)), [0])


# ----------------------------------------------------------------------------------------------------
# masked_fill

@st.composite
def masked_fill_cases(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    # the mask's shape: a suffix of x's shape with some sides turned into 1 (broadcasts to x)
    suffix = shape[draw(st.integers(0, len(shape))):]
    mask_shape = tuple(1 if draw(st.booleans()) else n for n in suffix)
    mask = draw(hnp.arrays(np.bool_, mask_shape))
    value = draw(st.sampled_from([0.0, -1.5, 7.0, float("-inf")]))
    return shape, mask, value


@given(masked_fill_cases())
def test_masked_fill_forward_and_gradient(case):
    shape, mask, value = case
    x = data_of(shape)
    t = tg.tensor(x, requires_grad=True)
    y = t.masked_fill(tg.tensor(mask), value)
    full = np.broadcast_to(mask, shape)
    expected = x.copy()
    expected[full] = value
    np.testing.assert_array_equal(y.numpy(), expected)
    u = data_of(shape, seed=1)
    y.backward(u)
    np.testing.assert_array_equal(t.grad.numpy(), np.where(full, 0.0, u))
    if np.isfinite(value):  # finite differences of a sum holding -inf are NaN: nothing to compare
        assert gradcheck(lambda a: tg.masked_fill(a, mask, value), leaf(shape))


def test_masked_fill_causal_mask_with_minus_inf_passes_anomaly_mode():
    T = 4
    scores = tg.randn(2, T, T, requires_grad=True)
    causal = tg.tril(tg.ones(T, T))
    with tg.detect_anomaly():
        y = scores.masked_fill(causal == 0, float("-inf"))
        y.backward(np.ones((2, T, T), np.float32))
    assert y.dtype == np.float32
    assert np.isneginf(y.numpy()[0]).sum() == T * (T - 1) // 2
    np.testing.assert_array_equal(scores.grad.numpy()[1], np.tril(np.ones((T, T))))


def test_masked_fill_errors():
    x = tg.zeros(3, 4)
    with pytest.raises(TypeError, match=r"masked_fill: mask must be a boolean tensor, got dtype "
                                        r"float32"):
        x.masked_fill(tg.ones(3, 4), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(2, 3, 4\) cannot be "
                                         r"broadcast to the tensor's shape \(3, 4\)"):
        x.masked_fill(np.zeros((2, 3, 4), bool), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(3,\) cannot be broadcast"):
        x.masked_fill(np.zeros(3, bool), 0.0)
    with pytest.raises(TypeError, match=r"masked_fill: value must be a number, got list"):
        x.masked_fill(np.zeros(4, bool), [1.0])
    with pytest.raises(ValueError, match=r"masked_fill: value must be a number or a one-element "
                                         r"tensor, got shape \(2,\)"):
        x.masked_fill(np.zeros(4, bool), tg.zeros(2))
    with pytest.raises(TypeError, match=r"masked_fill: cannot fill a tensor of dtype int64 with "
                                        r"-inf"):
        tg.arange(3).masked_fill(np.ones(3, bool), float("-inf"))


# ----------------------------------------------------------------------------------------------------
# tril, triu

def triangle_loop(x, k, lower):
    out = np.zeros_like(x)
    for pos in np.ndindex(*x.shape):
        i, j = pos[-2:]
        if (j <= i + k) if lower else (j >= i + k):
            out[pos] = x[pos]
    return out


@given(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4), st.integers(-4, 4),
       st.booleans())
def test_tril_triu_forward_and_gradient(shape, k, lower):
    op = tg.tril if lower else tg.triu
    x = data_of(shape)
    expected = triangle_loop(x, k, lower)
    np.testing.assert_array_equal(op(tg.tensor(x), k).numpy(), expected)
    np.testing.assert_array_equal(expected, (np.tril if lower else np.triu)(x, k))
    method = tg.tensor(x).tril(k) if lower else tg.tensor(x).triu(k=k)
    np.testing.assert_array_equal(method.numpy(), expected)
    t = tg.tensor(x, requires_grad=True)
    u = data_of(shape, seed=1)
    op(t, k).backward(u)
    np.testing.assert_array_equal(t.grad.numpy(), triangle_loop(u, k, lower))
    assert gradcheck(lambda a: op(a, k), leaf(shape))


def test_tril_of_ones_is_the_causal_mask():
    m = tg.tril(tg.ones(3, 3))
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m.numpy(), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    assert tg.triu(tg.tensor(np.ones((2, 2), bool)), 1).numpy().tolist() == [[False, True],
                                                                             [False, False]]


def test_tril_triu_errors():
    with pytest.raises(ValueError, match=r"tril: expected a tensor with at least 2 dimensions "
                                         r"\(the last two are the matrix\), got shape \(3,\)"):
        tg.tril(tg.zeros(3))
    with pytest.raises(TypeError, match=r"triu: the diagonal offset k must be an integer, got 0.5"):
        tg.zeros(3, 3).triu(0.5)


# ----------------------------------------------------------------------------------------------------
# GPU: the same ops on CuPy arrays (cupyx.scatter_add) against the CPU

@pytest.mark.gpu
def test_indexing_on_cuda_matches_cpu():
    x = data_of((4, 5))
    u = data_of((3, 2), seed=1)
    mask = x > 0
    grads = {}
    for device in ("cpu", "cuda"):
        t = tg.tensor(x, requires_grad=True, device=device)
        y = t[[0, 0, 3], 1::2]
        y.backward(tg.tensor(u, device=device))
        assert y.device == device and t.grad.device == device
        z = t[tg.tensor(mask, device=device)]
        w = tg.tensor(x, requires_grad=True, device=device)
        e = embedding(w, tg.tensor([[3, 3], [0, 1]], device=device))
        e.backward(tg.ones(*e.shape, dtype=np.float64, device=device))
        f = tg.tril(t, -1).masked_fill(tg.tensor(mask, device=device), -1.0)
        grads[device] = [y.numpy(), t.grad.numpy(), z.numpy(), e.numpy(), w.grad.numpy(),
                         f.numpy()]
    for a, b in zip(grads["cpu"], grads["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.gpu
def test_index_tensor_on_another_device_is_an_error():
    x = tg.zeros(3, 4, device="cuda")
    with pytest.raises(RuntimeError, match=r"getitem: the index is on cpu but the tensor is on "
                                           r"cuda; move it with .to\('cuda'\) first"):
        x[tg.tensor([0, 1])]
