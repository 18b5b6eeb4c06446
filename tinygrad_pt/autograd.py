"""Function, the backward pass, no_grad and anomaly mode: the autograd core.

A ``Function`` works on raw arrays (numpy or cupy). Its ``forward`` computes the output and keeps on
``self`` only what its ``backward`` reads; ``backward(grad)`` returns one gradient per input (None for
an input that needs none). ``Function.apply`` wraps this in Tensors and, when gradients are on,
records the inputs so that ``Tensor.backward`` can walk the graph back.

The backward pass orders the graph with an explicit stack (no recursion: a GPT graph has thousands
of nodes), adds each incoming gradient into a dict keyed by tensor, consumes each entry once, and
frees every function's saved arrays once its backward has run (unless ``retain_graph=True``).
"""
from __future__ import annotations

import contextlib
import traceback

import numpy as np

from .backend import array_module, is_cupy_array

# ----------------------------------------------------------------------------------------------------
# Global switches: gradient recording and anomaly mode

_grad_enabled = True
_anomaly_enabled = False

# tensor.py registers the Tensor class here at import: Function.apply must build Tensors, and
# Tensor must call Function, so one of the two learns of the other at run time, not import time.
_Tensor = None


def is_grad_enabled() -> bool:
    return _grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Turn gradient recording on or off inside a ``with`` block (or a decorated function)."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


