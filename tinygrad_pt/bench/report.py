"""Benchmark reports: Markdown tables and files (written atomically)."""
from __future__ import annotations

import csv
import io
import os

__all__ = ["markdown_table", "info_lines", "write_results", "write_text", "csv_text", "fmt_ms"]


def markdown_table(headers, rows) -> str:
    """A GitHub Markdown table; cells are str()-ed, numbers right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in cells) and bool(cells) for i in range(len(headers))]

    def line(values):
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w)
                                 for v, w, num in zip(values, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                          for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line([str(h) for h in headers]), rule] + [line(r) for r in cells])


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x"))
        return True
    except ValueError:
        return text in ("", "-")


def info_lines(info: dict) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in info.items())


def write_text(path, text: str) -> str:
    """Write `text` to `path` atomically (a temporary file, then a rename): a reader never sees
    half a table. Creates the folder. Returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def csv_text(headers, rows) -> str:
    """Rows as CSV text (the csv module's quoting)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue()


def write_results(path, title: str, info: dict, sections) -> str:
    """Write a Markdown report: title, the machine lines, then (heading, text) sections.
    Returns the text (also for printing)."""
    parts = [f"# {title}", "", info_lines(info), ""]
    for heading, text in sections:
        parts += [f"## {heading}", "", text.rstrip(), ""]
    text = "\n".join(parts)
    if path is not None:
        write_text(path, text)
    return text


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}" if seconds < 1 else f"{seconds * 1e3:.0f}"
