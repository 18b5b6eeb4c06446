"""The `tinygrad-pt` command, run in-process through cli.main([...])."""
import json
import os
import sys
import threading
import types
import warnings

import numpy as np
import pytest

from tinygrad_pt import cli
from tinygrad_pt.train.checkpoint import CHECKPOINT_NAME, checkpoint_info
from tinygrad_pt.train.metrics import read_metrics
from tinygrad_pt.train.recipe import Recipe
from tinygrad_pt.train.recipes import RECIPES, get_recipe

# The test recipes (pytest puts tests/ on sys.path).
from test_checkpoint_resume import TINY, InterruptingTiny, TinyRegression, full_state


@pytest.fixture
def tiny(monkeypatch):
    """Register the test recipe as `tinygrad-pt train tiny` for one test."""
    monkeypatch.setitem(RECIPES, "tiny", TinyRegression)


def run(*argv):
    return cli.main([str(a) for a in argv])


def fails(capsys, *argv):
    """Run a command that must fail; returns its error message."""
    with pytest.raises(SystemExit) as e:
        run(*argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def config_of(run_dir):
    with open(os.path.join(run_dir, "config.json")) as f:
        return json.load(f)


# ----------------------------------------------------------------------------------------------------
# demo (unchanged)

def test_demo_still_runs(capsys):
    assert run("demo", "--steps", 3) == 0
    assert "digits MLP: 3 steps" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------
# train

def test_train_writes_a_run(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", "tiny", "--steps", 5, "--out", out, "--seed", 3) == 0
    printed = capsys.readouterr().out
    assert "tiny: test mse" in printed and "loss_curves.png" in printed
    assert checkpoint_info(out / CHECKPOINT_NAME)["step"] == 5
    config = config_of(out)
    assert config["seed"] == 3 and config["config"]["steps"] == 5
    assert {r["step"] for r in read_metrics(out / "metrics.jsonl")} >= {1, 5}


def test_train_default_out_dir_is_runs_name(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("train", "tiny", "--steps", 2, "--quiet") == 0
    assert os.path.exists(tmp_path / "runs" / "tiny" / CHECKPOINT_NAME)


def test_set_overrides_are_typed_like_the_defaults(tiny, tmp_path):
    assert run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet",
               "--set", "hidden=8", "lr=0.02", "--set", "dropout=0") == 0
    config = config_of(tmp_path)["config"]
    assert config["hidden"] == 8 and isinstance(config["hidden"], int)
    assert config["lr"] == 0.02 and config["dropout"] == 0.0
    assert isinstance(config["dropout"], float)


def test_parse_overrides_types():
    defaults = {"flag": False, "n": 1, "x": 0.5, "name": "a", "betas": (0.9, 0.95), "opt": None}
    got = cli.parse_overrides(["flag=yes", "n=3", "x=2", "name=b=c", "betas=[0.5, 0.9]",
                               "opt=[1, 2]"], defaults)
    assert got == {"flag": True, "n": 3, "x": 2.0, "name": "b=c", "betas": (0.5, 0.9),
                   "opt": [1, 2]}
    assert cli.parse_overrides(["opt=plain text"], defaults) == {"opt": "plain text"}


@pytest.mark.parametrize("pair, match", [
    ("widht=3", "--set widht: unknown config key; this recipe's keys are"),
    ("hidden=3.5", "--set hidden=3.5: cannot read it as a int"),
    ("dropout", "--set expects key=value, got 'dropout'"),
])
def test_bad_set_values(tiny, tmp_path, capsys, pair, match):
    err = fails(capsys, "train", "tiny", "--out", tmp_path, "--set", pair)
    assert "tinygrad-pt train: error:" in err and match in err


def test_unknown_recipe_is_an_argparse_error(capsys):
    err = fails(capsys, "train", "resnet")
    assert "invalid choice: 'resnet'" in err and "'gpt'" in err


def test_cuda_without_a_gpu_is_one_clear_line(tiny, tmp_path, capsys):
    import tinygrad_pt as tg
    if tg.cuda_available():
        pytest.skip("a GPU is present")
    err = fails(capsys, "train", "tiny", "--device", "cuda", "--out", tmp_path)
    assert "tinygrad-pt train: error: device='cuda'" in err and "Traceback" not in err


def test_train_refuses_to_overwrite_a_run(tiny, tmp_path, capsys):
    assert run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet") == 0
    err = fails(capsys, "train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet")
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert run("train", "tiny", "--steps", 3, "--out", tmp_path, "--quiet", "--overwrite") == 0
    assert checkpoint_info(tmp_path / CHECKPOINT_NAME)["step"] == 3


def test_resume_errors(tiny, tmp_path, capsys, monkeypatch):
    err = fails(capsys, "train", "tiny", "--resume", "--out", tmp_path / "none")
    assert "--resume continues the run in" in err and "there is no" in err

    assert run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet") == 0
    err = fails(capsys, "train", "tiny", "--resume", "--out", tmp_path, "--seed", 5)
    assert "keeps the seed it started with (0)" in err

    class Other(TinyRegression):
        name = "other"

    monkeypatch.setitem(RECIPES, "other", Other)
    err = fails(capsys, "train", "other", "--resume", "--out", tmp_path)
    assert "is a checkpoint of 'tiny', not 'other'" in err


def test_resume_extends_a_run(tiny, tmp_path):
    assert run("train", "tiny", "--steps", 3, "--out", tmp_path, "--quiet") == 0
    with pytest.warns(RuntimeWarning, match="steps=6 instead of 3"):
        assert run("train", "tiny", "--resume", "--steps", 6, "--out", tmp_path, "--quiet") == 0
    assert checkpoint_info(tmp_path / CHECKPOINT_NAME)["step"] == 6
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_ctrl_c_then_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    monkeypatch.setitem(RECIPES, "tiny", TinyRegression)
    assert run("train", "tiny", "--steps", 8, "--out", tmp_path / "a", "--quiet") == 0

    monkeypatch.setitem(RECIPES, "tiny", InterruptingTiny)
    assert run("train", "tiny", "--steps", 8, "--out", tmp_path / "b", "--quiet") == 130
    assert checkpoint_info(tmp_path / "b" / CHECKPOINT_NAME)["step"] == 5

    monkeypatch.setitem(RECIPES, "tiny", TinyRegression)
    assert run("train", "tiny", "--resume", "--out", tmp_path / "b", "--quiet") == 0
    from tinygrad_pt.train.checkpoint import load_checkpoint
    a, b = TinyRegression({"steps": 8}), TinyRegression({"steps": 8})
    load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME, a)
    load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME, b)
    sa, sb = full_state(a), full_state(b)
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------------------------------
# sample and probe

