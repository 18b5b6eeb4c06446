"""PyTorch as the oracle (float64): a mixed graph's value and every input gradient, then op by op
over hypothesis shapes, with PyTorch's rules for ties (maximum, amax), clamp bounds, abs at 0, and
var's ddof passed explicitly (torch's default correction is 1, ours is NumPy's 0)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
from tinygrad_pt.testing.strategies import arrays, axes, broadcastable_shapes, matmul_shapes, shapes

pytestmark = pytest.mark.torch

SMALL = dict(max_dims=3, max_side=4)


def both(*arrays_):
    """Each array as a tinygrad_pt tensor and a torch tensor, both float64 and requiring grad."""
    torch = pytest.importorskip("torch")
    ours = [tg.tensor(a, requires_grad=True) for a in arrays_]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays_]
    return ours, theirs


def compare(fn_ours, fn_torch, *arrays_, rtol=1e-10, atol=1e-12):
    """Forward values, and gradients for a random upstream gradient, must agree."""
    torch = pytest.importorskip("torch")
    ours, theirs = both(*arrays_)
    y, yt = fn_ours(*ours), fn_torch(*theirs)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    u = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(u)
    yt.backward(torch.tensor(u))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        want = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape) if a.grad is None else a.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def dims(axis, ndim):
    """Our NumPy-style axis as torch's dim: None means every axis (an explicit tuple for torch)."""
    return tuple(range(ndim)) if axis is None else axis


# ----------------------------------------------------------------------------------------------------
# A mixed graph


def test_mixed_graph_value_and_every_gradient():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(42)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    b, c = rng.standard_normal(5), rng.standard_normal((3, 1))

    def graph(x, w, b, c, lib):
        h = x @ w + b                                        # matmul, broadcasting add
        e = lib.exp(h * 0.3)
        lg = lib.log(e + 1.0)
        s = lib.sqrt(lib.abs(h) + 0.5)
        m = lib.maximum(lg, s)
        sel = lib.where(h > 0, m, c * 2.0)                   # (3, 5) from (3, 1)
        p = sel ** 2 / (1.0 + lib.abs(c)) - 2.0 ** c         # pow, division, rpow
        if lib is tg:
            r = p.sum(axis=1, keepdims=True) * p.max(axis=0)  # (3, 1) * (5,)
            return (r.var(axis=0, ddof=1).sum() + tg.logsumexp(r, axis=-1).mean()
                    + r.std(axis=(0, 1)) + p.min() / p.mean(axis=(0, -1)))
        r = p.sum(dim=1, keepdim=True) * p.amax(dim=0)
        return (r.var(dim=0, correction=1).sum() + torch.logsumexp(r, dim=-1).mean()
                + r.std(dim=(0, 1), correction=0) + p.amin() / p.mean(dim=(0, -1)))

    compare(lambda *t: graph(*t, tg), lambda *t: graph(*t, torch), x, w, b, c)


# ----------------------------------------------------------------------------------------------------
# Op by op


def operand_pairs(lo=-3.0, hi=3.0, **kw):
    return broadcastable_shapes(**SMALL).flatmap(
        lambda s: st.tuples(arrays(s[0], min_value=lo, max_value=hi, **kw),
                            arrays(s[1], min_value=lo, max_value=hi, **kw)))


def integer_valued(pair):
    """Round to small integers so that ties (maximum, amax) actually happen."""
    return tuple(np.round(a) for a in pair)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "maximum": (tg.maximum, lambda a, b: a.maximum(b)),
    "minimum": (tg.minimum, lambda a, b: a.minimum(b)),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(pair=operand_pairs().map(integer_valued))
def test_binary_ops_with_ties(name, pair):
    ours, theirs = BINARY[name]
    compare(ours, theirs, *pair)


@given(operand_pairs(min_magnitude=0.5))
def test_div(pair):
    compare(lambda a, b: a / b, lambda a, b: a / b, *pair)


@given(operand_pairs(lo=0.0, hi=3.0).map(integer_valued))
def test_pow_tensor_exponent_including_zero_base(pair):
    base, exponent = pair  # base 0 with exponent 0 or more: PyTorch's zero rules
    compare(lambda a, b: a ** b, lambda a, b: a ** b, base, exponent)


@pytest.mark.parametrize("p", [0, 1, 2, 3, -1, 0.5, 2.5])
@given(data=st.data())
def test_pow_scalar(p, data):
    x = data.draw(arrays(shapes(**SMALL), min_value=0.25 if p != int(p) or p < 0 else -3.0,
                         max_value=3.0, min_magnitude=0.25))
    compare(lambda a: a ** p, lambda a: a ** p, x)
    compare(lambda a: 1.5 ** a, lambda a: 1.5 ** a, x)


