"""Carrying a pre-trained encoder to a labelled task: linear probe, fine-tuning, and the baseline.

  LinearProbe        a linear classifier on FROZEN features: the encoder runs once, under no_grad,
                     and only the classifier trains. It measures what the features already hold.
  fine_tune          the encoder and a new linear head trained together on the labels.
  train_from_scratch the same network freshly initialised, trained the same way with the same
                     budget: what the labels alone can teach. Pre-training pays off where
                     fine_tune beats it, which it should when labels are few.
  few_label_subset   exactly k labelled examples per class (the "10 labels per class" setting).

Inputs are NumPy arrays (images (N, D) float32, labels (N,) int64); each helper puts them on the
model's device itself. Training draws its mini-batches from a NumPy Generator made from `seed`, so
a call is reproducible. Every one of them trains through ``optimize`` (train/loop.py), the one
small loop for trainings that need no run directory; so this file sits in train/, above the
models whose encoders it carries.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..backend import array_module
from ..creation import tensor
from ..nn import functional as F
from ..nn import init
from ..tensor import Tensor
from .loop import optimize

__all__ = ["LinearProbe", "fine_tune", "train_from_scratch", "few_label_subset", "fresh_copy",
           "accuracy", "module_device", "feature_dim"]

FEATURE_CHUNK = 1024  # rows per encoder call when computing features (bounds peak memory)


# ----------------------------------------------------------------------------------------------------
# Helpers


def module_device(module: nn.Module, default: str = "cpu") -> str:
    """The device of the module's first parameter ("cpu" for a module without parameters)."""
    for p in module.parameters():
        return p.device
    return default


def feature_dim(encoder: nn.Module) -> int | None:
    """The width of the encoder's output: its ``feat_dim`` attribute, else its last Linear's
    out_features; None when neither says."""
    width = getattr(encoder, "feat_dim", None)
    if width is not None:
        return int(width)
    widths = [m.out_features for m in encoder.modules() if isinstance(m, nn.Linear)]
    return widths[-1] if widths else None


def fresh_copy(encoder: nn.Module) -> nn.Module:
    """A copy of `encoder` with every parameter drawn afresh by its layer's default init (the
    same architecture, untrained): the "random-init encoder" and "from scratch" baselines.

    Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias; LayerNorm: ones and zeros;
    Embedding: N(0, 1). A module with parameters of another kind is a TypeError (its init is
    not known here). Draws from the framework's generator: tg.manual_seed fixes it.
    """
    model = copy.deepcopy(encoder)
    with no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                init.uniform_(m.weight, -bound, bound)
                if m.bias is not None:
                    init.uniform_(m.bias, -bound, bound)
            elif isinstance(m, nn.LayerNorm):
                for name, p in m.named_parameters(recurse=False):
                    (init.ones_ if name == "weight" else init.zeros_)(p)
            elif isinstance(m, nn.Embedding):
                init.normal_(m.weight)
            elif any(p is not None for p in m._parameters.values()):
                raise TypeError(f"fresh_copy: cannot re-initialise the parameters of a "
                                f"{type(m).__name__} (known: Linear, LayerNorm, Embedding)")
    return model


def _check_xy(op: str, x, y, n_classes: int | None = None):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.dtype.kind != "f":
        raise ValueError(f"{op}: x must be a float array of shape (N, D), got shape {x.shape} and "
                         f"dtype {x.dtype}")
    if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError(f"{op}: y must hold one integer label per row of x, shape "
                         f"({x.shape[0]},), got shape {y.shape} and dtype {y.dtype}")
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{op}: labels must lie in [0, {n_classes}), got values from {y.min()} "
                         f"to {y.max()}")
    return x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


def _apply_in_chunks(model: nn.Module, x: np.ndarray, device: str) -> Tensor:
    """model(x) under no_grad and in eval mode, FEATURE_CHUNK rows at a time: (N, ...)."""
    from ..ops import concatenate
    was_training = model.training
    model.eval()
    with no_grad():
        outs = [model(tensor(x[i:i + FEATURE_CHUNK], device=device))
                for i in range(0, len(x), FEATURE_CHUNK)]
    model.train(was_training)
    return outs[0] if len(outs) == 1 else concatenate(outs, axis=0)


def accuracy(model: nn.Module, x, y, device: str | None = None) -> float:
    """Fraction of rows whose arg-max logit is the label (model in eval mode, no_grad)."""
    x, y = _check_xy("accuracy", x, y)
    logits = _apply_in_chunks(model, x, device or module_device(model))
    return float((logits.numpy().argmax(axis=1) == y).mean())


