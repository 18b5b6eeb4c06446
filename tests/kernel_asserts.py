"""Comparison shared by the kernel tests: a fast kernel's output against the reference's (llm.c's
validator habit: absolute tolerance per element, NaN never passes, the first mismatches reported
with their index and both values)."""
import numpy as np
import pytest


def assert_close(name, got, want, tol, dtype):
    """got within tol (a scalar or an array broadcasting to want) of want elementwise, with got's
    dtype checked; on failure, the first ten mismatches with their index and both values."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == dtype, f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    tol = np.broadcast_to(tol, want.shape)
    bad = ~(np.abs(got.astype(np.float64) - want) <= tol)
    if bad.any():
        lines = [f"  at {tuple(int(i) for i in idx)}: got {got[tuple(idx)].item()!r}, "
                 f"want {want[tuple(idx)].item()!r} (tol {tol[tuple(idx)]:.3g})"
                 for idx in np.argwhere(bad)[:10]]
        pytest.fail(f"{name}: {int(bad.sum())} of {bad.size} elements differ; first:\n"
                    + "\n".join(lines))
