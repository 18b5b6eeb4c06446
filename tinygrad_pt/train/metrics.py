"""The metrics log: one JSON object per line (JSONL), appended as training runs.

Each line is a flat object

    {"step": 120, "split": "train", "loss": 0.4132, "lr": 0.0003, "time": 14.2}
    {"step": 200, "split": "eval", "test_mse": 0.0121, "time": 23.9}

where ``step`` counts completed optimisation steps, ``split`` is "train" (the step's own metrics,
read back every ``log_every`` steps) or "eval" (``recipe.evaluate()``), and ``time`` is the
seconds of training since the run began (summed over resumed sessions). Non-finite values (a
diverged loss) are written as ``null``, so every line is strict JSON that any tool can read.

A resumed run first cuts the log back to the checkpoint's step (``truncate``): lines written after
the last checkpoint, by a run that then crashed, would otherwise appear twice.
"""
from __future__ import annotations

import json
import math
import os

__all__ = ["MetricsLog", "read_metrics", "truncate"]

SPLITS = ("train", "eval")


def _json_value(key: str, value):
    """A JSON-ready number: float/int (non-finite -> None); anything else is a TypeError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metrics: the value of {key!r} is a {type(value).__name__}; a metric must "
                        "be a number (or a 0-d Tensor read back with .item())") from None
    return value if math.isfinite(value) else None


class MetricsLog:
    """Append-only writer of a JSONL metrics file.

    ``MetricsLog(path, fresh=True)`` starts an empty file; ``fresh=False`` appends to what is
    there (a resumed run, after ``truncate``). Each ``write`` is flushed, so the file can be read
    (or plotted) while training goes on, and a crash loses at most the line being written.
    """

    def __init__(self, path, fresh: bool = True):
        self.path = os.fspath(path)
        if fresh:
            open(self.path, "w").close()

    def write(self, step: int, split: str, metrics: dict, time: float) -> dict:
        """Append ``{"step", "split", **metrics, "time"}``; returns the row as written."""
        if split not in SPLITS:
            raise ValueError(f"MetricsLog.write: split must be one of {SPLITS}, got {split!r}")
        reserved = {"step", "split", "time"} & set(metrics)
        if reserved:
            raise ValueError(f"MetricsLog.write: metric names {sorted(reserved)} are reserved for "
                             "the log's own columns; rename them in the recipe")
        row = {"step": int(step), "split": split}
        row.update({str(k): _json_value(k, v) for k, v in metrics.items()})
        row["time"] = round(float(time), 3)
        with open(self.path, "a") as f:
            f.write(json.dumps(row, allow_nan=False) + "\n")
        return row


def read_metrics(path) -> list:
    """All rows of a JSONL metrics file, in order, as dicts.

    Raises FileNotFoundError for a missing file and ValueError naming the line for one that is
    not a JSON object with "step" and "split". A half-written last line (a crash mid-write) is
    skipped.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "read_metrics: no such metrics log", path)
    with open(path) as f:
        lines = f.read().split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # no newline after it: the write was cut off
                continue
            raise ValueError(f"read_metrics: line {number} of {path!r} is not JSON: "
                             f"{line[:80]!r}") from None
        if not isinstance(row, dict) or "step" not in row or "split" not in row:
            raise ValueError(f"read_metrics: line {number} of {path!r} is not a metrics row "
                             f"(a JSON object with 'step' and 'split'): {line[:80]!r}")
        rows.append(row)
    return rows


def truncate(path, step: int) -> int:
    """Keep only the rows with ``row["step"] <= step`` (rewritten atomically); returns how many
    rows were dropped. A missing file is left missing (0 dropped)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return 0
    rows = read_metrics(path)
    kept = [r for r in rows if r["step"] <= step]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(json.dumps(r, allow_nan=False) + "\n" for r in kept)
    os.replace(tmp, path)
    return len(rows) - len(kept)
