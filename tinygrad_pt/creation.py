"""Making tensors: tg.tensor, from_numpy, zeros, ones, full, arange, eye, randn, rand, randint,
randperm, *_like.

Every function takes ``dtype=``, ``device=`` and (for floating dtypes) ``requires_grad=``. Random
tensors draw from the device's seeded generator (``tg.manual_seed``), or from ``generator=`` (a
``tg.Generator``, random.py) as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from .backend import canonical_device, default_float, resolve_dtype, xp_for
from .random import generator_for
from .tensor import Tensor, _require_numeric


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor from an array, a (nested) list, a scalar or another tensor, always copied
    (as torch.tensor): an optimizer updating it in place never writes into the caller's array.

    ndarrays keep their dtype; Python floats become float32, Python ints int64.

    >>> tensor([1.0, 2.0]).dtype
    dtype('float32')
    >>> tensor([1, 2]).dtype
    dtype('int64')
    >>> tensor(np.arange(3, dtype=np.int32)).dtype
    dtype('int32')
    """
    t = Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)
    if t.data is data:  # an ndarray used as is (same dtype, same device): own a copy
        t.data = data.copy()
    return t


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares `array`'s memory (no copy, as torch.from_numpy): a write to either is
    seen by the other. The dtype is kept. ``tg.tensor`` is the copying spelling.

    >>> a = np.zeros(2, dtype=np.float32)
    >>> t = from_numpy(a)
    >>> a[0] = 5.0
    >>> t.tolist()
    [5.0, 0.0]
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__} (for "
                        "other data, tg.tensor copies it)")
    _require_numeric(array, array)
    return Tensor._make(array)


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"shape must be non-negative integers, got {tuple(shape)}")
    return tuple(int(n) for n in shape)


def _number(op: str, name: str, value, integer: bool = False):
    """`value` if it is a real number (an int, for integer=True), else a TypeError naming it."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
        raise TypeError(f"{op}: {name} must be {'an integer' if integer else 'a number'}, got "
                        f"{value!r} ({type(value).__name__})")
    return value


def _new(array, requires_grad):
    return Tensor._make(array).requires_grad_(requires_grad)


def _float_dtype(dtype):
    return default_float if dtype is None else resolve_dtype(dtype)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = xp_for(canonical_device(device))
    return _new(xp.zeros(_shape(shape), dtype=_float_dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = xp_for(canonical_device(device))
    return _new(xp.ones(_shape(shape), dtype=_float_dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = xp_for(canonical_device(device))
    if not isinstance(fill_value, (bool, np.bool_)):
        _number("full", "fill_value", fill_value)
    if dtype is None and isinstance(fill_value, (bool, int, np.integer)):
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64
    shape = _shape(shape if isinstance(shape, (tuple, list)) else (shape,))
    return _new(xp.full(shape, fill_value, dtype=_float_dtype(dtype)), requires_grad)


def _like(t: Tensor, dtype, device):
    """The dtype and device of a *_like result: t's unless given (PyTorch's defaults)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"*_like: expected a Tensor to take the shape from, got {type(t).__name__}")
    return (t.dtype if dtype is None else resolve_dtype(dtype)), (t.device if device is None
                                                                  else canonical_device(device))


def zeros_like(t: Tensor, dtype=None, requires_grad=False, *, device=None) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return zeros(*t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False, *, device=None) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return ones(*t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad=False, *, device=None) -> Tensor:
    """A tensor of t's shape (and dtype and device, unless given) filled with fill_value."""
    dtype, device = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, requires_grad=False, *, device=None,
               generator=None) -> Tensor:
    """Standard normal samples of t's shape (and dtype and device, unless given)."""
    dtype, device = _like(t, dtype, device)
    return randn(*t.shape, dtype=dtype, device=device, requires_grad=requires_grad,
                 generator=generator)


def rand_like(t: Tensor, dtype=None, requires_grad=False, *, device=None,
              generator=None) -> Tensor:
    """Uniform samples in [0, 1) of t's shape (and dtype and device, unless given)."""
    dtype, device = _like(t, dtype, device)
    return rand(*t.shape, dtype=dtype, device=device, requires_grad=requires_grad,
                generator=generator)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """NumPy's arange: ints give int64, any float argument gives float32 (unless dtype=)."""
    if stop is None:
        start, stop = 0, start
    for name, v in (("start", start), ("end", stop), ("step", step)):
        if not np.isfinite(_number("arange", name, v)):
            raise ValueError(f"arange: {name} must be finite, got {v}")
    if step == 0:
        raise ValueError("arange: step must be nonzero, got 0")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if is_int else default_float
    xp = xp_for(canonical_device(device))
    return _new(xp.arange(start, stop, step, dtype=resolve_dtype(dtype)), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    for name, v in (("n", n), ("m", m)):
        if v is not None and _number("eye", name, v, integer=True) < 0:
            raise ValueError(f"eye: {name} must be non-negative, got {v}")
    xp = xp_for(canonical_device(device))
    return _new(xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples from the device's generator (or `generator`)."""
    device = canonical_device(device)
    dtype = _float_dtype(dtype)
    g = generator_for("randn", generator, device)
    a = g.standard_normal(_shape(shape), dtype=np.float64).astype(dtype)
    return _new(a, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform samples in [0, 1) from the device's generator (or `generator`)."""
    device = canonical_device(device)
    g = generator_for("rand", generator, device)
    a = g.random(_shape(shape), dtype=np.float64).astype(_float_dtype(dtype))
    return _new(a, requires_grad)


def randint(low: int, high: int | None = None, shape=None, dtype=np.int64, device=None,
            generator=None, *, size=None) -> Tensor:
    """Integers uniform in [low, high). PyTorch's spellings work too: ``randint(high, size)``
    (low 0) and ``size=`` for ``shape``."""
    if shape is not None and size is not None:
        raise TypeError("randint: give shape or its alias size, not both")
    shape = size if shape is None else shape
    if shape is None and isinstance(high, (tuple, list)):
        low, high, shape = 0, low, high  # torch.randint(high, size)
    if high is None:
        low, high = 0, low
    if shape is None:
        raise TypeError("randint: missing the shape (randint(low, high, shape) or "
                        "randint(high, size=...))")
    _number("randint", "low", low, integer=True)
    _number("randint", "high", high, integer=True)
    if low >= high:
        raise ValueError(f"randint: low must be less than high (the range is [low, high)), got "
                         f"low={low}, high={high}")
    device = canonical_device(device)
    shape = _shape(shape if isinstance(shape, (tuple, list)) else (shape,))
    g = generator_for("randint", generator, device)
    return Tensor._make(g.integers(low, high, size=shape).astype(resolve_dtype(dtype)))


def randperm(n: int, dtype=np.int64, device=None, generator=None) -> Tensor:
    """A random permutation of 0..n-1 (PyTorch's randperm)."""
    if _number("randperm", "n", n, integer=True) < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    g = generator_for("randperm", generator, canonical_device(device))
    # CuPy's Generator may lack permutation: the ranks of uniform draws are one (ties have
    # probability ~0 in float64).
    perm = g.permutation(int(n)) if hasattr(g, "permutation") else g.random(int(n)).argsort()
    return Tensor._make(perm.astype(resolve_dtype(dtype)))
