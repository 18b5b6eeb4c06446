"""The bench's report: the ops and steps tables (Markdown and CSV rows), the GPT overhead
breakdown and the plot, from the results dicts that bench/suite.py measures."""
from __future__ import annotations

import os

from .ops import op_cases
from .report import markdown_table

def _ms(s: dict | None) -> str:
    return "-" if s is None else f"{s['median'] * 1e3:.3g}"


def _iqr(s: dict | None) -> str:
    return "-" if s is None else f"{s['p25'] * 1e3:.3g}-{s['p75'] * 1e3:.3g}"


def _ratio(a: dict | None, b: dict | None) -> str:
    return "-" if a is None or b is None else f"{a['median'] / b['median']:.2f}x"


def _rate(case, s) -> str:
    per_s = case.work / s["median"]
    return f"{per_s / 1e9:.1f} GFLOP/s" if case.unit == "FLOP" else f"{per_s / 1e9:.1f} GB/s"


def ops_table(device, ops, torch_ops) -> tuple:
    headers = ["op", "size", "tinygrad_pt ms", "IQR", "rate", "% of copy", "reference ms",
               "torch ms", "tg / reference", "tg / torch"]
    rows, csv_rows = [], []
    cases = {c.name: c for c in op_cases(device)}
    copy = ops.get("copy")
    # The share of the copy's bandwidth is the GPU issue's yardstick (CuPy's copy kernel fills
    # the device). On the CPU NumPy's copyto runs on one thread, below what the cores can move,
    # so there is no such yardstick and the column stays empty.
    copy_rate = cases["copy"].work / copy["tinygrad_pt"]["median"] \
        if copy and device == "cuda" else None
    for case in cases.values():
        if case.name not in ops:
            continue
        tg, ref, th = ops[case.name]["tinygrad_pt"], ops[case.name]["reference"], \
            torch_ops.get(case.name)
        share = "-" if case.unit != "B" or copy_rate is None else \
            f"{100 * case.work / tg['median'] / copy_rate:.0f}%"
        rows.append([case.name, case.shape, _ms(tg), _iqr(tg), _rate(case, tg), share, _ms(ref),
                     _ms(th), _ratio(tg, ref), _ratio(tg, th)])
        for impl, s in (("tinygrad_pt", tg), ("reference", ref), ("torch", th)):
            if s is not None:
                csv_rows.append(_csv_row("ops", case.name, case.shape, impl, s))
    return markdown_table(headers, rows), csv_rows


def steps_table(steps, torch_steps) -> tuple:
    one_thread = any("tinygrad_pt_1t" in res for res in steps.values())
    headers = ["model", "size", "tinygrad_pt ms", "IQR", "steps/s", "tokens/s", "torch ms",
               "IQR (torch)", "tg / torch"] + \
        (["extra: tinygrad_pt, 1 thread ms", "IQR (1 thread)"] if one_thread else [])
    rows, csv_rows = [], []
    for name, res in steps.items():
        tg, tg1, th = res["tinygrad_pt"], res.get("tinygrad_pt_1t"), torch_steps.get(name)
        tokens = "-" if not res["tokens"] else f"{res['tokens'] / tg['median']:,.0f}"
        rows.append([name, res["size"], _ms(tg), _iqr(tg), f"{1 / tg['median']:.1f}", tokens,
                     _ms(th), _iqr(th), _ratio(tg, th)]
                    + ([_ms(tg1), _iqr(tg1)] if one_thread else []))
        for impl, s in (("tinygrad_pt", tg), ("tinygrad_pt, 1 thread", tg1), ("torch", th)):
            if s is not None:
                csv_rows.append(_csv_row("steps", name, res["size"], impl, s))
    return markdown_table(headers, rows), csv_rows


ONE_THREAD_NOTE = ("The headline columns are tinygrad_pt as a user gets it (no settings, no "
                   "environment variables; its thread policy: tinygrad_pt/threads.py), against "
                   "torch in its own process with the same thread count. 'extra: tinygrad_pt, 1 "
                   "thread' is the same step after tg.set_num_threads(1), timed alternately "
                   "with the headline, call by call: what the threads are worth on this "
                   "machine.")


OVERHEAD_META = ("wall", "profiled", "profile", "steps", "size")


def overhead_text(ov) -> str:
    total = ov["profiled"]
    parts = [k for k in ov if k not in OVERHEAD_META]
    rows = [[k, f"{ov[k] * 1e3:.1f}", f"{100 * ov[k] / total:.0f}%"] for k in parts]
    rows.append(["profiled step (the parts add up to it)", f"{total * 1e3:.1f}", "100%"])
    rows.append(["unprofiled step (median)", f"{ov['wall'] * 1e3:.1f}", "-"])
    prof_lines = ov["profile"].table().splitlines()
    return (f"One GPT step ({ov['size']}), ms per step; ops profiled with `tg.profile()` over "
            f"{ov['steps']} steps, at the default settings.\n\n"
            + markdown_table(["part", "ms", "share"], rows)
            + "\n\nPer op, all " + f"{ov['steps']} steps (the `tg.profile()` table):\n\n```\n"
            + "\n".join(prof_lines) + "\n```")


def _csv_row(suite, name, size, impl, s):
    return [suite, name, size, impl, f"{s['median'] * 1e3:.6g}", f"{s['min'] * 1e3:.6g}",
            f"{s['p25'] * 1e3:.6g}", f"{s['p75'] * 1e3:.6g}", len(s["times"])]


CSV_HEADERS = ["suite", "name", "size", "implementation", "median_ms", "min_ms", "p25_ms",
               "p75_ms", "runs"]


def plot(path, device, ops, torch_ops, steps, torch_steps) -> str:
    """Horizontal bars, log time axis: each op and each step, one bar per implementation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step_impls = ("tinygrad_pt",) + (("tinygrad_pt_1t",) if any(
        "tinygrad_pt_1t" in r for r in steps.values()) else ())
    panels = [(f"ops, forward + backward ({device})", ops, torch_ops, ("tinygrad_pt",
               "reference")), (f"training steps ({device})", steps, torch_steps, step_impls)]
    panels = [p for p in panels if p[1]]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    colors = {"tinygrad_pt": "tab:blue", "tinygrad_pt_1t": "tab:cyan", "reference": "tab:gray",
              "torch": "tab:orange"}
    labels = {"tinygrad_pt_1t": "extra: tinygrad_pt, 1 thread"}
    for ax, (title, ours, theirs, impls) in zip(axes[0], panels):
        names = list(ours)
        series = [(impl, [ours[n][impl]["median"] * 1e3 for n in names]) for impl in impls]
        if theirs:
            series.append(("torch", [theirs[n]["median"] * 1e3 if n in theirs else float("nan")
                                     for n in names]))
        height = 0.8 / len(series)
        for j, (impl, values) in enumerate(series):
            ax.barh([i + j * height for i in range(len(names))], values, height=height,
                    label=labels.get(impl, impl), color=colors[impl])
        ax.set_yticks([i + height * (len(series) - 1) / 2 for i in range(len(names))])
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("median ms per call (log scale; shorter is faster)")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


