"""The training-step comparison against PyTorch, run several times: the spread of the ratio across
whole bench runs on a shared machine, not only within one.

    python benchmarks/bench_repeat.py [--runs 5] [--threads 1 2] [--repeat 12]

Each run is ``tinygrad-pt bench steps --compare torch`` without what only its report shows (the
1-thread column, the GPT profile): tinygrad_pt in this process at its default settings, torch in
a child process with the same thread count, in interleaved rounds;
the runs follow each other, alternating the thread counts. On the 2-core VM one run's ratio moved
by up to 30% from one run to the next (the machine's memory bandwidth and its other tenants
change by the minute), so the verdict on a target is read from the median over runs, and the
lowest and highest run are shown beside it. Writes benchmarks/results/bench_cpu_runs.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine_info, markdown_table, write_results  # noqa: E402

from tinygrad_pt.bench.steps import step_cases  # noqa: E402
from tinygrad_pt.bench.suite import run_bench  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def one_run(threads: int, repeat: int) -> dict:
    """{family: (tinygrad_pt median s, torch median s)} of one bench run."""
    with tempfile.TemporaryDirectory() as out:
        got = run_bench("steps", compare=("torch",), out=out, threads=threads, repeat=repeat,
                        log=lambda *_: None, extras=False)["results"]
    return {name: (row["tinygrad_pt"]["median"], got["torch_steps"][name]["median"])
            for name, row in got["steps"].items() if name in got["torch_steps"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=12, help="timed steps per run and framework")
    args = ap.parse_args()
    info = machine_info()
    # torch's version from its metadata: importing torch here would load its thread pool into
    # the process that times tinygrad_pt (bench/worker.py says why that is avoided)
    from importlib.metadata import PackageNotFoundError, version
    try:
        info["torch"] = version("torch")
    except PackageNotFoundError:
        info["torch"] = "not installed (no torch rows)"
    info["threads (tinygrad_pt: tg.set_num_threads; torch: intra-op)"] = " and ".join(
        map(str, args.threads))
    runs = {n: [] for n in args.threads}
    for r in range(args.runs):
        for n in args.threads:
            print(f"run {r + 1} of {args.runs}, {n} thread(s)", flush=True)
            runs[n].append(one_run(n, args.repeat))
    if hasattr(os, "getloadavg"):
        info["load average (1, 5, 15 min) at end"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    sections = []
    for n, results in runs.items():
        rows = []
        for name in step_cases("cpu"):
            ratios = sorted(tg / th for tg, th in (res[name] for res in results if name in res))
            if not ratios:
                continue
            tg_ms = statistics.median(res[name][0] for res in results) * 1e3
            th_ms = statistics.median(res[name][1] for res in results) * 1e3
            rows.append([name, f"{tg_ms:.3g}", f"{th_ms:.3g}",
                         f"{statistics.median(ratios):.2f}x",
                         f"{ratios[0]:.2f}x - {ratios[-1]:.2f}x",
                         " ".join(f"{x:.2f}" for x in ratios)])
        sections.append((f"{n} thread{'s' if n > 1 else ''}", markdown_table(
            ["model", "tinygrad_pt ms (median of runs)", "torch ms (median of runs)",
             "ratio, median of runs", "lowest - highest run", "every run's ratio, sorted"],
            rows)))
    sections.append(("How it was measured", (
        f"{args.runs} runs of `tinygrad-pt bench steps --compare torch --repeat {args.repeat}` "
        "(run_bench(..., extras=False): no 1-thread column, no GPT profile) "
        f"per thread count ({', '.join(map(str, args.threads))}), one after the other, "
        "alternating the thread counts. Within a run: tinygrad_pt at its default settings in "
        "the bench process, torch in a child process with the same threads, in interleaved "
        "rounds (bench/suite.py); a run's ratio is the ratio of its two medians. Ratios are "
        "tinygrad_pt / torch: below 1 is faster.")))
    path = os.path.join(RESULTS, "bench_cpu_runs.md")
    print(write_results(path, "Training steps against PyTorch over repeated bench runs (CPU)",
                        info, sections))
    print("wrote", path)


if __name__ == "__main__":
    main()
