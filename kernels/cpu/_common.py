"""Pieces shared by the Numba CPU kernels: a vectorizable exp, row reductions, array preparation.

Why a hand-written exp. Numba without SVML (Intel's vector math library, absent on the machines
measured) makes ``math.exp`` inside a loop a scalar libm call per element: a softmax written with
it ran no faster than the NumPy reference, whose own exp is SIMD. ``vexp`` below is plain
arithmetic (Cody-Waite range reduction, a Taylor polynomial, and 2^k built from its bits), so
LLVM vectorizes the loops that call it, and the fused softmax beats the reference (the times and
the per-element costs of both exps are in benchmarks/results/kernels_cpu.md).

Why the sums may reorder, and nothing else. The kernels compile with ``fastmath=False``, so
LLVM keeps every floating-point operation as written: NaN and inf behave as IEEE says, and no
a * b + c is contracted into an FMA behind the code's back (where a kernel wants one, it says so:
``muladd`` below). Under that rule a sum ``s += x[j]`` is one chain that waits
a full add latency per element and is never vectorized. The sums below (``row_sum``, ``row_dot``,
``row_sq_dev``) are compiled with ``fastmath={"reassoc"}`` alone: LLVM may then split the chain
into vector lanes and add the lanes up at the end. That is the only freedom given (no nnan, ninf
or contract), the accumulators stay float64 for float32 data, and the order is fixed by the
compiled code, so a result is the same run to run and whatever the thread count. Against the
eight scalar chains they replaced: 4-5x faster per row (a (2048, 128) float32 array: 0.016 ms
against 0.075 for the sums; layer norm's forward went from 0.21 to 0.08 ms on one thread), and no less
accurate (more partial sums, each shorter). ``row_max`` keeps eight scalar lanes: a vectorized
max needs nnan, which would let a NaN pass unseen.

Why small calls run on one thread (``launch``). Starting a parallel loop costs more than a small
kernel's work on an idle machine. On a busy one it is far worse: Numba's threads wait for each
other, and when other processes hold the cores (pytest -n 2 on two cores, another job) a call
that takes a fraction of a millisecond alone waited for the scheduler many times as long. Below
``PARALLEL_MIN_ELEMENTS`` a kernel therefore runs on the calling thread alone.

The kernels' compiled code is cached next to their source (``cache=True``). Numba's cache looks
only at the source file of the kernel itself, not at this one, whose helpers every kernel
inlines: ``_cache.drop_stale`` (run at import) deletes the cached kernels when any source of the
package has changed.
"""
from __future__ import annotations

import math
import statistics
import time
import warnings
from collections import Counter

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, set_num_threads, types
from numba.extending import intrinsic, overload

from tinygrad_pt import threads  # absolute: kernels/ installs as tinygrad_pt.kernels

from . import _cache

_cache.drop_stale()  # before any kernel loads its cache (module docstring)

# What the kernels accept; anything else goes to the reference (see ``fallback``).
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Options of the small helpers below (the kernels add parallel=True). error_model="numpy" makes
# 1/0 give inf (as NumPy) instead of raising ZeroDivisionError, and lets divisions vectorize.
HELPER = dict(fastmath=False, cache=True, error_model="numpy")
# The sums: HELPER plus leave to reorder the additions, so that they vectorize (module docstring).
REDUCE = dict(HELPER, fastmath={"reassoc"})

# ----------------------------------------------------------------------------------------------------
# Falling back to the reference, and saying so


fallback_counts: Counter = Counter()  # (function, reason) -> how many calls went to the reference


def fallback(function: str, reason: str):
    """Record that `function` handed this call to the reference, and why (a wrong dtype, an empty
    array, ...). ``fallback_counts`` keeps the count and ``registry.which()`` lists the reasons;
    the first call for each reason warns (the reference is correct, only slower: once is enough
    to know that a slow path runs)."""
    fallback_counts[(function, reason)] += 1
    if fallback_counts[(function, reason)] == 1:
        warnings.warn(f"kernels: numba {function} handed a call to the reference ({reason}); "
                      "later calls for this reason do so without a warning", RuntimeWarning,
                      stacklevel=3)


# ----------------------------------------------------------------------------------------------------
# Launching a kernel

