"""gradcheck and gradgradcheck: compare an op's analytic first (and second) derivatives with central
finite differences, in float64.

The function is driven by a random upstream gradient ``u`` (not ``.sum()``: the gradient of a
softmax's sum is zero whatever its backward does), i.e. we check the gradient of ``<u, f(x)>``.
Small inputs are checked element by element (DeZero); larger ones along a few random directions
(Chainer), which costs two forward calls per direction instead of two per element.
"""
from __future__ import annotations

import numpy as np

from ..autograd import grad, no_grad
from ..backend import to_device
from ..tensor import Tensor

PER_ELEMENT_LIMIT = 512  # inputs up to this many elements (all inputs together) are checked fully
N_DIRECTIONS = 8


class GradcheckError(AssertionError):
    """The analytic and numeric gradients differ beyond the tolerances."""


def _as_float64_leaf(x):
    """A float64 CPU copy of an input; float inputs that require grad stay requiring grad."""
    if isinstance(x, Tensor):
        data = to_device(x.data, "cpu")
        if data.dtype.kind == "f":
            return Tensor(_float64_copy(data), requires_grad=x.requires_grad)
        return Tensor(data)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return Tensor(_float64_copy(x), requires_grad=True)
    return x  # ints, Python numbers, None: passed through unchanged


def _float64_copy(a):
    """A float64 copy of `a` that keeps its kind of memory layout: a transposed or strided input
    stays non-contiguous, so the check still covers how the op handles strides."""
    if a.ndim == 0 or a.flags.c_contiguous or a.flags.f_contiguous:
        return a.astype(np.float64, order="K")  # "K" keeps a transpose's (Fortran) order
    out = np.empty(a.shape[:-1] + (2 * a.shape[-1],))[..., ::2]  # every other element: strided
    out[...] = a
    return out


def _output(fn, inputs):
    out = fn(*inputs)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, per_element: bool | None = None) -> bool:
    """Check d<u, fn(*inputs)>/d(input) for every input that requires grad.

    inputs: Tensors (those with requires_grad=True are checked) or float ndarrays (checked);
    other values are passed through. Everything is copied to float64 on the CPU first (a
    non-contiguous input stays non-contiguous); the caller's arrays and tensors are untouched.
    Raises GradcheckError naming eps, tolerances, the input, the worst element's index and both
    values; returns True otherwise, so ``assert gradcheck(...)`` reads well.

    >>> import tinygrad_pt as tg
    >>> gradcheck(lambda x: (x * x).sum(), tg.randn(3, requires_grad=True))
    True
    """
    inputs = [_as_float64_leaf(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass Tensors with requires_grad=True "
                         "or float ndarrays")
    rng = np.random.default_rng(seed)

    out = _output(fn, inputs)
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned dtype {out.dtype} for float64 inputs; an op "
                        "inside casts to a lower precision")
    u = rng.standard_normal(out.shape)
    out.backward(u)
    analytic = {i: (np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad.numpy())
                for i in checked}

    def objective():
        with no_grad():
            return float((_output(fn, inputs).numpy() * u).sum())

    _check_numeric("gradcheck", objective, [(f"input {i}", inputs[i]) for i in checked],
                   [analytic[i] for i in checked], eps, atol, rtol, rng, per_element)
    return True


