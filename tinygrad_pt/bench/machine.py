"""What a benchmark number depends on: the machine, the libraries, the threads, the date."""
from __future__ import annotations

import datetime
import os
import platform
import sys

import numpy as np

__all__ = ["machine_info", "end_of_run"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_ticks() -> tuple | None:
    """(ticks stolen by the hypervisor, all ticks) summed over the CPUs since boot, from Linux's
    /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    return fields[7], sum(fields[:8])  # user nice system idle iowait irq softirq steal


_run = {"ticks": None}  # the CPU ticks when machine_info() was last called: a run's start


def machine_info() -> dict:
    """What the results depend on, as {label: value} (ordered for printing). Also marks the
    start of a run, for ``end_of_run``."""
    _run["ticks"] = _cpu_ticks()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "logical cores": os.cpu_count(),
    }
    if hasattr(os, "getloadavg"):
        info["load average (1, 5, 15 min) at start"] = ", ".join(f"{v:.2f}" for v in
                                                                 os.getloadavg())
    info["python"] = platform.python_version()
    info["numpy"] = np.__version__
    from .. import threads
    info["tg.get_num_threads()"] = threads.get_num_threads()
    info["thread policy"] = (f"one thread below {threads.BLAS_PARALLEL_MIN_FLOP:,} multiply-adds "
                             f"per product / {_kernel_threshold(threads)} per kernel; above, the "
                             "cores other processes leave free"
                             f"{'' if threads.ADAPTIVE else ' (off)'} (tinygrad_pt/threads.py)")
    from ..memory import keeps_freed_memory
    info["freed memory"] = ("kept for reuse (glibc mmap/trim thresholds 32/256 MiB, "
                            "tinygrad_pt/memory.py)" if keeps_freed_memory()
                            else "returned to the OS (malloc's defaults)")
    try:
        import numba  # noqa: PLC0415 (optional for a benchmark that needs none)
        info["numba"] = numba.__version__
        threads.prepare_numba()  # before anything starts Numba's threads (it sets their policy)
        layer = os.environ.get("NUMBA_THREADING_LAYER") or numba.config.THREADING_LAYER
        info["numba threading layer (requested)"] = layer
        info["numba threads: wait policy"] = threads.numba_wait_policy()
    except ImportError:
        info["numba"] = "not installed"
    info.update(_blas_info())
    if "cupy" in sys.modules:
        cupy = sys.modules["cupy"]
        info["cupy"] = cupy.__version__
        try:
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) \
                else str(props["name"])
            info["cuda runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        except Exception as e:  # noqa: BLE001 (a header line must not stop a benchmark)
            info["gpu"] = f"unknown ({e})"
    return info


def end_of_run(info: dict) -> dict:
    """Add what changed while the benchmark ran: the load average at the end, and the share of
    the CPUs' time that the hypervisor gave to other guests since machine_info() ("steal"; on a
    VM whose host is busy, a second core can deliver far less than one, and a thread count's
    timing then says more about the neighbours than about the code)."""
    if hasattr(os, "getloadavg"):
        info["load average (1, 5, 15 min) at end"] = ", ".join(f"{v:.2f}" for v in
                                                               os.getloadavg())
    start, now = _run["ticks"], _cpu_ticks()
    if start is not None and now is not None and now[1] > start[1]:
        stolen = (now[0] - start[0]) / (now[1] - start[1])
        info["CPU time stolen by the hypervisor during the run"] = \
            f"{100 * stolen:.1f}% (/proc/stat steal, all CPUs)"
    return info


# OpenBLAS picks its kernels when it loads, from the CPU or from these variables (some machines
# set them to older kernels, for older OpenBLAS builds: on the Zen 5 VM measured, Haswell's AVX2
# kernels where OpenBLAS itself picks the AVX-512 ones, and float32 products ran 1.6-2x slower).
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _kernel_threshold(threads) -> str:
    """The kernels' threshold as the policy has it here: measured, unless a number was set."""
    try:
        elements = threads.kernel_parallel_min_elements()
    except ImportError:  # no Numba: no kernels to thread
        return "(no Numba)"
    cost = threads._fork_cost.get(threads.get_num_threads())
    if threads.KERNEL_PARALLEL_MIN_ELEMENTS is not None or cost is None:
        return f"{elements:,} elements"
    return (f"{elements:,} elements (measured: a parallel loop on {threads.get_num_threads()} "
            f"threads costs {cost * 1e6:.0f} us more than on one)")


def _blas_info() -> dict:
    """NumPy's BLAS library, version, the kernels it runs and its thread count (threadpoolctl,
    when installed), and the variables that choose OpenBLAS's kernels."""
    info = {"OpenBLAS variables": ", ".join(f"{name}={os.environ[name]}" if name in os.environ
                                            else f"{name} unset" for name in OPENBLAS_VARIABLES)}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return info
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    pools.sort(key=lambda p: "numpy" not in p.get("filepath", ""))  # NumPy's own first
    if not pools:
        return info
    p = pools[0]
    kernels = f", {p['architecture']} kernels" if p.get("architecture") else ""
    return {"numpy BLAS": f"{p.get('internal_api')} {p.get('version')}{kernels}, "
                          f"{p.get('num_threads')} threads", **info}
