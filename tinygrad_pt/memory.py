"""Freed arrays' memory stays with the process: glibc's malloc told to keep it (Linux, once, when
tinygrad_pt is imported).

Why. A training step makes and drops the same large temporaries every time (activations, their
gradients, the kernels' outputs: 0.5-4 MB each in the small GPT). glibc's malloc hands memory above
its mmap threshold straight back to the kernel when it is freed, and trims the top of its heap
once enough there is free; the next step's arrays of the same size then fault their pages in
again, one 4 KiB page at a time, each zeroed by the kernel. Measured on the 2-core VM (one GPT
step, 4 layers x 128 wide, T = 128, B = 16): 7,700 page faults and 17 ms of system time per step
on two threads; with the settings below 3 faults and 1.3 ms, and the step's CPU time on one
thread 7-9% lower (197 -> 183 ms and 210 -> 191 ms, benchmarks/step_cpu_time.py, two runs each).
PyTorch's CPU steps fault far less (1,100 per step) for the same reason its GPU allocator caches:
memory a loop will ask for again should not go back to the OS between iterations.

What is set. ``M_MMAP_THRESHOLD`` to 32 MiB (glibc's largest on 64-bit): blocks up to that size
come from the heap, which reuses freed memory; ``M_TRIM_THRESHOLD`` to 256 MiB: the heap's free
top is given back only beyond that. Either one also switches off glibc's own adaptive threshold,
which only rises after a large block has gone back to the OS, and the heap trim that follows it.
The cost is that the process keeps its peak working set (up to 256 MiB more than it uses at a
moment) instead of returning it between steps.

Off switch: ``TINYGRAD_PT_KEEP_MEMORY=0`` in the environment before the import (a user embedding
the framework in a process whose memory profile matters more than step time). Elsewhere (macOS,
Windows, musl) nothing is changed.
"""
from __future__ import annotations

import os
import platform

__all__ = ["keeps_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h parameter numbers
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 256 << 20

_state = {"kept": False}


def keep_freed_memory() -> bool:
    """Apply the settings above (once; at import). True when glibc took them."""
    if _state["kept"] or os.environ.get("TINYGRAD_PT_KEEP_MEMORY", "1") == "0":
        return _state["kept"]
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success, 0 when the value is out of range
    _state["kept"] = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                          and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _state["kept"]


def keeps_freed_memory() -> bool:
    """Whether this process runs with the settings above (for reports: the bench states it)."""
    return _state["kept"]
