"""Tensor: an array (numpy or cupy), its gradient, and the Function that made it.

In the spirit of micrograd's Value, grown to arrays: ``data`` holds the values, ``grad`` the gradient
(a Tensor, filled by ``backward``), ``_ctx`` the Function that produced it (None for a leaf).

How the operator methods get here: Tensor needs ops (``x + y``, ``x.sum()``) and ops build Tensors.
To keep that loop out of the import graph, this module defines only what needs no op; the modules
in ``tinygrad_pt/ops/`` each list the methods they give Tensor (a ``TENSOR_METHODS`` dict), and
``tinygrad_pt/ops/__init__.py`` installs them when the package is imported (DeZero's setup step).
"""
from __future__ import annotations

import numpy as np

from . import autograd
from .autograd import Function, run_backward
from .checks import flush_checks
from .backend import (FLOAT_DTYPES, array_module, canonical_device, default_float, device_of,
                      is_cupy_array, parse_to_args, resolve_dtype, to_device, xp_for)


# bool, signed and unsigned integers, floats: the dtypes the ops are written for. Strings, bytes,
# objects, datetimes and complex numbers are refused by name rather than failing deep in an op.
_NUMERIC_KINDS = "biuf"


def _require_numeric(arr, data):
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"tensor: expected numbers, got {type(data).__name__} holding {arr.dtype} "
                        f"values (a bool, integer or floating dtype is needed)")


def as_array(data, dtype=None, device=None):
    """Turn tensor-like input into a raw array following the dtype contract.

    ndarrays (numpy or cupy) keep their dtype; Python floats and (nested) lists of floats become
    float32, Python ints int64 and bools bool (as PyTorch); ``dtype=`` overrides.
    """
    dtype = resolve_dtype(dtype)
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray) or is_cupy_array(data):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__}: {e}") from e
        if arr.dtype.kind == "f" and dtype is None:
            arr = arr.astype(default_float)  # Python floats: float32, not NumPy's float64
    _require_numeric(arr, data)  # ndarrays too: a str/bytes/object/datetime array is no tensor
    if device is not None:
        arr = to_device(arr, canonical_device(device))
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


class Size(int):
    """``x.size``: the number of elements, an int (NumPy's attribute), that can also be called as
    PyTorch's method: ``x.size()`` is the shape (a tuple), ``x.size(d)`` the length of axis d.
    Arithmetic on it gives plain ints, so it goes wherever NumPy's size goes."""

    def __new__(cls, shape: tuple):
        n = 1
        for k in shape:
            n *= k
        self = super().__new__(cls, n)
        self.shape = shape
        return self

    def __call__(self, dim=None):
        if dim is None:
            return self.shape
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"size: dim must be an int, got {dim!r}")
        if not -len(self.shape) <= dim < len(self.shape):
            raise IndexError(f"size: dim {dim} is out of range for a tensor of shape {self.shape}")
        return self.shape[dim]


