"""A GAN of two MLPs (Goodfellow et al., 2014) for the 8x8 digits.

    z (N, latent) ~ N(0, I) --Generator--> x_fake (N, 64) in (0, 1)
    x (N, 64) --Discriminator--> logit (N,): log-odds that x is a real image

Losses (BCE with logits; D(x) is the discriminator's logit):

    D step:  L_D = BCE(D(x_real), 1) + BCE(D(G(z).detach()), 0)   G's output detached: no graph
                                                                  into G, no gradient for it
    G step:  L_G = BCE(D(G(z)), 1) = -log sigmoid(D(G(z)))         "non-saturating": G maximises
                                                                  log D(G(z)) rather than
                                                                  minimising log(1 - D(G(z))),
                                                                  which is flat while D wins

Each step has its own optimizer (Adam lr 2e-4, betas (0.5, 0.999), as in DCGAN), so a D step
never moves G and a G step never moves D; the G step's backward does leave gradients on D's
parameters, which is why the D step zeroes D's gradients first.

WGANGP below trains the same two networks as a Wasserstein GAN with a gradient penalty (a
second-order gradient).

The discriminator's penultimate layer (``features``) is a learned representation of digits; the
small ``ridge_probe_accuracy`` below measures how linearly separable the classes are in it.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import grad, no_grad
from ..creation import ones, rand, randn, tensor, zeros
from ..nn import functional as F
from ..tensor import Tensor
from ..nn.layers import positive_int

__all__ = ["Generator", "Discriminator", "GAN", "WGANGP", "discriminator_features",
           "ridge_probe_accuracy"]


class Generator(nn.Module):
    """Generator(latent=32, hidden=256, out=64): z (N, latent) -> images (N, out) in (0, 1).

    Linear(latent, hidden) -> LeakyReLU(0.2) -> Linear(hidden, hidden) -> LeakyReLU(0.2)
    -> Linear(hidden, out) -> sigmoid (pixels live in [0, 1]). PyTorch's Linear init.
    """

    def __init__(self, latent: int = 32, hidden: int = 256, out: int = 64):
        super().__init__()
        self.latent = positive_int("Generator", "latent", latent)
        self.hidden = positive_int("Generator", "hidden", hidden)
        self.out = positive_int("Generator", "out", out)
        self.net = nn.Sequential(nn.Linear(self.latent, self.hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(self.hidden, self.hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(self.hidden, self.out))

    def forward(self, z: Tensor) -> Tensor:
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.latent:
            got = z.shape if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"Generator: expected latents of shape (N, {self.latent}), got {got}")
        return self.net(z).sigmoid()


class Discriminator(nn.Module):
    """Discriminator(in_dim=64, hidden=256): images (N, in_dim) -> logits (N,).

    features: Linear(in_dim, hidden) -> LeakyReLU(0.2) -> Linear(hidden, hidden) -> LeakyReLU(0.2)
    head:     Linear(hidden, 1), squeezed to (N,). PyTorch's Linear init.
    """

    def __init__(self, in_dim: int = 64, hidden: int = 256):
        super().__init__()
        self.in_dim = positive_int("Discriminator", "in_dim", in_dim)
        self.hidden = positive_int("Discriminator", "hidden", hidden)
        self.body = nn.Sequential(nn.Linear(self.in_dim, self.hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(self.hidden, self.hidden), nn.LeakyReLU(0.2))
        self.head = nn.Linear(self.hidden, 1)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer: (N, in_dim) -> (N, hidden)."""
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != self.in_dim:
            got = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"Discriminator: expected images of shape (N, {self.in_dim}), "
                             f"got {got}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).reshape(-1)  # (N, 1) -> (N,)


class GAN(nn.Module):
    """GAN(latent=32, hidden=256, out=64): a Generator and a Discriminator, and their two losses."""

    def __init__(self, latent: int = 32, hidden: int = 256, out: int = 64):
        super().__init__()
        self.generator = Generator(latent, hidden, out)
        self.discriminator = Discriminator(out, hidden)
        self.latent = self.generator.latent

    def sample_latents(self, n: int, device: str | None = None) -> Tensor:
        """z (n, latent) ~ N(0, I) from the framework's generator on `device`."""
        return randn(n, self.latent, device=device or self.generator.net[0].weight.device)

    def discriminator_loss(self, real: Tensor, z: Tensor) -> Tensor:
        """L_D = BCE(D(real), 1) + BCE(D(G(z)), 0), the fakes detached (0-d)."""
        fake = self.generator(z).detach()  # the D step must not build (or pay for) G's graph
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        return (F.binary_cross_entropy_with_logits(d_real, ones(*d_real.shape, device=real.device))
                + F.binary_cross_entropy_with_logits(d_fake,
                                                     zeros(*d_fake.shape, device=real.device)))

    def generator_loss(self, z: Tensor) -> Tensor:
        """Non-saturating L_G = BCE(D(G(z)), 1) = mean(-log sigmoid(D(G(z)))) (0-d)."""
        d_fake = self.discriminator(self.generator(z))
        return F.binary_cross_entropy_with_logits(d_fake, ones(*d_fake.shape, device=z.device))

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)


