"""Every op and one training step of every model family, computed on two devices and compared.

A device-pair harness: each test computes the same thing on ``DEVICE_A`` and ``DEVICE_B`` and
compares the results (values, dtypes, shapes, and the gradients of every input). The pair is
("cpu", "cuda") by default, and the module is then marked ``gpu`` (tests/conftest.py skips it
without CuPy and a GPU). ``TG_GPU_TEST_PAIR=cpu,cpu`` runs the same comparisons with both sides on
the CPU and without the marker, so that the harness itself is exercised on any machine:

    TG_GPU_TEST_PAIR=cpu,cpu python -m pytest -q tests/test_gpu.py

What is compared:
- ops, forward and backward (a random upstream gradient, never ``.sum()`` of a softmax): binary
  ops with broadcasting, unary ops, reductions, matmul (2-D, batched, 1-D), linear, shape ops,
  getitem (basic, integer arrays with repeats, masks), embedding, masked_fill, tril/triu,
  activations, softmax/log_softmax/logsumexp, layer_norm, dropout, attention and the losses;
- ``Tensor.to`` between the devices with the gradient flowing back, the error for mixed devices,
  ``tg.save`` on one device and ``tg.load`` on the other;
- one training step of each recipe (ae, dae, vae, gan, simclr, moco, gpt): losses, gradients and
  every parameter after the optimizer step.

Randomness drawn on the device (VAE noise, GAN latents, MoCo's initial queue, dropout masks) comes
from a different generator on each device (NumPy's and CuPy's). ``host_draws`` makes the two
sides draw the same numbers: see its docstring.

Tolerances: rtol 1e-4, atol 1e-5 on float32 results (see RTOL, ATOL).
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
import tinygrad_pt.nn.functional as F
from tinygrad_pt import backend, creation
from tinygrad_pt.ops import dropout as dropout_op
from tinygrad_pt.testing.strategies import broadcastable_shapes, matmul_shapes, shapes
from tinygrad_pt.train.recipes import make_recipe


def _device_pair():
    """(device_a, device_b) from TG_GPU_TEST_PAIR ("cpu,cuda" unless set)."""
    text = os.environ.get("TG_GPU_TEST_PAIR", "cpu,cuda")
    pair = tuple(part.strip() for part in text.split(","))
    if len(pair) != 2 or any(d not in ("cpu", "cuda") for d in pair):
        raise ValueError(f"TG_GPU_TEST_PAIR={text!r}: expected two devices among cpu and cuda, "
                         "e.g. 'cpu,cuda' or 'cpu,cpu'")
    return pair


PAIR = DEVICE_A, DEVICE_B = _device_pair()
if "cuda" in PAIR:
    pytestmark = pytest.mark.gpu

# float32 on both sides, and the two sides round differently: cuBLAS and OpenBLAS block their
# sums differently, CuPy's reductions add in a tree where NumPy adds pairwise, the CUDA kernels
# fuse what the reference computes in steps, and CUDA's exp/log/erf differ from glibc's by an ulp
# or two. One float32 ulp is 1.2e-7 relative; the sums here have at most a few hundred terms, so
# a few 1e-6 relative is the expected spread, and rtol 1e-4 leaves room without hiding a wrong
# formula (which is off by far more). atol 1e-5 is for values that cancel to near zero (a
# gradient summing terms of order 1 to ~0 keeps an absolute error of n * eps, not a relative one).
RTOL, ATOL = 1e-4, 1e-5

FEW = settings(max_examples=8, deadline=None)
SEEDS = st.integers(0, 2**32 - 1)
SIDES = st.integers(1, 4)


# --------------------------------------------------------------------------------------------------
# The harness


def normal(seed, shape):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape), dtype=np.float32)


def const(like, array):
    """A constant (target, weight, mask) on like's device: made inside the computed function, so
    it is on the right side of the pair and takes no gradient."""
    return tg.tensor(array, device=like.device)


def forward_backward(device, fn, arrays, seed):
    """Leaf tensors on `device` from `arrays` (floating ones require grad), outs = fn(*leaves),
    then backward with a random upstream gradient (drawn from `seed`, the same on both sides).
    Returns (outputs, input gradients) as NumPy arrays (None where an input has no gradient)."""
    leaves = [tg.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(*leaves)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    for o in outs:
        assert o.device == device, f"an output is on {o.device}, its inputs on {device}"
    g = np.random.default_rng(seed)
    dys = [np.asarray(g.standard_normal(o.shape), dtype=o.dtype) for o in outs]
    terms = [(o * tg.tensor(dy, device=device)).sum() for o, dy in zip(outs, dys)
             if o.requires_grad]
    if terms:
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        total.backward()
    return ([o.numpy() for o in outs],
            [None if t.grad is None else t.grad.numpy() for t in leaves])


def assert_same(what, got, want):
    """got (device B) equal to want (device A): dtype and shape exactly, values to tolerance
    (floats) or exactly (integers, booleans)."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} on {DEVICE_B}, {want.dtype} on " \
                                    f"{DEVICE_A}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} on {DEVICE_B}, {want.shape} on " \
                                    f"{DEVICE_A}"
    msg = f"{what}: {DEVICE_B} (actual) vs {DEVICE_A} (desired)"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, want, err_msg=msg)


