"""PyTorch's spellings (issue 18): each alias against the same call in PyTorch (float64, values
and every input gradient for a random upstream gradient), skipped where torch is absent; then
the traps where NumPy's meaning is the contract, each made loud with the exact message."""
import math
import re
import warnings

import numpy as np
import pytest

import tinygrad_pt as tg

RNG = np.random.default_rng(18)


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def compare(fn_ours, fn_torch, *arrays, rtol=1e-10, atol=1e-12):
    """Both calls on the same float64 inputs: equal values, equal gradients of every input."""
    torch = pytest.importorskip("torch")
    ours = [tg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    y, yt = fn_ours(*ours), fn_torch(*theirs)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    u = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(u)
    yt.backward(torch.tensor(u))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        want = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape) if a.grad is None else a.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"gradient {i}")


# ----------------------------------------------------------------------------------------------------
# dim= and keepdim= on the reductions (the same meaning as axis= and keepdims=)

@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "logsumexp"])
@pytest.mark.parametrize("dim, keepdim", [(1, False), (-1, True), ((0, 2), True), ((0, 1), False)])
def test_reductions_take_dim_and_keepdim_as_torch(name, dim, keepdim):
    x = data(2, 3, 4)
    compare(lambda t: getattr(t, name)(dim=dim, keepdim=keepdim),
            lambda t: getattr(t, name)(dim=dim, keepdim=keepdim), x)
    # and the tg.* function is the same one
    np.testing.assert_array_equal(getattr(tg, name)(tg.tensor(x), dim=dim, keepdim=keepdim).numpy(),
                                  getattr(tg.tensor(x), name)(axis=dim, keepdims=keepdim).numpy())


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_and_std_take_torch_correction_and_unbiased(name):
    x = data(3, 5)
    compare(lambda t: getattr(t, name)(dim=1, correction=1), lambda t: getattr(t, name)(dim=1), x)
    compare(lambda t: getattr(t, name)(dim=0, keepdim=True, unbiased=False),
            lambda t: getattr(t, name)(dim=0, keepdim=True, unbiased=False), x)
    compare(lambda t: getattr(t, name)(1, ddof=0), lambda t: getattr(t, name)(1, correction=0), x)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_take_dim_and_keepdim(name):
    torch = pytest.importorskip("torch")
    x = data(3, 4)
    got = getattr(tg.tensor(x), name)(dim=1, keepdim=True).numpy()
    want = getattr(torch.tensor(x), name)(dim=1, keepdim=True).numpy()
    np.testing.assert_array_equal(got, want)


def test_any_all_softmax_squeeze_unsqueeze_flatten_take_torch_keywords():
    torch = pytest.importorskip("torch")
    x = data(2, 1, 3)
    b = x > 0
    np.testing.assert_array_equal(tg.tensor(b).any(dim=2, keepdim=True).numpy(),
                                  torch.tensor(b).any(dim=2, keepdim=True).numpy())
    np.testing.assert_array_equal(tg.tensor(b).all(dim=0).numpy(),
                                  torch.tensor(b).all(dim=0).numpy())
    compare(lambda t: t.softmax(dim=0), lambda t: t.softmax(dim=0), x)
    compare(lambda t: t.log_softmax(dim=-1), lambda t: t.log_softmax(dim=-1), x)
    compare(lambda t: t.squeeze(dim=1), lambda t: t.squeeze(dim=1), x)
    compare(lambda t: t.unsqueeze(dim=-1), lambda t: t.unsqueeze(dim=-1), x)
    compare(lambda t: t.flatten(start_dim=1), lambda t: t.flatten(start_dim=1), x)
    compare(lambda t: t.flatten(end_dim=1), lambda t: t.flatten(end_dim=1), x)


def test_giving_a_keyword_and_its_alias_is_refused():
    x = tg.zeros(2, 3)
    with pytest.raises(TypeError, match=r"sum: give axis or its alias dim, not both \(got axis=0, "
                                        r"dim=1\)"):
        x.sum(axis=0, dim=1)
    with pytest.raises(TypeError, match=r"mean: give keepdims or its alias keepdim, not both"):
        x.mean(0, keepdims=True, keepdim=True)
    with pytest.raises(TypeError, match=r"var: give one of ddof, correction and unbiased, got "
                                        r"ddof=1, correction=1"):
        x.var(0, ddof=1, correction=1)


