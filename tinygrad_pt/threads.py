"""How many threads the framework computes on, and which op gets them: ``tg.set_num_threads(n)``.

Two thread pools do the CPU's work: NumPy's BLAS (OpenBLAS, with its own pthreads) for the
matrix products, and Numba's OpenMP threads (GNU libgomp) for the hand-written kernels. (Kernels
that call BLAS from inside a parallel loop, attention at short T, call SciPy's BLAS on one thread
per call: the count is set for every BLAS library loaded, SciPy's as NumPy's.) They
cannot share threads, and each pool's idle threads wait for the next call by spinning for a
while; so when both pools run wide, one pool's spinning threads hold the cores that the other
pool's threads need, and a parallel call waits for the scheduler; the same happens when another
process holds a core. On a small, busy machine that made every training step slower with two
threads than with one, while on the same machine quiet two threads were faster (the measurements,
with the machine: benchmarks/results/thread_policy_cpu.md).

The policy, applied per call, so that a user never needs an environment variable:

1. An op runs parallel only when it is large enough to pay for waking the threads: a matrix
   product from ``BLAS_PARALLEL_MIN_FLOP`` multiply-adds, a Numba kernel from
   ``kernel_parallel_min_elements()`` elements, which is measured on the machine it runs on (the
   cost of a parallel loop there, see below). Below that the calling thread does it alone.
2. The count is one number for both pools: ``set_num_threads(n)`` is the most threads any op
   uses (as ``torch.set_num_threads``), by default every core this process may run on.
3. Numba's OpenMP threads sleep as soon as a loop ends (libgomp's passive wait policy), so that
   they never spin on the cores BLAS is about to use. libgomp reads that policy once, when Numba
   loads it: ``prepare_numba`` sets it for that moment only and restores the environment, so child
   processes see the user's environment and a user's own ``OMP_WAIT_POLICY`` wins. If other code
   started Numba's threads first (even ``numba.get_num_threads()``), libgomp has already chosen
   its spinning default, which cannot be undone (measured: the VAE step 8.0 ms on 2 threads
   against 1.1 ms on one). Then the kernels run on the calling thread alone, so that Numba's
   threads never wake to spin, BLAS keeps its threads, and it is said once, in a warning, and in
   the reports.
4. Only free cores: a parallel call uses the cores that other processes' running threads leave
   free (``free_threads``, sampled from /proc every 0.2 s and smoothed: OpenMP's "dynamic"
   threads, done per call). On a busy machine (a second job, ``pytest -n 2``) a parallel call
   waits for its slowest thread, and a thread that shares a core with another process's waits a
   scheduler tick: there, one thread per call is the fast configuration, and rule 4 finds it.

On 8-64 cores the same rules hold. The kernels' threshold is measured for the thread count in
use (the fixed cost of a parallel call, a wake-up and a join, grows slowly with the threads,
while the work of a big product or attention grows with the model); the product threshold is a
constant measured on 2 cores, and would be measured there in the same way (whole steps, one
thread against many, alternating in one process); rule 4 matters more on a shared node, where
other jobs' threads come and go.
"""
from __future__ import annotations

import math
import os
import time

__all__ = ["set_num_threads", "get_num_threads"]

# The thresholds: below them a call is too small to pay for going wide. Above them a call uses
# the free cores (rule 4). Measured on 2 cores (benchmarks/results/thread_policy_cpu.md): quiet,
# going wide made the GAN step 1.5x and the GPT step 1.2x faster than one thread; with one core
# busy elsewhere, wide calls made them 1.4x slower (a descheduled thread holds up every parallel
# call for a scheduler tick), and at load 4 to 12 up to 20x, which rule 4 avoids.
# Products: from 2^22 multiply-adds (4M; about 25 us on one core with AVX-512 kernels). On the
# Zen 5 VM, whole steps alternating the settings in one process (16-40 rounds): with products
# from 2^16 wide, the AE, DAE and VAE steps (all their products 2^18-2^21) ran 1.00-1.17x the
# time they took on one thread, though the same products alone ran 0.66-0.75x on two threads;
# from 2^22, those steps run what one thread runs (1.00x) and the GAN (products of 2^22 and
# 2^25) keeps most of its gain (0.84x against 0.80x).
BLAS_PARALLEL_MIN_FLOP = 1 << 22
KERNEL_PARALLEL_MIN_FLOOR = 1 << 14
# The kernels' threshold. None: measured per process (kernel_parallel_min_elements); a number
# (benchmarks/thread_policy.py, tests) is used as it is.
KERNEL_PARALLEL_MIN_ELEMENTS: int | None = None
# What a kernel's element costs on one thread, for the cheapest kernels (measured on a Zen 5 VM
# core: AdamW 0.27, layer norm's forward 0.32 ns; softmax 1 ns): the threshold assumes the
# cheapest, so that no kernel goes parallel before it can pay.
KERNEL_SECONDS_PER_ELEMENT = 0.3e-9
# Rule 4: use only the cores that other processes leave free (see free_threads).
ADAPTIVE = True

