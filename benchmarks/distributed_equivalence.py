"""One process vs `mpiexec -n N` on the same seed and flags: the largest relative difference of
the final weights, per family (benchmarks/results/distributed_cpu.md).

    python benchmarks/distributed_equivalence.py --steps 40 --ranks 2 --sgd ae vae gpt

Relative difference: ||a - b|| / ||a|| over all the checkpoint's module weights as one vector
(tinygrad_pt.distributed.check.rel_diff), and the largest absolute difference of one weight.

The reordering floor beside it: one process against itself with the rows of every global batch
reversed (the same batch and the same loss, summed in another order: all that N ranks change
besides the shards). Adam divides by sqrt(v): a near-zero gradient entry whose sign the rounding
flips becomes a step of size lr the other way, so some families' training amplifies any
reordering of the sums, and data parallel cannot be held closer to one process than one
process is to itself reordered. "n/a" where reversing the rows is not a pure reordering (VAE
and WGAN-GP pair each row with noise drawn in step_on).
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


REORDER_NA = {"vae", "wgan_gp"}


def reorder_floor(family: str, steps: int) -> float:
    """rel_diff of one process's weights after `steps` steps, with and without every drawn
    batch's rows reversed (see the module docstring)."""
    from tinygrad_pt.distributed.check import rel_diff
    from tinygrad_pt.train.recipes import get_recipe

    def train(reverse):
        recipe = get_recipe(family)({}, seed=0)
        if reverse:
            draw, axis = recipe.draw_batch, recipe.batch_axis
            recipe.draw_batch = lambda: tuple(np.ascontiguousarray(np.flip(a, axis=axis))
                                              for a in draw())
            if family == "gan":  # its latents too: each is used once, in a mean
                sample = recipe.gan.sample_latents
                recipe.gan.sample_latents = lambda n, device=None: sample(n, device)[::-1]
        for s in range(steps):
            recipe.train_step(s)
        return [p.numpy() for m in recipe.modules.values() for p in m.parameters()]
    return rel_diff(train(False), train(True))


def sgd_control(family: str, steps: int) -> None:
    """Under mpiexec: one process (on every rank, no collective) against data parallel, with
    each optimizer replaced by SGD (lr 0.05, momentum 0.5): without Adam's division by sqrt(v),
    rounding is not amplified, so what is left is what data parallel changes in the math."""
    import tinygrad_pt as tg
    from tinygrad_pt import distributed as dist
    from tinygrad_pt.distributed.check import rel_diff
    from tinygrad_pt.optim import SGD
    from tinygrad_pt.train.recipes import get_recipe

    dist.init()
    tg.set_num_threads(1)

    def train(parallel):
        recipe = get_recipe(family)({}, seed=0)
        for name, opt in list(recipe.optimizers.items()):
            params = [p for group in opt.param_groups for p in group["params"]]
            recipe.optimizers[name] = SGD(params, lr=0.05, momentum=0.5)
        if parallel:
            recipe.data_parallel()
        for s in range(steps):
            recipe.train_step(s)
        return [p.numpy() for m in recipe.modules.values() for p in m.parameters()]
    d = rel_diff(train(False), train(True))
    if dist.rank() == 0:
        print(f"sgd_control {family} {d:.2e}", flush=True)


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
    ap.add_argument("--sgd", action="store_true",
                    help="add the SGD control column (data parallel with SGD for Adam)")
    ap.add_argument("--sgd-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.sgd_worker:  # started under mpiexec by --sgd
        return sgd_control(args.families[0], args.steps)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    print(f"| family | relative difference | max abs difference | reordering floor | "
          f"{'SGD control | ' if args.sgd else ''}1 process (s) | {args.ranks} ranks (s) |")
    print("| --- | --- | --- | --- | --- | --- |" + (" --- |" if args.sgd else ""))
    for family in args.families:
        with tempfile.TemporaryDirectory() as tmp:
            base = ["tinygrad-pt", "train", family, "--steps", str(args.steps), "--quiet",
                    "--eval-every", "0"] + (["--set", *args.set] if args.set else [])
            one = run(base + ["--out", f"{tmp}/one"], env)
            many = run(["mpiexec", "-n", str(args.ranks)] + base + ["--out", f"{tmp}/many"], env)
            d, worst = diffs(weights(f"{tmp}/one/checkpoint.safetensors"),
                             weights(f"{tmp}/many/checkpoint.safetensors"))
            floor = "n/a" if family in REORDER_NA else f"{reorder_floor(family, args.steps):.2e}"
            sgd = ""
            if args.sgd:
                out = subprocess.run(["mpiexec", "-n", str(args.ranks), sys.executable,
                                      __file__, family, "--steps", str(args.steps),
                                      "--sgd-worker"], check=True, env=env, text=True,
                                     capture_output=True).stdout
                sgd = out.split()[-1] + " | "
            print(f"| {family} | {d:.2e} | {worst:.2e} | {floor} | {sgd}{one:.1f} | "
                  f"{many:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
