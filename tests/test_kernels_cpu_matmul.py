"""The Numba CPU matmul study kernels (kernels/cpu/matmul.py) against NumPy in float64.

Each element of a @ b sums k products, so its rounding error is bounded by about
k * eps * (|a| @ |b|); the tolerance is C * eps(dtype) * k * (|a| @ |b|) with C = 2 (the worst
case over 100 random cases needed 0.25: errors grow like sqrt(k), not k). Both variants (naive
and blocked) run, forward and backward, over odd shapes that no tile divides.
"""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from kernel_asserts import assert_close
from tinygrad_pt.kernels.cpu import matmul as M

C = 2.0

sizes = st.one_of(st.sampled_from([1, 3, 65, 127, 129]), st.integers(1, 70))


def product_and_tolerance(a, b, dtype):
    a, b = a.astype(np.float64), b.astype(np.float64)
    k = a.shape[-1]
    return a @ b, C * np.finfo(dtype).eps * k * (np.abs(a) @ np.abs(b)) + np.finfo(dtype).tiny


def check(a, b, dy, dtype, variant="auto"):
    want_y, tol_y = product_and_tolerance(a, b, dtype)
    want_da, tol_da = product_and_tolerance(dy, b.swapaxes(-1, -2), dtype)
    want_db, tol_db = product_and_tolerance(a.swapaxes(-1, -2), dy, dtype)
    assert_close("y", M.matmul_fwd(a, b, variant=variant), want_y, tol_y, dtype)
    da, db = M.matmul_bwd(dy, a, b, variant=variant)
    assert_close("da", da, want_da, tol_da, dtype)
    assert_close("db", db, want_db, tol_db, dtype)


@pytest.mark.parametrize("name", ["naive", "blocked"])
@given(st.sampled_from([(), (2,), (2, 3)]), sizes, sizes, sizes,
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 32 - 1))
def test_matches_numpy(name, lead, n, k, m, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(lead + (n, k)).astype(dtype)
    b = rng.standard_normal(lead + (k, m)).astype(dtype)
    dy = rng.standard_normal(lead + (n, m)).astype(dtype)
    check(a, b, dy, dtype, variant=name)


def test_odd_tiles(monkeypatch):
    """Block sizes are runtime arguments: odd ones leave ragged blocks on every edge, and a slab
    of fewer than four rows of b exercises the tail of the unrolled loop."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((37, 23)), rng.standard_normal((23, 41))
    for blocks in [(5, 7, 9), (1, 1, 1), (3, 6, 64), (64, 512, 512)]:
        monkeypatch.setattr(M, "BLOCK_N", blocks[0])
        monkeypatch.setattr(M, "BLOCK_K", blocks[1])
        monkeypatch.setattr(M, "BLOCK_M", blocks[2])
        check(a, b, rng.standard_normal((37, 41)), np.float64, variant="blocked")


def test_auto_picks_naive_for_tiny_products(monkeypatch):
    calls = []
    monkeypatch.setattr(M, "_matmul_naive", lambda *args: calls.append("naive"))
    monkeypatch.setattr(M, "_matmul_blocked", lambda *args: calls.append("blocked"))
    M.matmul_fwd(np.ones((4, 4)), np.ones((4, 4)))
    M.matmul_fwd(np.ones((64, 64)), np.ones((64, 64)))
    assert calls == ["naive", "blocked"]


@pytest.mark.parametrize("variant", ["naive", "blocked"])
def test_non_contiguous_read_only_and_empty(variant):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((9, 14))[:, ::2]  # (9, 7), strided
    b = rng.standard_normal((5, 7)).T  # (7, 5), Fortran order
    b.flags.writeable = False
    check(a, b, rng.standard_normal((9, 5)), np.float64, variant)
    # A sum over nothing is zeros, and empty operands give empty results (as NumPy).
    np.testing.assert_array_equal(M.matmul_fwd(np.ones((3, 0)), np.ones((0, 4)), variant=variant),
                                  np.zeros((3, 4)))
    assert M.matmul_fwd(np.ones((0, 3)), np.ones((3, 4)), variant=variant).shape == (0, 4)
    da, db = M.matmul_bwd(np.ones((3, 4)), np.ones((3, 0)), np.ones((0, 4)), variant=variant)
    assert da.shape == (3, 0) and db.shape == (0, 4)


def test_other_operands_go_to_numpy():
    """float16, 1-D operands, broadcast batch axes: the reference (NumPy's a @ b) runs, and its
    error for shapes that do not align, rather than a kernel reading past an array."""
    a16 = np.ones((3, 4), np.float16)
    assert M.matmul_fwd(a16, a16.T).dtype == np.float16
    np.testing.assert_array_equal(M.matmul_fwd(np.ones(3), np.ones((3, 2))), [3.0, 3.0])
    assert M.matmul_fwd(np.ones((2, 3, 4)), np.ones((4, 5))).shape == (2, 3, 5)
    with pytest.raises(ValueError, match="matmul"):
        M.matmul_fwd(np.ones((3, 4)), np.ones((5, 2)))


def test_unknown_variant_is_an_error():
    with pytest.raises(ValueError, match=r"matmul: unknown variant 'fast'; expected one of "
                                         r"\('auto', 'naive', 'blocked'\)"):
        M.matmul_fwd(np.ones((2, 2)), np.ones((2, 2)), variant="fast")
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        M.matmul_bwd(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)), variant="fast")


def test_mismatch_report_names_index_and_values():
    with pytest.raises(pytest.fail.Exception, match=r"(?s)1 of 2 elements differ.*at \(1,\): "
                                                     r"got 2\.0, want 3\.0"):
        assert_close("y", np.array([1.0, 2.0]), np.array([1.0, 3.0]), np.full(2, 0.5),
                     np.float64)


def test_import_compiles_nothing():
    code = ("import tinygrad_pt.kernels.cpu.matmul as M\n"
            "assert not M._matmul_naive.signatures and not M._matmul_blocked.signatures\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
