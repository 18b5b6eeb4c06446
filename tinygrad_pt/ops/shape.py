"""Shape ops: reshape, transpose, broadcast, squeeze/expand_dims, concatenate/stack, split/chunk.

None of these changes a value, only where it sits, so every backward moves the gradient back to
where its value came from: reshape reshapes it back, transpose applies the inverse permutation,
broadcast_to sums the copies (``unbroadcast``), concatenate and stack slice it into one piece per
input. squeeze, expand_dims and flatten are reshapes; split and chunk are slices (getitem), so
they need no backward of their own.

NumPy's names and meanings (``transpose(*axes)`` permutes, ``.T`` reverses all axes, ``squeeze``
refuses an axis whose size is not 1); ``expand``, ``unsqueeze``, ``flatten``, ``permute``, ``cat``
and ``chunk`` are PyTorch's names, with PyTorch's meanings where NumPy has no such function.
Where the two libraries' meanings collide, PyTorch's spelling is taken at its word only when it
cannot be NumPy's: ``transpose(i, j)`` on a tensor that is not 2-D swaps, ``split(..., dim=)``
cuts pieces of a size; the ambiguous 2-D ``transpose(0, 1)`` keeps NumPy's meaning and warns.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import array_module
from ..tensor import Tensor, lift
from .arguments import alias, is_int, one_axis
from .indexing import getitem
from .reduce import normalize_axis

__all__ = ["reshape", "transpose", "permute", "swapaxes", "broadcast_to", "squeeze", "expand_dims",
           "unsqueeze", "flatten", "concatenate", "cat", "stack", "split", "chunk"]


def _shape_args(op: str, shape) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both give (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(is_int(n) for n in shape):
        raise TypeError(f"{op}: shape must be integers, got {tuple(shape)}")
    return tuple(int(n) for n in shape)


# ----------------------------------------------------------------------------------------------------
# Reshape

class Reshape(Function):
    """y = x with a new shape (same elements, C order); dx = dy reshaped back."""
    saved_inputs = ()  # shape ops move values: every rule is linear in grad

    def forward(self, x, shape):
        self.x_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.x_shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """x with shape `shape` (ints or one tuple; at most one -1, inferred from the size).

    >>> import tinygrad_pt as tg
    >>> tg.arange(6).reshape(2, -1).shape
    (2, 3)
    """
    shape = _shape_args("reshape", shape)
    n_free = shape.count(-1)
    if n_free > 1 or any(n < -1 for n in shape):
        raise ValueError(f"reshape: the new shape {shape} may hold one -1 and otherwise sizes "
                         ">= 0")
    known = math.prod(n for n in shape if n != -1)
    fits = (known == x.size) if n_free == 0 else (known > 0 and x.size % known == 0)
    if not fits:
        raise ValueError(f"reshape: cannot reshape tensor of shape {x.shape} ({x.size} elements) "
                         f"into {shape}")
    if n_free:
        shape = tuple(x.size // known if n == -1 else n for n in shape)
    return Reshape.apply(x, shape=shape)


# ----------------------------------------------------------------------------------------------------
# Transpose

class Transpose(Function):
    """y = x with its axes permuted: y.shape[i] = x.shape[axes[i]]; dx = dy under the inverse."""
    saved_inputs = ()

    def forward(self, x, axes):
        self.inverse = tuple(int(i) for i in np.argsort(axes))
        return x.transpose(axes)

    def backward(self, grad):
        return grad.transpose(self.inverse)


def transpose(x: Tensor, *axes, dim0=None, dim1=None) -> Tensor:
    """NumPy's transpose: no axes reverses them (``x.T``); ``x.transpose(0, 2, 1)`` (or a tuple)
    permutes, axis i of the result being axis ``axes[i]`` of x.

    Two int axes on a tensor that does not have two dims cannot be a permutation, so they mean
    what PyTorch's ``transpose(dim0, dim1)`` means: swap those two axes (``q.transpose(1, 2)``);
    so do the keywords ``dim0=``, ``dim1=``. On a 2-D tensor, ``(1, 0)`` swaps under both readings,
    and ``(0, 1)`` stays NumPy's identity but warns (a UserWarning: PyTorch code meant a swap);
    ``x.T`` or ``x.swapaxes(0, 1)`` swap, ``x.transpose((0, 1))`` is the identity, silently.

    >>> import tinygrad_pt as tg
    >>> tg.zeros(2, 3, 4).transpose(0, 2, 1).shape
    (2, 4, 3)
    >>> tg.zeros(2, 3, 4).transpose(1, 2).shape
    (2, 4, 3)
    """
    if dim0 is not None or dim1 is not None:
        if axes or dim0 is None or dim1 is None:
            raise TypeError(f"transpose: dim0= and dim1= (PyTorch's swap of two axes) go together "
                            f"and without positional axes, got axes {axes}, dim0={dim0!r}, "
                            f"dim1={dim1!r}")
        return _swap("transpose", x, dim0, dim1)
    if len(axes) == 2 and is_int(axes[0]) and is_int(axes[1]):
        if x.ndim != 2:
            return _swap("transpose", x, *axes)
        if tuple(int(a) % 2 for a in axes if -2 <= a < 2) == (0, 1):
            # The contract's meaning stands (a valid permutation), but nobody writes the identity
            # by hand except when porting PyTorch code, where it meant a swap: say so.
            warnings.warn(f"transpose: axes {tuple(axes)} on a 2-D tensor are NumPy's identity "
                          f"permutation (this library's transpose), not PyTorch's swap of the two "
                          f"axes; write x.T or x.swapaxes(0, 1) to swap, or x.transpose((0, 1)) "
                          f"for the identity without this warning", UserWarning, stacklevel=2)
    return permute(x, *axes)


def permute(x: Tensor, *axes) -> Tensor:
    """The permutation `axes` of x's axes (ints or one tuple; none reverses them): NumPy's
    transpose and PyTorch's permute, one meaning."""
    if not axes or (len(axes) == 1 and axes[0] is None):
        axes = tuple(range(x.ndim))[::-1]
    elif len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    ok = (len(axes) == x.ndim and all(is_int(a) and -x.ndim <= a < x.ndim for a in axes))
    perm = tuple(int(a) % x.ndim for a in axes) if ok else ()
    if not ok or sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of the {x.ndim} "
                         f"axes of a tensor of shape {x.shape}")
    return Transpose.apply(x, axes=perm)


