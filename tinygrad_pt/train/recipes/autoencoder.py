"""AERecipe ("ae") and DAERecipe ("dae"): autoencoders on the 8x8 digits.

    tinygrad-pt train ae          # seconds on a 2-core CPU; reconstructions in the run folder
    tinygrad-pt train dae

One step: a batch of train images drawn by ``self.rng``, (for "dae" corrupted by ``self.rng``
too), the reconstruction loss (BCE with logits by default, see models/ae.py), backward, Adam.

Evaluation reports the test reconstruction MSE beside the mean-image baseline: the MSE of
predicting the average train image for every test image. An autoencoder that learned anything
image-specific is far below it (``mse_ratio`` = test_mse / baseline_mse). The denoising recipe
also reports the MSE of reconstructing clean test images from corrupted ones, beside the MSE of
the corrupted images themselves (what a "do nothing" denoiser scores).
"""
from __future__ import annotations

import os

import numpy as np

from ...autograd import no_grad
from ...creation import tensor
from ...models.ae import CORRUPTIONS, RECONSTRUCTION_LOSSES, AutoEncoder, DenoisingAutoEncoder
from ...optim import Adam
from ..recipe import FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, one_of
from .digits import EVAL_SEED, N_SHOWN, RECONSTRUCTIONS_NAME, DigitsRecipe

__all__ = ["AERecipe", "DAERecipe"]


class AERecipe(DigitsRecipe):
    name = "ae"
    defaults = {
        # Measured on a 2-core CPU (benchmarks/results/models_images.md): ~600 steps/s at batch
        # 64, so the default run takes about 5 s of CPU time and ends at 0.076x the mean-image
        # baseline's MSE (the DAE at 0.22x: it reconstructs from corrupted inputs).
        "steps": 3000,
        "batch_size": 64,
        "eval_every": 500,
        "log_every": 10,
        # the model: 64 -> 128 -> 16 -> 128 -> 64
        "hidden": 128,
        "latent": 16,
        "loss": "bce",         # BCE with logits: its gradient does not vanish at saturated pixels
        # the optimizer
        "lr": 2e-3,            # Adam; a small MLP tolerates a larger rate than the default 1e-3
    }

    checks = {**DigitsRecipe.checks, "hidden": POSITIVE_INT, "latent": POSITIVE_INT,
              "loss": one_of(*RECONSTRUCTION_LOSSES), "lr": POSITIVE}
    size_keys = ("batch_size", "hidden", "latent")

    @classmethod
    def state_sizes(cls, c):
        return {"model": cls.mlp_size(cls.PIXELS, c["hidden"], c["latent"], c["hidden"],
                                      cls.PIXELS)}

    @classmethod
    def memory_bytes(cls, c):
        widths = (cls.PIXELS, c["hidden"], c["latent"], c["hidden"], cls.PIXELS)
        return (super().memory_bytes(c)
                + cls.activation_bytes(max(c["batch_size"], cls.N_TEST), *widths))

    def build(self):
        self.load_data()
        self.model = self.make_model().to(self.device)
        self.modules = {"model": self.model}
        self.optimizers = {"adam": Adam(self.model.parameters(), lr=self.config["lr"])}
        # The mean-image baseline: predict the average train image for every test image.
        self.baseline_mse = float(((self.x_test - self.x_train.mean(axis=0)) ** 2).mean())

    def make_model(self):
        c = self.config
        return AutoEncoder(64, c["hidden"], c["latent"], loss=c["loss"])

    def step_on(self, x: np.ndarray) -> dict:
        loss = self.model.loss(tensor(x, device=self.device))
        opt = self.optimizers["adam"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Reconstructions (N, 64) as NumPy, in eval mode and without a graph."""
        self.model.eval()
        with no_grad():
            out = self.model(tensor(x, device=self.device)).numpy()
        self.model.train()
        return out

    def evaluate(self) -> dict:
        test_mse = float(((self.reconstruct(self.x_test) - self.x_test) ** 2).mean())
        return {"test_mse": test_mse, "baseline_mse": self.baseline_mse,
                "mse_ratio": test_mse / self.baseline_mse}

    def artifacts(self, out_dir: str) -> list:
        from ..plots import image_grid  # matplotlib: imported only when plotting

        x = self.x_test[:N_SHOWN]
        path = os.path.join(out_dir, RECONSTRUCTIONS_NAME)
        return [image_grid((x, self.reconstruct(x)), path, nrow=8,
                           title=f"{self.name}: test images / reconstructions")]

    def feature_encoder(self):
        """The encoder: images -> the code z."""
        return self.model.encoder

    def summary(self, metrics: dict) -> str:
        return (f"test MSE {metrics['test_mse']:.4f} vs mean-image baseline "
                f"{metrics['baseline_mse']:.4f} ({metrics['mse_ratio']:.2f}x; lower is better)")


class DAERecipe(AERecipe):
    name = "dae"
    defaults = {
        **AERecipe.defaults,
        "corruption": "both",  # "gaussian", "mask" or "both" (noise, then masking)
        "noise_std": 0.3,      # gaussian noise std, in pixel units (pixels live in [0, 1])
        "mask_fraction": 0.25,  # share of each image's pixels set to 0
    }

    checks = {**AERecipe.checks, "corruption": one_of(*CORRUPTIONS), "noise_std": NON_NEGATIVE,
              "mask_fraction": FRACTION}

    def make_model(self):
        c = self.config
        return DenoisingAutoEncoder(64, c["hidden"], c["latent"], corruption=c["corruption"],
                                    noise_std=c["noise_std"], mask_fraction=c["mask_fraction"],
                                    loss=c["loss"])

    def build(self):
        super().build()
        # One fixed corruption of the test set, from a generator of its own: every evaluation
        # (and every run) denoises the same images, and evaluating never moves self.rng.
        self.x_test_corrupted = self.model.corrupt(self.x_test, np.random.default_rng(EVAL_SEED))
        self.corrupted_input_mse = float(((self.x_test_corrupted - self.x_test) ** 2).mean())

    def draw_batch(self) -> tuple:
        """(noisy, clean): train images and their corruption, both drawn by self.rng."""
        (clean,) = super().draw_batch()
        return self.model.corrupt(clean, self.rng), clean

    def step_on(self, noisy: np.ndarray, clean: np.ndarray) -> dict:
        loss = self.model.loss(tensor(noisy, device=self.device), tensor(clean, device=self.device))
        opt = self.optimizers["adam"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    def evaluate(self) -> dict:
        metrics = super().evaluate()
        denoised = self.reconstruct(self.x_test_corrupted)
        metrics["test_mse_corrupted"] = float(((denoised - self.x_test) ** 2).mean())
        metrics["corrupted_input_mse"] = self.corrupted_input_mse
        return metrics

    def artifacts(self, out_dir: str) -> list:
        from ..plots import image_grid

        paths = super().artifacts(out_dir)
        x = self.x_test_corrupted[:N_SHOWN]
        paths.append(image_grid((x, self.reconstruct(x)), os.path.join(out_dir, "denoising.png"),
                                nrow=8, title="dae: corrupted test images / reconstructions"))
        return paths

    def summary(self, metrics: dict) -> str:
        return (super().summary(metrics) +
                f"; from corrupted inputs {metrics['test_mse_corrupted']:.4f} (the corrupted "
                f"inputs themselves: {metrics['corrupted_input_mse']:.4f})")
