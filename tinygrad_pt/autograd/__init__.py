"""Function, the backward pass, no_grad and anomaly mode: the autograd core.

A ``Function`` works on raw arrays (numpy or cupy). Its ``forward`` computes the output and keeps on
``self`` only what its ``backward`` reads; ``backward(grad)`` returns one gradient per input (None for
an input that needs none). ``Function.apply`` wraps this in Tensors and, when gradients are on,
records the inputs so that ``Tensor.backward`` can walk the graph back.

The backward pass orders the graph with an explicit stack (no recursion: a GPT graph has thousands
of nodes), adds each incoming gradient into a dict keyed by tensor, consumes each entry once, and
frees every function's saved arrays once its backward has run (unless ``retain_graph=True``).

Higher-order gradients (``backward(create_graph=True)``, ``grad(..., create_graph=True)``) are one
switch on that same pass (Chainer's FunctionNode design):

- create_graph=False: gradients are raw arrays and each rule is ``fn.backward(grad)``, exactly the
  first-order path; nothing else runs per op.
- create_graph=True: gradients are Tensors and each rule is ``fn.graph_backward(grad, output)``,
  run with recording on, so the gradient is itself a graph that can be differentiated again (and
  again: third derivatives repeat ``grad``).
- An op opts in explicitly, because reusing a rule on Tensors is right only if every saved value
  it reads that depends on the inputs is a Tensor in the graph (a saved ``rstd`` or ``lse`` used
  as a constant would give a silently wrong second derivative). Either it names, in
  ``saved_inputs`` / ``saved_output``, the attributes holding its inputs and output, and its own
  ``backward`` then runs on a copy of it whose attributes are those Tensors (``array_module`` of a
  Tensor being a namespace of Tensor ops, ops/tensor_xp.py); or it overrides ``graph_backward``
  with a rule composed of Tensor ops (fused kernels: softmax, layer norm, attention, the losses).
  An op that did neither raises "X has no double backward" under create_graph.
- While a rule runs with create_graph, ``Tensor.__array__`` refuses, so NumPy cannot quietly turn a
  Tensor into a constant; version counters are checked for every input and output of the op.

``grad`` (below) is the same pass restricted to the functions on a path to its inputs, returning
their gradients instead of accumulating them; ``tg.autograd.functional`` builds vjp, jvp, hvp,
jacobian and hessian on it.
"""
from __future__ import annotations

import contextlib
import copy
import os
import traceback

import numpy as np

from ..backend import array_module, is_cupy_array

# ----------------------------------------------------------------------------------------------------
# Global switches: gradient recording and anomaly mode

_grad_enabled = True
_anomaly_enabled = False
# profiler.py sets both inside ``with tg.profile()``; the hot path reads only the boolean, so an
# unprofiled op pays one global check and nothing else.
_profiling = False
_profiler = None

# tensor.py registers the Tensor class here at import: Function.apply must build Tensors, and
# Tensor must call Function, so one of the two learns of the other at run time, not import time.
_Tensor = None


def is_grad_enabled() -> bool:
    return _grad_enabled


class _Switch(contextlib.ContextDecorator):
    """Set a module-level flag inside a ``with`` block or a decorated function.

    The previous values are kept on a stack, not in one attribute: a decorator reuses the same
    object for every call, so a recursive decorated function enters it again before leaving it.
    """
    flag = ""  # the name of the module global this switch sets

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = []

    def __enter__(self):
        self._prev.append(globals()[self.flag])
        globals()[self.flag] = self.mode
        return self

    def __exit__(self, *exc):
        globals()[self.flag] = self._prev.pop()
        return False


class set_grad_enabled(_Switch):
    """Turn gradient recording on or off inside a ``with`` block (or a decorated function)."""
    flag = "_grad_enabled"


