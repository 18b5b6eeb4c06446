"""The 8x8 handwritten digits that ship inside scikit-learn: 1,797 real images, 10 classes, offline.

Pixels are scaled from 0..16 to [0, 1]; the train/test split is fixed by a seed and stratified by
class, so every run (and every machine) sees the same test set.
"""
from __future__ import annotations

import numpy as np

N_CLASSES = 10
IMAGE_SHAPE = (8, 8)


def load_digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0):
    """(images (N, 64) float32 in [0, 1], labels (N,) int64) for split "train", "test" or "all"."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"load_digits: split must be 'train', 'test' or 'all', got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits as _sk_digits  # heavy import: only when asked

    bunch = _sk_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    if split == "all":
        return x, y
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in range(N_CLASSES):  # stratified: the same fraction of every class goes to test
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test_idx.append(idx[: int(round(len(idx) * test_fraction))])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[np.concatenate(test_idx)] = True
    keep = is_test if split == "test" else ~is_test
    return x[keep], y[keep]
