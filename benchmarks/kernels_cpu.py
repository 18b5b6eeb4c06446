"""Time every CPU implementation of every kernel family against the reference, in one run.

    python benchmarks/kernels_cpu.py                    # the issue's sizes; writes the results file
    python benchmarks/kernels_cpu.py --quick            # small sizes, a smoke test; prints only
    python benchmarks/kernels_cpu.py --families softmax,gelu

For each family, the implementations are the reference (``kernels/reference.py``), those that
``registry.FAST["cpu"]`` lists, and the Numba module ``tinygrad_pt.kernels.cpu.<family>`` when it
exists (so this works before the registry lists it). Families without a module are skipped.

What is measured, on float32 (the training dtype):
- Compile: each Numba module's first forward and backward calls on tiny inputs, float32 then
  float64, with an empty Numba cache (a temporary NUMBA_CACHE_DIR, unless --warm-cache): what a
  fresh clone pays once per dtype. Excluded from the timings below.
- Time: the median of repeated calls after two warm-up calls; implementations are called in
  turn in one loop, so a change of load on the machine reaches all of them alike. The speedup is
  median(reference) / median(implementation) from the same loop. Each Numba implementation is
  also timed on one thread ("numba, 1 thread"): the gain of fusion alone, on one core, against
  NumPy (single-threaded, except the BLAS inside matmul and attention's reference).
- Throughput: GB/s counts the bytes a fused kernel must move at least (each input read once,
  each output written once); GFLOP/s (matmul, attention, NT-Xent) counts 2 flops per
  multiply-add of the dense products, causal masking not subtracted.
- The cold start of ``import tinygrad_pt`` in a fresh interpreter, and whether it imports Numba.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

# Before Numba is imported: an empty cache directory, so that first calls really compile.
if "--warm-cache" not in sys.argv:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="tgpt-numba-cache-")

import importlib  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (end_of_run, first_call_seconds, fmt_ms, machine_info,  # noqa: E402
                    markdown_table, time_calls, write_results)

from tinygrad_pt.kernels import reference  # noqa: E402
from tinygrad_pt.kernels import registry  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "kernels_cpu.md")
TARGET = 2.0  # the goal for a fused kernel: at least twice the reference's speed
NO_TARGET = {"matmul"}  # a study kernel against BLAS: timed, not held to the target

SIZES = {  # family -> shapes (full run, --quick, compile on tiny inputs)
    "softmax": ([(4096, 1024)], [(256, 128)], [(3, 5)]),
    "cross_entropy": ([(8192, 256), (2048, 50257)], [(256, 64), (64, 1000)], [(3, 5)]),
    "layer_norm": ([(8192, 768)], [(256, 96)], [(3, 5)]),
    "gelu": ([(8192, 3072)], [(256, 384)], [(3, 5)]),
    "dropout": ([(8192, 3072)], [(256, 384)], [(3, 5)]),
    "adamw": ([(10_000_000,)], [(100_000,)], [(7,)]),
    "attention": ([(8, 8, 256, 64), (8, 8, 1024, 64)], [(2, 2, 64, 16)], [(1, 2, 5, 4)]),
    "nt_xent": ([(1024, 128)], [(64, 16)], [(3, 4)]),
    "matmul": ([(1024, 1024, 1024)], [(128, 128, 128)], [(3, 4, 5)]),
}


LIMITS = """\
- Two threads help only when both cores are free: the kernels split rows evenly between the
  threads, so when another process holds a core the slower thread sets the time, and the "numba"
  and "numba, 1 thread" rows come out alike (as they did here at load averages of 5 to 8). The
  load average above shows how busy the machine was.
- Softmax family, per core: NumPy's exp is AVX-512 code (0.42 ns per float32 element on one core)
  and its sums are vectorized; Numba here has no SVML, so exp is ``_common.vexp`` (0.67 ns,
  vectorized 8 wide), and with ``fastmath=False`` LLVM vectorizes no sum (0.30 ns against 0.13
  with reassociation allowed). Fusion saves the temporaries and most memory passes, which is
  where the per-core gain comes from.