_requested: int | None = None  # set_num_threads' value; None: every usable core
_blas_state = {"controllers": None, "threads": None}  # threadpoolctl's handles, the count set
_numba_state = {"prepared": False, "spins": False}


_cores = {"at": -1.0, "n": 1}  # usable_cores' last reading, and when


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count). Read
    again at most every _IDLE_SAMPLE_S seconds: every op asks, and the system call took longer
    (1 us) than the rest of the policy's per-call work."""
    now = time.monotonic()
    if now - _cores["at"] >= _IDLE_SAMPLE_S:
        _cores["at"] = now
        if hasattr(os, "sched_getaffinity"):
            _cores["n"] = max(1, len(os.sched_getaffinity(0)))
        else:
            _cores["n"] = max(1, os.cpu_count() or 1)
    return _cores["n"]


def get_num_threads() -> int:
    """The most threads any op uses (``set_num_threads``'s value, by default the usable cores)."""
    return usable_cores() if _requested is None else _requested


def set_num_threads(n: int) -> None:
    """Let ops use up to `n` threads, in every pool the framework uses (NumPy's BLAS and the
    Numba kernels), as ``torch.set_num_threads`` does. Small ops stay on one thread whatever `n`
    is (see the module docstring); ``set_num_threads(1)`` keeps everything on the calling thread.
    """
    global _requested
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    limit = numba_limit()
    if limit is not None and n > limit:
        raise ValueError(f"set_num_threads: {n} threads asked for, but Numba started with at most "
                         f"{limit} (its NUMBA_NUM_THREADS, by default the machine's cores)")
    _requested = n
    _blas_state["threads"] = None  # the next product sets BLAS's count afresh


def numba_limit() -> int | None:
    """Numba's maximum thread count, if Numba is installed (importing it costs ~0.3 s once)."""
    try:
        import numba
    except ImportError:
        return None
    return int(numba.config.NUMBA_NUM_THREADS)


# ----------------------------------------------------------------------------------------------------
# BLAS: one count per product


def _blas_controllers() -> list:
    """threadpoolctl's handles on NumPy's BLAS; [] without threadpoolctl (then BLAS keeps its
    own default and only the Numba half of the policy applies)."""
    if _blas_state["controllers"] is None:
        try:
            from threadpoolctl import ThreadpoolController
            found = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except Exception:  # noqa: BLE001 (no threadpoolctl, or a BLAS it cannot drive)
            found = []
        _blas_state["controllers"] = found
    return _blas_state["controllers"]


# ----------------------------------------------------------------------------------------------------
# How many cores are free: the threads of other processes that are running now


_IDLE_SAMPLE_S = 0.2  # how often the count is looked at again (a read of a few /proc files)
_idle = {"at": -1.0, "others": 0.0}


