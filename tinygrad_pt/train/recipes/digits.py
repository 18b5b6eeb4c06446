"""DigitsRecipe: the shared part of the recipes that train on the 8x8 digits (ae, dae, vae, gan,
simclr, moco): the digits splits, random batches, the sizes their memory estimates count in,
and the names their evaluations and plots share.
"""
from __future__ import annotations

from ...data import load_digits
from ..recipe import Recipe

__all__ = ["DigitsRecipe", "EVAL_SEED", "N_SHOWN", "RECONSTRUCTIONS_NAME"]

EVAL_SEED = 1234       # evaluation noise/corruption: the same for every run, whatever its seed
N_SHOWN = 16           # test images in the reconstruction grids
RECONSTRUCTIONS_NAME = "reconstructions.png"


class DigitsRecipe(Recipe):
    """The shared part of the digits recipes: data, batches and sizes."""

    # Digits: 8x8 images, flattened; the split sizes of load_digits (held to it by a test), for
    # memory estimates made before any data is loaded.
    PIXELS = 64
    N_TEST = 359
    N_TRAIN = 1438

    def load_data(self) -> None:
        """The fixed digits split: x_* (N, 64) float32 in [0, 1], y_* (N,) int64."""
        self.x_train, self.y_train = load_digits("train")
        self.x_test, self.y_test = load_digits("test")

    def draw_batch(self) -> tuple:
        """(x,): `batch_size` train images (N, 64) drawn with replacement by self.rng."""
        idx = self.rng.integers(0, len(self.x_train), self.config["batch_size"])
        return (self.x_train[idx],)

    @staticmethod
    def mlp_size(*widths) -> int:
        """Numbers in a chain of Linear layers (weights and biases) through `widths`."""
        return sum(a * b + b for a, b in zip(widths, widths[1:]))

    @classmethod
    def activation_bytes(cls, rows: int, *widths) -> int:
        """float32 activations of `rows` examples through layers of `widths`, kept for backward
        with their gradients (x3: forward, saved, gradient)."""
        return 12 * rows * sum(widths)
