"""``tinygrad-pt probe --from DIR``: what a pre-trained encoder is worth on labelled digits.

    results = run_probe("runs/simclr")          # prints a table, writes runs/simclr/probe.md

The run directory's checkpoint names its recipe and config; the recipe is rebuilt from them, the
weights loaded (``load_run``, train/recipes), and the recipe asked for its encoder
(``Recipe.feature_encoder``):

    simclr, moco   the backbone MLPEncoder (before the projection head)
    ae, dae        the autoencoder's encoder (the code z)
    vae            the posterior mean mu(x)
    gan            the discriminator's penultimate layer

Then, on the digits test split:

  1. With every train label: a linear probe on the frozen pre-trained features, against the same
     probe on raw pixels and on a randomly initialised encoder of the same architecture.
  2. With `labels_per_class` labels per class (subsets drawn `subsets` times, mean and spread):
     the linear probe, fine-tuning the pre-trained encoder, and the same network trained from
     scratch with the same budget (train/transfer.py).
"""
from __future__ import annotations

import os

import numpy as np

from .. import nn
from ..backend import manual_seed
from ..data import load_digits
from ..errors import UserError
from .transfer import (LinearProbe, accuracy, few_label_subset, fine_tune, fresh_copy,
                       train_from_scratch)

__all__ = ["run_probe", "encoder_of", "PROBE_NAME"]

PROBE_NAME = "probe.md"
N_CLASSES = 10
KINDS = ("probe", "fine_tune", "scratch", "gain")  # the few-label columns


def _encoder_recipes() -> list:
    """The registered recipes whose family has an image encoder (imports their modules)."""
    from .recipes import RECIPES, get_recipe  # noqa: PLC0415 (only on this error path)

    names = []
    for name in RECIPES:
        try:
            if get_recipe(name).has_feature_encoder():
                names.append(name)
        except ImportError:  # a family that cannot load here has nothing to probe here
            pass
    return names


def _no_encoder(what: str) -> UserError:
    """The error for a run or recipe without an encoder: `what` says which ("... has")."""
    return UserError(f"probe: {what} no image encoder to probe; supported recipes: "
                     f"{', '.join(_encoder_recipes())}")


def encoder_of(recipe) -> nn.Module:
    """The feature extractor of a trained recipe, as the recipe says (``feature_encoder``; it
    shares the recipe's parameters: nothing is copied)."""
    has = getattr(type(recipe), "has_feature_encoder", None)
    if has is None or not has():
        raise _no_encoder(f"the {recipe.name!r} recipe has")
    return recipe.feature_encoder()


def _load_recipe(from_dir, device: str):
    from .recipes import load_run  # (imports the recipe's module only now)

    def require_encoder(cls, info):
        if not cls.has_feature_encoder():
            run = f"{os.fspath(from_dir)!r} holds a {info['recipe']!r} run"
            raise _no_encoder(f"{run}, which has")

    return load_run(from_dir, device, require=require_encoder)


def _mean_std(values) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std())


