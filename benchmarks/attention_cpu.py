"""Attention forward + backward on the CPU by sequence length: the measurement behind
kernels/cpu/attention.py's choice of variant (``BLAS_MAX_SCORES``), against PyTorch's
scaled_dot_product_attention in its own process.

    python benchmarks/attention_cpu.py [--lengths 64 128 256 512 1024] [--repeat 7]

The GPT's shape: batch 16 x 4 heads, head dim 32, causal, float32; for each T the blas, tiled and
reference variants alternate call by call (one process, the library's default threads), torch
runs the same shapes in a child process with the same thread count. Median of repeated calls
after warm-up. Writes benchmarks/results/attention_cpu.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import end_of_run, machine_info, markdown_table, time_calls, write_results  # noqa: E402

from tinygrad_pt import threads  # noqa: E402
from tinygrad_pt.kernels import reference  # noqa: E402
from tinygrad_pt.kernels.cpu import attention  # noqa: E402

B, H, D = 16, 4, 32
SCALE = 1 / np.sqrt(D)

TORCH = r"""
import json, sys, time
import torch
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
out = {}
for t in spec["lengths"]:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(spec["b"], spec["h"], t, spec["d"], generator=g, requires_grad=True)
               for _ in range(3))
    def call():
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        o.backward(torch.ones_like(o))
    for _ in range(3):
        call()
    times = []
    for _ in range(spec["repeat"]):
        t0 = time.perf_counter(); call(); times.append(time.perf_counter() - t0)
    times.sort()
    out[str(t)] = times[len(times) // 2]
print(json.dumps({"version": torch.__version__, "times": out}))
"""


def thread_clock(fn) -> float:
    """Seconds of CPU time the calling thread spent in fn() (all of it, on one thread)."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def ours(variant, t):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((B, H, t, D)).astype(np.float32) for _ in range(3))

    def call():
        if variant == "reference":
            out, lse = reference.attention_fwd(q, k, v, True, SCALE)
            reference.attention_bwd(np.ones_like(out), q, k, v, out, lse, True, SCALE)
        else:
            out, lse = attention.attention_fwd(q, k, v, True, SCALE, variant=variant)
            attention.attention_bwd(np.ones_like(out), q, k, v, out, lse, True, SCALE,
                                    variant=variant)
    return call


def torch_times(lengths, repeat) -> dict | None:
    spec = {"lengths": lengths, "repeat": repeat, "threads": threads.get_num_threads(), "b": B,
            "h": H, "d": D}
    done = subprocess.run([sys.executable, "-c", TORCH, json.dumps(spec)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results", "attention_cpu.md"))
    args = ap.parse_args()
    info = machine_info()
    rows = []
    theirs = torch_times(args.lengths, args.repeat)
    if theirs:
        info["torch"] = theirs["version"]
    for t in args.lengths:
        print(f"T = {t}", file=sys.stderr, flush=True)
        variants = ["blas", "tiled"] + (["reference"] if t <= 512 else [])
        got = time_calls({name: ours(name, t) for name in variants}, warmup=2,
                         repeat=args.repeat)
        # The same on one thread, timed by the calling thread's CPU time: what a busy machine
        # disturbs least, for choosing between the variants.
        saved = threads.get_num_threads()
        threads.set_num_threads(1)
        cpu = time_calls({name: ours(name, t) for name in ("blas", "tiled")}, warmup=1,
                         repeat=args.repeat, clock=thread_clock)
        threads.set_num_threads(saved)
        th = theirs["times"].get(str(t)) if theirs else None
        best = min(("blas", "tiled"), key=lambda n: cpu[n]["median"])
        cells = [f"{1e3 * got[n]['median']:.2f}" if n in got else "-"
                 for n in ("blas", "tiled", "reference")]
        cells += [f"{1e3 * cpu[n]['median']:.2f}" for n in ("blas", "tiled")]
        auto = attention._variant("auto", t, t, D, D)
        rows.append([str(t)] + cells + ["-" if th is None else f"{1e3 * th:.2f}", best, auto,
                                        "-" if th is None else
                                        f"{got[auto]['median'] / th:.2f}x"])
    end_of_run(info)
    headers = ["T", "blas ms", "tiled ms", "reference ms", "blas CPU ms, 1 thread",
               "tiled CPU ms, 1 thread", "torch sdpa ms", "faster (1 thread)", "auto picks",
               "auto / torch"]
    table = markdown_table(headers, rows)
    print(table)
    note = (f"Forward + backward of causal attention, B={B}, H={H}, D={D}, float32; median of "
            f"{args.repeat} calls after warm-up, our variants alternating call by call in one "
            "process at the library's default threads (wall ms), and again on one thread timed "
            "by the calling thread's CPU time (the column that decides BLAS_MAX_SCORES: a busy "
            "machine disturbs it least); torch's scaled_dot_product_attention in a child "
            "process with the same thread count (wall ms).")
    write_results(args.out, "Attention on the CPU by sequence length", info,
                  [("Forward + backward", note + "\n\n" + table)])


if __name__ == "__main__":
    main()