def launch(kernel, elements: int, *args):
    """kernel(*args) on the threads a kernel touching `elements` elements gets (the framework's
    thread policy, tinygrad_pt/threads.py: one thread below its size threshold)."""
    return run_on_threads(threads.kernel_threads(elements), kernel, *args)


def run_on_threads(count: int, kernel, *args):
    """kernel(*args) with Numba's thread count set to `count` for the call (Numba's count is per
    calling thread; it is put back afterwards, for any other Numba code in the process). A kernel
    that sizes per-thread scratch reads the same `count` (or more: it is capped at the threads
    Numba started with)."""
    get, put, limit = _thread_count()
    saved = get()
    count = min(count, limit)
    if saved == count:
        return kernel(*args)
    put(count)
    try:
        return kernel(*args)
    finally:
        put(saved)


_count_state: dict = {}


@njit(parallel=True, **HELPER)
def _one_step_each(out):
    """A parallel loop with one trivial iteration per thread: what starting a loop costs."""
    for i in prange(out.shape[0]):
        out[i] = i


def fork_cost(count: int) -> float:
    """Seconds a parallel loop on `count` threads costs beyond the same loop on the calling
    thread: waking the threads and joining them (the median of 9 calls after 3 that warm up, on
    each side; about 2 ms in all on the VM measured). The thread policy's kernel threshold is
    set from it (tinygrad_pt/threads.py)."""
    out = np.zeros(max(count, 2))

    def median_call(n):
        times = []
        for _ in range(12):
            start = time.perf_counter()
            run_on_threads(n, _one_step_each, out)
            times.append(time.perf_counter() - start)
        return statistics.median(times[3:])
    median_call(count)  # the first call compiles (or loads the cache) and starts the threads
    return max(0.0, median_call(count) - median_call(1))


def _thread_count():
    """(get, set, limit) of the calling thread's Numba thread count. The threading layer's own
    two functions where this Numba has them: Numba's public get/set check at every call that the
    layer is up and the count in range, and a small kernel paid 2.6 us for the switch and back
    (0.3 us this way, measured); the layer is up once prepare_numba ran, and `limit` keeps the
    count in range. The public pair otherwise."""
    if not _count_state:
        threads.prepare_numba()
        limit = threads.numba_limit()
        try:
            from numba.np.ufunc import parallel
            get, put = parallel._get_num_threads, parallel._set_num_threads
            put(get())  # launched, and both answer
        except Exception:  # noqa: BLE001 (a Numba without them, or not launched: the public pair)
            get, put = get_num_threads, set_num_threads
        _count_state.update(get=get, put=put, limit=limit)
    return _count_state["get"], _count_state["put"], _count_state["limit"]


# ----------------------------------------------------------------------------------------------------
# a * b + c in one instruction


def muladd(a, b, c):
    """a * b + c for float32 or float64 scalars of one dtype, fused into one FMA instruction (one
    rounding) where the CPU has one, as LLVM's ``llvm.fmuladd`` decides for the machine it
    compiles for: x86-64 from Haswell and Zen 1, and every ARM64 CPU, have it; elsewhere a
    multiply and an add. fastmath=False never fuses on its own; a polynomial written with
    muladd does half the instructions (Horner's rule is a chain of them) and rounds once per
    step instead of twice: vexp ran 1.6x faster with it (and the int32 exponent), the erf GELU
    forward 1.6x (1M float32 elements on one Zen 5 core). The choice is fixed by the compiled
    code, so results repeat run to run on a machine. Plain Python here; inside Numba code the
    overload below is compiled instead."""
    return a * b + c


@intrinsic
def _fmuladd(typingctx, a, b, c):
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        llvm_type = args[0].type
        fn = builder.module.declare_intrinsic(
            "llvm.fmuladd", [llvm_type], ir.FunctionType(llvm_type, [llvm_type] * 3))
        return builder.call(fn, args)

    return a(a, b, c), codegen


@overload(muladd, jit_options=HELPER)
def _muladd_overload(a, b, c):
    if a == b == c and a in (types.float32, types.float64):
        return lambda a, b, c: _fmuladd(a, b, c)
    return None


# ----------------------------------------------------------------------------------------------------
# exp, vectorizable


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float whose bit pattern is `bits` (int32 -> float32, int64 -> float64): C's union."""
    if bits == types.int32:
        result, llvm_type = types.float32, ir.FloatType()
    elif bits == types.int64:
        result, llvm_type = types.float64, ir.DoubleType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_type)

    return result(bits), codegen


