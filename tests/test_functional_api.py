"""tinygrad_pt.nn.functional against PyTorch as the oracle: forward values and input gradients in
float64 for every F function, with the class axis of cross_entropy moved as the contract says.
Tests that need torch skip when it is absent; the rest check names, aliases and signatures.
"""
import inspect
import math

import numpy as np
import pytest

import tinygrad_pt as tg
import tinygrad_pt.nn.functional as F

rng = np.random.default_rng(3)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def randn(*shape):
    return rng.standard_normal(shape)


def check_against_torch(torch, ours, theirs, *arrays, rtol=1e-10, atol=1e-12):
    """Run ours on tg tensors and theirs on torch tensors built from the same float64 arrays
    (integer arrays are passed without gradients); compare outputs and every float input's
    gradient under one random upstream gradient."""
    tgs = [tg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ths = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    y, yt = ours(*tgs), theirs(*ths)
    assert y.shape == tuple(yt.shape), f"shape {y.shape} vs torch {tuple(yt.shape)}"
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    u = rng.standard_normal(y.shape)
    y.backward(u)
    yt.backward(torch.tensor(u))
    for i, (a, b) in enumerate(zip(tgs, ths)):
        if a.requires_grad:
            assert a.grad is not None, f"input {i} got no gradient"
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"gradient of input {i}")


# ----------------------------------------------------------------------------------------------------
# Activations


@pytest.mark.parametrize("name, kwargs", [
    ("relu", {}), ("sigmoid", {}), ("tanh", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.3}), ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),
])
def test_activations(torch, name, kwargs):
    x = randn(3, 4) * 4
    x[np.abs(x) < 0.05] = 0.5  # away from the kinks
    check_against_torch(torch, lambda t: getattr(F, name)(t, **kwargs),
                        lambda t: getattr(torch.nn.functional, name)(t, **kwargs), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_axis_dim_and_positional(torch, name):
    x = randn(2, 3, 4) * 5
    tf = getattr(torch.nn.functional, name)
    ours = getattr(F, name)
    for axis in (0, 1, -1):
        check_against_torch(torch, lambda t: ours(t, axis), lambda t: tf(t, axis), x)
        check_against_torch(torch, lambda t: ours(t, dim=axis), lambda t: tf(t, dim=axis), x)
        check_against_torch(torch, lambda t: ours(t, axis=axis), lambda t: tf(t, dim=axis), x)
    x32 = tg.tensor(randn(2, 3).astype(np.float32))
    assert ours(x32, -1, dtype=np.float64).dtype == np.float64  # dtype= casts first


def test_softmax_default_axis_is_last_and_alias_conflict():
    x = tg.tensor(randn(2, 3, 4))
    np.testing.assert_allclose(F.softmax(x).numpy(), F.softmax(x, -1).numpy())
    with pytest.raises(TypeError, match="softmax: give axis or its alias dim, not both"):
        F.softmax(x, axis=0, dim=1)


# ----------------------------------------------------------------------------------------------------
# Normalization, dropout, linear, embedding, attention


@pytest.mark.parametrize("normalized_shape, affine", [((4,), True), ((3, 4), True), ((4,), False)])
def test_layer_norm(torch, normalized_shape, affine):
    x = randn(2, 3, 4) * 3 + 1
    if affine:
        w, b = randn(*normalized_shape), randn(*normalized_shape)
        check_against_torch(torch, lambda x, w, b: F.layer_norm(x, normalized_shape, w, b),
                            lambda x, w, b: torch.nn.functional.layer_norm(x, normalized_shape, w, b),
                            x, w, b)
    else:
        check_against_torch(torch, lambda x: F.layer_norm(x, normalized_shape, eps=1e-3),
                            lambda x: torch.nn.functional.layer_norm(x, normalized_shape, eps=1e-3),
                            x)


@pytest.mark.parametrize("p, axis", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_normalize(torch, p, axis):
    x = randn(3, 4)
    x[1] = 0.0  # a zero row: clamped by eps
    check_against_torch(torch, lambda t: F.normalize(t, p, axis),
                        lambda t: torch.nn.functional.normalize(t, p, axis), x)
    check_against_torch(torch, lambda t: F.normalize(t, p=p, dim=axis),
                        lambda t: torch.nn.functional.normalize(t, p=p, dim=axis), x)


def test_dropout_modes():
    x = tg.randn(20, 20, requires_grad=True)
    assert F.dropout(x, 0.5, False) is x
    y = F.dropout(x)  # p=0.5, training=True by default (PyTorch's defaults)
    zeros = (y.numpy() == 0).mean()
    assert 0.35 < zeros < 0.65
    np.testing.assert_allclose(y.numpy()[y.numpy() != 0], 2 * x.numpy()[y.numpy() != 0], rtol=1e-6)


def test_linear(torch):
    x, w, b = randn(2, 3, 4), randn(5, 4), randn(5)
    check_against_torch(torch, F.linear, torch.nn.functional.linear, x, w, b)
    check_against_torch(torch, lambda x, w: F.linear(x, w), torch.nn.functional.linear, x, w)


def test_linear_bad_shapes():
    with pytest.raises(ValueError, match=r"linear: input \(\.\.\., in_features\) of shape \(2, 3\) "
                                         r"does not match weight .* of shape \(5, 4\)"):
        F.linear(tg.zeros(2, 3), tg.zeros(5, 4))
    with pytest.raises(ValueError, match=r"linear: bias must be a Tensor of shape \(5,\), got \(4,\)"):
        F.linear(tg.zeros(2, 4), tg.zeros(5, 4), tg.zeros(4))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        F.linear(tg.zeros(2, 4), tg.zeros(4))


def test_embedding(torch):
    w = randn(6, 3)
    idx = np.array([[0, 5, 2], [2, 2, 1]])
    wt = tg.tensor(w, requires_grad=True)
    y = F.embedding(idx, wt)
    tw = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.embedding(torch.tensor(idx), tw)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy())
    u = randn(2, 3, 3)
    y.backward(u)
    yt.backward(torch.tensor(u))
    np.testing.assert_allclose(wt.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    with pytest.raises(IndexError, match="index 6 is out of range for 6 embeddings"):
        F.embedding(np.array([6]), wt)
    with pytest.raises(NotImplementedError, match="embedding: padding_idx not supported"):
        F.embedding(idx, wt, padding_idx=0)


@pytest.mark.parametrize("case", ["plain", "causal", "scale", "bool_mask", "float_mask",
                                  "cross_lengths"])
def test_scaled_dot_product_attention(torch, case):
    tq, tk = (3, 5) if case == "cross_lengths" else (4, 4)
    q, k, v = randn(2, 2, tq, 3), randn(2, 2, tk, 3), randn(2, 2, tk, 2)
    kwargs = {}
    mask = None
    if case == "causal":
        kwargs["is_causal"] = True
    elif case == "scale":
        kwargs["scale"] = 0.7
    elif case == "bool_mask":
        mask = rng.random((tq, tk)) < 0.7
        mask[1] = False  # a query with no key at all: zeros, in both
    elif case == "float_mask":
        mask = randn(tq, tk)
    if mask is not None:
        check_against_torch(
            torch, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
            lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=torch.tensor(mask)), q, k, v)
    else:
        check_against_torch(
            torch, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs),
            lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs),
            q, k, v)


