"""The training-step comparison against PyTorch, run several times: the spread of the ratio across
whole bench runs on a shared machine, not only within one.

    python benchmarks/bench_repeat.py [--runs 5] [--threads 1 2] [--repeat 12] [--ops ...]

Each run is ``tinygrad-pt bench all --compare torch`` without the GPT profile, its ops limited to
``--ops`` (by default the ops at the bench GPT's own shapes: its layer norm, its tanh GELU, and
the exact GELU at the same size; ``--ops`` with no names: steps only): tinygrad_pt in
this process at its default settings, torch in a child process with the same thread count, in
interleaved rounds, and in the runs with more than one thread tinygrad_pt also after
``tg.set_num_threads(1)``, alternating call by call with the default (the target "more threads
are never slower than one" is read from that ratio, taken within a run);
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
from common import end_of_run, machine_info, markdown_table, write_results  # noqa: E402

from tinygrad_pt.bench.steps import step_cases  # noqa: E402
from tinygrad_pt.bench.suite import run_bench  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


GPT_OPS = ("gpt_layer_norm", "gpt_gelu_tanh", "gelu")


def one_run(threads: int, repeat: int, ops=GPT_OPS) -> tuple:
    """({row: (tinygrad_pt median s, torch median s)}, {family: tinygrad_pt's median at
    `threads` / its median on 1 thread}) of one bench run, rows being the steps and the `ops`;
    the second is empty at 1 thread."""
    with tempfile.TemporaryDirectory() as out:
        got = run_bench("all" if ops else "steps", compare=("torch",), out=out, threads=threads,
                        repeat=repeat, ops=list(ops) or None, log=lambda *_: None, extras=False,
                        one_thread=threads > 1)["results"]
    against_torch = {}
    for suite in ("steps", "ops"):
        against_torch.update({name: (row["tinygrad_pt"]["median"],
                                     got[f"torch_{suite}"][name]["median"])
                              for name, row in got[suite].items()
                              if name in got[f"torch_{suite}"]})
    against_one = {name: row["tinygrad_pt"]["median"] / row["tinygrad_pt_1t"]["median"]
                   for name, row in got["steps"].items() if "tinygrad_pt_1t" in row}
    return against_torch, against_one


def spread(ratios) -> list:
    """[median, "lowest - highest", every ratio sorted] cells of a table row."""
    ratios = sorted(ratios)
    return [f"{statistics.median(ratios):.2f}x", f"{ratios[0]:.2f}x - {ratios[-1]:.2f}x",
            " ".join(f"{x:.2f}" for x in ratios)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=12, help="timed steps per run and framework")
    ap.add_argument("--ops", nargs="*", default=list(GPT_OPS),
                    help=f"ops timed in each run as well (default: {' '.join(GPT_OPS)})")
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
    against_one = {n: [] for n in args.threads if n > 1}
    for r in range(args.runs):
        for n in args.threads:
            print(f"run {r + 1} of {args.runs}, {n} thread(s)", flush=True)
            torch_pairs, own = one_run(n, args.repeat, args.ops)
            runs[n].append(torch_pairs)
            if n > 1:
                against_one[n].append(own)
    end_of_run(info)
    sections = []
    for n, results in runs.items():
        rows = []
        for name in list(step_cases("cpu")) + list(args.ops):
            ratios = [tg / th for tg, th in (res[name] for res in results if name in res)]
            if not ratios:
                continue
            tg_ms = statistics.median(res[name][0] for res in results if name in res) * 1e3
            th_ms = statistics.median(res[name][1] for res in results if name in res) * 1e3
            label = name if name in step_cases("cpu") else f"op: {name}"
            rows.append([label, f"{tg_ms:.3g}", f"{th_ms:.3g}"] + spread(ratios))
        sections.append((f"{n} thread{'s' if n > 1 else ''}", markdown_table(
            ["step or op", "tinygrad_pt ms (median of runs)", "torch ms (median of runs)",
             "ratio, median of runs", "lowest - highest run", "every run's ratio, sorted"],
            rows)))
    for n, results in against_one.items():
        rows = [[name] + spread([res[name] for res in results if name in res])
                for name in step_cases("cpu") if any(name in res for res in results)]
        sections.append((f"tinygrad_pt on {n} threads against itself on 1 thread", markdown_table(
            ["model", f"{n} threads / 1 thread, median of runs", "lowest - highest run",
             "every run's ratio, sorted"], rows) + (
            f"\n\nIn the same {n}-thread runs: the step at the default settings and the same "
            "step after tg.set_num_threads(1), alternating call by call, in the rounds of the "
            "torch comparison. Below 1: the threads help.")))
    sections.append(("How it was measured", (
        f"{args.runs} runs of `tinygrad-pt bench {'all' if args.ops else 'steps'} --compare "
        f"torch --repeat {args.repeat}" + (f" --ops {' '.join(args.ops)}" if args.ops else "")
        + "` (run_bench(..., extras=False, one_thread=True): no GPT profile; the 1-thread "
        "column in the runs with more threads; an op is one forward + backward through the "
        "Tensor API, as bench/ops.py builds it) "
        f"per thread count ({', '.join(map(str, args.threads))}), one after the other, "
        "alternating the thread counts. Within a run: tinygrad_pt at its default settings in "
        "the bench process, torch in a child process with the same threads, in interleaved "
        "rounds (bench/suite.py); a run's ratio is the ratio of its two medians. Ratios are "
        "tinygrad_pt / torch: below 1 is faster.")))
    path = os.path.join(RESULTS, "bench_cpu_runs.md")
    print(write_results(path, "Training steps and the GPT's ops against PyTorch over repeated "
                        "bench runs (CPU)",
                        info, sections))
    print("wrote", path)


if __name__ == "__main__":
    main()
