"""Issue 16: the gradient-reversal layer, CORAL, the shifted domains, the supervised pre-training
recipe and the transfer matrix's statistics and command (fast checks; the effects themselves
are held in tests/test_transfer_effects.py, marked slow)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt.cli import main
from tinygrad_pt.data import load_digits
from tinygrad_pt.data.shift import DOMAINS, downsample_to_8x8, load_mnist_8x8, shift_domain
from tinygrad_pt.data.idx import write_idx
from tinygrad_pt.models.dann import DANN, coral_loss, grad_reverse
from tinygrad_pt.train.loop import train
from tinygrad_pt.train.recipes import make_recipe
from tinygrad_pt.train.recipes.supervised import parse_classes
from tinygrad_pt.train.transfer_matrix import format_tables, relabel, verdict


# -- the gradient-reversal layer --------------------------------------------------------------

def test_grad_reverse_is_identity_forward_and_negated_scaled_backward():
    x = tg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    g = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    y = grad_reverse(x, 0.25)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    (y * tg.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -0.25 * g, rtol=1e-6)
    assert x.grad.dtype == np.float32


def test_grad_reverse_output_does_not_alias_its_input():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = grad_reverse(x)
    y.data[0] = 5.0
    assert x.numpy()[0] == 1.0


def test_grad_reverse_twice_is_the_identity_gradient():
    x = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (grad_reverse(grad_reverse(x, 2.0), 0.5) * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0, 3.0])


@pytest.mark.parametrize("lam", [-1.0, float("nan"), "1", True])
def test_grad_reverse_rejects_bad_strength(lam):
    with pytest.raises(ValueError, match="grad_reverse: lam"):
        grad_reverse(tg.tensor([1.0]), lam)


def test_dann_domain_gradient_reaches_the_encoder_reversed():
    tg.manual_seed(0)
    enc = tg.nn.Linear(4, 3)
    model = DANN(enc, 3, 2, domain_hidden=5)
    x = tg.tensor(np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32))
    _, d = model.logits(x, 1.0)
    d.sum().backward()
    g_rev = enc.weight.grad.numpy().copy()
    enc.zero_grad()
    model.domain_head(enc(x)).sum().backward()  # the same loss without the reversal
    np.testing.assert_allclose(g_rev, -enc.weight.grad.numpy(), rtol=1e-5, atol=1e-7)


# -- CORAL --------------------------------------------------------------------------------------

def test_coral_loss_matches_the_covariance_formula_and_is_zero_for_equal_sets():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 4))
    b = 2.0 * rng.standard_normal((30, 4))
    expected = ((np.cov(a, rowvar=False) - np.cov(b, rowvar=False)) ** 2).sum() / (4 * 16)
    got = coral_loss(tg.tensor(a), tg.tensor(b)).item()
    assert got == pytest.approx(expected, rel=1e-9)
    assert coral_loss(tg.tensor(a), tg.tensor(a + 3.0)).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="coral_loss"):
        coral_loss(tg.tensor(a), tg.tensor(b[:, :3]))


def test_coral_loss_gradient():
    rng = np.random.default_rng(1)
    b = tg.tensor(rng.standard_normal((7, 3)))
    assert tg.testing.gradcheck(lambda a: coral_loss(a, b),
                                tg.tensor(rng.standard_normal((5, 3)), requires_grad=True))


# -- the shifted domains -----------------------------------------------------------------------

def test_shift_domains_are_reproducible_images_in_range():
    x, _ = load_digits("test")
    for name in DOMAINS:
        a, b = shift_domain(x, name, seed=3), shift_domain(x, name, seed=3)
        assert a.shape == x.shape and a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 1.0
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, x)
    np.testing.assert_allclose(shift_domain(x, "inverted"), 1.0 - x)
    img = x[:1].reshape(8, 8)
    np.testing.assert_array_equal(shift_domain(x[:1], "rotated").reshape(8, 8), np.rot90(img))
    assert (shift_domain(x, "thick") >= x).all()  # dilation only adds ink
    assert not np.array_equal(shift_domain(x, "noisy", 0), shift_domain(x, "noisy", 1))


def test_shift_domain_errors_name_the_problem():
    x, _ = load_digits("test")
    with pytest.raises(ValueError, match="unknown domain 'upside'"):
        shift_domain(x, "upside")
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        shift_domain(x.reshape(-1, 8, 8), "inverted")


def test_mnist_idx_files_downsampled_to_8x8(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((3, 28, 28), np.uint8)
    images[:, 10:18, 12:16] = 255  # a bar in the middle
    images[2] = rng.integers(0, 256, (28, 28))
    write_idx(tmp_path / "img.idx", images)
    write_idx(tmp_path / "lab.idx", np.array([1, 7, 3], np.uint8))
    x, y = load_mnist_8x8(tmp_path / "img.idx", tmp_path / "lab.idx")
    assert x.shape == (3, 64) and y.tolist() == [1, 7, 3]
    assert x.max() == pytest.approx(1.0) and x.min() >= 0.0
    small = x[0].reshape(8, 8)
    assert small[0].sum() == 0 and small[4, 3:5].min() > 0.5  # ink stays in the middle
    np.testing.assert_allclose(downsample_to_8x8(np.ones((1, 16, 16))), np.ones((1, 64)))


# -- the supervised pre-training recipe --------------------------------------------------------

def test_parse_classes():
    assert parse_classes("0-4") == (0, 1, 2, 3, 4)
    assert parse_classes("7, 1,3-4") == (1, 3, 4, 7)
    for bad in ("", "5", "0-12", "1,1", "a-b", 3):
        with pytest.raises(ValueError):
            parse_classes(bad)


def test_supervised_recipe_sees_only_its_classes_and_learns_them(tmp_path):
    recipe = make_recipe("supervised", {"steps": 60, "eval_every": 0, "log_every": 0,
                                        "probe_steps": 50, "hidden": 64, "feat_dim": 32})
    assert set(np.unique(recipe.y_pre)) == set(range(5))
    _, y = load_digits("train")
    assert len(recipe.x_pre) == int((y < 5).sum())
    metrics = train(recipe, tmp_path / "run", progress=False)
    assert metrics["test_acc"] > 0.85  # five well-separated digits
    assert recipe.feature_encoder()(tg.tensor(recipe.x_test[:3])).shape == (3, 32)


def test_supervised_recipe_rejects_bad_classes():
    from tinygrad_pt.errors import UserError
    with pytest.raises(UserError, match="classes='0-12'"):
        make_recipe("supervised", {"classes": "0-12"})


# -- the matrix's statistics and tables ---------------------------------------------------------

def test_relabel():
    x = np.arange(10, dtype=np.float32)[:, None]
    xs, ys = relabel(x, np.arange(10), (5, 6, 7, 8, 9))
    assert xs[:, 0].tolist() == [5, 6, 7, 8, 9] and ys.tolist() == [0, 1, 2, 3, 4]


def test_verdict_calls_only_effects_beyond_two_standard_errors():
    assert verdict([0.10, 0.12, 0.11]).startswith("helps")
    assert verdict([-0.10, -0.12, -0.11]).startswith("hurts")
    assert verdict([0.05, -0.04, 0.02]).startswith("no clear effect")
    assert verdict([0.1, 0.2]).startswith("too few seeds")


def test_format_tables_shows_mean_spread_and_verdicts():
    results = {"recipe": "x", "step": 5, "seeds": [0, 1, 2], "tasks": {"t": {
        "title": "T", "note": "n", "columns": ["a", "b"],
        "rows": {"k": {"a": [0.5, 0.6, 0.7], "b": [0.1, 0.1, 0.1]}},
        "diffs": {"k": {"a - b": [0.4, 0.5, 0.6], "gap closed by X": None}}}}}
    text = format_tables(results)
    assert "| k | 0.600 \u00b1 0.100 | 0.100 \u00b1 0.000 |" in text
    assert "helps" in text and "none (gap < 0.05)" in text


def test_transfer_command_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["transfer", "--from", str(tmp_path / "nope")])
    assert e.value.code == 2
    assert "no such run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["transfer", "--from", str(tmp_path)])  # a directory without a run
    assert e.value.code == 2
    assert "no checkpoint here" in capsys.readouterr().err


# -- the GPT snippet task's pieces ------------------------------------------------------------

def test_gpt_classifier_starts_at_zero_and_trains_the_gpt():
    from tinygrad_pt.models.gpt import GPT
    from tinygrad_pt.models.gpt_classifier import GPTClassifier
    tg.manual_seed(0)
    gpt = GPT(vocab_size=256, block_size=8, n_layer=1, n_head=2, n_embd=16)
    clf = GPTClassifier(gpt, 3)
    idx = tg.tensor(np.random.default_rng(0).integers(0, 256, (4, 8)))
    logits = clf(idx)
    assert logits.shape == (4, 3) and not logits.numpy().any()  # zero head: uniform at start
    tg.nn.functional.cross_entropy(logits, tg.tensor(np.array([0, 1, 2, 0]))).backward()
    assert clf.head.weight.grad.numpy().any()
    with pytest.raises(TypeError, match="expected a GPT"):
        GPTClassifier(tg.nn.Linear(2, 2), 3)


def test_snippets_come_from_each_class_bytes_and_packages_split_by_file(tmp_path):
    from tinygrad_pt.data.text import ByteCorpus
    from tinygrad_pt.train.gpt_transfer import draw_snippets, package_files
    data = [np.full(100, 7, np.uint8), np.full(50, 9, np.uint8)]
    x, y = draw_snippets(data, 5, 16, np.random.default_rng(0))
    assert x.shape == (10, 16) and x.dtype == np.int64
    assert ((x == 7).all(axis=1) == (y == 0)).all() and ((x == 9).all(axis=1) == (y == 1)).all()
    for pkg in ("alpha", "beta"):
        (tmp_path / pkg).mkdir()
        for i in range(6):
            (tmp_path / pkg / f"m{i}.py").write_text(f"# {pkg} {i}\n" * 20)
    (tmp_path / "top.py").write_text("x = 1\n")
    corpus = ByteCorpus(tmp_path, val_fraction=0.3, seed=0, pattern="*.py")
    pkgs = package_files(corpus)
    assert set(pkgs) == {"alpha", "beta"}  # the top-level module belongs to no package
    for train_files, val_files in pkgs.values():
        assert not set(train_files) & set(val_files)


def test_transfer_on_a_gpt_run_fine_tunes_snippets_and_refuses_image_tasks(tmp_path, capsys):
    from tinygrad_pt.train.transfer_matrix import run_transfer
    from tinygrad_pt.errors import UserError
    recipe = make_recipe("gpt", {"steps": 1, "eval_every": 0, "log_every": 0, "n_layer": 1,
                                 "n_embd": 16, "n_head": 2, "block_size": 16, "eval_windows": 2,
                                 "sample_tokens": 4})
    train(recipe, tmp_path / "gpt", progress=False)
    with pytest.raises(UserError, match="takes only the 'snippets' task"):
        run_transfer(tmp_path / "gpt", tasks=("labelset",), progress=False)
    out = run_transfer(tmp_path / "gpt", tasks=("snippets",), seeds=1, gpt_labels=(2,),
                       gpt_steps=2, snippet_bytes=8, progress=False)
    sec = out["tasks"]["snippets"]
    assert sec["title"].endswith("which package a 8-byte snippet comes from")
    assert set(sec["rows"]["2 / class"]) == set(sec["columns"])
    assert sec["samples"]["pre-trained"].startswith("def ")
    text = (tmp_path / "gpt" / "transfer.md").read_text()
    assert "fine-tuned:" in text and (tmp_path / "gpt" / "transfer.png").exists()
    for bad in ("17", "0"):  # past the GPT's positions, or empty
        with pytest.raises(SystemExit):
            main(["transfer", "--from", str(tmp_path / "gpt"), "--snippet-bytes", bad])
        assert "snippet_bytes must be an int from 1 to the run's block_size (16), got " + bad \
            in capsys.readouterr().err


def test_transfer_command_writes_tables_and_a_plot_for_an_image_run(tmp_path, capsys):
    recipe = make_recipe("supervised", {"steps": 20, "eval_every": 0, "log_every": 0,
                                        "hidden": 16, "feat_dim": 8, "probe_steps": 5})
    train(recipe, tmp_path / "sup", progress=False)
    assert main(["transfer", "--from", str(tmp_path / "sup"), "--task", "labelset", "shift",
                 "--seeds", "1", "--steps", "3", "--labels", "1", "--domains", "faded",
                 "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "transfer.md").read_text()
    for heading in ("Label-set transfer: digits 5-9", "Domain shift"):
        assert heading in text
    assert "gap closed by CORAL" in text and "never saw a target-class image" in text
    assert (tmp_path / "out" / "transfer.png").stat().st_size > 0
    results = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert len(results["tasks"]["shift"]["rows"]["faded"]["DANN, pre-trained"]) == 1
    with pytest.raises(SystemExit):  # target classes that overlap the pre-training ones
        main(["transfer", "--from", str(tmp_path / "sup"), "--task", "labelset",
              "--target-classes", "3-7", "--seeds", "1"])
    assert "overlap the target classes" in capsys.readouterr().err


def test_augment_task_labels_generated_images_and_skips_runs_without_a_generator(tmp_path):
    from tinygrad_pt.train.transfer_matrix import run_transfer
    recipe = make_recipe("vae", {"steps": 20, "eval_every": 0, "log_every": 0, "hidden": 16,
                                 "latent": 4, "eval_draws": 1})
    train(recipe, tmp_path / "vae", progress=False)
    out = run_transfer(tmp_path / "vae", tasks=("augment",), seeds=1, steps=2, probe_steps=5,
                       augment_labels=(2,), n_generated=50, progress=False)
    kept = out["tasks"]["augment"]["rows"]["2 / class"]["generated images kept"][0]
    assert 0 <= kept <= 50
    sup = make_recipe("supervised", {"steps": 2, "eval_every": 0, "log_every": 0,
                                     "hidden": 16, "feat_dim": 8, "probe_steps": 5})
    train(sup, tmp_path / "sup", progress=False)
    out = run_transfer(tmp_path / "sup", tasks=("augment",), seeds=1, progress=False)
    assert out["tasks"] == {}


def test_transfer_shift_takes_the_users_mnist_files_as_a_target_domain(tmp_path):
    # Stand-in MNIST files (no download here): the digits, scaled 3x to 24x24 and padded to 28.
    x, y = load_digits("train")
    img = (np.kron(x.reshape(-1, 8, 8), np.ones((3, 3))) * 255).astype(np.uint8)
    img = np.pad(img, ((0, 0), (2, 2), (2, 2)))
    reps = -(-2000 // len(img))
    write_idx(tmp_path / "img.idx", np.concatenate([img] * reps)[:2000])
    write_idx(tmp_path / "lab.idx", np.concatenate([y] * reps)[:2000].astype(np.uint8))
    recipe = make_recipe("supervised", {"steps": 5, "eval_every": 0, "log_every": 0,
                                        "hidden": 16, "feat_dim": 8, "probe_steps": 5})
    train(recipe, tmp_path / "sup", progress=False)
    assert main(["transfer", "--from", str(tmp_path / "sup"), "--task", "shift", "--seeds", "1",
                 "--steps", "2", "--domains", "faded", "--mnist", str(tmp_path / "img.idx"),
                 str(tmp_path / "lab.idx")]) == 0
    rows = json.loads((tmp_path / "sup" / "transfer.json").read_text())["tasks"]["shift"]["rows"]
    assert set(rows) == {"faded", "mnist-8x8"}
    write_idx(tmp_path / "short.idx", img[:10])
    write_idx(tmp_path / "short_lab.idx", y[:10].astype(np.uint8))
    with pytest.raises(SystemExit):
        main(["transfer", "--from", str(tmp_path / "sup"), "--task", "shift", "--mnist",
              str(tmp_path / "short.idx"), str(tmp_path / "short_lab.idx")])
