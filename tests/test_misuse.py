"""Runs that survive misuse (issue 17): the run-directory lock, settings checked before step 1,
diverged runs, damaged and hostile checkpoints, SIGTERM, exact resume, bad --out directories.

Every case is run through the command in-process (cli.main) or in a child process where a
second process is the point (the lock, a real SIGTERM). Hostile checkpoints are written byte by
byte at test time (tests/hostile_files.py), never committed.
"""
import errno
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

from tinygrad_pt import cli
from tinygrad_pt.errors import UserError
from tinygrad_pt.train import checkpoint as ckpt_mod
from tinygrad_pt.train import loop as loop_mod
from tinygrad_pt.train.checkpoint import CHECKPOINT_NAME, checkpoint_info, load_checkpoint
from tinygrad_pt.train.loop import TrainingInterrupted, train
from tinygrad_pt.train.metrics import read_metrics
from tinygrad_pt.train.recipe import memory_limit
from tinygrad_pt.train.recipes import RECIPES, get_recipe
from tinygrad_pt.train.rundir import LOCK_NAME, run_lock

from hostile_files import safetensors_bytes
from test_checkpoint_resume import TINY, TinyRegression, assert_same_state, full_state

MAIN_THREAD = threading.current_thread() is threading.main_thread()


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(RECIPES, "tiny", TinyRegression)


def run(*argv):
    return cli.main([str(a) for a in argv])


