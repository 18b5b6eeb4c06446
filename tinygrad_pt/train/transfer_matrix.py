"""``tinygrad-pt transfer --from RUN``: does a run's pre-training pay downstream? The matrix.

    results = run_transfer("runs/supervised", tasks=("labelset", "shift"), seeds=3)
    # prints the tables; writes RUN/transfer.md, transfer.json (every seed's value), transfer.png

Tasks (each run over `seeds` seeds: label subsets, splits, initialisations and batches all follow
the seed; mean and standard deviation over seeds, and paired differences with a verdict):

  labelset  the run's encoder carried to a label set it was not trained on: digits 5-9 (by
            default) with 1, 5, 10 labels per class, scored on the test images of 5-9. Linear
            probe of the frozen encoder and fine-tuning (LP-FT), against the same network trained
            from scratch and a probe on raw pixels. A supervised run pre-trained on 0-4 never saw
            a 5-9 image; the unsupervised families (ae, vae, simclr, ...) trained on every train
            image without labels, 5-9 included: an advantage the table states.
  shift     domain shift (data/shift.py): the train split halved at random; one half is the
            labelled source (clean digits), the other, moved to the target domain (inverted,
            faded, thick, ...), gives unlabelled target images. A classifier trained on the
            source only, from scratch and from the pre-trained encoder, is scored on the shifted
            test split; then DANN (models/dann.py: the gradient-reversal layer is a custom
            Function) and CORAL adapt it with the unlabelled target half; an oracle trained with
            the target half's labels bounds what adaptation could reach. "Gap closed" =
            mean(adapted - source only) / mean(oracle - source only).
  augment   a few-label classifier (5 and 10 labels per class, all ten digits) trained with and
            without extra images sampled from the run's generator (VAE or GAN runs), labelled by
            the few-label classifier itself (its confident predictions only): no label beyond
            the few is used. Runs without a generator skip it.
  snippets  GPT runs only (train/gpt_transfer.py): which standard-library package a snippet of
            block_size bytes (or `snippet_bytes`) comes from, the pre-trained GPT fine-tuned
            against the same GPT from scratch at several label counts, and text sampled before
            and after.

Every classifier trains through train/transfer.py's helpers (fine_tune, LinearProbe) or
``optimize`` (train/loop.py) for DANN and CORAL, with the same step budget per row.
"""
from __future__ import annotations

import copy
import json
import math
import os

import numpy as np

from .. import optim
from ..autograd import no_grad
from ..backend import manual_seed
from ..creation import tensor
from ..data import load_digits
from ..data.shift import DOMAINS, load_mnist_8x8, shift_domain
from ..errors import UserError
from ..models.contrastive import MLPEncoder
from ..models.dann import DANN, coral_loss
from ..nn import functional as F
from .loop import optimize
from .transfer import (LinearProbe, accuracy, feature_dim, few_label_subset, fine_tune,
                       fresh_copy, module_device)

__all__ = ["run_transfer", "TASKS", "format_tables", "format_section", "verdict", "relabel",
           "on_classes", "train_adapted",
           "augment_with_samples", "TRANSFER_NAME"]

TASKS = ("labelset", "shift", "augment", "snippets")
IMAGE_TASKS = TASKS[:3]  # for runs with an image encoder; "snippets" for GPT runs
TRANSFER_NAME = "transfer"  # transfer.md, transfer.json, transfer.png
PM = "\u00b1"


# ----------------------------------------------------------------------------------------------------
# Statistics: mean, spread and whether a paired difference stands out of the noise


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def verdict(diffs) -> str:
    """Whether paired differences (one per seed) show an effect: "helps"/"hurts" when the mean is
    more than two standard errors from zero (with at least 3 seeds), else "no clear effect"."""
    d = np.asarray(diffs, dtype=np.float64)
    if len(d) < 3:
        return f"too few seeds ({len(d)}) to call"
    m, se = d.mean(), d.std(ddof=1) / math.sqrt(len(d))
    if abs(m) > 2 * se:
        return f"{'helps' if m > 0 else 'hurts'} ({abs(m) / max(se, 1e-12):.1f} s.e.)"
    return f"no clear effect (within noise, {m:+.3f} {PM} {se:.3f} s.e.)"


