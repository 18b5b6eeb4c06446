"""In-place ops with PyTorch's names: ``add_``, ``sub_``, ``mul_``, ``div_``, ``lerp_``, ``copy_``,
``fill_``, ``zero_``, and ``clone`` (the out-of-place copy they are often paired with).

They write into the tensor's own storage and return it, for the code that needs no graph: weight
updates under ``tg.no_grad()`` (MoCo's momentum encoder: ``pk.mul_(m).add_(pq, alpha=1 - m)``),
buffers, initialisation. Each write bumps the tensor's version counter, so a graph that saved the
old values refuses to backward through them (autograd.py, ``_check_versions``).

What they do not do (a decision, see DESIGN.md's contract): record a graph. Where PyTorch would
differentiate through an in-place op, that is while gradients are recorded and the tensor or an
operand requires grad, these raise and name the out-of-place spelling; a leaf that requires grad
may be written only under ``no_grad``, as in PyTorch.

The result is cast to the tensor's dtype only within a kind (float64 into float32 is fine, a float
into an integer tensor is refused, as PyTorch refuses it), and operands broadcast to the tensor's
shape, never the tensor to theirs.
"""
from __future__ import annotations

import numpy as np

from .. import autograd
from ..backend import device_of, to_device
from ..tensor import Tensor, ToCopy, as_array

__all__ = []


def _operand(op: str, self: Tensor, value):
    """`value` as a raw array (or a Python scalar) usable in place on `self`'s storage."""
    if isinstance(value, (bool, int, float, np.generic)):
        return value
    arr = value.data if isinstance(value, Tensor) else as_array(value)
    if device_of(arr) != self.device:
        raise RuntimeError(f"{op}: the operand is on {device_of(arr)} but the tensor is on "
                           f"{self.device}; move it with .to(device) first")
    try:
        fits = np.broadcast_shapes(arr.shape, self.shape) == self.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: an operand of shape {tuple(arr.shape)} does not broadcast to the "
                         f"tensor's shape {self.shape} (in place, the tensor keeps its shape)")
    return arr


def _check_no_graph(op: str, self: Tensor, *operands) -> None:
    if not autograd.is_grad_enabled():
        return
    if self.requires_grad:
        what = ("a leaf tensor that requires grad" if self._ctx is None
                else "a tensor that is part of a graph")
        raise RuntimeError(f"{op}: in-place write to {what} while gradients are recorded; use "
                           f"the out-of-place op (x = x + y) or write under tg.no_grad()")
    if any(isinstance(o, Tensor) and o.requires_grad for o in operands):
        raise RuntimeError(f"{op}: the operand requires grad, and in-place ops record no graph; "
                           f"use the out-of-place op, or detach() the operand")


def _write(op: str, self: Tensor, result) -> Tensor:
    """Store `result` into self's storage (same kind of dtype only) and bump its version."""
    result_dtype = getattr(result, "dtype", None)
    if result_dtype is not None and not np.can_cast(result_dtype, self.dtype, casting="same_kind"):
        raise TypeError(f"{op}: the result has dtype {result_dtype}, which cannot be stored in "
                        f"the tensor's dtype {self.dtype} in place; use the out-of-place op")
    self.data[...] = result
    self._bump_version()
    return self


def _scalar_ok(op: str, self: Tensor, value) -> None:
    if isinstance(value, (float, np.floating)) and self.dtype.kind in "biu":
        raise TypeError(f"{op}: a float operand cannot be stored in the tensor's dtype "
                        f"{self.dtype} in place; use the out-of-place op")


def _binary(op: str, combine):
    def method(self: Tensor, other, *, alpha=None) -> Tensor:
        _check_no_graph(op, self, other)
        value = _operand(op, self, other)
        _scalar_ok(op, self, value)
        if alpha is not None:
            _scalar_ok(op, self, alpha)
            value = value * alpha
        return _write(op, self, combine(self.data, value))
    method.__name__ = op
    method.__doc__ = f"``x.{op}(y)``: x's storage is overwritten by the result and x returned."
    return method


add_ = _binary("add_", lambda a, b: a + b)
sub_ = _binary("sub_", lambda a, b: a - b)


def mul_(self: Tensor, other) -> Tensor:
    """``x.mul_(y)``: x = x * y in x's storage."""
    _check_no_graph("mul_", self, other)
    value = _operand("mul_", self, other)
    _scalar_ok("mul_", self, value)
    return _write("mul_", self, self.data * value)


def div_(self: Tensor, other) -> Tensor:
    """``x.div_(y)``: x = x / y in x's storage (true division: a float tensor only)."""
    _check_no_graph("div_", self, other)
    if self.dtype.kind != "f":
        raise TypeError(f"div_: true division of a tensor of dtype {self.dtype} cannot be stored "
                        "in place; use the out-of-place x / y")
    return _write("div_", self, self.data / _operand("div_", self, other))


def lerp_(self: Tensor, end, weight) -> Tensor:
    """``x.lerp_(end, weight)``: x = x + weight * (end - x) in x's storage."""
    _check_no_graph("lerp_", self, end, weight)
    if self.dtype.kind != "f":
        raise TypeError(f"lerp_: expected a floating-point tensor, got dtype {self.dtype}")
    end_v, weight_v = _operand("lerp_", self, end), _operand("lerp_", self, weight)
    return _write("lerp_", self, self.data + weight_v * (end_v - self.data))


def copy_(self: Tensor, src) -> Tensor:
    """``x.copy_(src)``: src's values (broadcast, cast to x's dtype, moved to x's device) into x."""
    _check_no_graph("copy_", self, src)
    arr = src.data if isinstance(src, Tensor) else as_array(src)
    arr = to_device(arr, self.device)  # as PyTorch's copy_, the one in-place op that moves data
    _operand("copy_", self, arr)
    self.data[...] = arr.astype(self.dtype, copy=False)
    self._bump_version()
    return self


def fill_(self: Tensor, value) -> Tensor:
    """``x.fill_(v)``: every element of x set to the number v."""
    _check_no_graph("fill_", self)
    if isinstance(value, Tensor):
        if value.data.size != 1:
            raise ValueError(f"fill_: expected a number or a one-element tensor, got shape "
                             f"{value.shape}")
        value = value.item()
    if not isinstance(value, (bool, int, float, np.generic)):
        raise TypeError(f"fill_: expected a number, got {type(value).__name__}")
    _scalar_ok("fill_", self, value)
    self.data[...] = value
    self._bump_version()
    return self


def zero_(self: Tensor) -> Tensor:
    """``x.zero_()``: every element of x set to 0."""
    return fill_(self, 0)


def clone(self: Tensor) -> Tensor:
    """A copy with its own storage, differentiable (the gradient passes through unchanged)."""
    return ToCopy.apply(self, device=self.device, dtype=self.dtype)  # copies when nothing moves


TENSOR_METHODS = {"add_": add_, "sub_": sub_, "mul_": mul_, "div_": div_, "lerp_": lerp_,
                  "copy_": copy_, "fill_": fill_, "zero_": zero_, "clone": clone}