# ----------------------------------------------------------------------------------------------------
# Losses


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses(torch, reduction):
    tf = torch.nn.functional
    x, y = randn(3, 4), rng.random((3, 4))
    p = rng.uniform(0.05, 0.95, (3, 4))
    w, pw = rng.random((3, 4)), rng.random(4) * 2
    check_against_torch(torch, lambda a, b: F.mse_loss(a, b, reduction=reduction),
                        lambda a, b: tf.mse_loss(a, b, reduction=reduction), x, y)
    check_against_torch(torch, lambda a, b, c: F.mse_loss(a, b, reduction=reduction, weight=c),
                        lambda a, b, c: tf.mse_loss(a, b, reduction=reduction, weight=c),
                        x, y, w)
    check_against_torch(torch, lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
                        lambda a, b: tf.binary_cross_entropy(a, b, reduction=reduction), p, y)
    check_against_torch(torch, lambda a, b: F.binary_cross_entropy(a, b, w, reduction=reduction),
                        lambda a, b: tf.binary_cross_entropy(a, b, torch.tensor(w),
                                                             reduction=reduction), p, y)
    check_against_torch(  # torch has no gradient for pos_weight (test_ops_loss gradchecks ours)
        torch, lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction,
                                                               pos_weight=pw),
        lambda a, b: tf.binary_cross_entropy_with_logits(a, b, reduction=reduction,
                                                         pos_weight=torch.tensor(pw)), x * 3, y)
    check_against_torch(
        torch, lambda a, b: F.binary_cross_entropy_with_logits(a, b, w, reduction=reduction),
        lambda a, b: tf.binary_cross_entropy_with_logits(a, b, torch.tensor(w),
                                                         reduction=reduction), x * 3, y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_class_axis_last(torch, reduction, label_smoothing, weighted):
    x = randn(2, 3, 5) * 3  # (N, T, C): class axis last; torch wants (N, C, T)
    t = rng.integers(0, 5, (2, 3))
    t[0, 1] = -100
    w = rng.random(5) + 0.5 if weighted else None
    check_against_torch(
        torch,
        lambda a, tt: F.cross_entropy(a, tt, w, reduction=reduction,
                                      label_smoothing=label_smoothing),
        lambda a, tt: torch.nn.functional.cross_entropy(
            a.movedim(-1, 1), tt, None if w is None else torch.tensor(w), reduction=reduction,
            label_smoothing=label_smoothing),
        x, t)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_and_custom_ignore_index(torch, reduction):
    logp = randn(6, 4)
    t = np.array([0, 3, 9, 1, 9, 2])
    check_against_torch(torch, lambda a, tt: F.nll_loss(a, tt, ignore_index=9, reduction=reduction),
                        lambda a, tt: torch.nn.functional.nll_loss(a, tt, ignore_index=9,
                                                                   reduction=reduction), logp, t)
    check_against_torch(torch, lambda a, tt: F.cross_entropy(a, tt, ignore_index=9,
                                                             reduction=reduction),
                        lambda a, tt: torch.nn.functional.cross_entropy(a, tt, ignore_index=9,
                                                                        reduction=reduction),
                        logp, t)


def test_cross_entropy_all_ignored_is_nan_like_torch(torch):
    x = randn(3, 4)
    ours = F.cross_entropy(tg.tensor(x), np.full(3, -100)).item()
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.full((3,), -100)).item()
    assert math.isnan(ours) and math.isnan(theirs)


