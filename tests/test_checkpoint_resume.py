"""Checkpoints and resume: N steps + save + (new process) load + N steps == 2N steps, bit for bit.

The tiny recipe below holds every kind of state a checkpoint must carry: module weights, AdamW
moments and step counts, a cosine schedule, the data generator (batches drawn from self.rng),
the framework's generator (dropout), and extra state (a counter). Its evaluate() draws from both
generators on purpose and leaves the model in eval mode, so the tests also show that the loop
keeps evaluation from disturbing training.
"""
import contextlib
import json
import os
import signal
import threading
import warnings

import numpy as np
import pytest

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
import tinygrad_pt.nn.functional as F
from tinygrad_pt.backend import get_rng_state
from tinygrad_pt.data import load_digits
from tinygrad_pt.optim.lr_scheduler import CosineWithWarmup
from tinygrad_pt.serialization import load_metadata
from tinygrad_pt.train import checkpoint as ckpt_mod
from tinygrad_pt.train import loop as loop_mod
from tinygrad_pt.train.checkpoint import (CHECKPOINT_NAME, FORMAT_VERSION, CheckpointError,
                                          checkpoint_info, load_checkpoint, save_checkpoint)
from tinygrad_pt.train.loop import train
from tinygrad_pt.train.metrics import read_metrics
from tinygrad_pt.train.recipe import COUNT, FRACTION, POSITIVE, POSITIVE_INT, Recipe
from tinygrad_pt.train.recipes import RECIPES, get_recipe

_DIGITS = {}


def _digits(split):
    if split not in _DIGITS:
        x, y = load_digits(split)
        n = 300 if split == "train" else 100
        _DIGITS[split] = (x[:n], (y[:n] / 9.0).astype(np.float32))
    return _DIGITS[split]


