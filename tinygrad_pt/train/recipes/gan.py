"""GANRecipe ("gan"): an MLP GAN on the 8x8 digits.

    tinygrad-pt train gan         # a few minutes on a 2-core CPU; samples in the run folder

One step (models/gan.py has the losses): a batch of real images drawn by ``self.rng`` and latents
from the framework's generator; a discriminator step on real vs detached fakes, then a generator
step with fresh latents and the non-saturating loss. Two Adam optimizers (lr 2e-4, betas
(0.5, 0.999)); while G steps, D's parameters are frozen (requires_grad off), so its backward
neither computes nor leaves gradients for D.

Evaluation (the latents are drawn once from a generator of their own, the same for every
evaluation and every run):
  - the discriminator's accuracy on the test images vs as many fakes (0.5: it cannot tell);
  - recognisability of ``score_samples`` fakes by a digits classifier trained in tinygrad_pt
    (models/classifier.py; trained by train/classifier.py once per recipe, on first use, seeded):
    the share classified with confidence > 0.9, how many of the 10 classes those cover, and the
    entropy of their predicted-class histogram (log2(10) = 3.32 bits when the classes are balanced);
  - reuse of the discriminator's features: the test accuracy of a linear probe (closed-form ridge
    regression, models/gan.py) on D's penultimate layer, beside the same probe on the untrained
    D's features and on raw pixels. (On digits, random features of this width are already a
    strong basis for a linear probe; training D keeps them about as good, it does not beat them.)
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from ...autograd import no_grad
from ...creation import tensor
from ...models.classifier import score_samples
from ...models.gan import GAN, discriminator_features, ridge_probe_accuracy
from ...optim import Adam
from ..classifier import train_digits_classifier
from ..recipe import FRACTION, POSITIVE, POSITIVE_INT
from .digits import EVAL_SEED, DigitsRecipe

__all__ = ["GANRecipe"]

SAMPLES_NAME = "samples.png"
SAMPLED_NAME = "sampled.png"


@contextlib.contextmanager
def frozen(module):
    """Parameters of `module` stop requiring gradients inside the block, then require them again."""
    params = list(module.parameters())
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p in params:
            p.requires_grad = True


class GANRecipe(DigitsRecipe):
    name = "gan"
    defaults = {
        # Measured on a 2-core CPU (benchmarks/results/models_images.md): 10000 steps (about
        # 2.5 minutes of CPU time) bring 84% of 1000 samples to a confident classification, all
        # 10 classes present.
        "steps": 10000,
        "batch_size": 64,
        "eval_every": 1000,
        "log_every": 10,
        # the models: G 32 -> hidden -> hidden -> 64 (sigmoid); D 64 -> hidden -> hidden -> 1
        "latent": 32,
        "hidden": 512,         # 256 learns more slowly per step: ~78% confident after 10000-16000
                               # steps, against ~84% for 512 after 10000 (models_images.md)
        # the optimizers, one per network (DCGAN's settings)
        "lr": 2e-4,
        "beta1": 0.5,          # a short momentum memory: the target moves as the other net learns
        "beta2": 0.999,
        # evaluation
        "score_samples": 1000,  # fakes shown to the classifier
        "confidence": 0.9,     # a fake counts as recognised above this top-class probability
        "classifier_steps": 1000,  # training steps of the scoring classifier (96% test accuracy)
    }

    checks = {**DigitsRecipe.checks, "latent": POSITIVE_INT, "hidden": POSITIVE_INT,
              "lr": POSITIVE, "beta1": FRACTION, "beta2": FRACTION,
              "score_samples": POSITIVE_INT, "confidence": FRACTION,
              "classifier_steps": POSITIVE_INT}
    size_keys = ("batch_size", "hidden", "latent", "score_samples")

    @classmethod
    def state_sizes(cls, c):
        z, h = c["latent"], c["hidden"]
        return {"generator": cls.mlp_size(z, h, h, cls.PIXELS),
                "discriminator": cls.mlp_size(cls.PIXELS, h, h, 1)}

    @classmethod
    def memory_bytes(cls, c):
        z, h = c["latent"], c["hidden"]
        # D sees real and fake batches; its probe, the whole train split
        rows = max(2 * c["batch_size"], c["score_samples"], cls.N_TRAIN)
        return (super().memory_bytes(c) + 4 * c["score_samples"] * z
                + cls.activation_bytes(rows, z, h, h, cls.PIXELS, h, h, 1))

    def build(self):
        c = self.config
        self.load_data()
        self.gan = self.make_gan().to(self.device)
        self.modules = {"generator": self.gan.generator, "discriminator": self.gan.discriminator}
        betas = (c["beta1"], c["beta2"])
        self.optimizers = {
            "generator": Adam(self.gan.generator.parameters(), lr=c["lr"], betas=betas),
            "discriminator": Adam(self.gan.discriminator.parameters(), lr=c["lr"], betas=betas)}
        # Fixed latents for evaluation and the sample grid.
        g = np.random.default_rng(EVAL_SEED)
        self.eval_z = g.standard_normal((c["score_samples"], c["latent"]), dtype=np.float32)
        self.classifier = None  # trained on first use (evaluate), a few seconds
        self.classifier_accuracy = None
        self.pixel_probe_accuracy = ridge_probe_accuracy(self.x_train, self.y_train,
                                                         self.x_test, self.y_test)
        # The same probe on the untrained discriminator: what random features already give.
        self.init_probe_accuracy = self.d_feature_probe()

    def make_gan(self) -> GAN:
        return GAN(self.config["latent"], self.config["hidden"], 64)

    def step_on(self, real: np.ndarray) -> dict:
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        n = self.config["batch_size"]  # the global batch (data parallel: real is this rank's)
        # D step: real vs fakes; the fakes are detached inside discriminator_loss. Latents are
        # drawn for the global batch and sharded like the real images (local_rows: the identity
        # in one process).
        z = self.local_rows(self.gan.sample_latents(n, self.device))
        loss_d = self.gan.discriminator_loss(tensor(real, device=self.device), z)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # G step: fresh latents, D frozen (its parameters get no gradient and do not move).
        with frozen(self.gan.discriminator):
            z = self.local_rows(self.gan.sample_latents(n, self.device))  # fresh latents
            loss_g = self.gan.generator_loss(z)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return {"loss_d": loss_d, "loss_g": loss_g}

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Fakes (N, 64) as NumPy for latents z (N, latent), without a graph."""
        self.gan.eval()
        with no_grad():
            out = self.gan.generator(tensor(z, device=self.device)).numpy()
        self.gan.train()
        return out

    def _d_logits(self, x: np.ndarray) -> np.ndarray:
        with no_grad():
            return self.gan.discriminator(tensor(x, device=self.device)).numpy()

    def d_feature_probe(self) -> float:
        """Test accuracy of a linear probe on the discriminator's penultimate features."""
        disc = self.gan.discriminator
        return ridge_probe_accuracy(discriminator_features(disc, self.x_train, self.device),
                                    self.y_train,
                                    discriminator_features(disc, self.x_test, self.device),
                                    self.y_test)

    def evaluate(self) -> dict:
        c = self.config
        if self.classifier is None:
            # Trained on the cpu with generators of its own (see train/classifier.py): the
            # training streams of this run do not move.
            self.classifier, self.classifier_accuracy = train_digits_classifier(
                c["classifier_steps"], seed=EVAL_SEED)
        fakes = self.generate(self.eval_z)
        d_real = float((self._d_logits(self.x_test) > 0).mean())
        d_fake = float((self._d_logits(fakes[:len(self.x_test)]) < 0).mean())
        score = score_samples(self.classifier, fakes, c["confidence"])
        return {"d_accuracy": (d_real + d_fake) / 2, "d_accuracy_real": d_real,
                "d_accuracy_fake": d_fake,
                "confident_fraction": score["confident_fraction"],
                "classes_covered": float(score["classes_covered"]),
                "class_entropy_bits": score["class_entropy_bits"],
                "classifier_test_accuracy": self.classifier_accuracy,
                "d_feature_probe_accuracy": self.d_feature_probe(),
                "d_feature_probe_accuracy_init": self.init_probe_accuracy,
                "pixel_probe_accuracy": self.pixel_probe_accuracy}

    def artifacts(self, out_dir: str) -> list:
        from ..plots import image_grid  # matplotlib: imported only when plotting

        return [image_grid(self.generate(self.eval_z[:64]), os.path.join(out_dir, SAMPLES_NAME),
                           nrow=8, title="gan: samples (fixed latents)")]

    def sample(self, out_dir: str, n: int = 16) -> list:
        """n fresh samples (latents from the framework's generator) as a PNG grid in out_dir."""
        from ..plots import image_grid

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"gan.sample: n must be a positive integer, got {n!r}")
        z = self.gan.sample_latents(int(n), self.device).numpy()
        return [image_grid(self.generate(z), os.path.join(out_dir, SAMPLED_NAME),
                           nrow=min(int(n), 8), title=f"gan: {n} samples")]

    def feature_encoder(self):
        """The discriminator's body: images -> its penultimate layer."""
        return self.gan.discriminator.body

    def summary(self, metrics: dict) -> str:
        return (f"{metrics['confident_fraction']:.0%} of {self.config['score_samples']} samples "
                f"classified with confidence > {self.config['confidence']} "
                f"({int(metrics['classes_covered'])}/10 classes, "
                f"{metrics['class_entropy_bits']:.2f} of 3.32 bits); discriminator accuracy "
                f"{metrics['d_accuracy']:.2f}; linear probe on D's features "
                f"{metrics['d_feature_probe_accuracy']:.1%} (untrained D "
                f"{metrics['d_feature_probe_accuracy_init']:.1%}, raw pixels "
                f"{metrics['pixel_probe_accuracy']:.1%})")
