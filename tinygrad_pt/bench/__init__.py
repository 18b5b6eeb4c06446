"""Benchmarks a user can trust: ``tinygrad-pt bench [ops|steps|all]``.

    tinygrad-pt bench all --compare torch --out benchmarks/results

- ``ops.py`` / ``torch_ops.py``: per-op forward + backward cases, tinygrad_pt and torch
- ``steps.py`` / ``torch_steps.py``: one training step of each model family, both frameworks
- ``suite.py``: runs them (torch in a child process, ``worker.py``), the GPT overhead breakdown,
  and writes Markdown + CSV + PNG
- ``timing.py`` (medians, quartiles, CUDA-event clocks), ``machine.py``, ``report.py``: shared
  with the scripts in benchmarks/

PyTorch is optional and only ever imported by the torch_* modules and the worker.
"""
from .suite import SUITES, BenchError, run_bench  # noqa: F401