# ----------------------------------------------------------------------------------------------------
# max/min: values only with NumPy's spellings, PyTorch's pair with PyTorch's

def test_max_with_numpy_spellings_gives_the_values_only():
    x = tg.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert isinstance(x.max(1), tg.Tensor) and x.max(1).tolist() == [5.0, 7.0]
    assert x.max(axis=0, keepdims=True).tolist() == [[7.0, 5.0]]
    assert x.min().item() == 1.0


PAIR_CALLS = {  # our spelling -> torch's call giving the same (values, indices)
    "dim": (lambda f: f(dim=1), lambda f: f(dim=1)),
    "dim_keepdim": (lambda f: f(dim=-1, keepdim=True), lambda f: f(dim=-1, keepdim=True)),
    "positional_keepdim": (lambda f: f(0, keepdim=True), lambda f: f(0, keepdim=True)),
    "return_indices": (lambda f: f(0, return_indices=True), lambda f: f(0)),
}


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("call", sorted(PAIR_CALLS))
def test_max_min_with_torch_spellings_give_values_and_indices_as_torch(name, call):
    torch = pytest.importorskip("torch")
    x = data(3, 4, seed=2)
    ours, theirs = PAIR_CALLS[call]
    t, tt = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, want = ours(getattr(t, name)), theirs(getattr(tt, name))
    assert type(got).__name__ == name and got._fields == ("values", "indices")
    values, indices = got  # unpacks as PyTorch's torch.return_types.max
    np.testing.assert_array_equal(values.numpy(), want.values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    assert indices.dtype == np.int64
    u = RNG.standard_normal(values.shape)
    got.values.backward(u)
    want.values.backward(torch.tensor(u))
    np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


def test_max_pair_errors():
    x = tg.zeros(2, 3)
    with pytest.raises(TypeError, match=r"max: with dim= the result is the pair \(values, "
                                        r"indices\) over one axis, so give one int axis, got "
                                        r"\(0, 1\); for the values over several axes use "
                                        r"max\(axis=...\) or amax"):
        x.max(dim=(0, 1))
    with pytest.raises(TypeError, match=r"min: with return_indices=True the result is the pair "
                                        r"\(values, indices\) over one axis, so give one int axis, "
                                        r"got None"):
        x.min(return_indices=True)
    with pytest.raises(TypeError, match=r"max: got a Tensor where an axis was expected; the "
                                        r"elementwise maximum of two tensors is tg.maximum\(a, b\) "
                                        r"\(torch.max\(a, b\)\)"):
        x.max(tg.ones(2, 3))


def test_values_of_a_plain_tensor_says_what_max_returned():
    with pytest.raises(AttributeError, match=re.escape(
            "'Tensor' object has no attribute 'values': x.max(axis) and x.min(axis) return the "
            "values only (NumPy's meaning); for PyTorch's (values, indices) write x.max(dim=...) "
            "or x.max(axis, return_indices=True)")):
        tg.zeros(2, 3).max(1).values
    with pytest.raises(AttributeError, match="no attribute 'indices'"):
        tg.zeros(2, 3).min(0).indices


def test_var_with_torch_spelling_and_no_correction_is_refused():
    # PyTorch's x.var(dim=0) divides by n - 1, NumPy's default by n: no silent choice.
    with pytest.raises(ValueError, match=re.escape(
            "var: PyTorch's var(dim=...) divides by n - 1 but this library's default (NumPy's) "
            "divides by n; say which: correction=1 (PyTorch's default) or ddof=0")):
        tg.zeros(2, 3).var(dim=0)
    with pytest.raises(ValueError, match=r"std: PyTorch's std\(dim=...\) divides by n - 1"):
        tg.zeros(2, 3).std(0, keepdim=True)
    assert tg.tensor([1.0, 3.0]).var().item() == 1.0  # NumPy's spelling: NumPy's ddof=0


# ----------------------------------------------------------------------------------------------------
# transpose: NumPy's permutation, PyTorch's swap where two axes cannot be a permutation

@pytest.mark.parametrize("shape, a, b", [((2, 3, 4), 1, 2), ((2, 3, 4), -2, -1),
                                         ((2, 3, 4, 5), 0, 3), ((4,), 0, 0), ((4,), -1, 0)])
def test_transpose_of_two_axes_swaps_them_as_torch_off_2d(shape, a, b):
    compare(lambda t: t.transpose(a, b), lambda t: t.transpose(a, b), data(*shape))
    compare(lambda t: tg.transpose(t, dim0=a, dim1=b), lambda t: t.transpose(a, b), data(*shape))


def test_transpose_on_2d():
    x = data(2, 3)
    compare(lambda t: t.transpose(1, 0), lambda t: t.transpose(1, 0), x)  # both mean a swap
    compare(lambda t: t.transpose(dim0=0, dim1=1), lambda t: t.transpose(0, 1), x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tg.tensor(x).transpose((0, 1)).shape == (2, 3)  # the tuple: silently NumPy's
        assert tg.tensor(x).permute(0, 1).shape == (2, 3)  # permute has one meaning
    with pytest.warns(UserWarning, match=re.escape(
            "transpose: axes (0, 1) on a 2-D tensor are NumPy's identity permutation (this "
            "library's transpose), not PyTorch's swap of the two axes; write x.T or "
            "x.swapaxes(0, 1) to swap, or x.transpose((0, 1)) for the identity without this "
            "warning")):
        y = tg.tensor(x).transpose(0, 1)
    np.testing.assert_array_equal(y.numpy(), x)  # the contract: NumPy's meaning


def test_transpose_errors_name_what_was_wrong():
    with pytest.raises(TypeError, match=re.escape(
            "transpose: dim0= and dim1= (PyTorch's swap of two axes) go together and without "
            "positional axes, got axes (), dim0=0, dim1=None")):
        tg.zeros(2, 3).transpose(dim0=0)
    with pytest.raises(ValueError, match=r"transpose: axis 3 is out of range for a tensor with 3 "
                                         r"dimension\(s\)"):
        tg.zeros(2, 3, 4).transpose(0, 3)
    with pytest.raises(ValueError, match=r"transpose: axes \(1, 2\) are not a permutation of "
                                         r"the 3"):
        tg.zeros(2, 3, 4).permute(1, 2)  # permute never swaps


# ----------------------------------------------------------------------------------------------------
# split: NumPy's count positionally, PyTorch's piece sizes with PyTorch's keywords

@pytest.mark.parametrize("n, arg", [(384, 128), (10, 3), (10, [2, 3, 5]), (6, [6, 0]), (0, 2)])
def test_split_with_torch_keywords_cuts_pieces_as_torch(n, arg):
    torch = pytest.importorskip("torch")
    x = data(2, n, 3)
    for kwargs in (dict(split_size_or_sections=arg, dim=1), dict(split_size_or_sections=arg,
                                                                 axis=1)):
        t = tg.tensor(x, requires_grad=True)
        tt = torch.tensor(x, requires_grad=True)
        ours, theirs = t.split(**kwargs), tt.split(arg, dim=1)
        assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
        for p, q in zip(ours, theirs):
            np.testing.assert_array_equal(p.numpy(), q.detach().numpy())
        if ours:
            (ours[0] * 2).sum().backward()
            (theirs[0] * 2).sum().backward()
            np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())
    assert [p.shape for p in tg.split(tg.tensor(x), arg, dim=1)] == [tuple(p.shape) for p in theirs]


def test_the_issue_qkv_split():
    qkv = tg.zeros(2, 5, 3 * 128)
    q, k, v = qkv.split(128, dim=2)
    assert q.shape == k.shape == v.shape == (2, 5, 128)
    assert len(qkv.split(128, 2)) == 128  # positional: NumPy's meaning, 128 pieces of 3


def test_split_errors():
    x = tg.zeros(2, 380)
    with pytest.raises(ValueError, match=re.escape(
            "split: axis 1 of size 380 cannot be split into 128 equal sections; pass split points "
            "(a list) or use chunk (NumPy's meaning: the int counts the pieces); for pieces of "
            "size 128, as torch.split cuts them, pass dim=1")):
        x.split(128, 1)
    with pytest.raises(ValueError, match=re.escape(
            "split: the sizes [100, 200] sum to 300, but axis 1 has size 380 (PyTorch's "
            "split_size_or_sections: the sizes of the pieces)")):
        x.split([100, 200], dim=1)
    with pytest.raises(ValueError, match=r"split: the size of each piece \(PyTorch's split_size\) "
                                         r"must be positive, got 0"):
        x.split(0, dim=1)
    with pytest.raises(TypeError, match=r"split: give indices_or_sections \(NumPy's meaning\) or "
                                        r"split_size_or_sections \(PyTorch's\), not both"):
        x.split(2, split_size_or_sections=2)
    with pytest.raises(TypeError, match=r"split: give axis or its alias dim, not both"):
        x.split(2, 0, dim=1)


# ----------------------------------------------------------------------------------------------------
# size, dim, view, expand_as, t, contiguous, casts

def test_size_is_numpys_int_and_torchs_method():
    torch = pytest.importorskip("torch")
    x, xt = tg.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert x.size == 24 and isinstance(x.size, int) and x.size * 2 == 48
    assert x.size() == tuple(xt.size()) == (2, 3, 4)
    assert x.size(1) == xt.size(1) and x.size(-1) == xt.size(-1) == 4
    assert repr(x.size) == "24" and type(x.size + 1) is int
    assert x.dim() == xt.dim() == 3
    with pytest.raises(IndexError, match=r"size: dim 3 is out of range for a tensor of shape "
                                         r"\(2, 3, 4\)"):
        x.size(3)
    with pytest.raises(TypeError, match=r"size: dim must be an int, got 1.0"):
        x.size(1.0)


def test_view_reshape_as_view_as_expand_as_t_contiguous():
    x = data(2, 3, 4)
    compare(lambda t: t.view(4, -1), lambda t: t.view(4, -1), x)
    compare(lambda t: t.view((6, 4)), lambda t: t.view((6, 4)), x)
    compare(lambda t: t.view_as(tg.zeros(24)), lambda t: t.view_as(t.new_zeros(24)), x)
    compare(lambda t: t.reshape_as(tg.zeros(4, 6)), lambda t: t.reshape_as(t.new_zeros(4, 6)), x)
    compare(lambda t: t.expand_as(tg.zeros(5, 3, 1)), lambda t: t.expand_as(t.new_zeros(5, 3, 1)),
            data(3, 1))
    compare(lambda t: t.t(), lambda t: t.t(), data(2, 3))
    compare(lambda t: t.t(), lambda t: t.t(), data(3))
    compare(lambda t: t.transpose(1, 2).contiguous().view(2, -1),
            lambda t: t.transpose(1, 2).contiguous().view(2, -1), x)
    with pytest.raises(TypeError, match=r"view: expected a shape \(ints or one tuple\), got "
                                        r"<class 'numpy.int32'>; reinterpreting the bytes"):
        tg.zeros(2).view(np.int32)
    with pytest.raises(ValueError, match=r"t: expects a tensor with at most 2 dims, got shape "
                                         r"\(2, 3, 4\)"):
        tg.zeros(2, 3, 4).t()


def test_view_shares_the_data_as_torch():
    x = tg.zeros(2, 3)
    y = x.view(6)
    with tg.no_grad():
        y.add_(1.0)
    assert x.tolist() == [[1.0] * 3] * 2


def test_casts_and_dtype_names():
    torch = pytest.importorskip("torch")
    x, xt = tg.tensor([1.5, -2.0, 0.0]), torch.tensor([1.5, -2.0, 0.0])
    for name in ("long", "int", "bool", "half", "float", "double"):
        got, want = getattr(x, name)(), getattr(xt, name)()
        assert got.dtype == np.dtype(str(want.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert x.is_cuda is False


# ----------------------------------------------------------------------------------------------------
# clamp, norm, cdist

@pytest.mark.parametrize("lo, hi", [(-0.5, 0.5), (None, 0.2), (-0.1, None), (1.0, -1.0), (0, 1)])
def test_clamp_with_number_bounds_as_torch(lo, hi):
    x = data(3, 4)
    x[0, 0], x[0, 1] = 0.5, -0.5  # on the bounds: the gradient passes (bounds included)
    compare(lambda t: t.clamp(lo, hi), lambda t: t.clamp(lo, hi), x)
    compare(lambda t: tg.clamp(t, min=lo, max=hi), lambda t: t.clamp(min=lo, max=hi), x)


def test_clamp_with_tensor_bounds_as_torch():
    x, lo, hi = data(3, 4), data(3, 4, seed=1) - 0.5, data(4, seed=2) + 0.5
    compare(lambda t, a, b: t.clamp(a, b), lambda t, a, b: t.clamp(a, b), x, lo, hi)
    compare(lambda t, a: t.clamp_min(a), lambda t, a: t.clamp_min(a), x, lo)
    compare(lambda t, b: t.clamp_max(b), lambda t, b: t.clamp_max(b), x, hi)
    # a number beside a tensor bound (torch wants both tensors)
    compare(lambda t, a: t.clamp(min=a, max=0.3),
            lambda t, a: t.clamp(min=a, max=a.new_tensor(0.3)), x, lo)


def test_clamp_errors():
    with pytest.raises(ValueError, match=r"clamp: at least one of min and max must be given"):
        tg.zeros(2).clamp()
    with pytest.raises(TypeError, match=r"clamp: min must be a number, a Tensor or None, got str"):
        tg.zeros(2).clamp("0")


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 1.5, math.inf, -math.inf])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), (-1, True), ((0, 2), False)])
def test_norm_as_torch(p, dim, keepdim):
    x = data(2, 3, 4)
    x[0, 1] = 0.0  # a zero vector along the last axis: the gradient there is 0, not NaN
    compare(lambda t: t.norm(p, dim, keepdim), lambda t: t.norm(p, dim, keepdim), x)
    compare(lambda t: tg.norm(t, p=p, dim=dim, keepdim=keepdim),
            lambda t: torch_norm(t, p, dim, keepdim), x)


