"""The shared training loop: what it writes, when it evaluates and syncs, and its errors."""
import json
import os

import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt.train.checkpoint import CHECKPOINT_NAME, checkpoint_info
from tinygrad_pt.train.loop import train
from tinygrad_pt.train.metrics import MetricsLog, read_metrics, truncate

from test_checkpoint_resume import TinyRegression  # the test recipe (tests/ is on sys.path)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def quiet(recipe, out_dir, **kw):
    return train(recipe, out_dir, progress=False, **kw)


def by_split(run_dir, split):
    return [r for r in read_metrics(os.path.join(run_dir, "metrics.jsonl")) if r["split"] == split]


# ----------------------------------------------------------------------------------------------------
# A whole run

def test_a_run_writes_log_checkpoint_config_and_plots(tmp_path):
    run = str(tmp_path / "run")
    recipe = TinyRegression({"steps": 10, "log_every": 3, "eval_every": 4})
    final = quiet(recipe, run)

    assert set(final) == {"test_mse"} and np.isfinite(final["test_mse"])
    train_rows, eval_rows = by_split(run, "train"), by_split(run, "eval")
    assert [r["step"] for r in train_rows] == [3, 6, 9, 10]  # every log_every, and the last step
    assert [r["step"] for r in eval_rows] == [4, 8, 10]      # every eval_every, and the end
    assert all(set(r) == {"step", "split", "loss", "lr", "time"} for r in train_rows)
    assert eval_rows[-1]["test_mse"] == final["test_mse"]
    times = [r["time"] for r in read_metrics(os.path.join(run, "metrics.jsonl"))]
    assert times == sorted(times) and times[0] >= 0

    info = checkpoint_info(os.path.join(run, CHECKPOINT_NAME))
    assert info["step"] == 10 and info["recipe"] == "tiny"
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    assert config["recipe"] == "tiny" and config["config"]["steps"] == 10
    assert config["seed"] == 0 and config["device"] == "cpu"
    assert {"tinygrad_pt", "numpy", "python"} <= set(config["versions"])
    for png in ("loss_curves.png", "digits.png"):  # the loop's plot and the recipe's artifact
        with open(os.path.join(run, png), "rb") as f:
            assert f.read(8) == PNG_SIGNATURE


def test_training_lowers_the_loss():
    recipe = TinyRegression({"steps": 60, "lr": 3e-2, "dropout": 0.0})
    first = recipe.evaluate()["test_mse"]
    for step in range(60):
        recipe.train_step(step)
    assert recipe.evaluate()["test_mse"] < 0.5 * first


def test_progress_prints_the_summary_and_the_plots(tmp_path, capsys):
    train(TinyRegression({"steps": 4}), str(tmp_path), progress=True)
    out, err = capsys.readouterr()
    assert "tiny: test mse" in out
    assert "loss_curves.png" in out and "digits.png" in out
    assert "step 4: eval test_mse=" in out or "step 4: eval test_mse=" in err


def test_silent_without_progress(tmp_path, capsys):
    quiet(TinyRegression({"steps": 3}), str(tmp_path), artifacts=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert not os.path.exists(tmp_path / "loss_curves.png")  # artifacts=False skips the plots


def test_metrics_are_read_back_only_at_log_steps(tmp_path, monkeypatch):
    # The loop's only sync: Tensor.item on the step's metrics, once per log step.
    reads = []
    original = tg.Tensor.item
    monkeypatch.setattr(tg.Tensor, "item", lambda self: reads.append(1) or original(self))
    quiet(TinyRegression({"steps": 12, "log_every": 5, "eval_every": 0}), str(tmp_path),
          artifacts=False)
    assert len(reads) == 3  # steps 5, 10 and 12; "lr" is a Python float, read without a sync


def test_evaluation_leaves_train_mode_on(tmp_path):
    recipe = TinyRegression({"steps": 4, "eval_every": 2})  # its evaluate() leaves eval mode on
    quiet(recipe, str(tmp_path), artifacts=False)
    assert all(m.training for m in recipe.modules["mlp"].modules())


def test_explicit_cadences_override_the_config(tmp_path):
    quiet(TinyRegression({"steps": 6, "eval_every": 4}), str(tmp_path), eval_every=0,
          checkpoint_every=2, artifacts=False)
    assert [r["step"] for r in by_split(tmp_path, "eval")] == [6]


def test_checkpoints_follow_checkpoint_every(tmp_path, monkeypatch):
    from tinygrad_pt.train import loop
    saved = []
    real = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint",
                        lambda path, recipe, step, elapsed: saved.append(step) or
                        real(path, recipe, step, elapsed))
    quiet(TinyRegression({"steps": 7, "eval_every": 0}), str(tmp_path), checkpoint_every=3,
          artifacts=False)
    assert saved == [3, 6, 7]
    saved.clear()
    quiet(TinyRegression({"steps": 7, "eval_every": 2}), str(tmp_path / "b"), artifacts=False)
    assert saved == [2, 4, 6, 7]  # by default, with each evaluation


# ----------------------------------------------------------------------------------------------------
# Resume