def few_label_subset(x, y, labels_per_class: int, rng: np.random.Generator):
    """(x_sub, y_sub): exactly `labels_per_class` examples of every class present in y, drawn
    without replacement by `rng`, in a shuffled order. A class with fewer examples is an error."""
    x, y = np.asarray(x), np.asarray(y)
    if isinstance(labels_per_class, bool) or not isinstance(labels_per_class, (int, np.integer)) \
            or labels_per_class <= 0:
        raise ValueError(f"few_label_subset: labels_per_class must be a positive int, got "
                         f"{labels_per_class!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"few_label_subset: rng must be a numpy.random.Generator, got "
                        f"{type(rng).__name__}")
    if len(x) != len(y):
        raise ValueError(f"few_label_subset: x has {len(x)} rows but y has {len(y)} labels")
    picked = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < labels_per_class:
            raise ValueError(f"few_label_subset: class {c} has only {len(idx)} examples, fewer "
                             f"than labels_per_class={labels_per_class}")
        picked.append(rng.choice(idx, size=labels_per_class, replace=False))
    order = rng.permutation(np.concatenate(picked))
    return x[order], y[order]


# ----------------------------------------------------------------------------------------------------
# Linear probe


class LinearProbe(nn.Module):
    """logits = head((encoder(x) - mean) / std), with the encoder frozen.

    encoder: the pre-trained backbone (N, in_dim) -> (N, feat_dim); None probes the raw inputs.
    fit() computes the training features ONCE under no_grad (the encoder is never differentiated
    nor updated), standardises them with their own mean and std (std floored at 1% of the mean
    std, so a constant feature or pixel is not blown up), and trains only the linear head
    (feat_dim -> n_classes, softmax cross-entropy: multinomial logistic regression) from zero
    with full-batch Adam for a fixed number of steps, L2-penalised through Adam's weight_decay.
    The defaults (500 steps, lr 0.05, weight_decay 1e-3) reach the converged accuracy on digits
    for raw pixels and for 128-d features alike (1000 steps change nothing).
    """

    def __init__(self, encoder: nn.Module | None, n_classes: int, feat_dim: int | None = None,
                 device: str | None = None):
        super().__init__()
        self.encoder = nn.Identity() if encoder is None else encoder
        feat_dim = feat_dim if feat_dim is not None else feature_dim(self.encoder)
        if feat_dim is None:
            raise ValueError("LinearProbe: cannot tell the encoder's output width; pass feat_dim= "
                             "(for encoder=None, the input width)")
        self.device = device or module_device(self.encoder)
        self.head = nn.Linear(feat_dim, n_classes).to(self.device)
        self.n_classes, self.feat_dim = n_classes, feat_dim
        self.register_buffer("mean", tensor(np.zeros(feat_dim, np.float32), device=self.device))
        self.register_buffer("std", tensor(np.ones(feat_dim, np.float32), device=self.device))

    def features(self, x) -> Tensor:
        """Frozen encoder features (N, feat_dim), computed under no_grad."""
        feats = _apply_in_chunks(self.encoder, np.asarray(x, dtype=np.float32), self.device)
        if feats.ndim != 2 or feats.shape[1] != self.feat_dim:
            raise ValueError(f"LinearProbe: the encoder gave features of shape {feats.shape}, "
                             f"expected (N, {self.feat_dim})")
        return feats

    def forward(self, x: Tensor) -> Tensor:
        with no_grad():  # the encoder is frozen: never part of the graph
            h = self.encoder(x)
        return self.head((h - self.mean) / self.std)  # (N, n_classes)

    def fit(self, x, y, steps: int = 500, lr: float = 0.05, weight_decay: float = 1e-3) -> float:
        """Train the head on (x, y); returns the final training loss."""
        x, y = _check_xy("LinearProbe.fit", x, y, self.n_classes)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
            raise ValueError(f"LinearProbe.fit: steps must be a positive int, got {steps!r}")
        h = self.features(x)  # once
        xp = array_module(h.data)
        std = h.data.std(axis=0)
        self.mean.data[...] = h.data.mean(axis=0)
        self.std.data[...] = xp.maximum(std, 0.01 * float(std.mean()) + 1e-12)
        h = (h - self.mean) / self.std  # (N, feat_dim), standardised, a leaf
        with no_grad():  # the problem is convex: start from zero, so the result never depends
            self.head.weight.data[...] = 0.0  # on the generator's state at the time of the call
            self.head.bias.data[...] = 0.0
        target = tensor(y, device=self.device)
        opt = optim.Adam(self.head.parameters(), lr=lr, weight_decay=weight_decay)
        loss = optimize(opt, lambda step: F.cross_entropy(self.head(h), target), steps)
        return loss.item()

    def predict(self, x) -> np.ndarray:
        """Predicted class of each row, (N,) int64."""
        logits = self.head((self.features(x) - self.mean) / self.std)
        return logits.numpy().argmax(axis=1)

    def accuracy(self, x, y) -> float:
        x, y = _check_xy("LinearProbe.accuracy", x, y)
        return float((self.predict(x) == y).mean())

    def as_linear(self) -> nn.Linear:
        """The trained probe as one nn.Linear on the raw features, standardisation folded in:
        W (h - mean) / std + b = (W / std) h + (b - (W / std) mean)."""
        with no_grad():
            w = self.head.weight.data / self.std.data            # (n_classes, feat_dim)
            b = self.head.bias.data - w @ self.mean.data          # (n_classes,)
        linear = nn.Linear(self.feat_dim, self.n_classes).to(self.device)
        linear.weight.data[...] = w
        linear.bias.data[...] = b
        return linear