def torch_norm(t, p, dim, keepdim):
    torch = pytest.importorskip("torch")
    return torch.norm(t, p=p, dim=dim, keepdim=keepdim)


def test_norm_p0_the_axis_alias_and_errors():
    torch = pytest.importorskip("torch")
    x = data(3, 4)
    x[1, :2] = 0
    assert tg.tensor(x).norm(0, dim=1).tolist() == torch.tensor(x).norm(0, dim=1).tolist()
    np.testing.assert_allclose(tg.tensor(x).norm(axis=0, keepdims=True).numpy(),
                               np.linalg.norm(x, axis=0, keepdims=True))
    with pytest.raises(ValueError, match=r"norm: p must be a non-negative number, inf, -inf or "
                                         r"'fro', got 'nuc' \(matrix norms such as 'nuc' are not "
                                         r"provided\)"):
        tg.zeros(2, 2).norm("nuc")
    with pytest.raises(TypeError, match=r"norm: expected a floating-point tensor, got dtype int64"):
        tg.tensor([1, 2]).norm()
    y = tg.tensor([3.0, 4.0]).norm(dtype=tg.float64)
    assert y.dtype == np.float64 and y.item() == 5.0


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("s1, s2", [((4, 3), (5, 3)), ((2, 4, 3), (2, 5, 3)),
                                    ((2, 4, 3), (1, 5, 3))])
