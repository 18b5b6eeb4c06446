"""Numba CPU kernels for scaled-dot-product attention, flash-style: O(T) memory per query row.

Same names, signatures and results as ``kernels/reference.py``:

    attention_fwd(q, k, v, causal, scale, *, variant="auto") -> (out (..., T_q, Dv), lse (..., T_q))
    attention_bwd(dout, q, k, v, out, lse, causal, scale, *, variant="auto") -> (dq, dk, dv)

``variant`` (keyword only, beyond the reference's signature) forces one of the variants below,
for tests and benchmarks; the registry and the ops never pass it, so they get "auto".

q (..., T_q, D), k (..., T_k, D), v (..., T_k, Dv) with equal leading axes, which are folded into
one axis BH (a copy is made only when an input is not C-contiguous). T_q and T_k may differ. The
causal mask is the reference's: query i sees key j when j <= i (top-left aligned, PyTorch's
is_causal), so every query row sees at least key 0. float32 and float64 run here, in their own
dtype; any other dtype (float16) is handed to the reference.

Variants (llm.c's dev/cuda habit; ``variant=`` forces one, "auto" picks):

0. blas  (kernels/cpu/attention_blas.py): at short sequences, up to ``BLAS_MAX_SCORES`` scores
   per head, one head per thread at a time: its products through BLAS and everything between
   them in one fused pass, in a (T_q, T_k) scores buffer per thread that stays in cache. The two
   below never make a T_q x T_k array.

1. rows  (``_fwd_rows``, ``_bwd_rows``): one query row at a time against all its keys. The row of
   T_k scores is held in per-thread scratch, softmaxed in two passes (max, then exp and sum) and
   multiplied into v; the backward runs the same rows in parallel over batch*head. The algorithm
   at its plainest, in float64 scalars, with libm's exp; the fallback for head dims above
   ``TILED_MAX_D``, where the tiled variant's per-thread scratch would grow past ~12 MB.
2. tiled (``_fwd_tiled``, ``_bwd_tiled``): flash attention. The forward runs in parallel over
   (batch*head, query tile); each query tile walks the key tiles once, keeping per row a running
   max m, a running sum l and an unnormalised output accumulator (online softmax), and skips the
   key tiles wholly above the diagonal when causal. The backward recomputes the probabilities key
   tile by key tile from q, k and lse (D_i = rowsum(dout * out) first), four query rows at a
   time, in parallel over batch*head (why that is race-free: see ``_bwd_tiled``). What it
   changes against variant 1: the key (and value) tile is transposed into scratch so that every
   inner loop runs along a contiguous axis without a reduction (with fastmath=False LLVM may not
   reorder a sum, so a dot-product loop stays scalar, while these loops vectorise); products are
   added four at a time into an accumulator; exp is ``_common.vexp``, a polynomial that
   vectorises (libm's exp is a scalar call per element). Several times faster than variant 1
   on one core.

Memory of the flash variants (checked by a test): the forward allocates out and lse and nothing
of size T_q x T_k; the backward allocates dq, dk, dv and, per thread, a few tiles and one vector
of T_q entries (D_i). All scratch is allocated here, in Python, before the kernel runs (the
kernels allocate nothing), with one slice per Numba thread (``numba.get_thread_id()``): a thread
owns its slice for a whole prange iteration. So memory is O(T) per query row, never O(T^2).

Compilation: every kernel is ``@njit(parallel=True, fastmath=False, cache=True)`` and compiled
lazily, on its first call, once per dtype: the wrappers always pass C-contiguous, writeable 3-D
arrays, a bool, a scalar of the data's dtype and Python ints, so float32 and float64 are the only
two signatures. The tiled pair takes seconds to compile per dtype (the first-call times are in
benchmarks/results/kernels_cpu.md, "Compile"); cache=True keeps them in __pycache__ after that.

Speed: benchmarks/results/kernels_cpu.md (``python benchmarks/kernels_cpu.py``) has the measured
times against the reference, with the machine they ran on. What to expect from them: the tiled
variant gains most at long causal sequences, where it skips the key tiles above the diagonal,
and little or nothing without the mask or at short T. What limits the kernel: fastmath=False
forbids contracting a * b + c into an FMA, and LLVM picks 256-bit vectors on AVX-512 machines
and keeps each accumulator row in memory, where OpenBLAS's sgemm, which does the reference's
seven products (two forward, five backward), issues 512-bit FMAs from a register tile. What the
kernel has for it: all of it runs in parallel and nothing of size T x T is made, while the
reference's softmax passes (where, max, exp, sum, the products with P) are single-threaded NumPy
over (B, H, T, T) arrays. On a loaded machine the gap widens: the reference's OpenBLAS threads
stall when one of them is descheduled.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .. import reference
from tinygrad_pt import threads  # absolute: kernels/ installs as tinygrad_pt.kernels

from . import attention_blas
from ._common import run_on_threads, vexp  # vexp: an exp that LLVM vectorises (libm's does not)

__all__ = ["attention_fwd", "attention_bwd"]

BLOCK_Q = 64  # query rows per forward job: its accumulator (BLOCK_Q x Dv) stays in L1/L2
BLOCK_K = 64  # keys per tile: one transposed key tile (D x BLOCK_K) and a score row per query
# "auto" runs the tiled variant unless a head dim passes TILED_MAX_D. Measured, the tiled variant
# is the faster up to D = 4096 at least; the bound keeps its per-thread scratch, about
# (2 BLOCK_K + BLOCK_Q) x D elements, under ~12 MB, where the rows variant needs O(T_k).
TILED_MAX_D = 16384
# "auto" runs the blas variant (kernels/cpu/attention_blas.py) up to this many scores per head,
# T_q x T_k: where it was measured faster than the tiled kernel (benchmarks/attention_cpu.py,
# benchmarks/results/attention_cpu.md, with the machine). Running one head per thread, in blocks
# of queries that skip what lies above the causal diagonal, it was the faster at every T
# measured, 64 to 2048 (at 1024 and 2048 with D = 64, one thread: 1.8x and 2.0x causal, 2.1x and
# 2.6x without the mask). The bound is memory: a thread's buffers hold one block of queries'
# scores, (T_q / 8) x T_k, 2 MiB each in float32 at T = 2048; above it the tiled kernel's O(T)
# memory wins.
BLAS_MAX_SCORES = 2048 * 2048
VARIANTS = ("auto", "blas", "tiled", "rows")

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# ----------------------------------------------------------------------------------------------------
# Helpers


def _dtype_of(*arrays):
    """The common dtype if the kernels here handle it (float32, float64), else None."""
    dtype = np.result_type(*arrays)
    return dtype if dtype in _FAST_DTYPES else None


def _fold(x, dtype, *tail):
    """x (..., *tail) -> (BH, *tail): C-contiguous, writeable, of `dtype`. A copy only when x is
    not so already (a read-only array is a distinct Numba type: it would compile again)."""
    bh = math.prod(x.shape[:x.ndim - len(tail)])
    x = np.ascontiguousarray(x, dtype=dtype).reshape((bh,) + tail)
    return x if x.flags.writeable else x.copy()


def _query_block(bh, tq, threads):
    """BLOCK_Q, halved while there are too few (batch*head, query tile) jobs to keep every thread
    busy (a single head with a short sequence would otherwise run on one thread)."""
    bq = BLOCK_Q
    while bq > 8 and bh * (-(-tq // bq)) < 4 * threads:
        bq //= 2
    return bq


# ----------------------------------------------------------------------------------------------------
# Variant 1: rows (the plain algorithm, and the fallback for large head dims)


@njit(parallel=True, fastmath=False, cache=True)
def _fwd_rows(q, k, v, causal, scale, out, lse, scores):
    """out, lse for every (batch*head, query row), in parallel; scores (threads, T_k) scratch."""
    bh, tq, d = q.shape
    tk, dv = k.shape[1], v.shape[2]
    for job in prange(bh * tq):
        b, i = job // tq, job % tq
        s = scores[numba.get_thread_id()]
        n = min(tk, i + 1) if causal else tk  # keys 0 .. n-1 are visible
        mx = -np.inf
        for j in range(n):
            s[j] = 0.0
            for e in range(d):
                s[j] += q[b, i, e] * k[b, j, e]
            s[j] *= scale
            mx = max(mx, s[j])
        for e in range(dv):
            out[b, i, e] = 0.0
        lse[b, i] = 0.0  # the sum of exp(s - max) until the end
        for j in range(n):
            p = math.exp(s[j] - mx)
            lse[b, i] += p
            for e in range(dv):
                out[b, i, e] += p * v[b, j, e]
        for e in range(dv):
            out[b, i, e] /= lse[b, i]
        lse[b, i] = mx + math.log(lse[b, i])


@njit(parallel=True, fastmath=False, cache=True)
def _bwd_rows(dout, q, k, v, out, lse, causal, scale, dq, dk, dv, p_row, dp_row):
    """dq, dk, dv (zeroed by the caller), in parallel over batch*head only: dk and dv sum over
    every query row, so one thread owns all rows of a (batch, head) and no two threads ever add
    into the same dk or dv row. p_row, dp_row (threads, T_k) scratch."""
    bh, tq, d = q.shape
    tk, dvv = k.shape[1], v.shape[2]
    for b in prange(bh):
        tid = numba.get_thread_id()
        p, ds = p_row[tid], dp_row[tid]
        for i in range(tq):
            n = min(tk, i + 1) if causal else tk
            delta = 0.0  # D_i = rowsum(dout * out) = rowsum(P * dP)
            for e in range(dvv):
                delta += dout[b, i, e] * out[b, i, e]
            for j in range(n):
                s = 0.0
                for e in range(d):
                    s += q[b, i, e] * k[b, j, e]
                p[j] = math.exp(s * scale - lse[b, i])
                dp = 0.0
                for e in range(dvv):
                    dp += dout[b, i, e] * v[b, j, e]
                ds[j] = p[j] * (dp - delta) * scale  # dS, with the scale of dq and dk folded in
            for j in range(n):
                for e in range(dvv):
                    dv[b, j, e] += p[j] * dout[b, i, e]
                for e in range(d):
                    dk[b, j, e] += ds[j] * q[b, i, e]
                    dq[b, i, e] += ds[j] * k[b, j, e]


# ----------------------------------------------------------------------------------------------------
# Building blocks of the tiled variant
#
# With fastmath=False LLVM keeps every sum in the order it is written, so a loop that sums into
# one scalar (a dot product, a row max) stays scalar, one dependent add per element. The loops
# below are written so that the innermost loop writes a vector: it vectorises, and the order of
# every sum is still the one written here (a few products are added in a small tree before they
# reach the accumulator: one load and store of the accumulator per four products). LLVM inlines
# these small functions into the kernels; Numba's own inlining (inline="always") ran no faster
# and made the kernels slower to compile.


@njit(fastmath=False, inline="never")
def _row_times_matrix(x, mt, n, out):
    """out[c] = sum_e x[e] * mt[e, c] for c < n: a row times a (D, n) matrix, e.g. q_i k^T with
    the key tile stored transposed. Four rows of mt per pass over out."""
    d = mt.shape[0]
    for c in range(n):
        out[c] = 0.0
    e = 0
    while e + 4 <= d:
        x0, x1, x2, x3 = x[e], x[e + 1], x[e + 2], x[e + 3]
        for c in range(n):
            out[c] += (x0 * mt[e, c] + x1 * mt[e + 1, c]) + (x2 * mt[e + 2, c] + x3 * mt[e + 3, c])
        e += 4
    for e in range(e, d):
        xe = x[e]
        for c in range(n):
            out[c] += xe * mt[e, c]


@njit(fastmath=False, inline="never")
def _add_row_times_matrix(w, m, n, acc):
    """acc[e] += sum_c w[c] * m[c, e] for c < n: acc += w @ m[:n], e.g. p @ v_tile. Four rows of
    m per pass over acc."""
    c = 0
    while c + 4 <= n:
        w0, w1, w2, w3 = w[c], w[c + 1], w[c + 2], w[c + 3]
        for e in range(acc.shape[0]):
            acc[e] += (w0 * m[c, e] + w1 * m[c + 1, e]) + (w2 * m[c + 2, e] + w3 * m[c + 3, e])
        c += 4
    for c in range(c, n):
        wc = w[c]
        for e in range(acc.shape[0]):
            acc[e] += wc * m[c, e]


@njit(fastmath=False, inline="never")
def _max(x, n, start):
    """max(start, x[0], ..., x[n-1]), four elements per step of the dependent chain."""
    mx = start
    c = 0
    while c + 4 <= n:
        mx = max(mx, max(max(x[c], x[c + 1]), max(x[c + 2], x[c + 3])))
        c += 4
    for c in range(c, n):
        mx = max(mx, x[c])
    return mx


@njit(fastmath=False, inline="never")
def _sum(x, n, start):
    """start + x[0] + ... + x[n-1], four elements per step of the dependent chain."""
    total = start
    c = 0
    while c + 4 <= n:
        total += (x[c] + x[c + 1]) + (x[c + 2] + x[c + 3])
        c += 4
    for c in range(c, n):
        total += x[c]
    return total


# ----------------------------------------------------------------------------------------------------
# Variant 2: tiled (flash attention)


@njit(parallel=True, fastmath=False, cache=True)
def _fwd_tiled(q, k, v, causal, scale, block_q, block_k, out, lse, k_t, s_row, acc, m, l):
    """out, lse in parallel over (batch*head, query tile); per-thread scratch (first axis the
    thread): k_t (D, block_k) the transposed key tile, s_row (block_k,) one row of scores,
    acc (block_q, Dv) the unnormalised outputs, m and l (block_q,) the running max and sum."""
    bh, tq, d = q.shape
    tk, dv = k.shape[1], v.shape[2]
    n_tiles = (tq + block_q - 1) // block_q
    for job in prange(bh * n_tiles):
        tid = numba.get_thread_id()
        kt, s, a, mt, lt = k_t[tid], s_row[tid], acc[tid], m[tid], l[tid]
        b, r = job // n_tiles, job % n_tiles
        # Causal tiles cost more the further down they are. Numba hands each thread a contiguous
        # run of jobs, so take the tiles in the order 0, n-1, 1, n-2, ... to balance the runs.
        t = r // 2 if r % 2 == 0 else n_tiles - 1 - r // 2
        i0 = t * block_q
        nq = min(block_q, tq - i0)
        for i in range(nq):
            mt[i] = -np.inf
            lt[i] = 0.0
            for e in range(dv):
                a[i, e] = 0.0
        # Causal: the last row of the tile sees keys up to i0 + nq - 1; later key tiles are skipped.
        k_end = min(tk, i0 + nq) if causal else tk
        for j0 in range(0, k_end, block_k):
            nk = min(block_k, k_end - j0)
            for c in range(nk):  # kt[e, c] = k[j0 + c, e]
                for e in range(d):
                    kt[e, c] = k[b, j0 + c, e]
            for i in range(nq):
                row = i0 + i
                nv = min(nk, row - j0 + 1) if causal else nk  # keys j0 .. j0+nv-1 visible
                if nv <= 0:
                    continue
                _row_times_matrix(q[b, row], kt, nv, s)  # s = q_row k_tile^T
                for c in range(nv):
                    s[c] *= scale
                m_new = _max(s, nv, mt[i])
                # Online softmax: rescale what was summed under the old max, then add this tile.
                for c in range(nv):
                    s[c] = vexp(s[c] - m_new)
                alpha = vexp(mt[i] - m_new)  # 0 on the first tile (m = -inf)
                lt[i] = _sum(s, nv, lt[i] * alpha)
                if alpha != 1.0:
                    a_i = a[i]
                    for e in range(dv):
                        a_i[e] *= alpha
                _add_row_times_matrix(s, v[b, j0:], nv, a[i])  # a_i += p @ v_tile
                mt[i] = m_new
        for i in range(nq):
            for e in range(dv):
                out[b, i0 + i, e] = a[i, e] / lt[i]
            lse[b, i0 + i] = mt[i] + math.log(lt[i])


_GROUP = 4  # query rows the backward takes together (one pass over a dk, dv row for four rows);
# the dk, dv update below is written out for exactly four


@njit(parallel=True, fastmath=False, cache=True)
def _bwd_tiled(dout, q, k, v, out, lse, causal, scale, block_k, dq, dk, dv,
               k_t, v_t, p_rows, ds_rows, delta):
    """dq, dk, dv (zeroed by the caller) from P = exp(scale * q k^T - lse), one key tile at a time.

    Race-free parallelisation: dk and dv of a key sum over every query row, and dq of a query
    over every key. The prange runs over batch*head only, so one thread owns all of a (batch,
    head)'s rows of dq, dk and dv and no two threads ever add into the same row; no atomics, no
    per-thread copies of the gradients to sum, and the result does not depend on the number of
    threads. Inside, the key-tile loop is outside: a tile's k, v (transposed) and its rows of dk,
    dv stay in cache while the query rows that see the tile stream past, four rows at a time.
    Per-thread scratch: k_t (D, block_k), v_t (Dv, block_k), p_rows and ds_rows
    (4, block_k), delta (T_q,).
    """
    bh, tq, d = q.shape
    tk, dvv = k.shape[1], v.shape[2]
    for b in prange(bh):
        tid = numba.get_thread_id()
        kt, vt, p, ds, dl = k_t[tid], v_t[tid], p_rows[tid], ds_rows[tid], delta[tid]
        for i in range(tq):  # D_i = rowsum(dout * out) = rowsum(P * dP), first
            dl[i] = 0.0
            for e in range(dvv):
                dl[i] += dout[b, i, e] * out[b, i, e]
        for j0 in range(0, tk, block_k):
            nk = min(block_k, tk - j0)
            for c in range(nk):
                for e in range(d):
                    kt[e, c] = k[b, j0 + c, e]
                for e in range(dvv):
                    vt[e, c] = v[b, j0 + c, e]
            # Causal: query i sees key j0 only from i = j0 on; keys past the last query get none.
            for g0 in range(j0 if causal else 0, tq, _GROUP):
                # Rows g0 .. g0+3, clamped to the last row: a clamped (repeated) row gets
                # P = dS = 0, so it adds exactly nothing below.
                n_group = 0  # keys seen by the group: the most any of its rows sees
                for r in range(_GROUP):
                    i = min(g0 + r, tq - 1)
                    nv = 0 if g0 + r >= tq else (min(nk, i - j0 + 1) if causal else nk)
                    n_group = max(n_group, nv)
                    # This row of the tile: s = q_i k^T, dP = dout_i v^T, then P and dS.
                    p_r, ds_r = p[r], ds[r]
                    _row_times_matrix(q[b, i], kt, nv, p_r)
                    _row_times_matrix(dout[b, i], vt, nv, ds_r)
                    lse_i, d_i = lse[b, i], dl[i]
                    for c in range(nv):
                        p_r[c] = vexp(p_r[c] * scale - lse_i)  # P, from the saved log-sum-exp
                        ds_r[c] = p_r[c] * (ds_r[c] - d_i) * scale  # dS, times the scale
                    for c in range(nv, nk):
                        p_r[c] = 0.0
                        ds_r[c] = 0.0
                    _add_row_times_matrix(ds_r, k[b, j0:], nv, dq[b, i])  # dq_i += dS_i k_tile
                # dv_j += sum_r P_rj dout_r;  dk_j += sum_r dS_rj q_r  (the four rows at once)
                i1, i2, i3 = min(g0 + 1, tq - 1), min(g0 + 2, tq - 1), min(g0 + 3, tq - 1)
                g_0, g_1, g_2, g_3 = dout[b, g0], dout[b, i1], dout[b, i2], dout[b, i3]
                q_0, q_1, q_2, q_3 = q[b, g0], q[b, i1], q[b, i2], q[b, i3]
                for c in range(n_group):
                    dv_j, dk_j = dv[b, j0 + c], dk[b, j0 + c]
                    p0, p1, p2, p3 = p[0, c], p[1, c], p[2, c], p[3, c]
                    for e in range(dvv):
                        dv_j[e] += (p0 * g_0[e] + p1 * g_1[e]) + (p2 * g_2[e] + p3 * g_3[e])
                    s0, s1, s2, s3 = ds[0, c], ds[1, c], ds[2, c], ds[3, c]
                    for e in range(d):
                        dk_j[e] += (s0 * q_0[e] + s1 * q_1[e]) + (s2 * q_2[e] + s3 * q_3[e])


# ----------------------------------------------------------------------------------------------------
# The reference's interface


def _variant(variant, tq, tk, d, dv):
    """The variant that runs: `variant` itself, or for "auto" blas up to BLAS_MAX_SCORES scores
    per head, else tiled unless a head dim passes TILED_MAX_D."""
    if variant not in VARIANTS:
        raise ValueError(f"attention: unknown variant {variant!r}; expected one of {VARIANTS}")
    if variant == "auto":
        if tq * tk <= BLAS_MAX_SCORES:
            return "blas"
        return "rows" if max(d, dv) > TILED_MAX_D else "tiled"
    return variant


def _shapes_agree(q, k, v):
    """The shapes the kernels index by: q (..., T_q, D), k (..., T_k, D), v (..., T_k, Dv)."""
    return (q.ndim >= 2 and k.ndim == q.ndim and v.ndim == q.ndim
            and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            and q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2])


def attention_fwd(q, k, v, causal, scale, *, variant="auto"):
    """out = softmax(scale * q k^T, causal mask) @ v -> (out (..., T_q, Dv), lse (..., T_q)).

    lse is the per-row log-sum-exp of the scaled, masked scores. Only the blas variant (short
    sequences) makes T_q x T_k arrays, one per thread. Inputs the kernels do not take (another
    dtype, no keys, shapes that do not agree) go to the reference, which computes or raises as it
    does; a kernel must never index past an array. variant: one of VARIANTS (see the module docstring).
    """
    dtype = _dtype_of(q, k, v)
    if dtype is None or not _shapes_agree(q, k, v) or k.shape[-2] == 0:
        return reference.attention_fwd(q, k, v, causal, scale)
    lead, (tq, d), (tk, dv) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
    q3, k3, v3 = _fold(q, dtype, tq, d), _fold(k, dtype, tk, d), _fold(v, dtype, tk, dv)
    bh = q3.shape[0]
    scale = dtype.type(scale)  # a scalar of the data's dtype: float32 math stays float32
    chosen = _variant(variant, tq, tk, d, dv)
    if chosen == "blas":
        out, lse = attention_blas.attention_fwd(q3, k3, v3, causal, scale)
        return out.reshape(lead + (tq, dv)), lse.reshape(lead + (tq,))
    out = np.empty((bh, tq, dv), dtype)
    lse = np.empty((bh, tq), dtype)
    n = threads.kernel_threads(bh * tq * tk)  # the scores it computes: the policy's work measure
    if chosen == "rows":
        run_on_threads(n, _fwd_rows, q3, k3, v3, bool(causal), scale, out, lse,
                       np.empty((n, tk), dtype))
    else:
        bq = _query_block(bh, tq, n)
        run_on_threads(n, _fwd_tiled, q3, k3, v3, bool(causal), scale, bq, BLOCK_K, out, lse,
                       np.empty((n, d, BLOCK_K), dtype), np.empty((n, BLOCK_K), dtype),
                       np.empty((n, bq, dv), dtype), np.empty((n, bq), dtype),
                       np.empty((n, bq), dtype))
    return out.reshape(lead + (tq, dv)), lse.reshape(lead + (tq,))


def attention_bwd(dout, q, k, v, out, lse, causal, scale, *, variant="auto"):
    """(dq, dk, dv), recomputing P = exp(scale * q k^T - lse) tile by tile (see the reference);
    variant as in attention_fwd."""
    dtype = _dtype_of(dout, q, k, v, out, lse)
    if (dtype is None or not _shapes_agree(q, k, v) or k.shape[-2] == 0
            or dout.shape != q.shape[:-1] + v.shape[-1:] or out.shape != dout.shape
            or lse.shape != q.shape[:-1]):
        return reference.attention_bwd(dout, q, k, v, out, lse, causal, scale)
    (tq, d), (tk, dv) = q.shape[-2:], v.shape[-2:]
    q3, k3, v3 = _fold(q, dtype, tq, d), _fold(k, dtype, tk, d), _fold(v, dtype, tk, dv)
    dout3, out3, lse3 = _fold(dout, dtype, tq, dv), _fold(out, dtype, tq, dv), _fold(lse, dtype, tq)
    scale = dtype.type(scale)
    chosen = _variant(variant, tq, tk, d, dv)
    if chosen == "blas":
        dq, dk, dvv = attention_blas.attention_bwd(dout3, q3, k3, v3, out3, lse3, causal, scale)
        return dq.reshape(q.shape), dk.reshape(k.shape), dvv.reshape(v.shape)
    dq, dk, dvv = np.zeros_like(q3), np.zeros_like(k3), np.zeros_like(v3)
    n = threads.kernel_threads(q3.shape[0] * tq * tk)
    if chosen == "rows":
        run_on_threads(n, _bwd_rows, dout3, q3, k3, v3, out3, lse3, bool(causal), scale, dq, dk,
                       dvv, np.empty((n, tk), dtype), np.empty((n, tk), dtype))
    else:
        run_on_threads(n, _bwd_tiled, dout3, q3, k3, v3, out3, lse3, bool(causal), scale, BLOCK_K,
                       dq, dk, dvv, np.empty((n, d, BLOCK_K), dtype),
                       np.empty((n, dv, BLOCK_K), dtype), np.empty((n, _GROUP, BLOCK_K), dtype),
                       np.empty((n, _GROUP, BLOCK_K), dtype), np.empty((n, tq), dtype))
    return dq.reshape(q.shape), dk.reshape(k.shape), dvv.reshape(v.shape)