def _swap(op: str, x: Tensor, axis1, axis2) -> Tensor:
    a, b = one_axis(op, axis1, x.ndim), one_axis(op, axis2, x.ndim)
    perm = list(range(x.ndim))
    perm[a], perm[b] = b, a
    return Transpose.apply(x, axes=tuple(perm))


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    """x with axes `axis1` and `axis2` exchanged (a transpose; PyTorch's swapdims too)."""
    return _swap("swapaxes", x, axis1, axis2)


# ----------------------------------------------------------------------------------------------------
# Broadcasting

class BroadcastTo(Function):
    """y = x repeated along the axes it is broadcast over; dx = dy summed over the copies."""
    saved_inputs = ()

    def forward(self, x, shape):
        self.x_shape = x.shape
        return array_module(x).broadcast_to(x, shape)  # a read-only view: nothing is copied

    def backward(self, grad):
        return unbroadcast(grad, self.x_shape)


def _check_broadcast(op: str, shape: tuple, target: tuple):
    lead = len(target) - len(shape)
    ok = lead >= 0 and all(n >= 0 for n in target) and all(
        s == t or s == 1 for s, t in zip(shape, target[lead:]))
    if not ok:
        raise ValueError(f"{op}: cannot broadcast a tensor of shape {shape} to {target} (NumPy "
                         "rules: the target has at least as many axes, and each trailing axis "
                         "of the tensor equals the target's or is 1)")


def broadcast_to(x: Tensor, shape) -> Tensor:
    """NumPy's broadcast_to: x repeated (as a view) to `shape`."""
    shape = _shape_args("broadcast_to", (shape,) if is_int(shape) else (tuple(shape),))
    _check_broadcast("broadcast_to", x.shape, shape)
    return BroadcastTo.apply(x, shape=shape)