def test_cdist_as_torch(p, s1, s2):
    torch = pytest.importorskip("torch")
    x1, x2 = data(*s1), data(*s2, seed=3)
    x1[..., 0, :] = x2[..., 0, :]  # a zero distance: its gradient is 0, not NaN
    compare(lambda a, b: tg.cdist(a, b, p=p),
            lambda a, b: torch.cdist(a, b, p=p, compute_mode="donot_use_mm_for_euclid_dist"),
            x1, x2)


def test_cdist_errors():
    with pytest.raises(ValueError, match=r"cdist: x1 \(4, 3\) and x2 \(5, 2\) must have the same "
                                         r"number of features \(last axis\), got 3 and 2"):
        tg.cdist(tg.zeros(4, 3), tg.zeros(5, 2))
    with pytest.raises(ValueError, match=r"cdist: x2 must have at least 2 dims"):
        tg.cdist(tg.zeros(4, 3), tg.zeros(3))
    with pytest.raises(ValueError, match=r"cdist: the batch axes of x1 \(2, 3, 4\) and x2 "
                                         r"\(3, 5, 4\) \(all but the last two\) cannot be "
                                         r"broadcast"):
        tg.cdist(tg.zeros(2, 3, 4), tg.zeros(3, 5, 4))


# ----------------------------------------------------------------------------------------------------
# Making tensors: from_numpy, *_like, dtype names, randint's and randperm's spellings