class WGANGP(GAN):
    """WGAN-GP (Gulrajani et al., 2017): the same two networks, the discriminator now a critic
    whose output is a score (no sigmoid, no BCE), trained to estimate the Wasserstein distance:

        critic step:     L_D = mean D(G(z)) - mean D(x) + penalty * mean (||grad D(x_hat)|| - 1)^2
                         x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per example, G(z) detached
        generator step:  L_G = -mean D(G(z))

    The gradient penalty keeps the critic close to 1-Lipschitz along lines between real and fake
    images. It is a function of the critic's input gradient, so the critic step differentiates a
    gradient: ``tg.autograd.grad(..., create_graph=True)``, a second-order pass.
    """

    def __init__(self, latent: int = 32, hidden: int = 256, out: int = 64,
                 penalty: float = 10.0):
        super().__init__(latent, hidden, out)
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or penalty < 0:
            raise ValueError(f"WGANGP: penalty must be a non-negative number, got {penalty!r}")
        self.penalty = float(penalty)

    def gradient_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        """mean over the batch of (||d D(x_hat) / d x_hat||_2 - 1)^2 (0-d), eps from the
        framework's generator; differentiable with respect to the critic's parameters."""
        eps = rand(real.shape[0], 1, dtype=real.dtype, device=real.device)  # (N, 1)
        x_hat = (eps * real + (1.0 - eps) * fake.detach()).detach().requires_grad_()
        (g,) = grad(self.discriminator(x_hat).sum(), x_hat, create_graph=True)  # (N, in_dim)
        norm = ((g * g).sum(axis=1) + 1e-12).sqrt()  # (N,); the 1e-12 keeps sqrt' finite at 0
        return ((norm - 1.0) ** 2).mean()

    def discriminator_loss(self, real: Tensor, z: Tensor) -> Tensor:
        """The critic's L_D, Wasserstein estimate and gradient penalty (0-d)."""
        return self.critic_terms(real, z)[0]

    def critic_terms(self, real: Tensor, z: Tensor):
        """(L_D, the Wasserstein estimate mean D(x) - mean D(G(z)), the gradient penalty)."""
        fake = self.generator(z).detach()  # the critic step builds no graph into G
        distance = self.discriminator(real).mean() - self.discriminator(fake).mean()
        gp = self.gradient_penalty(real, fake)
        return gp * self.penalty - distance, distance, gp

    def generator_loss(self, z: Tensor) -> Tensor:
        """L_G = -mean D(G(z)) (0-d)."""
        return -self.discriminator(self.generator(z)).mean()


# ----------------------------------------------------------------------------------------------------
# Reusing the discriminator's features


def discriminator_features(discriminator: Discriminator, x: np.ndarray, device: str = "cpu",
                           batch_size: int = 512) -> np.ndarray:
    """The penultimate-layer features of NumPy images x (N, in_dim), as NumPy (N, hidden)."""
    out = []
    with no_grad():
        for i in range(0, len(x), batch_size):
            out.append(discriminator.features(tensor(x[i:i + batch_size], device=device)).numpy())
    return np.concatenate(out, axis=0)


def ridge_probe_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
                         y_test: np.ndarray, l2: float = 1e-2) -> float:
    """Test accuracy of a linear classifier on fixed features, fitted in closed form.

    Ridge regression onto one-hot labels on standardised features: W = (F^T F + l2 N I)^-1 F^T Y,
    predict argmax(F W). One solve, no randomness: a quick, deterministic linear probe.
    """
    f_train = np.asarray(f_train, dtype=np.float64)
    f_test = np.asarray(f_test, dtype=np.float64)
    mean, std = f_train.mean(axis=0), f_train.std(axis=0) + 1e-6
    a = np.hstack([(f_train - mean) / std, np.ones((len(f_train), 1))])  # a bias column
    b = np.hstack([(f_test - mean) / std, np.ones((len(f_test), 1))])
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    y_onehot = np.eye(n_classes)[y_train]
    w = np.linalg.solve(a.T @ a + l2 * len(a) * np.eye(a.shape[1]), a.T @ y_onehot)
    return float((np.argmax(b @ w, axis=1) == y_test).mean())