def expand(x: Tensor, *sizes) -> Tensor:
    """PyTorch's expand: broadcast_to, where -1 keeps the size of an existing axis.

    >>> import tinygrad_pt as tg
    >>> tg.zeros(3, 1).expand(2, -1, 4).shape
    (2, 3, 4)
    """
    sizes = _shape_args("expand", sizes)
    lead = len(sizes) - x.ndim
    if lead < 0 or any(n == -1 for n in sizes[:lead]):
        raise ValueError(f"expand: cannot expand a tensor of shape {x.shape} to {sizes}: give at "
                         "least as many sizes as it has axes, and -1 only for an existing axis")
    target = sizes[:lead] + tuple(s if n == -1 else n for s, n in zip(x.shape, sizes[lead:]))
    _check_broadcast("expand", x.shape, target)
    return BroadcastTo.apply(x, shape=target)


# ----------------------------------------------------------------------------------------------------
# Adding and removing axes of size 1 (reshapes)

def squeeze(x: Tensor, axis=None, *, dim=None) -> Tensor:
    """x without its axes of size 1 (or only the given ones, which must have size 1, as NumPy;
    PyTorch would leave a larger axis alone). ``dim=`` is an alias of ``axis=``."""
    axis = alias("squeeze", "axis", axis, "dim", dim)
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = normalize_axis("squeeze", axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: cannot squeeze axis {a} of a tensor of shape "
                                 f"{x.shape}: its size is {x.shape[a]}, not 1")
    return Reshape.apply(x, shape=tuple(n for i, n in enumerate(x.shape) if i not in axes))


def expand_dims(x: Tensor, axis) -> Tensor:
    """x with new axes of size 1 at positions `axis` (int or tuple) of the result (NumPy).

    >>> import tinygrad_pt as tg
    >>> tg.zeros(2, 3).expand_dims(-1).shape
    (2, 3, 1)
    """
    n_new = 1 if is_int(axis) else len(tuple(axis))
    new = normalize_axis("expand_dims", axis, x.ndim + n_new)
    sizes = iter(x.shape)
    return Reshape.apply(x, shape=tuple(1 if i in new else next(sizes)
                                        for i in range(x.ndim + n_new)))


def unsqueeze(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """PyTorch's name for expand_dims with one axis (``dim=`` is accepted for ``axis=``)."""
    axis = alias("unsqueeze", "axis", axis, "dim", dim)
    if axis is None:
        raise TypeError("unsqueeze: missing the axis (dim) at which to add an axis of size 1")
    return expand_dims(x, one_axis("unsqueeze", axis, x.ndim + 1))


def flatten(x: Tensor, start_axis: int | None = None, end_axis: int | None = None, *,
            start_dim: int | None = None, end_dim: int | None = None) -> Tensor:
    """Axes start_axis..end_axis (inclusive) merged into one (PyTorch's flatten, whose keywords
    start_dim= and end_dim= are accepted too; a 0-d tensor gives shape (1,)).

    >>> import tinygrad_pt as tg
    >>> tg.zeros(2, 3, 4).flatten(1).shape
    (2, 12)
    """
    start_axis = alias("flatten", "start_axis", start_axis, "start_dim", start_dim, 0)
    end_axis = alias("flatten", "end_axis", end_axis, "end_dim", end_dim, -1)
    if x.ndim == 0:
        return Reshape.apply(x, shape=(1,))
    s, e = one_axis("flatten", start_axis, x.ndim), one_axis("flatten", end_axis, x.ndim)
    if s > e:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis} for a "
                         f"tensor of shape {x.shape}")
    shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    return Reshape.apply(x, shape=shape)


# ----------------------------------------------------------------------------------------------------
# Joining: concatenate, stack

class Concatenate(Function):
    """y = the inputs joined along `axis`; each input's gradient is its slice of dy."""
    saved_inputs = ()

    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = np.cumsum([0] + [a.shape[axis] for a in arrays]).tolist()
        return array_module(*arrays).concatenate(arrays, axis=axis)

    def backward(self, grad):
        before = (slice(None),) * self.axis
        return tuple(grad[before + (slice(lo, hi),)] if need else None
                     for need, lo, hi in zip(self.needs_input_grad, self.bounds, self.bounds[1:]))