# ----------------------------------------------------------------------------------------------------
# Data


def relabel(x, y, classes):
    """The rows of (x, y) whose label is in `classes`, labels mapped to 0..len(classes)-1."""
    remap = np.full(10, -1, dtype=np.int64)
    remap[list(classes)] = np.arange(len(classes))
    keep = remap[y] >= 0
    return x[keep], remap[y[keep]]


def on_classes(family: str, classes, config: dict | None = None, seed: int = 0):
    """The `family` recipe (built from `config` and `seed`) that trains on the train images of
    `classes` only (their labels unused by an unsupervised family): SimCLR pre-trained on the
    images the supervised 0-4 run saw, without its labels. Its checkpoint is an ordinary run of
    the family, which load_run rebuilds (the narrowed data is not part of the checkpoint)."""
    from .recipes import get_recipe
    base = get_recipe(family)

    class OnClasses(base):
        def load_data(self):
            super().load_data()
            keep = np.isin(self.y_train, list(classes))
            self.x_train, self.y_train = self.x_train[keep], self.y_train[keep]

    return OnClasses(config, seed=seed)


def _classes(text) -> tuple:
    from .recipes.supervised import parse_classes
    try:
        return parse_classes(text)
    except ValueError as e:
        raise UserError(f"transfer: {e}") from None


# ----------------------------------------------------------------------------------------------------
# Classifiers


def _from_scratch(encoder, seed: int):
    """The same architecture as `encoder`, freshly initialised from `seed`."""
    manual_seed(seed)
    return fresh_copy(encoder)


def _fit(encoder, x, y, n_classes, steps, seed, probe_steps):
    """fine_tune with the matrix's budget (LP-FT, AdamW, batches of 128)."""
    return fine_tune(encoder, x, y, n_classes, steps=steps, seed=seed, probe_steps=probe_steps)


def train_adapted(encoder, xs, ys, xt, n_classes: int, method: str = "coral", steps: int = 300,
                  lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
                  weight_decay: float = 1e-4, weight: float | None = None, lam_max: float = 1.0,
                  probe_steps: int = 500) -> DANN:
    """Unsupervised domain adaptation from labelled source (xs, ys) and unlabelled target images
    xt, starting from a copy of `encoder` (its label head started by a linear probe on the
    source, as fine_tune's LP-FT). Returns the DANN module (its forward is the classifier).

    Each step: `batch_size` source and `batch_size` target rows; loss = cross-entropy on the
    source labels + weight * lam(p) * alignment, where lam(p) = lam_max * (2 / (1 + exp(-10 p))
    - 1) ramps from 0 to lam_max as Ganin et al. schedule it (p: the fraction of training done),
    so the alignment's early, random gradients do not scramble the features.

      method="dann"   alignment = BCE(domain logit, source 0 / target 1) of the domain head
                      behind the gradient-reversal layer (strength lam(p)); weight 0.1 by default
      method="coral"  alignment = coral_loss of the source and target features; weight 100
                      (the loss is divided by 4 d^2 = 65,536 for 128-d features)

    The defaults were the best of a few tried on "faded" (AdamW lr 1e-3; SGD at lr 0.01
    diverged): DANN's weight 1 sent the target predictions to one class, 0.1 did least harm.
    """
    if method not in ("dann", "coral"):
        raise ValueError(f"train_adapted: method must be 'dann' or 'coral', got {method!r}")
    weight = (0.1 if method == "dann" else 100.0) if weight is None else weight
    width = feature_dim(encoder)
    device = module_device(encoder)
    body = copy.deepcopy(encoder)
    body.requires_grad_(True)
    probe = LinearProbe(body, n_classes, feat_dim=width, device=device)
    probe.fit(xs, ys, steps=probe_steps)
    manual_seed(seed)  # the domain head's initialisation
    model = DANN(body, width, n_classes, label_head=probe.as_linear()).to(device)
    model.train()
    params = (model.parameters() if method == "dann" else
              list(model.encoder.parameters()) + list(model.label_head.parameters()))
    opt = optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    domain = tensor(np.concatenate([np.zeros(batch_size, np.float32),
                                    np.ones(batch_size, np.float32)]), device=device)

    def loss_of_step(step):
        p = step / max(steps - 1, 1)
        lam = lam_max * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)
        i_s = rng.integers(0, len(xs), batch_size)
        i_t = rng.integers(0, len(xt), batch_size)
        x = tensor(np.concatenate([xs[i_s], xt[i_t]]), device=device)   # (2B, D)
        y = tensor(ys[i_s], device=device)
        if method == "dann":
            logits, d = model.logits(x, lam)                             # (2B, C), (2B,)
            return (F.cross_entropy(logits[:batch_size], y)
                    + weight * F.binary_cross_entropy_with_logits(d, domain))
        h = model.encoder(x)                                             # (2B, feat_dim)
        return (F.cross_entropy(model.label_head(h[:batch_size]), y)
                + (weight * lam) * coral_loss(h[:batch_size], h[batch_size:]))

    optimize(opt, loss_of_step, steps)
    return model