class no_grad(set_grad_enabled):
    """``with tg.no_grad():`` runs ops without recording a graph (inference, optimizer steps).

    Also a decorator, with or without parentheses: ``@tg.no_grad()`` or ``@tg.no_grad``.
    """

    def __new__(cls, func=None):
        if func is not None:  # bare @tg.no_grad: decorate func with a fresh instance
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func=None):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Turn recording back on inside a ``no_grad`` region."""

    def __init__(self):
        super().__init__(True)


class AnomalyError(RuntimeError):
    """Raised in anomaly mode by the first op whose output (or input gradient) is NaN or Inf."""


class detect_anomaly(_Switch):
    """Inside this block every op remembers where it was created, and the first op that produces a
    NaN/Inf in forward (from finite inputs) or in backward (from a finite incoming gradient)
    raises AnomalyError naming it, its input shapes and the user code that created it.
    It costs a stack capture and a finiteness check per op, so it is off by default.

    The backward check runs when ``backward()`` is called inside the block; the ops it names
    must have been created inside the block for the "created at" part.
    """
    flag = "_anomaly_enabled"

    def __init__(self, mode: bool = True):
        super().__init__(mode)


def is_anomaly_enabled() -> bool:
    return _anomaly_enabled


def _all_finite(a) -> bool:
    if a.dtype.kind not in "fc":
        return True
    return bool(array_module(a).isfinite(a).all())


# ----------------------------------------------------------------------------------------------------
# Broadcasting, undone in one place

def broadcast_shape(*shapes):
    """NumPy's broadcast of `shapes` as a tuple, or None when they do not broadcast.

    Plain Python, cheaper than np.broadcast_shapes for the few dimensions of a network; binary
    ops call it on every forward whose shapes differ.
    """
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for s in shapes:
        for i, n in enumerate(s, ndim - len(s)):
            if n != 1 and n != out[i]:
                if out[i] != 1:
                    return None
                out[i] = n
    return tuple(out)


def broadcasts_to(shape, target) -> bool:
    """True when `shape` broadcasts to exactly `target` (a mask or weight that never enlarges)."""
    return broadcast_shape(tuple(shape), tuple(target)) == tuple(target)


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

    # Higher order (see the module docstring). An op whose backward is written with operators and
    # array-module calls that Tensor also offers opts in by naming the attributes of `self` that
    # hold its inputs (one name per input, None for an input backward does not read) and its
    # output; every other attribute backward reads must not depend on the inputs' values (shapes,
    # axes, masks). None: the op has not opted in (or overrides graph_backward).
    saved_inputs = None
    saved_output = None

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def graph_backward(self, grad, output):
        """The backward rule on Tensors (create_graph): `grad` and the result are Tensors, and
        the result is built from recorded ops, so that it can be differentiated again.

        By default, ``backward`` itself runs on a copy of this function whose `saved_inputs` and
        `saved_output` attributes are the input Tensors (``self.inputs``) and the output Tensor;
        ``array_module`` of a Tensor is a namespace of Tensor ops (ops/tensor_xp.py), so the
        one rule serves both paths. An op whose backward cannot run so (a fused kernel) overrides
        this method with a rule composed of Tensor ops, reading ``self.inputs`` and `output`.
        """
        if self.saved_inputs is None:
            raise RuntimeError(
                f"{self.name} has no double backward: its backward runs on raw arrays only, so it "
                "cannot be differentiated again (backward(create_graph=True), "
                "tg.autograd.grad(..., create_graph=True), gradgradcheck); compose the op of "
                "differentiable ops, or give it saved_inputs/saved_output or a graph_backward")
        stand_in = copy.copy(self)  # the original keeps its arrays for a later first-order pass
        for name, t in zip(self.saved_inputs, self.inputs):
            if name is not None:
                setattr(stand_in, name, t)
        if self.saved_output is not None:
            setattr(stand_in, self.saved_output, output)
        return type(self).backward(stand_in, grad)

    @property
    def name(self) -> str:
        """The label shown by viz and in error messages."""
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and return the output Tensor, recording the graph.

        The graph is recorded only when gradients are on, some input requires grad, and the
        output is floating point (an integer result, e.g. a cast or an argmax, has no gradient).
        """
        fn = cls()
        for t in inputs:
            if not isinstance(t, _Tensor):
                raise TypeError(f"{cls.__name__}: expected Tensor inputs, got {type(t).__name__}")
        arrays = [t.data for t in inputs]
        if len(arrays) > 1 and any(type(a) is not np.ndarray for a in arrays):
            _check_same_device(cls.__name__, arrays)  # some input is not a plain NumPy array
        fn.needs_input_grad = tuple(t._requires_grad for t in inputs)

        if _anomaly_enabled:
            fn._created_at = _user_stack()
        if _profiling:
            out = _profiler.forward(fn, arrays, params)
        else:
            out = fn.forward(*arrays, **params)
        if isinstance(out, np.generic) or not hasattr(out, "shape"):
            out = array_module(*arrays).asarray(out)  # numpy scalar results become 0-d arrays
        if _anomaly_enabled:
            _check_forward(fn, arrays, out)

        record = _grad_enabled and any(fn.needs_input_grad) and out.dtype.kind == "f"
        result = _Tensor._make(out, requires_grad=record)
        if record:
            fn.inputs = inputs
            # The inputs' versions now, and the output's cell: backward compares them (see
            # _check_versions). A tensor never written in place has no cell and reads as 0.
            fn.input_versions = tuple(0 if t._vc is None else t._vc.value for t in inputs)
            fn.output_version = result._version_cell()
            result._ctx = fn
        return result

    def release(self):
        """Free what forward saved and drop the links to the inputs (after backward)."""
        name = self.name
        self.__dict__.clear()
        self.released_name = name

    def __repr__(self):
        return f"<{self.name}>"


