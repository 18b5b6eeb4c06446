"""Which thread setting makes the training steps fastest on this machine: the measurement behind
the library's default thread policy (tinygrad_pt/threads.py).

Each setting runs in a fresh process (a thread pool, once started, keeps its threads and its wait
policy), and the settings take turns, round after round, so that a change of the machine's load
falls on all of them alike. Per step and setting: the median over rounds of each round's median.

    python benchmarks/thread_policy.py [--rounds 3] [--repeat 10] [--models ae vae gan gpt]

Settings (Numba = the hand-written kernels' OpenMP pool, BLAS = NumPy's OpenBLAS pool):
    library default   what `import tinygrad_pt` gives, no environment variables
    numba n, blas n   both pools on n threads, kernels parallel from the usual size
    numba 1, blas n   the kernels on the calling thread, BLAS on n
    numba n, blas 1   the reverse
    numba 1, blas 1   everything on one thread
    ... OMP active    as the first of these, with OpenMP's threads spinning between loops
Writes benchmarks/results/thread_policy_cpu.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from common import machine_info, markdown_table, write_results

FAMILIES = ("ae", "dae", "vae", "gan", "simclr", "moco", "gpt")

CHILD = r"""
import json, os, sys
spec = json.loads(sys.argv[1])
import tinygrad_pt as tg
from tinygrad_pt.bench.steps import build_recipe, cycling
from tinygrad_pt.bench.timing import time_calls
if spec["numba"] is not None:
    import numba
    from threadpoolctl import threadpool_limits
    numba.set_num_threads(spec["numba"])
    threadpool_limits(limits=spec["blas"], user_api="blas")
out = {}
for name in spec["models"]:
    recipe = build_recipe(name, "cpu")
    step = cycling(recipe.step_on, [recipe.draw_batch() for _ in range(4)])
    out[name] = time_calls({"s": step}, warmup=3, repeat=spec["repeat"])["s"]["median"]
print(json.dumps(out))
"""


def settings(cores: int) -> dict:
    """{label: (numba threads or None for the library's default, blas threads, extra env)}."""
    n = cores
    out = {"library default": (None, None, {})}
    if n > 1:
        out[f"numba {n}, blas {n}"] = (n, n, {})
        out[f"numba 1, blas {n}"] = (1, n, {})
        out[f"numba {n}, blas 1"] = (n, 1, {})
        out[f"numba {n}, blas {n}, OMP active"] = (n, n, {"OMP_WAIT_POLICY": "ACTIVE"})
    out["numba 1, blas 1"] = (1, 1, {})
    return out


def run_child(numba_threads, blas_threads, env_extra, models, repeat) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(env_extra)
    spec = {"numba": numba_threads, "blas": blas_threads, "models": models, "repeat": repeat}
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
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = machine_info()
    cases = settings(cores)
    medians = {label: {m: [] for m in args.models} for label in cases}
    for r in range(args.rounds):
        labels = list(cases)[r % len(cases):] + list(cases)[:r % len(cases)]  # rotate the order
        for label in labels:
            print(f"round {r + 1}/{args.rounds}: {label}", file=sys.stderr, flush=True)
            for m, t in run_child(*cases[label], args.models, args.repeat).items():
                medians[label][m].append(t)
    info["load average (1, 5, 15 min) at end"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
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
