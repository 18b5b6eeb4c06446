"""Argument checks that several op files share: written once here, so that every op words the
same mistake the same way.

    check_float_tensor(op, x)            a Tensor of a floating-point dtype, else TypeError
    is_int(v)                            a Python or NumPy integer, and not a bool
    one_axis(op, axis, ndim)             a single axis as a non-negative int, else TypeError /
                                         ValueError naming the op and the tensor's ndim
    alias(op, name, value, alias, torch_value, default)
                                         NumPy's keyword or PyTorch's spelling of it (axis/dim,
                                         keepdims/keepdim), not both

This module imports nothing from the other op files, so each of them (and nn) may import it.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor

__all__ = []  # helpers for the op files, not part of the tg namespace


def check_float_tensor(op: str, x, name: str | None = None) -> None:
    """TypeError unless `x` is a floating-point Tensor; `name` says which argument of `op` it is
    ("{op}: {name} must be ...") where an op takes several, else "{op}: expected ..."."""
    if not isinstance(x, Tensor):
        what = f"{name} must be" if name else "expected"
        raise TypeError(f"{op}: {what} a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        what = f"{name} must be" if name else "expected"
        raise TypeError(f"{op}: {what} a floating-point tensor, got dtype {x.dtype}")


def is_int(v) -> bool:
    # bool is an int subclass in Python, but True as an axis or a size is a mistake
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def one_axis(op: str, axis, ndim: int, *, scalar_ok: bool = False) -> int:
    """A single axis in range(ndim) (negatives count from the end) as a non-negative int.

    scalar_ok: a 0-d tensor takes axis 0 or -1 (and gets 0), as PyTorch's softmax does on a
    scalar; without it a 0-d tensor has no axis to give.
    """
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    if not is_int(axis):
        raise TypeError(f"{op}: axis must be an integer, got {axis!r}")
    if ndim == 0 and scalar_ok:
        if axis not in (0, -1):
            raise ValueError(f"{op}: axis {axis} is out of range for a 0-d tensor")
        return 0
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} "
                         "dimension(s)")
    return int(axis) % ndim


def alias(op: str, name: str, value, alias_name: str, alias_value, default=None):
    """`value` (NumPy's keyword `name`) or `alias_value` (PyTorch's spelling `alias_name` of the
    same thing: dim for axis, keepdim for keepdims); `default` when neither is given. Both given
    is a TypeError, never a silent choice of one."""
    if value is not None and alias_value is not None:
        raise TypeError(f"{op}: give {name} or its alias {alias_name}, not both (got "
                        f"{name}={value!r}, {alias_name}={alias_value!r})")
    if value is None:
        value = alias_value
    return default if value is None else value