def _check_same_device(op, arrays):
    """Raise if some of `arrays` are CuPy (GPU) arrays and others are not: never copy silently."""
    on_gpu = [is_cupy_array(a) for a in arrays]
    if any(on_gpu) and not all(on_gpu):
        got = ", ".join(f"{tuple(a.shape)} on {'cuda' if g else 'cpu'}"
                        for a, g in zip(arrays, on_gpu))
        raise RuntimeError(f"{op}: all inputs must be on the same device, got {got}; "
                           "move them with .to(device) first")


# Frames from these files are the op machinery, not the user's code: "created at" skips them.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tinygrad_pt/
_MACHINERY = (os.path.join(_PACKAGE_DIR, "ops") + os.sep,
              os.path.join(_PACKAGE_DIR, "autograd") + os.sep,
              os.path.join(_PACKAGE_DIR, "tensor.py"))


def _user_stack(depth: int = 6) -> str:
    """The last `depth` frames of the current stack above the op machinery, formatted."""
    frames = traceback.extract_stack()
    while frames and frames[-1].filename.startswith(_MACHINERY):
        frames.pop()
    return "".join(traceback.format_list(frames[-depth:]))


def _anomaly(what: str, fn, arrays, problem: str) -> AnomalyError:
    """The error naming the op, its inputs' shapes and dtypes, and where the user created it."""
    shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in arrays)
    msg = f"anomaly: {what} of {fn.name} (inputs: {shapes}) {problem}"
    where = getattr(fn, "_created_at", "")
    if where:
        msg += f"\n{fn.name} was created at (most recent call last):\n{where.rstrip()}"
    return AnomalyError(msg)


def _check_forward(fn, arrays, out):
    if not all(_all_finite(a) for a in arrays):
        return  # not the first op to see a non-finite value
    if out.dtype.kind in "fc":
        xp = array_module(out)
        bad = bool(xp.isnan(out).any()) if fn.anomaly_allows_inf else not _all_finite(out)
        if bad:
            raise _anomaly("forward", fn, arrays, "produced NaN/Inf from finite inputs")


# ----------------------------------------------------------------------------------------------------
# The backward pass

def topological_order(*roots):
    """Tensors that `roots` depend on and that require grad, inputs before outputs (roots last).

    Iterative depth-first post-order with an explicit stack, so deep chains cannot hit Python's
    recursion limit. A tensor is marked when it is expanded, not when it is pushed: it may sit
    on the stack twice, but it is appended only after everything it was computed from, which a
    tensor reached by two paths (x -> p -> q, and p used again by the root) needs.
    """
    order, done = [], set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in done:
            continue  # reached again by another path while it waited on the stack
        done.add(id(t))
        stack.append((t, True))
        fn = t._ctx
        for parent in (getattr(fn, "inputs", ()) if fn is not None else ()):
            if parent._requires_grad and id(parent) not in done:
                stack.append((parent, False))
    return order


def run_backward(roots, grads, retain_graph: bool = False, create_graph: bool = False,
                 inputs=None, accumulate: bool = True):
    """Propagate `grads` (one per root, shaped like it) to the tensors that require grad.

    Without `inputs`, leaves (and tensors that called retain_grad) accumulate into ``.grad``;
    gradients of other tensors live only in the local dict and are dropped once consumed, and
    each function is released right after its backward, so memory falls during the sweep.
    With `inputs`, only the functions on a path to them run; they accumulate into ``.grad``
    (``backward(inputs=...)``) or, with accumulate=False, their gradients are returned as a dict
    keyed by id (``tg.autograd.grad``).

    create_graph=False: the gradients are raw arrays and every rule is ``fn.backward``.
    create_graph=True: they are Tensors and every rule is ``fn.graph_backward``, recorded.
    """
    if _profiling:  # once per backward() call: the profiler times the whole sweep
        def sweep(roots, grads, retain_graph):
            return _run_backward(roots, grads, retain_graph, create_graph, inputs, accumulate)
        result = _profiler.time_backward(sweep, roots, grads, retain_graph)
    else:
        result = _run_backward(roots, grads, retain_graph, create_graph, inputs, accumulate)
    if accumulate and _after_backward:
        for callback in tuple(_after_backward):
            callback()
    return result