class TinyRegression(Recipe):
    """An MLP regressing a digit's class / 9 from its 64 pixels (AdamW, cosine, dropout)."""

    name = "tiny"
    defaults = {"steps": 12, "batch_size": 16, "eval_every": 4, "log_every": 1, "lr": 1e-2,
                "hidden": 16, "dropout": 0.25, "warmup": 1}
    checks = {**Recipe.checks, "lr": POSITIVE, "hidden": POSITIVE_INT, "dropout": FRACTION,
              "warmup": COUNT}
    size_keys = ("batch_size", "hidden")

    @classmethod
    def state_sizes(cls, c):
        return {"mlp": 64 * c["hidden"] + c["hidden"] + c["hidden"] + 1}

    def build(self):
        c = self.config
        self.x, self.y = _digits("train")
        self.x_test, self.y_test = _digits("test")
        mlp = nn.Sequential(nn.Linear(64, c["hidden"]), nn.GELU(), nn.Dropout(c["dropout"]),
                            nn.Linear(c["hidden"], 1)).to(self.device)
        opt = tg.optim.AdamW(mlp.parameters(), lr=c["lr"], weight_decay=0.01)
        self.modules = {"mlp": mlp}
        self.optimizers = {"adamw": opt}
        self.schedulers = {"cosine": CosineWithWarmup(opt, c["warmup"], c["steps"])}
        self.seen = np.zeros((), dtype=np.int64)

    def train_step(self, step):
        idx = self.rng.integers(0, len(self.x), size=self.config["batch_size"])
        mlp, opt = self.modules["mlp"], self.optimizers["adamw"]
        pred = mlp(tg.tensor(self.x[idx], device=self.device)).reshape(-1)
        loss = F.mse_loss(pred, tg.tensor(self.y[idx], device=self.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        self.schedulers["cosine"].step()
        self.seen += len(idx)  # a 0-d array, updated in place
        return {"loss": loss.detach(), "lr": opt.param_groups[0]["lr"]}

    def evaluate(self):
        # Draws from both generators and leaves eval mode on, on purpose (see the module doc).
        idx = self.rng.permutation(len(self.x_test))[:64]
        tg.randn(3)
        mlp = self.modules["mlp"].eval()
        with tg.no_grad():
            pred = mlp(tg.tensor(self.x_test[idx], device=self.device)).numpy().reshape(-1)
        return {"test_mse": float(np.mean((pred - self.y_test[idx]) ** 2))}

    def artifacts(self, out_dir):
        from tinygrad_pt.train.plots import image_grid
        return [image_grid(self.x_test[:8], os.path.join(out_dir, "digits.png"), nrow=4)]

    def sample(self, out_dir, n=16):
        from tinygrad_pt.train.plots import write_text
        return [write_text([f"sample {i}" for i in range(n)], os.path.join(out_dir, "s.txt"))]

    def summary(self, metrics):
        return f"test mse {metrics['test_mse']:.4f}"

    def extra_state(self):
        return {"seen": self.seen}

    def load_extra_state(self, state):
        self.seen = np.asarray(state["seen"]).copy()


class InterruptingTiny(TinyRegression):
    """Presses Ctrl-C (SIGINT to itself) during step `interrupt_at`."""

    interrupt_at = 4

    def train_step(self, step):
        if step == self.interrupt_at:
            signal.raise_signal(signal.SIGINT)
        return super().train_step(step)


def full_state(recipe) -> dict:
    """Every array of the recipe's training state, as NumPy, by checkpoint key."""
    out = {}
    for name, m in recipe.modules.items():
        out.update({f"module.{name}.{k}": v.numpy() for k, v in m.state_dict().items()})
    for name, o in recipe.optimizers.items():
        out.update({f"optim.{name}.{k}": v.numpy() for k, v in o.state_dict().items()})
    for name, s in recipe.schedulers.items():
        out.update({f"sched.{name}.{k}": np.asarray(v) for k, v in s.state_dict().items()})
    for k, v in recipe.extra_state().items():
        out[f"extra.{k}"] = v.get() if hasattr(v, "get") else np.asarray(v)
    return out


def assert_same_state(a, b):
    sa, sb = full_state(a), full_state(b)
    assert sorted(sa) == sorted(sb)
    differing = [k for k in sa if not (sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]))]
    assert not differing, f"arrays differ after resume: {differing}"
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def rows(run_dir, split, after=0):
    """The logged rows of `split` with step > after, without the wall-clock column."""
    return [{k: v for k, v in r.items() if k != "time"}
            for r in read_metrics(os.path.join(run_dir, "metrics.jsonl"))
            if r["split"] == split and r["step"] > after]


def quiet(recipe, out_dir, **kw):
    return train(recipe, out_dir, progress=False, artifacts=False, **kw)


def straight_and_split(tmp_path, make, n, split_kw=None):
    """Train 2N steps in one go, and N + resume + N; return both final recipes and run dirs."""
    dir_a, dir_b = str(tmp_path / "straight"), str(tmp_path / "split")
    tg.manual_seed(0)
    a = make()
    quiet(a, dir_a, steps=2 * n)
    tg.manual_seed(0)
    first = make()
    quiet(first, dir_b, steps=n)
    state_after_first = get_rng_state("cpu")
    # A fresh "process": new recipe object, another seed everywhere; only the checkpoint counts.
    tg.manual_seed(12345)
    np.random.seed(12345)
    b = make(seed=7)
    assert get_rng_state("cpu") != state_after_first
    quiet(b, dir_b, steps=2 * n, resume=True)
    return a, b, dir_a, dir_b


# ----------------------------------------------------------------------------------------------------
# The requirement: resume is bit-identical