def test_resume_cuts_the_log_back_to_the_checkpoint(tmp_path):
    run = str(tmp_path)
    quiet(TinyRegression({"steps": 8}), run, steps=4, artifacts=False)
    # A crash after step 4's checkpoint would have left rows for steps the checkpoint lacks.
    MetricsLog(os.path.join(run, "metrics.jsonl"), fresh=False).write(5, "train", {"loss": 9.0}, 1)
    quiet(TinyRegression({"steps": 8}), run, resume=True, artifacts=False)
    steps = [r["step"] for r in by_split(run, "train")]
    assert steps == list(range(1, 9))
    assert all(r["loss"] != 9.0 for r in by_split(run, "train"))
    with open(os.path.join(run, "config.json")) as f:
        assert json.load(f)["resumed_from_step"] == 4


def test_resume_of_a_finished_run_evaluates_without_logging_twice(tmp_path):
    first = quiet(TinyRegression({"steps": 4}), str(tmp_path), artifacts=False)
    again = quiet(TinyRegression({"steps": 4}), str(tmp_path), resume=True, artifacts=False)
    assert again == first
    assert [r["step"] for r in by_split(tmp_path, "eval")].count(4) == 1


def test_resume_to_more_steps_continues_the_step_count(tmp_path):
    quiet(TinyRegression({"steps": 4}), str(tmp_path), artifacts=False)
    with pytest.warns(RuntimeWarning, match="steps=6 instead of 4"):
        quiet(TinyRegression({"steps": 6}), str(tmp_path), resume=True, artifacts=False)
    assert checkpoint_info(tmp_path / CHECKPOINT_NAME)["step"] == 6
    assert [r["step"] for r in by_split(tmp_path, "train")] == [1, 2, 3, 4, 5, 6]


# ----------------------------------------------------------------------------------------------------
# Errors

def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume=True .* holds no checkpoint.safetensors"):
        quiet(TinyRegression(), str(tmp_path), resume=True)


def test_resume_past_the_requested_steps(tmp_path):
    quiet(TinyRegression({"steps": 4}), str(tmp_path), artifacts=False)
    with pytest.raises(ValueError, match="at step 4, past the requested total steps=2"):
        quiet(TinyRegression({"steps": 4}), str(tmp_path), steps=2, resume=True)


@pytest.mark.parametrize("kw, match", [
    ({"steps": 0}, "steps must be a positive integer, got 0"),
    ({"steps": 2.5}, "steps must be a positive integer, got 2.5"),
    ({"eval_every": -1}, "eval_every must be a non-negative integer"),
    ({"checkpoint_every": "often"}, "checkpoint_every must be a non-negative integer"),
])
def test_bad_arguments(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        quiet(TinyRegression(), str(tmp_path), **kw)


def test_train_step_must_return_a_dict_of_scalars(tmp_path):
    class NotADict(TinyRegression):
        def train_step(self, step):
            return super().train_step(step)["loss"]

    class NotScalar(TinyRegression):
        def train_step(self, step):
            super().train_step(step)
            return {"loss": tg.zeros(3)}

    with pytest.raises(TypeError, match="tiny.train_step must return a dict .* got Tensor"):
        quiet(NotADict(), str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"returned 'loss' with shape \(3,\); metrics must be 0-d"):
        quiet(NotScalar(), str(tmp_path / "b"))


# ----------------------------------------------------------------------------------------------------
# The metrics log

def test_metrics_log_round_trip_and_strict_json(tmp_path):
    path = tmp_path / "m.jsonl"
    log = MetricsLog(path)
    log.write(1, "train", {"loss": np.float32(0.5), "lr": 1e-3}, time=0.1234)
    log.write(2, "eval", {"mse": float("nan"), "n": 7}, time=0.5)
    assert read_metrics(path) == [
        {"step": 1, "split": "train", "loss": 0.5, "lr": 1e-3, "time": 0.123},
        {"step": 2, "split": "eval", "mse": None, "n": 7, "time": 0.5}]
    with open(path) as f:
        for line in f:  # strict JSON: no NaN literal
            json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    MetricsLog(path, fresh=True)
    assert read_metrics(path) == []


def test_metrics_log_rejects_bad_rows(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    with pytest.raises(ValueError, match="split must be one of"):
        log.write(1, "test", {"loss": 1.0}, 0)
    with pytest.raises(ValueError, match=r"metric names \['step'\] are reserved"):
        log.write(1, "train", {"step": 1.0}, 0)
    with pytest.raises(TypeError, match="the value of 'loss' is a str"):
        log.write(1, "train", {"loss": "low"}, 0)


def test_read_metrics_errors_and_a_cut_off_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "split": "train", "loss": 1.0}\n{"step": 2, "spl')
    assert [r["step"] for r in read_metrics(path)] == [1]  # the half-written line is skipped
    path.write_text('{"step": 1, "split": "train"}\nnot json\n{"step": 3, "split": "train"}\n')
    with pytest.raises(ValueError, match="line 2 of .* is not JSON"):
        read_metrics(path)
    path.write_text('[1, 2]\n')
    with pytest.raises(ValueError, match="line 1 .* is not a metrics row"):
        read_metrics(path)
    with pytest.raises(FileNotFoundError, match="no such metrics log"):
        read_metrics(tmp_path / "missing.jsonl")


def test_truncate_keeps_rows_up_to_the_step(tmp_path):
    path = tmp_path / "m.jsonl"
    log = MetricsLog(path)
    for step in range(1, 6):
        log.write(step, "train", {"loss": float(step)}, step)
    assert truncate(path, 3) == 2
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    assert truncate(tmp_path / "missing.jsonl", 3) == 0
