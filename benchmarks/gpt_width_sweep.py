"""GPT training-step time against model width, per device: the CPU-vs-GPU plot.

    python benchmarks/gpt_width_sweep.py --device cpu            # -> results/gpt_width_cpu.csv
    python benchmarks/gpt_width_sweep.py --device cuda           # -> results/gpt_width_cuda.csv
    python benchmarks/gpt_width_sweep.py --plot                  # -> results/gpt_width.png

The small GPT of the model issue (4 layers, T=128, batch 16, byte vocabulary) at widths 64..768
(head size 32), one training step (forward, backward, clip, AdamW) timed as `tinygrad-pt bench`
times steps: fixed batches, median after warm-up, CUDA events on the GPU. On the CPU at the
library's default settings (every core, its thread policy: tinygrad_pt/threads.py). Each device
writes its
own CSV, so the two halves can come from different sessions/machines; the plot draws what exists
and says in its title which device is missing.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import end_of_run, machine_info  # noqa: E402

from tinygrad_pt.bench.report import csv_text, write_text  # noqa: E402
from tinygrad_pt.bench.steps import build_recipe, cycling  # noqa: E402
from tinygrad_pt.bench.suite import device_clock  # noqa: E402
from tinygrad_pt.bench.timing import time_calls  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
WIDTHS = (64, 128, 256, 384, 512, 768)


def sweep(device: str, widths, repeat: int) -> list:
    rows = []
    for width in widths:
        recipe = build_recipe("gpt", device, {"n_embd": width, "n_head": width // 32})
        batches = [recipe.draw_batch() for _ in range(4)]
        res = time_calls({"step": cycling(recipe.step_on, batches)}, warmup=2, repeat=repeat,
                         budget_s=20.0, clock=device_clock(device))["step"]
        params = sum(p.size for p in recipe.modules["model"].parameters())
        print(f"{device} width {width:4d}: {res['median'] * 1e3:8.2f} ms "
              f"(IQR {res['p25'] * 1e3:.2f}-{res['p75'] * 1e3:.2f}), {params:,} params",
              flush=True)
        rows.append([device, width, params, f"{res['median'] * 1e3:.4g}",
                     f"{res['p25'] * 1e3:.4g}", f"{res['p75'] * 1e3:.4g}", len(res["times"])])
    return rows


def plot(out_png: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    missing = []
    for device, color in (("cpu", "tab:blue"), ("cuda", "tab:green")):
        path = os.path.join(RESULTS, f"gpt_width_{device}.csv")
        if not os.path.exists(path):
            missing.append(device)
            continue
        with open(path) as f:
            rows = list(csv.DictReader(f))
        w = [int(r["width"]) for r in rows]
        ax.plot(w, [float(r["median_ms"]) for r in rows], "o-", color=color, label=device)
        ax.fill_between(w, [float(r["p25_ms"]) for r in rows], [float(r["p75_ms"]) for r in rows],
                        color=color, alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("model width n_embd (4 layers, T=128, batch 16)")
    ax.set_ylabel("ms per training step (median, IQR band)")
    title = "tinygrad_pt GPT step time vs width"
    if missing:
        title += f"\n(no {' / '.join(missing)} data yet)"
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"])
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plot", action="store_true", help="draw results/gpt_width.png")
    args = parser.parse_args(argv)
    if args.device:
        info = machine_info()
        rows = sweep(args.device, args.widths, args.repeat)
        end_of_run(info)
        path = os.path.join(RESULTS, f"gpt_width_{args.device}.csv")
        header = "".join(f"# {k}: {v}\n" for k, v in info.items())
        write_text(path + ".txt", header)
        write_text(path, csv_text(["device", "width", "params", "median_ms", "p25_ms", "p75_ms",
                                   "runs"], rows))
        print(f"wrote {path} (machine: {path}.txt)")
    if args.plot:
        print(f"wrote {plot(os.path.join(RESULTS, 'gpt_width.png'))}")
    if not args.device and not args.plot:
        parser.error("give --device and/or --plot")


if __name__ == "__main__":
    main()
