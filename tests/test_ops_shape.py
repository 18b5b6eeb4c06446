"""Shape ops: reshape, transpose/permute/T/swapaxes, broadcast_to/expand, squeeze/expand_dims/
unsqueeze/flatten, concatenate/cat/stack, split/chunk.

Forward results are held to plain NumPy (or a loop); gradients to finite differences (gradcheck)
and, for the joins, to the slice of the upstream gradient each input must receive.
"""
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_pt as tg
from tinygrad_pt.testing import gradcheck

SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
SMALL_SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


def data_of(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def leaf(shape, seed=0):
    return tg.tensor(data_of(shape, seed), requires_grad=True)


# ----------------------------------------------------------------------------------------------------
# reshape

@st.composite
def reshape_cases(draw):
    """A shape and a different arrangement of the same size: its sides shuffled, 1s inserted,
    and maybe one side replaced by -1."""
    shape = draw(SHAPES)
    sides = draw(st.permutations(list(shape)))
    for _ in range(draw(st.integers(0, 2))):
        sides.insert(draw(st.integers(0, len(sides))), 1)
    target = list(sides)
    if target and draw(st.booleans()):
        k = draw(st.integers(0, len(target) - 1))
        others = math.prod(n for i, n in enumerate(target) if i != k)
        if others > 0:
            target[k] = -1
    return shape, tuple(sides), tuple(target)


@given(reshape_cases())
def test_reshape_forward_and_gradient(case):
    shape, expected_shape, target = case
    x = data_of(shape)
    y = tg.tensor(x).reshape(target)
    assert y.shape == expected_shape
    np.testing.assert_array_equal(y.numpy().ravel(), x.ravel())  # C order is kept
    assert gradcheck(lambda t: t.reshape(target), leaf(shape))


def test_reshape_accepts_ints_tuple_and_list():
    x = tg.arange(6)
    assert x.reshape(2, 3).shape == x.reshape((2, 3)).shape == x.reshape([2, 3]).shape == (2, 3)
    assert tg.reshape(x, 3, -1).shape == (3, 2)
    assert tg.arange(1).reshape(()).shape == ()
    assert tg.tensor(5.0).reshape(-1).shape == (1,)


def test_reshape_keeps_float32_through_backward():
    x = tg.randn(2, 3, requires_grad=True)
    x.reshape(3, 2).backward(np.ones((3, 2), np.float32))
    assert x.grad.dtype == np.float32 and x.grad.shape == (2, 3)


def test_reshape_errors():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape tensor of shape \(2, 3\) "
                                         r"\(6 elements\) into \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape .* into \(4, -1\)"):
        x.reshape(4, -1)
    with pytest.raises(ValueError, match=r"reshape: the new shape \(-1, -1\) may hold one -1"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match=r"may hold one -1 and otherwise sizes >= 0"):
        x.reshape(-2, -3)
    with pytest.raises(TypeError, match=r"reshape: shape must be integers, got \(2.0, 3\)"):
        x.reshape(2.0, 3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape tensor of shape \(0, 3\)"):
        tg.zeros(0, 3).reshape(0, -1)  # -1 is ambiguous when the other sides multiply to 0


# ----------------------------------------------------------------------------------------------------
# transpose, permute, T, swapaxes

@given(SHAPES.flatmap(lambda s: st.tuples(st.just(s), st.permutations(range(len(s))))),
       st.booleans())
def test_transpose_permutes_like_numpy(case, negative):
    shape, perm = case
    axes = tuple(a - len(shape) for a in perm) if negative else tuple(perm)
    x = data_of(shape)
    np.testing.assert_array_equal(tg.tensor(x).transpose(*axes).numpy(), np.transpose(x, perm))
    np.testing.assert_array_equal(tg.tensor(x).permute(axes).numpy(), np.transpose(x, perm))
    np.testing.assert_array_equal(tg.transpose(tg.tensor(x), axes).numpy(), np.transpose(x, perm))
    assert gradcheck(lambda t: t.transpose(axes), leaf(shape))


@given(SHAPES)
def test_no_argument_transpose_and_T_reverse_the_axes(shape):
    x = data_of(shape)
    np.testing.assert_array_equal(tg.tensor(x).T.numpy(), x.T)
    np.testing.assert_array_equal(tg.tensor(x).transpose().numpy(), x.T)
    np.testing.assert_array_equal(tg.tensor(x).transpose(None).numpy(), x.T)


def test_transpose_loop_oracle_and_gradient_of_T():
    x = data_of((2, 3, 4))
    y = tg.tensor(x).transpose(1, 2, 0).numpy()
    for i in range(2):
        for j in range(3):
            for k in range(4):
                assert y[j, k, i] == x[i, j, k]
    t = leaf((2, 3, 4))
    u = data_of((3, 4, 2), seed=1)
    t.transpose(1, 2, 0).backward(u)  # a 3-cycle: its inverse is not itself
    for i in range(2):
        for j in range(3):
            for k in range(4):
                assert t.grad.numpy()[i, j, k] == u[j, k, i]
    w = leaf((3, 2))
    u = data_of((2, 3), seed=1)
    w.T.backward(u)
    np.testing.assert_array_equal(w.grad.numpy(), u.T)


@given(SMALL_SHAPES, st.data())
def test_swapaxes(shape, data):
    a = data.draw(st.integers(-len(shape), len(shape) - 1))
    b = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data_of(shape)
    np.testing.assert_array_equal(tg.swapaxes(tg.tensor(x), a, b).numpy(), np.swapaxes(x, a, b))
    assert gradcheck(lambda t: t.swapaxes(a, b), leaf(shape))


def test_transpose_errors():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) are not a permutation of "
                                         r"the 2 axes of a tensor of shape \(2, 3\)"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 1, 2\) are not a permutation"):
        x.transpose(0, 1, 2)
    with pytest.raises(ValueError, match=r"transpose: axes \(2, 0\)"):
        x.permute(2, 0)
    with pytest.raises(ValueError, match=r"swapaxes: axis 2 is out of range for a tensor with 2"):
        x.swapaxes(0, 2)
    with pytest.raises(TypeError, match=r"swapaxes: axis must be an integer, got 0.5"):
        x.swapaxes(0.5, 1)


