"""DigitsRecipe: the shared part of the recipes that train on the 8x8 digits (ae, dae, vae, gan,
simclr, moco): the digits splits, random batches and config checks, and the names their
evaluations and plots share.
"""
from __future__ import annotations

import numpy as np

from ...data import load_digits
from ...errors import UserError
from ..recipe import Recipe

__all__ = ["DigitsRecipe", "EVAL_SEED", "N_SHOWN", "RECONSTRUCTIONS_NAME"]

EVAL_SEED = 1234       # evaluation noise/corruption: the same for every run, whatever its seed
N_SHOWN = 16           # test images in the reconstruction grids
RECONSTRUCTIONS_NAME = "reconstructions.png"


class DigitsRecipe(Recipe):
    """The shared part of the digits recipes: data, batches and config checks."""

    def load_data(self) -> None:
        """The fixed digits split: x_* (N, 64) float32 in [0, 1], y_* (N,) int64."""
        self.x_train, self.y_train = load_digits("train")
        self.x_test, self.y_test = load_digits("test")

    def draw_batch(self) -> tuple:
        """(x,): `batch_size` train images (N, 64) drawn with replacement by self.rng."""
        idx = self.rng.integers(0, len(self.x_train), self.config["batch_size"])
        return (self.x_train[idx],)

    def _bad(self, key: str, expected: str):
        raise UserError(f"{self.name}: config {key}={self.config[key]!r}; expected {expected}")

    def check_positive_ints(self, *keys) -> None:
        for key in keys:
            v = self.config[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                self._bad(key, "a positive integer")

    def check_positive_floats(self, *keys) -> None:
        for key in keys:
            v = self.config[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                self._bad(key, "a positive number")

    def check_choice(self, key: str, choices) -> None:
        if self.config[key] not in choices:
            self._bad(key, f"one of {tuple(choices)}")
