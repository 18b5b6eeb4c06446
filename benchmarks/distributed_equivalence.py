"""One process vs `mpiexec -n N` on the same seed and flags: the largest relative difference of
the final weights, per family (benchmarks/results/distributed_cpu.md).

    python benchmarks/distributed_equivalence.py --steps 40 --ranks 2 ae vae gpt

Relative difference: ||a - b|| / ||a|| over all the checkpoint's module weights as one vector
(tinygrad_pt.distributed.check.rel_diff), and the largest absolute difference of one weight.

The noise floor beside it: one process against itself with float32-rounding-sized noise added
to every gradient before each optimizer step (1e-7 times the tensor's largest gradient, the
error of summing the batch in another order, which is all that N ranks change). Adam divides by
sqrt(v): a near-zero gradient entry whose sign the rounding flips becomes a step of size lr the
other way, so some families' training amplifies any reordering of the sums; data parallel
cannot be closer to one process than one process is to itself under such a reordering.
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


def noise_floor(family: str, steps: int, noise: float = 1e-7) -> float:
    """rel_diff of one process's weights after `steps` steps, without and with rounding-sized
    additive gradient noise (see the module docstring)."""
    from tinygrad_pt.distributed.check import rel_diff
    from tinygrad_pt.train.recipes import get_recipe

    def train(noisy):
        recipe = get_recipe(family)({}, seed=0)
        g = np.random.default_rng(99)
        for opt in recipe.optimizers.values():
            step = opt.step

            def perturbed(*a, _step=step, _opt=opt, **k):
                for group in _opt.param_groups:
                    for p in group["params"]:
                        if noisy and p.grad is not None:
                            d = p.grad.data
                            d += (noise * float(np.abs(d).max())
                                  * g.standard_normal(d.shape)).astype(d.dtype)
                return _step(*a, **k)
            opt.step = perturbed
        for s in range(steps):
            recipe.train_step(s)
        return [p.numpy() for m in recipe.modules.values() for p in m.parameters()]
    return rel_diff(train(False), train(True))


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
    print(f"| family | relative difference | max abs difference | noise floor | 1 process (s) "
          f"| {args.ranks} ranks (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for family in args.families:
        with tempfile.TemporaryDirectory() as tmp:
            base = ["tinygrad-pt", "train", family, "--steps", str(args.steps), "--quiet",
                    "--eval-every", "0"] + (["--set", *args.set] if args.set else [])
            one = run(base + ["--out", f"{tmp}/one"], env)
            many = run(["mpiexec", "-n", str(args.ranks)] + base + ["--out", f"{tmp}/many"], env)
            d, worst = diffs(weights(f"{tmp}/one/checkpoint.safetensors"),
                             weights(f"{tmp}/many/checkpoint.safetensors"))
            floor = noise_floor(family, args.steps)
            print(f"| {family} | {d:.2e} | {worst:.2e} | {floor:.2e} | {one:.1f} | {many:.1f} |",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