def test_resume_is_bit_identical(tmp_path):
    n = 6  # not a multiple of eval_every=4: the split run evaluates at step 6, the straight not
    a, b, dir_a, dir_b = straight_and_split(
        tmp_path, lambda seed=0: TinyRegression({"steps": 12}, seed=seed), n)
    assert_same_state(a, b)
    assert int(b.seen) == 12 * 16
    second_half = rows(dir_a, "train", after=n)
    assert [r["step"] for r in second_half] == list(range(n + 1, 2 * n + 1))
    assert rows(dir_b, "train", after=n) == second_half
    assert rows(dir_b, "eval", after=n) == rows(dir_a, "eval", after=n)
    # The split run's log holds each step once (cut back to the checkpoint, then appended).
    steps_b = [r["step"] for r in rows(dir_b, "train")]
    assert steps_b == list(range(1, 2 * n + 1))


def test_resume_without_restoring_the_generators_differs(tmp_path, monkeypatch):
    # The same comparison fails when the framework's generator (dropout) is not restored: the
    # test above can tell a bitwise resume from an approximate one.
    monkeypatch.setattr(ckpt_mod, "set_rng_state", lambda state, device="cpu": None)
    a, b, *_ = straight_and_split(
        tmp_path, lambda seed=0: TinyRegression({"steps": 12}, seed=seed), 6)
    sa, sb = full_state(a), full_state(b)
    assert not np.array_equal(sa["module.mlp.0.weight"], sb["module.mlp.0.weight"])


def test_evaluation_does_not_disturb_training(tmp_path, monkeypatch):
    # Without the loop's isolation, the extra evaluation at step 6 of the split run (which draws
    # from both generators) would change the second half.
    monkeypatch.setattr(loop_mod, "_isolated", lambda recipe: contextlib.nullcontext())
    a, b, *_ = straight_and_split(
        tmp_path, lambda seed=0: TinyRegression({"steps": 12}, seed=seed), 6)
    assert not np.array_equal(full_state(a)["module.mlp.0.weight"],
                              full_state(b)["module.mlp.0.weight"])


def test_ctrl_c_saves_a_checkpoint_that_resumes_bit_identically(tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    tg.manual_seed(0)
    straight = TinyRegression({"steps": 10})
    quiet(straight, str(tmp_path / "a"))

    tg.manual_seed(0)
    run = InterruptingTiny({"steps": 10})
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="stopped at step 5"):
        quiet(run, str(tmp_path / "b"))
    assert checkpoint_info(tmp_path / "b" / CHECKPOINT_NAME)["step"] == 5  # step 4 (0-based) done
    assert signal.getsignal(signal.SIGINT) is handler_before  # the loop put its handler back

    tg.manual_seed(999)
    resumed = TinyRegression({"steps": 10})
    quiet(resumed, str(tmp_path / "b"), resume=True)
    assert_same_state(straight, resumed)


def test_second_ctrl_c_stops_at_once():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    with loop_mod._GracefulInterrupt(lambda msg: None) as interrupt:
        signal.raise_signal(signal.SIGINT)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)


# ----------------------------------------------------------------------------------------------------
# The real recipes: the same test, with tiny configs, for every registered family

# Small sizes for keys a recipe may have; only the keys in the recipe's defaults are used.
TINY = {"batch_size": 8, "log_every": 1, "eval_every": 0, "hidden": 16, "latent": 4,
        "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, "warmup_steps": 1,
        "max_bytes": 200_000, "eval_windows": 2, "sample_tokens": 8, "eval_draws": 1,
        "classifier_steps": 20, "score_samples": 64, "queue_size": 32, "feat_dim": 8,
        "proj_hidden": 8, "proj_dim": 8, "probe_steps": 5}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_resumes_bit_identically(tmp_path, name):
    cls = get_recipe(name)
    n = 2
    config = {k: v for k, v in TINY.items() if k in cls.defaults}
    config["steps"] = 2 * n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a, b, dir_a, dir_b = straight_and_split(
            tmp_path, lambda seed=0: cls(dict(config), seed=seed), n)
    assert_same_state(a, b)
    assert rows(dir_b, "train", after=n) == rows(dir_a, "train", after=n)


# ----------------------------------------------------------------------------------------------------
# save_checkpoint / load_checkpoint

