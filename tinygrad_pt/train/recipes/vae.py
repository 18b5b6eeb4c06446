"""VAERecipe ("vae"): a variational autoencoder on the 8x8 digits.

    tinygrad-pt train vae --steps 300      # a few seconds on a 2-core CPU: the ELBO climbs
    tinygrad-pt train vae                  # the full default run (see `defaults`)

One step: a batch of train images drawn by ``self.rng``, the negative ELBO per sample (mean over
the batch; the reparameterisation noise comes from the framework's generator), backward, Adam
with a cosine learning-rate decay over the run's ``steps``.

Evaluation reports the test ELBO per sample in nats (higher is better), split into its
reconstruction and KL terms, beside the exact log-likelihood of a model with no latent at all
(each pixel an independent Bernoulli with the train mean as probability). The noise eps of every
evaluation is the same, drawn once from a generator of its own and averaged over ``eval_draws``
draws, so two evaluations differ only because the model changed, and evaluating never moves the
training stream.
"""
from __future__ import annotations

import os

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...creation import randn, tensor
from ...models.vae import VAE
from ...optim import Adam
from ...optim.lr_scheduler import CosineWithWarmup
from ..recipe import NON_NEGATIVE, POSITIVE, POSITIVE_INT
from .digits import EVAL_SEED, N_SHOWN, RECONSTRUCTIONS_NAME, DigitsRecipe

__all__ = ["VAERecipe"]

SAMPLES_NAME = "samples.png"
SAMPLED_NAME = "sampled.png"


class PosteriorMean(nn.Module):
    """A VAE's encoder as a feature extractor: x -> mu(x), (N, latent)."""

    def __init__(self, encoder: nn.Module, to_mu: nn.Linear):
        super().__init__()
        self.encoder, self.to_mu = encoder, to_mu
        self.feat_dim = to_mu.out_features

    def forward(self, x):
        return self.to_mu(self.encoder(x))