def check_pair(fn, *arrays, seed=0, grads=True):
    """fn on both devices: outputs and the gradients of all inputs must agree. With grads=True
    every floating input must also have received a gradient (so the backward really ran)."""
    outs_a, grads_a = forward_backward(DEVICE_A, fn, arrays, seed)
    outs_b, grads_b = forward_backward(DEVICE_B, fn, arrays, seed)
    assert len(outs_a) == len(outs_b)
    for i, (a, b) in enumerate(zip(outs_a, outs_b)):
        assert_same(f"output {i}", b, a)
    for i, (arr, a, b) in enumerate(zip(arrays, grads_a, grads_b)):
        if grads and arr.dtype.kind == "f":
            assert a is not None, f"input {i} got no gradient on {DEVICE_A}"
        assert (a is None) == (b is None), f"input {i}: a gradient on one device only"
        if a is not None:
            assert_same(f"gradient of input {i}", b, a)


class HostDraws:
    """Stands in for a device's generator: each draw is made by the CPU generator (NumPy) and the
    result moved to the device. The call count tells a test that the stand-in was used."""

    calls = 0

    def __init__(self, device):
        self.device = device

    def __getattr__(self, name):
        method = getattr(backend.rng("cpu"), name)

        def draw(*args, **kwargs):
            HostDraws.calls += 1
            return backend.to_device(np.asarray(method(*args, **kwargs)), self.device)
        return draw


def host_draws(monkeypatch):
    """Make both devices draw the same random numbers: the framework's draws on a device go
    through ``backend.rng(device)`` (NumPy's generator on cpu, CuPy's on cuda: different streams
    for one seed), called from ``creation`` (tg.randn, rand, randint: VAE noise, GAN latents,
    MoCo's initial queue) and ``ops.dropout`` (dropout masks). Those two modules' ``rng``
    is replaced by HostDraws, so every draw comes from the CPU generator, whatever the device;
    reseeding (tg.manual_seed) before each side's computation then gives both sides the same
    numbers, which move to the device as data. The device's own generator is what the rest of
    this file tests against; this file tests the ops and steps given the same draws. (Weight
    initialisation already draws on the CPU generator for every device: nn/init.py.)"""
    HostDraws.calls = 0
    for module in (creation, dropout_op):
        monkeypatch.setattr(module, "rng",
                            lambda device="cpu": HostDraws(backend.canonical_device(device)))


# --------------------------------------------------------------------------------------------------
# Elementwise ops


def _positive(x):
    return np.abs(x) + np.float32(0.5)


def _away_from_zero(x):
    return np.where(x < 0, x - np.float32(0.5), x + np.float32(0.5)).astype(np.float32)


BINARY = {  # name: (fn, domain of a, domain of b)
    "add": (lambda a, b: a + b, None, None),
    "sub": (lambda a, b: a - b, None, None),
    "mul": (lambda a, b: a * b, None, None),
    "div": (lambda a, b: a / b, None, _away_from_zero),
    "pow": (lambda a, b: a ** b, _positive, None),
    "maximum": (tg.maximum, None, None),
    "minimum": (tg.minimum, None, None),
    "where": (lambda a, b: tg.where(a > b, a, b * 2.0), None, None),
}


