"""Numba CPU kernels for NT-Xent, SimCLR's contrastive loss: the similarity products through BLAS,
everything between them in fused row passes.

Same names, signatures and results as ``kernels/reference.py``:

    nt_xent_fwd(z1, z2, temperature) -> (loss (0-d), u (2N, D), norms (2N,), probs (2N, 2N))
    nt_xent_bwd(dloss, u, norms, probs, temperature) -> (dz1 (N, D), dz2 (N, D))

with u = z / max(||z||, 1e-12) on the rows of [z1; z2], S = u u^T / temperature with the diagonal
excluded, probs = softmax of each row of S (0 on the diagonal) and
loss = mean_i (logsumexp_j S_ij - S_i,pos(i)), pos(i) = i + N mod 2N. float32 and float64 run
here, in their own dtype (a row's softmax sum in float64); other dtypes, N = 0 and shapes that
do not agree are handed to the reference.

The forward: one parallel pass normalises the rows (``_normalize``), S = u u^T is one BLAS
product, and one parallel pass turns each row of S into its probabilities in place, with the
row's loss on the way (``_scores_to_probs``: scale, mask the diagonal, max, exp by
``_common.vexp``, sum, log-sum-exp minus the positive's score, normalise). The backward needs
du = (dS + dS^T) u / t with dS = dloss / 2N * (probs - onehot(pos)); since pos is its own
inverse, the one-hot's part of (dS + dS^T) u is 2 u[pos], and

    du = dloss / (2N t) * (probs u + probs^T u - 2 u[pos])

is two BLAS products (BLAS reads probs^T in place, no transpose is made) and one fused pass
(``_project``) that also removes the radial part: dz_i = (du_i - u_i <u_i, du_i>) / norm_i
(du_i / norm_i where the norm was clamped).

Why BLAS. The first version computed S and du in its own vectorised loops, in parallel over
rows; at SimCLR's size (2N = 512, D = 128) it was slower than the reference, whose similarity is
one BLAS product, and so was not used. The products are where the work is (2 x 2N x 2N x D
multiply-adds each way), and BLAS's register tiling does them several times faster; what the
reference does in half a dozen NumPy passes over (2N, 2N) arrays between them (the diagonal's
mask through an eye matrix, log_softmax, exp) is what is fused here.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_pt.threads import prepare_blas  # absolute: kernels/ installs as tinygrad_pt.kernels

from .. import reference
from ._common import launch, row_dot, shifted_exp_in_place

__all__ = ["nt_xent_fwd", "nt_xent_bwd"]

_NORM_EPS = 1e-12  # F.normalize's clamp on the norm (the reference's)
_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _contiguous(x, dtype):
    """C-contiguous and writeable (a read-only array is another Numba type: another compile)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    return x if x.flags.writeable else x.copy()


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _normalize(z, eps, u, norms):
    """u = z / max(||z||, eps) row by row, norms the clamped norms (the data's dtype)."""
    for i in prange(z.shape[0]):
        norms[i] = max(np.sqrt(row_dot(z[i], z[i])), eps)
        zi, ui, nrm = z[i], u[i], norms[i]
        for e in range(zi.shape[0]):
            ui[e] = zi[e] / nrm


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _scores_to_probs(s, inv_t, row_loss):
    """S = u u^T (2N, 2N) -> probs in place, row_loss[i] = logsumexp_j S_ij - S_i,pos(i) over
    the scaled scores with the diagonal excluded."""
    m = s.shape[0]
    n = m // 2
    for i in prange(m):
        row = s[i]
        for j in range(m):
            row[j] = row[j] * inv_t
        row[i] = -np.inf  # self-similarity excluded: its exp is 0
        s_pos = row[(i + n) % m]
        mx, total = shifted_exp_in_place(row)
        row_loss[i] = mx + np.log(total) - s_pos
        inv = 1.0 / total
        for j in range(m):
            row[j] = row[j] * inv


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _project(pu, u, norms, coef, eps, dz):
    """dz = (du - u <u, du>) / norm with du = coef * (pu - 2 u[pos]), pu = probs u + probs^T u;
    where the norm was clamped, dz = du / norm (z -> z / eps is linear: no radial part)."""
    m, d = u.shape
    n = m // 2
    two = coef + coef
    for i in prange(m):
        du, ui, up = dz[i], u[i], u[(i + n) % m]
        pi = pu[i]
        for e in range(d):
            du[e] = coef * pi[e] - two * up[e]
        radial = row_dot(ui, du) if norms[i] > eps else 0.0
        nrm = norms[i]
        for e in range(d):
            du[e] = (du[e] - ui[e] * radial) / nrm


def nt_xent_fwd(z1, z2, temperature):
    """NT-Xent of views z1, z2 (N, D) -> (loss (0-d), u (2N, D), norms (2N,), probs (2N, 2N))."""
    dtype = np.result_type(z1, z2)
    # Anything the kernel does not take goes to the reference, which computes or raises as it
    # does: a compiled loop would not raise on a bad shape, it would read past the array.
    if dtype not in _FAST_DTYPES or z1.ndim != 2 or z1.shape != z2.shape or len(z1) == 0:
        return reference.nt_xent_fwd(z1, z2, temperature)
    z = np.concatenate([z1, z2], axis=0).astype(dtype, copy=False)
    m, d = z.shape
    u, norms, row_loss = np.empty_like(z), np.empty(m, dtype), np.empty(m, dtype)
    launch(_normalize, z.size, z, dtype.type(_NORM_EPS), u, norms)
    prepare_blas(m * m * d)
    probs = u @ u.T
    launch(_scores_to_probs, probs.size, probs, dtype.type(1.0 / temperature), row_loss)
    return np.asarray(row_loss.mean()), u, norms, probs


def nt_xent_bwd(dloss, u, norms, probs, temperature):
    """(dz1, dz2) from the scalar dloss (see the module docstring for the formulas)."""
    dtype = np.result_type(u, norms, probs)
    m = u.shape[0] if u.ndim == 2 else 0
    if (dtype not in _FAST_DTYPES or m == 0 or m % 2 or norms.shape != (m,)
            or probs.shape != (m, m) or np.ndim(dloss) != 0):
        return reference.nt_xent_bwd(dloss, u, norms, probs, temperature)
    u, norms, probs = _contiguous(u, dtype), _contiguous(norms, dtype), _contiguous(probs, dtype)
    prepare_blas(m * m * u.shape[1])
    pu = probs @ u
    pu += probs.T @ u
    dz = np.empty_like(u)
    coef = dtype.type(float(dloss) / m / temperature)
    launch(_project, u.size, pu, u, norms, coef, dtype.type(_NORM_EPS), dz)
    return dz[: m // 2], dz[m // 2:]