def _generated(recipe, n: int, seed: int) -> np.ndarray | None:
    """n images (n, 64) in [0, 1] sampled from the run's generator, or None without one."""
    manual_seed(seed)
    name = getattr(recipe, "name", "")
    if name == "vae":
        recipe.model.eval()
        with no_grad():
            out = recipe.model.sample(n, device=recipe.device).numpy()
        recipe.model.train()
        return out
    if name in ("gan", "wgan_gp"):
        z = np.random.default_rng(seed).standard_normal((n, recipe.config["latent"]),
                                                        dtype=np.float32)
        return np.clip(recipe.generate(z), 0.0, 1.0)
    return None


def augment_with_samples(base_model, fake: np.ndarray, x, y, make_encoder, n_classes: int,
                         steps: int, seed: int, probe_steps: int, threshold: float = 0.9):
    """A classifier trained from scratch on (x, y) plus the generated images `fake` that the
    few-label classifier `base_model` labels with confidence > threshold. Returns (model, how
    many generated images were kept)."""
    device = module_device(base_model)
    base_model.eval()
    with no_grad():
        probs = F.softmax(base_model(tensor(fake, device=device)), axis=-1).numpy()
    keep = probs.max(axis=1) > threshold
    xa = np.concatenate([x, fake[keep]]).astype(np.float32)
    ya = np.concatenate([y, probs.argmax(axis=1)[keep]]).astype(np.int64)
    model = fine_tune(make_encoder(), xa, ya, n_classes, steps=steps, seed=seed,
                      probe_steps=probe_steps, copy_encoder=False)
    return model, int(keep.sum())


# ----------------------------------------------------------------------------------------------------
# The tasks: each returns {"title", "note", "columns", "rows": {setting: {column: [per seed]}},
# "diffs": {setting: {name: [per seed]}}}


def task_labelset(encoder, info, seeds, labels_per_class, target_classes, steps, probe_steps,
                  log, seen=None):
    pre = info["config"].get("classes") if info["recipe"] == "supervised" else None
    target = _classes(target_classes)
    if pre is not None and set(_classes(pre)) & set(target):
        raise UserError(f"transfer: the run was pre-trained on classes {pre}, which overlap the "
                        f"target classes {target_classes}; pick a disjoint --target-classes")
    x_train, y_train = relabel(*load_digits("train"), target)
    x_test, y_test = relabel(*load_digits("test"), target)
    n = len(target)
    rows, diffs = {}, {}
    for k in labels_per_class:
        r = {c: [] for c in ("raw pixels probe", "probe", "fine-tune", "scratch")}
        for s in seeds:
            x, y = few_label_subset(x_train, y_train, k, np.random.default_rng(s))
            raw = LinearProbe(None, n, feat_dim=x.shape[1], device=module_device(encoder))
            raw.fit(x, y, steps=probe_steps)
            r["raw pixels probe"].append(raw.accuracy(x_test, y_test))
            p = LinearProbe(encoder, n, device=module_device(encoder))
            p.fit(x, y, steps=probe_steps)
            r["probe"].append(p.accuracy(x_test, y_test))
            r["fine-tune"].append(accuracy(_fit(encoder, x, y, n, steps, s, probe_steps),
                                           x_test, y_test))
            scratch = _from_scratch(encoder, 10_000 + s)
            r["scratch"].append(accuracy(_fit(scratch, x, y, n, steps, s, probe_steps),
                                         x_test, y_test))
            log(f"labelset k={k} seed={s}: " + ", ".join(f"{c} {v[-1]:.3f}" for c, v in r.items()))
        rows[f"{k} / class"] = r
        diffs[f"{k} / class"] = {
            "fine-tune - scratch": list(np.subtract(r["fine-tune"], r["scratch"])),
            "probe - raw pixels": list(np.subtract(r["probe"], r["raw pixels probe"]))}
    if seen is None:  # what the encoder saw of the target classes in pre-training
        seen = ("never saw a target-class image" if pre is not None else
                "saw every train image, target classes included, without labels")
    return {"title": f"Label-set transfer: digits {target_classes}, few labels per class",
            "note": (f"Test accuracy on the {len(x_test)} test images of digits {target_classes}"
                     f" ({n} classes). The {info['recipe']!r} encoder {seen}"
                     + (f" (pre-trained on {pre})" if pre else "") + f". Fine-tune and scratch: "
                     f"{steps} AdamW steps after a {probe_steps}-step probe for the head."),
            "columns": list(r), "rows": rows, "diffs": diffs}


