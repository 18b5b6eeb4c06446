"""The GPU check (benchmarks/gpu_check.sh and gpu_kernels_check.py), dry-run on the CPU.

A GPU session gets minutes, not hours: the script it runs must already work. The dry run runs
the script's CPU half (the correctness harness, the NVRTC compile, the report writing, a training
run on the CPU) and stubs the commands that need a GPU; this file runs it (about 10 s) and checks
what it writes, and that the harness fails a kernel that is wrong.
"""
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

from tinygrad_pt.kernels import reference as R
from tinygrad_pt.kernels.cuda.cuda_c import nvrtc

REPO = Path(__file__).resolve().parents[1]


def _load_check_module():
    spec = importlib.util.spec_from_file_location(
        "gpu_kernels_check", REPO / "benchmarks" / "gpu_kernels_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_writes_every_report(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    run = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "gpu_check.log").read_text() if (tmp_path / "gpu_check.log").exists() else ""
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{log}"
    for name in ("cuda_kernels.md", "gpu_tests.txt", "bench_cuda.md", "gpu_check.log"):
        assert (tmp_path / name).is_file(), f"{name} not written; {sorted(os.listdir(tmp_path))}"
    kernels = (tmp_path / "cuda_kernels.md").read_text()
    assert "DRY RUN" in kernels and "checks passed" in kernels and "FAIL" not in kernels
    if nvrtc.find_nvrtc() is not None:
        assert "40 kernels compiled" in kernels
    assert "tests collected" in (tmp_path / "gpu_tests.txt").read_text()
    assert "| ae | 0 |" in (tmp_path / "bench_cuda.md").read_text()


def test_the_harness_fails_a_wrong_kernel():
    check = _load_check_module()
    # a softmax off by 0.1%: far above float32 rounding, and what a dropped term of a row of
    # 1000 would do
    wrong = types.SimpleNamespace(**{f: getattr(R, f) for f in
                                     ("softmax_bwd", "log_softmax_fwd", "log_softmax_bwd")})
    wrong.softmax_fwd = lambda x, axis=-1: R.softmax_fwd(x, axis) * x.dtype.type(1.001)
    rows = check.check("wrong", lambda family: wrong if family == "softmax" else R, np,
                       (np.float32,), quick=True)
    bad = [r for r in rows if r[4] != "ok"]
    assert bad and all(r[1] == "softmax" and r[2].startswith("softmax_fwd") for r in bad), bad


def test_bytes_moved_counts_each_input_and_output_once():
    check = _load_check_module()
    assert check.bytes_moved("softmax_fwd", 8192, 4096, 4) == 2 * 8192 * 4096 * 4
    assert check.bytes_moved("adamw_update", 10, 10, 4) == 7 * 100 * 4
