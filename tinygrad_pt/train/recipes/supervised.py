"""SupervisedRecipe ("supervised"): a classifier pre-trained on one label set of the 8x8 digits,
whose backbone is then carried to other labels and domains.

    tinygrad-pt train supervised                          # classes 0-4 (the default), ~30 s
    tinygrad-pt train supervised --set classes=0-9        # every class
    tinygrad-pt transfer --from runs/supervised           # its features on digits 5-9 and more

The backbone is the contrastive families' MLPEncoder (64 -> 256 -> 256 -> 128) and the head one
Linear layer over the pre-training classes, so that the label-set transfer compares encoders of
one architecture: only what trained them differs. Only the train images of the pre-training
classes are used; the other classes' images are never seen, labelled or not.

One step: `batch_size` train images of those classes (drawn with replacement by ``self.rng``),
softmax cross-entropy, AdamW. Evaluation: test accuracy on the pre-training classes, and a
linear probe of the frozen backbone on all ten classes (train/transfer.py).
"""
from __future__ import annotations

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...creation import tensor
from ...models.contrastive import MLPEncoder
from ...nn import functional as F
from ...optim import AdamW
from ..recipe import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Check
from ..transfer import LinearProbe
from .digits import DigitsRecipe

__all__ = ["SupervisedRecipe", "parse_classes"]


def parse_classes(text) -> tuple:
    """"0-4" -> (0, 1, 2, 3, 4); "1,3,5" -> (1, 3, 5). ValueError for anything else (digits 0-9,
    at least two, no repeats)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"classes must be a string such as '0-4' or '1,3,5', got {text!r}")
    out = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ValueError(f"classes {text!r}: {part.strip()!r} is neither a digit nor a "
                             "range such as 0-4") from None
    if len(out) < 2 or len(set(out)) != len(out) or min(out) < 0 or max(out) > 9:
        raise ValueError(f"classes {text!r}: expected at least two distinct digits in 0-9, got "
                         f"{out}")
    return tuple(sorted(out))


def _classes_ok(v) -> bool:
    try:
        parse_classes(v)
    except ValueError:
        return False
    return True


CLASSES = Check("at least two distinct digits 0-9, as a range '0-4' or a list '1,3,5'",
                _classes_ok)


class SupervisedRecipe(DigitsRecipe):
    """Cross-entropy pre-training of MLPEncoder + Linear head on the digits of `classes`."""

    name = "supervised"
    defaults = {
        "steps": 1000,          # ~95-99% test accuracy on 0-4 already after a few hundred
        "batch_size": 128,
        "eval_every": 250,
        "log_every": 10,
        "classes": "0-4",       # the label set pre-trained on; transfer then targets the rest
        "hidden": 256,
        "feat_dim": 128,        # as SimCLR/MoCo's backbone, so the encoders compare one to one
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "probe_steps": 500,     # the evaluation's linear probe (all ten classes)
    }
    checks = {**DigitsRecipe.checks, "classes": CLASSES, "hidden": POSITIVE_INT,
              "feat_dim": POSITIVE_INT, "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
              "probe_steps": POSITIVE_INT}
    size_keys = ("batch_size", "hidden", "feat_dim")

    @classmethod
    def state_sizes(cls, c):
        n = len(parse_classes(c["classes"]))
        return {"model": cls.mlp_size(cls.PIXELS, c["hidden"], c["hidden"], c["feat_dim"], n)}

    @classmethod
    def memory_bytes(cls, c):
        rows = max(c["batch_size"], cls.N_TRAIN)  # the probe's pass over the train split
        return super().memory_bytes(c) + cls.activation_bytes(
            rows, cls.PIXELS, c["hidden"], c["hidden"], c["feat_dim"])

    def build(self):
        c = self.config
        self.load_data()
        self.classes = parse_classes(c["classes"])
        # Labels relabelled 0..n-1 in the order of `classes`; other classes' images dropped.
        remap = np.full(10, -1, dtype=np.int64)
        remap[list(self.classes)] = np.arange(len(self.classes))
        keep = remap[self.y_train] >= 0
        self.x_pre, self.y_pre = self.x_train[keep], remap[self.y_train[keep]]
        keep = remap[self.y_test] >= 0
        self.x_pre_test, self.y_pre_test = self.x_test[keep], remap[self.y_test[keep]]
        self.encoder = MLPEncoder(self.PIXELS, c["hidden"], c["feat_dim"]).to(self.device)
        self.model = nn.Sequential(self.encoder, nn.Linear(c["feat_dim"], len(self.classes)))
        self.model.to(self.device)
        self.modules = {"model": self.model}
        self.optimizers = {"adamw": AdamW(self.model.parameters(), lr=c["lr"],
                                          weight_decay=c["weight_decay"])}

    def draw_batch(self) -> tuple:
        """(x, y): `batch_size` images of the pre-training classes and their relabelled classes."""
        idx = self.rng.integers(0, len(self.x_pre), self.config["batch_size"])
        return self.x_pre[idx], self.y_pre[idx]

    def step_on(self, x: np.ndarray, y: np.ndarray) -> dict:
        loss = F.cross_entropy(self.model(tensor(x, device=self.device)),
                               tensor(y, device=self.device))
        opt = self.optimizers["adamw"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    def evaluate(self) -> dict:
        self.model.eval()
        with no_grad():
            logits = self.model(tensor(self.x_pre_test, device=self.device)).numpy()
        self.model.train()
        probe = LinearProbe(self.encoder, 10, device=self.device)
        probe.fit(self.x_train, self.y_train, steps=self.config["probe_steps"])
        return {"test_acc": float((logits.argmax(axis=1) == self.y_pre_test).mean()),
                "probe_acc_all_classes": probe.accuracy(self.x_test, self.y_test)}

    def feature_encoder(self):
        """The backbone before the classification head (shared, not copied)."""
        return self.encoder

    def summary(self, metrics: dict) -> str:
        return (f"test accuracy {metrics['test_acc']:.3f} on digits {self.config['classes']}; "
                f"linear probe of the frozen backbone on all ten classes "
                f"{metrics['probe_acc_all_classes']:.3f}. Transfer: tinygrad-pt transfer --from "
                "<run directory>")