# ----------------------------------------------------------------------------------------------------
# broadcast_to, expand

@st.composite
def broadcast_cases(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
    kept = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    return shape, lead + kept


@given(broadcast_cases())
def test_broadcast_to_forward_and_gradient(case):
    shape, target = case
    x = data_of(shape)
    y = tg.broadcast_to(tg.tensor(x), target)
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(x, target))
    assert gradcheck(lambda t: t.broadcast_to(target), leaf(shape))


def test_broadcast_gradient_sums_the_copies():
    x = leaf((3, 1))
    u = data_of((2, 3, 4), seed=1)
    x.broadcast_to((2, 3, 4)).backward(u)
    expected = np.zeros((3, 1))
    for i in range(2):
        for j in range(3):
            for k in range(4):
                expected[j, 0] += u[i, j, k]
    np.testing.assert_allclose(x.grad.numpy(), expected)


@given(broadcast_cases(), st.data())
def test_expand_keeps_sides_given_as_minus_one(case, data):
    shape, target = case
    lead = len(target) - len(shape)
    sizes = target[:lead] + tuple(-1 if n == s and data.draw(st.booleans()) else n
                                  for s, n in zip(shape, target[lead:]))
    x = data_of(shape)
    y = tg.tensor(x).expand(*sizes)
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(x, target))
    assert gradcheck(lambda t: t.expand(sizes), leaf(shape))