def run_probe(from_dir, device: str = "cpu", labels_per_class=(10, 50), out_dir=None,
              seed: int = 0, subsets: int = 3, probe_steps: int = 500, finetune_steps: int = 300,
              progress: bool = True) -> dict:
    """Probe the encoder of the run in `from_dir`; returns a flat dict of test accuracies:

      probe_pretrained, probe_random_init, probe_raw_pixels        (all train labels)
      k{K}_probe, k{K}_fine_tune, k{K}_scratch, k{K}_gain          (K labels per class: the mean
      k{K}_probe_std, k{K}_fine_tune_std, ..., k{K}_gain_std        over `subsets` label subsets
                                                                    and its standard deviation;
                                                                    gain = fine_tune - scratch
                                                                    on the same subset)

    plus "recipe" and "step". The table is printed (unless progress=False) and written as
    Markdown to ``out_dir/probe.md`` (out_dir defaults to from_dir). `seed` fixes the label
    subsets (seed, seed + 1, ...) and the random initialisations. Every linear probe trains for
    `probe_steps` full-batch Adam steps; fine-tuning and from-scratch training both take
    `finetune_steps` AdamW steps (after a probe fitted for the head's initialisation).
    """
    if isinstance(subsets, bool) or not isinstance(subsets, int) or subsets <= 0:
        raise UserError(f"run_probe: subsets must be a positive int, got {subsets!r}")
    ks = (labels_per_class,) if isinstance(labels_per_class, int) else tuple(labels_per_class)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k <= 0 for k in ks):
        raise UserError(f"run_probe: labels_per_class must be positive ints, got "
                        f"{labels_per_class!r}")
    recipe, info = _load_recipe(from_dir, device)
    encoder = encoder_of(recipe)
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")

    def probe(enc, x, y, feat_dim=None):
        p = LinearProbe(enc, N_CLASSES, feat_dim=feat_dim, device=device)
        p.fit(x, y, steps=probe_steps)
        return p.accuracy(x_test, y_test)

    def random_encoder(s):
        manual_seed(s)
        return fresh_copy(encoder)

    results = {"recipe": info["recipe"], "step": info["step"]}
    results["probe_pretrained"] = probe(encoder, x_train, y_train)
    results["probe_random_init"] = probe(random_encoder(seed), x_train, y_train)
    results["probe_raw_pixels"] = probe(None, x_train, y_train, feat_dim=x_train.shape[1])
    for k in ks:
        runs = {"probe": [], "fine_tune": [], "scratch": []}
        for s in range(seed, seed + subsets):
            x, y = few_label_subset(x_train, y_train, k, np.random.default_rng(s))
            runs["probe"].append(probe(encoder, x, y))
            tuned = fine_tune(encoder, x, y, N_CLASSES, steps=finetune_steps, seed=s,
                              probe_steps=probe_steps)
            runs["fine_tune"].append(accuracy(tuned, x_test, y_test))
            scratch = train_from_scratch(lambda: random_encoder(s), x, y, N_CLASSES,
                                         steps=finetune_steps, seed=s, probe_steps=probe_steps)
            runs["scratch"].append(accuracy(scratch, x_test, y_test))
        # The gain is paired: fine-tuned and scratch models saw the same labelled subset.
        runs["gain"] = list(np.subtract(runs["fine_tune"], runs["scratch"]))
        for kind, values in runs.items():
            results[f"k{k}_{kind}"], results[f"k{k}_{kind}_std"] = _mean_std(values)

    table = format_table(results, ks, subsets, len(x_train), len(x_test))
    out_dir = os.fspath(from_dir if out_dir is None else out_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, PROBE_NAME), "w") as f:
        f.write(table)
    if progress:
        print(table)
        print(f"written to {os.path.join(out_dir, PROBE_NAME)}")
    return results


def format_table(results: dict, ks, subsets: int, n_train: int, n_test: int) -> str:
    """The results as Markdown: all-label probes, then the few-label comparison."""
    pm = "\u00b1"
    lines = [
        f"# Probe of the {results['recipe']!r} encoder (step {results['step']})",
        "",
        f"Test accuracy on the digits test split ({n_test} images).",
        "",
        f"## Linear probe, all {n_train} train labels (frozen features)",
        "",
        "| features | accuracy |",
        "|---|---|",
        f"| pre-trained encoder | {results['probe_pretrained']:.4f} |",
        f"| random-init encoder (same architecture) | {results['probe_random_init']:.4f} |",
        f"| raw pixels | {results['probe_raw_pixels']:.4f} |",
        "",
        f"## Few labels (mean {pm} std over {subsets} label subsets)",
        "",
        "| labels per class | linear probe (pre-trained) | fine-tune (pre-trained) "
        "| from scratch (same network, same budget) | fine-tune minus scratch (paired) |",
        "|---|---|---|---|---|",
    ]
    for k in ks:
        cells = [f"{results[f'k{k}_{kind}']:+.4f}" if kind == "gain"
                 else f"{results[f'k{k}_{kind}']:.4f}" for kind in KINDS]
        cells = [f"{c} {pm} {results[f'k{k}_{kind}_std']:.4f}" for c, kind in zip(cells, KINDS)]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