def fails(capsys, *argv, code=2):
    """Run a command that must fail with `code` and one line on stderr; returns the line."""
    with pytest.raises(SystemExit) as e:
        run(*argv)
    err = capsys.readouterr().err
    assert e.value.code == code, err
    lines = [line for line in err.splitlines() if not line.startswith("tinygrad-pt: warning:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tiny_sets(name):
    cls = get_recipe(name)
    return [f"{k}={v}" for k, v in TINY.items() if k in cls.defaults and k != "eval_every"]


# ----------------------------------------------------------------------------------------------------
# 1. One writer per run directory

def _child(code: str) -> subprocess.Popen:
    """A Python child that runs `code`, prints "ready" and waits for stdin to close."""
    script = textwrap.dedent(code) + "\nprint('ready', flush=True)\nsys.stdin.read()\n"
    child = subprocess.Popen([sys.executable, "-c", "import sys\n" + script],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def _lock_holder(run_dir) -> subprocess.Popen:
    return _child(f"""
        from tinygrad_pt.train.rundir import run_lock
        lock = run_lock({str(run_dir)!r}); lock.__enter__()
    """)


def test_a_second_run_into_a_locked_directory_names_the_holder(tiny, tmp_path, capsys):
    holder = _lock_holder(tmp_path)
    try:
        err = fails(capsys, "train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet")
        assert f"in use by another training run (pid {holder.pid}" in err
        assert not os.path.exists(tmp_path / CHECKPOINT_NAME)  # nothing written
        # --resume and --overwrite meet the same lock
        err = fails(capsys, "train", "tiny", "--out", tmp_path, "--quiet", "--overwrite")
        assert f"pid {holder.pid}" in err
    finally:
        holder.stdin.close()
        holder.wait()
    assert run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet") == 0  # released


def test_a_killed_holder_leaves_a_stale_lock_that_blocks_nothing(tiny, tmp_path):
    assert run("train", "tiny", "--steps", 3, "--out", tmp_path, "--quiet") == 0
    holder = _lock_holder(tmp_path)
    holder.kill()  # SIGKILL: no chance to clean up
    holder.wait()
    with open(tmp_path / LOCK_NAME) as f:
        assert f.read().strip() == str(holder.pid)  # the file stays, nothing holds it
    assert run("train", "tiny", "--resume", "--steps", 5, "--out", tmp_path, "--quiet") == 0
    assert checkpoint_info(tmp_path / CHECKPOINT_NAME)["step"] == 5


def test_the_lock_is_reentrant_within_a_process_and_refuses_another(tmp_path):
    with run_lock(tmp_path):
        with run_lock(tmp_path):  # the CLI takes it, then train() again
            pass
        holder_pid = open(tmp_path / LOCK_NAME).read().strip()
        assert holder_pid == str(os.getpid())
        child = subprocess.run(
            [sys.executable, "-c", "from tinygrad_pt.train.rundir import run_lock\n"
             f"run_lock({str(tmp_path)!r}).__enter__()"], capture_output=True, text=True)
        assert child.returncode != 0 and f"pid {os.getpid()}" in child.stderr


def test_readers_need_no_lock(tiny, tmp_path, capsys):
    assert run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet") == 0
    holder = _lock_holder(tmp_path)
    try:
        capsys.readouterr()
        assert run("sample", "--from", tmp_path, "--n", 2) == 0
    finally:
        holder.stdin.close()
        holder.wait()


@pytest.mark.slow
def test_two_real_runs_into_one_directory(tmp_path):
    """The prober's case: two `tinygrad-pt train ae` into one --out. The second fails at once
    naming the first's pid; SIGTERM stops the first with 143 and a checkpoint that resumes."""
    out = tmp_path / "D"
    cmd = [sys.executable, "-m", "tinygrad_pt.cli", "train", "ae", "--steps", "200000",
           "--out", str(out), "--quiet", "--checkpoint-every", "0", "--eval-every", "0"]
    first = subprocess.Popen(cmd + ["--seed", "1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not os.path.exists(out / "metrics.jsonl") or not read_metrics(out / "metrics.jsonl"):
            assert time.time() < deadline and first.poll() is None
            time.sleep(0.1)
        second = subprocess.run(cmd + ["--seed", "2"], capture_output=True, text=True)
        assert second.returncode == 2
        assert f"in use by another training run (pid {first.pid}" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 143
        assert "stopped (SIGTERM)" in first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    step = checkpoint_info(out / CHECKPOINT_NAME)["step"]
    assert step > 0
    done = subprocess.run(cmd[:5] + ["--until", str(step + 2), "--resume", "--out", str(out),
                                     "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert checkpoint_info(out / CHECKPOINT_NAME)["step"] == step + 2


# ----------------------------------------------------------------------------------------------------
# 2. Every setting checked before step 1

@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_setting_of_every_recipe_has_a_check(name):
    cls = get_recipe(name)
    assert set(cls.defaults) <= set(cls.checks), sorted(set(cls.defaults) - set(cls.checks))
    cls.validate_config({})  # the defaults pass their own checks
    for key in cls.defaults:  # and a value of no sensible type fails each, naming it
        with pytest.raises(UserError, match=rf"{name}: config {key}=\[1\]; expected"):
            cls.validate_config({key: [1]})


@pytest.mark.parametrize("name, setting, expected", [
    ("gpt", "top_k=0", "gpt: config top_k=0; expected an integer in [1, 256]"),
    ("gpt", "temperature=-1", "gpt: config temperature=-1.0; expected a number >= 0"),
    ("gpt", "lr=inf", "gpt: config lr=inf; expected a positive number (finite)"),
    ("gpt", "lr=nan", "gpt: config lr=nan; expected a positive number"),
    ("gpt", "lr=0", "gpt: config lr=0.0; expected a positive number"),
    ("gpt", "dropout=1", "gpt: config dropout=1.0; expected a number in [0, 1)"),
    ("gpt", "n_head=3", "gpt: config n_embd=16; expected a multiple of n_head=3"),
    ("gpt", "min_lr=0.5", "gpt: config min_lr=0.5; expected at most lr=0.002"),
    ("gpt", "sample_tokens=1000000000", "gpt: config sample_tokens=1000000000; expected an "
                                        "integer in [1, 100000]"),
    ("gpt", "batch_size=0", "gpt: config batch_size=0; expected a positive integer"),
    ("gpt", "beta2=1", "gpt: config beta2=1.0; expected a number in [0, 1)"),
    ("gpt", "grad_clip=-1", "gpt: config grad_clip=-1.0; expected a positive number"),
    ("vae", "min_lr=-1", "vae: config min_lr=-1.0; expected a number >= 0"),
    ("dae", "mask_fraction=1", "dae: config mask_fraction=1.0; expected a number in [0, 1)"),
    ("moco", "momentum=2", "moco: config momentum=2.0; expected a number in [0, 1]"),
    ("simclr", "batch_size=5000", "simclr: config batch_size=5000; expected at most the 1438"),
])
def test_bad_settings_fail_before_any_training(tmp_path, capsys, monkeypatch, name, setting,
                                               expected):
    # Before the fix top_k=0 trained every step, then failed in generate.
    monkeypatch.setattr(get_recipe(name), "train_step",
                        lambda self, step: pytest.fail("a step ran with a bad setting"))
    err = fails(capsys, "train", name, "--steps", 2, "--out", tmp_path, "--quiet",
                "--set", *tiny_sets(name), setting)
    assert expected in err
    assert os.listdir(tmp_path) == []  # the run directory untouched


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_state_sizes_are_those_of_the_built_modules(name):
    cls = get_recipe(name)
    config = {k: v for k, v in TINY.items() if k in cls.defaults}
    recipe = cls(config)
    built = {m: sum(v.size for v in module.state_dict().values())
             for m, module in recipe.modules.items()}
    assert cls.state_sizes(recipe.config) == built


@pytest.mark.parametrize("name, setting", [("gpt", "n_layer=1000000"), ("gpt", "n_embd=100000"),
                                           ("gpt", "block_size=1000000000"),
                                           ("ae", "batch_size=1000000000"),
                                           ("vae", "hidden=100000000"),
                                           ("moco", "queue_size=10000000000")])
def test_absurd_sizes_are_refused_with_the_estimate(tmp_path, capsys, name, setting):
    err = fails(capsys, "train", name, "--out", tmp_path, "--quiet", "--set", setting)
    assert f"{name}: this config needs about" in err and "GiB of memory" in err
    assert setting in err.replace(", ", " ").replace("(", " ").split(" ") or \
        setting.split("=")[0] in err


def test_memory_limit_is_half_the_machine():
    assert memory_limit() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


# ----------------------------------------------------------------------------------------------------
# 2b. A diverged run stops, keeping its last good checkpoint

class DivergingTiny(TinyRegression):
    """Its weights turn NaN during step `nan_at` (0-based), as a too-large rate would do."""

    nan_at = 5

    def train_step(self, step):
        out = super().train_step(step)
        if step == self.nan_at:
            self.modules["mlp"][0].weight.data[...] = np.nan
        return out


@pytest.mark.parametrize("nan_at, log_every, found", [
    # NaN weights after step 5 (1-based): the loss of step 6 is NaN, found at its log line
    (4, 1, "training diverged at step 6: loss is nan; the last finite metrics were at step 5"),
    # ... and without a log line, by the read-back before the save of step 6
    (4, 100, "training diverged at step 6: loss is nan; the last finite metrics were at step 4"),
    # NaN weights after step 6 itself, a save step: its loss (before the update) is finite, so
    # the weights are checked before they are written
    (5, 100, "training diverged at step 6: the weights hold NaN or Inf (module.mlp.0.weight)"),
])
def test_a_diverged_run_stops_with_exit_3_and_keeps_the_last_good_checkpoint(
        tmp_path, capsys, monkeypatch, nan_at, log_every, found):
    monkeypatch.setattr(DivergingTiny, "nan_at", nan_at)
    monkeypatch.setitem(RECIPES, "tiny", DivergingTiny)
    err = fails(capsys, "train", "tiny", "--steps", 12, "--out", tmp_path, "--quiet",
                "--checkpoint-every", 2, "--set", f"log_every={log_every}", code=3)
    assert found in err
    assert "the checkpoint of step 4" in err and "is kept" in err and "lr=0.01" in err
    info = checkpoint_info(tmp_path / CHECKPOINT_NAME)
    assert info["step"] == 4
    restored = TinyRegression({"steps": 12})
    load_checkpoint(tmp_path / CHECKPOINT_NAME, restored)
    assert all(np.isfinite(v).all() for v in full_state(restored).values())


def test_lr_1e38_is_a_divergence_not_a_plotting_traceback(tmp_path, capsys):
    err = fails(capsys, "train", "ae", "--steps", 30, "--out", tmp_path, "--quiet",
                "--set", "lr=1e38", code=3)
    assert "ae: training diverged at step" in err and "lower the learning rate (lr=1e+38" in err
    assert not os.path.exists(tmp_path / "loss_curves.png")


# ----------------------------------------------------------------------------------------------------
# 3. Ordinary mistakes: one line, exit 2

@pytest.mark.parametrize("argv, message", [
    (["--steps", 0], "--steps 0: expected a positive number of steps"),
    (["--steps", -1], "--steps -1: expected a positive number of steps"),
    (["--eval-every", -1], "--eval-every -1: expected 0 (only at the end) or more"),
    (["--checkpoint-every", -3], "--checkpoint-every -3: expected 0 (only at the end) or more"),
    (["--until", 0], "--until 0: expected a positive number of steps"),
    (["--steps", 4, "--until", 5], "--until 5: past the run's total of 4 steps"),
])
def test_bad_step_options(tiny, tmp_path, capsys, argv, message):
    err = fails(capsys, "train", "tiny", "--out", tmp_path, "--quiet", *argv)
    assert message in err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--steps", 0], "--steps 0: expected a positive number of steps"),
    (["demo", "--seed", -1], "--seed -1: expected an integer >= 0"),
    (["train", "tiny", "--seed", -1], "--seed -1: expected an integer >= 0"),
    (["sample", "--from", __file__], f"--from {__file__}: no such run directory"),
])
def test_other_bad_options(tiny, capsys, argv, message):
    assert message in fails(capsys, *argv)


def test_resume_to_fewer_steps_than_done(tiny, tmp_path, capsys):
    assert run("train", "tiny", "--steps", 4, "--out", tmp_path, "--quiet") == 0
    err = fails(capsys, "train", "tiny", "--resume", "--steps", 2, "--out", tmp_path, "--quiet")
    assert "--steps 2: the run in" in err and "is already at step 4" in err


def test_out_that_is_a_file_or_too_long(tiny, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    err = fails(capsys, "train", "tiny", "--steps", 2, "--out", tmp_path / "f", "--quiet")
    assert "exists and is not a directory" in err
    err = fails(capsys, "train", "tiny", "--steps", 2, "--out", tmp_path / ("x" * 300), "--quiet")
    assert "cannot create the run directory" in err and "File name too long" in err


def test_out_that_is_read_only(tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: refuse the write as a read-only mount would
        real_open = os.open

        def read_only(path, *a, **k):
            if os.fspath(path).startswith(str(out)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
            return real_open(path, *a, **k)
        monkeypatch.setattr(os, "open", read_only)
    else:
        out.chmod(0o555)
    err = fails(capsys, "train", "tiny", "--steps", 2, "--out", out, "--quiet")
    assert "cannot write in the run directory" in err


def test_a_full_disk_while_saving_keeps_the_last_checkpoint(tiny, tmp_path, capsys,
                                                             monkeypatch):
    real_save = ckpt_mod.save
    calls = []

    def save(arrays, path, metadata=None):
        calls.append(metadata["step"])
        if metadata["step"] == "4":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_save(arrays, path, metadata=metadata)
    monkeypatch.setattr(ckpt_mod, "save", save)
    err = fails(capsys, "train", "tiny", "--steps", 6, "--out", tmp_path, "--quiet",
                "--checkpoint-every", 2)
    assert "cannot write the checkpoint of step 4" in err and "No space left on device" in err
    assert "the checkpoint of step 2 there is intact" in err and "--resume" in err
    assert checkpoint_info(tmp_path / CHECKPOINT_NAME)["step"] == 2


def test_a_full_disk_elsewhere_is_one_line(tiny, tmp_path, capsys, monkeypatch):
    from tinygrad_pt.train import metrics

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
    monkeypatch.setattr(metrics.MetricsLog, "write", full)
    err = fails(capsys, "train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet")
    assert "No space left on device" in err and "metrics.jsonl" in err


def test_a_bug_still_shows_its_traceback(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(TinyRegression, "train_step", lambda self, step: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet")


# ----------------------------------------------------------------------------------------------------
# 3-4, 7. Damaged and hostile checkpoints

def _read(path):
    """(header without metadata, metadata, data bytes) of a safetensors file."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    return header, meta, raw[8 + n:]


def _rewrite(src, dst, tensors=None, meta=None, drop=(), rename=None):
    """Copy checkpoint `src` to `dst` with changed metadata and tensors."""
    header, old_meta, data = _read(src)
    entries = {}
    for name, h in header.items():
        begin, end = h["data_offsets"]
        entries[name] = (h["dtype"], h["shape"], data[begin:end])
    for name in drop:
        entries.pop(name)
    if rename:
        for old, new in rename.items():
            entries[new] = entries.pop(old)
    entries.update(tensors or {})
    metadata = {**old_meta, **(meta or {})}
    metadata = {k: v for k, v in metadata.items() if v is not None}
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as f:
        f.write(safetensors_bytes(entries, metadata))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished 4-step tiny run, to copy and damage."""
    out = tmp_path_factory.mktemp("good")
    train(TinyRegression({"steps": 4}), str(out), progress=False, artifacts=False)
    return out


def _hostile(good, case):
    src = os.path.join(good, CHECKPOINT_NAME)
    raw = open(src, "rb").read()
    header, meta, _ = _read(src)
    config = json.loads(meta["config"])
    w = "module.mlp.0.weight"
    f32 = lambda *shape: ("F32", shape, np.zeros(shape, np.float32).tobytes())  # noqa: E731
    return {
        "truncated": lambda dst: open(dst, "wb").write(raw[:len(raw) // 2]),
        "header only": lambda dst: open(dst, "wb").write(raw[:8 + struct.unpack("<Q", raw[:8])[0]]),
        "garbage": lambda dst: open(dst, "wb").write(os.urandom(4096)),
        "empty": lambda dst: open(dst, "wb").close(),
        "huge header length": lambda dst: open(dst, "wb").write(struct.pack("<Q", 2**62) + raw[8:]),
        "a directory": lambda dst: os.makedirs(dst),
        "a renamed weight": lambda dst: _rewrite(src, dst, rename={w: "module.mlp.9.weight"}),
        "a missing weight": lambda dst: _rewrite(src, dst, drop=[w]),
        "a foreign section": lambda dst: _rewrite(src, dst, tensors={"evil.x": f32(1)}),
        "a wrong shape": lambda dst: _rewrite(src, dst, tensors={w: f32(8, 64)}, drop=[w]),
        "float64 weights": lambda dst: _rewrite(src, dst, tensors={
            w: ("F64", header[w]["shape"], np.zeros(header[w]["shape"]).tobytes())}),
        "int32 weights": lambda dst: _rewrite(src, dst, tensors={
            w: ("I32", header[w]["shape"], np.zeros(header[w]["shape"], np.int32).tobytes())}),
        "config not JSON": lambda dst: _rewrite(src, dst, meta={"config": "{hidden: 16"}),
        "config missing": lambda dst: _rewrite(src, dst, meta={"config": None}),
        "config a list": lambda dst: _rewrite(src, dst, meta={"config": "[1, 2]"}),
        "config with a string size": lambda dst: _rewrite(src, dst, meta={
            "config": json.dumps({**config, "hidden": "16"})}),
        "config with an unknown key": lambda dst: _rewrite(src, dst, meta={
            "config": json.dumps({**config, "evil": 1})}),
        "config of another size": lambda dst: _rewrite(src, dst, meta={
            "config": json.dumps({**config, "hidden": 32})}),
        "negative step": lambda dst: _rewrite(src, dst, meta={"step": "-5"}),
        "step not a number": lambda dst: _rewrite(src, dst, meta={"step": "four"}),
        "step smaller than trained": lambda dst: _rewrite(src, dst, meta={"step": "1"}),
        "negative seed": lambda dst: _rewrite(src, dst, meta={"seed": "-1"}),
        "rng_recipe broken": lambda dst: _rewrite(src, dst, meta={"rng_recipe": "{"}),
        "rng_recipe of the wrong shape": lambda dst: _rewrite(src, dst, meta={"rng_recipe": "{}"}),
        "rng_backend a list": lambda dst: _rewrite(src, dst, meta={"rng_backend": "[]"}),
        "elapsed nan": lambda dst: _rewrite(src, dst, meta={"elapsed": "nan"}),
        "device tpu": lambda dst: _rewrite(src, dst, meta={"device": "tpu"}),
        "format version 99": lambda dst: _rewrite(src, dst, meta={"format_version": "99"}),
        "no metadata": lambda dst: _rewrite(src, dst, meta={"format_version": None}),
        "extra state missing": lambda dst: _rewrite(src, dst, drop=["extra.seen"]),
    }[case]


HOSTILE = ["truncated", "header only", "garbage", "empty", "huge header length", "a directory",
           "a renamed weight", "a missing weight", "a foreign section", "a wrong shape",
           "float64 weights", "int32 weights", "config not JSON", "config missing",
           "config a list", "config with a string size", "config with an unknown key",
           "config of another size", "negative step", "step not a number",
           "step smaller than trained", "negative seed", "rng_recipe broken",
           "rng_recipe of the wrong shape", "rng_backend a list", "elapsed nan", "device tpu",
           "format version 99", "no metadata", "extra state missing"]


@pytest.mark.parametrize("case", HOSTILE)
def test_a_damaged_checkpoint_is_one_line_for_sample_and_resume(good_run, tmp_path, capsys,
                                                                monkeypatch, case):
    monkeypatch.setitem(RECIPES, "tiny", TinyRegression)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("metrics.jsonl", "config.json"):
        (bad / name).write_bytes((good_run / name).read_bytes())
    _hostile(good_run, case)(str(bad / CHECKPOINT_NAME))
    log_before = (bad / "metrics.jsonl").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        err = fails(capsys, "sample", "--from", bad)
        assert str(bad) in err or CHECKPOINT_NAME in err, err
        err = fails(capsys, "train", "tiny", "--resume", "--steps", 8, "--out", bad, "--quiet")
    assert (bad / "metrics.jsonl").read_bytes() == log_before  # no row dropped on a refusal


def test_the_refusals_say_what_is_wrong(good_run, tmp_path):
    def error(case):
        dst = str(tmp_path / case.replace(" ", "_") / CHECKPOINT_NAME)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        _hostile(good_run, case)(dst)
        with pytest.raises(ValueError) as e:
            load_checkpoint(dst, TinyRegression({"steps": 8}))
        return str(e.value)
    assert "step='-5'; expected a whole number of steps >= 0" in error("negative step")
    assert "metadata says step 1, but" in error("step smaller than trained")
    assert "has counted 4 steps" in error("step smaller than trained")
    assert "module.mlp.0.weight has dtype float64, the recipe's float32" in error("float64 weights")
    assert "config='[1, 2]'; expected a JSON object of settings" in error("config a list")
    assert "cannot be read as a checkpoint" in error("truncated")
    assert "rng_recipe is not a state of the recipe's PCG64" in \
        error("rng_recipe of the wrong shape")


GPT_HOSTILE = {"n_layer": 1_000_000, "n_embd": 100_000_000, "block_size": 1_000_000_000,
               "sample_tokens": 1_000_000_000, "batch_size": 10**12, "n_layer_2": 2}


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpt")
    config = {k: v for k, v in TINY.items() if k in get_recipe("gpt").defaults}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(get_recipe("gpt")({**config, "steps": 1}), str(out), progress=False,
              artifacts=False)
    return out


@pytest.mark.parametrize("key", sorted(GPT_HOSTILE))
def test_a_small_checkpoint_asking_for_a_huge_model_is_refused_before_building(
        gpt_run, tmp_path, capsys, monkeypatch, key):
    src = gpt_run / CHECKPOINT_NAME
    _, meta, _ = _read(src)
    config = json.loads(meta["config"])
    config[key.split("_2")[0]] = GPT_HOSTILE[key]
    _rewrite(src, str(tmp_path / CHECKPOINT_NAME), meta={"config": json.dumps(config)})
    from tinygrad_pt.models import gpt as gpt_model
    monkeypatch.setattr(gpt_model.GPT, "__init__",
                        lambda *a, **k: pytest.fail("a model was built from a hostile config"))
    start = time.perf_counter()
    err = fails(capsys, "sample", "--from", tmp_path)
    assert time.perf_counter() - start < 5
    assert ("does not describe the tensors it holds" in err or "GiB of memory" in err
            or "expected an integer in [1, 100000]" in err), err


# ----------------------------------------------------------------------------------------------------
# 5. SIGTERM is Ctrl-C

class TerminatedTiny(TinyRegression):
    """Receives SIGTERM (a batch scheduler's stop) during step 4 (0-based)."""

    def train_step(self, step):
        if step == 4:
            signal.raise_signal(signal.SIGTERM)
        return super().train_step(step)


@pytest.mark.skipif(not MAIN_THREAD, reason="signals reach only the main thread")
def test_sigterm_saves_a_checkpoint_exits_143_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(RECIPES, "tiny", TinyRegression)
    assert run("train", "tiny", "--steps", 8, "--out", tmp_path / "a", "--quiet") == 0
    monkeypatch.setitem(RECIPES, "tiny", TerminatedTiny)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert run("train", "tiny", "--steps", 8, "--out", tmp_path / "b", "--quiet") == 143
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    assert "stopped (SIGTERM) at step 5 of 8" in capsys.readouterr().err
    assert checkpoint_info(tmp_path / "b" / CHECKPOINT_NAME)["step"] == 5
    monkeypatch.setitem(RECIPES, "tiny", TinyRegression)
    assert run("train", "tiny", "--resume", "--out", tmp_path / "b", "--quiet") == 0
    a, b = TinyRegression({"steps": 8}), TinyRegression({"steps": 8})
    load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME, a)
    load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME, b)
    assert_same_state(a, b)


@pytest.mark.skipif(not MAIN_THREAD, reason="signals reach only the main thread")
def test_a_second_sigterm_stops_at_once():
    with loop_mod._GracefulInterrupt(lambda msg: None) as interrupt:
        signal.raise_signal(signal.SIGTERM)
        assert interrupt.requested and interrupt.signum == signal.SIGTERM
        with pytest.raises(TrainingInterrupted) as e:
            signal.raise_signal(signal.SIGTERM)
    assert e.value.signum == signal.SIGTERM


# ----------------------------------------------------------------------------------------------------
# 6. Exact resume for recipes whose schedule spans --steps

@pytest.mark.parametrize("name", ["gpt", "vae"])
def test_until_then_resume_is_bit_identical_to_one_run(tmp_path, name):
    sets = ["--set", *tiny_sets(name)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run("train", name, "--steps", 4, "--out", tmp_path / "a", "--quiet", *sets) == 0
        assert run("train", name, "--steps", 4, "--until", 2, "--out", tmp_path / "b",
                   "--quiet", *sets) == 0
        assert checkpoint_info(tmp_path / "b" / CHECKPOINT_NAME)["step"] == 2
        assert run("train", name, "--resume", "--out", tmp_path / "b", "--quiet") == 0
        cls = get_recipe(name)
        config = checkpoint_info(tmp_path / "a" / CHECKPOINT_NAME)["config"]
        a, b = cls(config), cls(config)
        load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME, a)
        load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME, b)
    assert_same_state(a, b)


@pytest.mark.parametrize("name", ["ae"] + [pytest.param(n, marks=pytest.mark.slow)
                                           for n in ("dae", "gan", "simclr", "moco")])
def test_extending_an_unscheduled_run_is_bit_identical(tmp_path, name):
    """What the README promises for the families without a schedule over --steps."""
    sets = ["--set", *tiny_sets(name)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run("train", name, "--steps", 4, "--out", tmp_path / "a", "--quiet", *sets) == 0
        assert run("train", name, "--steps", 2, "--out", tmp_path / "b", "--quiet", *sets) == 0
        assert run("train", name, "--resume", "--steps", 4, "--out", tmp_path / "b",
                   "--quiet") == 0
        cls = get_recipe(name)
        config = checkpoint_info(tmp_path / "a" / CHECKPOINT_NAME)["config"]
        a, b = cls(config), cls(config)
        load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME, a)
        load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME, b)
    assert_same_state(a, b)


def test_extending_a_scheduled_run_says_what_happens_to_the_schedule(tmp_path, capsys):
    sets = ["--set", *tiny_sets("vae")]
    assert run("train", "vae", "--steps", 2, "--out", tmp_path, "--quiet", *sets) == 0
    with pytest.warns(RuntimeWarning) as caught:
        assert run("train", "vae", "--resume", "--steps", 4, "--out", tmp_path, "--quiet") == 0
    (note,) = [str(w.message) for w in caught if "schedule" in str(w.message)]
    assert "with steps=4 instead of 2" in note
    assert "schedule 'lr' is stretched from 2 to 4 steps from step 2 on" in note
    assert "resuming with the run's own total is exact" in note
    # On the command line a warning is one line, without the source line under it.
    assert cli._one_line_warning(note, RuntimeWarning, "x.py", 1) == \
        f"tinygrad-pt: warning: {note}\n"


def test_extending_an_unscheduled_run_is_silent(tmp_path, capsys):
    assert run("train", "ae", "--steps", 2, "--out", tmp_path, "--quiet") == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: ae resumes to any total exactly
        assert run("train", "ae", "--resume", "--steps", 4, "--out", tmp_path, "--quiet") == 0


# ----------------------------------------------------------------------------------------------------
# 8. A text too short for block_size

@pytest.mark.parametrize("size, split", [(100, "val"), (2000, "train")])
def test_a_text_shorter_than_a_window_is_one_line(tmp_path, capsys, size, split):
    text = tmp_path / "t.txt"
    text.write_bytes(b"x" * size)
    block = 64 if split == "val" else 4000
    err = fails(capsys, "train", "gpt", "--out", tmp_path / "run", "--quiet", "--set",
                f"data_path={text}", f"block_size={block}", "n_layer=1", "n_embd=16",
                "n_head=2")
    assert f"the {split} split of" in err and f"block_size={block} needs windows of {block + 1}" \
        in err


# ----------------------------------------------------------------------------------------------------
# Odds and ends of the command

def test_sample_n_has_a_ceiling(tiny, tmp_path, capsys):
    assert run("train", "tiny", "--steps", 1, "--out", tmp_path, "--quiet") == 0
    err = fails(capsys, "sample", "--from", tmp_path, "--n", 10**9)
    assert "--n 1000000000: at most 10000 samples a call" in err


def test_ctrl_c_while_building_exits_130_without_a_traceback(tiny, tmp_path, capsys,
                                                             monkeypatch):
    def build(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(TinyRegression, "build", build)
    assert run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet") == 130
    assert capsys.readouterr().err.strip() == "tinygrad-pt train: interrupted"


@pytest.mark.slow
def test_the_crash_test_in_small(tmp_path):
    """benchmarks/crash_test.py with 3 kills: every killed run directory loads and resumes."""
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "crash_test.py")
    out = tmp_path / "crash.md"
    done = subprocess.run([sys.executable, script, "--kills", "3", "--max-delay", "4",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    assert "| resumes blocked by a stale lock or temporary file | 0 |" in text
    assert "3 of 3" in text


def test_the_digits_sizes_of_the_estimates_are_the_data():
    from tinygrad_pt.data import load_digits
    from tinygrad_pt.train.recipes.digits import DigitsRecipe
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    assert (len(x_train), len(x_test), x_train.shape[1]) == \
        (DigitsRecipe.N_TRAIN, DigitsRecipe.N_TEST, DigitsRecipe.PIXELS)
