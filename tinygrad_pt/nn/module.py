"""Module and Parameter: micrograd's ``parameters()``/``zero_grad()``, grown up.

A Module holds three ordered registries, filled by plain attribute assignment (``__setattr__``):

  _parameters  name -> Parameter (or None, e.g. ``bias=False``)
  _buffers     name -> Tensor that is state but not trained (registered with ``register_buffer``)
  _modules     name -> child Module (a list of Modules becomes a ModuleList)

Everything else walks them: ``named_parameters`` gives dotted names ("0.weight", "h.1.attn.c_attn.
bias"), each Parameter once even when two modules share it; ``state_dict`` maps the same names to
Tensors (parameters and buffers), ``load_state_dict`` copies values back in place (the work is done
in state_dict.py).

Moving a module (``to``, ``double``, ``float``) replaces each parameter's ``.data`` in place: the
Parameter objects stay the same, so an optimizer built before ``.to(...)`` still updates them (its
own state must then be moved too, which is why an optimizer is best built after the move).

The containers built on Module (ModuleList, Sequential) live in containers.py, which imports this
file; this file reaches them only when used (a list assigned as an attribute, or the names
ModuleList and Sequential imported from here, which still works).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..backend import (FLOAT_DTYPES, default_float, is_cupy_array, parse_to_args,
                       resolve_dtype, to_device, xp_for)
from ..tensor import Tensor
from . import state_dict as _state_dict
from .state_dict import StateDictError, _IncompatibleKeys  # noqa: F401  (importable from here)

__all__ = ["Module", "Parameter", "ModuleList", "Sequential", "StateDictError"]


# ----------------------------------------------------------------------------------------------------
# Parameter

class Parameter(Tensor):
    """A Tensor that a Module trains: a leaf with ``requires_grad=True``.

    ``Parameter(data)`` follows ``tg.tensor``'s dtype rules (an ndarray keeps its dtype, Python
    floats become float32; ``dtype=`` overrides); ``Parameter()`` is an empty float32 parameter.
    Given a Tensor, the parameter shares its data (no copy), as PyTorch's does; given an array, it
    copies it, so that in-place optimizer updates never write into the caller's array.

    >>> import tinygrad_pt as tg
    >>> p = Parameter(tg.zeros(2, 3))
    >>> p.requires_grad, p.dtype
    (True, dtype('float32'))
    """

    def __init__(self, data=None, requires_grad: bool = True, dtype=None):
        if data is None:
            data = np.empty((0,), dtype=default_float if dtype is None else resolve_dtype(dtype))
        elif isinstance(data, np.ndarray) or is_cupy_array(data):
            # Own the values: optimizers update parameters in place, and that must not write
            # into an array the caller still holds.
            data = data.copy()
        # A Tensor is unwrapped so that the parameter shares its data (Tensor() would copy it).
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=False,
                         dtype=dtype)
        self.requires_grad = requires_grad  # checks that the dtype is floating point

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


# ----------------------------------------------------------------------------------------------------
# Module

class Module:
    """Base class of every layer and model: subclass it, assign parameters and sub-modules as
    attributes in ``__init__`` (after ``super().__init__()``), and write ``forward``.

    >>> import tinygrad_pt.nn as nn
    >>> class MLP(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(2, 4)
    ...         self.fc2 = nn.Linear(4, 1)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    >>> [name for name, _ in MLP().named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ reads these registries, so they come first.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define "
                                  f"forward(self, ...) in the subclass")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------------------------------------
    # Registration by attribute assignment

    def _registries(self):
        try:
            d = self.__dict__
            return d["_parameters"], d["_buffers"], d["_modules"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__}: cannot assign parameters, buffers or "
                                 "modules before Module.__init__() is called; call "
                                 "super().__init__() first in __init__") from None

    def __setattr__(self, name, value):
        if isinstance(value, (list, tuple)) and value and all(isinstance(m, Module) for m in value):
            from .containers import ModuleList  # noqa: PLC0415  (containers.py imports this file)
            value = ModuleList(value)  # a plain list would hide its modules' parameters
        if isinstance(value, Parameter):
            self._forget(name)  # (raises the clear error if super().__init__() was not called)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name} is a parameter: assign a Parameter "
                                f"or None, not a {type(value).__name__}")
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}.{name} is a buffer: assign a Tensor or "
                                f"None, not a {type(value).__name__}")
            self._buffers[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name} is a sub-module: assign a Module "
                                f"or None, not a {type(value).__name__}")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove `name` from every registry and the instance dict (it is being re-registered)."""
        for registry in self._registries():
            registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # Called only when normal lookup fails: the registered names live in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, {}):
                del self.__dict__[registry][name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param) -> None:
        """Register `param` (a Parameter or None) under `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}; wrap it: nn.Parameter(tensor)")
        self._check_name("register_parameter", name)
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register `tensor` as state that is not trained (running statistics, masks, ...).

        A buffer moves with ``to()``, appears in ``state_dict`` (unless ``persistent=False``) and
        is not returned by ``parameters()``. An array is wrapped in a Tensor.
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            if isinstance(tensor, np.ndarray) or is_cupy_array(tensor):
                tensor = Tensor._make(tensor)
            else:
                raise TypeError(f"register_buffer: {name!r} must be a Tensor, an array or None, "
                                f"got {type(tensor).__name__}")
        if isinstance(tensor, Parameter):
            raise TypeError(f"register_buffer: {name!r} is a Parameter; use register_parameter "
                            "(or plain assignment) for trained tensors")
        self._check_name("register_buffer", name)
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module) -> None:
        """Register `module` (a Module or None) as a child called `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got "
                            f"{type(module).__name__}")
        self._check_name("add_module", name)
        self._forget(name)
        self._modules[name] = module

    def _check_name(self, op, name):
        self._registries()
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{op}: the name must be a non-empty string without '.', got {name!r}")
        if name in self.__dict__ or hasattr(type(self), name):
            raise ValueError(f"{op}: {type(self).__name__} already has an attribute {name!r}")

    # ------------------------------------------------------------------------------------------------
    # Walking the tree

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True, _memo=None):
        """(dotted name, module) for self ("" by default) and every descendant, depth first."""
        memo = set() if _memo is None else _memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name,
                                           remove_duplicate, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        mods = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, t in getattr(mod, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        """(dotted name, Parameter) pairs; a Parameter shared by several modules comes once,
        under the first name found."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        """Every Parameter of the module and its descendants, each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant, then on self (as PyTorch); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------------------------------------
    # State dict

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Dotted name -> Tensor for every parameter and persistent buffer.

        The Tensors share the module's data (detached, no copy), so save or copy them before
        training further if a snapshot is needed. A tied parameter appears under each of its
        names (as in PyTorch). ``keep_vars=True`` gives the Parameter objects themselves.
        """
        return _state_dict.state_dict(self, prefix, keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy `state_dict`'s values into the module's parameters and buffers, in place.

        Values may be Tensors or numpy/cupy arrays; each is cast to the dtype and moved to the
        device of the module's tensor, which keeps its identity (an optimizer holding it still
        works). With ``strict=True`` (the default) missing and unexpected keys are an error;
        a wrongly shaped value always is. Nothing is copied unless every check passes.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        return _state_dict.load_state_dict(self, state_dict, strict)

    # ------------------------------------------------------------------------------------------------
    # Modes, devices, dtypes, gradients

    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` on self and every descendant (Dropout reads it); returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        """``train(False)``: Dropout becomes the identity."""
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> "Module":
        """Turn gradients of every parameter on or off (freeze a backbone); returns self."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (``set_to_none=False`` fills it with zeros instead)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def to(self, *args, device=None, dtype=None) -> "Module":
        """Move (``"cuda"``) and/or cast (``np.float64``) every parameter and buffer, in place.

        ``m.to("cuda")``, ``m.to(np.float64)``, ``m.to(device=..., dtype=...)``. Parameters stay
        the same Parameter objects (only their ``.data`` and ``.grad`` are replaced), so
        references held elsewhere, an optimizer's included, still see them. Casting applies to
        floating-point tensors only; integer buffers keep their dtype. Returns self.
        """
        device, dtype = parse_to_args(args, device, dtype)
        if dtype is not None and dtype not in FLOAT_DTYPES:
            allowed = ", ".join(map(str, FLOAT_DTYPES))
            raise TypeError(f"Module.to: only floating-point dtypes ({allowed}) can be given, got "
                            f"{dtype}")
        if device is not None:
            xp_for(device)  # a clear error now if cuda is asked for and missing

        def convert(arr):
            if device is not None:
                arr = to_device(arr, device)
            if dtype is not None and arr.dtype.kind == "f" and arr.dtype != dtype:
                arr = arr.astype(dtype)
            return arr

        for t in list(self.parameters()) + list(self.buffers()):
            t.data = convert(t.data)
            if t.grad is not None:
                t.grad = Tensor._make(convert(t.grad.data))
        return self

    def cpu(self) -> "Module":
        return self.to(device="cpu")

    def cuda(self) -> "Module":
        return self.to(device="cuda")

    def float(self) -> "Module":
        """Cast floating-point parameters and buffers to float32, in place."""
        return self.to(dtype=np.float32)

    def double(self) -> "Module":
        """Cast floating-point parameters and buffers to float64 (for gradient checks), in place."""
        return self.to(dtype=np.float64)

    def num_parameters(self) -> int:
        """How many numbers the module trains (shared parameters counted once)."""
        return sum(p.size for p in self.parameters())

    # ------------------------------------------------------------------------------------------------
    # repr, as PyTorch prints it

    def extra_repr(self) -> str:
        """The text inside this module's parentheses, e.g. ``in_features=2, out_features=3``."""
        return ""

    def __repr__(self):
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        name = type(self).__name__
        if not lines:
            return f"{name}()"
        if len(lines) == 1 and not self._modules:
            return f"{name}({lines[0]})"
        return name + "(\n  " + "\n  ".join(lines) + "\n)"


def __getattr__(name):
    # ModuleList and Sequential lived here before containers.py; `from tinygrad_pt.nn.module import
    # ModuleList` keeps working, resolved on use (a top-level import would be a cycle).
    if name in ("ModuleList", "Sequential"):
        from . import containers  # noqa: PLC0415
        return getattr(containers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
