"""``tinygrad-pt bench [ops|steps|all]``: run the suites, print the tables, write MD + CSV + PNG.

    run_bench("all", device="cpu", compare=("torch",), out="bench_results")

ops       per-op forward + backward (bench/ops.py): tinygrad_pt, its reference kernels, torch
steps     one training step of each model family (bench/steps.py): tinygrad_pt, torch
overhead  (with steps) where the time of one GPT step goes: op forward and backward compute,
          backward bookkeeping, optimizer, and the rest (Python dispatch and graph building)

tinygrad_pt runs in this process, torch in a child process (bench/worker.py says why); both get
the same thread count, stated in the report. With --compare torch the steps are timed in
``ROUNDS`` rounds, each tinygrad_pt's share of the repeats and then torch's, and the samples of
all rounds are pooled: on a shared machine the speed drifts by tens of percent from one minute to
the next (measured on the 2-core VM), and timing one framework a minute after the other put that
drift into the ratio; interleaved, both frameworks see the same minutes. Each number is the median of repeated calls after
warm-up, with the quartiles beside it; on a GPU every call is timed with CUDA events after a
synchronisation. The tables and the plot are drawn by bench/tables.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from .machine import end_of_run, machine_info
from .ops import op_cases, tg_op
from .report import csv_text, write_results, write_text
from .steps import build_recipe, cycling, describe, step_cases, tokens_per_step
from .tables import CSV_HEADERS, ONE_THREAD_NOTE, ops_table, overhead_text, plot, steps_table
from .timing import cupy_clock, summarize, time_calls, wall_clock

__all__ = ["run_bench", "SUITES"]

SUITES = ("ops", "steps", "all")
COMPARE = ("torch",)
ROUNDS = 3  # interleaved rounds of the step comparison (module docstring)


class BenchError(Exception):
    """A setting the bench cannot run with (reported in one line by the CLI)."""


def set_threads(threads: int) -> None:
    """`threads` for every pool tinygrad_pt uses (tg.set_num_threads: BLAS and the Numba
    kernels, each op by the library's own policy), as a user would set it."""
    from ..threads import set_num_threads
    set_num_threads(threads)


def device_clock(device):
    """How a call is timed on `device`: wall time, or CUDA events on the GPU."""
    return cupy_clock() if device == "cuda" else wall_clock


# ----------------------------------------------------------------------------------------------------
# tinygrad_pt side

def bench_ops(device, names, repeat, budget_s, log) -> dict:
    """{case name: {"tinygrad_pt": summary, "reference": summary}} for the cases in `names`."""
    from ..kernels.registry import kernel_settings, set_kernels

    saved = kernel_settings()
    out = {}
    for case in op_cases(device):
        if case.name not in names:
            continue
        fast = tg_op(case, device)
        plain = tg_op(case, device)

        def reference(plain=plain):
            set_kernels("reference")
            try:
                plain()
            finally:
                set_kernels(**saved)
        log(f"  ops: {case.name} ({case.shape})")
        # One block per implementation, each call after the same op's previous one, as the torch
        # worker times its op: alternating with the reference (tens of MB of temporaries per
        # call) had put every tinygrad_pt call behind a flushed cache, which torch's calls never
        # were (measured: the tanh GELU on 1M floats 1.5-2.0 ms that way, 0.7-0.8 ms back to
        # back, the kernels alone 0.57-0.66 ms)
        out[case.name] = {}
        for name, call in (("tinygrad_pt", fast), ("reference", reference)):
            out[case.name].update(time_calls({name: call}, warmup=2, repeat=repeat,
                                             budget_s=budget_s / 2, clock=device_clock(device)))
    return out


def at_threads(n: int, call):
    """`call` run with tg.set_num_threads(n), the setting put back after each call."""
    from ..threads import get_num_threads, set_num_threads

    def run():
        saved = get_num_threads()
        set_num_threads(n)
        try:
            return call()
        finally:
            set_num_threads(saved)
    return run


def bench_steps(device, names, repeat, budget_s, log, one_thread=True) -> dict:
    """{family: {"tinygrad_pt": summary[, "tinygrad_pt_1t": summary]}}, sizes and tokens.
    "tinygrad_pt" is the library's default configuration (the headline); on a CPU with several
    threads and with `one_thread`, "tinygrad_pt_1t" is the same step after
    tg.set_num_threads(1), an extra column that shows what the threads are worth."""
    from ..threads import get_num_threads

    out = {}
    for name in names:
        recipe = build_recipe(name, device)
        batches = [recipe.draw_batch() for _ in range(4)]
        log(f"  steps: {name} ({describe(recipe)})")
        step = cycling(recipe.step_on, batches)
        clock = device_clock(device)
        calls = {"tinygrad_pt": step}
        if one_thread and device == "cpu" and get_num_threads() > 1:
            # The two settings call by call, each through the same switch (a few us), so that
            # both meet the same moments of the machine. Timed one block after the other (the
            # 2-thread block first, right after torch's process), AE's step, which runs the
            # same single-threaded code in both settings, came out 1.02-1.10x slower on 2
            # threads in 5 of 5 runs; alternating call by call in one process, 1.00x.
            calls = {"tinygrad_pt": at_threads(get_num_threads(), step),
                     "tinygrad_pt_1t": at_threads(1, step)}
        out[name] = time_calls(calls, warmup=3, repeat=repeat, budget_s=budget_s, clock=clock)
        out[name]["size"] = describe(recipe)
        out[name]["tokens"] = tokens_per_step(recipe)
    return out


def gpt_overhead(device, steps: int = 5) -> dict:
    """Where one GPT step's time goes, in seconds per step (see the module docstring).

    wall: the unprofiled step (median). The profiled run gives the ops' forward and backward
    compute and the backward bookkeeping; the optimizer (clip + AdamW + schedule) is timed on its
    own; what is left is Python: dispatch, building Tensors and the graph, the loss read-back.
    """
    recipe = build_recipe("gpt", device)
    batches = [recipe.draw_batch() for _ in range(4)]
    step = cycling(recipe.step_on, batches)
    clock = device_clock(device)
    return _gpt_overhead(recipe, step, clock, device, steps)  # at the default settings


def _gpt_overhead(recipe, step, clock, device, steps) -> dict:
    from ..nn.utils import clip_grad_norm_
    from ..profiler import profile

    wall = time_calls({"step": step}, warmup=2, repeat=steps, clock=clock)["step"]["median"]
    model, opt = recipe.modules["model"], recipe.optimizers["opt"]
    params = list(model.parameters())

    def update():
        clip_grad_norm_(params, recipe.config["grad_clip"])
        opt.step()
    optimizer = time_calls({"opt": update}, warmup=1, repeat=steps, clock=clock)["opt"]["median"]
    with profile(sync=device == "cuda") as prof:
        profiled = sum(clock(step) for _ in range(steps)) / steps  # the profiled step's wall
    fwd = sum(r.fwd_s for r in prof.stats.values()) / steps
    bwd = sum(r.bwd_s for r in prof.stats.values()) / steps
    book = prof.bookkeeping_s / steps
    # Shares of the profiled step, which the parts add up to; profiling itself (a timer call and
    # a dict update per op) makes that step a little longer than the unprofiled one ("wall").
    rest = max(profiled - fwd - bwd - book - optimizer, 0.0)
    return {"wall": wall, "profiled": profiled, "forward ops": fwd, "backward ops": bwd,
            "backward bookkeeping": book, "optimizer (clip + AdamW)": optimizer,
            "Python dispatch, graph building, rest": rest, "profile": prof, "steps": steps,
            "size": describe(recipe)}


# ----------------------------------------------------------------------------------------------------
# torch side (a child process)

def _pooled(old: dict | None, new: dict) -> dict:
    """One summary of two rounds' samples (`old` None: the first round)."""
    return new if old is None else summarize(old["times"] + new["times"])


def _pool(into: dict, got: dict) -> None:
    """Add one round of tinygrad_pt's step rows ({family: {impl: summary, "size": ...}}) into
    `into`: each implementation's samples pooled, the other entries (sizes) kept."""
    for name, row in got.items():
        target = into.setdefault(name, {})
        for key, value in row.items():
            timed = isinstance(value, dict) and "times" in value
            target[key] = _pooled(target.get(key), value) if timed else value


def _add_torch(results, suite, device, names, threads, repeat, budget_s, info, notes, log):
    """Run the torch worker for `suite` and pool its rows into results["torch_<suite>"]; a
    worker that cannot run leaves a note instead. True when it ran."""
    log(f"torch {suite} on {device} (a separate process)")
    got = torch_results(suite, device, names, threads, repeat, budget_s)
    if "_error" in got:
        notes.append(got["_error"])
        log(f"  {got['_error']}")
        return False
    meta = got.pop("_torch")
    info["torch"] = f"{meta['version']} ({meta['threads']} intra-op threads)"
    rows = results[f"torch_{suite}"]
    for name, value in got.items():
        rows[name] = _pooled(rows.get(name), summarize(value["times"]))
    return True


def torch_results(suite, device, names, threads, repeat, budget_s) -> dict:
    """Run bench/worker.py for the torch rows; {} with a reason in "_error" if it cannot."""
    from .torch_steps import torch_available

    if not torch_available():
        return {"_error": "torch is not installed (pip install torch): no torch rows"}
    env = dict(os.environ)  # the user's environment: tinygrad_pt leaves no variable behind
    spec = {"suite": suite, "device": device, "names": list(names), "threads": threads,
            "warmup": 3 if suite == "steps" else 2, "repeat": repeat, "budget_s": budget_s}
    proc = subprocess.run([sys.executable, "-m", "tinygrad_pt.bench.worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"_error": f"the torch worker failed: {' | '.join(tail)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------
# Entry point

def run_bench(what="all", device="cpu", compare=(), out="bench_results", threads=None,
              repeat=10, budget_s=4.0, ops=None, steps=None, log=print, extras=True,
              one_thread=None) -> dict:
    """Run the suites, print the tables, write bench_<device>.md / .csv / .png into `out`.
    extras=False leaves out what only the report shows beside the headline (the steps' 1-thread
    column and the GPT profile), for callers that read the headline alone; one_thread=True
    keeps the 1-thread column whatever `extras` says (None: as `extras`).
    Returns {"markdown": path, "csv": path, "png": path, "text": report, "results": ...}."""
    if what not in SUITES:
        raise BenchError(f"unknown suite {what!r}; expected one of {SUITES}")
    for other in compare:
        if other not in COMPARE:
            raise BenchError(f"--compare {other!r}: expected one of {COMPARE}")
    from ..threads import get_num_threads
    one_thread = extras if one_thread is None else one_thread
    threads = threads or get_num_threads()  # the default: every core this process may use
    set_threads(threads)
    op_names = list(ops or [c.name for c in op_cases(device)])
    step_names = list(steps or step_cases(device))
    info = machine_info()
    info["threads (tinygrad_pt: tg.set_num_threads; torch: intra-op)"] = threads

    results = {"ops": {}, "steps": {}, "torch_ops": {}, "torch_steps": {}}
    notes = []
    rounds = ROUNDS if "torch" in compare else 1
    share = max(3, -(-repeat // rounds))
    ours = {"ops": ("ops", op_names, lambda b: bench_ops(device, op_names, share, b, log)),
            "steps": ("training steps", step_names,
                      lambda b: bench_steps(device, step_names, share, b, log, one_thread))}
    for suite in ("ops", "steps"):
        if what not in (suite, "all"):
            continue
        label, names, run_ours = ours[suite]
        with_torch = "torch" in compare
        for r in range(rounds):
            log(f"tinygrad_pt {label} on {device}" + (f", round {r + 1} of {rounds}"
                                                      if rounds > 1 else ""))
            _pool(results[suite], run_ours(budget_s / rounds))
            if with_torch:  # once the worker cannot run, it is not asked again
                with_torch = _add_torch(results, suite, device, names, threads, share,
                                        budget_s / rounds, info, notes, log)
    if extras and what in ("steps", "all") and "gpt" in step_names:
        log("  overhead breakdown: one GPT step under tg.profile()")
        results["overhead"] = gpt_overhead(device)

    sections, csv_rows = [], []
    if results["ops"]:
        text, rows = ops_table(device, results["ops"], results["torch_ops"])
        sections.append(("Ops: forward + backward, float32", text))
        csv_rows += rows
    if results["steps"]:
        text, rows = steps_table(results["steps"], results["torch_steps"])
        sections.append(("Training steps, float32", text))
        csv_rows += rows
        if any("tinygrad_pt_1t" in res for res in results["steps"].values()):
            sections[-1] = (sections[-1][0], sections[-1][1] + "\n\n" + ONE_THREAD_NOTE)
        if "overhead" in results:
            sections.append(("Where a GPT step's time goes (tinygrad_pt)",
                             overhead_text(results["overhead"])))
    how = ("Median of repeated calls after warm-up (IQR: the middle half of the runs). "
           "tinygrad_pt runs in the bench process, torch in a child process with the same "
           "thread count (two frameworks' idle thread pools in one process slow each other "
           "several-fold). With torch compared, the ops and the steps run in "
           f"{ROUNDS} interleaved rounds (tinygrad_pt, then torch, each round a third of the "
           "repeats; the samples pooled), so that both see the same minutes of a machine whose "
           "speed drifts. Each op is timed call after call of itself, one block per "
           "implementation, in both processes. Ratios are tinygrad_pt / other: below 1 is "
           "faster. 'reference' is "
           "tinygrad_pt with set_kernels('reference'), the plain NumPy/CuPy kernels.")
    if device == "cuda":
        how += " GPU calls are timed with CUDA events after a device synchronisation."
    end_of_run(info)
    sections.append(("How it was measured", how + ("\n\n" + "\n".join(notes) if notes else "")))

    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, f"bench_{device}")
    report = write_results(base + ".md", f"tinygrad-pt bench {what} ({device})", info,
                           sections + [("Plot", f"![bench](bench_{device}.png)")])
    write_text(base + ".csv", csv_text(CSV_HEADERS, csv_rows))
    png = plot(base + ".png", device, results["ops"], results["torch_ops"], results["steps"],
               results["torch_steps"])
    print(report)
    return {"markdown": base + ".md", "csv": base + ".csv", "png": png, "text": report,
            "results": results}
