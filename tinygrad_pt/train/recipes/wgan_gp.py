"""WGANGPRecipe ("wgan_gp"): the GAN recipe's networks, trained as a Wasserstein GAN with a
gradient penalty (Gulrajani et al., 2017).

    tinygrad-pt train wgan_gp

One step (models/gan.py, WGANGP, has the losses): `n_critic` critic steps, each on its own batch
of real images (all drawn by ``self.rng`` in draw_batch) and fresh latents, with L_D = mean D(fake)
- mean D(real) + penalty * (||grad D(x_hat)|| - 1)^2: the penalty differentiates the critic's
input gradient, a second-order pass (``tg.autograd.grad(..., create_graph=True)``). Then one
generator step, L_G = -mean D(G(z)), the critic frozen. Adam lr 1e-4, betas (0, 0.9),
n_critic 5, penalty 10: the paper's settings.

Evaluation is the GAN recipe's (recognisability of samples by a digits classifier, a linear
probe on the critic's features), with the critic's Wasserstein estimate on the test images,
mean D(test) - mean D(fakes), in place of the discriminator's accuracy (a critic's sign means
nothing).
"""
from __future__ import annotations

import numpy as np

from ...creation import tensor
from ...models.gan import WGANGP
from ..recipe import NON_NEGATIVE, POSITIVE_INT
from .gan import GANRecipe, frozen

__all__ = ["WGANGPRecipe"]


class WGANGPRecipe(GANRecipe):
    name = "wgan_gp"
    defaults = {
        **GANRecipe.defaults,
        # A generator step costs n_critic critic steps, each with a double backward. Measured
        # on a 2-core CPU (seed 0, 500 scored samples): 2000 steps, about 40 s, bring 66% of
        # the samples to a confident classification, 10/10 classes, 3.20 of 3.32 bits (57% at
        # 500 steps, 70% at 1000); hidden 512 climbs slowly: 71% at 3000 steps, 75% of 1000
        # samples at 5000 (about 6 minutes).
        "steps": 2000,
        "eval_every": 500,
        "hidden": 256,
        "lr": 1e-4,
        "beta1": 0.0,          # the paper's Adam: no momentum, beta2 0.9
        "beta2": 0.9,
        "n_critic": 5,         # critic steps per generator step
        "penalty": 10.0,       # lambda, the weight of the gradient penalty
    }

    # Checked before step 1 with the GAN's settings (train/recipe.py, validate_config).
    checks = {**GANRecipe.checks, "n_critic": POSITIVE_INT, "penalty": NON_NEGATIVE}

    def optimizer_steps_per_step(self, name: str) -> int:
        return self.config["n_critic"] if name == "discriminator" else 1

    def make_gan(self) -> WGANGP:
        c = self.config
        return WGANGP(c["latent"], c["hidden"], 64, penalty=c["penalty"])

    batch_axis = 1  # draw_batch's (n_critic, N, 64): data parallel shards N

    def draw_batch(self) -> tuple:
        """(x,): n_critic batches of train images (n_critic, N, 64), drawn by self.rng."""
        batches = [super(WGANGPRecipe, self).draw_batch()[0] for _ in range(self.config["n_critic"])]
        return (np.stack(batches),)

    def step_on(self, real: np.ndarray) -> dict:
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        n = self.config["batch_size"]  # the global batch (data parallel: real holds this rank's)
        for batch in real:  # the critic steps
            # Latents for the global batch, each rank its rows (local_rows: the identity alone).
            # The penalty's interpolation weights are drawn inside critic_terms for the rows at
            # hand, so under data parallel they are not one process's (distributed_cpu.md).
            loss_d, distance, gp = self.gan.critic_terms(
                tensor(batch, device=self.device),
                self.local_rows(self.gan.sample_latents(n, self.device)))
            opt_d.zero_grad()
            loss_d.backward()  # through the gradient penalty: a second-order gradient
            opt_d.step()
        with frozen(self.gan.discriminator):  # the generator step leaves the critic alone
            z = self.local_rows(self.gan.sample_latents(n, self.device))
            loss_g = self.gan.generator_loss(z)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return {"loss_d": loss_d, "loss_g": loss_g, "wasserstein": distance,
                "gradient_penalty": gp}

    def evaluate(self) -> dict:
        metrics = super().evaluate()
        for key in ("d_accuracy", "d_accuracy_real", "d_accuracy_fake"):
            metrics.pop(key)
        fakes = self.generate(self.eval_z[:len(self.x_test)])
        metrics["wasserstein_estimate"] = float(self._d_logits(self.x_test).mean()
                                                - self._d_logits(fakes).mean())
        return metrics

    def summary(self, metrics: dict) -> str:
        return (f"{metrics['confident_fraction']:.0%} of {self.config['score_samples']} samples "
                f"classified with confidence > {self.config['confidence']} "
                f"({int(metrics['classes_covered'])}/10 classes, "
                f"{metrics['class_entropy_bits']:.2f} of 3.32 bits); critic's Wasserstein "
                f"estimate {metrics['wasserstein_estimate']:.3f}; linear probe on the critic's "
                f"features {metrics['d_feature_probe_accuracy']:.1%} (untrained "
                f"{metrics['d_feature_probe_accuracy_init']:.1%}, raw pixels "
                f"{metrics['pixel_probe_accuracy']:.1%})")