class no_grad(set_grad_enabled):
    """``with tg.no_grad():`` runs ops without recording a graph (inference, optimizer steps)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    def __init__(self):
        super().__init__(True)


class AnomalyError(RuntimeError):
    """Raised in anomaly mode by the first op whose output (or input gradient) is NaN or Inf."""


class detect_anomaly(contextlib.ContextDecorator):
    """Inside this block every op remembers where it was created, and the first op that produces a
    NaN/Inf in forward (from finite inputs) or in backward raises AnomalyError naming it.
    It costs a stack capture and a finiteness check per op, so it is off by default."""

    def __enter__(self):
        global _anomaly_enabled
        self.prev, _anomaly_enabled = _anomaly_enabled, True
        return self

    def __exit__(self, *exc):
        global _anomaly_enabled
        _anomaly_enabled = self.prev
        return False


def _all_finite(a) -> bool:
    if a.dtype.kind not in "fc":
        return True
    return bool(array_module(a).isfinite(a).all())


# ----------------------------------------------------------------------------------------------------
# Broadcasting, undone in one place

def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`: the adjoint of broadcasting `shape` up to grad.shape.

    Leading axes that broadcasting added are summed away; axes where `shape` has 1 are summed
    with keepdims. Called by binary ops only when the shapes differ.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)


# ----------------------------------------------------------------------------------------------------
# Function

class Function:
    """One differentiable op: ``forward(*arrays, **params) -> array`` and ``backward(grad) -> grads``.

    Attributes set by ``apply``:
      needs_input_grad  tuple of bools, one per input (backward may skip work where False)
      inputs            the input Tensors, only while the graph is recorded and not yet freed
    """
    # An op whose job is to write infinities (masked_fill with -inf) says so, so that anomaly mode
    # does not flag it; NaN is flagged for every op.
    anomaly_allows_inf = False

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The label shown by viz and in error messages."""
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and return the output Tensor, recording the graph."""
        fn = cls()
        arrays = []
        for t in inputs:
            if not isinstance(t, _Tensor):
                raise TypeError(f"{cls.__name__}: expected Tensor inputs, got {type(t).__name__}")
            arrays.append(t.data)
        _check_same_device(cls.__name__, inputs, arrays)
        fn.needs_input_grad = needs = tuple(t.requires_grad for t in inputs)
        record = _grad_enabled and any(needs)

        if _anomaly_enabled:
            fn._created_at = "".join(traceback.format_stack(limit=12)[:-2])
        out = fn.forward(*arrays, **params)
        if isinstance(out, np.generic) or not hasattr(out, "shape"):
            out = array_module(*arrays).asarray(out)  # numpy scalar results become 0-d arrays
        if _anomaly_enabled:
            _check_forward(fn, arrays, out)

        result = _Tensor._make(out, requires_grad=record)
        if record:
            fn.inputs = inputs
            result._ctx = fn
        return result

    def release(self):
        """Free what forward saved and drop the links to the inputs (after backward)."""
        name = self.name
        self.__dict__.clear()
        self.released_name = name

    def __repr__(self):
        return f"<{self.name}>"


def _check_same_device(op, inputs, arrays):
    on_gpu = [is_cupy_array(a) for a in arrays]
    if any(on_gpu) and not all(on_gpu):
        devices = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in inputs)
        raise RuntimeError(f"{op}: all inputs must be on the same device, got {devices}; "
                           "move them with .to(device) first")


def _describe(fn, arrays) -> str:
    shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in arrays)
    where = getattr(fn, "_created_at", "")
    return f"{fn.name}(inputs: {shapes})" + (f"\ncreated at:\n{where}" if where else "")


def _check_forward(fn, arrays, out):
    if not all(_all_finite(a) for a in arrays):
        return  # not the first op to see a non-finite value
    xp = array_module(out)
    if out.dtype.kind in "fc":
        bad = bool(xp.isnan(out).any()) if fn.anomaly_allows_inf else not _all_finite(out)
        if bad:
            raise AnomalyError(f"anomaly: forward of {_describe(fn, arrays)} produced NaN/Inf "
                               "from finite inputs")


# ----------------------------------------------------------------------------------------------------
# The backward pass

def topological_order(root):
    """Tensors that `root` depends on and that require grad, parents before children (root last).

    Iterative depth-first post-order with an explicit stack: deep chains cannot hit Python's
    recursion limit.
    """
    order, seen = [], {id(root)}
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        stack.append((t, True))
        fn = t._ctx
        inputs = getattr(fn, "inputs", None) if fn is not None else None
        if inputs:
            for parent in inputs:
                if parent.requires_grad and id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append((parent, False))
    return order


def run_backward(root, grad, retain_graph: bool = False):
    """Propagate `grad` (an array shaped like root) to every tensor that requires grad.

    Leaves (and tensors that called retain_grad) accumulate into ``.grad``; gradients of other
    tensors live only in the local dict and are dropped once consumed, so memory falls during
    the sweep.
    """
    grads = {id(root): grad}
    for t in reversed(topological_order(root)):
        g = grads.pop(id(t), None)
        if g is None:
            continue  # no path from root reached this tensor's gradient
        for hook in t._hooks.values():
            new = hook(_Tensor._make(g))
            if new is not None:
                g = _hook_result(new, g)
        fn = t._ctx
        if fn is None or t._retains_grad:
            t._accumulate_grad(g)
        if fn is None:
            continue
        if not hasattr(fn, "inputs"):
            raise RuntimeError(
                f"backward through {getattr(fn, 'released_name', fn.name)} a second time: its saved "
                "arrays were freed by the first backward; pass retain_graph=True to the first call")
        _propagate(fn, g, grads)
        if not retain_graph:
            fn.release()


def _hook_result(new, g):
    data = new.data if isinstance(new, _Tensor) else new
    if data.shape != g.shape:
        raise RuntimeError(f"register_hook: a hook returned a gradient of shape {tuple(data.shape)}, "
                           f"expected {tuple(g.shape)}")
    return data


def _propagate(fn, g, grads):
    """Call fn.backward(g) and add each input's gradient into `grads`."""
    in_grads = fn.backward(g)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    if len(in_grads) != len(fn.inputs):
        raise RuntimeError(f"{fn.name}.backward returned {len(in_grads)} gradients for "
                           f"{len(fn.inputs)} inputs")
    for i, (inp, need, gi) in enumerate(zip(fn.inputs, fn.needs_input_grad, in_grads)):
        if gi is None or not need:
            continue
        if gi.shape != inp.data.shape:  # a bug in an op's backward: say which op
            raise RuntimeError(f"{fn.name}.backward: gradient {i} has shape {tuple(gi.shape)}, "
                               f"but input {i} has shape {tuple(inp.data.shape)}")
        if gi.dtype != inp.data.dtype:
            gi = gi.astype(inp.data.dtype)  # gradients take their input's dtype (mixed-dtype ops)
        if _anomaly_enabled and not _all_finite(gi):
            raise AnomalyError(f"anomaly: backward of {_describe(fn, [inp.data])} produced NaN/Inf "
                               f"in the gradient of input {i}")
        key = id(inp)
        prev = grads.get(key)
        grads[key] = gi if prev is None else prev + gi  # never in place: gi may be shared