# ln 2 split in two (Cody and Waite): k * LN2_HI is exact for the k that occur, so r = t - k ln 2
# keeps the bits that a single rounded ln 2 would lose.
_LOG2E = 1.4426950408889634
_F32_LN2_HI, _F32_LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)
_F64_LN2_HI, _F64_LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
# Below LO the result would be a subnormal number (smaller than the smallest normal float,
# 1.2e-38 / 2.2e-308): vexp gives 0 there. Above HI it gives inf (exp overflows at 88.72 / 709.78).
_F32_LO, _F32_HI = np.float32(-87.33654), np.float32(88.0)
_F64_LO, _F64_HI = -708.3964185322641, 709.0


def vexp(t):
    """exp(t) for a float32 or float64 scalar, in the same dtype, as arithmetic LLVM vectorizes.

    exp(t) = 2^k * exp(r) with k = round(t / ln 2) and |r| <= ln 2 / 2; exp(r) by its Taylor
    series (degree 7 for float32, 13 for float64: truncation below 1e-8 / 1e-17 relative), 2^k
    written directly into the exponent bits. Accurate to about 1 ulp (the tests measure it);
    results below the smallest normal float are 0, NaN stays NaN, -inf gives 0.
    Plain Python here; inside Numba code the overload below is compiled instead.
    """
    return math.exp(t)


def _vexp_f32(t):
    f1 = np.float32(1.0)
    tc = _F32_LO if t < _F32_LO else (_F32_HI if t > _F32_HI else t)  # clamped; NaN stays NaN
    k = np.floor(muladd(tc, np.float32(_LOG2E), np.float32(0.5)))  # np.floor keeps float32
    r = muladd(-k, _F32_LN2_LO, muladd(-k, _F32_LN2_HI, tc))
    # Horner, innermost term 1/7! (written out: a loop here would stop the caller's vectorizing)
    p = muladd(r, np.float32(1 / 5040), np.float32(1 / 720))
    p = muladd(r, muladd(r, muladd(r, p, np.float32(1 / 120)), np.float32(1 / 24)),
               np.float32(1 / 6))
    p = muladd(r, muladd(r, muladd(r, p, np.float32(1 / 2)), f1), f1)
    # 2^k from its bits, (k + bias) in the exponent, all in int32 (|k| <= 127 after the clamp):
    # one float -> int32 conversion per 16 lanes, where int64 took two and a narrowing
    e = p * _float_from_bits(np.int32((np.int32(k) + np.int32(127)) << np.int32(23)))
    if t < _F32_LO:
        e = np.float32(0.0)
    if t > _F32_HI:
        e = np.float32(np.inf)
    return e  # NaN: r and so p are NaN


def _vexp_f64(t):
    tc = _F64_LO if t < _F64_LO else (_F64_HI if t > _F64_HI else t)
    k = np.floor(muladd(tc, _LOG2E, 0.5))
    r = muladd(-k, _F64_LN2_LO, muladd(-k, _F64_LN2_HI, tc))
    p = muladd(r, 1.0 / 6227020800, 1.0 / 479001600)  # Horner, innermost term 1/13!
    p = muladd(r, muladd(r, muladd(r, p, 1.0 / 39916800), 1.0 / 3628800), 1.0 / 362880)
    p = muladd(r, muladd(r, muladd(r, p, 1.0 / 40320), 1.0 / 5040), 1.0 / 720)
    p = muladd(r, muladd(r, muladd(r, p, 1.0 / 120), 1.0 / 24), 1.0 / 6)
    p = muladd(r, muladd(r, muladd(r, p, 1.0 / 2), 1.0), 1.0)
    e = p * _float_from_bits((np.int64(k) + 1023) << 52)
    if t < _F64_LO:
        e = 0.0
    if t > _F64_HI:
        e = np.inf
    return e


@overload(vexp, jit_options=HELPER)
def _vexp_overload(t):
    if t == types.float32:
        return _vexp_f32
    if t == types.float64:
        return _vexp_f64
    return None


# ----------------------------------------------------------------------------------------------------
# Row reductions (see the module docstring: the sums vectorize, the max keeps eight lanes)