class Stack(Function):
    """y = the inputs stacked along a new axis `axis`; input i's gradient is dy[..., i, ...]."""
    saved_inputs = ()

    def forward(self, *arrays, axis):
        self.axis = axis
        return array_module(*arrays).stack(arrays, axis=axis)

    def backward(self, grad):
        before = (slice(None),) * self.axis
        return tuple(grad[before + (i,)] if need else None
                     for i, need in enumerate(self.needs_input_grad))


def _tensor_list(op: str, tensors) -> list:
    """The sequence as Tensors (arrays and numbers join the first Tensor's device)."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: need at least one tensor, got an empty sequence")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    if like is None:
        raise TypeError(f"{op}: expected at least one Tensor in the sequence")
    return [lift(t, like) for t in tensors]


def concatenate(tensors, axis: int = 0) -> Tensor:
    """NumPy's concatenate: tensors of equal shape except along `axis`, joined along it.

    >>> import tinygrad_pt as tg
    >>> tg.concatenate([tg.zeros(2, 3), tg.ones(2, 1)], axis=1).shape
    (2, 4)
    """
    tensors = _tensor_list("concatenate", tensors)
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("concatenate: 0-d tensors cannot be concatenated (there is no axis to "
                         "join along); use stack")
    axis = one_axis("concatenate", axis, first.ndim)
    for i, t in enumerate(tensors[1:], start=1):
        if t.ndim != first.ndim:
            raise ValueError(f"concatenate: tensor {i} has shape {t.shape} but tensor 0 has "
                             f"{first.shape}; they must have the same number of axes")
        if any(a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != axis):
            raise ValueError(f"concatenate: tensor {i} has shape {t.shape} but tensor 0 has "
                             f"{first.shape}; all axes except axis {axis} must match")
    return Concatenate.apply(*tensors, axis=axis)


def cat(tensors, axis: int = 0, *, dim: int | None = None) -> Tensor:
    """PyTorch's name for concatenate (``dim=`` is accepted for ``axis=``)."""
    return concatenate(tensors, axis if dim is None else dim)


def stack(tensors, axis: int = 0, *, dim: int | None = None) -> Tensor:
    """NumPy's stack: tensors of one shape joined along a new axis `axis` of the result.

    >>> import tinygrad_pt as tg
    >>> tg.stack([tg.zeros(2, 3), tg.ones(2, 3)], axis=1).shape
    (2, 2, 3)
    """
    tensors = _tensor_list("stack", tensors)
    first = tensors[0]
    axis = one_axis("stack", axis if dim is None else dim, first.ndim + 1)
    for i, t in enumerate(tensors[1:], start=1):
        if t.shape != first.shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has "
                             f"{first.shape}; all tensors must have the same shape")
    return Stack.apply(*tensors, axis=axis)


# ----------------------------------------------------------------------------------------------------
# Splitting: split, chunk (slices, so the gradient flows through getitem)

def _slices(x: Tensor, axis: int, bounds) -> list:
    """x[lo:hi] along `axis` for consecutive (lo, hi) in bounds."""
    before = (slice(None),) * axis
    return [getitem(x, before + (slice(lo, hi),)) for lo, hi in zip(bounds, bounds[1:])]


