"""A digits classifier, trained in tinygrad_pt, used as a judge of generated images.

A GAN's samples are "recognisable" when a good classifier is confident about them: the share of
samples whose top class probability exceeds 0.9, and how many of the 10 classes those confident
samples cover (a generator that collapses onto one digit scores high on the first and low on the
second: even an untrained generator's identical grey blobs are "confidently" one digit).
It is trained by ``train_digits_classifier`` (train/classifier.py).
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..creation import tensor
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["DigitsClassifier", "predict_proba", "score_samples"]


class DigitsClassifier(nn.Module):
    """DigitsClassifier(in_dim=64, hidden=128, n_classes=10): images (N, in_dim) -> logits (N, C).

    Linear(in_dim, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, n_classes),
    PyTorch's Linear init.
    """

    def __init__(self, in_dim: int = 64, hidden: int = 128, n_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def predict_proba(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, C) as NumPy for NumPy images x (N, 64), on the model's device."""
    device = next(iter(model.parameters())).device
    out = []
    with no_grad():
        for i in range(0, len(x), batch_size):
            xb = tensor(np.asarray(x[i:i + batch_size], dtype=np.float32), device=device)
            out.append(F.softmax(model(xb), axis=-1).numpy())
    return np.concatenate(out, axis=0)


def score_samples(model: nn.Module, images: np.ndarray, threshold: float = 0.9) -> dict:
    """How recognisable generated images (N, 64) are to a trained classifier.

    confident_fraction  share of images whose top class probability is > threshold
    classes_covered     distinct predicted classes among the confident images (out of C)
    class_entropy_bits  entropy of the predicted-class histogram of the confident images, in bits
                        (log2(10) = 3.32 when the classes are equally frequent, 0 for one class)
    class_counts        that histogram, a list of C ints
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"score_samples: threshold must be in [0, 1), got {threshold}")
    images = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    probs = predict_proba(model, images)
    confident = probs.max(axis=1) > threshold
    counts = np.bincount(probs.argmax(axis=1)[confident], minlength=probs.shape[1])
    p = counts[counts > 0] / max(counts.sum(), 1)
    entropy = float((p * np.log2(1.0 / p)).sum())  # sum p log2(1/p): 0.0 (not -0.0) for one class
    return {"confident_fraction": float(confident.mean()),
            "classes_covered": int((counts > 0).sum()),
            "class_entropy_bits": entropy,
            "class_counts": counts.tolist()}