def test_from_numpy_shares_memory_both_ways_and_keeps_the_dtype():
    torch = pytest.importorskip("torch")
    a = np.arange(4, dtype=np.float64)
    t, tt = tg.from_numpy(a), torch.from_numpy(a.copy())
    assert t.dtype == np.float64 and str(tt.dtype) == "torch.float64"
    a[0] = 7.0
    assert t.tolist()[0] == 7.0
    with tg.no_grad():
        t.mul_(2.0)
    assert a.tolist() == [14.0, 2.0, 4.0, 6.0]
    assert tg.tensor(a).data is not a  # tg.tensor is the copying spelling
    with pytest.raises(TypeError, match=r"from_numpy: expected a numpy.ndarray, got list \(for "
                                        r"other data, tg.tensor copies it\)"):
        tg.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError, match=r"tensor: expected numbers, got ndarray holding <U1"):
        tg.from_numpy(np.array(["a"]))


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "randn_like", "rand_like"])
def test_like_functions_take_shape_dtype_device_from_the_tensor(name):
    torch = pytest.importorskip("torch")
    x, xt = tg.zeros(2, 3, dtype=tg.float64), torch.zeros(2, 3, dtype=torch.float64)
    y, yt = getattr(tg, name)(x), getattr(torch, name)(xt)
    assert y.shape == tuple(yt.shape) and y.dtype == np.float64 and y.device == "cpu"
    z = getattr(tg, name)(x, dtype=tg.float32, device="cpu", requires_grad=True)
    assert z.dtype == np.float32 and z.requires_grad
    assert tg.full_like(x, 7).tolist() == torch.full_like(xt, 7).tolist()