def test_broadcast_errors():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast a tensor of shape "
                                         r"\(2, 3\) to \(4, 3\)"):
        x.broadcast_to((4, 3))
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast .* to \(3,\)"):
        tg.broadcast_to(x, 3)
    with pytest.raises(ValueError, match=r"expand: cannot broadcast a tensor of shape \(2, 3\) "
                                         r"to \(2, 5\)"):
        x.expand(2, 5)
    with pytest.raises(ValueError, match=r"expand: cannot expand a tensor of shape \(2, 3\) to "
                                         r"\(-1, 2, 3\).*-1 only for an existing axis"):
        x.expand(-1, 2, 3)
    with pytest.raises(ValueError, match=r"expand: cannot expand .* to \(3,\)"):
        x.expand(3)


# ----------------------------------------------------------------------------------------------------
# squeeze, expand_dims, unsqueeze, flatten

@given(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3), st.data())
def test_squeeze_like_numpy(shape, data):
    x = data_of(shape)
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(ones), unique=True)
                               .map(tuple))) if ones else None
    expected = np.squeeze(x, axis=axis)
    np.testing.assert_array_equal(tg.squeeze(tg.tensor(x), axis).numpy(), expected)
    assert tg.tensor(x).squeeze(axis).shape == expected.shape
    assert gradcheck(lambda t: t.squeeze(axis), leaf(shape))


@given(SHAPES, st.data())
def test_expand_dims_and_unsqueeze(shape, data):
    x = data_of(shape)
    out_ndim = len(shape) + 1
    axis = data.draw(st.integers(-out_ndim, out_ndim - 1))
    np.testing.assert_array_equal(tg.tensor(x).expand_dims(axis).numpy(), np.expand_dims(x, axis))
    np.testing.assert_array_equal(tg.unsqueeze(tg.tensor(x), axis).numpy(),
                                  np.expand_dims(x, axis))
    two = tuple(data.draw(st.lists(st.integers(0, len(shape) + 1), min_size=2, max_size=2,
                                   unique=True)))
    np.testing.assert_array_equal(tg.expand_dims(tg.tensor(x), two).numpy(),
                                  np.expand_dims(x, two))
    if all(n > 0 for n in shape):
        assert gradcheck(lambda t: t.unsqueeze(axis), leaf(shape))


@given(SMALL_SHAPES, st.data())
def test_flatten_merges_an_axis_range(shape, data):
    n = len(shape)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start, n - 1))
    x = data_of(shape)
    expected_shape = shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]
    y = tg.tensor(x).flatten(start, end - n if data.draw(st.booleans()) else end)
    assert y.shape == expected_shape
    np.testing.assert_array_equal(y.numpy().ravel(), x.ravel())
    assert gradcheck(lambda t: tg.flatten(t, start, end), leaf(shape))


def test_flatten_defaults_and_0d():
    assert tg.zeros(2, 3, 4).flatten().shape == (24,)
    assert tg.zeros(2, 3, 4).flatten(1).shape == (2, 12)
    assert tg.tensor(3.0).flatten().shape == (1,)  # as PyTorch


def test_squeeze_expand_dims_flatten_errors():
    x = tg.zeros(2, 1, 3)
    with pytest.raises(ValueError, match=r"squeeze: cannot squeeze axis 2 of a tensor of shape "
                                         r"\(2, 1, 3\): its size is 3, not 1"):
        x.squeeze(2)
    with pytest.raises(ValueError, match=r"squeeze: axis 5 is out of range"):
        x.squeeze(5)
    with pytest.raises(ValueError, match=r"expand_dims: axis 4 is out of range for a tensor "
                                         r"with 4 dimension"):
        x.expand_dims(4)
    with pytest.raises(ValueError, match=r"expand_dims: axis \(0, 0\) repeats an axis"):
        x.expand_dims((0, 0))
    with pytest.raises(ValueError, match=r"unsqueeze: axis -5 is out of range"):
        x.unsqueeze(-5)
    with pytest.raises(ValueError, match=r"flatten: start_axis 2 comes after end_axis 1"):
        x.flatten(2, 1)


# ----------------------------------------------------------------------------------------------------
# concatenate, cat, stack