# Called, in order, when a backward that accumulates into .grad returns (Tensor.backward, not
# tg.autograd.grad): how distributed.DataParallel averages its gradients "when backward returns".
_after_backward: list = []


class _Removable:
    def __init__(self, registry, item):
        self.registry, self.item = registry, item

    def remove(self):
        if self.item in self.registry:
            self.registry.remove(self.item)


def register_after_backward(callback):
    """Call `callback()` each time a backward that fills ``.grad`` returns; the handle's
    ``remove()`` undoes it."""
    _after_backward.append(callback)
    return _Removable(_after_backward, callback)


def _run_backward(roots, root_grads, retain_graph, create_graph=False, inputs=None,
                  accumulate=True):
    if create_graph:  # the rules build a graph, even when called inside no_grad
        with set_grad_enabled(True):
            return _sweep(roots, root_grads, retain_graph, True, inputs, accumulate)
    return _sweep(roots, root_grads, retain_graph, False, inputs, accumulate)


def _sweep(roots, root_grads, retain_graph, create_graph, inputs, accumulate):
    grads = {}
    owned = set()  # ids of the arrays in `grads` that nothing outside the sweep holds (_propagate)
    for root, g in zip(roots, root_grads):  # the same output twice: its seeds add up
        prev = grads.get(id(root))
        grads[id(root)] = g if prev is None else prev + g
    order = topological_order(*roots)
    wanted = through = leads = captured = None
    if inputs is not None:
        wanted = {id(t) for t in inputs}
        through, leads = _functions_toward(order, wanted)
        captured = {}
    while order:
        t = order.pop()  # outputs before inputs; popping drops our reference as we go
        g = grads.pop(id(t), None)
        if g is None:
            continue  # no path from root reached this tensor's gradient
        sole = id(g) in owned
        owned.discard(id(g))
        if t._hooks:
            sole = False  # a hook may keep what it was given, or return an array of its own
            for hook in tuple(t._hooks.values()):
                new = hook(g if create_graph else _Tensor._make(g))
                if new is not None:
                    g = _hook_result(new, g, create_graph)
        fn = t._ctx
        if wanted is None:
            if fn is None or t._retains_grad:
                t._accumulate_grad(g, create_graph, sole)
        elif id(t) in wanted:
            if accumulate:
                t._accumulate_grad(g, create_graph, sole)
            else:
                captured[id(t)] = g
        if fn is None or (through is not None and id(t) not in through):
            continue
        if not hasattr(fn, "inputs"):
            raise RuntimeError(
                f"backward through {getattr(fn, 'released_name', fn.name)} a second time: its saved "
                "arrays were freed by the first backward; pass retain_graph=True to the first call")
        _check_versions(fn, t, create_graph)
        if leads is None:
            _propagate(fn, g, grads, t, create_graph, owned)
        else:  # only the gradients that lead to a wanted tensor (a parameter's is not computed)
            need = fn.needs_input_grad
            fn.needs_input_grad = tuple(n and id(p) in leads for n, p in zip(need, fn.inputs))
            try:
                _propagate(fn, g, grads, t, create_graph, owned)
            finally:
                fn.needs_input_grad = need
        if not retain_graph:
            fn.release()
    return captured


def _functions_toward(order, wanted):
    """(through, leads): the ids of the tensors in `order` whose function must run for gradients
    to reach `wanted` (those with an input on a path to a wanted tensor; a released function
    counts, so that using it again is the clear error below rather than a silently missing
    gradient), and the ids of the tensors that are wanted or on such a path."""
    leads, through = set(), set()  # leads: the tensor is wanted or lies on a path to one
    for t in order:  # inputs before outputs
        fn = t._ctx
        parents = () if fn is None else getattr(fn, "inputs", None)
        if parents is None or any(id(p) in leads for p in parents):
            through.add(id(t))
        if id(t) in wanted or id(t) in through:
            leads.add(id(t))
    return through, leads


