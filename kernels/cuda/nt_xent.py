"""NT-Xent, SimCLR's contrastive loss, one thread block per row (Numba-CUDA).

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):

    nt_xent_fwd(z1, z2, temperature) -> (loss (0-d), u (2N, D), norms (2N,), probs (2N, 2N))
    nt_xent_bwd(dloss, u, norms, probs, temperature) -> (dz1 (N, D), dz2 (N, D))

with u = z / max(||z||, 1e-12) on the 2N rows of [z1; z2], S = u u^T / temperature with the
diagonal excluded, probs = softmax of each row of S (exactly 0 on the diagonal), pos(i) = i + N
mod 2N and loss = mean_i (logsumexp_j S_ij - S_i,pos(i)). CuPy float32 / float64 on a GPU, NumPy
under the simulator (``NUMBA_ENABLE_CUDASIM=1``); other dtypes raise TypeError, shapes that do not
fit raise ValueError, N = 0 goes to the reference.

Kernels, each launched with (2N,) blocks of THREADS threads, block i owning row i (``_common``):
- ``_normalise_rows``: a block sum of z_ie^2 over the row's strided columns e, then
  norm_i = max(sqrt(sum), 1e-12) and u_ie = z_ie / norm_i.
- ``_similarity_rows``: thread t takes the columns j = t, t + THREADS, ... of row i of S (each
  S_ij a length-D dot product of rows of u, j = i skipped) and keeps an online max and sum of
  exp(S_ij - max) (rescaled when the max grows: one sweep instead of two); the block combines
  them with ``block_max`` and a ``block_sum`` of each thread's sum rescaled to the row max, so
  lse_i = max + log(sum). A second sweep recomputes each S_ij (the same float64 dot, so exactly
  the same value) and writes probs_ij = exp(S_ij - lse_i), 0 at j = i; thread 0 writes
  lse_i - S_i,pos(i), the row's loss, into a float64 (2N,) buffer whose mean is the loss.
  Recomputing S costs D multiply-adds per entry but spares a (2N, 2N) float64 scratch array, and
  rounding S to a float32 probs entry before the exp would cost digits.
- ``_dz_rows``: with dS = dloss / 2N (probs - onehot(pos)) (probs is 0 on the diagonal),
      du_i = sum_j (dS_ij + dS_ji) u_j / temperature
      dz_i = (du_i - u_i <u_i, du_i>) / norm_i      (du_i / norm_i where the norm was clamped).
  Thread t takes the features e = t, t + THREADS, ... of row i and walks all j: every thread
  reads the same probs_ij and probs_ji (one broadcast read) and neighbouring threads read
  neighbouring u_je (coalesced). du_i goes to a float64 (2N, D) scratch array, <u_i, du_i> is a
  block sum, and a second loop over the thread's features writes dz. dloss is read from a
  one-element device array, so a 0-d CuPy dloss costs no host sync.
- Planned, faster on a GPU: S = u u^T as a tiled matmul (cuBLAS or the project's own), shared
  memory for the row u_i, and warp-shuffle reductions (see ``softmax``).

Precision: sums, dots, exp and every gradient entry in float64 also for float32, rounded once on
store. The clamp test of the backward compares the stored norm with 1e-12 rounded to its dtype,
as the reference's comparison does.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from ._common import THREADS, block_max, block_sum, check_float

_NORM_EPS = 1e-12  # F.normalize's clamp on the norm (the reference's)

# --------------------------------------------------------------------------------------------------
# Device functions


@cuda.jit(device=True)
def _dot(u, i, j):
    """<u_i, u_j> in float64."""
    s = 0.0
    for e in range(u.shape[1]):
        s += float64(u[i, e]) * float64(u[j, e])
    return s


# --------------------------------------------------------------------------------------------------
# Kernels. z1, z2: C-contiguous (N, D); u: (2N, D); norms: (2N,); probs: (2N, 2N), all of one
# dtype; row_loss: float64 (2N,); du: float64 (2N, D) scratch; dloss: float64 (1,); the other
# scalars Python floats.


@cuda.jit
def _normalise_rows(z1, z2, eps, u, norms):
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    n, d = z1.shape
    z = z1 if i < n else z2  # the same choice in every thread of the block
    r = i if i < n else i - n
    s = 0.0
    for e in range(t, d, THREADS):
        s += float64(z[r, e]) * float64(z[r, e])
    norm = math.sqrt(block_sum(buf, s))
    if norm < eps:  # the clamp (an if: Numba's CUDA target fails to type the max builtin)
        norm = eps
    for e in range(t, d, THREADS):
        u[i, e] = float64(z[r, e]) / norm
    if t == 0:
        norms[i] = norm


@cuda.jit
def _similarity_rows(u, inv_t, probs, row_loss):
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    m = u.shape[0]
    mx = -math.inf  # this thread's running max of S_ij and sum of exp(S_ij - mx)
    total = 0.0
    for j in range(t, m, THREADS):
        if j != i:
            s = _dot(u, i, j) * inv_t
            if s > mx:
                total = total * math.exp(mx - s) + 1.0  # rescale to the new max (0 * 0 at first)
                mx = s
            else:
                total += math.exp(s - mx)
    row_max = block_max(buf, mx)  # finite: 2N >= 2, so the row has an entry besides j = i
    # a thread with no column kept total = 0 and mx = -inf: it adds nothing
    total = block_sum(buf, total * math.exp(mx - row_max) if total > 0.0 else 0.0)
    lse = row_max + math.log(total)  # total >= 1: the max's own term
    for j in range(t, m, THREADS):
        probs[i, j] = 0.0 if j == i else math.exp(_dot(u, i, j) * inv_t - lse)
    if t == 0:
        row_loss[i] = lse - _dot(u, i, (i + m // 2) % m) * inv_t


@cuda.jit
def _dz_rows(dloss, u, norms, probs, inv_t, eps, du, dz):
    buf = cuda.shared.array(THREADS, float64)
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    m, d = u.shape
    pos = (i + m // 2) % m
    coef = dloss[0] / m * inv_t  # dS = coef * t * (probs - onehot); du carries the 1 / t
    radial = 0.0
    for e in range(t, d, THREADS):
        acc = 0.0
        for j in range(m):
            # dS_ij + dS_ji: pos is its own inverse, so the one-hot hits both at j = pos(i)
            g = float64(probs[i, j]) + float64(probs[j, i])
            if j == pos:
                g -= 2.0
            acc += g * float64(u[j, e])
        du[i, e] = acc * coef
        radial += float64(u[i, e]) * du[i, e]
    radial = block_sum(buf, radial)
    if norms[i] <= eps:
        radial = 0.0  # at the clamp z -> z / eps is linear: no radial part to remove
    norm = float64(norms[i])
    for e in range(t, d, THREADS):
        dz[i, e] = (du[i, e] - float64(u[i, e]) * radial) / norm


# --------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def nt_xent_fwd(z1, z2, temperature):
    """NT-Xent of views z1, z2 (N, D) -> (loss (0-d), u (2N, D), norms (2N,), probs (2N, 2N))."""
    check_float("nt_xent_fwd", z1=z1, z2=z2)
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"nt_xent_fwd: z1 has shape {z1.shape} and z2 {z2.shape}; expected two "
                         f"(N, D) arrays of one shape")
    if z1.shape[0] == 0:  # nothing to launch: the reference's answer
        return reference.nt_xent_fwd(z1, z2, temperature)
    xp = array_module(z1)
    n, d = z1.shape
    m = 2 * n
    u = xp.empty((m, d), z1.dtype)
    norms = xp.empty(m, z1.dtype)
    probs = xp.empty((m, m), z1.dtype)
    row_loss = xp.empty(m, xp.float64)
    _normalise_rows[m, THREADS](xp.ascontiguousarray(z1), xp.ascontiguousarray(z2), _NORM_EPS, u,
                                norms)
    _similarity_rows[m, THREADS](u, 1.0 / temperature, probs, row_loss)
    loss = xp.asarray(row_loss.mean(), dtype=z1.dtype)  # 0-d, on the device
    return loss, u, norms, probs


def nt_xent_bwd(dloss, u, norms, probs, temperature):
    """(dz1, dz2) from the scalar dloss (see the module docstring for the formulas)."""
    check_float("nt_xent_bwd", u=u, norms=norms, probs=probs)
    m = u.shape[0] if u.ndim == 2 else 0
    if m == 0 or m % 2:
        raise ValueError(f"nt_xent_bwd: u has shape {u.shape}; expected (2N, D) with N >= 1")
    if norms.shape != (m,) or probs.shape != (m, m):
        raise ValueError(f"nt_xent_bwd: norms has shape {norms.shape} and probs {probs.shape}; "
                         f"expected ({m},) and ({m}, {m}) for u of shape {u.shape}")
    if np.ndim(dloss) != 0:
        raise ValueError(f"nt_xent_bwd: dloss has shape {np.shape(dloss)}; expected a scalar")
    xp = array_module(u)
    d = u.shape[1]
    u, norms, probs = (xp.ascontiguousarray(a) for a in (u, norms, probs))
    dz = xp.empty((m, d), u.dtype)
    du = xp.empty((m, d), xp.float64)  # scratch: du_i, needed again after the radial block sum
    clamp = float(u.dtype.type(_NORM_EPS))  # the clamp as stored in norms' dtype
    _dz_rows[m, THREADS](xp.asarray(dloss, dtype=xp.float64).reshape(1), u, norms, probs,
                         1.0 / temperature, clamp, du, dz)
    return dz[: m // 2], dz[m // 2:]