@st.composite
def concat_cases(draw):
    ndim = draw(st.integers(1, 3))
    base = list(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    shapes = []
    for n in sizes:
        s = list(base)
        s[axis] = n
        shapes.append(tuple(s))
    return shapes, axis


@given(concat_cases())
def test_concatenate_forward_and_gradient_per_input(case):
    shapes, axis = case
    xs = [data_of(s, seed=i) for i, s in enumerate(shapes)]
    leaves = [leaf(s, seed=i) for i, s in enumerate(shapes)]
    y = tg.concatenate(leaves, axis=axis)
    np.testing.assert_array_equal(y.numpy(), np.concatenate(xs, axis=axis))
    u = data_of(y.shape, seed=9)
    y.backward(u)
    start, ax = 0, axis % len(shapes[0])
    for t, s in zip(leaves, shapes):
        index = [slice(None)] * len(s)
        index[ax] = slice(start, start + s[ax])
        np.testing.assert_array_equal(t.grad.numpy(), u[tuple(index)])
        start += s[ax]
    assert gradcheck(lambda *ts: tg.cat(list(ts), axis),
                     *[leaf(s, i) for i, s in enumerate(shapes)])


def test_concatenate_gives_no_gradient_to_constants():
    a, b = leaf((2, 2)), tg.zeros(2, 3, dtype=np.float64)
    tg.concatenate((a, b), axis=1).backward(np.ones((2, 5)))
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 2)))
    assert b.grad is None


def test_cat_accepts_dim_and_arrays():
    a = tg.ones(2, 3)
    assert tg.cat([a, np.zeros((2, 1), np.float32)], dim=1).shape == (2, 4)
    assert tg.stack([a, a], dim=2).shape == (2, 3, 2)


@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), st.integers(1, 3),
       st.data())
def test_stack_forward_and_gradient_per_input(shape, n, data):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    xs = [data_of(shape, seed=i) for i in range(n)]
    leaves = [leaf(shape, seed=i) for i in range(n)]
    y = tg.stack(leaves, axis=axis)
    np.testing.assert_array_equal(y.numpy(), np.stack(xs, axis=axis))
    u = data_of(y.shape, seed=9)
    y.backward(u)
    for i, t in enumerate(leaves):
        np.testing.assert_array_equal(t.grad.numpy(), np.take(u, i, axis=axis))
    assert gradcheck(lambda *ts: tg.stack(ts, axis), *[leaf(shape, i) for i in range(n)])


def test_concatenate_and_stack_errors():
    a, b = tg.zeros(2, 3), tg.zeros(2, 4)
    with pytest.raises(ValueError, match=r"concatenate: tensor 1 has shape \(2, 4\) but tensor 0 "
                                         r"has \(2, 3\); all axes except axis 0 must match"):
        tg.concatenate([a, b])
    with pytest.raises(ValueError, match=r"concatenate: tensor 1 has shape \(2, 3, 1\) but tensor "
                                         r"0 has \(2, 3\); they must have the same number of axes"):
        tg.cat([a, tg.zeros(2, 3, 1)], axis=1)
    with pytest.raises(ValueError, match=r"concatenate: 0-d tensors cannot be concatenated"):
        tg.concatenate([tg.tensor(1.0), tg.tensor(2.0)])
    with pytest.raises(ValueError, match=r"concatenate: need at least one tensor"):
        tg.concatenate([])
    with pytest.raises(TypeError, match=r"concatenate: expected a list or tuple of tensors, got "
                                        r"Tensor"):
        tg.concatenate(a)
    with pytest.raises(ValueError, match=r"concatenate: axis 2 is out of range for a tensor with "
                                         r"2 dimension"):
        tg.concatenate([a, a], axis=2)
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape \(2, 4\) but tensor 0 has "
                                         r"\(2, 3\); all tensors must have the same shape"):
        tg.stack([a, b])
    with pytest.raises(ValueError, match=r"stack: axis 3 is out of range for a tensor with 3"):
        tg.stack([a, a], axis=3)


