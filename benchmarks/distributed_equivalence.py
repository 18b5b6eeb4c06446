"""One process vs `mpiexec -n N` on the same seed and flags: the largest relative difference of
the final weights, per family (benchmarks/results/distributed_cpu.md).

    python benchmarks/distributed_equivalence.py --steps 40 --ranks 2 ae vae gpt

Relative difference: ||a - b|| / ||a|| over all the checkpoint's module weights as one vector
(tinygrad_pt.distributed.check.rel_diff), and the largest absolute difference of one weight.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def weights(path):
    import tinygrad_pt as tg
    return {k: v.numpy() for k, v in tg.load(path).items() if k.startswith("module.")}


def diffs(a: dict, b: dict) -> tuple:
    """(||a - b|| / ||a|| over all float weights as one vector, max |a - b|)."""
    from tinygrad_pt.distributed.check import rel_diff
    keys = [k for k in a if a[k].dtype.kind == "f"]
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in keys)
    return rel_diff([a[k] for k in keys], [b[k] for k in keys]), worst


def run(cmd, env):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("families", nargs="+")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    args = ap.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    print(f"| family | relative difference | max abs difference | 1 process (s) | "
          f"{args.ranks} ranks (s) |")
    print("| --- | --- | --- | --- | --- |")
    for family in args.families:
        with tempfile.TemporaryDirectory() as tmp:
            base = ["tinygrad-pt", "train", family, "--steps", str(args.steps), "--quiet",
                    "--eval-every", "0"] + (["--set", *args.set] if args.set else [])
            one = run(base + ["--out", f"{tmp}/one"], env)
            many = run(["mpiexec", "-n", str(args.ranks)] + base + ["--out", f"{tmp}/many"], env)
            d, worst = diffs(weights(f"{tmp}/one/checkpoint.safetensors"),
                             weights(f"{tmp}/many/checkpoint.safetensors"))
            print(f"| {family} | {d:.2e} | {worst:.2e} | {one:.1f} | {many:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
