"""How the GPT training step grows with the work, tinygrad_pt against PyTorch (CPU): a sweep over the
sequence length T at width 128 and over the width at T = 128 (4 layers, head size 32, batch 16,
byte vocabulary), each framework in its own process at the same thread count, default settings.

    python benchmarks/gpt_scaling.py [--lengths 64 128 256 512 1024] [--widths 64 128 256 512]

Writes benchmarks/results/gpt_scaling_cpu.csv and gpt_scaling.png: ms per step of both and their
ratio, so that where the ratio moves (attention's share grows with T, the products' with the
width) can be read off.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import end_of_run, machine_info  # noqa: E402

from tinygrad_pt.bench.report import csv_text, write_text  # noqa: E402
from tinygrad_pt.bench.steps import build_recipe, cycling  # noqa: E402
from tinygrad_pt.bench.timing import time_calls  # noqa: E402
from tinygrad_pt.bench.torch_steps import torch_available  # noqa: E402
from tinygrad_pt.threads import get_num_threads  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def points(lengths, widths) -> list:
    """(sweep, T, width) for the two one-dimensional sweeps (the shared point once)."""
    out = [("T", t, 128) for t in lengths]
    out += [("width", 128, w) for w in widths if ("T", 128, w) not in out]
    return out


def config(t, width) -> dict:
    return {"block_size": t, "n_embd": width, "n_head": max(1, width // 32)}


def ours(t, width, repeat) -> dict:
    recipe = build_recipe("gpt", "cpu", config(t, width))
    step = cycling(recipe.step_on, [recipe.draw_batch() for _ in range(4)])
    return time_calls({"s": step}, warmup=2, repeat=repeat, budget_s=30.0)["s"]


def theirs(t, width, repeat) -> dict | None:
    if not torch_available():
        return None
    spec = {"suite": "steps", "device": "cpu", "names": ["gpt"], "threads": get_num_threads(),
            "warmup": 2, "repeat": repeat, "budget_s": 30.0, "configs": {"gpt": config(t, width)}}
    done = subprocess.run([sys.executable, "-m", "tinygrad_pt.bench.worker", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["gpt"]


def plot(rows, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sweep, label in ((axes[0], "T", "sequence length T (width 128)"),
                             (axes[1], "width", "width n_embd (T = 128)")):
        sel = [r for r in rows if r["sweep"] == sweep]
        xs = [r["T"] if sweep == "T" else r["width"] for r in sel]
        ax.plot(xs, [r["tg_ms"] for r in sel], "o-", color="tab:blue", label="tinygrad_pt")
        if all(r["torch_ms"] is not None for r in sel):
            ax.plot(xs, [r["torch_ms"] for r in sel], "s--", color="tab:orange", label="torch")
            twin = ax.twinx()
            twin.plot(xs, [r["tg_ms"] / r["torch_ms"] for r in sel], ":", color="gray")
            twin.set_ylabel("tinygrad_pt / torch (dotted)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("ms per training step (median)")
        ax.legend(loc="upper left")
    fig.suptitle("GPT training step on the CPU, default settings, 4 layers, batch 16")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    info = machine_info()
    rows = []
    for sweep, t, width in points(args.lengths, args.widths):
        mine, other = ours(t, width, args.repeat), theirs(t, width, args.repeat)
        row = {"sweep": sweep, "T": t, "width": width, "tg_ms": mine["median"] * 1e3,
               "tg_p25": mine["p25"] * 1e3, "tg_p75": mine["p75"] * 1e3,
               "torch_ms": None if other is None else other["median"] * 1e3}
        rows.append(row)
        ratio = "-" if row["torch_ms"] is None else f"{row['tg_ms'] / row['torch_ms']:.2f}x"
        print(f"T={t:5d} width={width:4d}: tinygrad_pt {row['tg_ms']:9.1f} ms, torch "
              f"{row['torch_ms'] or float('nan'):9.1f} ms, ratio {ratio}", flush=True)
    end_of_run(info)
    header = "".join(f"# {k}: {v}\n" for k, v in info.items())
    keys = ["sweep", "T", "width", "tg_ms", "tg_p25", "tg_p75", "torch_ms"]
    table = csv_text(keys, [[("" if r[k] is None else (f"{r[k]:.4g}" if isinstance(r[k], float)
                                                        else r[k])) for k in keys] for r in rows])
    write_text(os.path.join(RESULTS, "gpt_scaling_cpu.csv"), header + table)
    plot(rows, os.path.join(RESULTS, "gpt_scaling.png"))


if __name__ == "__main__":
    main()