def test_sample_from_a_run(tiny, tmp_path, capsys):
    assert run("train", "tiny", "--steps", 2, "--out", tmp_path, "--quiet") == 0
    capsys.readouterr()
    assert run("sample", "--from", tmp_path, "--n", 3) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(tmp_path / "s.txt")
    assert open(path).read().count("sample ") == 3


def test_sample_errors(tiny, tmp_path, capsys, monkeypatch):
    err = fails(capsys, "sample", "--from", tmp_path)
    assert "no checkpoint.safetensors there; train a model first" in err

    class Silent(TinyRegression):
        sample = Recipe.sample  # the base class's: raises NotImplementedError

    monkeypatch.setitem(RECIPES, "tiny", Silent)
    assert run("train", "tiny", "--steps", 1, "--out", tmp_path, "--quiet") == 0
    err = fails(capsys, "sample", "--from", tmp_path)
    assert "tiny: this model family does not generate samples" in err
    err = fails(capsys, "sample", "--from", tmp_path, "--n", 0)
    assert "--n must be positive" in err


def test_probe_calls_run_probe_which_prints_its_table(tmp_path, capsys, monkeypatch):
    calls = []

    def run_probe(from_dir, device="cpu"):
        calls.append((from_dir, device))
        print("| features | accuracy |")
        return {"probe_pretrained": 0.9}

    fake = types.ModuleType("tinygrad_pt.train.probe")
    fake.run_probe = run_probe
    monkeypatch.setitem(sys.modules, "tinygrad_pt.train.probe", fake)
    assert run("probe", "--from", tmp_path) == 0
    assert calls == [(str(tmp_path), "cpu")]
    assert capsys.readouterr().out.count("| features | accuracy |") == 1  # printed once


def test_probe_of_a_run_without_an_image_encoder(tiny, tmp_path, capsys):
    pytest.importorskip("tinygrad_pt.train.probe")
    assert run("train", "tiny", "--steps", 1, "--out", tmp_path, "--quiet") == 0
    err = fails(capsys, "probe", "--from", tmp_path)
    assert "tinygrad-pt probe: error: probe:" in err and "no image encoder" in err


def test_probe_of_a_missing_directory(capsys, tmp_path):
    err = fails(capsys, "probe", "--from", tmp_path / "nowhere")
    assert "no such run directory" in err


# ----------------------------------------------------------------------------------------------------
# The real recipes, tiny, from the command line

@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_trains_from_the_cli(tmp_path, name):
    cls = get_recipe(name)
    sets = [f"{k}={v}" for k, v in TINY.items() if k in cls.defaults and k != "eval_every"]
    argv = ["train", name, "--steps", 2, "--out", tmp_path, "--quiet"]
    assert run(*argv, *(["--set", *sets] if sets else [])) == 0
    assert checkpoint_info(tmp_path / CHECKPOINT_NAME)["step"] == 2
    assert os.path.exists(tmp_path / "loss_curves.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run("sample", "--from", tmp_path, "--n", 2)
        except SystemExit as e:  # AE and SimCLR do not generate: a clear one-line error
            assert e.code == 2
