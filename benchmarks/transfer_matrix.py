"""The transfer matrix (issue 16) across families: does pre-training pay downstream?

    python benchmarks/transfer_matrix.py --runs /tmp/tr_runs           # runs/<family> trained
    python benchmarks/transfer_matrix.py --runs /tmp/tr_runs --train    # train missing ones first
    python benchmarks/transfer_matrix.py --gpt runs/gpt --snippet-bytes 128  # the GPT's task

For each family's run it calls ``run_transfer`` (the `tinygrad-pt transfer` command) on the tasks
that fit it, then writes one table per task across families into benchmarks/results/:
transfer_labelset.md, transfer_shift.md, transfer_augment.md (machine, seeds, mean and spread,
paired differences and their verdicts), the raw per-seed values (transfer_matrix.json) and each
run's plot (transfer_<family>.png). With ``--gpt RUN`` it runs the snippet task on that trained GPT
run instead and writes transfer_gpt.md (.json, .png): the pre-training and the command in the
header, the run's own section (format_section) below.
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

from tinygrad_pt.train.transfer_matrix import (PM, format_section, mean_std, on_classes,
                                               run_transfer, verdict)

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
    """Train `family` on the train images of `classes` only (transfer_matrix.on_classes)."""
    from tinygrad_pt.train.loop import train
    train(on_classes(family, classes, {"steps": steps}), run_dir, progress=False)


def cell(values, count: bool = False) -> str:
    m, s = mean_std(values)
    return f"{m:.0f} {PM} {s:.0f}" if count else f"{m:.3f} {PM} {s:.3f}"


def keep_verdict(path) -> str:
    """The hand-written '## Verdict' that ends a results file, to carry over a rewrite."""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if "\n## Verdict" in old:
            return old[old.index("\n## Verdict"):]
    return ""


def gpt_snippets(run_dir, out: str, seeds: int, labels, snippet_bytes) -> int:
    """The snippet task on a trained GPT run, into out/transfer_gpt.md (.json, .png)."""
    info = machine_info()
    with open(os.path.join(run_dir, "config.json")) as f:
        c = json.load(f)["config"]
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    last = [r for r in rows if r.get("split") == "eval"][-1]
    info["run"] = (f"tinygrad-pt train gpt ({c['n_layer']} layers x {c['n_embd']} wide, block "
                   f"{c['block_size']}, {last['step']} steps; val {last['val_bits_per_byte']:.2f} "
                   f"bits/byte vs unigram {last['unigram_bits_per_byte']:.2f}; "
                   f"{rows[-1]['time']:.0f} s)")
    start = time.perf_counter()
    out_dir = os.path.join(run_dir, "transfer")
    results = run_transfer(run_dir, tasks=("snippets",), seeds=seeds, gpt_labels=tuple(labels),
                           snippet_bytes=snippet_bytes, out_dir=out_dir)
    info["command"] = (f"tinygrad-pt transfer --from RUN --task snippets --seeds {seeds} "
                       f"--gpt-labels {' '.join(map(str, labels))}"
                       + (f" --snippet-bytes {snippet_bytes}" if snippet_bytes else "")
                       + f" (seeds 0..{seeds - 1}; {time.perf_counter() - start:.0f} s)")
    sec = results["tasks"]["snippets"]
    path = os.path.join(out, "transfer_gpt.md")
    verdicts = keep_verdict(path)
    text = write_results(None, "Transfer matrix: GPT fine-tuning on standard-library snippets",
                         info, [(sec["title"], format_section(sec))])
    write_text(path, text.rstrip() + "\n" + verdicts)
    with open(os.path.join(out, "transfer_gpt.json"), "w") as f:
        json.dump(results, f, indent=1)
    shutil.copy(os.path.join(out_dir, "transfer.png"), os.path.join(out, "transfer_gpt.png"))
    print(text)
    return 0


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
    ap.add_argument("--gpt", metavar="RUN", help="a trained GPT run: measure its snippet task "
                    "into transfer_gpt.md (and nothing else)")
    ap.add_argument("--gpt-labels", type=int, nargs="+", default=[8, 32, 128], metavar="K")
    ap.add_argument("--snippet-bytes", type=int, default=None, metavar="N")
    args = ap.parse_args(argv)
    if args.gpt:
        return gpt_snippets(args.gpt, args.out, args.seeds, args.gpt_labels, args.snippet_bytes)
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
        verdicts = keep_verdict(path)
        text = write_results(None, f"Transfer matrix: {first['title']}", info, sections)
        write_text(path, text.rstrip() + "\n" + verdicts)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
