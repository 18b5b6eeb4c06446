"""Shared pieces of the benchmark scripts, re-exported from the package's bench module
(``tinygrad_pt/bench``), where ``tinygrad-pt bench`` uses them too: one implementation.

    from common import machine_info, time_calls, markdown_table, write_results

- ``machine_info()``: CPU model, cores, load average, Numba threads and threading layer, BLAS,
  Python / NumPy / Numba (and CuPy, when imported) versions, the date.
- ``time_calls({name: fn})``: alternating, warmed-up timing; median, min, quartiles of each.
- ``markdown_table(headers, rows)`` and ``write_results(path, title, info, sections)``.
"""
from tinygrad_pt.bench.machine import end_of_run, machine_info  # noqa: F401
from tinygrad_pt.bench.report import (fmt_ms, info_lines, markdown_table,  # noqa: F401
                                      write_results, write_text)
from tinygrad_pt.bench.timing import first_call_seconds, time_calls  # noqa: F401
