"""Which thread setting makes the training steps fastest on this machine: the measurement behind
the library's default thread policy (tinygrad_pt/threads.py).

Each setting runs in a fresh process (a thread pool, once started, keeps its threads and its wait
policy), and the settings take turns, round after round, so that a change of the machine's load
falls on all of them alike. Per step and setting: the median over rounds of each round's median.

    python benchmarks/thread_policy.py [--rounds 3] [--repeat 10] [--models ae vae gan gpt]

Settings (BLAS = NumPy's OpenBLAS pool, kernels = the Numba kernels' OpenMP pool; n = the cores):
    library default      what `import tinygrad_pt` gives: n threads, small ops on one
    set_num_threads(1)   everything on the calling thread
    every op wide        n threads for every product and kernel (no size thresholds)
    BLAS wide only       products by the thresholds, every kernel on one thread
    kernels wide only    kernels by the thresholds, every product on one thread
    every op wide, OMP active   as "every op wide", OpenMP's threads spinning between loops
    library default, GOMP_SPINCOUNT=N   the default, Numba's threads spinning N times before they
                         sleep (a user's GOMP_SPINCOUNT is kept as it is: threads.prepare_numba)
Writes benchmarks/results/thread_policy_cpu.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from common import end_of_run, machine_info, markdown_table, write_results

FAMILIES = ("ae", "dae", "vae", "gan", "simclr", "moco", "gpt")

CHILD = r"""
import json, os, sys
spec = json.loads(sys.argv[1])
import tinygrad_pt as tg
from tinygrad_pt import threads
from tinygrad_pt.bench.steps import build_recipe, cycling
from tinygrad_pt.bench.timing import time_calls
for name, value in spec["policy"].items():  # thresholds: 0 = always wide, -1 = never
    setattr(threads, name, bool(value) if name == "ADAPTIVE" else
            float("inf") if value < 0 else value)
tg.set_num_threads(spec["threads"])
out = {}
for name in spec["models"]:
    recipe = build_recipe(name, "cpu")
    step = cycling(recipe.step_on, [recipe.draw_batch() for _ in range(4)])
    out[name] = time_calls({"s": step}, warmup=3, repeat=spec["repeat"])["s"]["median"]
print(json.dumps(out))
"""

BLAS, KERNEL = "BLAS_PARALLEL_MIN_FLOP", "KERNEL_PARALLEL_MIN_ELEMENTS"


def settings(cores: int) -> dict:
    """{label: (threads, {threshold: value}, extra environment)}."""
    out = {"library default": (cores, {}, {}), "set_num_threads(1)": (1, {}, {})}
    if cores > 1:
        out["every op wide"] = (cores, {BLAS: 0, KERNEL: 0, "ADAPTIVE": 0}, {})
        out["free cores, no size thresholds"] = (cores, {BLAS: 0, KERNEL: 0, "ADAPTIVE": 1}, {})
        out["free cores, small thresholds"] = (cores, {BLAS: 1 << 16, KERNEL: 1 << 14,
                                                       "ADAPTIVE": 1}, {})
        out["BLAS wide only"] = (cores, {KERNEL: -1}, {})
        out["kernels wide only"] = (cores, {BLAS: -1}, {})
        out["every op wide, OMP active"] = (cores, {BLAS: 0, KERNEL: 0, "ADAPTIVE": 0},
                                            {"OMP_WAIT_POLICY": "ACTIVE"})
        # the default policy, but Numba's threads spin a short while before they sleep (the
        # measured fork cost then drops, and with it the kernels' threshold)
        for spins in SPINCOUNTS:
            out[f"library default, GOMP_SPINCOUNT={spins}"] = (cores, {}, {
                "GOMP_SPINCOUNT": str(spins)})
    return out


SPINCOUNTS = (2000, 5000, 20000)


def run_child(threads, policy, env_extra, models, repeat) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    spec = {"threads": threads, "policy": policy, "models": models, "repeat": repeat}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"thread_policy: a child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--models", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "thread_policy_cpu.md"))
    ap.add_argument("--settings", nargs="+", default=None, metavar="LABEL",
                    help="only these settings (their labels, as the table prints them)")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = machine_info()
    cases = settings(cores)
    if args.settings:
        unknown = sorted(set(args.settings) - set(cases))
        if unknown:
            ap.error(f"unknown settings {unknown}; expected some of {list(cases)}")
        cases = {label: cases[label] for label in args.settings}
    medians = {label: {m: [] for m in args.models} for label in cases}
    for r in range(args.rounds):
        labels = list(cases)[r % len(cases):] + list(cases)[:r % len(cases)]  # rotate the order
        for label in labels:
            print(f"round {r + 1}/{args.rounds}: {label}", file=sys.stderr, flush=True)
            for m, t in run_child(*cases[label], args.models, args.repeat).items():
                medians[label][m].append(t)
    end_of_run(info)
    headers = ["setting"] + [f"{m} (ms)" for m in args.models]
    rows = []
    for label, per_model in medians.items():
        cells = []
        for m in args.models:
            ts = per_model[m]
            cells.append(f"{1e3 * statistics.median(ts):.2f} ({1e3 * min(ts):.2f}-"
                         f"{1e3 * max(ts):.2f})")
        rows.append([label] + cells)
    note = (f"Median over {args.rounds} rounds of each round's median step time "
            f"({args.repeat} timed steps after 3 warm-up); in brackets the lowest and highest round. "
            "Each setting ran in its own process, the settings in rotating order.")
    table = markdown_table(headers, rows)
    print(table)
    write_results(args.out, "Thread settings of the training steps (CPU)", info,
                  [("Step time per setting", note + "\n\n" + table)])


if __name__ == "__main__":
    main()