@pytest.mark.parametrize("name", list(BINARY))
@FEW
@given(shape_pair=broadcastable_shapes(max_dims=3, max_side=4), seed=SEEDS)
def test_binary_ops_with_broadcasting(name, shape_pair, seed):
    fn, dom_a, dom_b = BINARY[name]
    a, b = normal(seed, shape_pair[0]), normal(seed + 1, shape_pair[1])
    check_pair(fn, dom_a(a) if dom_a else a, dom_b(b) if dom_b else b, seed=seed)


UNARY = {  # name: (fn, domain)
    "neg": (lambda x: -x, None),
    "scalars": (lambda x: (2.0 - x) * 3.0 / 4.0 + 1.0, None),
    "reciprocal": (lambda x: 1.0 / x, _away_from_zero),
    "pow_scalar": (lambda x: x ** 3, None),
    "rpow": (lambda x: 2.0 ** x, None),
    "exp": (tg.exp, None),
    "log": (tg.log, _positive),
    "sqrt": (tg.sqrt, _positive),
    "abs": (tg.abs, _away_from_zero),
    "sin": (tg.sin, None),
    "cos": (tg.cos, None),
    "clip": (lambda x: x.clip(-0.5, 0.5), None),
    "relu": (F.relu, _away_from_zero),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), _away_from_zero),
    "gelu": (F.gelu, None),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), None),
    "sigmoid": (F.sigmoid, None),
    "tanh": (F.tanh, None),
    "softplus": (F.softplus, None),
    "softplus_threshold": (lambda x: F.softplus(x * 10.0, beta=2.0, threshold=5.0), None),
}


@pytest.mark.parametrize("name", list(UNARY))
@FEW
@given(shape=shapes(max_dims=3, max_side=4), seed=SEEDS)
def test_unary_ops_and_activations(name, shape, seed):
    fn, dom = UNARY[name]
    x = normal(seed, shape)
    check_pair(fn, dom(x) if dom else x, seed=seed)


# --------------------------------------------------------------------------------------------------
# Reductions, softmax and friends


REDUCTIONS = {
    "sum": lambda x, axis, keep: x.sum(axis=axis, keepdims=keep),
    "mean": lambda x, axis, keep: x.mean(axis=axis, keepdims=keep),
    "max": lambda x, axis, keep: x.max(axis=axis, keepdims=keep),
    "min": lambda x, axis, keep: x.min(axis=axis, keepdims=keep),
    "var": lambda x, axis, keep: x.var(axis=axis, keepdims=keep),
    "std": lambda x, axis, keep: (x + 0.0).std(axis=axis, keepdims=keep),
    "logsumexp": lambda x, axis, keep: tg.logsumexp(x, axis=axis, keepdims=keep),
}