- Fresh outputs page-fault, in both implementations: after the reference has run (and freed its
  temporaries), allocating and touching layer norm's 25 MB output took 2.9 ms against 0.14 ms
  when the allocator could reuse a block, next to 4.4 ms for the kernel itself on two threads;
  for cross-entropy's 411 MB outputs, allocating and touching took 75 ms on one core."""


# ----------------------------------------------------------------------------------------------------
# The calls: for a family, a shape and a dtype, a list of (function name, label, args, bytes, flops)


def _ops(family, shape, dtype, rng):
    def randn(*s, scale=1.0):
        return (rng.standard_normal(s) * scale).astype(dtype)

    def size_of(*arrays):
        return sum(a.nbytes for a in arrays)

    if family == "softmax":
        x, dy = randn(*shape, scale=3.0), randn(*shape)
        y, ly = reference.softmax_fwd(x), reference.log_softmax_fwd(x)
        return [("softmax_fwd", "softmax fwd", (x,), size_of(x, y), None),
                ("softmax_bwd", "softmax bwd", (dy, y), size_of(dy, y, y), None),
                ("log_softmax_fwd", "log_softmax fwd", (x,), size_of(x, y), None),
                ("log_softmax_bwd", "log_softmax bwd", (dy, ly), size_of(dy, ly, ly), None)]
    if family == "cross_entropy":
        n, c = shape
        logits, target = randn(n, c, scale=2.0), rng.integers(0, c, n)
        losses, probs = reference.cross_entropy_fwd(logits, target)
        dl = np.full(n, 1.0 / n, dtype)
        return [("cross_entropy_fwd", "fwd", (logits, target),
                 size_of(logits, target, losses, probs), None),
                ("cross_entropy_bwd", "bwd", (dl, probs, target), size_of(dl, probs, target, probs),
                 None)]
    if family == "layer_norm":
        x, w, b, dy = randn(*shape), randn(shape[-1]), randn(shape[-1]), randn(*shape)
        y, mean, rstd = reference.layer_norm_fwd(x, w, b, 1e-5)
        return [("layer_norm_fwd", "fwd", (x, w, b, 1e-5), size_of(x, w, b, y, mean, rstd), None),
                ("layer_norm_bwd", "bwd", (dy, x, w, mean, rstd),
                 size_of(dy, x, w, mean, rstd, x, w, b), None)]
    if family == "gelu":
        x, dy = randn(*shape, scale=2.0), randn(*shape)
        return [(f"gelu_{d}", f"{approx} {d}", args, size_of(*args[:-1], x), None)
                for approx in ("tanh", "none")
                for d, args in (("fwd", (x, approx)), ("bwd", (dy, x, approx)))]
    if family == "dropout":
        x, mask = randn(*shape), rng.random(shape) >= 0.1
        return [("dropout_fwd", "fwd p=0.1", (x, mask, 0.1), size_of(x, mask, x), None)]
    if family == "adamw":
        p, g = randn(*shape), randn(*shape)
        m, v = randn(*shape, scale=0.01), np.abs(randn(*shape, scale=1e-4))
        # 10 is an arbitrary step; in place, so repeated calls keep moving p, m, v (finitely)
        return [("adamw_update", "step", (p, g, m, v, 10, 1e-3, 0.9, 0.999, 1e-8, 0.01),
                 size_of(p, g, m, v, p, m, v), None)]
    if family == "attention":
        b, h, t, d = shape
        q, k, v, dout = (randn(b, h, t, d) for _ in range(4))
        scale = 1.0 / math.sqrt(d)
        out, lse = reference.attention_fwd(q, k, v, True, scale)
        mac = b * h * t * t * d  # multiply-adds of one T x T x D product
        return [("attention_fwd", "fwd causal", (q, k, v, True, scale), None, 2 * 2 * mac),
                ("attention_bwd", "bwd causal", (dout, q, k, v, out, lse, True, scale), None,
                 5 * 2 * mac)]
    if family == "nt_xent":
        n, d = shape
        z1, z2 = randn(n, d), randn(n, d)
        loss, u, norms, probs = reference.nt_xent_fwd(z1, z2, 0.5)
        dloss = np.asarray(1.0, dtype)
        mac = (2 * n) ** 2 * d
        return [("nt_xent_fwd", "fwd", (z1, z2, 0.5), None, 2 * mac),
                ("nt_xent_bwd", "bwd", (dloss, u, norms, probs, 0.5), None, 2 * mac)]
    if family == "matmul":
        n, k, m = shape
        a, b = randn(n, k), randn(k, m)
        return [("matmul_fwd", "fwd", (a, b), None, 2 * n * k * m)]
    raise ValueError(f"unknown family {family!r}")


