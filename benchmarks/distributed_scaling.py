"""Data parallel on CPUs: step time with 1 and N ranks (1 thread each), the bytes each step
moves, and a model of the step time against N (benchmarks/results/distributed_cpu.md).

    python benchmarks/distributed_scaling.py measure --out /tmp/d.jsonl            # 1 process
    mpiexec -n 2 python benchmarks/distributed_scaling.py measure --out /tmp/d.jsonl
    python benchmarks/distributed_scaling.py report /tmp/d.jsonl    # the tables of distributed_cpu.md

measure   each family at its default config: a few warm-up steps, then timed steps (wall time
          of recipe.train_step, the whole job's slowest rank: a step ends when every rank's
          allreduce has). Bytes: what one rank hands to the gradient allreduces (and, for
          SimCLR and MoCo, to the all-gathers) per step, counted by the code that sends them.
report    the measured table, then the model
              T(N) = T_compute(1) / N + 2 (N - 1) / N * bytes / BW + messages * 2 (N - 1) a
          with BW = 25 GB/s and a = 5 us per ring hop: compute scales with the shard (optimistic
          for small shards, whose matrix products run below the machine's peak), the allreduce
          is a ring's (bandwidth term and latency term).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

FAMILIES = ["ae", "dae", "vae", "gan", "wgan_gp", "gpt", "simclr", "moco"]
BANDWIDTH = 25e9     # bytes/s, an assumed network (e.g. 200 Gb/s InfiniBand)
HOP_LATENCY = 5e-6   # s per ring step
NODES = (1, 2, 4, 8, 16, 32, 64)


def _count_bytes():
    """Wrap the communicator so that every collective adds its payload to a counter."""
    from tinygrad_pt import distributed as dist

    comm = dist.init()
    counter = {"bytes": 0, "messages": 0}
    for name in ("all_reduce", "all_gather"):
        original = getattr(comm, name)

        def counted(array, *a, _original=original, **k):
            counter["bytes"] += array.nbytes
            counter["messages"] += 1
            return _original(array, *a, **k)
        setattr(comm, name, counted)
    return counter


def measure(args) -> None:
    import tinygrad_pt as tg
    from tinygrad_pt import distributed as dist
    from tinygrad_pt.train.recipes import get_recipe

    tg.set_num_threads(1)
    counter = _count_bytes()
    for family in args.families:
        recipe = get_recipe(family)({}, seed=0)
        recipe.data_parallel()
        for step in range(args.warmup):
            recipe.train_step(step)
        dist.barrier()
        counter["bytes"] = counter["messages"] = 0
        start = time.perf_counter()
        for step in range(args.steps):
            recipe.train_step(args.warmup + step)
        dist.barrier()
        elapsed = (time.perf_counter() - start) / args.steps
        params = sum(p.size for m in recipe.modules.values() for p in m.parameters())
        row = {"family": family, "ranks": dist.world_size(), "step_s": elapsed,
               "bytes_per_step": counter["bytes"] / args.steps,
               "messages_per_step": counter["messages"] / args.steps,
               "batch_size": recipe.config["batch_size"], "parameters": int(params)}
        if dist.rank() == 0:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(row, flush=True)


def model_step(t1: float, message_bytes: float, messages: float, n: int) -> float:
    if n == 1:
        return t1
    comm = 2 * (n - 1) / n * message_bytes / BANDWIDTH + messages * 2 * (n - 1) * HOP_LATENCY
    return t1 / n + comm


def report(args) -> None:
    rows = [json.loads(line) for line in open(args.jsonl) if line.strip()]
    one = {r["family"]: r for r in rows if r["ranks"] == 1}
    many = {r["family"]: r for r in rows if r["ranks"] > 1}
    n_measured = max((r["ranks"] for r in rows), default=2)
    print(f"| family | params | global batch | 1 rank step (ms) | {n_measured} ranks step (ms) "
          f"| speed-up | bytes/step/rank (allreduce + gather) | messages/step |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in FAMILIES:
        if f not in one or f not in many:
            continue
        a, b = one[f], many[f]
        print(f"| {f} | {a['parameters']:,} | {a['batch_size']} | {1e3 * a['step_s']:.2f} | "
              f"{1e3 * b['step_s']:.2f} | {a['step_s'] / b['step_s']:.2f}x | "
              f"{b['bytes_per_step']:,.0f} | {b['messages_per_step']:.0f} |")
    print()
    print(f"Model (BW {BANDWIDTH / 1e9:g} GB/s, {HOP_LATENCY * 1e6:g} us per ring hop; compute "
          "from the 1-rank column divided by N): step time in ms, speed-up in brackets.")
    print()
    print("| family | " + " | ".join(f"N={n}" for n in NODES) + " | best N |")
    print("| --- | " + " | ".join("---" for _ in NODES) + " | --- |")
    for f in FAMILIES:
        if f not in one or f not in many:
            continue
        t1, b = one[f]["step_s"], many[f]
        times = [model_step(t1, b["bytes_per_step"], b["messages_per_step"], n) for n in NODES]
        best = NODES[int(np.argmin(times))]
        print(f"| {f} | " + " | ".join(f"{1e3 * t:.3g} ({t1 / t:.1f}x)" for t in times)
              + f" | {best} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("families", nargs="*", default=FAMILIES)
    m.add_argument("--out", required=True)
    m.add_argument("--steps", type=int, default=20)
    m.add_argument("--warmup", type=int, default=3)
    r = sub.add_parser("report")
    r.add_argument("jsonl")
    args = ap.parse_args(argv)
    measure(args) if args.command == "measure" else report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
