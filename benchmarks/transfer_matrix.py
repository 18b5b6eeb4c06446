"""The transfer matrix (issue 16) across families: does pre-training pay downstream?

    python benchmarks/transfer_matrix.py --runs /tmp/tr_runs           # runs/<family> trained
    python benchmarks/transfer_matrix.py --runs /tmp/tr_runs --train    # train missing ones first

For each family's run it calls ``run_transfer`` (the `tinygrad-pt transfer` command) on the tasks
that fit it, then writes one table per task across families into benchmarks/results/:
transfer_labelset.md, transfer_shift.md, transfer_augment.md (machine, seeds, mean and spread,
paired differences and their verdicts), the raw per-seed values (transfer_matrix.json) and each
run's plot (transfer_<family>.png).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from common import machine_info, markdown_table, write_results, write_text

from tinygrad_pt.train.transfer_matrix import PM, mean_std, run_transfer, verdict

HERE = os.path.dirname(os.path.abspath(__file__))
# The families, the steps each is trained for here (reduced from the recipes' defaults, to fit a
# 2-core machine), and the tasks run on each.
PLAN = {
    "supervised": ([], ("labelset", "shift")),
    "simclr": (["--steps", "1000"], ("labelset", "shift")),
    "moco": (["--steps", "1000"], ("labelset",)),
    "ae": ([], ("labelset", "shift")),
    "vae": (["--steps", "2000"], ("labelset", "augment")),
    "gan": (["--steps", "3000"], ("labelset", "augment")),
    # SimCLR pre-trained on the same images as the supervised run (0-4), without their labels:
    # the label-set comparison without the unsupervised families' sight of 5-9.
    "simclr_0-4": (["--steps", "1000"], ("labelset",)),
}
RESTRICTED = {"simclr_0-4": ("simclr", (0, 1, 2, 3, 4))}


def train_on_classes(family: str, classes, run_dir: str, steps: int) -> None:
    """Train `family` on the train images of `classes` only (labels unused by the family):
    the recipe's data loading is narrowed in this process; the checkpoint is an ordinary run
    of the family, which load_run rebuilds (its data is not part of the checkpoint)."""
    import numpy as np

    from tinygrad_pt.train.loop import train
    from tinygrad_pt.train.recipes import get_recipe

    base = get_recipe(family)

    class OnClasses(base):
        def load_data(self):
            super().load_data()
            keep = np.isin(self.y_train, classes)
            self.x_train, self.y_train = self.x_train[keep], self.y_train[keep]

    train(OnClasses({"steps": steps}, seed=0), run_dir, progress=False)


def cell(values, count: bool = False) -> str:
    m, s = mean_std(values)
    return f"{m:.0f} {PM} {s:.0f}" if count else f"{m:.3f} {PM} {s:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", help="folder holding one run directory per family")
    ap.add_argument("--families", nargs="+", default=list(PLAN), choices=list(PLAN))
    ap.add_argument("--train", action="store_true", help="train the families that have no run")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--tables-only", action="store_true",
                    help="run nothing: rewrite the tables from transfer_matrix.json")
    args = ap.parse_args(argv)
    if args.runs is None and not args.tables_only:
        ap.error("--runs DIR is needed to measure (or pass --tables-only)")

    info = machine_info()
    # Families measured before keep their rows: this run adds to (or replaces) them.
    json_path = os.path.join(args.out, "transfer_matrix.json")
    results = {}
    if os.path.exists(json_path):
        with open(json_path) as f:
            results = json.load(f)
    if args.tables_only or set(results) - set(args.families):
        info["date"] += " (tables written; each run's rows were measured when 'runs' says)"
        for key in [k for k in info if k.startswith("load average")]:
            del info[key]  # today's load says nothing of the earlier runs'
    for fam in [] if args.tables_only else args.families:
        run_dir = os.path.join(args.runs, fam)
        extra, tasks = PLAN[fam]
        if args.train and not os.path.exists(os.path.join(run_dir, "checkpoint.safetensors")):
            if fam in RESTRICTED:
                train_on_classes(*RESTRICTED[fam], run_dir, int(extra[1]))
            else:
                subprocess.run([sys.executable, "-m", "tinygrad_pt.cli", "train", fam, "--out",
                                run_dir, "--quiet", *extra], check=True)
        seen = None
        if fam in RESTRICTED:
            digits = RESTRICTED[fam][1]
            seen = (f"saw only the train images of digits {digits[0]}-{digits[-1]} (no labels), "
                    "as the supervised run")
        start, start_wall = time.perf_counter(), time.time()
        results[fam] = run_transfer(run_dir, tasks=tasks, seeds=args.seeds, steps=args.steps,
                                    out_dir=os.path.join(args.runs, "transfer", fam),
                                    pretrained_on=seen)
        results[fam]["matrix_seconds"] = time.perf_counter() - start
        results[fam]["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start_wall))
        shutil.copy(os.path.join(args.runs, "transfer", fam, "transfer.png"),
                    os.path.join(args.out, f"transfer_{fam}.png"))
    info["seeds"] = f"{args.seeds} (0..{args.seeds - 1}): label subsets, splits, inits, batches"
    info["steps"] = (f"{args.steps} AdamW steps per fine-tuning / adaptation, after a 500-step "
                     "linear probe for the head")
    info["runs"] = ", ".join(f"{f} (step {r['step']}, matrix {r.get('matrix_seconds', 0):.0f} s"
                             f", from {r.get('measured_at', '?')})" for f, r in results.items())
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)

    for task in ("labelset", "shift", "augment"):
        have = {f: r["tasks"][task] for f, r in results.items() if task in r["tasks"]}
        if not have:
            continue
        first = next(iter(have.values()))
        headers = ["run", "setting"] + first["columns"]
        rows, diff_rows = [], []
        for fam, sec in have.items():
            for setting, r in sec["rows"].items():
                counts = set(sec.get("count_columns", []))
                rows.append([fam, setting] + [cell(r[c], c in counts) for c in sec["columns"]])
            for setting, ds in sec["diffs"].items():
                for name, d in ds.items():
                    if name.startswith("gap closed"):
                        text = "none (gap < 0.05)" if d is None else f"{d:.0%}"
                        diff_rows.append([fam, setting, name, text, "(of the mean gap)"])
                    else:
                        diff_rows.append([fam, setting, name, cell(d), verdict(d)])
        notes = "\n".join(f"- {fam}: {sec['note']}" for fam, sec in have.items())
        sections = [("Setting, per run", notes),
                    ("Accuracy (mean " + PM + " std over seeds)", markdown_table(headers, rows)),
                    ("Paired differences (same seed, same labels) and verdicts",
                     markdown_table(["run", "setting", "difference", "mean " + PM + " std",
                                     "verdict"], diff_rows))]
        path = os.path.join(args.out, f"transfer_{task}.md")
        verdicts = ""  # the hand-written verdict that ends a table's file is kept
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
            if "\n## Verdict" in old:
                verdicts = old[old.index("\n## Verdict"):]
        text = write_results(None, f"Transfer matrix: {first['title']}", info, sections)
        write_text(path, text.rstrip() + "\n" + verdicts)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