# ----------------------------------------------------------------------------------------------------
# Implementations


def implementations(family, notes):
    """[(name, module)]: the reference, the registry's CPU entries, and the Numba module."""
    found = [("reference", reference)]
    entries = list(registry.FAST["cpu"].get(family, []))
    direct = f"tinygrad_pt.kernels.cpu.{family}"
    if all(path != direct for _, path in entries):
        entries.append(("numba", direct))
    for name, path in entries:
        try:
            module = importlib.import_module(path)
        except ImportError as e:
            if path != direct or getattr(e, "name", None) != path:
                notes.append(f"{family}: {name} ({path}) could not be imported: {e}")
            continue
        missing = [f for f in registry.FAMILIES[family] if not hasattr(module, f)]
        if missing:
            notes.append(f"{family}: {path} lacks {missing}; skipped")
            continue
        found.append((name, module))
    return found


def _call(module, fn_name, args):
    fn = getattr(module, fn_name)
    return lambda: fn(*args)


def _on_one_thread(call):
    """call, run after tg.set_num_threads(1) (restored afterwards): the kernels read the
    framework's thread count per call, so this is the one switch that limits them."""
    from tinygrad_pt.threads import get_num_threads, set_num_threads

    def run():
        saved = get_num_threads()
        set_num_threads(1)
        try:
            call()
        finally:
            set_num_threads(saved)
    return run


def _with_one_thread_variants(impls, fn_name, args):
    """{label: call}: every implementation, and each Numba one again on a single thread, which
    separates what fusion gains on one core from what the threads add (and is far less
    sensitive to other processes on a shared machine)."""
    calls = {}
    for name, module in impls:
        calls[name] = _call(module, fn_name, args)
        if module.__name__.startswith("tinygrad_pt.kernels.cpu."):
            calls[f"{name}, 1 thread"] = _on_one_thread(calls[name])
    return calls


# ----------------------------------------------------------------------------------------------------
# The three measurements


def measure_compile(families, notes):
    rows, total_wall, total_cpu = [], 0.0, 0.0
    for family in families:
        for name, module in implementations(family, notes)[1:]:
            for dtype in (np.float32, np.float64):
                ops = _ops(family, SIZES[family][2][0], dtype, np.random.default_rng(0))
                wall = cpu = 0.0
                for fn, _, args, _, _ in ops:
                    w, c = first_call_seconds(_call(module, fn, args))
                    wall, cpu = wall + w, cpu + c
                total_wall, total_cpu = total_wall + wall, total_cpu + cpu
                rows.append([family, name, np.dtype(dtype).name,
                             ", ".join(dict.fromkeys(o[0] for o in ops)), f"{wall:.2f}",
                             f"{cpu:.2f}"])
    rows.append(["total", "", "", "", f"{total_wall:.2f}", f"{total_cpu:.2f}"])
    return markdown_table(["family", "implementation", "dtype", "first calls", "wall s", "CPU s"],
                          rows)


