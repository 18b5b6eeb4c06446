"""Kill training runs at random moments (SIGKILL: no handler runs) and check what they leave.

    python benchmarks/crash_test.py                  # 30 kills, table to benchmarks/results/
    python benchmarks/crash_test.py --kills 3 --out /tmp/crash.md    # a quick look

Each trial starts `tinygrad-pt train` in a fresh run directory with a checkpoint at every step
(--checkpoint-every 1), so that a good share of the kills land inside a save, and sends SIGKILL
after a random delay drawn uniformly from [0, --max-delay] seconds (the start-up, loading the
data and building the model included). Then it asks of the directory:

  - loadable:  the checkpoint (if any) reads back: checkpoint_info and load_run succeed;
  - resumable: `tinygrad-pt train --resume --until STEP+2` exits 0 and reaches STEP+2; a
               directory the kill left without a checkpoint counts when a fresh start there
               succeeds (`--overwrite`), since there was nothing to resume;
  - blocked:   whether a stale run.lock or a dead writer's temporary file stopped that resume
               (the count must be 0; temporaries found before the resume are listed: they show
               the kill landed inside a save, and the resume must remove them).

The table goes to --out with the machine, the versions and the load average, since the trials
share the CPU with whatever else runs.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

RECIPE_SETS = {"ae": ["batch_size=16", "hidden=64", "latent=8"]}


def trial(index: int, root: str, recipe: str, max_delay: float, rng, env) -> dict:
    from tinygrad_pt.train.checkpoint import CHECKPOINT_NAME, checkpoint_info
    from tinygrad_pt.train.recipes import load_run

    out = os.path.join(root, f"run{index:03d}")
    base = [sys.executable, "-m", "tinygrad_pt.cli", "train", recipe, "--out", out, "--quiet"]
    sets = ["--set", *RECIPE_SETS.get(recipe, [])] if RECIPE_SETS.get(recipe) else []
    delay = float(rng.uniform(0.0, max_delay))
    child = subprocess.Popen(base + ["--steps", "1000000", "--checkpoint-every", "1",
                                     "--eval-every", "0", *sets],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    time.sleep(delay)
    exited_first = child.poll() is not None
    child.send_signal(signal.SIGKILL)
    child.wait()
    ckpt = os.path.join(out, CHECKPOINT_NAME)
    leftovers = [f for f in os.listdir(out) if f.endswith(".tmp")] if os.path.isdir(out) else []
    row = {"trial": index, "delay_s": delay, "exited_before_kill": exited_first,
           "checkpoint": os.path.exists(ckpt), "tmp_before": len(leftovers),
           "lock_left": os.path.exists(os.path.join(out, "run.lock")), "step": None,
           "loadable": None, "resumable": False, "blocked": False, "error": ""}
    if row["checkpoint"]:
        try:
            row["step"] = checkpoint_info(ckpt)["step"]
            load_run(out)
            row["loadable"] = True
        except Exception as e:  # noqa: BLE001 (what went wrong is the finding)
            row["loadable"], row["error"] = False, f"{type(e).__name__}: {e}"[:200]
        target = (row["step"] or 0) + 2
        again = base[:5] + ["--out", out, "--quiet", "--resume", "--until", str(target)]
    else:
        target = 2
        again = base + ["--steps", "2", "--overwrite", *sets]
    done = subprocess.run(again, capture_output=True, text=True, env=env)
    stderr = done.stderr.strip().splitlines()
    row["blocked"] = any("in use by another" in line or ".tmp" in line for line in stderr)
    if done.returncode == 0 and os.path.exists(ckpt):
        row["resumable"] = checkpoint_info(ckpt)["step"] == target
    if done.returncode != 0:
        row["error"] = row["error"] or (stderr[-1] if stderr else f"exit {done.returncode}")
    row["tmp_after"] = len([f for f in os.listdir(out) if f.endswith(".tmp")])
    return row


def table(rows: list, args, seconds: float) -> str:
    import tinygrad_pt

    n = len(rows)
    with_ckpt = [r for r in rows if r["checkpoint"]]
    count = lambda key, rs=rows: sum(1 for r in rs if r[key])  # noqa: E731
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    lines = [
        "# Crash test: SIGKILL at random moments",
        "",
        f"`python benchmarks/crash_test.py --kills {args.kills} --recipe {args.recipe} "
        f"--max-delay {args.max_delay} --seed {args.seed}`"
        + (f" ({args.note})" if args.note else ""),
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, load average at the end "
        f"{', '.join(f'{x:.2f}' if isinstance(x, float) else x for x in load)}; Python "
        f"{platform.python_version()}, NumPy {np.__version__}, tinygrad_pt "
        f"{tinygrad_pt.__version__}. {seconds:.0f} s in all.",
        "",
        f"Each trial: `tinygrad-pt train {args.recipe} --checkpoint-every 1` (a save after every "
        f"step), SIGKILL after a delay drawn uniformly from [0, {args.max_delay}] s (start-up "
        "included), then the checks below on the run directory.",
        "",
        "| what | count |",
        "|---|---:|",
        f"| kills | {n} |",
        f"| ... before the first checkpoint (start-up, data, build) | {n - len(with_ckpt)} |",
        f"| ... with a checkpoint on disk | {len(with_ckpt)} |",
        f"| ... inside a save (a dead writer's temporary file left beside it) | "
        f"{sum(1 for r in rows if r['tmp_before'])} |",
        f"| run.lock left behind by the killed run | {count('lock_left')} |",
        f"| checkpoints loadable (checkpoint_info + load_run) | "
        f"{sum(1 for r in with_ckpt if r['loadable'])} of {len(with_ckpt)} |",
        f"| directories resumable (`--resume --until STEP+2`; a fresh start where no checkpoint "
        f"was written) | {count('resumable')} of {n} |",
        f"| resumes blocked by a stale lock or temporary file | {count('blocked')} |",
        f"| temporaries still there after the resume | "
        f"{sum(1 for r in rows if r['tmp_after'])} |",
        "",
        "| trial | delay (s) | checkpoint step | tmp left by the kill | loadable | resumable | "
        "error |",
        "|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['trial']} | {r['delay_s']:.2f} | "
                     f"{'-' if r['step'] is None else r['step']} | {r['tmp_before']} | "
                     f"{'-' if r['loadable'] is None else ('yes' if r['loadable'] else 'NO')} | "
                     f"{'yes' if r['resumable'] else 'NO'} | {r['error'] or ''} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--recipe", default="ae")
    parser.add_argument("--max-delay", type=float, default=6.0,
                        help="seconds; the kill comes after a uniform delay in [0, this]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "crash_test.md"))
    parser.add_argument("--note", default="", help="a remark for the table's header")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error(f"--kills must be positive, got {args.kills}")
    rng = np.random.default_rng(args.seed)
    # One BLAS thread per child: the trials are about files, not speed, and stay off the other
    # cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    root = tempfile.mkdtemp(prefix="crash_test_")
    start, rows = time.perf_counter(), []
    try:
        for i in range(args.kills):
            rows.append(trial(i, root, args.recipe, args.max_delay, rng, env))
            r = rows[-1]
            print(f"trial {i}: delay {r['delay_s']:.2f} s, step {r['step']}, tmp "
                  f"{r['tmp_before']}, loadable {r['loadable']}, resumable {r['resumable']}"
                  + (f" ({r['error']})" if r["error"] else ""), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = table(rows, args, time.perf_counter() - start)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    bad = [r for r in rows if not r["resumable"] or r["blocked"] or r["loadable"] is False]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