UNARY = {
    "exp": (tg.exp, "exp", {}),
    "log": (tg.log, "log", dict(min_value=0.1)),
    "sqrt": (tg.sqrt, "sqrt", dict(min_value=0.1)),
    "sin": (tg.sin, "sin", {}),
    "cos": (tg.cos, "cos", {}),
    "neg": (tg.neg, "neg", {}),
    "abs": (tg.abs, "abs", {}),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary(name, data):
    torch = pytest.importorskip("torch")
    ours, torch_name, kw = UNARY[name]
    kw = {"min_value": -3.0, "max_value": 3.0, **kw}
    x = data.draw(arrays(shapes(**SMALL), **kw))
    if name == "abs":
        x = np.round(x)  # zeros included: the gradient at 0 is 0 in both
    compare(ours, getattr(torch, torch_name), x)


@given(arrays(shapes(**SMALL), min_value=-2.0, max_value=2.0).map(lambda a: np.round(a * 2) / 2),
       st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None), (0.0, 0.0)]))
def test_clip_matches_clamp_including_bounds(x, bounds):
    lo, hi = bounds  # half-integer values land exactly on the bounds
    compare(lambda a: a.clip(lo, hi), lambda a: a.clamp(lo, hi), x)


@given(data=st.data())
def test_where(data):
    torch = pytest.importorskip("torch")
    a, b = data.draw(operand_pairs())
    cond = data.draw(arrays(np.broadcast_shapes(a.shape, b.shape))) > 0
    compare(lambda x, y: tg.where(tg.tensor(cond), x, y),
            lambda x, y: torch.where(torch.tensor(cond), x, y), a, b)


@given(matmul_shapes(max_batch_dims=2, max_side=4).flatmap(
    lambda s: st.tuples(arrays(s[0]), arrays(s[1]))))
def test_matmul(pair):
    compare(lambda a, b: a @ b, lambda a, b: a @ b, *pair, rtol=1e-9, atol=1e-10)


REDUCE = {
    # name: (ours, torch's, integer-valued input so that ties happen)
    "sum": (lambda t, ax, kd: t.sum(axis=ax, keepdims=kd),
            lambda t, d, kd: t.sum(dim=d, keepdim=kd), False),
    "mean": (lambda t, ax, kd: t.mean(axis=ax, keepdims=kd),
             lambda t, d, kd: t.mean(dim=d, keepdim=kd), False),
    "max": (lambda t, ax, kd: t.max(axis=ax, keepdims=kd),
            lambda t, d, kd: t.amax(dim=d, keepdim=kd), True),
    "min": (lambda t, ax, kd: t.min(axis=ax, keepdims=kd),
            lambda t, d, kd: t.amin(dim=d, keepdim=kd), True),
    "logsumexp": (lambda t, ax, kd: tg.logsumexp(t, axis=ax, keepdims=kd),
                  lambda t, d, kd: t.logsumexp(dim=d, keepdim=kd), False),
}


@st.composite
def reduce_case(draw, ties):
    x = draw(arrays(shapes(**SMALL), min_value=-3.0, max_value=3.0))
    if ties:
        x = np.round(x)
    # torch reads dim=() as "every axis"; NumPy as "no axis": that difference is left out here.
    axis = draw(axes(x.ndim).filter(lambda a: a != ()))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("name", list(REDUCE))
@given(data=st.data())
def test_reductions(name, data):
    ours, theirs, ties = REDUCE[name]
    x, axis, keepdims = data.draw(reduce_case(ties))
    compare(lambda t: ours(t, axis, keepdims), lambda t: theirs(t, dims(axis, x.ndim), keepdims), x)


@pytest.mark.parametrize("ddof", [0, 1])
@given(data=st.data())
def test_var_std_with_explicit_ddof(ddof, data):
    x, axis, keepdims = data.draw(reduce_case(ties=False))
    n = x.size // max(1, np.sum(x, axis=axis).size)
    if n <= ddof:
        return  # no degrees of freedom: we raise, torch returns NaN
    d = dims(axis, x.ndim)
    compare(lambda t: t.var(axis=axis, keepdims=keepdims, ddof=ddof),
            lambda t: t.var(dim=d, keepdim=keepdims, correction=ddof), x)
    if np.ptp(x, axis=axis).min() < 1e-3:
        return  # std is not differentiable at a constant slice (see the constant test below)
    compare(lambda t: t.std(axis=axis, keepdims=keepdims, ddof=ddof),
            lambda t: t.std(dim=d, keepdim=keepdims, correction=ddof), x)


def test_std_of_constant_input_and_max_of_ties_match_torch():
    x = np.array([[2.0, 2.0, 2.0], [1.0, 3.0, 3.0]])
    compare(lambda t: t.std(axis=1), lambda t: t.std(dim=1, correction=0), x)
    compare(lambda t: t.max(), lambda t: t.amax(), x)
    compare(lambda t: t.max(axis=1), lambda t: t.amax(dim=1), x)