@pytest.mark.parametrize("loss", [F.mse_loss, F.binary_cross_entropy,
                                  F.binary_cross_entropy_with_logits, F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("flag", ["size_average", "reduce"])
def test_removed_size_average_and_reduce_are_unexpected_keywords(loss, flag):
    # PyTorch's deprecated flags are gone: reduction= is the one way.
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{flag}'"):
        loss(tg.tensor(np.array([0.5])), np.array([0]), **{flag: False})


def torch_nt_xent(torch, z1, z2, tau):
    """SimCLR's loss written with torch ops: the oracle."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / tau
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    pos = (torch.arange(2 * n) + n) % (2 * n)
    return torch.nn.functional.cross_entropy(sim, pos)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_nt_xent(torch, tau):
    z1, z2 = randn(4, 3), randn(4, 3)
    check_against_torch(torch, lambda a, b: F.nt_xent(a, b, tau),
                        lambda a, b: torch_nt_xent(torch, a, b, tau), z1, z2)
    check_against_torch(torch, lambda a, b: F.nt_xent(a, b),  # the default temperature, 0.5
                        lambda a, b: torch_nt_xent(torch, a, b, 0.5), z1, z2)


# ----------------------------------------------------------------------------------------------------
# The API surface


DESIGN_F = ["relu", "gelu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "layer_norm",
            "dropout", "normalize", "linear", "embedding", "mse_loss", "binary_cross_entropy",
            "binary_cross_entropy_with_logits", "cross_entropy", "scaled_dot_product_attention",
            "nt_xent"]


def test_every_design_name_is_in_F():
    for name in DESIGN_F:
        assert callable(getattr(F, name)) and name in F.__all__
        assert getattr(F, name).__doc__, f"F.{name} has no docstring"


@pytest.mark.parametrize("name", [n for n in DESIGN_F if n != "nt_xent"])
def test_positional_parameters_follow_pytorch(torch, name):
    """Our positional-or-keyword parameters, in order, are PyTorch's, with dim renamed axis (and
    PyTorch's private _stacklevel / deprecated positional dtype left out). The losses stop where
    PyTorch's deprecated size_average / reduce stand; what follows them is keyword-only here."""
    try:
        theirs = inspect.signature(getattr(torch.nn.functional, name))
    except (TypeError, ValueError):
        pytest.skip(f"torch.nn.functional.{name} has no introspectable signature")
    skip = {"_stacklevel", "dtype", "out"}
    theirs = [("axis" if p == "dim" else p) for p, v in theirs.parameters.items()
              if v.kind == v.POSITIONAL_OR_KEYWORD and p not in skip]
    params = inspect.signature(getattr(F, name)).parameters.items()
    ours = [p for p, v in params if v.kind == v.POSITIONAL_OR_KEYWORD]
    removed = [p for p in ("size_average", "reduce") if p in theirs]
    if removed:
        cut = min(theirs.index(p) for p in removed)
        keyword_only = {p for p, v in params if v.kind == v.KEYWORD_ONLY}
        assert set(theirs[cut:]) - set(removed) <= keyword_only
        theirs = theirs[:cut]
    assert ours == theirs