def test_dtype_names_are_numpys_dtypes():
    torch = pytest.importorskip("torch")
    for name in ("float16", "half", "float32", "float", "float64", "double", "int8", "uint8",
                 "int16", "short", "int32", "int", "int64", "long", "bool"):
        want = str(getattr(torch, name)).removeprefix("torch.")
        assert getattr(tg, name) == np.dtype(want), name
    assert tg.zeros(2, dtype=tg.long).dtype == np.int64
    assert tg.ones(2).to(tg.float64).dtype == tg.double
    assert tg.tensor([1.0]).dtype == tg.float32


def test_randint_and_randperm_take_torchs_spellings():
    tg.manual_seed(0)
    a = tg.randint(0, 10, (3,))
    tg.manual_seed(0)
    assert tg.randint(10, (3,)).tolist() == a.tolist()  # torch.randint(high, size)
    tg.manual_seed(0)
    assert tg.randint(10, size=(3,)).tolist() == a.tolist()
    p = tg.randperm(6)
    assert sorted(p.tolist()) == list(range(6)) and p.dtype == np.int64
    with pytest.raises(TypeError, match=r"randint: give shape or its alias size, not both"):
        tg.randint(0, 3, (2,), size=(2,))


# ----------------------------------------------------------------------------------------------------
# tg.Generator, generator=, and the default generator's state