class VAERecipe(DigitsRecipe):
    name = "vae"
    defaults = {
        # Measured on a 2-core CPU (benchmarks/results/models_images.md): 300 steps train in
        # about 2 s; the default 4000 steps take under 10 s of CPU time and end near -24.0 nats.
        "steps": 4000,
        "batch_size": 64,
        "eval_every": 100,
        "log_every": 10,
        # the model: 64 -> 256 -> (mu, logvar) 8 ; 8 -> 256 -> 64 Bernoulli logits
        "hidden": 256,
        "latent": 8,
        # the optimizer and schedule
        "lr": 2e-3,            # Adam, peak rate; a cosine decays it to min_lr over `steps`
        "min_lr": 1e-4,        # the decay quiets the minibatch noise late in the run, so that
                               # evaluations keep improving (see models_images.md)
        # evaluation
        "eval_draws": 8,       # eps draws per test image for the ELBO estimate
    }

    checks = {**DigitsRecipe.checks, "hidden": POSITIVE_INT, "latent": POSITIVE_INT,
              "lr": POSITIVE, "min_lr": NON_NEGATIVE, "eval_draws": POSITIVE_INT}
    size_keys = ("batch_size", "hidden", "latent", "eval_draws")

    @classmethod
    def check_config(cls, c):
        if c["min_lr"] > c["lr"]:
            cls.bad(c, "min_lr", f"at most lr={c['lr']!r} (the cosine decays from lr to min_lr)")

    @classmethod
    def state_sizes(cls, c):
        h, z = c["hidden"], c["latent"]
        return {"model": cls.mlp_size(cls.PIXELS, h) + 2 * cls.mlp_size(h, z)
                + cls.mlp_size(z, h, cls.PIXELS)}

    @classmethod
    def memory_bytes(cls, c):
        widths = (cls.PIXELS, c["hidden"], 3 * c["latent"], c["hidden"], cls.PIXELS)
        eval_noise = 4 * c["eval_draws"] * cls.N_TEST * c["latent"]
        return (super().memory_bytes(c) + eval_noise
                + cls.activation_bytes(max(c["batch_size"], cls.N_TEST), *widths))

    def build(self):
        c = self.config
        self.load_data()
        self.model = VAE(64, c["hidden"], c["latent"]).to(self.device)
        self.modules = {"model": self.model}
        opt = Adam(self.model.parameters(), lr=c["lr"])
        self.optimizers = {"adam": opt}
        self.schedulers = {"lr": CosineWithWarmup(opt, warmup_steps=0, total_steps=c["steps"],
                                                  min_lr=c["min_lr"])}
        # Fixed evaluation noise: (draws, N_test, latent) for the ELBO, (64, latent) for samples.
        g = np.random.default_rng(EVAL_SEED)
        self.eval_eps = g.standard_normal((c["eval_draws"], len(self.x_test), c["latent"]),
                                          dtype=np.float32)
        self.eval_z = g.standard_normal((64, c["latent"]), dtype=np.float32)
        # The baseline: a model without a latent, each pixel Bernoulli with the train mean as its
        # probability. Its log-likelihood is exact (no bound); an ELBO above it means the latent
        # code carries information about the image.
        p = np.clip(self.x_train.mean(axis=0).astype(np.float64), 1e-6, 1 - 1e-6)
        x = self.x_test.astype(np.float64)
        self.mean_image_loglik = float((x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=1).mean())

    def step_on(self, x: np.ndarray) -> dict:
        eps = None  # alone: the model draws it, (B, latent), from the framework's generator
        if self.shard_world > 1:
            # Data parallel: the same draw for the global batch, this rank's rows of it, so that
            # each example gets the noise one process would give it.
            eps = self.local_rows(randn(self.config["batch_size"], self.config["latent"],
                                        dtype=np.float32, device=self.device))
        loss = self.model.loss(tensor(x, device=self.device), eps)  # -ELBO per sample, mean
        opt = self.optimizers["adam"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        self.schedulers["lr"].step()
        return {"loss": loss}

    def evaluate(self) -> dict:
        x = tensor(self.x_test, device=self.device)
        recon = kl = 0.0
        self.model.eval()
        with no_grad():
            for eps in self.eval_eps:
                r, k = self.model.elbo_terms(x, tensor(eps, device=self.device))
                recon += float(r.mean().item())
                kl += float(k.mean().item())
        self.model.train()
        n = len(self.eval_eps)
        return {"test_elbo": -(recon + kl) / n, "test_recon": recon / n, "test_kl": kl / n,
                "mean_image_loglik": self.mean_image_loglik}

    def _images(self, fn, *args) -> np.ndarray:
        self.model.eval()
        with no_grad():
            out = fn(*(tensor(a, device=self.device) for a in args)).numpy()
        self.model.train()
        return out

    def artifacts(self, out_dir: str) -> list:
        from ..plots import image_grid  # matplotlib: imported only when plotting

        x = self.x_test[:N_SHOWN]
        recon = self._images(self.model.reconstruct, x)
        samples = self._images(lambda z: self.model.sample(len(z), z=z), self.eval_z)
        return [image_grid((x, recon), os.path.join(out_dir, RECONSTRUCTIONS_NAME), nrow=8,
                           title="vae: test images / reconstructions (z = mu)"),
                image_grid(samples, os.path.join(out_dir, SAMPLES_NAME), nrow=8,
                           title="vae: samples (pixel means of p(x|z), z ~ N(0, I))")]

    def sample(self, out_dir: str, n: int = 16) -> list:
        """n fresh samples (z from the framework's generator) as a PNG grid in out_dir."""
        from ..plots import image_grid

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"vae.sample: n must be a positive integer, got {n!r}")
        self.model.eval()
        with no_grad():
            images = self.model.sample(int(n), device=self.device).numpy()
        self.model.train()
        return [image_grid(images, os.path.join(out_dir, SAMPLED_NAME), nrow=min(int(n), 8),
                           title=f"vae: {n} samples")]

    def feature_encoder(self):
        """The posterior mean mu(x): the encoder and its mu head (shared, not copied)."""
        return PosteriorMean(self.model.encoder, self.model.to_mu)

    def summary(self, metrics: dict) -> str:
        return (f"test ELBO {metrics['test_elbo']:.2f} nats per image (higher is better) = "
                f"-(reconstruction {metrics['test_recon']:.2f} + KL {metrics['test_kl']:.2f}); "
                f"a latent-free per-pixel Bernoulli model scores "
                f"{metrics['mean_image_loglik']:.2f}")
