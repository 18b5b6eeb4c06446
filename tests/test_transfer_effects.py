"""Issue 16: the transfer effects that benchmarks/results/transfer_*.md report, at reduced size.

Only effects that held in every seed of the measured tables are asserted here, each on seeds of
its own. For the contrastive probes, SimCLR on the 0-4 images and the GPT probe, the reduced
setting was first run on more seeds than the test uses (label subsets 0-7 or seeds 0-3, and two
pre-training seeds); the comment beside each assertion lists the margins seen, and it asks for
less than the smallest. Where the reduced setting's gain per seed was not always clear (the
contrastive probes at 1 label per class: down to +0.01), the mean over seeds is asserted. The
tables' rows whose effect is within noise are stated there, not tested.
"""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_pt.data import load_digits
from tinygrad_pt.data.shift import shift_domain
from tinygrad_pt.train.loop import train
from tinygrad_pt.train.recipes import make_recipe
from tinygrad_pt.train.transfer import LinearProbe, accuracy, few_label_subset, fine_tune
from tinygrad_pt.train.transfer_matrix import on_classes, relabel, train_adapted

pytestmark = pytest.mark.slow
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def supervised_0_4(tmp_path_factory):
    """The backbone of a classifier pre-trained on digits 0-4 (300 steps, a few seconds)."""
    recipe = make_recipe("supervised", {"steps": 300, "eval_every": 0, "log_every": 0})
    train(recipe, tmp_path_factory.mktemp("supervised"), progress=False)
    return recipe.feature_encoder()


def test_supervised_0_4_features_probe_worse_than_raw_pixels_on_5_9(supervised_0_4):
    # Measured (1000 steps, 3 seeds): probe 0.74 vs raw pixels 0.92 at 10 labels per class: the
    # features of a net trained to tell 0-4 apart collapse what separates 5-9.
    x_train, y_train = relabel(*load_digits("train"), range(5, 10))
    x_test, y_test = relabel(*load_digits("test"), range(5, 10))
    for s in SEEDS:
        x, y = few_label_subset(x_train, y_train, 10, np.random.default_rng(s))
        raw = LinearProbe(None, 5, feat_dim=64)
        raw.fit(x, y)
        probe = LinearProbe(supervised_0_4, 5)
        probe.fit(x, y)
        assert probe.accuracy(x_test, y_test) < raw.accuracy(x_test, y_test) - 0.08, s


def _digits_5_9():
    """(x_train, y_train, x_test, y_test) of digits 5-9, labelled 0-4."""
    return relabel(*load_digits("train"), range(5, 10)) + relabel(*load_digits("test"),
                                                                  range(5, 10))


def _pre_trained(recipe, run_dir):
    train(recipe, run_dir, progress=False)
    return recipe.feature_encoder()


# Of the table's 1000 steps: at 400 (SimCLR) and 300 (MoCo) the gain fell to +0.01 and -0.01 on
# label subset 5, whose raw-pixel probe is unusually good (0.71).
CONTRASTIVE_STEPS = {"simclr": 800, "moco": 1000}


@pytest.mark.parametrize("family", ["simclr", "moco"])
def test_contrastive_probe_beats_raw_pixels_at_1_label_per_class_on_5_9(family, tmp_path):
    # Measured (1000 steps, 3 seeds): probe 0.689 (SimCLR) / 0.719 (MoCo) vs raw pixels 0.566
    # with one label per class, higher in every seed. Reduced, probe - raw over label subsets
    # 0-7, pre-training seed 0 / 1: SimCLR +0.07 +0.16 +0.18 +0.13 +0.08 +0.08 +0.11 +0.01
    # (mean +0.103) / +0.13 +0.14 +0.10 +0.12 +0.15 +0.06 +0.06 +0.03 (+0.097); MoCo +0.17 +0.17
    # +0.12 +0.04 +0.17 +0.09 +0.15 +0.04 (+0.117) / +0.18 +0.16 +0.16 +0.03 +0.11 +0.01 +0.12
    # +0.01 (+0.097). Per subset the gain is not always clear (+0.01 where raw pixels do well),
    # so the mean over the eight subsets is what is asserted.
    x_train, y_train, x_test, y_test = _digits_5_9()
    config = {"steps": CONTRASTIVE_STEPS[family], "eval_every": 0, "log_every": 0}
    encoder = _pre_trained(make_recipe(family, config), tmp_path)
    gains = []
    for s in range(8):  # a probe costs well under a second: eight label subsets
        x, y = few_label_subset(x_train, y_train, 1, np.random.default_rng(s))
        raw = LinearProbe(None, 5, feat_dim=64)
        raw.fit(x, y)
        probe = LinearProbe(encoder, 5)
        probe.fit(x, y)
        gains.append(probe.accuracy(x_test, y_test) - raw.accuracy(x_test, y_test))
    assert np.mean(gains) > 0.06, np.round(gains, 3)