def measure_time(families, quick, repeat, notes):
    rows, misses = [], []
    for family in families:
        impls = implementations(family, notes)
        if len(impls) == 1:
            notes.append(f"{family}: no fast CPU implementation found; not timed")
            continue
        for shape in SIZES[family][1 if quick else 0]:
            ops = _ops(family, shape, np.float32, np.random.default_rng(0))
            for fn_name, label, args, nbytes, flops in ops:
                calls = _with_one_thread_variants(impls, fn_name, args)
                stats = time_calls(calls, warmup=2, repeat=repeat, budget_s=60.0)
                ref = stats["reference"]["median"]
                for name in calls:
                    med = stats[name]["median"]
                    speed = (f"{nbytes / med / 1e9:.1f} GB/s" if nbytes is not None
                             else f"{flops / med / 1e9:.1f} GFLOP/s")
                    ratio = ref / med
                    ok = "-" if name == "reference" else ("yes" if ratio >= TARGET else "no")
                    one = stats.get(f"{name}, 1 thread")
                    if ok == "no" and one is not None and family not in NO_TARGET:
                        misses.append(f"{family} {label} {'x'.join(map(str, shape))} "
                                      f"({name} {ratio:.2f}x, on 1 thread "
                                      f"{ref / one['median']:.2f}x)")
                    rows.append([family, "x".join(map(str, shape)), label, name, fmt_ms(med),
                                 fmt_ms(stats[name]["min"]), len(stats[name]["times"]), speed,
                                 f"{ratio:.2f}x", ok])
                print(f"  {family} {'x'.join(map(str, shape))} {label}: " + ", ".join(
                    f"{n} {fmt_ms(stats[n]['median'])} ms" for n in calls), flush=True)
    table = markdown_table(["family", "shape", "op", "implementation", "median ms", "min ms",
                            "runs", "throughput", "speedup", f">= {TARGET:g}x"], rows)
    return table, misses


def measure_import(runs=5):
    """Wall time of `import tinygrad_pt` in fresh interpreters, and whether it imports Numba."""
    code = ("import time, sys; t = time.perf_counter(); import tinygrad_pt; "
            "print(time.perf_counter() - t, 'numba' in sys.modules)")
    walls, numba_loaded = [], None
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()
        walls.append(float(out[0]))
        numba_loaded = out[1] == "True"
    return (f"`import tinygrad_pt` in a fresh interpreter: median {statistics.median(walls):.3f} s "
            f"over {runs} runs (min {min(walls):.3f} s); imports Numba: "
            f"{'yes' if numba_loaded else 'no'}. (`python -X importtime -c \"import tinygrad_pt\"` "
            "lists the modules.)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--families", default=",".join(SIZES),
                        help=f"comma-separated subset of {','.join(SIZES)}")
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per implementation")
    parser.add_argument("--out", default=None,
                        help=f"results file (default: {os.path.relpath(RESULTS)} for a full run, "
                             "none for --quick)")
    parser.add_argument("--warm-cache", action="store_true",
                        help="use Numba's usual cache (compile times then measure cache loads)")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(SIZES))
    if unknown:
        parser.error(f"unknown families {unknown}; expected some of {list(SIZES)}")
    out = args.out or (None if args.quick else RESULTS)

    info = machine_info()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    notes = []
    t0 = time.perf_counter()
    print("compile (first calls, empty cache) ...", flush=True)
    compile_table = measure_compile(families, notes)
    print(compile_table, flush=True)
    print("timing ...", flush=True)
    time_table, misses = measure_time(families, args.quick, args.repeat, notes)
    import_line = measure_import()
    notes = sorted(set(notes))
    summary = (f"Fused kernels below {TARGET:g}x the reference: " + ("; ".join(misses) or "none")
               + f". (Not held to the target: {', '.join(sorted(NO_TARGET))}, a study kernel "
               "against BLAS.)\n\n" + "\n".join(f"- {n}" for n in notes))
    sections = [
        ("Time (float32, median of repeated calls after warm-up)", time_table),
        ("Summary", summary),
        ("What limits the Numba kernels (measured while writing them)", LIMITS),
        ("Compile (Numba first calls on tiny inputs, empty cache)", compile_table),
        ("Import", import_line),
        ("How to read this",
         "Bytes moved are the least a fused kernel must move: every input read once, every "
         "output written once. GFLOP/s counts 2 flops per multiply-add of the dense products "
         "(attention: 4 T^2 D per head forward, 10 T^2 D backward, causal masking not "
         "subtracted). Speedup = median(reference) / median(implementation), measured in one "
         "loop that alternates between them. On a shared machine the load average above says "
         "how much the numbers can be trusted; compare ratios, not absolute times. "
         f"Total benchmark time: {time.perf_counter() - t0:.0f} s. Command: `python "
         f"benchmarks/kernels_cpu.py{' --quick' if args.quick else ''}"
         f"{' --families ' + args.families if args.families != ','.join(SIZES) else ''}`."),
    ]
    text = write_results(out, "CPU kernels: Numba against the reference", end_of_run(info),
                         sections)
    print(text)
    if out:
        print(f"written to {out}")


if __name__ == "__main__":
    main()