def _hook_result(new, g, create_graph=False):
    data = new.data if isinstance(new, _Tensor) else new
    if not hasattr(data, "shape") or data.shape != g.shape:
        got = f"shape {tuple(data.shape)}" if hasattr(data, "shape") else type(data).__name__
        raise RuntimeError(f"register_hook: a hook returned a gradient of {got}, expected a "
                           f"Tensor of shape {tuple(g.shape)} (or None to keep the gradient)")
    if data.dtype != g.dtype:  # refused, not cast: the hook's arithmetic changed the dtype
        raise RuntimeError(f"register_hook: a hook returned a gradient of dtype {data.dtype}, "
                           f"expected {g.dtype} (the gradient's dtype)")
    if create_graph:  # the hook's Tensor, graph and all (an array is a constant)
        return new if isinstance(new, _Tensor) else _Tensor._make(data)
    return data


def _storage(a):
    """The array that owns a's memory: a itself, or the array a view was taken from (NumPy and
    CuPy point every view at the owner, not at the view it was taken from)."""
    base = getattr(a, "base", None)
    return a if base is None else base


def _holds(fn, arr) -> bool:
    """Whether `fn` saved `arr`, or any array of its storage (a view of it, the array it is a
    view of), for its backward."""
    storage = _storage(arr)
    for v in fn.__dict__.values():
        for a in (v if isinstance(v, (tuple, list)) else (v,)):
            if a is arr or _storage(a) is storage:
                return True
    return False


def _check_versions(fn, output, create_graph=False):
    """Refuse a backward whose saved arrays were written in place since the forward.

    Cheap when nothing was written (a comparison of small ints); only on a changed version does it
    look for whether the op actually saved that array (Add saves nothing, and may go on). A
    graph rule (create_graph) may read the input and output Tensors themselves, so there any
    changed version is refused, whether or not an array of it was saved.
    """
    versions = [(f"input {i}", t, saved)
                for i, (t, saved) in enumerate(zip(fn.inputs, fn.input_versions))
                if (0 if t._vc is None else t._vc.value) != saved]
    if fn.output_version.value != 0:
        versions.append(("output", output, 0))
    for what, t, saved in versions:
        if create_graph or _holds(fn, t.data):
            raise RuntimeError(
                f"backward through {fn.name}: its {what} ({tuple(t.shape)} {t.dtype}) was modified "
                f"by an in-place operation after the forward (now at version {t._version}, saved "
                f"at version {saved}), so the gradient would use the new values; run the forward "
                "again after the change, or change a copy (.clone()) instead")


# How many graph rules (create_graph backwards) are running: Tensor.__array__ refuses to hand out
# raw data meanwhile, so that a rule cannot silently turn a Tensor into a constant.
_graph_rule_depth = 0


