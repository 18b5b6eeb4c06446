"""tinygrad-pt bench: timing statistics, the suites' files, the CLI, and the torch mirrors.

The torch mirrors (tinygrad_pt/bench/torch_steps.py) must be the same models: loaded with the
recipe's initial weights and given the same batch, their first loss equals tinygrad_pt's. That
is what makes a "tg / torch" ratio a comparison of frameworks, not of models. (VAE and GAN draw
noise inside the step from each framework's own generator, so they are checked for a finite,
close-by loss only.)
"""
import csv
import os

import numpy as np
import pytest

from tinygrad_pt.bench import timing
from tinygrad_pt.bench.steps import STEP_CASES, build_recipe, step_cases
from tinygrad_pt.bench.suite import gpt_overhead, run_bench
from tinygrad_pt.bench.tables import OVERHEAD_META
from tinygrad_pt.cli import main


class FakeClock(timing.Clock):
    """Returns the next of the given durations instead of measuring."""

    def __init__(self, durations):
        self.durations = list(durations)

    def __call__(self, fn):
        fn()
        return self.durations.pop(0)


def test_summarize_gives_median_and_quartiles():
    s = timing.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s["median"], s["min"], s["p25"], s["p75"]) == (3.0, 1.0, 2.0, 4.0)
    one = timing.summarize([0.5])
    assert one["median"] == one["p25"] == one["p75"] == 0.5


def test_time_calls_warms_up_then_alternates():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    clock = FakeClock([0.5] * 4 + [1.0, 10.0, 2.0, 20.0, 3.0, 30.0])
    res = timing.time_calls(calls, warmup=2, repeat=3, clock=clock)
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 3  # warm-up not counted, then alternating
    assert res["a"]["times"] == [1.0, 2.0, 3.0] and res["b"]["median"] == 20.0


def test_gpu_only_cases_are_left_out_on_the_cpu():
    assert "gpt2-small" in STEP_CASES and "gpt2-small" not in step_cases("cpu")
    assert "gpt2-small" in step_cases("cuda")


def test_run_bench_writes_markdown_csv_and_png(tmp_path):
    out = run_bench("all", device="cpu", out=str(tmp_path), threads=1, repeat=3, budget_s=0.5,
                    ops=["copy", "softmax"], steps=["ae"], log=lambda line: None)
    md = open(out["markdown"]).read()
    assert "| softmax" in md and "| ae" in md and "threads" in md and "numpy BLAS" in md
    with open(out["csv"]) as f:
        rows = list(csv.DictReader(f))
    got = {(r["suite"], r["name"], r["implementation"]) for r in rows}
    assert got == {("ops", "copy", "tinygrad_pt"), ("ops", "copy", "reference"),
                   ("ops", "softmax", "tinygrad_pt"), ("ops", "softmax", "reference"),
                   ("steps", "ae", "tinygrad_pt")}
    for r in rows:
        assert 0 < float(r["min_ms"]) <= float(r["median_ms"]) and int(r["runs"]) == 3
    assert os.path.getsize(out["png"]) > 1000
    with open(out["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_gpt_overhead_parts_add_up_to_the_step():
    ov = gpt_overhead("cpu", steps=2)
    parts = [v for k, v in ov.items() if k not in OVERHEAD_META]
    assert len(parts) == 5 and all(v >= 0 for v in parts)
    assert ov["forward ops"] > 0 and ov["backward ops"] > 0 and ov["optimizer (clip + AdamW)"] > 0
    assert sum(parts) == pytest.approx(ov["profiled"], rel=1e-9) or sum(parts) > ov["profiled"]
    assert "Attention" in ov["profile"].stats and "Linear" in ov["profile"].stats


@pytest.mark.parametrize("argv, message", [
    (["bench", "--repeat", "2"], "--repeat must be at least 3"),
    (["bench", "--threads", "0"], "--threads must be positive"),
    (["bench", "steps", "--models", "nope"], "unknown model 'nope'"),
])
def test_cli_bench_rejects_bad_settings(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# The torch mirrors are the same models

@pytest.mark.torch
@pytest.mark.parametrize("name", ["ae", "dae", "vae", "gan", "simclr", "moco", "gpt"])
def test_torch_mirror_takes_the_same_first_step(name):
    torch = pytest.importorskip("torch")
    from tinygrad_pt.bench.torch_steps import torch_step

    torch.manual_seed(0)
    config = {"n_layer": 2, "n_embd": 64, "block_size": 32} if name == "gpt" else {}
    recipe = build_recipe(name, "cpu", config)
    batch = recipe.draw_batch()
    step = torch_step(recipe)  # copies the recipe's initial weights
    theirs = float(step(*batch))
    metrics = recipe.step_on(*batch)
    ours = float(metrics["loss_d" if name == "gan" else "loss"].item())
    if name in ("vae", "gan"):  # noise from each framework's own generator
        assert np.isfinite(theirs) and abs(ours - theirs) < 0.1 * abs(ours) + 0.05
    else:
        assert ours == pytest.approx(theirs, rel=2e-5, abs=2e-6)
    second = float(step(*recipe.draw_batch()))
    assert np.isfinite(second) and second != theirs


def test_a_call_longer_than_a_second_is_its_own_warm_up():
    order = []
    clock = FakeClock([1.5, 1.0, 2.0, 3.0])
    res = timing.time_calls({"slow": lambda: order.append(1)}, warmup=2, repeat=3, clock=clock)
    assert len(order) == 4 and res["slow"]["times"] == [1.0, 2.0, 3.0]


# ----------------------------------------------------------------------------------------------------
# The per-op cases run in both frameworks, with the same inputs

@pytest.mark.parametrize("name", ["gpt_layer_norm", "gpt_gelu_tanh", "gelu"])
def test_op_cases_at_the_gpt_shapes_run_and_are_torch_s_op(name):
    import tinygrad_pt as tg
    from tinygrad_pt.bench.ops import op_cases, tg_op

    case = next(c for c in op_cases("cpu") if c.name == name)
    assert case.work > 0
    tg_op(case, "cpu")()  # forward + backward, grads dropped
    torch = pytest.importorskip("torch")
    from tinygrad_pt.bench.torch_ops import torch_op
    torch_op(case, "cpu")()
    # the same op on both sides: equal outputs for one input
    p = case.params
    x = np.random.default_rng(0).standard_normal((p["rows"], p.get("width", p.get("cols"))))
    x = x.astype(np.float32)
    if "width" in p:
        ours = tg.nn.LayerNorm(p["width"])(tg.tensor(x))
        theirs = torch.nn.LayerNorm(p["width"])(torch.from_numpy(x))
    else:
        ours = tg.nn.functional.gelu(tg.tensor(x), approximate=p["approximate"])
        theirs = torch.nn.functional.gelu(torch.from_numpy(x), approximate=p["approximate"])
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_end_of_run_says_how_busy_the_machine_was():
    from tinygrad_pt.bench.machine import end_of_run, machine_info
    machine_info()  # the run's start
    sum(range(10 ** 6))
    info = end_of_run({})
    if os.path.exists("/proc/stat"):
        share = info["CPU time stolen by the hypervisor during the run"]
        assert 0.0 <= float(share.split("%")[0]) <= 100.0
    if hasattr(os, "getloadavg"):
        assert len(info["load average (1, 5, 15 min) at end"].split(", ")) == 3
