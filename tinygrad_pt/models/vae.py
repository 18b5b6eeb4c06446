"""A variational autoencoder (Kingma & Welling, 2014) for the 8x8 digits.

    x (N, 64) --encoder--> h (N, hidden) --> mu, logvar (N, latent)     q(z|x) = N(mu, exp(logvar))
    z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)                     (reparameterisation)
    z --decoder--> logits (N, 64)                                       p(x|z) = Bernoulli(sigmoid)

The loss is the negative evidence lower bound, per sample, averaged over the batch:

    -ELBO(x) = sum_pixels BCE_with_logits(logits, x)                    reconstruction, nats
             + KL(q(z|x) || N(0, I))
    KL       = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)        closed form, nats

Pixels in [0, 1] are used as Bernoulli targets as is (not binarised), so the reconstruction term
has a floor above zero (the entropy of the grey pixels): the ELBO is a bound for a "soft" Bernoulli
model, comparable between runs of this project, not a log-likelihood of binary images.

Randomness: eps comes from the framework's generator on the model's device (tg.randn), unless a
caller passes ``eps`` itself (evaluation does, with a fixed generator, so that measuring the ELBO
neither changes the training stream nor depends on when it is measured).
"""
from __future__ import annotations

from .. import nn
from ..creation import randn
from ..nn import functional as F
from ..tensor import Tensor
from ..nn.layers import positive_int

__all__ = ["VAE", "gaussian_kl"]


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, summed over the last axis: (N, L) -> (N,)."""
    return 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(axis=-1)


class VAE(nn.Module):
    """VAE(in_dim=64, hidden=256, latent=8).

    encoder: Linear(in_dim, hidden) -> ReLU, then two heads Linear(hidden, latent): mu and logvar
    decoder: Linear(latent, hidden) -> ReLU -> Linear(hidden, in_dim), Bernoulli logits
    Layers start with PyTorch's Linear init.
    """

    def __init__(self, in_dim: int = 64, hidden: int = 256, latent: int = 8):
        super().__init__()
        self.in_dim = positive_int("VAE", "in_dim", in_dim)
        self.hidden = positive_int("VAE", "hidden", hidden)
        self.latent = positive_int("VAE", "latent", latent)
        self.encoder = nn.Sequential(nn.Linear(self.in_dim, self.hidden), nn.ReLU())
        self.to_mu = nn.Linear(self.hidden, self.latent)
        self.to_logvar = nn.Linear(self.hidden, self.latent)
        self.decoder = nn.Sequential(nn.Linear(self.latent, self.hidden), nn.ReLU(),
                                     nn.Linear(self.hidden, self.in_dim))

    def encode(self, x: Tensor):
        """(N, in_dim) -> (mu, logvar), each (N, latent)."""
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != self.in_dim:
            got = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"VAE: expected input of shape (N, {self.in_dim}), got {got}")
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def reparameterize(self, mu: Tensor, logvar: Tensor, eps: Tensor | None = None) -> Tensor:
        """z = mu + exp(logvar / 2) * eps: a sample of q(z|x) that is differentiable in mu and
        logvar, the randomness being all in eps (N, latent) ~ N(0, I)."""
        if eps is None:
            eps = randn(*mu.shape, dtype=mu.dtype, device=mu.device)
        elif eps.shape != mu.shape:
            raise ValueError(f"VAE.reparameterize: eps of shape {eps.shape} must match mu's "
                             f"shape {mu.shape}")
        return mu + (logvar * 0.5).exp() * eps

    def decode_logits(self, z: Tensor) -> Tensor:
        """(N, latent) -> Bernoulli logits (N, in_dim)."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """(N, latent) -> pixel means sigmoid(logits) in (0, 1), (N, in_dim)."""
        return self.decode_logits(z).sigmoid()

    def forward(self, x: Tensor, eps: Tensor | None = None):
        """(logits (N, in_dim), mu (N, latent), logvar (N, latent)) for one sample z per input."""
        mu, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mu, logvar, eps)), mu, logvar

    def elbo_terms(self, x: Tensor, eps: Tensor | None = None):
        """(reconstruction (N,), KL (N,)) in nats: BCE summed over pixels, and KL to N(0, I)."""
        logits, mu, logvar = self(x, eps)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(axis=-1)
        return recon, gaussian_kl(mu, logvar)

    def negative_elbo(self, x: Tensor, eps: Tensor | None = None) -> Tensor:
        """-ELBO per sample (N,), in nats: reconstruction + KL."""
        recon, kl = self.elbo_terms(x, eps)
        return recon + kl

    def loss(self, x: Tensor, eps: Tensor | None = None) -> Tensor:
        """The training loss: -ELBO per sample, mean over the batch (0-d)."""
        return self.negative_elbo(x, eps).mean()

    def elbo(self, x: Tensor, eps: Tensor | None = None) -> Tensor:
        """ELBO per sample (N,), in nats (higher is better); one-sample estimate."""
        return -self.negative_elbo(x, eps)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The decoder's mean at z = mu (no noise): (N, in_dim) in (0, 1)."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def sample(self, n: int, z: Tensor | None = None, device: str | None = None) -> Tensor:
        """n images (n, in_dim) in (0, 1): pixel means of p(x|z), z ~ N(0, I) (or the given z)."""
        if z is None:
            device = device or self.decoder[0].weight.device
            z = randn(n, self.latent, device=device)
        return self.decode(z)