@st.composite
def shape_and_axis(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    return shape, axis


@pytest.mark.parametrize("name", list(REDUCTIONS))
@FEW
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), seed=SEEDS)
def test_reductions(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    if name == "std":  # std's gradient is 1/std: infinite over a single element
        shape = tuple(n + 1 for n in shape)
    check_pair(lambda x: REDUCTIONS[name](x, axis, keepdims), normal(seed, shape), seed=seed)


@FEW
@given(shape_axis=shape_and_axis(), seed=SEEDS)
def test_argmax_argmin(shape_axis, seed):
    shape, axis = shape_axis
    check_pair(lambda x: (x.argmax(axis=axis), x.argmin(axis=axis)), normal(seed, shape),
               grads=False)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@FEW
@given(shape_axis=shape_and_axis(), big=st.booleans(), seed=SEEDS)
def test_softmax_family(name, shape_axis, big, seed):
    shape, axis = shape_axis
    axis = -1 if axis is None else axis
    fn = {"softmax": lambda x: F.softmax(x, axis=axis),
          "log_softmax": lambda x: F.log_softmax(x, axis=axis),
          "logsumexp": lambda x: tg.logsumexp(x, axis=axis)}[name]
    x = normal(seed, shape) * np.float32(30.0 if big else 1.0)  # large logits: the shift matters
    check_pair(fn, x, seed=seed)


# --------------------------------------------------------------------------------------------------
# matmul and linear


@FEW
@given(shape_pair=matmul_shapes(max_batch_dims=2, max_side=4), seed=SEEDS)
def test_matmul_2d_batched_and_vectors(shape_pair, seed):
    a, b = normal(seed, shape_pair[0]), normal(seed + 1, shape_pair[1])
    check_pair(lambda x, y: x @ y, a, b, seed=seed)


@FEW
@given(lead=shapes(min_dims=1, max_dims=2, max_side=3), n_in=SIDES, n_out=SIDES, seed=SEEDS)
def test_linear(lead, n_in, n_out, seed):
    x, w, b = normal(seed, lead + (n_in,)), normal(seed + 1, (n_out, n_in)), normal(seed + 2, n_out)
    check_pair(F.linear, x, w, b, seed=seed)


# --------------------------------------------------------------------------------------------------
# Shape ops, indexing


SHAPE_OPS = {  # name: fn of one or two (a, b, c) tensors
    "reshape": lambda x: x.reshape(x.shape[2], -1),
    "flatten": lambda x: x.flatten(1),
    "transpose": lambda x: x.transpose(2, 0, 1),
    "T": lambda x: x.T,
    "permute": lambda x: x.permute(1, 2, 0),
    "swapaxes": lambda x: x.swapaxes(0, 2),
    "broadcast_to": lambda x: x.expand_dims(0).broadcast_to((2,) + x.shape),
    "squeeze": lambda x: x.expand_dims(1).squeeze(1),
    "concatenate": lambda x, y: tg.concatenate([x, y, x], axis=1),
    "stack": lambda x, y: tg.stack([x, y], axis=-1),
    "split": lambda x: tg.split(x, [1], axis=2),
    "chunk": lambda x: x.chunk(2, axis=0),
}


@pytest.mark.parametrize("name", list(SHAPE_OPS))
@FEW
@given(a=SIDES, b=SIDES, c=SIDES, seed=SEEDS)
def test_shape_ops(name, a, b, c, seed):
    fn = SHAPE_OPS[name]
    arrays = [normal(seed + i, (a, b, c)) for i in range(fn.__code__.co_argcount)]
    check_pair(fn, *arrays, seed=seed)


GETITEM = {
    "basic": lambda x: x[1:, ::-1, 0],
    "ellipsis_none": lambda x: x[..., None, -1],
    "step": lambda x: x[:, 1::2],
    "int_list_repeats": lambda x: x[[0, 0, -1]],
    "int_array_axis1": lambda x: x[:, np.array([1, 0, 1, 1])],
    "two_arrays": lambda x: x[[0, 1, 1], [1, 1, 0]],
    "int_tensor": lambda x: x[const(x, np.array([[1, 0], [1, 1]]))],
    "mask": lambda x: x[x > 0.0],
}


@pytest.mark.parametrize("name", list(GETITEM))
@FEW
@given(a=st.integers(2, 4), b=st.integers(2, 4), c=SIDES, seed=SEEDS)
def test_getitem(name, a, b, c, seed):
    check_pair(GETITEM[name], normal(seed, (a, b, c)), seed=seed)


@FEW
@given(vocab=st.integers(1, 6), dim=SIDES, idx_shape=shapes(min_dims=1, max_dims=2, max_side=5),
       seed=SEEDS)
def test_embedding_with_repeated_indices(vocab, dim, idx_shape, seed):
    idx = np.random.default_rng(seed).integers(0, vocab, idx_shape)  # repeats: scatter-add
    check_pair(lambda w: F.embedding(const(w, idx), w), normal(seed, (vocab, dim)), seed=seed)


@pytest.mark.parametrize("op", ["masked_fill", "masked_fill_tensor_mask", "tril", "triu"])
@FEW
@given(lead=shapes(max_dims=1, max_side=3), n=SIDES, m=SIDES, k=st.integers(-2, 2), seed=SEEDS)
def test_masked_fill_tril_triu(op, lead, n, m, k, seed):
    x = normal(seed, lead + (n, m))
    mask = np.random.default_rng(seed + 1).random(x.shape) < 0.4
    fn = {"masked_fill": lambda t: t.masked_fill(t > 0.3, -2.0),
          "masked_fill_tensor_mask": lambda t: t.masked_fill(const(t, mask), float("-inf")).exp(),
          "tril": lambda t: t.tril(k),
          "triu": lambda t: t.triu(k)}[op]
    check_pair(fn, x, seed=seed)


# --------------------------------------------------------------------------------------------------
# layer_norm, dropout, attention


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("n_axes", [1, 2])
@FEW
@given(shape=shapes(min_dims=2, max_dims=3, max_side=5), seed=SEEDS)
def test_layer_norm(affine, n_axes, shape, seed):
    normalized = shape[len(shape) - n_axes:]
    x = normal(seed, shape) * np.float32(3.0) + np.float32(1.0)
    if affine:
        w, b = normal(seed + 1, normalized), normal(seed + 2, normalized)
        check_pair(lambda t, w_, b_: F.layer_norm(t, normalized, w_, b_), x, w, b, seed=seed)
    else:
        check_pair(lambda t: F.layer_norm(t, normalized), x, seed=seed)


@pytest.mark.parametrize("case", ["p0_training", "eval", "module_eval", "p03_host_draws"])
@FEW
@given(shape=shapes(min_dims=1, max_dims=3, max_side=5), seed=SEEDS)
def test_dropout(case, shape, seed):
    """p = 0 and evaluation mode are the identity on any device. With p > 0 the mask comes from
    the device's generator, which differs per device: host_draws gives both the same mask (the
    monkeypatch context is opened inside, as hypothesis reruns the test body per example)."""
    x = normal(seed, shape)
    if case == "p0_training":
        check_pair(lambda t: F.dropout(t, p=0.0, training=True), x, seed=seed)
    elif case == "eval":
        check_pair(lambda t: F.dropout(t, p=0.5, training=False), x, seed=seed)
    elif case == "module_eval":
        check_pair(lambda t: nn.Dropout(0.5).eval()(t), x, seed=seed)
    else:
        with pytest.MonkeyPatch.context() as mp:
            host_draws(mp)

            def fn(t):
                tg.manual_seed(seed % 1000)  # the same mask on both sides
                return F.dropout(t, p=0.3, training=True)
            check_pair(fn, x, seed=seed)
            assert HostDraws.calls == 2  # one mask per side, both from the CPU generator


@pytest.mark.parametrize("causal", [False, True])
@FEW
@given(batch=shapes(min_dims=1, max_dims=2, max_side=2), length=SIDES, source=SIDES, e=SIDES,
       ev=SIDES, seed=SEEDS)
def test_scaled_dot_product_attention(causal, batch, length, source, e, ev, seed):
    source = length if causal else source  # causal: each query i sees keys 0..i of as many
    q = normal(seed, batch + (length, e))
    k = normal(seed + 1, batch + (source, e))
    v = normal(seed + 2, batch + (source, ev))
    check_pair(lambda q_, k_, v_: F.scaled_dot_product_attention(q_, k_, v_, is_causal=causal),
               q, k, v, seed=seed)


# --------------------------------------------------------------------------------------------------
# Losses


REDUCTION = st.sampled_from(["mean", "sum", "none"])


@FEW
@given(shape=shapes(max_dims=3, max_side=4), reduction=REDUCTION, seed=SEEDS)
def test_mse_and_l1(shape, reduction, seed):
    t = normal(seed + 1, shape)
    x = normal(seed, shape)
    check_pair(lambda x_: F.mse_loss(x_, const(x_, t), reduction=reduction), x, seed=seed)
    # l1: F has no l1_loss; |x - t| through abs and the reduction ops
    check_pair(lambda x_: (x_ - const(x_, t)).abs().mean(), _away_from_zero(x - t) + t, seed=seed)


@FEW
@given(shape=shapes(min_dims=1, max_dims=3, max_side=4), reduction=REDUCTION,
       weighted=st.booleans(), seed=SEEDS)
def test_binary_cross_entropy(shape, reduction, weighted, seed):
    g = np.random.default_rng(seed)
    p = g.uniform(0.05, 0.95, shape).astype(np.float32)
    t = g.random(shape).astype(np.float32)
    w = (g.random(shape) + 0.5).astype(np.float32) if weighted else None
    check_pair(lambda p_: F.binary_cross_entropy(
        p_, const(p_, t), weight=None if w is None else const(p_, w), reduction=reduction),
        p, seed=seed)


@FEW
@given(shape=shapes(min_dims=1, max_dims=3, max_side=4), reduction=REDUCTION,
       pos_weighted=st.booleans(), seed=SEEDS)
def test_binary_cross_entropy_with_logits(shape, reduction, pos_weighted, seed):
    g = np.random.default_rng(seed)
    x = normal(seed, shape) * np.float32(5.0)
    t = g.random(shape).astype(np.float32)
    pw = (g.random(shape[-1:]) + 0.5).astype(np.float32) if pos_weighted else None
    check_pair(lambda x_: F.binary_cross_entropy_with_logits(
        x_, const(x_, t), reduction=reduction, pos_weight=None if pw is None else const(x_, pw)),
        x, seed=seed)


@st.composite
def class_problem(draw):
    """Logits (..., C) and integer targets (...) with some rows ignored (-100), one at least not."""
    lead = draw(shapes(min_dims=1, max_dims=2, max_side=4))
    c = draw(st.integers(1, 5))
    seed = draw(SEEDS)
    g = np.random.default_rng(seed)
    target = g.integers(0, c, lead)
    target[g.random(lead) < 0.3] = -100
    target.reshape(-1)[0] = g.integers(0, c)  # a mean over no rows would be 0/0
    return normal(seed, lead + (c,)) * np.float32(3.0), target, seed


@FEW
@given(problem=class_problem(), reduction=REDUCTION, smoothing=st.sampled_from([0.0, 0.1]),
       weighted=st.booleans())
def test_cross_entropy_ignore_index_label_smoothing(problem, reduction, smoothing, weighted):
    x, target, seed = problem
    w = (np.random.default_rng(seed).random(x.shape[-1]) + 0.5).astype(np.float32)
    check_pair(lambda x_: F.cross_entropy(
        x_, const(x_, target), weight=const(x_, w) if weighted else None, ignore_index=-100,
        reduction=reduction, label_smoothing=smoothing), x, seed=seed)


@FEW
@given(problem=class_problem(), reduction=REDUCTION)
def test_nll_loss(problem, reduction):
    x, target, seed = problem
    check_pair(lambda x_: F.nll_loss(F.log_softmax(x_, axis=-1), const(x_, target),
                                     ignore_index=-100, reduction=reduction), x, seed=seed)


@FEW
@given(n=SIDES, d=SIDES, temperature=st.sampled_from([0.1, 0.5]), seed=SEEDS)
def test_nt_xent(n, d, temperature, seed):
    check_pair(lambda a, b: F.nt_xent(a, b, temperature=temperature),
               normal(seed, (n, d)), normal(seed + 1, (n, d)), seed=seed)


# --------------------------------------------------------------------------------------------------
# Moving data: .to(), mixed devices, save / load


def test_to_roundtrip_carries_the_gradient_back():
    x_np = normal(0, (3, 4))
    x = tg.tensor(x_np, device=DEVICE_A, requires_grad=True)
    y = x.to(DEVICE_B)
    assert y.device == DEVICE_B and y.requires_grad
    w = tg.tensor(normal(1, (4, 2)), device=DEVICE_B)
    z = (y @ w).tanh().sum().to(DEVICE_A)  # the loss comes back to x's device
    assert z.device == DEVICE_A
    z.backward()
    assert x.grad.device == DEVICE_A
    # the same on DEVICE_A alone, and by hand
    h = x_np @ w.numpy()
    want = (1.0 - np.tanh(h) ** 2) @ w.numpy().T
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(z.numpy(), np.tanh(h).sum(), rtol=RTOL, atol=ATOL)
    # and the data survives the trip both ways unchanged
    np.testing.assert_array_equal(x.to(DEVICE_B).to(DEVICE_A).numpy(), x_np)


@pytest.mark.skipif(DEVICE_A == DEVICE_B, reason="needs two different devices")
def test_mixed_devices_are_a_clear_error():
    a = tg.tensor(normal(0, 2), device=DEVICE_A)
    b = tg.tensor(normal(1, 2), device=DEVICE_B)
    devices = rf"\(2,\) on {DEVICE_A}, \(2,\) on {DEVICE_B}"
    with pytest.raises(RuntimeError, match=rf"Add: all inputs must be on the same device, got "
                                           rf"{devices}; move them with \.to\(device\) first"):
        a + b
    m = tg.tensor(normal(2, (2, 2)), device=DEVICE_B)
    with pytest.raises(RuntimeError, match=r"MatMul: all inputs must be on the same device"):
        a @ m


def test_save_on_one_device_load_on_the_other(tmp_path):
    w = normal(0, (3, 4))
    idx = np.arange(5, dtype=np.int64)
    path = tmp_path / "w.safetensors"
    tg.save({"w": tg.tensor(w, device=DEVICE_B), "idx": tg.tensor(idx, device=DEVICE_B)}, path)
    for device in (DEVICE_A, DEVICE_B):
        loaded = tg.load(path, device=device)
        assert {k: t.device for k, t in loaded.items()} == {"w": device, "idx": device}
        assert loaded["w"].dtype == np.float32 and loaded["idx"].dtype == np.int64
        np.testing.assert_array_equal(loaded["w"].numpy(), w)  # bit-exact: a copy, no math
        np.testing.assert_array_equal(loaded["idx"].numpy(), idx)

    # a module's state: saved from DEVICE_B, loaded into a fresh module on DEVICE_A
    tg.manual_seed(0)
    layer_b = nn.Linear(4, 3).to(DEVICE_B)
    tg.save(layer_b.state_dict(), path)
    tg.manual_seed(1)  # another initialisation, overwritten by the load
    layer_a = nn.Linear(4, 3)
    layer_a.load_state_dict(tg.load(path, device=DEVICE_A))
    x = normal(2, (5, 4))
    assert_same("Linear after save/load", layer_b(tg.tensor(x, device=DEVICE_B)).numpy(),
                layer_a(tg.tensor(x, device=DEVICE_A)).numpy())


def test_host_draws_gives_both_devices_the_same_numbers(monkeypatch):
    """The harness's own check: under host_draws, tg.randn / rand / randint on either device
    return the CPU generator's numbers for the seed."""
    host_draws(monkeypatch)
    got = {}
    for device in PAIR:
        tg.manual_seed(7)
        got[device] = (tg.randn(3, 2, device=device).numpy(), tg.rand(4, device=device).numpy(),
                       tg.randint(0, 9, (5,), device=device).numpy())
    want = np.random.default_rng(7)
    np.testing.assert_array_equal(got[DEVICE_B][0], want.standard_normal((3, 2)).astype(np.float32))
    np.testing.assert_array_equal(got[DEVICE_B][1], want.random(4).astype(np.float32))
    np.testing.assert_array_equal(got[DEVICE_B][2], want.integers(0, 9, 5))
    for a, b in zip(got[DEVICE_A], got[DEVICE_B]):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------------
# One training step of every model family


# Small configs (keys from each recipe's `defaults`): a step takes milliseconds.
IMAGE = {"batch_size": 8, "hidden": 16, "latent": 4}
CONTRASTIVE = {"batch_size": 8, "hidden": 16, "feat_dim": 8, "proj_hidden": 8, "proj_dim": 4,
               "probe_steps": 1}
FAMILIES = {
    "ae": IMAGE,
    "dae": IMAGE,
    "vae": {**IMAGE, "eval_draws": 1},
    "gan": {**IMAGE, "score_samples": 8, "classifier_steps": 1},
    "simclr": CONTRASTIVE,
    "moco": {**CONTRASTIVE, "queue_size": 32},
    # warmup 0: the first step runs at the full rate (a warmup would start at 0 and move nothing)
    "gpt": {"batch_size": 2, "block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 8,
            "max_bytes": 20000, "eval_windows": 2, "warmup_steps": 0},
}
# Families whose build or step draws on the device (VAE noise, GAN latents, MoCo's queue).
DRAWS_ON_DEVICE = {"vae", "gan", "moco"}


def parameters_of(recipe):
    """{module.name: Parameter or buffer} over the recipe's modules (tied weights under each
    name, as state_dict gives them)."""
    return {f"{m}.{k}": p for m, module in recipe.modules.items()
            for k, p in module.state_dict(keep_vars=True).items()}


def as_number(v):
    return v.item() if hasattr(v, "item") else float(v)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_training_step_matches(family, monkeypatch):
    """Build the recipe on both devices with one seed (the same initial weights: they are drawn
    on the CPU generator), draw ONE batch on the host, take one step on each; then the step's
    metrics, every parameter's gradient and every parameter after the optimizer step must agree.

    The parameters after the step: where a gradient is within its tolerance of zero (e.g. the
    key bias of attention, whose gradient is exactly 0 in exact arithmetic and rounding noise in
    float32), its sign is noise, and Adam's first step lr * g / (|g| + eps) turns either sign
    into +-lr. There the gradient check above has already held it to tolerance, and the update
    is only required to stay within twice the largest update of that tensor. (Measured on these
    configs, cpu against cpu: that wider bound applies to 0.1% to 6% of a family's elements.)"""
    host_draws(monkeypatch)
    recipes = [make_recipe(family, FAMILIES[family], device=d, seed=0) for d in PAIR]
    batch = recipes[0].draw_batch()  # NumPy arrays: the same batch for both
    before = {k: p.numpy() for k, p in parameters_of(recipes[0]).items()}
    for k, p in parameters_of(recipes[1]).items():
        np.testing.assert_array_equal(p.numpy(), before[k], err_msg=f"{family}: initial {k}")

    metrics, after, grads, extra = [], [], [], []
    for recipe in recipes:
        tg.manual_seed(1)  # the step's own draws (noise, latents) the same on both sides
        metrics.append({k: as_number(v) for k, v in recipe.step_on(*batch).items()})
        params = parameters_of(recipe)
        after.append({k: p.numpy() for k, p in params.items()})
        grads.append({k: None if p.grad is None else p.grad.numpy() for k, p in params.items()})
        extra.append(recipe.extra_state())
    if family in DRAWS_ON_DEVICE:
        assert HostDraws.calls > 0, f"{family}: its draws did not go through host_draws"

    (m_a, m_b), (p_a, p_b), (g_a, g_b) = metrics, after, grads
    assert m_a.keys() == m_b.keys()
    for k in m_a:
        np.testing.assert_allclose(m_b[k], m_a[k], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{family}: metric {k}")
    moved = max(float(np.abs(p_a[k] - before[k]).max(initial=0.0)) for k in p_a)
    assert moved > 0.0, f"{family}: the step changed no parameter, so nothing was compared"

    for k in p_a:
        assert (g_a[k] is None) == (g_b[k] is None), f"{family}: {k} has a gradient on one side"
        if g_a[k] is not None:
            assert_same(f"{family}: gradient of {k}", g_b[k], g_a[k])
        tol = RTOL * np.abs(p_a[k]) + ATOL
        if g_a[k] is not None:
            # (a gradient exactly 0 on both sides, e.g. for a pixel that is 0 in every image,
            # is no noise: both updates are then exact, and held to the plain tolerance)
            noise = (np.abs(g_a[k]) <= RTOL * np.abs(g_a[k]) + ATOL) \
                & ~((g_a[k] == 0) & (g_b[k] == 0))
            step = float(np.abs(p_a[k] - before[k]).max(initial=0.0))
            tol = np.where(noise, tol + 2.0 * step, tol)
        diff = np.abs(p_b[k].astype(np.float64) - p_a[k])
        assert (diff <= tol).all(), (f"{family}: {k} after the step differs by up to "
                                     f"{diff.max():.3g} ({int((diff > tol).sum())} of {diff.size} "
                                     "elements beyond tolerance)")
    for k in extra[0]:  # MoCo's queue of keys and its pointer
        assert_same(f"{family}: extra state {k}", np.asarray(extra[1][k]), np.asarray(extra[0][k]))