# ----------------------------------------------------------------------------------------------------
# split, chunk

@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), st.data())
def test_split_into_equal_sections(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    sections = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    x = data_of(shape)
    pieces = tg.split(tg.tensor(x), sections, axis=axis)
    expected = np.split(x, sections, axis=axis)
    assert len(pieces) == sections
    for p, e in zip(pieces, expected):
        np.testing.assert_array_equal(p.numpy(), e)
    weights = [float(i + 1) for i in range(sections)]  # tell the pieces apart in the gradient
    assert gradcheck(lambda t: tg.concatenate(
        [p * w for p, w in zip(t.split(sections, axis), weights)], axis), leaf(shape))


@given(st.integers(0, 6), st.lists(st.integers(-8, 8), max_size=4))
def test_split_at_points_like_numpy(n, points):
    x = data_of((n, 2))
    pieces = tg.tensor(x).split(points)
    expected = np.split(x, points)
    assert [p.shape for p in pieces] == [e.shape for e in expected]
    for p, e in zip(pieces, expected):
        np.testing.assert_array_equal(p.numpy(), e)
    if n:
        assert gradcheck(lambda t: tg.concatenate(
            [p * float(i + 1) for i, p in enumerate(tg.split(t, points))]), leaf((n, 2)))


def test_split_pieces_send_gradient_back_to_their_slices():
    x = leaf((5, 2))
    a, b, c = x.split([1, 3])
    (a.sum() * 1.0 + b.sum() * 2.0 + c.sum() * 3.0).backward()
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], [1, 2, 2, 3, 3])


def chunk_sizes(n, chunks):
    """PyTorch's chunk sizes, written as a loop: take ceil(n / chunks) until nothing is left."""
    if n == 0:
        return [0] * chunks
    size, sizes, left = -(-n // chunks), [], n
    while left > 0:
        sizes.append(min(size, left))
        left -= sizes[-1]
    return sizes


@given(st.integers(0, 7), st.integers(1, 5), st.integers(0, 1))
def test_chunk_piece_sizes_like_pytorch(n, chunks, axis):
    shape = (n, 3) if axis == 0 else (3, n)
    x = data_of(shape)
    pieces = tg.tensor(x).chunk(chunks, axis=axis)
    assert [p.shape[axis] for p in pieces] == chunk_sizes(n, chunks)
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in pieces], axis=axis), x)
    if n:
        assert gradcheck(lambda t: tg.concatenate(
            [p * float(i + 1) for i, p in enumerate(tg.chunk(t, chunks, axis))], axis),
            leaf(shape))


@pytest.mark.torch
@given(st.integers(0, 7), st.integers(1, 5))
def test_chunk_matches_torch(n, chunks):
    torch = pytest.importorskip("torch")
    expected = [tuple(p.shape) for p in torch.zeros(2, n).chunk(chunks, dim=1)]
    assert [p.shape for p in tg.zeros(2, n).chunk(chunks, dim=1)] == expected


def test_split_and_chunk_errors():
    x = tg.zeros(5, 2)
    with pytest.raises(ValueError, match=r"split: axis 0 of size 5 cannot be split into 2 equal "
                                         r"sections; pass split points \(a list\) or use chunk"):
        x.split(2)
    with pytest.raises(ValueError, match=r"split: the number of sections must be positive, got 0"):
        tg.split(x, 0)
    with pytest.raises(TypeError, match=r"split: split points must be integers"):
        x.split([1.5])
    with pytest.raises(ValueError, match=r"split: axis 2 is out of range"):
        x.split(1, axis=2)
    with pytest.raises(ValueError, match=r"chunk: the number of chunks must be a positive "
                                         r"integer, got 0"):
        x.chunk(0)
    with pytest.raises(ValueError, match=r"chunk: axis -3 is out of range"):
        tg.chunk(x, 2, axis=-3)
