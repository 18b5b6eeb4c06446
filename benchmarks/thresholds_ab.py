"""The thread policy's size thresholds against smaller ones, call by call in one process.

    python benchmarks/thresholds_ab.py [--models gpt:25 gan:150 simclr:150 moco:150 vae:300]

thread_policy.py runs each setting in a process of its own, which a thread pool's wait policy
needs; but from one process to the next this VM's speed moves by more than the thresholds change
(there, in one run, small thresholds looked 15-25% faster for the GPT, GAN, SimCLR and MoCo
steps). The thresholds are plain module attributes, read per call, so here the settings take
turns step by step in one process and meet the same moments of the machine. The ratio is the
median over steps of (setting / default), each pair taken back to back. Writes
benchmarks/results/thresholds_ab_cpu.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import end_of_run, machine_info, markdown_table, write_results  # noqa: E402

from tinygrad_pt import threads  # noqa: E402
from tinygrad_pt.bench.steps import build_recipe, cycling  # noqa: E402

# label -> (KERNEL_PARALLEL_MIN_ELEMENTS, BLAS_PARALLEL_MIN_FLOP); None: measured (the default)
SETTINGS = {
    "library default": (None, threads.BLAS_PARALLEL_MIN_FLOP),
    "kernels from 2^14, products from 2^16": (1 << 14, 1 << 16),
    "kernels from 2^14": (1 << 14, threads.BLAS_PARALLEL_MIN_FLOP),
    "products from 2^16": (None, 1 << 16),
}


def use(label):
    threads.KERNEL_PARALLEL_MIN_ELEMENTS, threads.BLAS_PARALLEL_MIN_FLOP = SETTINGS[label]


def measure(model: str, steps: int) -> dict:
    """{label: (median ms, median of the per-step ratios to the default)}."""
    recipe = build_recipe(model, "cpu")
    step = cycling(recipe.step_on, [recipe.draw_batch() for _ in range(4)])
    for label in SETTINGS:  # warm-up: compiles, caches, each setting's first wide call
        use(label)
        step()
        step()
    times = {label: [] for label in SETTINGS}
    for _ in range(steps):
        for label in SETTINGS:
            use(label)
            t0 = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - t0)
    use("library default")
    base = times["library default"]
    return {label: (1e3 * statistics.median(ts),
                    statistics.median(t / b for t, b in zip(ts, base)))
            for label, ts in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["gpt:25", "gan:150", "simclr:150",
                                                     "moco:150", "vae:300"],
                    help="model:steps pairs")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results", "thresholds_ab_cpu.md"))
    args = ap.parse_args()
    info = machine_info()
    rows = []
    for spec in args.models:
        model, steps = spec.split(":")
        got = measure(model, int(steps))
        print(model, got, flush=True)
        rows.append([f"{model} ({steps} steps each)"] + [f"{ms:.3g} ms ({r:.2f}x)"
                                                          for ms, r in got.values()])
    end_of_run(info)
    table = markdown_table(["step"] + list(SETTINGS), rows)
    note = ("Each cell: the median step time, and in brackets the median over steps of the "
            "setting's time over the default's in the same round (below 1: faster than the "
            "default). The settings take turns step by step in one process, tg's default "
            "threads (every usable core).")
    print(write_results(args.out, "Thread thresholds, call by call in one process (CPU)", info,
                        [("Step time per setting", note + "\n\n" + table)]))


if __name__ == "__main__":
    main()