def test_simclr_on_the_0_4_images_fine_tunes_better_than_supervised_0_4(supervised_0_4,
                                                                       tmp_path):
    # Measured (1000 steps, 3 seeds): 0.683 vs 0.382 at 1 label per class on 5-9, higher at
    # 1, 5 and 10 labels in every seed. Reduced (SimCLR 800 steps on the 721 train images of
    # 0-4, no labels; the supervised fixture's 300 steps), fine-tune difference at 1 label per
    # class over label subsets 0-7 with pre-training seed 0: +0.28 +0.26 +0.22 +0.35 +0.23
    # +0.16 +0.18 +0.41; subsets 0-3 with seed 1: +0.25 +0.17 +0.25 +0.24. (At 5 labels +0.05
    # to +0.27, at 10 +0.00 to +0.10: not asserted.)
    x_train, y_train, x_test, y_test = _digits_5_9()
    config = {"steps": 800, "eval_every": 0, "log_every": 0}
    simclr_0_4 = _pre_trained(on_classes("simclr", range(5), config), tmp_path)
    for s in SEEDS:
        x, y = few_label_subset(x_train, y_train, 1, np.random.default_rng(s))
        contrastive = accuracy(fine_tune(simclr_0_4, x, y, 5, steps=300, seed=s), x_test, y_test)
        supervised = accuracy(fine_tune(supervised_0_4, x, y, 5, steps=300, seed=s), x_test,
                              y_test)
        assert contrastive > supervised + 0.1, s


def test_gpt_frozen_probe_beats_the_same_gpt_from_scratch_on_snippets(tmp_path):
    # Measured (3 seeds, 128 snippets per class, higher at 32 and 128 in every seed): probe
    # 0.492 vs scratch 0.340 with the default GPT on 128-byte snippets; 0.453 vs 0.355 with 2
    # layers x 64, 600 steps, 64-byte snippets. Reduced to the latter at 300 pre-training
    # steps, probe - scratch over seeds 0-3, pre-training seed 0 / 1: +0.15 +0.11 +0.12 +0.04
    # / +0.155 +0.09 +0.115 +0.09. (Fine-tune - scratch: -0.04 to +0.07, not asserted.)
    from tinygrad_pt.train.gpt_transfer import task_snippets
    config = {"steps": 300, "eval_every": 0, "log_every": 0, "n_layer": 2, "n_embd": 64,
              "block_size": 64, "sample_tokens": 4}
    recipe = make_recipe("gpt", config)
    train(recipe, tmp_path, progress=False)
    sec = task_snippets(recipe, {}, list(SEEDS), labels_per_class=(128,), sample_tokens=4,
                        log=lambda line: None)
    row = sec["rows"]["128 / class"]
    for s, probe, scratch in zip(SEEDS, row["probe (frozen, pre-trained)"],
                                 row["scratch (same GPT)"]):
        assert probe > scratch + 0.02, s


