"""tg.set_num_threads / tg.get_num_threads and the per-call thread policy (tinygrad_pt/threads.py).
Speed is the benchmark's business (benchmarks/thread_policy.py); these check what was set."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt import threads


@pytest.fixture
def restore_threads(monkeypatch):
    # Rule 4 (free cores) off: these tests check the counts set, which other processes running
    # beside the test (pytest -n 2) would otherwise lower; free_threads has its own test.
    monkeypatch.setattr(threads, "ADAPTIVE", False)
    saved = threads._requested
    yield
    threads._requested = saved
    threads._blas_state["threads"] = None


def _numpy_blas_threads():
    from threadpoolctl import threadpool_info
    # NumPy's own BLAS (SciPy, once imported, brings another that the products never use)
    pools = [p for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]]
    return {p["num_threads"] for p in pools}


def test_the_default_is_every_usable_core(restore_threads):
    threads._requested = None
    assert tg.get_num_threads() == threads.usable_cores() >= 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", None])
def test_set_num_threads_wants_a_positive_integer(bad, restore_threads):
    with pytest.raises(ValueError, match=r"set_num_threads: expected a positive integer"):
        tg.set_num_threads(bad)


def test_more_threads_than_numba_started_with_is_an_error(restore_threads):
    numba = pytest.importorskip("numba")
    limit = numba.config.NUMBA_NUM_THREADS
    with pytest.raises(ValueError, match=rf"{limit + 1} threads asked for, but Numba started "
                                         rf"with at most {limit}"):
        tg.set_num_threads(limit + 1)


def test_set_num_threads_reaches_blas_per_product(restore_threads):
    pytest.importorskip("threadpoolctl")
    # A product just above the policy's threshold (n x n x n multiply-adds)
    n = round(threads.BLAS_PARALLEL_MIN_FLOP ** (1 / 3)) + 1
    big = tg.ones(n, n)
    tg.set_num_threads(1)
    _ = big @ big
    assert _numpy_blas_threads() == {1}
    tg.set_num_threads(threads.usable_cores())
    _ = big @ big
    assert _numpy_blas_threads() == {threads.usable_cores()}
    small = tg.ones(8, 8)
    _ = small @ small  # a small product runs on one thread whatever the setting
    assert _numpy_blas_threads() == {1}


def test_the_thresholds_decide_the_threads(restore_threads):
    tg.set_num_threads(2) if threads.usable_cores() >= 2 else None
    n = tg.get_num_threads()
    assert threads.blas_threads(threads.BLAS_PARALLEL_MIN_FLOP - 1) == 1
    assert threads.blas_threads(threads.BLAS_PARALLEL_MIN_FLOP) == n
    pytest.importorskip("numba")
    at = threads.kernel_parallel_min_elements()
    assert at >= threads.KERNEL_PARALLEL_MIN_FLOOR
    assert threads.kernel_threads(at - 1) == 1
    assert threads.kernel_threads(at) == n


def test_the_kernel_threshold_pays_for_the_measured_fork(restore_threads, monkeypatch):
    # e elements at c seconds each save (1 - 1/n) e c on n threads; the fork costs f: parallel
    # from e = f / ((1 - 1/n) c), never below the floor; a number set by hand wins
    monkeypatch.setattr(threads, "_fork_cost", {2: 70e-6, 4: 1e-9})
    c = threads.KERNEL_SECONDS_PER_ELEMENT
    assert threads.kernel_parallel_min_elements(2) == math.ceil(70e-6 / (0.5 * c))
    assert threads.kernel_parallel_min_elements(4) == threads.KERNEL_PARALLEL_MIN_FLOOR
    assert threads.kernel_parallel_min_elements(1) == threads.KERNEL_PARALLEL_MIN_FLOOR
    monkeypatch.setattr(threads, "KERNEL_PARALLEL_MIN_ELEMENTS", 12345)
    assert threads.kernel_parallel_min_elements(2) == 12345


def test_the_fork_cost_is_measured():
    pytest.importorskip("numba")
    from tinygrad_pt.kernels.cpu._common import fork_cost
    cost = fork_cost(2)
    assert 0.0 <= cost < 0.05  # seconds: a wake-up and a join, not a hang


def test_a_kernel_runs_on_the_policys_count_and_puts_numbas_back(restore_threads, monkeypatch):
    pytest.importorskip("numba")
    from tinygrad_pt.kernels.cpu import _common, softmax
    get, put, _ = _common._thread_count()
    seen = []
    monkeypatch.setitem(_common._count_state, "put", lambda k: (seen.append(k), put(k)))
    monkeypatch.setitem(_common._count_state, "get", lambda: (seen.append("get"), get())[1])
    tg.set_num_threads(1)
    before = get()
    softmax.softmax_fwd(np.ones((600, 600), np.float32))  # large, but the user said 1 thread
    assert seen and seen[0] == "get"  # the kernel went through the switch
    assert (seen[1] == 1) if len(seen) > 1 else before == 1
    assert get() == before


def _fresh_process(code: str, wait_policy: str | None = None) -> list:
    """The words `code` prints, run in a new interpreter whose OMP_WAIT_POLICY is `wait_policy`
    (None: not set): libgomp reads it only when a process starts Numba's threads."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if wait_policy is not None:
        name, _, value = wait_policy.rpartition("=")  # "GOMP_SPINCOUNT=5000": that variable
        env[name or "OMP_WAIT_POLICY"] = value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_numba_started_by_other_code_first_is_said_once():
    # libgomp reads its wait policy when Numba's threads start; started by other code before
    # the framework's first kernel, they spin (rule 3 cannot apply): a warning names the cause
    # and the remedy, and the reports record the policy the threads really run.
    code = ("import warnings, numba, numpy as np\n"
            "numba.get_num_threads()\n"  # starts the threading layer, as other code might
            "import tinygrad_pt as tg\n"
            "from tinygrad_pt import threads\n"
            "from tinygrad_pt.kernels.cpu import softmax\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    softmax.softmax_fwd(np.ones((700, 700), np.float32))\n"
            "    softmax.softmax_fwd(np.ones((700, 700), np.float32))\n"
            "said = [w for w in seen if 'started by other code' in str(w.message)]\n"
            "print(numba.threading_layer(), len(said),\n"
            "      threads.numba_wait_policy().startswith(\"libgomp's default\"),\n"
            "      threads.kernel_threads(1 << 24))\n")
    out = _fresh_process(code)
    if out[0] != "omp":
        pytest.skip(f"Numba runs the {out[0]} threading layer here, not OpenMP's")
    # ... and the kernels then stay on one thread, however large (their threads would spin)
    assert out[1:] == ["1", "True", "1"]


