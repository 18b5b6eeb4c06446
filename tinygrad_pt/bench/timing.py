"""Timing that a benchmark can trust: warm-up, repeats, medians, and device clocks.

- ``time_calls({name: fn})``: times several zero-argument callables in one loop, alternating
  between them (a load change on a shared machine hits every one alike), after warm-up calls that
  are not counted. Compare implementations by the ratio of medians taken in one such call.
- ``Clock``: how one call is timed. On the CPU, wall time (``time.perf_counter``: the kernels are
  parallel, so CPU time would count every thread). On a GPU, CUDA events recorded on the stream
  around the call, after a synchronisation, so the time is the GPU's and not the host's queueing
  time (``cupy_clock``, ``torch_cuda_clock``).
- ``summarize(times)``: median, min, quartiles.
"""
from __future__ import annotations

import statistics
import time

__all__ = ["Clock", "wall_clock", "cupy_clock", "torch_cuda_clock", "time_calls", "summarize",
           "first_call_seconds"]


class Clock:
    """Times one call of a zero-argument callable, in seconds."""

    def __call__(self, fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


wall_clock = Clock()


class _EventClock(Clock):
    """CUDA events around the call: synchronise, record start, call, record end, wait for end."""

    def __init__(self, event, synchronize):
        self.event, self.synchronize = event, synchronize

    def __call__(self, fn) -> float:
        self.synchronize()  # nothing queued earlier may land in this measurement
        start, end = self.event(), self.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return self.elapsed_ms(start, end) / 1e3


def cupy_clock() -> Clock:
    import cupy

    clock = _EventClock(cupy.cuda.Event, cupy.cuda.Device().synchronize)
    clock.elapsed_ms = cupy.cuda.get_elapsed_time
    return clock


def torch_cuda_clock() -> Clock:
    import torch

    clock = _EventClock(lambda: torch.cuda.Event(enable_timing=True), torch.cuda.synchronize)
    clock.elapsed_ms = lambda start, end: start.elapsed_time(end)
    return clock


def summarize(times) -> dict:
    """{"median", "min", "p25", "p75", "times"} of a list of seconds."""
    ts = sorted(times)
    q = statistics.quantiles(ts, n=4, method="inclusive") if len(ts) > 1 else [ts[0]] * 3
    return {"median": statistics.median(ts), "min": ts[0], "p25": q[0], "p75": q[2],
            "times": list(times)}


def time_calls(calls: dict, warmup: int = 2, repeat: int = 7, budget_s: float | None = None,
               clock: Clock = wall_clock) -> dict:
    """Time each zero-argument callable in `calls`, alternating between them.

    warmup: untimed calls of each first (caches, page faults, a JIT's first call).
    repeat: timed calls of each; with budget_s, fewer (at least 3) when one round of calls would
        take longer than budget_s / repeat.
    clock: how a call is timed (``wall_clock``, or a CUDA event clock on a GPU).
    Returns {name: summarize(times)}.
    """
    first = {}
    for name, fn in calls.items():
        for k in range(warmup):
            t = clock(fn)
            if k == 0:
                first[name] = t
                if t > 1.0:  # a call this long is its own warm-up
                    break
    if budget_s is not None and first:
        round_s = sum(first.values())
        repeat = max(3, min(repeat, int(budget_s / max(round_s, 1e-9))))
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            times[name].append(clock(fn))
    return {name: summarize(ts) for name, ts in times.items()}


def first_call_seconds(fn) -> tuple:
    """(wall, CPU) seconds of one call: for a JIT's first call, compile (or cache load) plus one
    run. Compiling is single-threaded, so its CPU time hardly depends on the machine's load."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0
