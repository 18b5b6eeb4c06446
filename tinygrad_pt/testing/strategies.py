"""Hypothesis strategies for property-testing ops: finite float arrays and the shapes ops accept.

Public, for tests of your own Functions as well as ours. Needs hypothesis (the ``dev`` extra),
so import this module explicitly; ``import tinygrad_pt`` never imports it.

    from hypothesis import given, strategies as st
    from tinygrad_pt.testing import gradcheck
    from tinygrad_pt.testing.strategies import arrays, broadcastable_shapes

    @given(broadcastable_shapes().flatmap(lambda s: st.tuples(arrays(s[0]), arrays(s[1]))))
    def test_mul(ab):
        assert gradcheck(lambda a, b: a * b, *ab)

- ``arrays(shape, dtype, min_value, max_value)``: finite float arrays (float64 by default, for
  gradcheck), optionally with all elements distinct or kept away from zero.
- ``shapes(min_dims, max_dims, min_side, max_side)``: array shapes, 0-d included by default.
- ``broadcastable_shapes()``: pairs of shapes that broadcast together under NumPy's rules.
- ``matmul_shapes()``: pairs valid for ``np.matmul``: 1-D vectors, matrices, batched stacks whose
  batch axes broadcast.
- ``axes(ndim)``: reduction axes valid for NumPy on an ``ndim``-dimensional array: None, an int
  (negative too) or a tuple of distinct ints.

Sides start at 1 by default: empty arrays are a separate edge case for a test to ask for.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["arrays", "shapes", "broadcastable_shapes", "matmul_shapes", "axes"]

_FLOAT_WIDTHS = {np.dtype(np.float16): 16, np.dtype(np.float32): 32, np.dtype(np.float64): 64}


def _check_dims(fn: str, min_dims: int, max_dims: int, min_side: int, max_side: int) -> None:
    if not 0 <= min_dims <= max_dims:
        raise ValueError(f"{fn}: expected 0 <= min_dims <= max_dims, got min_dims={min_dims}, "
                         f"max_dims={max_dims}")
    if not 0 <= min_side <= max_side:
        raise ValueError(f"{fn}: expected 0 <= min_side <= max_side, got min_side={min_side}, "
                         f"max_side={max_side}")


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    """Shapes with min_dims..max_dims axes, each of length min_side..max_side.

    The default includes () (a 0-d array) and axes of length 1, two classic sources of
    broadcasting bugs.
    """
    _check_dims("shapes", min_dims, max_dims, min_side, max_side)
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(shape=None, dtype=np.float64, min_value: float = -10, max_value: float = 10, *,
           min_magnitude: float = 0.0, unique: bool = False):
    """Finite float arrays of `dtype` with elements in [min_value, max_value].

    shape:          a tuple, an int, or a strategy for shapes; None draws from ``shapes()``.
    min_magnitude:  elements closer to zero than this are moved out to +-min_magnitude (for ops
                    that are singular or not differentiable at 0: log, sqrt, 1/x, abs); the
                    interval must leave room for that.
    unique:         all elements distinct (for max/min/sort, where ties make the gradient a
                    subgradient that finite differences do not see).
    """
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_WIDTHS:
        raise ValueError(f"arrays: dtype must be float16, float32 or float64, got {dtype}")
    if not (math.isfinite(min_value) and math.isfinite(max_value)) or min_value > max_value:
        raise ValueError(f"arrays: expected finite min_value <= max_value, got {min_value} and "
                         f"{max_value}")
    if min_magnitude < 0 or min_magnitude > max(abs(min_value), abs(max_value)):
        raise ValueError(f"arrays: min_magnitude={min_magnitude} leaves no value in "
                         f"[{min_value}, {max_value}]")
    if shape is None:
        shape = shapes()
    # Bounds rounded inward to `dtype` (hypothesis wants them exactly representable).
    lo, hi = _inward(min_value, dtype, np.inf), _inward(max_value, dtype, -np.inf)
    elements = st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False,
                         allow_subnormal=False, width=_FLOAT_WIDTHS[dtype])
    if min_magnitude > 0:
        elements = elements.map(
            lambda v: float(dtype.type(_away_from_zero(v, min_magnitude, lo, hi))))
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def _inward(v: float, dtype, toward: float) -> float:
    """`v` as the nearest value of `dtype`, stepped one ulp toward `toward` if rounding moved it
    outward."""
    r = dtype.type(v)
    if (toward > 0 and float(r) < v) or (toward < 0 and float(r) > v):
        r = np.nextafter(r, dtype.type(toward))
    return float(r)


def _away_from_zero(v: float, m: float, lo: float, hi: float) -> float:
    """v if |v| >= m, else the nearer of -m and +m that lies in [lo, hi]."""
    if abs(v) >= m:
        return v
    preferred = math.copysign(m, v) if v != 0 else m
    return preferred if lo <= preferred <= hi else -preferred


@st.composite
def broadcastable_shapes(draw, min_dims: int = 0, max_dims: int = 4, min_side: int = 1,
                         max_side: int = 5):
    """Pairs (shape_a, shape_b) that broadcast together under NumPy's rules.

    Drawn from a target shape: each operand keeps its trailing axes (so the two may differ in
    length, 0-d included) and puts 1 in place of some sides, independently of the other, so
    crossed cases like ((1, 4), (3, 1)) are common, not rare.
    """
    _check_dims("broadcastable_shapes", min_dims, max_dims, min_side, max_side)
    target = draw(shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                         max_side=max_side))

    def operand():
        ndim = draw(st.integers(min_dims, len(target)))
        return tuple(1 if draw(st.booleans()) else n for n in target[len(target) - ndim:])

    return operand(), operand()


@st.composite
def matmul_shapes(draw, max_batch_dims: int = 2, min_side: int = 1, max_side: int = 5):
    """Pairs (shape_a, shape_b) valid for ``np.matmul``: (k,) or (..., n, k) with (k,) or
    (..., k, m), where the two batch prefixes broadcast together (and may differ in length)."""
    if max_batch_dims < 0:
        raise ValueError(f"matmul_shapes: max_batch_dims must be >= 0, got {max_batch_dims}")
    _check_dims("matmul_shapes", 0, max_batch_dims, max(min_side, 1), max_side)
    side = st.integers(max(min_side, 1), max_side)
    n, k, m = draw(side), draw(side), draw(side)
    batch_a, batch_b = draw(broadcastable_shapes(min_dims=0, max_dims=max_batch_dims,
                                                 min_side=1, max_side=max_side))
    a = (k,) if draw(st.booleans()) else batch_a + (n, k)
    b = (k,) if draw(st.booleans()) else batch_b + (k, m)
    return a, b


def axes(ndim: int, allow_none: bool = True):
    """Reduction axes valid for NumPy on an array with `ndim` axes.

    None (all axes, when allow_none), one int in [-ndim, ndim), or a tuple of distinct ints
    (each possibly negative), the empty tuple included: NumPy reads ``axis=()`` as "reduce
    nothing" (note that PyTorch reads ``dim=()`` as "reduce everything").
    """
    if ndim < 0:
        raise ValueError(f"axes: ndim must be >= 0, got {ndim}")
    choices = [st.none()] if allow_none else []
    if ndim == 0:
        return st.one_of(*choices, st.just(()))
    one = st.integers(-ndim, ndim - 1)
    several = (st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)
               .flatmap(lambda picked: st.tuples(*[st.sampled_from((a, a - ndim))
                                                   for a in picked])))
    return st.one_of(*choices, one, several)