@pytest.mark.parametrize("draw", [
    lambda **k: tg.randn(2, 3, **k), lambda **k: tg.rand(4, **k),
    lambda **k: tg.randint(0, 100, (5,), **k), lambda **k: tg.randperm(7, **k),
    lambda **k: tg.randn_like(tg.zeros(3), **k), lambda **k: tg.rand_like(tg.zeros(3), **k)])
def test_a_generator_is_its_own_stream_and_leaves_the_default_alone(draw):
    g = tg.Generator().manual_seed(5)
    tg.manual_seed(123)
    before = tg.get_rng_state()
    first = draw(generator=g).numpy()
    assert tg.get_rng_state() == before  # the default generator did not move
    tg.manual_seed(5)
    np.testing.assert_array_equal(draw().numpy(), first)  # seeded alike, the same numbers
    g.manual_seed(5)
    np.testing.assert_array_equal(draw(generator=g).numpy(), first)
    assert not np.array_equal(draw(generator=g).numpy(), first) or first.size <= 1


def test_generator_state_round_trips_and_other_methods():
    torch = pytest.importorskip("torch")
    g, gt = tg.Generator(), torch.Generator()
    assert g.manual_seed(7) is g and isinstance(gt.manual_seed(7), torch.Generator)
    assert g.initial_seed() == gt.initial_seed() == 7
    assert g.device == "cpu" and str(gt.device) == "cpu"
    state = g.get_state()
    a = tg.rand(3, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(tg.rand(3, generator=g).numpy(), a)
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s


@pytest.mark.parametrize("init", ["uniform_", "normal_", "xavier_uniform_", "xavier_normal_",
                                  "kaiming_uniform_", "kaiming_normal_"])
def test_nn_init_takes_a_generator_as_torch(init):
    fn = getattr(tg.nn.init, init)
    w1, w2 = tg.zeros(4, 3), tg.zeros(4, 3)
    tg.manual_seed(1)
    before = tg.get_rng_state()
    fn(w1, generator=tg.Generator().manual_seed(9))
    assert tg.get_rng_state() == before  # the default generator did not move
    fn(w2, generator=tg.Generator().manual_seed(9))
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())
    tg.manual_seed(9)
    np.testing.assert_array_equal(fn(tg.zeros(4, 3)).numpy(), w1.numpy())
    with pytest.raises(TypeError, match=rf"{init}: generator must be a tg.Generator, got int"):
        fn(w1, generator=0)


def test_default_rng_state_is_public_and_round_trips():
    tg.manual_seed(11)
    assert tg.initial_seed() == 11
    state = tg.get_rng_state()
    a = tg.randn(4).numpy()
    tg.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(4).numpy(), a)
    assert tg.get_rng_state() == tg.backend.get_rng_state("cpu")
    tg.manual_seed(0)


def test_generator_errors():
    with pytest.raises(TypeError, match=r"set_rng_state: expected a state as tg.get_rng_state\(\) "
                                        r"returns it \(a dict of NumPy's PCG64 bit-generator "
                                        r"state, not PyTorch's ByteTensor\), got Tensor"):
        tg.set_rng_state(tg.zeros(5))
    with pytest.raises(TypeError, match=r"Generator.set_state: expected a state .* got a dict for "
                                        r"bit generator 'MT19937'"):
        tg.Generator().set_state({"bit_generator": "MT19937"})
    with pytest.raises(TypeError, match=r"randn: generator must be a tg.Generator, got "
                                        r"Generator"):
        tg.randn(2, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"Generator.manual_seed: expected a non-negative integer "
                                         r"seed, got -1"):
        tg.Generator().manual_seed(-1)
    with pytest.raises(RuntimeError, match=r"randn: the generator is on cpu but the tensor is made "
                                           r"on cuda; use a Generator\(device='cuda'\)"):
        tg.randn(2, device="cuda", generator=tg.Generator())


# ----------------------------------------------------------------------------------------------------
# The README's porting guide

def test_the_porting_guide_example_runs():
    import pathlib
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"## Coming from PyTorch: a porting guide\n.*?```python\n(.*?)```", text,
                        re.S)
    assert blocks, "README lost its porting guide"
    exec(compile(blocks[0], "README.md (porting guide)", "exec"), {})
