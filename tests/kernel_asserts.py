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


def attention_reference_and_tolerances(q, k, v, dout, causal, scale, dtype, C=16.0):
    """{name: (float64 reference, elementwise tolerance)} for out, lse, dq, dk, dv: the
    attention kernels' tolerance model (tests/test_kernels_cpu_attention.py states it), shared
    by the CPU and the CUDA kernel tests."""
    from tinygrad_pt.kernels import reference as R  # noqa: PLC0415
    q, k, v, dout = (x.astype(np.float64) for x in (q, k, v, dout))
    out, lse = R.attention_fwd(q, k, v, causal, scale)
    dq, dk, dv = R.attention_bwd(dout, q, k, v, out, lse, causal, scale)
    # Magnitudes, from absolute values (T x T arrays: fine at test sizes).
    s_abs = scale * (np.abs(q) @ np.abs(k).swapaxes(-1, -2))
    s = scale * (q @ k.swapaxes(-1, -2))
    if causal:
        keep = np.arange(k.shape[-2])[None, :] <= np.arange(q.shape[-2])[:, None]
        s_abs, s = s_abs * keep, np.where(keep, s, -np.inf)
    p = np.exp(s - lse[..., None])
    ds_abs = p * (np.abs(dout) @ np.abs(v).swapaxes(-1, -2)
                  + (np.abs(dout) * np.abs(out)).sum(-1, keepdims=True))
    info = np.finfo(dtype)
    growth = C * info.eps * (1.0 + s_abs.max())
    # Probabilities below the dtype's smallest normal number flush towards 0: a floor for that.
    big = 1.0 + max(np.abs(x).max() for x in (q, k, v, dout))
    floor = C * info.tiny * big ** 3 * max(q.shape[-2], k.shape[-2], 1)
    return {
        "out": (out, growth * (p @ np.abs(v)) + floor),
        "lse": (lse, C * info.eps * (1.0 + s_abs.max(-1) + np.abs(lse))),
        "dq": (dq, growth * scale * (ds_abs @ np.abs(k)) + floor),
        "dk": (dk, growth * scale * (ds_abs.swapaxes(-1, -2) @ np.abs(q)) + floor),
        "dv": (dv, growth * (p.swapaxes(-1, -2) @ np.abs(dout)) + floor),
    }


def nt_xent_dz_magnitude(u, norms, probs, dloss, tau):
    """NT-Xent's backward formula on absolute values, (2N, D): what each dz element is summed
    from (not what is left after cancellation), the scale of its rounding error. Shared by the
    CPU and the CUDA NT-Xent kernel tests."""
    m = u.shape[0]
    onehot = np.zeros((m, m))
    onehot[np.arange(m), (np.arange(m) + m // 2) % m] = 1.0
    ds_abs = abs(dloss) / m * (probs + onehot)
    du_abs = (ds_abs + ds_abs.T) @ np.abs(u) / tau
    radial_abs = np.abs(u) * (np.abs(u) * du_abs).sum(-1, keepdims=True)
    return (du_abs + radial_abs) / norms[:, None]