def _running_threads() -> tuple | None:
    """(threads running on the machine now, this process's own running threads), from Linux's
    /proc; None elsewhere (then every core counts as free)."""
    try:
        with open("/proc/loadavg") as f:
            machine = int(f.read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    own += f.read().rsplit(")", 1)[1].split()[0] == "R"
            except OSError:
                continue  # the thread ended between the listing and the read
        return machine, own
    except (OSError, ValueError, IndexError):
        return None


def free_threads() -> int:
    """How many of get_num_threads() threads an op may use now: the cores not taken by other
    processes' running threads (rule 4), at least 1. Sampled at most every _IDLE_SAMPLE_S seconds
    and smoothed, so that one reading does not flip the count, and cheap between samples."""
    n = get_num_threads()
    if not ADAPTIVE or n == 1:
        return n
    now = time.monotonic()
    if now - _idle["at"] >= _IDLE_SAMPLE_S:
        _idle["at"] = now
        counts = _running_threads()
        if counts is not None:
            others = max(0, counts[0] - counts[1])
            _idle["others"] = 0.5 * _idle["others"] + 0.5 * others
    return max(1, min(n, usable_cores() - int(_idle["others"] + 0.5)))


def blas_threads(flop: int) -> int:
    """The BLAS threads for a product of `flop` multiply-adds, by rules 1 and 4."""
    return free_threads() if flop >= BLAS_PARALLEL_MIN_FLOP else 1


def blas_library_loaded() -> None:
    """Say that a BLAS library was loaded after the framework last looked (SciPy's, which the
    Numba kernels' ``np.dot`` calls): the next product finds every library again and sets each."""
    _blas_state["controllers"] = None
    _blas_state["threads"] = None


def prepare_blas(flop: int) -> None:
    """Set NumPy's BLAS to the threads a product of `flop` multiply-adds gets. A ctypes call
    (under a microsecond) only when the count changes, which consecutive products rarely do."""
    want = blas_threads(flop)
    if _blas_state["threads"] == want:
        return
    for controller in _blas_controllers():
        controller.set_num_threads(want)
    _blas_state["threads"] = want


# ----------------------------------------------------------------------------------------------------
# Numba: one count per kernel call


def kernel_threads(elements: int) -> int:
    """The Numba threads for a kernel touching `elements` elements, by rules 1 and 4; one when
    Numba's threads spin (rule 3's exception: then a parallel kernel would leave them spinning
    on the cores BLAS uses next)."""
    prepare_numba()
    if elements < KERNEL_PARALLEL_MIN_FLOOR or _numba_state["spins"]:
        return 1
    n = free_threads()
    return n if n > 1 and elements >= kernel_parallel_min_elements(n) else 1


_fork_cost: dict = {}  # threads -> seconds a parallel loop on them costs beyond one thread's


def kernel_parallel_min_elements(threads: int | None = None) -> int:
    """The elements from which a Numba kernel runs on `threads` threads (by default the most it
    may use): where the time it saves can pay for starting the loop on them.

    A kernel of e elements takes about e * c seconds on one thread (c =
    KERNEL_SECONDS_PER_ELEMENT) and on n threads saves at most (1 - 1/n) of that, while waking
    and joining the threads costs f seconds, measured here once per thread count (``fork_cost``):
    it goes parallel from e = f / ((1 - 1/n) c), and never below KERNEL_PARALLEL_MIN_FLOOR. f is
    the machine's: Numba's threads sleep between loops (rule 3), and waking them took 45-110 us
    on the 2-core VM this was measured on (an empty loop: 70 us, against 3 us on the calling
    thread). With a fixed 2^14 there, kernels of 2^14-2^18 elements ran 2.4-9x slower on 2
    threads than on one.
    """
    if KERNEL_PARALLEL_MIN_ELEMENTS is not None:
        return KERNEL_PARALLEL_MIN_ELEMENTS
    n = threads or get_num_threads()
    if n <= 1:
        return KERNEL_PARALLEL_MIN_FLOOR
    if n not in _fork_cost:
        from .kernels.cpu._common import fork_cost  # here: Numba loads only where kernels run
        _fork_cost[n] = fork_cost(n)
    return max(KERNEL_PARALLEL_MIN_FLOOR,
               math.ceil(_fork_cost[n] / ((1 - 1 / n) * KERNEL_SECONDS_PER_ELEMENT)))


def prepare_numba() -> None:
    """Start Numba's thread pool under the passive wait policy (rule 3), once per process.

    Called by the CPU kernels before their first parallel call. The variable is set only while
    libgomp loads and reads it, then the environment is put back as it was.
    """
    if _numba_state["prepared"]:
        return
    _numba_state["prepared"] = True
    if _numba_started_elsewhere():
        return
    # a user's own libgomp wait setting wins: the policy, or a spin count without one
    user_set = "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ
    if not user_set:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    _numba_state["policy"] = os.environ.get("OMP_WAIT_POLICY") or \
        f"GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']} (spin, then sleep)"
    try:
        from numba.np.ufunc import parallel
        parallel._launch_threads()  # loads the threading layer (libgomp reads its variables)
    except Exception:  # noqa: BLE001 (a Numba without this hook: the first parallel call loads it)
        return  # leave the variable set, so that the first call still reads it
    if not user_set:
        del os.environ["OMP_WAIT_POLICY"]


def _numba_started_elsewhere() -> bool:
    """True when other code started Numba's OpenMP threads before the framework's first kernel:
    libgomp has then read its wait policy already (without OMP_WAIT_POLICY: its default, which
    spins), rule 3 cannot apply, and the Numba threads spin against BLAS's. Said once, in a
    warning that names the remedy; the policy the threads run is recorded for the reports."""
    try:
        from numba.np.ufunc import parallel
        started = bool(parallel._is_initialized) and parallel.threading_layer() == "omp"
    except Exception:  # noqa: BLE001 (a Numba without these names: nothing known, nothing said)
        return False
    if not started:
        return False
    policy = os.environ.get("OMP_WAIT_POLICY")
    _numba_state["policy"] = policy or "libgomp's default (spins): started before tinygrad_pt"
    if policy is None:
        _numba_state["spins"] = True
        _numba_state["policy"] += "; the kernels run on one thread"
        import warnings
        warnings.warn(
            "tinygrad_pt: Numba's OpenMP threads were started by other code before the "
            "framework's first kernel, with libgomp's default wait policy, under which they "
            "spin against BLAS's threads (measured: a small model's step several times "
            "slower on 2 cores), so the framework's kernels run on one thread (BLAS keeps its "
            "threads). To give the kernels their threads, import and use tinygrad_pt first, "
            "or set OMP_WAIT_POLICY=PASSIVE before Numba starts.", RuntimeWarning, stacklevel=4)
    return True


def numba_wait_policy() -> str:
    """The wait policy the Numba threads run (or will run) with, for reports."""
    return _numba_state.get("policy") or os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
