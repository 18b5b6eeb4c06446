"""The Numba CPU NT-Xent kernels (kernels/cpu/nt_xent.py) against the reference.

The reference runs in float64 on the same (already rounded) inputs. Tolerances scale with what
was summed: with d the feature size and t the temperature, a similarity carries an error of
about eps * d / t, which exp turns into a relative error of each probability, so

    tol = C * eps(dtype) * (1 + d / t) * magnitude

where magnitude is the element's formula on absolute values (for dz: (|dS| + |dS|^T) |u| / t
plus the radial part, over the norm). C = 16: the worst case over 200 random cases needed 5.6.
On failure the first mismatches are listed with index and both values.
"""
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from kernel_asserts import assert_close, nt_xent_dz_magnitude
from tinygrad_pt.kernels import reference as R
from tinygrad_pt.kernels.cpu import nt_xent as K

C = 16.0


def reference_and_tolerances(z1, z2, dloss, tau, dtype):
    """Reference forward and backward in float64, each output with its elementwise tolerance."""
    z1, z2 = z1.astype(np.float64), z2.astype(np.float64)
    loss, u, norms, probs = R.nt_xent_fwd(z1, z2, tau)
    dz1, dz2 = R.nt_xent_bwd(dloss, u, norms, probs, tau)
    m, d = u.shape
    n = m // 2
    info = np.finfo(dtype)
    growth = C * info.eps * (1.0 + d / tau)
    dz_abs = nt_xent_dz_magnitude(u, norms, probs, dloss, tau)
    return {
        "loss": (loss, growth * (1.0 + 1.0 / tau + math.log(m))),
        "u": (u, C * info.eps * d * (np.abs(u) + info.tiny)),
        "norms": (norms, C * info.eps * d * norms),
        "probs": (probs, growth * probs + C * info.tiny),
        "dz1": (dz1, growth * dz_abs[:n] + C * info.tiny),
        "dz2": (dz2, growth * dz_abs[n:] + C * info.tiny),
    }


def check_against_reference(z1, z2, tau, dtype, dloss=1.0):
    loss, u, norms, probs = K.nt_xent_fwd(z1, z2, tau)
    dz1, dz2 = K.nt_xent_bwd(dtype(dloss), u, norms, probs, tau)
    want = reference_and_tolerances(z1, z2, dloss, tau, dtype)
    got = {"loss": loss, "u": u, "norms": norms, "probs": probs, "dz1": dz1, "dz2": dz2}
    assert loss.shape == () and probs.shape == (2 * len(z1),) * 2
    for name, value in got.items():
        assert_close(name, value, *want[name], dtype)
        assert np.isfinite(value).all(), f"{name} has NaN or Inf"
    assert (np.diag(probs) == 0).all()  # self-similarity excluded, exactly


@given(st.sampled_from([1, 2, 5, 33]), st.sampled_from([1, 3, 16]),
       st.sampled_from([0.07, 0.5, 2.0]), st.sampled_from([np.float32, np.float64]),
       st.floats(-3.0, 3.0), st.booleans(), st.integers(0, 2 ** 32 - 1))
def test_matches_reference(n, d, tau, dtype, dloss, zero_row, seed):
    """N in {1, 2, 5, 33} (N = 1: each row's only other row is its positive), D in {1, 3, 16},
    temperatures, a row of zeros (its norm clamped at 1e-12) or not."""
    rng = np.random.default_rng(seed)
    z1, z2 = (rng.standard_normal((n, d)).astype(dtype) for _ in range(2))
    if zero_row:
        z2[n // 2] = 0.0
    check_against_reference(z1, z2, tau, dtype, dloss)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, 1e-20])
def test_large_and_tiny_inputs(dtype, scale):
    """Rows of norm ~1e4 normalise to the same u; rows of norm ~1e-20 fall under the 1e-12
    clamp, so u is tiny and the gradient is du / 1e-12: large, finite, as the reference."""
    rng = np.random.default_rng(11)
    z1, z2 = ((rng.standard_normal((9, 16)) * scale).astype(dtype) for _ in range(2))
    check_against_reference(z1, z2, 0.05, dtype)
    if scale < 1.0:
        assert (K.nt_xent_fwd(z1, z2, 0.05)[2] == dtype(1e-12)).all()  # every norm clamped


def test_loss_by_a_loop():
    """The loss against an explicit loop (independent of both implementations' formulas)."""
    rng = np.random.default_rng(12)
    z1, z2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    z = np.concatenate([z1, z2])
    u = [row / math.sqrt(sum(c * c for c in row)) for row in z]
    total = 0.0
    for i in range(6):
        sims = {j: float(np.dot(u[i], u[j])) / 0.5 for j in range(6) if j != i}
        total += math.log(sum(math.exp(s) for s in sims.values())) - sims[(i + 3) % 6]
    assert float(K.nt_xent_fwd(z1, z2, 0.5)[0]) == pytest.approx(total / 6, rel=1e-12)


def test_dloss_as_array_or_float_and_views():
    rng = np.random.default_rng(13)
    z1, z2 = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    loss, *saved = K.nt_xent_fwd(z1, z2, 0.5)
    a = K.nt_xent_bwd(np.asarray(2.0, np.float32), *saved, 0.5)
    b = K.nt_xent_bwd(2.0, *saved, 0.5)
    for x, y in zip(a, b):
        assert x.dtype == np.float32 and x.shape == (4, 3)
        np.testing.assert_array_equal(x, y)
    # Non-contiguous (every other column of a wider array) and read-only inputs.
    wide = rng.standard_normal((4, 6))
    ro = wide[:, ::2].copy()
    ro.flags.writeable = False
    check_against_reference(wide[:, ::2], ro, 0.5, np.float64)


def test_other_dtypes_and_shapes_go_to_the_reference():
    z = np.ones((2, 3), np.float16)
    loss, u, norms, probs = K.nt_xent_fwd(z, z, 0.5)
    assert loss.dtype == np.float16 and probs.dtype == np.float16
    assert float(loss) == pytest.approx(float(R.nt_xent_fwd(z, z, 0.5)[0]))
    # Views of different widths: NumPy's error from the reference, not a read past an array.
    with pytest.raises(ValueError, match="concatenat"):
        K.nt_xent_fwd(np.ones((2, 3)), np.ones((2, 4)), 0.5)


def test_mismatch_report_names_index_and_values():
    with pytest.raises(pytest.fail.Exception, match=r"(?s)1 of 2 elements differ.*at \(0,\): "
                                                     r"got 1\.0, want 1\.5"):
        assert_close("x", np.array([1.0, 2.0]), np.array([1.5, 2.0]), 0.1, np.float64)


def test_import_compiles_nothing():
    code = ("import tinygrad_pt.kernels.cpu.nt_xent as K\n"
            "kernels = (K._normalize, K._scores_to_probs, K._project)\n"
            "assert not any(k.signatures for k in kernels)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
