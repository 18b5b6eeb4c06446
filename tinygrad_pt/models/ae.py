"""Autoencoders for the 8x8 digits: AutoEncoder and DenoisingAutoEncoder.

    x (N, 64) in [0, 1] --encoder--> z (N, latent) --decoder--> logits (N, 64) --sigmoid--> x_hat

Both halves are MLPs (Linear -> ReLU -> Linear). The decoder ends in logits, not pixels:

- training minimises binary cross-entropy with logits, each pixel's intensity read as the
  probability that it is "on". Its gradient with respect to a logit is simply sigmoid(logit) - x,
  so a saturated output pixel still learns; MSE through a sigmoid multiplies that gradient by
  sigmoid' (near zero at 0 and 1, exactly where most digit pixels are). On digits it reaches a
  slightly lower test MSE for the same steps (0.0078 vs 0.0083 after 1000 Adam steps at lr 2e-3;
  benchmarks/results/models_images.md); ``loss="mse"`` keeps the alternative one keyword away.
- the reported metric is still the reconstruction MSE of sigmoid(logits) against x.

``encoder`` is a plain submodule, so its features can be reused (a linear probe on z).

The denoising autoencoder is the same network trained to map a corrupted input back to the clean
one. Corruption (gaussian noise and/or masking pixels to 0) happens on NumPy batches with the
caller's generator, so a training run stays reproducible and resumable.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..data.augment import gaussian_noise, mask_pixels
from ..nn import functional as F
from ..nn.layers import positive_int
from ..tensor import Tensor

__all__ = ["AutoEncoder", "DenoisingAutoEncoder", "RECONSTRUCTION_LOSSES", "CORRUPTIONS"]

RECONSTRUCTION_LOSSES = ("bce", "mse")
CORRUPTIONS = ("gaussian", "mask", "both")


class AutoEncoder(nn.Module):
    """AutoEncoder(in_dim=64, hidden=128, latent=16).

    encoder: Linear(in_dim, hidden) -> ReLU -> Linear(hidden, latent)    (N, in_dim) -> (N, latent)
    decoder: Linear(latent, hidden) -> ReLU -> Linear(hidden, in_dim)    (N, latent) -> logits
    Layers start with PyTorch's Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    ``loss="bce"`` (default) trains with BCE-with-logits, ``loss="mse"`` with MSE of
    sigmoid(logits); both are means over pixels and batch.
    """

    def __init__(self, in_dim: int = 64, hidden: int = 128, latent: int = 16, loss: str = "bce"):
        super().__init__()
        name = type(self).__name__
        self.in_dim = positive_int(name, "in_dim", in_dim)
        self.hidden = positive_int(name, "hidden", hidden)
        self.latent = positive_int(name, "latent", latent)
        if loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"{name}: loss must be one of {RECONSTRUCTION_LOSSES}, got {loss!r}")
        self.loss_kind = loss
        self.encoder = nn.Sequential(nn.Linear(self.in_dim, self.hidden), nn.ReLU(),
                                     nn.Linear(self.hidden, self.latent))
        self.decoder = nn.Sequential(nn.Linear(self.latent, self.hidden), nn.ReLU(),
                                     nn.Linear(self.hidden, self.in_dim))

    def _check_input(self, x) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: expected a Tensor of shape "
                            f"(N, {self.in_dim}), got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"{type(self).__name__}: expected input of shape (N, {self.in_dim}), "
                             f"got {x.shape}")

    def encode(self, x: Tensor) -> Tensor:
        """(N, in_dim) -> codes (N, latent)."""
        self._check_input(x)
        return self.encoder(x)

    def decode_logits(self, z: Tensor) -> Tensor:
        """(N, latent) -> pixel logits (N, in_dim)."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """(N, latent) -> pixels in (0, 1), (N, in_dim)."""
        return self.decode_logits(z).sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction sigmoid(decoder(encoder(x))), (N, in_dim) in (0, 1)."""
        return self.decode(self.encode(x))

    def loss(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """Reconstruction loss of `target` (default: x itself) from input x, a 0-d Tensor."""
        target = x if target is None else target
        logits = self.decode_logits(self.encode(x))
        if self.loss_kind == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits.sigmoid(), target)


class DenoisingAutoEncoder(AutoEncoder):
    """DenoisingAutoEncoder(in_dim=64, hidden=128, latent=16, corruption="both", noise_std=0.3,
    mask_fraction=0.25, loss="bce").

    The same network as AutoEncoder, trained on ``loss(corrupt(x), x)``:
      "gaussian": x + N(0, noise_std^2), clipped back to [0, 1] (still a valid image)
      "mask":     a random `mask_fraction` of each image's pixels set to 0
      "both":     gaussian noise, then masking
    """

    def __init__(self, in_dim: int = 64, hidden: int = 128, latent: int = 16,
                 corruption: str = "both", noise_std: float = 0.3, mask_fraction: float = 0.25,
                 loss: str = "bce"):
        super().__init__(in_dim, hidden, latent, loss)
        if corruption not in CORRUPTIONS:
            raise ValueError(f"DenoisingAutoEncoder: corruption must be one of {CORRUPTIONS}, "
                             f"got {corruption!r}")
        if not (isinstance(noise_std, (int, float)) and noise_std >= 0):
            raise ValueError(f"DenoisingAutoEncoder: noise_std must be a number >= 0, "
                             f"got {noise_std!r}")
        if not (isinstance(mask_fraction, (int, float)) and 0.0 <= mask_fraction < 1.0):
            raise ValueError(f"DenoisingAutoEncoder: mask_fraction must be in [0, 1), "
                             f"got {mask_fraction!r}")
        self.corruption = corruption
        self.noise_std = float(noise_std)
        self.mask_fraction = float(mask_fraction)

    def corrupt(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A corrupted copy of the NumPy batch x (N, in_dim), drawn from `rng`; same dtype."""
        out = x
        if self.corruption in ("gaussian", "both") and self.noise_std > 0:
            out = gaussian_noise(out, rng, self.noise_std)  # clipped to [0, 1]: still an image
        if self.corruption in ("mask", "both") and self.mask_fraction > 0:
            out = mask_pixels(out, rng, self.mask_fraction)
        return np.asarray(out, dtype=x.dtype)

    def extra_repr(self) -> str:
        return (f"corruption={self.corruption!r}, noise_std={self.noise_std}, "
                f"mask_fraction={self.mask_fraction}")
