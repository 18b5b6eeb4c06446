"""Numba CPU kernels for NT-Xent, SimCLR's contrastive loss, fused: normalise, similarity rows,
masked log-softmax over the 2N - 1 other rows, positives i <-> i + N.

Same names, signatures and results as ``kernels/reference.py``:

    nt_xent_fwd(z1, z2, temperature) -> (loss (0-d), u (2N, D), norms (2N,), probs (2N, 2N))
    nt_xent_bwd(dloss, u, norms, probs, temperature) -> (dz1 (N, D), dz2 (N, D))

with u = z / max(||z||, 1e-12) on the rows of [z1; z2], S = u u^T / temperature with the diagonal
excluded, probs = softmax of each row of S (0 on the diagonal) and
loss = mean_i (logsumexp_j S_ij - S_i,pos(i)), pos(i) = i + N mod 2N. float32 and float64 run
here, in their own dtype (a row's softmax sum in a float64 scalar); other dtypes, N = 0 and
shapes that do not agree are handed to the reference.

Variants:

1. rows (the only one): the forward is two parallel loops over the 2N rows, one to normalise
   (keeping u and its transpose), one to compute a row of S (along the transposed u, so the inner
   loop vectorises), its max, the softmax with a vectorising exp (``_common.vexp``), the row of
   probs and the row's loss. The backward,
       du_i = sum_j (dS_ij + dS_ji) u_j / temperature,  dS = dloss / 2N * (probs - onehot(pos)),
       dz_i = (du_i - u_i <u_i, du_i>) / norm_i   (du_i / norm_i where the norm was clamped),
   runs in parallel over blocks of 16 rows: a job owns its rows of dz (race-free) and reads the
   column entries probs[j, i0:i1] a cache line at a time. The 2N x 2N probs are part of the
   reference's interface (the backward reads them), so they are returned, not avoided;
   SimCLR's batches (2N up to a few thousand) keep them small.

Compilation: ``@njit(parallel=True, fastmath=False, cache=True)``, compiled lazily on the first
call, once per dtype (the wrapper passes C-contiguous writeable arrays and scalars of the data's
dtype, so float32 and float64 are the only two signatures); without a cache about 1.3 s each
(forward, backward) of CPU time per dtype on the machine below.

Speed, float32, D = 128, process CPU time (steadier than wall time on a shared machine), median
of 7 (2 cores of an Intel Xeon KVM guest, Numba 0.68, NumPy 2.4 with OpenBLAS; two runs, at load
average 6 to 7 and at 1.8): N = 256: forward 4.0 to 4.2 ms against the reference's 9.1 to 9.7 ms,
backward 1.9 ms against 7.9 to 8.0 ms; N = 1024: forward 60 to 61 ms against 89 to 97 ms,
backward 30 to 35 ms against 90 to 95 ms.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import reference
from ._common import vexp  # exp as arithmetic that LLVM vectorises (libm's exp does not)

__all__ = ["nt_xent_fwd", "nt_xent_bwd"]

_NORM_EPS = 1e-12  # F.normalize's clamp on the norm (the reference's)
_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _contiguous(x, dtype):
    """C-contiguous and writeable (a read-only array is another Numba type: another compile)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    return x if x.flags.writeable else x.copy()


@njit(parallel=True, fastmath=False, cache=True)
def _nt_xent_fwd(z1, z2, inv_t, eps, u, u_t, norms, probs, row_loss):
    """Fills u (2N, D), u_t (D, 2N) its transpose, norms (2N,), probs (2N, 2N) and row_loss (2N,)
    = logsumexp_j S_ij - S_i,pos(i). inv_t = 1 / temperature and eps are of the data's dtype."""
    n, d = z1.shape
    m = 2 * n
    for i in prange(m):  # u = z / max(||z||, eps), row by row
        z = z1[i] if i < n else z2[i - n]
        norms[i] = 0.0
        for e in range(d):
            norms[i] += z[e] * z[e]
        norms[i] = max(math.sqrt(norms[i]), eps)
        for e in range(d):
            u[i, e] = z[e] / norms[i]
            u_t[e, i] = u[i, e]
    for i in prange(m):  # S_i = u_i u^T / t, written straight into the row of probs
        s = probs[i]
        for j in range(m):
            s[j] = 0.0
        for e in range(d):  # along the row (u transposed): the inner loop vectorises
            ue = u[i, e]
            for j in range(m):
                s[j] += ue * u_t[e, j]
        mx = -np.inf
        for j in range(m):
            s[j] *= inv_t
            mx = max(mx, s[j]) if j != i else mx
        s_pos = s[(i + n) % m]
        s[i] = -np.inf  # self-similarity excluded: its exp is 0
        for j in range(m):  # softmax, with an exp that vectorises
            s[j] = vexp(s[j] - mx)
        total = 0.0
        for j in range(m):
            total += s[j]
        row_loss[i] = mx + math.log(total) - s_pos  # log-sum-exp minus the positive's score
        inv_total = 1.0 / total
        for j in range(m):
            s[j] *= inv_total


