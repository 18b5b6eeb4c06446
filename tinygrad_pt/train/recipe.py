"""Recipe: what one model family needs to be trained by the shared loop (train/loop.py).

A recipe builds its modules and optimizers, draws batches, takes one step, evaluates, and draws
its plots. The loop owns everything else: steps, the progress bar, the metrics log, evaluation
cadence, checkpoints and resume.

Resume must continue bit-identically, so a recipe keeps no hidden state outside:
  - ``self.modules`` / ``self.optimizers`` / ``self.schedulers`` (saved via their state dicts),
  - ``self.rng``, a NumPy Generator that draws every batch, augmentation and corruption
    (the loop saves and restores its bit-generator state),
  - the framework's own generator (``tg.backend.rng``), used by dropout, reparameterisation noise
    and GAN latents (saved and restored by the loop too),
  - ``self.extra_state()`` / ``self.load_extra_state()`` for anything else (MoCo's queue).
Batches are drawn fresh from ``self.rng`` each step (random indices, not an epoch iterator), so
no data-loader position needs saving.
"""
from __future__ import annotations

import numpy as np

from ..backend import manual_seed
from ..errors import UserError


class Recipe:
    """Base class; subclasses set ``name`` and ``defaults`` and implement the methods below."""

    name = "base"
    # Hyperparameters with their defaults; the CLI and ``config`` override them. ``steps``,
    # ``batch_size``, ``eval_every`` and ``log_every`` are read by the loop.
    defaults: dict = {"steps": 300, "batch_size": 64, "eval_every": 100, "log_every": 10}

    def __init__(self, config: dict | None = None, device: str = "cpu", seed: int = 0):
        unknown = set(config or {}) - set(self.defaults)
        if unknown:
            raise UserError(f"{self.name}: unknown config keys {sorted(unknown)}; "
                             f"known: {sorted(self.defaults)}")
        self.config = {**self.defaults, **(config or {})}
        self.device = device
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.modules: dict = {}      # name -> nn.Module
        self.optimizers: dict = {}   # name -> optim.Optimizer
        self.schedulers: dict = {}   # name -> lr scheduler (optional)
        # Seeded here, once for every recipe, just before build: the initial weights (drawn from
        # the framework's generators) are then a function of `seed` alone, whoever builds it.
        manual_seed(seed)
        self.build()

    # -- to implement ---------------------------------------------------------------------------
    def build(self) -> None:
        """Load data, create self.modules, self.optimizers (and self.schedulers)."""
        raise NotImplementedError

    def draw_batch(self) -> tuple:
        """This step's data as a tuple of NumPy arrays, drawn from self.rng (indices,
        augmentations, corruptions: all the host-side randomness of a step)."""
        raise NotImplementedError

    def step_on(self, *arrays) -> dict:
        """One optimisation step on drawn data (moved to the device here); return the step's
        metrics as 0-d Tensors (not synced: the loop reads them back only at log steps).

        Kept apart from draw_batch so that a benchmark can time the framework's part of a step
        (transfer, forward, backward, update) on fixed data (tinygrad_pt/bench/steps.py)."""
        raise NotImplementedError

    def train_step(self, step: int) -> dict:
        """Draw a batch, take one optimisation step on it; return its metrics."""
        return self.step_on(*self.draw_batch())

    def evaluate(self) -> dict:
        """Held-out metrics as Python floats (e.g. test MSE, ELBO per sample, val bits/byte)."""
        raise NotImplementedError

    def artifacts(self, out_dir: str) -> list:
        """Write plots (PNG) / samples (text) into out_dir; return their paths."""
        return []

    def sample(self, out_dir: str, n: int = 16) -> list:
        """Generate from the trained model (images or text) into out_dir; return the paths.
        Families that do not generate (AE, SimCLR) raise NotImplementedError."""
        raise NotImplementedError(f"{self.name}: this model family does not generate samples")

    def summary(self, metrics: dict) -> str:
        """One line for the end of a run: the headline metric and what it means."""
        return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())

    # -- optional -------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        """Arrays (name -> ndarray) beyond modules/optimizers that a checkpoint must hold."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def feature_encoder(self):
        """The family's image encoder, for the probe (train/probe.py): a module from images
        (N, 64) to features (N, D) that shares the recipe's parameters (nothing copied). Only
        families that have one override this."""
        raise NotImplementedError(f"{self.name}: this model family has no image encoder")

    @classmethod
    def has_feature_encoder(cls) -> bool:
        """Whether the family has an image encoder: asked of the class, before a run is rebuilt."""
        return cls.feature_encoder is not Recipe.feature_encoder
