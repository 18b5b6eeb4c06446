"""The state dict: a Module's parameters and buffers as a map of dotted name -> Tensor, and the
copy of such a map back into a module, in place.

``Module.state_dict`` and ``Module.load_state_dict`` (module.py) are the public face and carry the
documentation; the functions here do the work. Loading checks everything before it copies anything:
missing and unexpected keys (when strict) and wrongly shaped values are reported together, in one
StateDictError, and the module is left untouched.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import no_grad
from ..backend import is_cupy_array, to_device
from ..tensor import Tensor

__all__ = ["StateDictError", "state_dict", "load_state_dict"]


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` found missing, unexpected or wrongly shaped keys.

    A RuntimeError as in PyTorch and a ValueError as bad input is everywhere else in tinygrad_pt,
    so that either ``except`` catches it.
    """


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_raw_array(key, value):
    """The array inside a state-dict value (a Tensor or a numpy/cupy array)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray) or is_cupy_array(value):
        return value
    raise TypeError(f"load_state_dict: the value of {key!r} is a {type(value).__name__}; "
                    "expected a Tensor or an array")


def state_dict(module, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
    """What ``Module.state_dict`` returns (see there)."""
    out = OrderedDict()
    for mod_prefix, mod in module.named_modules(prefix, remove_duplicate=False):
        dot = f"{mod_prefix}." if mod_prefix else ""
        for name, p in mod._parameters.items():
            if p is not None:
                out[dot + name] = p if keep_vars else p.detach()
        for name, b in mod._buffers.items():
            if b is not None and name not in mod._non_persistent:
                out[dot + name] = b if keep_vars else b.detach()
    return out


def load_state_dict(module, state_dict, strict: bool = True):
    """What ``Module.load_state_dict`` does (see there)."""
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"load_state_dict: expected a dict of name -> Tensor, got "
                        f"{type(state_dict).__name__}")
    own = module.state_dict(keep_vars=True)
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    arrays, wrong_shape = {}, []
    for key, target in own.items():
        if key not in state_dict:
            continue
        arr = _as_raw_array(key, state_dict[key])
        if tuple(arr.shape) != target.shape:
            wrong_shape.append(f"{key!r}: the state_dict has shape {tuple(arr.shape)}, the "
                               f"model {target.shape}")
        arrays[key] = arr

    errors = []
    if strict and missing:
        errors.append("missing keys: " + ", ".join(repr(k) for k in missing))
    if strict and unexpected:
        errors.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
    if wrong_shape:
        errors.append("wrongly shaped keys: " + "; ".join(wrong_shape))
    if errors:
        raise StateDictError(f"load_state_dict: error(s) loading the state_dict of "
                             f"{type(module).__name__}:\n  " + "\n  ".join(errors))

    with no_grad():
        for key, arr in arrays.items():
            target = own[key]
            arr = to_device(arr, target.device)
            target.data[...] = arr.astype(target.dtype, copy=False)
            target._bump_version()
    return _IncompatibleKeys(missing, unexpected)
