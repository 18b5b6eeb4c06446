"""Indexing: x[key], embedding (a gather of rows), masked_fill, tril and triu.

Reading values out of x by index is linear in x, so every backward here is the adjoint of a
gather: a zero array of x's shape with the gradient written back at the positions that were read.
An index may name one position twice (``x[[0, 0]]``, a repeated token id), and then both
gradients must be added, not the last one kept: that is NumPy's ``add.at`` (``cupyx.scatter_add``
on the GPU), the scatter-add. Basic indexing (ints and slices) reads each position at most once,
so plain assignment into the zeros is enough there.

Tensors are immutable in the graph: ``x[i] = v`` raises and points to ``tg.where`` and
``masked_fill``, which build a new tensor instead.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, broadcasts_to
from ..backend import array_module, device_of, is_cupy_array
from ..checks import check_values
from ..tensor import Tensor
from .arguments import is_int

__all__ = ["masked_fill", "tril", "triu"]


def scatter_add(target, index, values):
    """target[index] += values in place, where a position named twice by `index` gets both
    values (NumPy's add.at; cupyx.scatter_add for CuPy arrays)."""
    if is_cupy_array(target):
        import cupyx  # noqa: PLC0415 (only when the data is on the GPU)
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


def scatter_add_rows(target, rows, values):
    """target[rows] += values in place for a 2-D target and integer `rows` of any shape (values:
    rows.shape + (D,)): scatter_add for the embedding's case, by sorting instead of add.at.

    np.add.at adds one row at a time through a generic indexed loop: 2.8 ms for the GPT's 2048
    tokens x 128 wide (a step has two). Sorted (stably), the rows of one id lie next to each
    other and one add.reduceat sums every run: 0.8 ms. reduceat sums a run pairwise, not row
    after row as add.at does: the last bits differ, the error is no larger (measured against
    float64: 7e-6 against add.at's 1.2e-5 on 2048 rows), and the result is deterministic."""
    flat = rows.reshape(-1)
    if is_cupy_array(target) or flat.size == 0:
        scatter_add(target, rows, values)
        return
    order = np.argsort(flat, kind="stable")
    ids = flat[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    target[ids[starts]] += np.add.reduceat(values.reshape(flat.size, -1)[order], starts, axis=0)


def _array_on(op: str, value, x: Tensor):
    """An index-like value (Tensor, ndarray, list) as a raw array on x's device.

    Index Tensors and CuPy arrays must already be there (no hidden transfer); lists and NumPy
    arrays are constants written by the user, like Python ints, and are placed on x's device.
    """
    if isinstance(value, Tensor) or is_cupy_array(value):
        arr = value.data if isinstance(value, Tensor) else value
        if device_of(arr) != x.device:
            raise RuntimeError(f"{op}: the index is on {device_of(arr)} but the tensor is on "
                               f"{x.device}; move it with .to({x.device!r}) first")
        return arr
    arr = np.asarray(value)
    if isinstance(value, (list, tuple)) and arr.size == 0:
        arr = arr.astype(np.intp)  # [] is an empty integer index, as in NumPy
    return array_module(x.data).asarray(arr)


# ----------------------------------------------------------------------------------------------------
# x[key]

class GetItem(Function):
    """y = x[index] for an index already checked and normalised by ``getitem``.

    dx = zeros like x with dy added at the indexed positions (scatter-add when the index holds
    arrays, since they may repeat a position; plain assignment for ints and slices).
    """

    def forward(self, x, index, advanced):
        self.x_shape, self.index, self.advanced = x.shape, index, advanced
        return x[index]

    def backward(self, grad):
        g = array_module(grad).zeros(self.x_shape, dtype=grad.dtype)
        if self.advanced:
            scatter_add(g, self.index, grad)
        else:
            g[self.index] = grad
        return g

    def graph_backward(self, grad, output):
        return GetItemBackward.apply(grad, x_shape=self.x_shape, index=self.index,
                                     advanced=self.advanced)


class GetItemBackward(Function):
    """dx = zeros of x's shape with dy added at the indexed positions: GetItem's backward as an
    op of its own, so that a gradient can be differentiated again (create_graph). It is linear,
    and its own backward is the adjoint of a scatter: the gather, GetItem again."""

    def forward(self, grad, x_shape, index, advanced):
        self.index, self.advanced = index, advanced
        g = array_module(grad).zeros(x_shape, dtype=grad.dtype)
        if advanced:
            scatter_add(g, index, grad)
        else:
            g[index] = grad
        return g

    def backward(self, grad):
        return grad[self.index]

    def graph_backward(self, grad, output):
        return GetItem.apply(grad, index=self.index, advanced=self.advanced)


def _normalize_index(x: Tensor, key):
    """`key` as a tuple of ints, slices, None, Ellipsis and raw integer arrays on x's device.

    Boolean masks of k dimensions become their k integer arrays of positions (``mask.nonzero()``,
    which is how NumPy defines them) after their shape is checked against the axes they cover.
    Returns (index, advanced) where advanced says whether any array is in the index.
    """
    items = []
    for item in key if isinstance(key, tuple) else (key,):
        if item is None or item is Ellipsis or isinstance(item, slice) or is_int(item):
            items.append(item)
        elif isinstance(item, (bool, np.bool_)):
            items.append(array_module(x.data).asarray(item))  # a 0-d mask: adds an axis of 1 or 0
        elif isinstance(item, (Tensor, list, tuple, np.ndarray)) or is_cupy_array(item):
            arr = _array_on("getitem", item, x)
            if arr.dtype.kind not in "biu":
                raise IndexError(f"getitem: index arrays must hold integers or booleans, got "
                                 f"dtype {arr.dtype}")
            items.append(arr)
        else:
            raise IndexError(f"getitem: only integers, slices, None, Ellipsis and integer or "
                             f"boolean arrays/tensors are valid indices, got "
                             f"{type(item).__name__}")

    # How many axes of x each item reads: a boolean mask as many as it has dimensions.
    def width(item):
        if item is None or item is Ellipsis:
            return 0
        if isinstance(item, slice) or is_int(item):
            return 1
        return item.ndim if item.dtype.kind == "b" else 1

    n_ellipsis = sum(item is Ellipsis for item in items)
    used = sum(width(item) for item in items)
    if n_ellipsis > 1:
        raise IndexError("getitem: an index can only have a single Ellipsis (...)")
    if used > x.ndim:
        raise IndexError(f"getitem: too many indices for a tensor of shape {x.shape}: the index "
                         f"reads {used} axes")

    index, axis, advanced = [], 0, False
    for item in items:
        if item is Ellipsis:
            axis += x.ndim - used
        elif isinstance(item, slice):
            if item.step == 0:
                raise ValueError("getitem: slice step cannot be zero")
            axis += 1
        elif is_int(item):
            size = x.shape[axis]
            if not -size <= item < size:
                raise IndexError(f"getitem: index {item} is out of bounds for axis {axis} "
                                 f"with size {size}")
            item, axis = int(item), axis + 1
        elif item is not None and item.dtype.kind == "b" and item.ndim > 0:
            covered = x.shape[axis:axis + item.ndim]
            if item.shape != covered:
                raise IndexError(f"getitem: boolean index of shape {tuple(item.shape)} does not "
                                 f"match axes {axis}..{axis + item.ndim - 1} of the tensor of "
                                 f"shape {x.shape} (sizes {covered})")
            index.extend(item.nonzero())
            axis, advanced = axis + item.ndim, True
            continue
        elif item is not None:  # an integer array, or a 0-d boolean one
            if item.dtype.kind != "b":
                size = x.shape[axis]
                bad = (item < -size) | (item >= size)

                def out_of_bounds(item=item, bad=bad, axis=axis, size=size):
                    raise IndexError(f"getitem: index {int(item[bad].reshape(-1)[0])} is out of "
                                     f"bounds for axis {axis} with size {size}")
                check_values(bad, out_of_bounds)
                axis += 1
            advanced = True
        index.append(item)

    arrays = [a for a in index if not (a is None or a is Ellipsis or isinstance(a, (int, slice)))]
    shapes = [(int(bool(a)),) if a.ndim == 0 and a.dtype.kind == "b" else tuple(a.shape)
              for a in arrays]  # a 0-d mask counts as 1 or 0 positions
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise IndexError(f"getitem: the index arrays have shapes {', '.join(map(str, shapes))}, "
                         "which cannot be broadcast together (boolean masks count as their "
                         "number of true elements)") from None
    return tuple(index), advanced


def getitem(x: Tensor, key) -> Tensor:
    """x[key] with NumPy's rules: ints, slices (any step), None, Ellipsis, integer arrays
    (lists, ndarrays or int Tensors), boolean masks, and mixes of these.

    >>> import tinygrad_pt as tg
    >>> x = tg.arange(12).reshape(3, 4)
    >>> x[1:, ::-2].tolist()
    [[7, 5], [11, 9]]
    >>> x[[0, 0, 2], -1].tolist()
    [3, 3, 11]
    """
    index, advanced = _normalize_index(x, key)
    return GetItem.apply(x, index=index, advanced=advanced)


def _setitem(x: Tensor, key, value):
    raise TypeError("tensors are immutable in the autograd graph, so item assignment "
                    "(x[...] = value) is not supported; build a new tensor instead, e.g. "
                    "tg.where(mask, value, x) or x.masked_fill(mask, value)")


# ----------------------------------------------------------------------------------------------------
# Embedding: a gather of rows

class Embedding(Function):
    """y = weight[indices]: (V, D) rows gathered to (*indices.shape, D).

    dweight = zeros (V, D) with each row of dy added to the row it was read from (scatter-add:
    a token that occurs twice gets both gradients). The indices get no gradient.
    """

    def forward(self, weight, indices):
        self.weight_shape, self.indices = weight.shape, indices
        return weight[indices]

    def backward(self, grad):
        g = array_module(grad).zeros(self.weight_shape, dtype=grad.dtype)
        scatter_add_rows(g, self.indices, grad)
        return g, None

    def graph_backward(self, grad, output):
        return GetItemBackward.apply(grad, x_shape=self.weight_shape, index=self.indices,
                                     advanced=True), None


def embedding(weight: Tensor, indices) -> Tensor:
    """Rows of `weight` (V, D) picked by integer `indices` of any shape: (*indices.shape, D).

    (``F.embedding(idx, weight)`` calls this with the arguments in this order.) Indices outside
    0..V-1 raise IndexError: negative ids are not wrapped around.

    >>> import tinygrad_pt as tg
    >>> w = tg.arange(6).reshape(3, 2)
    >>> embedding(w, [[2, 0]]).tolist()
    [[[4, 5], [0, 1]]]
    """
    if not isinstance(weight, Tensor):
        raise TypeError(f"embedding: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {weight.shape}")
    idx = _array_on("embedding", indices, weight)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n = weight.shape[0]
    bad = (idx < 0) | (idx >= n)

    def out_of_range():
        raise IndexError(f"embedding: index {int(idx[bad].reshape(-1)[0])} is out of range for "
                         f"{n} embeddings (valid: 0..{n - 1})")
    check_values(bad, out_of_range)  # on cuda: at the next host read, without a sync here
    return Embedding.apply(weight, Tensor._make(idx))


# ----------------------------------------------------------------------------------------------------
# masked_fill, tril, triu

class MaskedFill(Function):
    """y = value where mask else x; dx = dy where not mask, 0 where mask."""
    anomaly_allows_inf = True  # filling with -inf (attention masks) is its job
    saved_inputs = ()  # the mask is a constant

    def forward(self, x, mask, value):
        xp = array_module(x)
        self.mask = mask
        return xp.where(mask, xp.asarray(value, dtype=x.dtype), x)  # value in x's dtype: no upcast

    def backward(self, grad):
        return array_module(grad).where(self.mask, grad.dtype.type(0), grad), None


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """x with `value` where the boolean `mask` (broadcastable to x's shape) is true.

    `value` is a number (or a one-element tensor, which gets no gradient).

    >>> import tinygrad_pt as tg
    >>> tg.zeros(2, 2).masked_fill(tg.tril(tg.ones(2, 2)) == 0, float("-inf")).tolist()
    [[0.0, -inf], [0.0, 0.0]]
    """
    m = _array_on("masked_fill", mask, x)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a boolean tensor, got dtype {m.dtype}")
    if not broadcasts_to(m.shape, x.shape):
        raise ValueError(f"masked_fill: mask of shape {tuple(m.shape)} cannot be broadcast to "
                         f"the tensor's shape {x.shape}")
    if isinstance(value, Tensor):
        if value.size != 1:
            raise ValueError(f"masked_fill: value must be a number or a one-element tensor, got "
                             f"shape {value.shape}")
        value = value.data.reshape(())
    elif not isinstance(value, (bool, int, float, np.generic)):
        raise TypeError(f"masked_fill: value must be a number, got {type(value).__name__}")
    elif x.dtype.kind in "biu" and isinstance(value, float) and not value.is_integer():
        raise TypeError(f"masked_fill: cannot fill a tensor of dtype {x.dtype} with {value}")
    return MaskedFill.apply(x, Tensor._make(m), value=value)


class _Triangle(Function):
    """y = x on one side of the k-th diagonal of the last two axes, 0 elsewhere; dx = dy masked
    the same way. Subclasses say which side with ``keep``."""
    saved_inputs = ()

    @staticmethod
    def keep(xp, n, m, k):
        raise NotImplementedError

    def forward(self, x, k):
        xp = array_module(x)
        self.kept = self.keep(xp, x.shape[-2], x.shape[-1], k)  # (n, m) bool, broadcast over batch
        return xp.where(self.kept, x, x.dtype.type(0))

    def backward(self, grad):
        return array_module(grad).where(self.kept, grad, grad.dtype.type(0))


class Tril(_Triangle):
    """Keep row i, column j where j <= i + k (on and below the k-th diagonal)."""

    @staticmethod
    def keep(xp, n, m, k):
        return xp.tri(n, m, k, dtype=bool)


class Triu(_Triangle):
    """Keep row i, column j where j >= i + k (on and above the k-th diagonal)."""

    @staticmethod
    def keep(xp, n, m, k):
        return ~xp.tri(n, m, k - 1, dtype=bool)


def _triangle(op: str, cls, x: Tensor, k) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{op}: expected a tensor with at least 2 dimensions (the last two are "
                         f"the matrix), got shape {x.shape}")
    if not is_int(k):
        raise TypeError(f"{op}: the diagonal offset k must be an integer, got {k!r}")
    return cls.apply(x, k=int(k))


def tril(x: Tensor, k: int = 0) -> Tensor:
    """The lower triangle of the last two axes (j <= i + k), zeros above (NumPy's tril).

    ``tg.tril(tg.ones(T, T))`` is the causal mask: position i sees positions 0..i.

    >>> import tinygrad_pt as tg
    >>> tg.tril(tg.ones(3, 3)).tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    """
    return _triangle("tril", Tril, x, k)


def triu(x: Tensor, k: int = 0) -> Tensor:
    """The upper triangle of the last two axes (j >= i + k), zeros below (NumPy's triu)."""
    return _triangle("triu", Triu, x, k)


TENSOR_METHODS = {"__getitem__": getitem, "__setitem__": _setitem, "masked_fill": masked_fill,
                  "tril": tril, "triu": triu}
