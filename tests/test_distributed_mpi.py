"""Data parallel over MPI: two ranks (``mpiexec -n 2`` over loopback, spawned as a subprocess so
that the ordinary ``pytest -n 2`` run includes them) against one process.

Tolerances: the first step's averaged gradients, and the weights after 5 steps, within 1e-4 of
one process's on the global batch, as ||a - b|| / ||a|| over the whole model
(tinygrad_pt.distributed.check.rel_diff; the sum over ranks adds in another order, float32
rounding: ~1e-7 is measured). Every rank must hold exactly rank 0's weights. WGAN-GP is not
held to it: its gradient penalty draws its interpolation noise per rank
(benchmarks/results/distributed_cpu.md). The ranks run tests/mpi_worker.py.

The single-process parts (the sampler, the no-op world) run without MPI.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt.distributed import DistributedSampler, shard_bounds, shard_rows

try:
    import mpi4py  # noqa: F401
    HAVE_MPI = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                            + os.environ.get("PATH", "")) is not None
except ImportError:
    HAVE_MPI = False

needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and mpiexec: "
                               "pip install -e \".[mpi]\"")
TOL = 1e-4
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_worker.py")


def mpiexec(*args, timeout=60):
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCALNRANKS"))}
    # One thread per rank: two ranks share the two cores of CI with the other test worker.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    # stdin: mpiexec forwards its standard input to rank 0; CI has none to give.
    return subprocess.run([exe, "-n", "2", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


# ----------------------------------------------------------------------------------------------------
# Without MPI

def test_alone_everything_is_a_no_op():
    dist = tg.distributed
    assert dist.world_size() == 1 and dist.rank() == 0
    a = np.arange(4.0, dtype=np.float32)
    assert dist.all_reduce(a) is a and np.array_equal(a, np.arange(4.0))
    assert dist.broadcast(a) is a
    x = tg.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    assert dist.gather_rows(x) is x


def test_sampler_shards_are_disjoint_and_make_the_global_batch():
    full = DistributedSampler(100, 8, seed=3)
    parts = [DistributedSampler(100, 8, seed=3, rank=r, world=2) for r in range(2)]
    for epoch in range(2):
        for s in [full, *parts]:
            s.set_epoch(epoch)
        for whole, a, b in zip(full, *parts):
            assert len(a) == len(b) == 4 and not set(a) & set(b)
            assert np.array_equal(np.concatenate([a, b]), whole)
    full.set_epoch(0)
    first = next(iter(full))
    full.set_epoch(1)
    assert not np.array_equal(first, next(iter(full)))  # reshuffled per epoch


def test_a_batch_that_does_not_split_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot be split evenly over 3 ranks"):
        shard_bounds(10, 0, 3)
    with pytest.raises(ValueError, match="divisible by 2"):
        DistributedSampler(100, 7, rank=0, world=2)
    x = np.arange(12).reshape(2, 6)
    assert np.array_equal(shard_rows(x, 1, 2, axis=1), x[:, 3:])


# ----------------------------------------------------------------------------------------------------
# Two ranks

FAMILIES = ["ae", "dae", "vae", "gan", "gpt", "simclr", "moco"]


@pytest.fixture(scope="module")
def agreement():
    """One mpiexec job checks every family (one start-up of MPI and the imports, not seven)."""
    r = mpiexec(sys.executable, WORKER, "same",
                ",".join(FAMILIES), "5", timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return {m.group(1): tuple(map(float, m.groups()[1:])) for m in re.finditer(
        r"(\w+): grad_rel=(\S+) weight_rel=(\S+) rank_spread=(\S+)", r.stdout)}, r.stdout


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("family", FAMILIES)
def test_two_ranks_train_like_one_process(agreement, family):
    found, stdout = agreement
    assert family in found, stdout
    grad_rel, weight_rel, spread = found[family]
    assert grad_rel < TOL and weight_rel < TOL, stdout
    assert spread == 0.0, "the ranks' weights drifted apart"


@needs_mpi
@pytest.mark.mpi
def test_collectives_and_data_parallel_module():
    r = mpiexec(sys.executable, "-m", "tinygrad_pt.distributed.check")
    assert r.returncode == 0 and "api: ok" in r.stdout, r.stdout + r.stderr[-3000:]


@needs_mpi
@pytest.mark.mpi
def test_a_rank_that_raises_ends_the_job():
    r = mpiexec(sys.executable, WORKER, "raise", timeout=60)
    assert r.returncode != 0
    assert "rank 1 failed on purpose" in r.stderr
    assert "did not end the job" not in r.stdout


@needs_mpi
@pytest.mark.mpi
def test_models_that_differ_across_ranks_are_a_clear_error():
    r = mpiexec(sys.executable, WORKER, "mismatch")
    assert r.returncode != 0
    assert "differs between ranks" in r.stderr and "rank(s) [1]" in r.stderr


@needs_mpi
@pytest.mark.mpi
def test_cli_batch_not_divisible_and_rank_0_writes_alone(tmp_path):
    out = tmp_path / "run"
    r = mpiexec("tinygrad-pt", "train", "ae", "--steps", "2", "--set", "batch_size=15",
                "--out", str(out), "--quiet")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "batch_size=15 cannot be split evenly over 2 ranks" in r.stderr
    r = mpiexec("tinygrad-pt", "train", "ae", "--steps", "4", "--set", "batch_size=16",
                "hidden=16", "--out", str(out), "--quiet", "--overwrite")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    steps = [int(re.search(r'"step": (\d+)', row).group(1)) for row in rows
             if '"train"' in row]
    assert steps == sorted(set(steps)), "one writer: no step logged twice"
    # Resume on the same N continues the run to the new total.
    r = mpiexec("tinygrad-pt", "train", "ae", "--steps", "6", "--resume", "--out", str(out),
                "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert tg.load(str(out / "checkpoint.safetensors"))


def _rank_pids(marker: str) -> list:
    """The pids of the ranks (not mpiexec, not its proxy) whose command line holds `marker`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv and not any(b"mpiexec" in a or b"hydra" in a for a in argv):
            pids.append(int(entry))
    return pids


@needs_mpi
@pytest.mark.mpi
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the ranks through /proc")
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCALNRANKS"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    job = subprocess.Popen([exe, "-n", "2", "tinygrad-pt", "train", "ae", "--steps", "1000000",
                            "--set", "batch_size=16", "hidden=16", "--out", str(out), "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        log = out / "metrics.jsonl"
        while time.monotonic() < deadline and not (log.exists() and log.stat().st_size):
            time.sleep(0.2)
        pids = _rank_pids(str(out))
        assert len(pids) == 2, pids
        os.kill(max(pids), signal.SIGTERM)  # one rank only (whichever it is)
        _, err = job.communicate(timeout=40)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "stopped (SIGTERM)" in err and (out / "checkpoint.safetensors").exists(), err[-2000:]
