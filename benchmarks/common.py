"""Shared pieces of the benchmark scripts: the machine header, timing, Markdown tables.

    from common import machine_info, time_calls, markdown_table, write_results

- ``machine_info()``: CPU model, cores, load average, Numba threads and threading layer, Python /
  NumPy / Numba (and CuPy, when importable) versions, the date: the context a number needs.
- ``time_calls({name: fn})``: times several zero-argument callables in one loop, alternating
  between them (so a load change on a shared machine hits every one alike), after warm-up calls
  that are not counted; returns the median, min and all times of each. Compare implementations
  by the ratio of medians taken in one such call.
- ``markdown_table(headers, rows)`` and ``write_results(path, title, info, sections)``.

Timing is wall-clock (``time.perf_counter``): the kernels are parallel, so CPU time would count
every thread. A benchmark states the sizes and what a "byte moved" or a "flop" means for it.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """What the results depend on, as {label: value} (ordered for printing)."""
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
    try:
        import numba  # noqa: PLC0415 (optional for a benchmark that needs none)
        info["numba"] = numba.__version__
        info["numba threads"] = numba.get_num_threads()
        layer = os.environ.get("NUMBA_THREADING_LAYER") or numba.config.THREADING_LAYER
        info["numba threading layer (requested)"] = layer
        info["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "unset")
    except ImportError:
        info["numba"] = "not installed"
    if "cupy" in sys.modules:
        info["cupy"] = sys.modules["cupy"].__version__
    return info


def time_calls(calls: dict, warmup: int = 2, repeat: int = 7,
               budget_s: float | None = None) -> dict:
    """Time each zero-argument callable in `calls`, alternating between them.

    warmup: untimed calls of each first (caches, page faults, a JIT's first call).
    repeat: timed calls of each; with budget_s, fewer (at least 3) when one round of calls would
        take longer than budget_s / repeat.
    Returns {name: {"median": s, "min": s, "times": [s, ...]}}.
    """
    first = {}
    for name, fn in calls.items():
        for k in range(warmup):
            t0 = time.perf_counter()
            fn()
            if k == 0:
                first[name] = time.perf_counter() - t0
                if first[name] > 1.0:  # a call this long is its own warm-up
                    break
    if budget_s is not None and first:
        round_s = sum(first.values())
        repeat = max(3, min(repeat, int(budget_s / max(round_s, 1e-9))))
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: {"median": statistics.median(ts), "min": min(ts), "times": ts}
            for name, ts in times.items()}


def first_call_seconds(fn) -> tuple:
    """(wall, CPU) seconds of one call: for a JIT's first call, compile (or cache load) plus one
    run. Compiling is single-threaded, so its CPU time hardly depends on the machine's load."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def markdown_table(headers, rows) -> str:
    """A GitHub Markdown table; cells are str()-ed, numbers right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in cells) and bool(cells) for i in range(len(headers))]

    def line(values):
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w)
                                 for v, w, num in zip(values, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                          for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line([str(h) for h in headers]), rule] + [line(r) for r in cells])


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x"))
        return True
    except ValueError:
        return text in ("", "-")


def info_lines(info: dict) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in info.items())


def write_results(path, title: str, info: dict, sections) -> str:
    """Write a Markdown report: title, the machine lines, then (heading, text) sections.
    Returns the text (also for printing)."""
    parts = [f"# {title}", "", info_lines(info), ""]
    for heading, text in sections:
        parts += [f"## {heading}", "", text.rstrip(), ""]
    text = "\n".join(parts)
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return text


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}" if seconds < 1 else f"{seconds * 1e3:.0f}"
