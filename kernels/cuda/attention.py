"""Scaled-dot-product attention, flash-attention style (Numba-CUDA): no T_q x T_k array is made.

Same names, signatures and results as ``kernels/reference.py`` (the math is stated there):

    attention_fwd(q, k, v, causal, scale) -> (out (..., T_q, Dv), lse (..., T_q))
    attention_bwd(dout, q, k, v, out, lse, causal, scale) -> (dq, dk, dv)

q (..., T_q, D), k (..., T_k, D), v (..., T_k, Dv) with equal leading axes, folded into one axis
BH (a copy only when an input is not C-contiguous). T_q and T_k may differ. The causal mask is
the reference's: query i sees key j when j <= i (top-left aligned), so every query row sees key 0
and has a finite lse. CuPy float32 / float64 arrays on a GPU, NumPy under the simulator
(``NUMBA_ENABLE_CUDASIM=1``).

Not supported, each a clear error naming the kernel: dtypes other than float32 / float64
(TypeError); head dims D or Dv above ``D_MAX`` = 128 (ValueError: the shared-memory tiles and the
per-thread rows are sized for 128); shapes that do not agree (ValueError). Empty inputs (a zero
length or head dim) launch nothing and get the reference's answer.

Layout. ROWS threads per block, each thread owns one row (a query row, or a key row in dk/dv);
the other side is staged in shared memory STAGE rows at a time, loaded by all threads of the block
together (neighbouring threads read neighbouring addresses), and read by every thread at the same
address (a broadcast, no bank conflicts). Blocks are numbered b * n_tiles + tile along x, so BH
is not bound by the grid's y limit (65535).

- ``fwd``: one block per (batch*head, query tile of ROWS rows). It walks the key tiles (k and v in
  shared memory, STAGE keys each); each thread keeps its row of q, a running max m, a running sum
  l and an unnormalised output row (Dv) in local memory (online softmax: on a new max everything
  summed so far is rescaled by exp(m_old - m_new)). Causal: key tiles wholly above the diagonal
  (starting past the tile's last query) are skipped. Writes out = acc / l and lse = m + log(l).
- ``row_dot``: D_i = rowsum(dout * out) (= rowsum(P * dP)), one thread per row of (BH * T_q, Dv).
- ``dkdv``: one block per (batch*head, key tile of ROWS keys); each thread owns key j's rows of
  k, v, dk and dv, and the block walks the query tiles (q, dout, lse, D in shared memory) from
  query j0 on when causal (earlier queries see none of the tile's keys). It recomputes
  P_ij = exp(scale * q_i . k_j - lse_i) and dS_ij = P_ij (dout_i . v_j - D_i), and adds
  dv_j += P_ij dout_i, dk_j += scale * dS_ij q_i. One thread owns a dk, dv row: no atomics.
- ``dq``: one block per (batch*head, query tile), laid out as ``fwd``: each thread owns dq_i and
  adds scale * dS_ij k_j over the key tiles (k, v in shared memory), skipping tiles above the
  diagonal.

Why a second pass for dq, not atomics in ``dkdv``: every dq entry is then summed by one thread in
key order, so a run is reproducible bit for bit (as the layer-norm kernels' column sums), with no
float64 atomics (sm_60 and later only) and no T_k / STAGE-way contention on one dq row. The price
is computing P and dP a second time (two of the five T_q x T_k x D products of the backward).

Tile sizes (compile-time constants; each dtype gets its own build of the four kernels). On a GPU:
ROWS = 64 threads; STAGE = 32 rows for float32 and 16 for float64, so that the two staged
(STAGE, 128) tiles take 32 KB of shared memory, under the 48 KB a block gets statically. Under
the simulator, which runs each GPU thread as a Python thread: ROWS = 4 and STAGE = 3, so that
tiny tests still cross tile edges, with ragged last tiles and the two tilings out of step.

Precision: sums, tiles and exp in the input's dtype (float32 and expf for float32, as GPU flash
kernels do, keeping shared memory and registers at half the size; float64 for float64). Checked
with cuda.compile_ptx for sm_90: the float32 build has no float64 instruction. The online softmax
keeps every exp argument <= 0, so large scores cannot overflow. Each thread sums its dot
products in a fixed order, so results do not depend on timing.

Variants: this is the first one, unmeasured on a GPU. Its known limits there: one thread per row
does a whole D-long dot product per score (no tensor cores, no register tiling), and a thread's
three or four rows of up to 128 entries live in local memory (L1-cached), not registers. Planned:
a CuPy RawModule with warps sharing a row and mma instructions.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import cuda, float32, float64

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

from ._common import SIMULATOR, check_float

__all__ = ["attention_fwd", "attention_bwd"]

D_MAX = 128  # the largest head dim (D and Dv): the size of staged tiles and per-thread rows
ROWS = 4 if SIMULATOR else 64  # threads per block, one row each
STAGE = {np.dtype(np.float32): 3 if SIMULATOR else 32,  # rows per shared-memory tile
         np.dtype(np.float64): 3 if SIMULATOR else 16}


@cuda.jit(device=True)
def _lesser(a, b):
    """min(a, b). In Numba 0.68 the builtin min/max go through a varargs overload that fails to
    compile for the CUDA target ("Signature mismatch", seen with cuda.compile_ptx), so the
    kernels use these."""
    return a if a < b else b


@cuda.jit(device=True)
def _greater(a, b):
    """max(a, b), as ``_lesser``."""
    return a if a > b else b


class _Kernels(NamedTuple):
    fwd: object
    row_dot: object
    dkdv: object
    dq: object


def _build(acc_t, stage):
    """The four kernels with acc_t (float32 or float64) as the type of every sum, shared tile and
    local row, and `stage` rows per shared tile. cuda.jit compiles on the first launch only.

    Arrays: q (BH, T_q, D), k (BH, T_k, D), v (BH, T_k, Dv), out and dout (BH, T_q, Dv), lse and
    delta (BH, T_q), all C-contiguous, of acc_t's dtype; causal a bool; scale a scalar of acc_t.
    Threads past the last row skip the arithmetic but still load tiles and meet every barrier.
    """
    zero = acc_t(0.0)  # constants of acc_t: a Python float would make float32 sums float64
    neg_inf = acc_t(-math.inf)

    @cuda.jit
    def fwd(q, k, v, causal, scale, out, lse):
        k_sh = cuda.shared.array((stage, D_MAX), acc_t)
        v_sh = cuda.shared.array((stage, D_MAX), acc_t)
        q_i = cuda.local.array(D_MAX, acc_t)
        acc = cuda.local.array(D_MAX, acc_t)  # sum_j exp(S_ij - m) v_j, unnormalised
        p = cuda.local.array(stage, acc_t)  # this tile's scores, then exp(S - m_new)
        tq, d = q.shape[1], q.shape[2]
        tk, dv = k.shape[1], v.shape[2]
        n_tiles = (tq + ROWS - 1) // ROWS
        b, i0 = cuda.blockIdx.x // n_tiles, (cuda.blockIdx.x % n_tiles) * ROWS
        t = cuda.threadIdx.x
        i = i0 + t
        live = i < tq
        if live:
            for e in range(d):
                q_i[e] = q[b, i, e]
            for e in range(dv):
                acc[e] = zero
        m, l = neg_inf, zero
        # Causal: the tile's last query sees keys up to i0 + ROWS - 1; later tiles are skipped.
        k_end = _lesser(tk, i0 + ROWS) if causal else tk
        for j0 in range(0, k_end, stage):
            nk = _lesser(stage, k_end - j0)
            cuda.syncthreads()  # every thread is done with the previous tile
            for x in range(t, nk * d, ROWS):
                k_sh[x // d, x % d] = k[b, j0 + x // d, x % d]
            for x in range(t, nk * dv, ROWS):
                v_sh[x // dv, x % dv] = v[b, j0 + x // dv, x % dv]
            cuda.syncthreads()
            nv = _lesser(nk, i - j0 + 1) if causal else nk  # keys j0 .. j0 + nv - 1 are visible
            if live and nv > 0:
                m_new = m
                for c in range(nv):
                    s = zero
                    for e in range(d):
                        s += q_i[e] * k_sh[c, e]
                    s *= scale
                    p[c] = s
                    m_new = _greater(m_new, s)
                alpha = math.exp(m - m_new)  # 0 on the first tile (m = -inf); <= 1 after
                l *= alpha
                for c in range(nv):
                    p[c] = math.exp(p[c] - m_new)  # <= 1: cannot overflow
                    l += p[c]
                for e in range(dv):
                    a = acc[e] * alpha
                    for c in range(nv):
                        a += p[c] * v_sh[c, e]
                    acc[e] = a
                m = m_new
        if live:
            for e in range(dv):
                out[b, i, e] = acc[e] / l
            lse[b, i] = m + math.log(l)

    @cuda.jit
    def row_dot(dout, out, delta):
        """delta[n] = sum_e dout[n, e] * out[n, e] over rows n of (N, Dv): one thread per row."""
        n = cuda.grid(1)
        if n < dout.shape[0]:
            s = zero
            for e in range(dout.shape[1]):
                s += dout[n, e] * out[n, e]
            delta[n] = s

    @cuda.jit
    def dkdv(dout, q, k, v, lse, delta, causal, scale, dk, dv):
        q_sh = cuda.shared.array((stage, D_MAX), acc_t)
        g_sh = cuda.shared.array((stage, D_MAX), acc_t)  # dout rows
        lse_sh = cuda.shared.array(stage, acc_t)
        delta_sh = cuda.shared.array(stage, acc_t)
        k_j = cuda.local.array(D_MAX, acc_t)
        v_j = cuda.local.array(D_MAX, acc_t)
        dk_j = cuda.local.array(D_MAX, acc_t)
        dv_j = cuda.local.array(D_MAX, acc_t)
        tq, d = q.shape[1], q.shape[2]
        tk, dvv = k.shape[1], v.shape[2]
        n_tiles = (tk + ROWS - 1) // ROWS
        b, j0 = cuda.blockIdx.x // n_tiles, (cuda.blockIdx.x % n_tiles) * ROWS
        t = cuda.threadIdx.x
        j = j0 + t
        live = j < tk
        if live:
            for e in range(d):
                k_j[e] = k[b, j, e]
                dk_j[e] = zero
            for e in range(dvv):
                v_j[e] = v[b, j, e]
                dv_j[e] = zero
        # Causal: queries before j0 see none of this block's keys.
        for i1 in range(j0 if causal else 0, tq, stage):
            ni = _lesser(stage, tq - i1)
            cuda.syncthreads()
            for x in range(t, ni * d, ROWS):
                q_sh[x // d, x % d] = q[b, i1 + x // d, x % d]
            for x in range(t, ni * dvv, ROWS):
                g_sh[x // dvv, x % dvv] = dout[b, i1 + x // dvv, x % dvv]
            for r in range(t, ni, ROWS):
                lse_sh[r] = lse[b, i1 + r]
                delta_sh[r] = delta[b, i1 + r]
            cuda.syncthreads()
            if live:
                # Causal: query i1 + r sees key j from r = j - i1 on.
                for r in range(_greater(0, j - i1) if causal else 0, ni):
                    s = zero
                    for e in range(d):
                        s += q_sh[r, e] * k_j[e]
                    pr = math.exp(s * scale - lse_sh[r])  # P, from the saved log-sum-exp
                    dp = zero
                    for e in range(dvv):
                        dp += g_sh[r, e] * v_j[e]
                        dv_j[e] += pr * g_sh[r, e]
                    ds = pr * (dp - delta_sh[r])
                    for e in range(d):
                        dk_j[e] += ds * q_sh[r, e]
        if live:
            for e in range(d):
                dk[b, j, e] = dk_j[e] * scale
            for e in range(dvv):
                dv[b, j, e] = dv_j[e]

    @cuda.jit
    def dq(dout, q, k, v, lse, delta, causal, scale, dq_out):
        k_sh = cuda.shared.array((stage, D_MAX), acc_t)
        v_sh = cuda.shared.array((stage, D_MAX), acc_t)
        q_i = cuda.local.array(D_MAX, acc_t)
        g_i = cuda.local.array(D_MAX, acc_t)  # dout row
        dq_i = cuda.local.array(D_MAX, acc_t)
        tq, d = q.shape[1], q.shape[2]
        tk, dvv = k.shape[1], v.shape[2]
        n_tiles = (tq + ROWS - 1) // ROWS
        b, i0 = cuda.blockIdx.x // n_tiles, (cuda.blockIdx.x % n_tiles) * ROWS
        t = cuda.threadIdx.x
        i = i0 + t
        live = i < tq
        lse_i, d_i = zero, zero
        if live:
            for e in range(d):
                q_i[e] = q[b, i, e]
                dq_i[e] = zero
            for e in range(dvv):
                g_i[e] = dout[b, i, e]
            lse_i, d_i = lse[b, i], delta[b, i]
        k_end = _lesser(tk, i0 + ROWS) if causal else tk
        for j0 in range(0, k_end, stage):
            nk = _lesser(stage, k_end - j0)
            cuda.syncthreads()
            for x in range(t, nk * d, ROWS):
                k_sh[x // d, x % d] = k[b, j0 + x // d, x % d]
            for x in range(t, nk * dvv, ROWS):
                v_sh[x // dvv, x % dvv] = v[b, j0 + x // dvv, x % dvv]
            cuda.syncthreads()
            if live:
                for c in range(_lesser(nk, i - j0 + 1) if causal else nk):
                    s = zero
                    for e in range(d):
                        s += q_i[e] * k_sh[c, e]
                    pc = math.exp(s * scale - lse_i)
                    dp = zero
                    for e in range(dvv):
                        dp += g_i[e] * v_sh[c, e]
                    ds = pc * (dp - d_i)
                    for e in range(d):
                        dq_i[e] += ds * k_sh[c, e]
        if live:
            for e in range(d):
                dq_out[b, i, e] = dq_i[e] * scale

    return _Kernels(fwd, row_dot, dkdv, dq)


_KERNELS = {np.dtype(np.float32): _build(float32, STAGE[np.dtype(np.float32)]),
            np.dtype(np.float64): _build(float64, STAGE[np.dtype(np.float64)])}

# --------------------------------------------------------------------------------------------------
# Wrappers with the reference's signatures


def _check_shapes(name, q, k, v):
    """ValueError unless q (..., T_q, D), k (..., T_k, D), v (..., T_k, Dv) agree and D, Dv fit."""
    agree = (q.ndim >= 2 and k.ndim == q.ndim and v.ndim == q.ndim
             and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
             and q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2])
    if not agree:
        raise ValueError(f"{name}: q {q.shape}, k {k.shape}, v {v.shape} do not agree; expected "
                         f"q (..., T_q, D), k (..., T_k, D), v (..., T_k, Dv) with the same "
                         f"leading axes")
    d, dv = q.shape[-1], v.shape[-1]
    if max(d, dv) > D_MAX:
        raise ValueError(f"{name}: head dims D={d}, Dv={dv}; the CUDA kernel takes at most "
                         f"{D_MAX} (its shared-memory tiles are sized for that): use the CPU or "
                         f"reference kernels")


def _fold(x, *tail):
    """x (..., *tail) as a C-contiguous (BH, *tail) array: a view when x already is contiguous."""
    return array_module(x).ascontiguousarray(x).reshape((-1,) + tail)


def _blocks(bh, rows):
    return bh * ((rows + ROWS - 1) // ROWS)


def attention_fwd(q, k, v, causal, scale):
    """out = softmax(scale * q k^T, causal mask) @ v -> (out (..., T_q, Dv), lse (..., T_q)).

    lse_i = log sum_j exp(S_ij) over the visible keys, so that the backward recovers
    P = exp(S - lse). Computed by the online softmax, tile by tile (see the module docstring).
    """
    check_float("attention_fwd", q=q, k=k, v=v)
    _check_shapes("attention_fwd", q, k, v)
    if q.size == 0 or k.size == 0 or v.size == 0:  # nothing to launch: the reference's answer
        return reference.attention_fwd(q, k, v, causal, scale)
    xp = array_module(q)
    (tq, d), (tk, dv) = q.shape[-2:], v.shape[-2:]
    q3, k3, v3 = _fold(q, tq, d), _fold(k, tk, d), _fold(v, tk, dv)
    bh = q3.shape[0]
    out = xp.empty((bh, tq, dv), q.dtype)
    lse = xp.empty((bh, tq), q.dtype)
    kern = _KERNELS[q.dtype]
    kern.fwd[_blocks(bh, tq), ROWS](q3, k3, v3, bool(causal), q.dtype.type(scale), out, lse)
    return out.reshape(q.shape[:-1] + (dv,)), lse.reshape(q.shape[:-1])


def attention_bwd(dout, q, k, v, out, lse, causal, scale):
    """(dq, dk, dv), recomputing P = exp(scale * q k^T - lse) tile by tile:

        D_i = rowsum(dout * out),   dS = P * (dout v^T - D)
        dv = P^T dout,   dq = scale * dS k,   dk = scale * dS^T q
    """
    name = "attention_bwd"
    check_float(name, dout=dout, q=q, k=k, v=v, out=out, lse=lse)
    _check_shapes(name, q, k, v)
    want = q.shape[:-1] + v.shape[-1:]
    for key, a, shape in (("dout", dout, want), ("out", out, want), ("lse", lse, q.shape[:-1])):
        if a.shape != shape:
            raise ValueError(f"{name}: {key} has shape {a.shape}; expected {shape} for q "
                             f"{q.shape} and v {v.shape}")
    if q.size == 0 or k.size == 0 or v.size == 0:
        return reference.attention_bwd(dout, q, k, v, out, lse, causal, scale)
    xp = array_module(q)
    (tq, d), (tk, dv) = q.shape[-2:], v.shape[-2:]
    q3, k3, v3 = _fold(q, tq, d), _fold(k, tk, d), _fold(v, tk, dv)
    dout3, out3, lse3 = _fold(dout, tq, dv), _fold(out, tq, dv), _fold(lse, tq)
    bh = q3.shape[0]
    kern = _KERNELS[q.dtype]
    causal, scale = bool(causal), q.dtype.type(scale)
    delta = xp.empty((bh, tq), q.dtype)
    kern.row_dot[_blocks(1, bh * tq), ROWS](dout3.reshape(-1, dv), out3.reshape(-1, dv),
                                             delta.reshape(-1))
    dq, dk, dvv = xp.empty_like(q3), xp.empty_like(k3), xp.empty_like(v3)
    kern.dkdv[_blocks(bh, tk), ROWS](dout3, q3, k3, v3, lse3, delta, causal, scale, dk, dvv)
    kern.dq[_blocks(bh, tq), ROWS](dout3, q3, k3, v3, lse3, delta, causal, scale, dq)
    return dq.reshape(q.shape), dk.reshape(k.shape), dvv.reshape(v.shape)