@njit(**HELPER)
def row_max(a):
    """max of a 1-D array (length >= 1), in its dtype. -inf entries are fine."""
    n = a.shape[0]
    n8 = n - n % 8
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = a[0]
    for j in range(0, n8, 8):
        m0 = max(m0, a[j])
        m1 = max(m1, a[j + 1])
        m2 = max(m2, a[j + 2])
        m3 = max(m3, a[j + 3])
        m4 = max(m4, a[j + 4])
        m5 = max(m5, a[j + 5])
        m6 = max(m6, a[j + 6])
        m7 = max(m7, a[j + 7])
    m = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for j in range(n8, n):
        m = max(m, a[j])
    return m


@njit(**REDUCE)
def row_sum(a):
    """sum of a 1-D array, accumulated in float64 (returns float64)."""
    s = 0.0
    for j in range(a.shape[0]):
        s += a[j]
    return s


@njit(**REDUCE)
def row_sq_dev(a, mu):
    """sum of (a - mu)^2 over a 1-D array, in float64 (mu a float64): the variance's numerator,
    computed after the mean (two sweeps over a row that is in cache, no cancellation)."""
    s = 0.0
    for j in range(a.shape[0]):
        d = a[j] - mu
        s += d * d
    return s


@njit(**REDUCE)
def row_dot(a, b):
    """sum of a * b over two 1-D arrays of one length, products and sum in float64."""
    s = 0.0
    for j in range(a.shape[0]):
        s += np.float64(a[j]) * b[j]
    return s


@njit(**HELPER)
def shifted_exp(src, dst):
    """dst = exp(src - m) with m the row's max (0 when no entry is finite, see finite_or_zero):
    the first half of a softmax, over a 1-D row, into another row. Returns (m in the row's
    dtype, the sum of dst in float64). For src and dst the same row, shifted_exp_in_place: with
    one array in both places LLVM's overlap check fails and the loop runs scalar (2x slower)."""
    m = finite_or_zero(row_max(src))  # shift: exp(src - m) <= 1 cannot overflow
    for j in range(src.shape[0]):
        dst[j] = vexp(src[j] - m)
    return m, row_sum(dst)


@njit(**HELPER)
def shifted_exp_in_place(row):
    """shifted_exp(row, row), written for one array so that the loop vectorizes."""
    m = finite_or_zero(row_max(row))
    for j in range(row.shape[0]):
        row[j] = vexp(row[j] - m)
    return m, row_sum(row)


def finite_or_zero(m):
    """m, or 0 in m's dtype when m is not finite: the shift of a row that is all -inf (the
    reference's _finite_max), so that such a row gives NaN as 0/0, not as -inf - -inf in exp."""
    return m if math.isfinite(m) else 0.0


@overload(finite_or_zero, jit_options=HELPER)
def _finite_or_zero_overload(m):
    if m == types.float32:
        return lambda m: m if np.isfinite(m) else np.float32(0.0)
    if m == types.float64:
        return lambda m: m if np.isfinite(m) else 0.0
    return None


# ----------------------------------------------------------------------------------------------------
# Preparing arrays for the kernels

# The kernels are compiled once per argument type. To keep that to one signature per dtype, the
# wrappers pass only C-contiguous, writeable arrays of 1 or 2 dimensions and scalars of fixed
# types (float64 or the array's dtype, int64, bool): a transposed or read-only view would
# otherwise be a new type and a new compile of about a second.


def contiguous(a):
    """a as a C-contiguous, writeable array: a itself when it already is, else a copy."""
    if a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(a, order="C")


def as_rows(a):
    """a (..., C) as a C-contiguous, writeable (N, C) array; a view of a where possible."""
    a = contiguous(a)
    return a.reshape(-1, a.shape[-1])


def as_flat(a):
    """a as a C-contiguous, writeable 1-D array; a view of a where possible."""
    return contiguous(a).reshape(-1)


def why_not(*arrays):
    """None when the kernels can take these arrays (NumPy, float32 or float64, all of one dtype,
    none empty), else the reason, for ``fallback``."""
    for a in arrays:
        if not isinstance(a, np.ndarray):
            return f"not a NumPy array ({type(a).__name__})"
    dtype = arrays[0].dtype
    if dtype not in DTYPES:
        return f"dtype {dtype}"
    for a in arrays[1:]:
        if a.dtype != dtype:
            return f"mixed dtypes {dtype} and {a.dtype}"
    if any(a.size == 0 for a in arrays):
        return "empty array"
    return None