class _Version:
    """How many times a tensor's storage was written in place (PyTorch's version counter).

    One cell is shared by a tensor and the tensors that share its storage through ``detach()``, so
    a write through either is seen by the graph that saved the other (autograd.py checks it).
    """
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    """An n-dimensional array that can record the ops applied to it and differentiate them.

    >>> import tinygrad_pt as tg
    >>> x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.numpy()
    array([2., 4., 6.], dtype=float32)
    """
    # NumPy defers to Tensor in mixed expressions: `ndarray * Tensor` calls Tensor.__rmul__.
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        self.data = as_array(data, dtype=dtype, device=device)
        if isinstance(data, Tensor) and self.data is data.data:
            self.data = self.data.copy()  # Tensor(t) is a new leaf, never a view of t's storage
        self._grad = None
        self._ctx = None
        self._hooks = {}
        self._vc = None  # the _Version cell, made on first need
        self._retains_grad = False
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _make(cls, data, requires_grad: bool = False):
        """Wrap a raw array with no checks: the fast path used by Function.apply."""
        t = cls.__new__(cls)
        t.data, t._grad, t._ctx, t._hooks, t._vc = data, None, None, {}, None
        t._retains_grad, t._requires_grad = False, requires_grad
        return t

    # ------------------------------------------------------------------------------------------------
    # Attributes

    @property
    def grad(self):
        """The gradient (a Tensor of this tensor's shape, dtype and device), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        # As PyTorch: a gradient that does not match is refused, never cast or broadcast, so an
        # optimizer step cannot silently run in another dtype or on another device.
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: expected a Tensor or None, got {type(value).__name__}")
            for what, got, want in (("shape", value.shape, self.shape),
                                    ("dtype", value.dtype, self.dtype),
                                    ("device", value.device, self.device)):
                if got != want:
                    raise RuntimeError(f"grad: assigned a gradient of {what} {got}, but the tensor "
                                       f"has {what} {want}")
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool):
        flag = bool(flag)
        if flag and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}; cast first, e.g. x.to(dtype=np.float32)")
        if not flag and self._ctx is not None:
            raise RuntimeError("requires_grad: cannot turn off gradients of a non-leaf tensor; "
                               "use .detach()")
        self._requires_grad = flag

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Set requires_grad in place and return self (PyTorch's trailing-underscore convention)."""
        self.requires_grad = flag
        return self

    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: Size(tuple(self.data.shape)))  # an int, callable as x.size()
    device = property(lambda self: device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx)

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # Tensors are compared elementwise (x == y is a Tensor), so hashing is by identity.
    __hash__ = object.__hash__

    def __bool__(self):
        flush_checks()
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             "use .any() or .all()")
        return bool(self.data.reshape(()))

    def __repr__(self):
        dev = "" if self.device == "cpu" else ", device='cuda'"
        grad = ""
        if self._ctx is not None:
            grad = f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            grad = ", requires_grad=True"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    # ------------------------------------------------------------------------------------------------
    # Leaving the graph, leaving the device

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data (a device-to-host copy for cuda tensors)."""
        flush_checks()  # a host read: queued GPU input checks (checks.py) resolve here
        return self.data.get() if is_cupy_array(self.data) else self.data.copy()

    def __array__(self, dtype=None, copy=None):
        if autograd._graph_rule_depth:
            raise TypeError("a backward rule run with create_graph turned a Tensor into a NumPy "
                            "array, which would make its gradient a constant; the rule must use "
                            "Tensor ops (see Function.graph_backward)")
        if is_cupy_array(self.data):
            raise TypeError("a cuda tensor cannot become a NumPy array implicitly; call .numpy()")
        if dtype is not None and self.data.dtype != dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self):
        """The single value as a Python number (synchronises with the GPU: keep out of hot loops)."""
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted to a Python "
                             f"scalar, got shape {self.shape}")
        flush_checks()
        return self.data.reshape(()).item()

    __float__ = lambda self: float(self.item())  # noqa: E731
    __int__ = lambda self: int(self.item())  # noqa: E731

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same data (shared, not copied) as a new leaf that does not require grad.

        The two share one version counter too: an in-place write through either is caught by a
        backward that needs the old values."""
        out = Tensor._make(self.data)
        out._vc = self._version_cell()
        return out

    # ------------------------------------------------------------------------------------------------
    # In-place writes

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's storage has had (as PyTorch's ``_version``)."""
        return 0 if self._vc is None else self._vc.value

    def _version_cell(self) -> _Version:
        if self._vc is None:
            self._vc = _Version()
        return self._vc

    def _bump_version(self) -> None:
        """Record an in-place write of the storage. Everything in the framework that writes a
        tensor's data in place (optimizer steps, load_state_dict, nn.init, in-place ops) calls
        this, so that a graph that saved the old values refuses to run backward on the new ones."""
        self._version_cell().value += 1

    def to(self, *args, device=None, dtype=None) -> "Tensor":
        """``x.to("cuda")``, ``x.to(np.float64)``, ``x.to(device=..., dtype=...)``.

        Differentiable: the gradient flows back to the source device and dtype. Returns self when
        nothing changes.
        """
        device, dtype = parse_to_args(args, device, dtype)
        device = self.device if device is None else device
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        xp_for(device)  # a clear error now if cuda is asked for and missing
        return ToCopy.apply(self, device=device, dtype=dtype)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=np.float64)

    # ------------------------------------------------------------------------------------------------
    # Gradients

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's signature).

        `gradient` is the upstream gradient (same shape as self, converted to its dtype); it may
        be omitted only for a tensor with one element. create_graph=True records the backward
        itself, so that ``.grad`` can be differentiated again (higher-order gradients).
        The graph's saved arrays are freed afterwards unless `retain_graph` is True; it
        defaults to `create_graph`. `inputs` (a Tensor or a sequence): accumulate into those
        tensors' ``.grad`` only, leaves or not.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn; "
                               "did you create the inputs with requires_grad=True, or run the "
                               "forward inside tg.no_grad()?")
        g = self._initial_grad("backward", gradient, create_graph)
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            if not inputs or not all(isinstance(t, Tensor) for t in inputs):
                raise TypeError("backward: inputs must be a Tensor or a non-empty sequence of "
                                "Tensors")
            for i, t in enumerate(inputs):
                if not t.requires_grad:
                    raise RuntimeError(f"backward: inputs[{i}] (shape {t.shape}) does not "
                                       "require grad")
        retain = create_graph if retain_graph is None else bool(retain_graph)
        run_backward([self], [g], retain_graph=retain, create_graph=create_graph, inputs=inputs)

    def _initial_grad(self, op: str, gradient, create_graph: bool):
        """The upstream gradient of self: a raw array, or with create_graph a Tensor (a given
        Tensor is kept as it is, graph and all, as PyTorch does with grad_outputs)."""
        if gradient is None:
            if self.data.size != 1:
                keyword = "gradient=" if op == "backward" else "grad_outputs="
                raise RuntimeError(f"{op}: gradient can be implied only for a tensor with one "
                                   f"element, got shape {self.shape}; pass {keyword} of that "
                                   "shape")
            g = array_module(self.data).ones_like(self.data)
            return Tensor._make(g) if create_graph else g
        if create_graph and isinstance(gradient, Tensor):
            g = gradient if gradient.dtype == self.dtype else gradient.to(dtype=self.dtype)
            data = g.data
        else:
            # Converted as tg.tensor(gradient, dtype=self.dtype) would be, which is what PyTorch
            # does with grad_tensors too: `y.backward(np.ones(y.shape))` is the NumPy idiom.
            g = data = as_array(gradient, dtype=self.dtype)
        if device_of(data) != self.device:
            raise RuntimeError(f"{op}: gradient is on {device_of(data)} but the tensor is on "
                               f"{self.device}; move it with .to(device) first")
        if data.shape != self.data.shape:
            raise ValueError(f"{op}: gradient has shape {tuple(data.shape)}, expected "
                             f"{self.shape} (the tensor's shape)")
        return Tensor._make(g) if create_graph and not isinstance(g, Tensor) else g

    def _accumulate_grad(self, g, create_graph: bool = False, sole: bool = False):
        """Add the gradient g into .grad. sole: the engine knows that nothing else holds g (see
        autograd._propagate), so a first gradient is kept as it is, not copied."""
        gd = g.data if create_graph else g
        if gd.dtype != self.data.dtype:  # the engine checks every gradient before it gets here
            raise RuntimeError(f"backward: a gradient of dtype {gd.dtype} reached a tensor of "
                               f"dtype {self.dtype}; this is a bug in tinygrad_pt, please report it")
        if create_graph:
            # .grad is the graph of the gradient. A clone, not g itself: the same Tensor may be
            # handed to several inputs (x + y), and optimizers update .grad in place.
            self._grad = g.clone() if self._grad is None else self._grad + g
        elif self._grad is None:
            # Own the array: the same gradient array may have been handed to several inputs
            # (x + y), and optimizers and clipping may later update .grad in place.
            self._grad = Tensor._make(g if sole else g.copy())
        else:
            self._grad = Tensor._make(self._grad.data + g)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._retains_grad = True

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces
        the gradient. Returns a handle whose ``remove()`` unregisters the hook."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not "
                               "require grad")
        key = object()
        self._hooks[key] = hook
        return _HookHandle(self._hooks, key)

    def zero_grad(self) -> None:
        self.grad = None


class _HookHandle:
    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


class ToCopy(Function):
    """y = x moved to another device and/or cast; the gradient goes back the same way."""

    def forward(self, x, device, dtype):
        self.src_device, self.src_dtype = device_of(x), x.dtype
        y = to_device(x, device)
        return y.astype(dtype) if y.dtype != dtype else (y.copy() if y is x else y)

    def backward(self, grad):
        return to_device(grad, self.src_device).astype(self.src_dtype, copy=False)

    def graph_backward(self, grad, output):
        return grad.to(device=self.src_device, dtype=self.src_dtype)


autograd._Tensor = Tensor  # see the note on _Tensor in autograd.py


def lift(value, like: Tensor) -> Tensor:
    """Make an operand of a binary op a Tensor on `like`'s device.

    A scalar (a Python number or a NumPy scalar such as ``np.float64(2)``) takes `like`'s dtype,
    as PyTorch's scalars do, so ``x * 2.0`` and ``x / np.sqrt(d)`` stay float32. Exceptions: a
    float scalar with an integer or bool tensor gives the default float, an int scalar with a
    bool tensor gives int64. Arrays keep their dtype (the binary op then decides: see
    ``binary_operands`` in ops/elementwise.py).
    """
    if isinstance(value, Tensor):
        return value
    xp = array_module(like.data)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        kind = like.data.dtype.kind
        if kind in "biu" and isinstance(value, (float, np.floating)):
            dtype = default_float
        elif kind == "b":
            dtype = np.int64
        else:
            dtype = like.data.dtype
        return Tensor._make(xp.asarray(value, dtype=dtype))
    if isinstance(value, (bool, np.bool_)):
        return Tensor._make(xp.asarray(value, dtype=like.data.dtype))
    arr = as_array(value)
    if device_of(arr) != like.device:
        raise RuntimeError(f"operands on different devices: a {device_of(arr)} array and a "
                           f"{like.device} tensor; move them with .to(device) first")
    return Tensor._make(arr)