def _check_numeric(check, objective, named, analytic, eps, atol, rtol, rng, per_element):
    """Compare `analytic` (one array per tensor of `named`, a list of (name, Tensor)) with central
    differences of the scalar `objective()` in those tensors: per element for small inputs,
    along random directions for large ones."""
    total = sum(t.size for _, t in named)
    if per_element if per_element is not None else total <= PER_ELEMENT_LIMIT:
        for (name, t), a in zip(named, analytic):
            numeric = _numeric_per_element(objective, t.data, eps)
            _compare(name, a, numeric, eps, atol, rtol, t.shape, check)
        return
    originals = [t.data.copy() for _, t in named]
    for d in range(N_DIRECTIONS):
        dirs = [rng.standard_normal(t.shape) for _, t in named]
        # Each input's own array is written in place (the function may hold it); restored
        # from the copy, not by subtracting, so no rounding drift accumulates.
        for (_, t), orig, di in zip(named, originals, dirs):
            t.data[...] = orig + eps * di
        plus = objective()
        for (_, t), orig, di in zip(named, originals, dirs):
            t.data[...] = orig - eps * di
        minus = objective()
        for (_, t), orig in zip(named, originals):
            t.data[...] = orig
        numeric = np.array((plus - minus) / (2 * eps))
        predicted = np.array(sum(float((a * di).sum()) for a, di in zip(analytic, dirs)))
        _compare(f"random direction {d} (the directional derivative of all checked inputs "
                 "together)", predicted, numeric, eps, atol, rtol, (), check)


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0, per_element: bool | None = None) -> bool:
    """Check the second derivatives of fn: the double backward against finite differences of
    the analytic first derivative, in float64.

    With u a random upstream gradient (or `grad_outputs`) and F(x, u) = d<u, fn(x)>/dx the first
    derivative (``tg.autograd.grad`` with create_graph), checks d<v, F>/dx and d<v, F>/du for a
    random second-order upstream v: the backward of the backward, with respect to the inputs
    and to u. inputs: a Tensor or array, or a tuple/list of them, as for gradcheck. Raises
    GradcheckError as gradcheck does; returns True.

    >>> import tinygrad_pt as tg
    >>> gradgradcheck(lambda x: (x * x * x).sum(), tg.randn(3, requires_grad=True))
    True
    """
    inputs = [_as_float64_leaf(x) for x in (inputs if isinstance(inputs, (tuple, list))
                                            else (inputs,))]
    checked = [inputs[i] for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad; pass Tensors with "
                         "requires_grad=True or float ndarrays")
    rng = np.random.default_rng(seed)
    out = _output(fn, inputs)
    if out.dtype != np.float64:
        raise TypeError(f"gradgradcheck: fn returned dtype {out.dtype} for float64 inputs; an op "
                        "inside casts to a lower precision")
    if grad_outputs is None:
        u = Tensor(rng.standard_normal(out.shape), requires_grad=True)
    else:
        u = Tensor(_float64_copy(to_device(getattr(grad_outputs, "data", grad_outputs), "cpu")),
                   requires_grad=True)
        if u.shape != out.shape:
            raise ValueError(f"gradgradcheck: grad_outputs has shape {u.shape}, expected the "
                             f"output's shape {out.shape}")

    def first(create_graph):
        """F(x, u) = d<u, fn(x)>/dx for each checked input (zeros where fn ignores it)."""
        out = _output(fn, inputs)
        if not out.requires_grad:
            return [Tensor(np.zeros(x.shape)) for x in checked]
        gs = grad(out, checked, grad_outputs=u, create_graph=create_graph, allow_unused=True)
        return [Tensor(np.zeros(x.shape)) if g is None else g for g, x in zip(gs, checked)]

    gs = first(create_graph=True)
    vs = [rng.standard_normal(g.shape) for g in gs]
    targets = checked + [u]
    live = [(g, v) for g, v in zip(gs, vs) if g.requires_grad]
    if live:
        found = grad([g for g, _ in live], targets, grad_outputs=[v for _, v in live],
                     allow_unused=True)
    else:
        found = [None] * len(targets)
    analytic = [np.zeros(t.shape) if g is None else g.numpy() for g, t in zip(found, targets)]

    def objective():
        return float(sum((g.numpy() * v).sum() for g, v in zip(first(create_graph=False), vs)))

    names = [f"input {i}" for i, x in enumerate(inputs) if isinstance(x, Tensor)
             and x.requires_grad] + ["grad_output (the upstream gradient u)"]
    _check_numeric("gradgradcheck", objective, list(zip(names, targets)), analytic, eps, atol,
                   rtol, rng, per_element)
    return True


def _numeric_per_element(objective, data, eps):
    """Central differences, one element at a time, written into `data` itself (np.ndindex, not a
    flattened view: reshape would silently copy a non-contiguous array)."""
    numeric = np.zeros(data.shape)
    for idx in np.ndindex(*data.shape):
        orig = data[idx]
        data[idx] = orig + eps
        plus = objective()
        data[idx] = orig - eps
        minus = objective()
        data[idx] = orig
        numeric[idx] = (plus - minus) / (2 * eps)
    return numeric


def _compare(what, analytic, numeric, eps, atol, rtol, shape, check="gradcheck"):
    """Raise GradcheckError at the worst element where |analytic - numeric| > atol + rtol|numeric|.

    A non-finite value on either side is a mismatch unless both sides agree exactly (the same
    infinity, or NaN on both): a NaN must never pass because NaN > tol is False.
    """
    with np.errstate(invalid="ignore"):
        diff = np.abs(analytic - numeric)
        err = diff - (atol + rtol * np.abs(numeric))
    agree = (analytic == numeric) | (np.isnan(analytic) & np.isnan(numeric))
    err = np.where(agree, -np.inf, np.where(np.isfinite(err), err, np.inf))
    if analytic.size and err.max() > 0:
        k = int(np.argmax(err))
        idx = np.unravel_index(k, analytic.shape) if analytic.ndim else ()
        raise GradcheckError(
            f"{check} failed for {what} (shape {tuple(shape)}), eps={eps}, atol={atol}, "
            f"rtol={rtol}: worst element at index {tuple(int(j) for j in idx)}: "
            f"analytic {float(analytic[idx]):.8g}, numeric {float(numeric[idx]):.8g} "
            f"(max abs difference {np.max(diff):.3e}, {int((err > 0).sum())} of "
            f"{analytic.size} element(s) outside tolerance)")