def _faded_split(s):
    x_all, y_all = load_digits("train")
    x_test, y_test = load_digits("test")
    order = np.random.default_rng(s).permutation(len(x_all))
    src, tgt = order[: len(order) // 2], order[len(order) // 2:]
    return (x_all[src], y_all[src], shift_domain(x_all[tgt], "faded"),
            shift_domain(x_test, "faded"), x_test, y_test)


def test_faded_domain_costs_accuracy_and_coral_recovers_part_dann_does_not(supervised_0_4):
    # Measured (3 seeds, 300 steps): source only 0.42 on faded (0.96 clean), CORAL 0.72,
    # DANN 0.16, oracle 0.95.
    for s in SEEDS:
        xs, ys, xt, xt_test, x_test, y_test = _faded_split(s)
        tuned = fine_tune(supervised_0_4, xs, ys, 10, steps=300, seed=s)
        source_only = accuracy(tuned, xt_test, y_test)
        assert source_only < accuracy(tuned, x_test, y_test) - 0.2, s
        coral = train_adapted(supervised_0_4, xs, ys, xt, 10, method="coral", steps=300, seed=s)
        assert accuracy(coral, xt_test, y_test) > source_only + 0.1, s
        dann = train_adapted(supervised_0_4, xs, ys, xt, 10, method="dann", steps=300, seed=s)
        assert accuracy(dann, xt_test, y_test) < source_only, s


def test_pre_training_helps_on_thick_strokes(supervised_0_4):
    # Measured (3 seeds): trained on clean digits, scored on dilated ones, the net fine-tuned
    # from the supervised (0.67) or SimCLR (0.72) encoder beats the same net from scratch (0.58)
    # in every seed.
    from tinygrad_pt.train.transfer_matrix import _from_scratch
    for s in SEEDS:
        xs, ys, _, _, x_test, y_test = _faded_split(s)
        x_thick = shift_domain(x_test, "thick")
        pre = accuracy(fine_tune(supervised_0_4, xs, ys, 10, steps=300, seed=s), x_thick, y_test)
        scratch = fine_tune(_from_scratch(supervised_0_4, 10_000 + s), xs, ys, 10, steps=300,
                            seed=s)
        assert pre > accuracy(scratch, x_thick, y_test) + 0.03, s


def _assert_samples_do_not_help(generator):
    """A 10-labels-per-class digits classifier trained again with 1000 of `generator`'s samples,
    pseudo-labelled by it, is no better than without them (seeds SEEDS)."""
    from tinygrad_pt.backend import manual_seed
    from tinygrad_pt.models.contrastive import MLPEncoder
    from tinygrad_pt.train.transfer_matrix import _generated, augment_with_samples
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    for s in SEEDS:
        x, y = few_label_subset(x_train, y_train, 10, np.random.default_rng(s))

        def make_encoder(s=s):
            manual_seed(10_000 + s)
            return MLPEncoder(64, 256, 128)
        base = fine_tune(make_encoder(), x, y, 10, steps=300, seed=s, copy_encoder=False)
        fake = _generated(generator, 1000, 20_000 + s)
        aug, _ = augment_with_samples(base, fake, x, y, make_encoder, 10, 300, s, 500)
        assert accuracy(aug, x_test, y_test) < accuracy(base, x_test, y_test) + 0.01, s


def test_vae_samples_as_augmentation_do_not_help(tmp_path):
    # Measured (3 seeds, 10 labels per class): 0.851 with 1000 pseudo-labelled VAE samples vs
    # 0.885 without, lower in every seed. Asserted as what it is: no gain.
    vae = make_recipe("vae", {"steps": 2000, "eval_every": 0, "log_every": 0})
    train(vae, tmp_path / "vae", progress=False)
    _assert_samples_do_not_help(vae)


def test_gan_samples_as_augmentation_do_not_help(tmp_path):
    # Measured at full size (3 seeds, 3000 GAN steps): 0.830 with pseudo-labelled GAN samples vs
    # 0.885 without at 10 labels per class, lower in every seed. At this size (1000 GAN steps,
    # 13 s on one core), label subsets 0-5 and GAN seeds 0 and 1: with samples lower in all 12
    # runs, by 0.003 to 0.050. Asserted as the VAE's: no gain.
    gan = make_recipe("gan", {"steps": 1000, "eval_every": 0, "log_every": 0})
    train(gan, tmp_path / "gan", progress=False)
    _assert_samples_do_not_help(gan)