MNIST_TARGET = 1000  # MNIST images per half (unlabelled target, test): enough, and quick


def task_shift(encoder, info, seeds, domains, steps, probe_steps, log, mnist=None):
    x_all, y_all = load_digits("train")
    x_test, y_test = load_digits("test")
    rows, diffs = {}, {}
    cols = ("clean test (pre-trained)", "source only, scratch", "source only, pre-trained",
            "DANN, pre-trained", "CORAL, pre-trained", "oracle (target labels)")
    if mnist is not None:
        domains = tuple(domains) + ("mnist-8x8",)
    for dom in domains:
        r = {c: [] for c in cols}
        for s in seeds:
            order = np.random.default_rng(s).permutation(len(x_all))
            src, tgt = order[: len(order) // 2], order[len(order) // 2:]
            xs, ys = x_all[src], y_all[src]
            if dom == "mnist-8x8":  # the user's MNIST, downsampled: halves of a random subset
                pick = np.random.default_rng(s).permutation(len(mnist[0]))[: 2 * MNIST_TARGET]
                half = len(pick) // 2
                xt, yt = mnist[0][pick[:half]], mnist[1][pick[:half]]
                xt_test, yt_test = mnist[0][pick[half:]], mnist[1][pick[half:]]
            else:
                xt, yt = shift_domain(x_all[tgt], dom, seed=s), y_all[tgt]
                xt_test, yt_test = shift_domain(x_test, dom, seed=100_000 + s), y_test
            scratch = _from_scratch(encoder, 10_000 + s)
            tuned = _fit(encoder, xs, ys, 10, steps, s, probe_steps)
            r[cols[0]].append(accuracy(tuned, x_test, y_test))
            r[cols[1]].append(accuracy(_fit(scratch, xs, ys, 10, steps, s, probe_steps),
                                       xt_test, yt_test))
            r[cols[2]].append(accuracy(tuned, xt_test, yt_test))
            for col, method in ((cols[3], "dann"), (cols[4], "coral")):
                adapted = train_adapted(encoder, xs, ys, xt, 10, method=method, steps=steps,
                                        seed=s, probe_steps=probe_steps)
                r[col].append(accuracy(adapted, xt_test, yt_test))
            r[cols[5]].append(accuracy(_fit(scratch, xt, yt, 10, steps, s, probe_steps),
                                       xt_test, yt_test))
            log(f"shift {dom} seed={s}: " + ", ".join(f"{c} {v[-1]:.3f}" for c, v in r.items()))
        rows[dom] = r
        base, oracle = np.asarray(r[cols[2]]), np.asarray(r[cols[5]])
        gap = float((oracle - base).mean())
        diffs[dom] = {
            "pre-trained - scratch (source only)": list(np.subtract(r[cols[2]], r[cols[1]])),
            "DANN - source only": list(np.asarray(r[cols[3]]) - base),
            "CORAL - source only": list(np.asarray(r[cols[4]]) - base),
            "oracle - source only (the gap)": list(oracle - base)}
        for name, col in (("DANN", cols[3]), ("CORAL", cols[4])):
            # Of the mean gap, not a mean of per-seed ratios (a small gap makes those explode).
            closed = float((np.asarray(r[col]) - base).mean()) / gap if gap > 0.05 else None
            diffs[dom][f"gap closed by {name}"] = closed
    return {"title": "Domain shift: clean digits -> shifted digits, with and without "
                     "pre-training; DANN and CORAL",
            "note": (f"Test accuracy on the shifted test split (359 images; the first column on "
                     f"the clean one; for mnist-8x8, {MNIST_TARGET} MNIST images of the user's "
                     f"files, another {MNIST_TARGET} being the unlabelled target). Source: a random half of the train split, labelled, "
                     f"clean; target: the other half, shifted, unlabelled (only the oracle uses "
                     f"its labels). Every row {steps} AdamW steps after a {probe_steps}-step "
                     f"probe for the head; DANN's and CORAL's batches hold 128 source and 128 "
                     f"target images. Gap closed = mean(adapted - source only) / mean(oracle - "
                     f"source only), both pre-trained; none when the gap is under 0.05."),
            "columns": list(cols), "rows": rows, "diffs": diffs}


def task_augment(recipe, info, seeds, labels_per_class, steps, probe_steps, n_generated, log):
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    if _generated(recipe, 2, 0) is None:
        return None
    rows, diffs = {}, {}
    cols = ("few labels only", "few labels + generated", "generated images kept")
    for k in labels_per_class:
        r = {c: [] for c in cols}
        for s in seeds:
            x, y = few_label_subset(x_train, y_train, k, np.random.default_rng(s))

            def make_encoder(s=s):
                manual_seed(10_000 + s)
                return MLPEncoder(64, 256, 128).to(recipe.device)
            base = fine_tune(make_encoder(), x, y, 10, steps=steps, seed=s,
                             probe_steps=probe_steps, copy_encoder=False)
            r[cols[0]].append(accuracy(base, x_test, y_test))
            fake = _generated(recipe, n_generated, 20_000 + s)
            aug, kept = augment_with_samples(base, fake, x, y, make_encoder, 10, steps, s,
                                             probe_steps)
            r[cols[1]].append(accuracy(aug, x_test, y_test))
            r[cols[2]].append(float(kept))
            log(f"augment k={k} seed={s}: " + ", ".join(f"{c} {v[-1]:.3f}" for c, v in r.items()))
        rows[f"{k} / class"] = r
        diffs[f"{k} / class"] = {"generated - few only": list(np.subtract(r[cols[1]],
                                                                          r[cols[0]]))}
    return {"title": f"Generated data as augmentation ({info['recipe']} samples)",
            "note": (f"Test accuracy on all ten digits (359 test images). A fresh MLP (64-256-256-"
                     f"128 + linear head) trained on k labels per class; then a second one on the "
                     f"same labels plus {n_generated} {info['recipe']} samples labelled by the "
                     f"first classifier (kept where its top probability > 0.9; not class-"
                     f"conditional). {steps} AdamW steps each after a {probe_steps}-step probe."),
            "columns": list(cols), "rows": rows, "diffs": diffs, "count_columns": [cols[2]]}


# ----------------------------------------------------------------------------------------------------
# The command


def run_transfer(from_dir, tasks=("labelset", "shift", "augment"), device: str = "cpu",
                 seeds: int = 3, seed: int = 0, labels_per_class=(1, 5, 10),
                 target_classes: str = "5-9", domains=("faded", "thick", "inverted"), steps: int = 300,
                 probe_steps: int = 500, augment_labels=(5, 10), n_generated: int = 1000,
                 gpt_labels=(4, 16, 64), gpt_steps: int = 150, snippet_bytes: int | None = None,
                 out_dir=None,
                 progress: bool = True, pretrained_on: str | None = None,
                 mnist_idx=None) -> dict:
    """Run the transfer matrix for the run in `from_dir`; returns {"recipe", "step", "seeds",
    "tasks": {task: section}} and writes transfer.md / .json / .png into out_dir (default
    from_dir). A section's "rows" hold every seed's value; "diffs" the paired differences.
    `mnist_idx` = (images path, labels path): MNIST-layout IDX files, downsampled to 8x8 and
    added to the shift task as the target domain "mnist-8x8" (data/shift.py load_mnist_8x8).
    `pretrained_on`, when given, says what the encoder saw in pre-training, for the label-set
    table's note (by default it is read from the run: a supervised run's classes, or all).
    `snippet_bytes`: the GPT task's snippet length (default the run's block_size)."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise UserError(f"transfer: unknown task(s) {unknown or list(tasks)}; known: "
                        f"{', '.join(TASKS)}")
    bad = [d for d in domains if d not in DOMAINS]
    if bad:
        raise UserError(f"transfer: unknown domain(s) {bad}; known: {', '.join(DOMAINS)}")
    for name, v in (("seeds", seeds), ("steps", steps), ("probe_steps", probe_steps),
                    ("n_generated", n_generated), ("gpt_steps", gpt_steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise UserError(f"transfer: {name} must be a positive int, got {v!r}")
    if seed < 0:
        raise UserError(f"transfer: seed must be >= 0, got {seed}")
    for name, ks in (("labels_per_class", labels_per_class), ("augment_labels", augment_labels),
                     ("gpt_labels", gpt_labels)):
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k <= 0 for k in ks):
            raise UserError(f"transfer: {name} must be positive ints, got {ks!r}")
    from .probe import encoder_of
    from .recipes import load_run

    mnist = None
    if mnist_idx is not None:
        try:
            mnist = load_mnist_8x8(*mnist_idx)
        except ValueError as e:
            raise UserError(f"transfer: {e}") from None
        if mnist[1].size and (mnist[1].min() < 0 or mnist[1].max() > 9):
            raise UserError(f"transfer: the MNIST labels must be digits 0-9, got values from "
                            f"{mnist[1].min()} to {mnist[1].max()}")
        if len(mnist[0]) < 2 * MNIST_TARGET:
            raise UserError(f"transfer: the MNIST files hold {len(mnist[0])} images; the shift "
                            f"task takes two halves of {MNIST_TARGET}")

    recipe, info = load_run(from_dir, device)
    is_text = info["recipe"] == "gpt"
    wanted = [t for t in tasks if (t == "snippets") == is_text]
    if not wanted:
        kind = "a GPT run takes only the 'snippets' task" if is_text else \
            f"an image run takes {', '.join(IMAGE_TASKS)}"
        raise UserError(f"transfer: {os.fspath(from_dir)!r} holds a {info['recipe']!r} run; "
                        f"{kind}, not {', '.join(tasks)}")
    encoder = None if is_text else encoder_of(recipe)  # a UserError for a family without one
    seed_list = list(range(seed, seed + seeds))

    def log(line):
        if progress:
            print(line, flush=True)

    for t in tasks:
        if t not in wanted:
            log(f"{t}: skipped, not a task for a {info['recipe']!r} run")
    sections = {}
    for t in wanted:
        if t == "labelset":
            sections[t] = task_labelset(encoder, info, seed_list, labels_per_class,
                                        target_classes, steps, probe_steps, log,
                                        seen=pretrained_on)
        elif t == "shift":
            sections[t] = task_shift(encoder, info, seed_list, domains, steps, probe_steps, log,
                                     mnist=mnist)
        elif t == "snippets":
            from .gpt_transfer import task_snippets
            sections[t] = task_snippets(recipe, info, seed_list, labels_per_class=gpt_labels,
                                        steps=gpt_steps, snippet_bytes=snippet_bytes, log=log)
        else:
            sec = task_augment(recipe, info, seed_list, augment_labels, steps, probe_steps,
                               n_generated, log)
            if sec is None:
                log(f"augment: skipped, the {info['recipe']!r} run has no generator "
                    "(vae, gan, wgan_gp have one)")
                continue
            sections[t] = sec
    results = {"recipe": info["recipe"], "step": info["step"], "seeds": seed_list,
               "tasks": sections}
    out_dir = os.fspath(from_dir if out_dir is None else out_dir)
    os.makedirs(out_dir, exist_ok=True)
    text = format_tables(results)
    base = os.path.join(out_dir, TRANSFER_NAME)
    with open(base + ".md", "w") as f:
        f.write(text)
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=1)
    if sections:
        plot_results(results, base + ".png")
    if progress:
        print(text)
        print(f"written to {base}.md, {base}.json" + (f", {base}.png" if sections else ""))
    return results


def _cell(values, count=False) -> str:
    m, s = mean_std(values)
    return f"{m:.0f} {PM} {s:.0f}" if count else f"{m:.3f} {PM} {s:.3f}"


def format_tables(results: dict) -> str:
    """The results as Markdown: per task a table of mean +- std over seeds, then the paired
    differences with their verdicts."""
    seeds = results["seeds"]
    lines = [f"# Transfer matrix of the {results['recipe']!r} run (step {results['step']})", "",
             f"Seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}); mean {PM} sample std over seeds. "
             "A verdict calls an effect only when the paired difference's mean is more than "
             "two standard errors from zero.", ""]
    for sec in results["tasks"].values():
        lines += [f"## {sec['title']}", "", format_section(sec), ""]
    return "\n".join(lines)


def format_section(sec: dict) -> str:
    """One task's section below its heading: the note, the accuracy table, the paired
    differences with their verdicts and, for the GPT task, the samples."""
    counts = set(sec.get("count_columns", []))
    lines = [sec["note"], "", "| setting | " + " | ".join(sec["columns"]) + " |",
             "|---" * (len(sec["columns"]) + 1) + "|"]
    for setting, r in sec["rows"].items():
        lines.append(f"| {setting} | " + " | ".join(_cell(r[c], c in counts)
                                                    for c in sec["columns"]) + " |")
    lines += ["", "| setting | paired difference | mean " + PM + " std | verdict |",
              "|---|---|---|---|"]
    for setting, ds in sec["diffs"].items():
        for name, d in ds.items():
            if name.startswith("gap closed"):  # one number over the seeds, no verdict
                value = "none (gap < 0.05)" if d is None else f"{d:.0%}"
                lines.append(f"| {setting} | {name} | {value} | (of the mean gap) |")
            else:
                lines.append(f"| {setting} | {name} | {_cell(d)} | {verdict(d)} |")
    if sec.get("samples"):
        lines += ["", format_samples(sec["samples"])]
    return "\n".join(lines)


def format_samples(samples: dict) -> str:
    """The pre-trained and the fine-tuned GPT's text for one prompt, side by side in blocks."""
    out = [f"Samples (prompt {samples['prompt']!r}, temperature 0.8, top-k 40, the same "
           "sampling seed):", ""]
    for who in ("pre-trained", "fine-tuned"):
        out += [f"{who}:", "", "```", samples[who].replace("```", "` ` `"), "```", ""]
    return "\n".join(out).rstrip()


def plot_results(results: dict, png_path) -> str:
    """One panel per task: grouped bars (mean) with error bars (std over seeds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    secs = list(results["tasks"].values())
    fig = Figure(figsize=(6.5 * len(secs), 4.2))
    FigureCanvasAgg(fig)
    for i, sec in enumerate(secs):
        ax = fig.add_subplot(1, len(secs), i + 1)
        cols = [c for c in sec["columns"] if c not in set(sec.get("count_columns", []))]
        settings = list(sec["rows"])
        width = 0.8 / len(cols)
        for j, c in enumerate(cols):
            ms = [mean_std(sec["rows"][s][c]) for s in settings]
            xs = np.arange(len(settings)) + (j - (len(cols) - 1) / 2) * width
            ax.bar(xs, [m for m, _ in ms], width, yerr=[s for _, s in ms], capsize=3, label=c)
        ax.set_xticks(np.arange(len(settings)))
        ax.set_xticklabels(settings)
        ax.set_ylim(0, 1)
        ax.set_ylabel("test accuracy")
        ax.set_title(sec["title"], fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{results['recipe']} run: mean {PM} std over {len(results['seeds'])} seeds")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    return os.fspath(png_path)
