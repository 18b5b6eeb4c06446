"""tinygrad_pt/memory.py: on glibc, freed arrays' pages stay with the process for the next step."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the malloc settings are glibc's (elsewhere nothing is changed)")

# Three 2 MiB arrays made, written and freed, three times over: the pattern of a step's
# temporaries. Below NumPy's 4 MiB huge-page size, so each page is a 4 KiB fault. Prints the page
# faults of the last round and whether the settings are on.
_STEP_LIKE = """
import resource, numpy as np
import tinygrad_pt
from tinygrad_pt.memory import keeps_freed_memory
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.empty(1 << 19, np.float32) for _ in range(3)]
    for a in arrays:
        a.fill(1.0)
    del arrays, a
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults, keeps_freed_memory())
"""


def _run(keep: str):
    env = dict(os.environ, TINYGRAD_PT_KEEP_MEMORY=keep)
    out = subprocess.run([sys.executable, "-c", _STEP_LIKE], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[0]), out[1] == "True"


def test_freed_arrays_are_reused_without_page_faults():
    faults, kept = _run("1")
    assert kept
    assert faults < 100, faults  # 1,536 pages were written: they came back without faulting


def test_the_switch_leaves_malloc_as_it_was_and_then_the_pages_fault_again():
    faults, kept = _run("0")
    assert not kept
    assert faults > 1000, faults  # glibc trimmed the freed 6 MiB and faulted it in again