def test_no_thread_variable_is_left_in_the_environment():
    # A fresh process: import, run a parallel kernel; libgomp got the passive policy, and the
    # environment (what child processes inherit) is as the user left it.
    code = ("import os, numpy as np, tinygrad_pt as tg\n"
            "from tinygrad_pt import threads\n"
            "from tinygrad_pt.kernels.cpu import softmax\n"
            "softmax.softmax_fwd(np.ones((700, 700), np.float32))\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), threads.numba_wait_policy())\n")
    assert _fresh_process(code) == ["None", "PASSIVE"]
    # a user's own choice wins and stays: a policy, or libgomp's spin count without one
    assert _fresh_process(code, wait_policy="ACTIVE") == ["ACTIVE", "ACTIVE"]
    assert _fresh_process(code, wait_policy="GOMP_SPINCOUNT=5000") == [
        "None", "GOMP_SPINCOUNT=5000", "(spin,", "then", "sleep)"]


def test_free_threads_leaves_the_cores_other_processes_hold(restore_threads, monkeypatch):
    monkeypatch.setattr(threads, "ADAPTIVE", True)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "_requested", 4)
    monkeypatch.setattr(threads, "_IDLE_SAMPLE_S", 0.0)  # a fresh sample at every call
    readings = {"now": (1, 1)}  # (running on the machine, of them ours)
    monkeypatch.setattr(threads, "_running_threads", lambda: readings["now"])
    monkeypatch.setattr(threads, "_idle", {"at": -1.0, "others": 0.0})
    assert threads.free_threads() == 4  # only our own thread runs
    readings["now"] = (5, 2)  # three threads of other processes
    for _ in range(6):  # smoothed: it takes a few samples to move
        threads.free_threads()
    assert threads.free_threads() == 1
    assert threads.kernel_threads(1 << 40) == 1
    readings["now"] = (2, 1)  # one other thread
    for _ in range(6):
        threads.free_threads()
    assert threads.free_threads() == 3
    monkeypatch.setattr(threads, "_running_threads", lambda: None)  # no /proc: all cores free
    assert threads.blas_threads(threads.BLAS_PARALLEL_MIN_FLOP) >= 3


def test_running_threads_reads_this_machine():
    counts = threads._running_threads()
    if counts is None:
        pytest.skip("no /proc (not Linux)")
    machine, own = counts
    assert machine >= 1 and 1 <= own <= machine  # this test's thread is running