def _propagate(fn, g, grads, out, create_graph=False, owned=None):
    """Call fn.backward(g) (or, with create_graph, fn.graph_backward(g, out)) and add each
    input's gradient into `grads`.

    `owned` (a set of ids) collects the leaves' gradient arrays that nothing else holds, which
    the leaf may then keep as its .grad instead of a copy (PyTorch's AccumulateGrad does the
    same): a gradient that is not the incoming one, not a view, not handed to two inputs and
    not saved by the op, or a sum made here. Everything else is copied into .grad, as before
    (measured: the copy was 0.2 ms of the 1.5 ms forward + backward of a GELU on 1M floats)."""
    if create_graph:
        global _graph_rule_depth
        _graph_rule_depth += 1
        try:
            in_grads = fn.graph_backward(g, out)
        finally:
            _graph_rule_depth -= 1
    else:
        in_grads = _profiler.backward(fn, g) if _profiling else fn.backward(g)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    if len(in_grads) != len(fn.inputs):
        raise RuntimeError(f"{fn.name}.backward returned {len(in_grads)} gradients for "
                           f"{len(fn.inputs)} inputs")
    for i, (inp, need, gi) in enumerate(zip(fn.inputs, fn.needs_input_grad, in_grads)):
        if gi is None or not need:
            continue
        if create_graph and not isinstance(gi, _Tensor):
            raise RuntimeError(f"{fn.name}.graph_backward: gradient {i} is a "
                               f"{type(gi).__name__}, expected a Tensor (with create_graph the "
                               "rule must build its result from Tensor ops)")
        if gi.shape != inp.data.shape:  # a bug in an op's backward: say which op
            raise RuntimeError(f"{fn.name}.backward: gradient {i} has shape {tuple(gi.shape)}, "
                               f"but input {i} has shape {tuple(inp.data.shape)}")
        if gi.dtype != inp.data.dtype:
            if gi.dtype != g.dtype:  # neither the input's dtype nor the output's: a bug in the op
                raise RuntimeError(f"{fn.name}.backward: gradient {i} has dtype {gi.dtype}, but "
                                   f"input {i} has dtype {inp.data.dtype} (and the output "
                                   f"{g.dtype})")
            # The input was promoted to the output's dtype (float32 + float64 -> float64): the
            # gradient of that implicit cast is the cast back, as for an explicit .to(dtype).
            gi = gi.to(dtype=inp.data.dtype) if create_graph else gi.astype(inp.data.dtype)
        if _anomaly_enabled:
            gi_data, g_data = (gi.data, g.data) if create_graph else (gi, g)
            if not _all_finite(gi_data) and _all_finite(g_data):
                raise _anomaly("backward", fn, [a.data for a in fn.inputs],
                               f"produced NaN/Inf in the gradient of input {i} from a finite "
                               "incoming gradient")
        key = id(inp)
        prev = grads.get(key)
        grads[key] = gi if prev is None else prev + gi  # never in place: gi may be shared
        if owned is not None and inp._ctx is None and not create_graph:  # bound for a leaf
            owned.discard(id(prev))
            if prev is not None or _fresh(gi, g, in_grads, fn):
                owned.add(id(grads[key]))


def _fresh(gi, g, in_grads, fn) -> bool:
    """Whether the array fn.backward returned as one input's gradient has memory of its own:
    not the gradient it was given nor a view of it (a passthrough: reshape, add), no other
    input's gradient in the same memory, none of the arrays the op saved. A view of an array
    the backward made (a kernel's output reshaped) counts as its own."""
    storage = _storage(gi)
    return (storage is not _storage(g) and not _holds(fn, gi)
            and sum(o is not None and _storage(o) is storage for o in in_grads) == 1)


# ----------------------------------------------------------------------------------------------------
# tg.autograd.grad

def _tensors(op: str, what: str, value) -> list:
    seq = [value] if isinstance(value, _Tensor) else value
    if not isinstance(seq, (list, tuple)) or not seq or \
            not all(isinstance(t, _Tensor) for t in seq):
        raise TypeError(f"{op}: {what} must be a Tensor or a non-empty sequence of Tensors, got "
                        f"{type(value).__name__}")
    return list(seq)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, as a tuple (PyTorch's semantics).

    Sums d<grad_outputs[j], outputs[j]>/d(inputs[i]) over the outputs; nothing accumulates into
    ``.grad``. grad_outputs: a Tensor (or array) per output, or None for one with one element
    (then 1). create_graph=True records the backward, so that the result can be differentiated
    again; retain_graph defaults to create_graph. An input the outputs do not depend on is an
    error, unless allow_unused=True, which gives None for it.

    >>> import tinygrad_pt as tg
    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> (gx,) = tg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    >>> tg.autograd.grad(gx.sum(), x)[0].tolist()  # d/dx sum(3 x^2) = 6 x
    [6.0, 12.0]
    """
    outputs = _tensors("grad", "outputs", outputs)
    inputs = _tensors("grad", "inputs", inputs)
    if grad_outputs is None or isinstance(grad_outputs, _Tensor) or hasattr(grad_outputs, "shape"):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: outputs[{i}] (shape {t.shape}) does not require grad and "
                               "has no grad_fn: no input that requires grad was used to compute it")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}] (shape {t.shape}) does not require grad")
    seeds = [t._initial_grad("grad", g, create_graph) for t, g in zip(outputs, grad_outputs)]
    retain = create_graph if retain_graph is None else bool(retain_graph)
    found = run_backward(outputs, seeds, retain_graph=retain, create_graph=create_graph,
                         inputs=inputs, accumulate=False)
    result = []
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: inputs[{i}] (shape {t.shape}) was not used to compute the "
                               "outputs (it is not in their graph); pass allow_unused=True to get "
                               "None for it")
        result.append(g if g is None or create_graph else _Tensor._make(g))
    return tuple(result)


from . import functional  # noqa: E402,F401  (tg.autograd.functional: vjp, jvp, hvp, ...)