def split(x: Tensor, indices_or_sections=None, axis=None, *, split_size_or_sections=None,
          dim=None) -> list:
    """NumPy's split: an int n cuts `axis` into n equal pieces (it must divide the axis); a list
    of split points [i, j] gives x[:i], x[i:j], x[j:] along `axis`.

    With PyTorch's keywords, ``split_size_or_sections=`` or ``dim=``, the first argument means
    what it means in torch.split: an int is the size of each piece (the last may be smaller), a
    list the sizes of the pieces (summing to the axis's size): ``qkv.split(C, dim=2)``.

    >>> import tinygrad_pt as tg
    >>> [p.shape for p in tg.zeros(5, 2).split([1, 3])]
    [(1, 2), (2, 2), (2, 2)]
    >>> [p.shape for p in tg.zeros(5, 2).split([1, 4], dim=0)]
    [(1, 2), (4, 2)]
    """
    if split_size_or_sections is not None and indices_or_sections is not None:
        raise TypeError("split: give indices_or_sections (NumPy's meaning) or "
                        "split_size_or_sections (PyTorch's), not both")
    torch_meaning = split_size_or_sections is not None or dim is not None
    arg = split_size_or_sections if split_size_or_sections is not None else indices_or_sections
    if arg is None:
        raise TypeError("split: missing the sections: indices_or_sections (NumPy: a count or "
                        "split points) or split_size_or_sections (PyTorch: piece sizes)")
    axis = one_axis("split", alias("split", "axis", axis, "dim", dim, 0), x.ndim)
    n = x.shape[axis]
    if torch_meaning:
        return _slices(x, axis, _torch_split_bounds(arg, axis, n))
    if is_int(arg):
        sections = int(arg)
        if sections <= 0:
            raise ValueError(f"split: the number of sections must be positive, got {sections}")
        if n % sections:
            raise ValueError(f"split: axis {axis} of size {n} cannot be split into {sections} "
                             "equal sections; pass split points (a list) or use chunk (NumPy's "
                             f"meaning: the int counts the pieces); for pieces of size "
                             f"{sections}, as torch.split cuts them, pass dim={axis}")
        step = n // sections
        bounds = [k * step for k in range(sections + 1)]
    else:
        points = list(arg)
        if not all(is_int(p) for p in points):
            raise TypeError(f"split: split points must be integers, got {points}")
        bounds = [0] + [int(p) for p in points] + [None]  # slicing clamps and wraps as NumPy's
    return _slices(x, axis, bounds)


def _torch_split_bounds(arg, axis: int, n: int) -> list:
    """torch.split's pieces as bounds: an int is each piece's size, a list the sizes."""
    if is_int(arg):
        size = int(arg)
        if size <= 0:
            raise ValueError(f"split: the size of each piece (PyTorch's split_size) must be "
                             f"positive, got {size}")
        return list(range(0, n, size)) + [n] if n else [0, 0]  # an empty axis: one empty piece
    sizes = list(arg)
    if not all(is_int(p) and p >= 0 for p in sizes):
        raise TypeError(f"split: the sizes of the pieces must be non-negative integers, got "
                        f"{sizes}")
    if sum(sizes) != n:
        raise ValueError(f"split: the sizes {sizes} sum to {sum(sizes)}, but axis {axis} "
                         f"has size {n} (PyTorch's split_size_or_sections: the sizes of the "
                         f"pieces)")
    return np.cumsum([0] + sizes).tolist()


def chunk(x: Tensor, chunks: int, axis: int = 0, *, dim: int | None = None) -> list:
    """PyTorch's chunk: pieces of ceil(n / chunks) along `axis`, the last one smaller (so there
    may be fewer than `chunks` pieces).

    >>> import tinygrad_pt as tg
    >>> [p.shape[0] for p in tg.zeros(5).chunk(4)]
    [2, 2, 1]
    """
    if not is_int(chunks) or chunks <= 0:
        raise ValueError(f"chunk: the number of chunks must be a positive integer, got {chunks!r}")
    axis = one_axis("chunk", axis if dim is None else dim, x.ndim)
    n = x.shape[axis]
    if n == 0:  # nothing to cut: `chunks` empty pieces, as PyTorch
        return _slices(x, axis, [0] * (chunks + 1))
    size = -(-n // chunks)  # ceil(n / chunks)
    return _slices(x, axis, list(range(0, n, size)) + [n])


TENSOR_METHODS = {
    "reshape": reshape, "transpose": transpose, "permute": permute, "swapaxes": swapaxes,
    "T": property(lambda self: transpose(self), doc="x with its axes reversed (NumPy's .T)"),
    "expand": expand, "broadcast_to": broadcast_to, "squeeze": squeeze,
    "expand_dims": expand_dims, "unsqueeze": unsqueeze, "flatten": flatten, "split": split,
    "chunk": chunk,
}
