"""How many threads the framework computes on, and which op gets them: ``tg.set_num_threads(n)``.

Two thread pools do the CPU's work: NumPy's BLAS (OpenBLAS, with its own pthreads) for the
matrix products, and Numba's OpenMP threads (GNU libgomp) for the hand-written kernels. They
cannot share threads, and each pool's idle threads wait for the next call by spinning for a
while; so when both pools run wide, one pool's spinning threads hold the cores that the other
pool's threads need, and a parallel call waits for the scheduler. On a small machine that made
every training step slower with two threads than with one (the measurement, with the machine:
benchmarks/results/thread_policy_cpu.md).

The policy, applied per call, so that a user never needs an environment variable:

1. An op runs parallel only when it takes long enough on one core (a few milliseconds) that
   waking the threads, and waiting for one the scheduler put aside, cannot cost more than the
   threads save: a matrix product from ``BLAS_PARALLEL_MIN_FLOP`` multiply-adds, a Numba kernel
   from ``KERNEL_PARALLEL_MIN_ELEMENTS`` elements. Below that the calling thread does it alone
   and no pool wakes. The small models' steps are made of such ops; a big GPT's are not.
2. The count is one number for both pools: ``set_num_threads(n)`` is the most threads any op
   uses (as ``torch.set_num_threads``), by default every core this process may run on.
3. Numba's OpenMP threads sleep as soon as a loop ends (libgomp's passive wait policy), so that
   they never spin on the cores BLAS is about to use. libgomp reads that policy once, when Numba
   loads it: ``prepare_numba`` sets it for that moment only and restores the environment, so child
   processes see the user's environment and a user's own ``OMP_WAIT_POLICY`` wins.

On 8-64 cores the same rules hold, with the thresholds as measured there: the fixed cost of a
parallel call (a wake-up and a join) grows slowly with the thread count, the work of a big
product or attention grows with the model, so more ops cross the thresholds on bigger models
while the small ones stay on one thread; what stays is that the two pools are never both woken
for work that one thread finishes sooner.
"""
from __future__ import annotations

import os

__all__ = ["set_num_threads", "get_num_threads"]

# The thresholds say: go wide only for a call that takes a few milliseconds on one core. The fixed
# cost of a parallel call on an idle machine is microseconds, but on a busy one (a second job,
# `pytest -n 2`, a browser) a thread that is descheduled holds the whole call up for a scheduler
# tick, 1 to 4 ms, and both pools' threads then queue for the same cores: measured on 2 cores at
# load 3.5 to 4 (benchmarks/results/thread_policy_cpu.md, the settings side by side), the GAN step
# with every op wide took 234 ms against 12.4 ms with this policy, the GPT step 1.46 s against
# 0.20 s. A call of several milliseconds loses at most a tick and gains up to the thread count.
#
# 2^28 multiply-adds (e.g. 2048 x 256 x 512): about 5 ms of single-core sgemm. The bench's
# models stay below it (the small GPT's largest product, 2048 x 128 x 512, is 2^27: wide, it lost
# on the busy machine); a GPT of width 512 (2048 x 512 x 2048 in its MLP) is 2^31.
BLAS_PARALLEL_MIN_FLOP = 1 << 28
# 2^22 elements (16 MiB of float32) through a memory-bound kernel: a few milliseconds on one core.
KERNEL_PARALLEL_MIN_ELEMENTS = 1 << 22

_requested: int | None = None  # set_num_threads' value; None: every usable core
_blas_state = {"controllers": None, "threads": None}  # threadpoolctl's handles, the count set
_numba_state = {"prepared": False}


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


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
    limit = _numba_limit()
    if limit is not None and n > limit:
        raise ValueError(f"set_num_threads: {n} threads asked for, but Numba started with at most "
                         f"{limit} (its NUMBA_NUM_THREADS, by default the machine's cores)")
    _requested = n
    _blas_state["threads"] = None  # the next product sets BLAS's count afresh


def _numba_limit() -> int | None:
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


def blas_threads(flop: int) -> int:
    """The BLAS threads for a product of `flop` multiply-adds, by rule 1."""
    return get_num_threads() if flop >= BLAS_PARALLEL_MIN_FLOP else 1


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
    """The Numba threads for a kernel touching `elements` elements, by rule 1."""
    return get_num_threads() if elements >= KERNEL_PARALLEL_MIN_ELEMENTS else 1


def prepare_numba() -> None:
    """Start Numba's thread pool under the passive wait policy (rule 3), once per process.

    Called by the CPU kernels before their first parallel call. The variable is set only while
    libgomp loads and reads it, then the environment is put back as it was.
    """
    if _numba_state["prepared"]:
        return
    _numba_state["prepared"] = True
    user_set = "OMP_WAIT_POLICY" in os.environ
    if not user_set:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    _numba_state["policy"] = os.environ["OMP_WAIT_POLICY"]
    try:
        from numba.np.ufunc import parallel
        parallel._launch_threads()  # loads the threading layer (libgomp reads its variables)
    except Exception:  # noqa: BLE001 (a Numba without this hook: the first parallel call loads it)
        return  # leave the variable set, so that the first call still reads it
    if not user_set:
        del os.environ["OMP_WAIT_POLICY"]


def numba_wait_policy() -> str:
    """The wait policy the Numba threads run (or will run) with, for reports."""
    return _numba_state.get("policy") or os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