def test_round_trip_restores_everything_and_records_metadata(tmp_path):
    tg.manual_seed(3)
    a = TinyRegression({"steps": 8}, seed=3)
    for s in range(5):
        a.train_step(s)
    path = save_checkpoint(tmp_path / "c.safetensors", a, step=5, elapsed=1.5)
    backend_state = get_rng_state("cpu")

    info = checkpoint_info(path)
    assert info["recipe"] == "tiny" and info["step"] == 5 and info["seed"] == 3
    assert info["format_version"] == FORMAT_VERSION and info["elapsed"] == 1.5
    assert info["config"] == a.config and info["device"] == "cpu"
    assert info["rng_recipe"] == a.rng.bit_generator.state
    assert info["rng_backend"] == backend_state

    tg.manual_seed(77)
    b = TinyRegression({"steps": 8}, seed=11)
    assert load_checkpoint(path, b) == 5
    assert_same_state(a, b)
    assert get_rng_state("cpu") == backend_state
    assert [g["lr"] for g in b.optimizers["adamw"].param_groups] == \
        [g["lr"] for g in a.optimizers["adamw"].param_groups]
    assert os.listdir(tmp_path) == ["c.safetensors"]  # atomic: no temporary file left behind

    # Same next step on both: the restored state is live, not a copy the recipe ignores.
    # (Both draw dropout from the one framework generator: put it back between them.)
    la = a.train_step(5)["loss"].item()
    tg.backend.set_rng_state(backend_state)
    lb = b.train_step(5)["loss"].item()
    assert la == lb
    wa, wb = full_state(a)["module.mlp.0.weight"], full_state(b)["module.mlp.0.weight"]
    assert np.array_equal(wa, wb)


def test_checkpoint_keys_follow_the_documented_layout(tmp_path):
    a = TinyRegression()
    a.train_step(0)
    path = save_checkpoint(tmp_path / "c.safetensors", a, step=1)
    keys = set(tg.load(path))
    assert {"module.mlp.0.weight", "module.mlp.3.bias", "optim.adamw.state.0.exp_avg",
            "optim.adamw.state.0.step", "optim.adamw.param_groups.0.lr",
            "sched.cosine.last_epoch", "extra.seen"} <= keys
    assert all(k.split(".")[0] in ("module", "optim", "sched", "extra") for k in keys)
    meta = load_metadata(path)
    assert json.loads(meta["config"]) == a.config
    assert meta["rng_cuda"] == "not saved"


def test_load_rejects_another_recipe(tmp_path):
    class Other(TinyRegression):
        name = "other"

    path = save_checkpoint(tmp_path / "c.safetensors", Other(), step=0)
    with pytest.raises(CheckpointError, match="checkpoint of the 'other' recipe, not of 'tiny'"):
        load_checkpoint(path, TinyRegression())


