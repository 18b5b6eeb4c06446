"""The Numba-CUDA tiled matmul (kernels/cuda/matmul.py) held to the reference in float64.

Forward and backward over hypothesis-drawn tiny shapes, 1..9 on each side: under the simulator
the tile is 4 x 4, so most sizes leave ragged edge tiles, and k spans one to three tile steps
(sizes 4 and 8, exact multiples, check that no phantom edge is added). Both dtypes.

Runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1 python -m pytest ...``; the variable
must be set before numba.cuda is first imported, so the test does not set it) or on a real GPU
with CuPy; otherwise the module is skipped. The simulator runs each GPU thread as a Python
thread, so the shapes are tiny and the examples few.

How a result is compared: the reference runs in float64 on the same values (a float32 input is
widened exactly). Each element of a product sums k terms in the operands' dtype, so its rounding
error is bounded by about k * eps * (|a| @ |b|); the tolerance is TOL * eps(dtype) * k * (|a| @ |b|)
+ tiny with TOL = 2, as tests/test_kernels_cpu_matmul.py. NaN never passes.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_asserts import assert_close

from cuda_sim import SIMULATOR, skip_unless_cuda_or_simulator, to_device, to_host  # noqa: E402,F401

skip_unless_cuda_or_simulator()

from tinygrad_pt.kernels import reference as R  # noqa: E402
from tinygrad_pt.kernels.cuda import matmul as cu_matmul  # noqa: E402

TOL = 2.0
DTYPES = (np.float32, np.float64)
SIZES = st.integers(1, 9)
FEW = settings(max_examples=12, deadline=None)


def want_and_tol(a, b, dtype):
    """The reference's a @ b in float64, and the rounding bound of a k-term sum in dtype."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    k = a.shape[-1]
    return (R.matmul_fwd(a, b),
            TOL * np.finfo(dtype).eps * k * (np.abs(a) @ np.abs(b)) + np.finfo(dtype).tiny)


def check(a, b, dy, dtype):
    want_y, tol_y = want_and_tol(a, b, dtype)
    assert_close("matmul_fwd", to_host(cu_matmul.matmul_fwd(to_device(a), to_device(b))),
                 want_y, tol_y, dtype)
    da, db = cu_matmul.matmul_bwd(to_device(dy), to_device(a), to_device(b))
    want_da, tol_da = want_and_tol(dy, b.T, dtype)
    want_db, tol_db = want_and_tol(a.T, dy, dtype)
    assert_close("matmul_bwd da", to_host(da), want_da, tol_da, dtype)
    assert_close("matmul_bwd db", to_host(db), want_db, tol_db, dtype)


@FEW
@given(n=SIZES, k=SIZES, m=SIZES, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_matmul_matches_reference(n, k, m, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal((k, m)).astype(dtype)
    dy = rng.standard_normal((n, m)).astype(dtype)
    check(a, b, dy, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_ragged_edges(dtype):
    """Every axis one past a tile (5 = TILE + 1 under the simulator, 17 on a GPU), with a large
    value in the last row and column, which a dropped edge would lose."""
    s = cu_matmul.TILE + 1
    rng = np.random.default_rng(0)
    a = rng.standard_normal((s, s + 1)).astype(dtype)
    b = rng.standard_normal((s + 1, s + 2)).astype(dtype)
    a[-1, -1] = b[-1, -1] = 100.0
    check(a, b, rng.standard_normal((s, s + 2)).astype(dtype), dtype)


def test_matmul_plain_loop():
    """Forward against a plain Python triple loop, not the reference's a @ b; integer-valued
    entries, so every sum is exact and equality is required."""
    a = np.arange(1.0, 16.0).reshape(3, 5)
    b = np.arange(-10.0, 10.0).reshape(5, 4)
    want = np.array([[sum(a[i, p] * b[p, j] for p in range(5)) for j in range(4)]
                     for i in range(3)])
    np.testing.assert_array_equal(to_host(cu_matmul.matmul_fwd(to_device(a), to_device(b))),
                                  want)


def test_matmul_transposed_and_mixed_inputs():
    """Non-contiguous operands (views) are copied before the launch; float32 @ float64 is
    computed in float64, as NumPy promotes."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 7)).astype(np.float32)
    b = rng.standard_normal((3, 6))
    y = to_host(cu_matmul.matmul_fwd(to_device(a.T), to_device(b.T)))
    want, tol = want_and_tol(a.T, b.T, np.float64)
    assert_close("matmul_fwd", y, want, tol, np.float64)


def test_matmul_hands_other_cases_to_the_reference():
    """Batched, 1-D, integer and empty operands give the reference's answer; misaligned shapes
    raise the array library's error."""
    rng = np.random.default_rng(2)
    a3, b3 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    np.testing.assert_array_equal(to_host(cu_matmul.matmul_fwd(to_device(a3), to_device(b3))),
                                  a3 @ b3)
    ai, bi = np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)
    got = to_host(cu_matmul.matmul_fwd(to_device(ai), to_device(bi)))
    assert got.dtype == ai.dtype and np.array_equal(got, ai @ bi)
    empty = to_host(cu_matmul.matmul_fwd(to_device(np.ones((3, 0))), to_device(np.ones((0, 2)))))
    np.testing.assert_array_equal(empty, np.zeros((3, 2)))
    with pytest.raises(ValueError):
        cu_matmul.matmul_fwd(to_device(np.ones((2, 3))), to_device(np.ones((4, 2))))
