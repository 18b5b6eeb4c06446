"""tinygrad_pt.testing.strategies: each strategy draws only valid values and covers its edge cases."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

from tinygrad_pt.testing.strategies import arrays, axes, broadcastable_shapes, matmul_shapes, shapes


@given(shapes())
def test_shapes_default_bounds(s):
    assert isinstance(s, tuple) and 0 <= len(s) <= 4 and all(1 <= n <= 5 for n in s)


@given(shapes(min_dims=2, max_dims=3, min_side=2, max_side=3))
def test_shapes_custom_bounds(s):
    assert 2 <= len(s) <= 3 and all(2 <= n <= 3 for n in s)


def test_shapes_reach_zero_d_and_size_one_axes():
    assert find(shapes(), lambda s: s == ()) == ()
    assert 1 in find(shapes(min_dims=2), lambda s: 1 in s)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@given(data=st.data())
def test_arrays_are_finite_in_range_with_dtype(dtype, data):
    a = data.draw(arrays((3, 2), dtype=dtype, min_value=-0.1, max_value=2.5))
    assert a.shape == (3, 2) and a.dtype == dtype
    assert np.isfinite(a).all() and (a >= -0.1).all() and (a <= 2.5).all()


@given(arrays())
def test_arrays_default_shape_and_range(a):
    assert a.dtype == np.float64 and a.ndim <= 4 and np.isfinite(a).all() and (np.abs(a) <= 10).all()


@given(arrays(shapes(max_dims=2), min_value=-1.0, max_value=1.0, min_magnitude=0.25))
def test_arrays_min_magnitude(a):
    assert (np.abs(a) >= 0.25).all() and (np.abs(a) <= 1.0).all()


@given(arrays((4, 3), unique=True))
def test_arrays_unique(a):
    assert len(set(a.ravel().tolist())) == a.size


def test_arrays_bad_arguments():
    with pytest.raises(ValueError, match="dtype must be float16, float32 or float64, got int64"):
        arrays((2,), dtype=np.int64)
    with pytest.raises(ValueError, match="finite min_value <= max_value"):
        arrays((2,), min_value=1.0, max_value=0.0)
    with pytest.raises(ValueError, match="min_magnitude=5 leaves no value"):
        arrays((2,), min_value=-1.0, max_value=1.0, min_magnitude=5)
    with pytest.raises(ValueError, match="0 <= min_dims <= max_dims"):
        shapes(min_dims=3, max_dims=2)


@given(broadcastable_shapes())
def test_broadcastable_shapes_broadcast_under_numpy(pair):
    a, b = pair
    out = np.broadcast_shapes(a, b)
    assert (np.zeros(a) + np.zeros(b)).shape == out
    assert len(a) <= 4 and len(b) <= 4


def test_broadcastable_shapes_reach_the_interesting_cases():
    # different lengths, and a 1 against n in both directions
    many = settings(max_examples=5000)
    find(broadcastable_shapes(), lambda p: len(p[0]) != len(p[1]) and min(len(p[0]), len(p[1])) > 0,
         settings=many)
    assert find(broadcastable_shapes(), lambda p: len(p[0]) == len(p[1]) == 2 and p[0][0] == 1 < p[1][0]
                and p[1][1] == 1 < p[0][1], settings=many) == ((1, 2), (2, 1))
    find(broadcastable_shapes(), lambda p: p[0] == () or p[1] == (), settings=many)


@given(matmul_shapes())
def test_matmul_shapes_are_valid_for_numpy(pair):
    a, b = pair
    out = np.matmul(np.zeros(a), np.zeros(b))
    assert len(a) >= 1 and len(b) >= 1
    assert out.ndim == max(len(a), len(b), 2) - (len(a) == 1) - (len(b) == 1)


@pytest.mark.parametrize("kind", [
    lambda a, b: len(a) == 1 and len(b) == 1,
    lambda a, b: len(a) == 1 and len(b) >= 3,
    lambda a, b: len(a) >= 3 and len(b) == 1,
    lambda a, b: len(a) == 2 and len(b) == 2,
    lambda a, b: len(a) >= 3 and len(b) >= 3 and a[:-2] != b[:-2],  # broadcast batch axes
    lambda a, b: len(a) != len(b) and len(a) >= 2 and len(b) >= 2,
])
def test_matmul_shapes_cover_each_case(kind):
    find(matmul_shapes(), lambda p: kind(*p), settings=settings(max_examples=2000))


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
@given(data=st.data())
def test_axes_are_valid_for_numpy(ndim, data):
    ax = data.draw(axes(ndim))
    x = np.zeros((2,) * ndim)
    np.sum(x, axis=ax)  # raises on a bad axis
    if isinstance(ax, tuple):
        assert len({a % ndim for a in ax}) == len(ax) if ndim else ax == ()


def test_axes_cover_none_int_negative_and_tuple():
    find(axes(3), lambda a: a is None)
    find(axes(3), lambda a: isinstance(a, int) and a < 0)
    find(axes(3), lambda a: isinstance(a, tuple) and len(a) == 2 and min(a) < 0)
    find(axes(3), lambda a: a == ())
    with pytest.raises(Exception):
        find(axes(3, allow_none=False), lambda a: a is None, settings=settings(max_examples=200))


def test_strategies_load_on_demand_only():
    code = ("import sys, tinygrad_pt as tg\n"
            "assert 'hypothesis' not in sys.modules, 'import tinygrad_pt pulled in hypothesis'\n"
            "assert callable(tg.testing.strategies.matmul_shapes)\n"
            "assert 'hypothesis' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