def test_load_rejects_another_config(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", TinyRegression({"hidden": 8}), step=0)
    with pytest.raises(CheckpointError, match=r"another config \(hidden: checkpoint 8 vs recipe "
                                              r"16"):
        load_checkpoint(path, TinyRegression())


def test_load_with_more_steps_warns_and_loads(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", TinyRegression({"steps": 8}), step=2)
    with pytest.warns(RuntimeWarning, match="steps=20 instead of 8"):
        assert load_checkpoint(path, TinyRegression({"steps": 20})) == 2


def test_load_missing_file_says_what_is_needed(tmp_path):
    with pytest.raises(FileNotFoundError, match="resuming or sampling a run needs"):
        load_checkpoint(tmp_path / "nope.safetensors", TinyRegression())


def test_load_rejects_a_plain_state_dict_and_another_format_version(tmp_path):
    plain = tmp_path / "plain.safetensors"
    tg.save({"w": np.zeros(3, np.float32)}, plain)
    with pytest.raises(CheckpointError, match="not a tinygrad_pt training checkpoint"):
        load_checkpoint(plain, TinyRegression())
    future = tmp_path / "future.safetensors"
    tg.save({"w": np.zeros(3, np.float32)}, future,
            metadata={"format_version": "999", "recipe": "tiny"})
    with pytest.raises(CheckpointError, match="format version 999, but this tinygrad_pt reads "
                                              f"version {FORMAT_VERSION}"):
        load_checkpoint(future, TinyRegression())


def test_load_rejects_a_different_set_of_modules(tmp_path):
    class WithHead(TinyRegression):
        def build(self):
            super().build()
            self.modules["head"] = nn.Linear(2, 2)

    path = save_checkpoint(tmp_path / "c.safetensors", TinyRegression(), step=0)
    with pytest.raises(CheckpointError, match=r"holds modules \['mlp'\], the recipe \['head', "
                                              r"'mlp'\]"):
        load_checkpoint(path, WithHead())


def test_load_rejects_wrongly_shaped_weights(tmp_path):
    class Narrow(TinyRegression):
        def build(self):
            super().build()
            self.modules["mlp"] = nn.Sequential(nn.Linear(64, 8), nn.GELU(), nn.Dropout(0.25),
                                                nn.Linear(8, 1))

    path = save_checkpoint(tmp_path / "c.safetensors", TinyRegression(), step=0)
    with pytest.raises(CheckpointError, match="cannot load module.mlp"):
        load_checkpoint(path, Narrow())


def test_save_rejects_dotted_names_and_bad_extra_state(tmp_path):
    r = TinyRegression()
    r.modules = {"a.b": r.modules["mlp"]}
    with pytest.raises(ValueError, match="without dots, got 'a.b'"):
        save_checkpoint(tmp_path / "c.safetensors", r, step=0)

    class BadExtra(TinyRegression):
        def extra_state(self):
            return [1, 2]

    with pytest.raises(TypeError, match="extra_state\\(\\) must return a dict"):
        save_checkpoint(tmp_path / "c.safetensors", BadExtra(), step=0)


def test_cuda_checkpoint_warns_that_resume_is_not_bitwise(tmp_path):
    r = TinyRegression()
    r.device = "cuda"  # only the metadata says cuda: the arrays are on the host
    path = save_checkpoint(tmp_path / "c.safetensors", r, step=0)
    with pytest.warns(RuntimeWarning, match="statistically, not bitwise, identical"):
        load_checkpoint(path, TinyRegression())


def test_generator_states_with_arrays_survive_json(tmp_path):
    # MT19937's state holds an ndarray: it must round-trip through the JSON metadata.
    r = TinyRegression()
    r.rng = np.random.Generator(np.random.MT19937(5))
    r.rng.random(3)
    path = save_checkpoint(tmp_path / "c.safetensors", r, step=0)
    s = TinyRegression()
    s.rng = np.random.Generator(np.random.MT19937(0))
    load_checkpoint(path, s)
    assert np.array_equal(r.rng.random(4), s.rng.random(4))


@pytest.mark.gpu
def test_cuda_run_resumes_with_a_warning(tmp_path):
    # On the GPU the dropout stream (CuPy's generator) cannot be saved: the resumed run continues
    # from the saved weights and optimizer state, and says that it is not bitwise identical.
    tg.manual_seed(0)
    first = TinyRegression({"steps": 6}, device="cuda")
    quiet(first, str(tmp_path), steps=3)
    saved = full_state(first)
    resumed = TinyRegression({"steps": 6}, device="cuda", seed=1)
    with pytest.warns(RuntimeWarning, match="statistically, not bitwise"):
        load_checkpoint(tmp_path / CHECKPOINT_NAME, resumed)
    state = full_state(resumed)
    assert all(np.array_equal(saved[k], state[k]) for k in saved)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        final = quiet(TinyRegression({"steps": 6}, device="cuda"), str(tmp_path), resume=True)
    assert np.isfinite(final["test_mse"])
    assert checkpoint_info(tmp_path / CHECKPOINT_NAME)["step"] == 6