_ROWS = 16  # rows of dz per job in the backward


@njit(fastmath=False)
def _ds_pair(probs, i, j, pos_i, scale):
    """dS_ij + dS_ji = scale * (P_ij + P_ji) - 2 scale [j = pos(i)], in the data's dtype (pos is
    its own inverse, so j = pos(i) exactly when i = pos(j))."""
    g = (probs[i, j] + probs[j, i]) * scale
    return g - (scale + scale) if j == pos_i else g


@njit(parallel=True, fastmath=False, cache=True)
def _nt_xent_bwd(scale, u, norms, probs, inv_t, eps, dz):
    """dz (2N, D) from probs; scale = dloss / 2N, inv_t and eps of the data's dtype.

    dS = scale * (probs - onehot(pos)), and row i of du = (dS + dS^T) u / t needs row i and
    column i of dS. Each job owns _ROWS rows of dz (race-free) and walks j once: it reads
    probs[j, i0:i1], the column entries, a cache line at a time instead of one 2N-strided
    element per read, and adds four rows of u per pass over du_i.
    """
    m, d = u.shape
    n = m // 2
    for block in prange((m + _ROWS - 1) // _ROWS):
        i0 = block * _ROWS
        i1 = min(i0 + _ROWS, m)
        for i in range(i0, i1):
            dz[i, :] = 0.0  # du_i accumulates in place, then becomes dz_i
        j = 0
        while j + 4 <= m:  # j outside: probs[j:j+4, i0:i1] is read a cache line at a time
            u0, u1, u2, u3 = u[j], u[j + 1], u[j + 2], u[j + 3]
            for i in range(i0, i1):
                pos_i, du = (i + n) % m, dz[i]
                g0 = _ds_pair(probs, i, j, pos_i, scale)
                g1 = _ds_pair(probs, i, j + 1, pos_i, scale)
                g2 = _ds_pair(probs, i, j + 2, pos_i, scale)
                g3 = _ds_pair(probs, i, j + 3, pos_i, scale)
                for e in range(d):
                    du[e] += (g0 * u0[e] + g1 * u1[e]) + (g2 * u2[e] + g3 * u3[e])
            j += 4
        for j in range(j, m):
            u_j = u[j]
            for i in range(i0, i1):
                g, du = _ds_pair(probs, i, j, (i + n) % m, scale), dz[i]
                for e in range(d):
                    du[e] += g * u_j[e]
        for i in range(i0, i1):
            du, u_i = dz[i], u[i]
            radial = 0.0
            for e in range(d):
                du[e] *= inv_t
                radial += u_i[e] * du[e]
            if norms[i] <= eps:
                radial = 0.0  # at the clamp z -> z / eps is linear: no radial part to remove
            for e in range(d):
                du[e] = (du[e] - u_i[e] * radial) / norms[i]


def nt_xent_fwd(z1, z2, temperature):
    """NT-Xent of views z1, z2 (N, D) -> (loss (0-d), u (2N, D), norms (2N,), probs (2N, 2N))."""
    dtype = np.result_type(z1, z2)
    # Anything the kernel does not take goes to the reference, which computes or raises as it
    # does: a compiled loop would not raise on a bad shape, it would read past the array.
    if dtype not in _FAST_DTYPES or z1.ndim != 2 or z1.shape != z2.shape or len(z1) == 0:
        return reference.nt_xent_fwd(z1, z2, temperature)
    n = z1.shape[0]
    z1, z2 = _contiguous(z1, dtype), _contiguous(z2, dtype)
    d = z1.shape[1]
    u, u_t = np.empty((2 * n, d), dtype), np.empty((d, 2 * n), dtype)
    norms, probs = np.empty(2 * n, dtype), np.empty((2 * n, 2 * n), dtype)
    row_loss = np.empty(2 * n, dtype)
    _nt_xent_fwd(z1, z2, dtype.type(1.0 / temperature), dtype.type(_NORM_EPS), u, u_t, norms,
                 probs, row_loss)
    return np.asarray(row_loss.mean()), u, norms, probs


def nt_xent_bwd(dloss, u, norms, probs, temperature):
    """(dz1, dz2) from the scalar dloss (see the module docstring for the formulas)."""
    dtype = np.result_type(u, norms, probs)
    m = u.shape[0] if u.ndim == 2 else 0
    if (dtype not in _FAST_DTYPES or m == 0 or m % 2 or norms.shape != (m,)
            or probs.shape != (m, m) or np.ndim(dloss) != 0):
        return reference.nt_xent_bwd(dloss, u, norms, probs, temperature)
    u, norms, probs = _contiguous(u, dtype), _contiguous(norms, dtype), _contiguous(probs, dtype)
    dz = np.empty_like(u)
    _nt_xent_bwd(dtype.type(dloss * (1.0 / m)), u, norms, probs, dtype.type(1.0 / temperature),
                 dtype.type(_NORM_EPS), dz)
    return dz[: m // 2], dz[m // 2:]