# ----------------------------------------------------------------------------------------------------
# Fine-tuning and training from scratch


def fine_tune(encoder: nn.Module, x, y, n_classes: int = 10, steps: int = 300, lr: float = 1e-3,
              batch_size: int = 128, weight_decay: float = 1e-4, seed: int = 0,
              head_init: str = "probe", probe_steps: int = 500,
              copy_encoder: bool = True) -> nn.Sequential:
    """Train Sequential(encoder, Linear(feat_dim, n_classes)) on (x, y), every parameter, with
    AdamW for `steps` steps on mini-batches of `batch_size` rows drawn at random (the whole set
    each step when it is smaller). Returns the trained classifier.

    head_init="probe" (the default) starts the head from a LinearProbe fitted on the same
    labels ("LP-FT", Kumar et al. 2022): a randomly initialised head sends large, random
    gradients into the encoder during the first steps and distorts the very features that made
    it worth fine-tuning. That probe trains for `probe_steps` full-batch steps. "random"
    starts from nn.Linear's default init.

    copy_encoder=True (the default) trains a deep copy, so the pre-trained encoder passed in is
    left as it was (it can be fine-tuned again, e.g. on another label subset).
    """
    x, y = _check_xy("fine_tune", x, y, n_classes)
    width = feature_dim(encoder)
    if width is None:
        raise ValueError("fine_tune: cannot tell the encoder's output width (no feat_dim and no "
                         "Linear layer)")
    if steps <= 0 or batch_size <= 0:
        raise ValueError(f"fine_tune: steps and batch_size must be positive, got {steps} and "
                         f"{batch_size}")
    if head_init not in ("probe", "random"):
        raise ValueError(f"fine_tune: head_init must be 'probe' or 'random', got {head_init!r}")
    device = module_device(encoder)
    body = copy.deepcopy(encoder) if copy_encoder else encoder
    body.requires_grad_(True)
    if head_init == "probe":
        probe = LinearProbe(body, n_classes, feat_dim=width, device=device)
        probe.fit(x, y, steps=probe_steps)
        head = probe.as_linear()
    else:
        head = nn.Linear(width, n_classes).to(device)
    model = nn.Sequential(body, head)
    model.train()
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    whole = (tensor(x, device=device), tensor(y, device=device)) if len(x) <= batch_size else None

    def loss_of_step(step):
        if whole is not None:
            xb, yb = whole
        else:
            idx = rng.integers(0, len(x), size=batch_size)
            xb, yb = tensor(x[idx], device=device), tensor(y[idx], device=device)
        return F.cross_entropy(model(xb), yb)

    optimize(opt, loss_of_step, steps)
    return model


def train_from_scratch(make_encoder, x, y, n_classes: int = 10, steps: int = 300,
                       lr: float = 1e-3, batch_size: int = 128, weight_decay: float = 1e-4,
                       seed: int = 0, head_init: str = "probe",
                       probe_steps: int = 500) -> nn.Sequential:
    """The baseline for fine_tune: ``make_encoder()`` builds the same architecture freshly
    initialised, then it is trained exactly as fine_tune would (same head initialisation, steps,
    optimizer, batches)."""
    encoder = make_encoder()
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"train_from_scratch: make_encoder() must return an nn.Module, got "
                        f"{type(encoder).__name__}")
    return fine_tune(encoder, x, y, n_classes=n_classes, steps=steps, lr=lr,
                     batch_size=batch_size, weight_decay=weight_decay, seed=seed,
                     head_init=head_init, probe_steps=probe_steps, copy_encoder=False)
