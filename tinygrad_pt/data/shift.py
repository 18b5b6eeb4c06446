"""Shifted target domains built from the real 8x8 digits, for domain-shift experiments.

    x_t = shift_domain(x, "inverted")              # 1 - x: white digits on black -> black on white
    x_t = shift_domain(x, "noisy", seed=3)         # the same images, seeded gaussian noise
    x8, y = load_mnist_8x8(images_idx, labels_idx) # MNIST from the user's IDX files, as 8x8 digits

Every domain is a fixed function of the images (and of `seed` for the random ones), so a target
split is rebuilt identically on any machine. Images are (N, 64) float32 in [0, 1], rows of 8x8
pixels, as load_digits returns them; the output is too.

    inverted  1 - x
    rotated   each image turned 90 degrees counter-clockwise (a 6 looks like a flipped 9 ...)
    blurred   a 3x3 gaussian blur (sigma about 0.85 px), edges replicated
    noisy     x + N(0, 0.4^2) per pixel, clipped to [0, 1]
    faded     0.3 + 0.4 x: low contrast on a grey ground (an affine change of every pixel)
    thick     strokes dilated by one pixel (max over the pixel and its 4 neighbours)

Measured with an MLP trained on clean digits (benchmarks/results/transfer_shift.md, 3 seeds):
inverted breaks it (at or below chance), faded and thick cost 25-55 points. Tried once during
development: rotated breaks it too (0.10), blurred costs 5 points, noisy 25 points but destroys
information rather than moving it (a classifier trained on labelled noisy digits did no better),
so it is a poor test of adaptation.
"""
from __future__ import annotations

import numpy as np

from .idx import load_idx_images

__all__ = ["DOMAINS", "shift_domain", "load_mnist_8x8", "downsample_to_8x8"]

DOMAINS = ("inverted", "rotated", "blurred", "noisy", "faded", "thick")
NOISE_STD = 0.4
SIDE = 8


def _as_images(op: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != SIDE * SIDE or x.dtype.kind != "f":
        raise ValueError(f"{op}: expected float images of shape (N, 64) (8x8 digits), got shape "
                         f"{x.shape} and dtype {x.dtype}")
    return x.astype(np.float32, copy=False).reshape(-1, SIDE, SIDE)


def _blur(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 filter along both axes of (N, 8, 8), edges replicated."""
    k = np.array([0.25, 0.5, 0.25], dtype=np.float32)
    out = img
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (1, 1)
        p = np.pad(out, pad, mode="edge")
        sl = [slice(None)] * 3
        parts = []
        for i in range(3):
            sl[axis] = slice(i, i + SIDE)
            parts.append(k[i] * p[tuple(sl)])
        out = parts[0] + parts[1] + parts[2]
    return out


def shift_domain(x, name: str, seed: int = 0) -> np.ndarray:
    """The images x (N, 64) moved to domain `name` (one of DOMAINS); `seed` draws the noise."""
    if name not in DOMAINS:
        raise ValueError(f"shift_domain: unknown domain {name!r}; known: {', '.join(DOMAINS)}")
    img = _as_images("shift_domain", x)
    if name == "inverted":
        out = 1.0 - img
    elif name == "rotated":
        out = np.rot90(img, k=1, axes=(1, 2))
    elif name == "blurred":
        out = _blur(img)
    elif name == "faded":
        out = 0.3 + 0.4 * img
    elif name == "thick":
        # Dilation by a plus-shaped 3x3 element: each pixel takes the max of itself and its
        # four neighbours, so strokes grow by a pixel on each side.
        p = np.pad(img, ((0, 0), (1, 1), (1, 1)))
        out = np.maximum.reduce([p[:, 1 + i:1 + i + SIDE, 1 + j:1 + j + SIDE]
                                 for i, j in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))])
    else:  # noisy
        noise = np.random.default_rng(seed).standard_normal(img.shape, dtype=np.float32)
        out = np.clip(img + np.float32(NOISE_STD) * noise, 0.0, 1.0)
    return np.ascontiguousarray(out, dtype=np.float32).reshape(len(img), SIDE * SIDE)


def downsample_to_8x8(images: np.ndarray) -> np.ndarray:
    """(N, H, W) images in [0, 1] -> (N, 64): padded evenly to a multiple of 8 on each side, then
    averaged over blocks (MNIST's 28x28 -> 32x32 -> 4x4 blocks), then scaled so that each image's
    brightest pixel is 1, as the digits' 0..16 ink levels divided by 16 nearly are."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"downsample_to_8x8: expected images (N, H, W), got shape {images.shape}")
    n, h, w = images.shape
    ph, pw = (-h) % SIDE, (-w) % SIDE
    images = np.pad(images, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
    bh, bw = images.shape[1] // SIDE, images.shape[2] // SIDE
    small = images.reshape(n, SIDE, bh, SIDE, bw).mean(axis=(2, 4))  # (N, 8, 8)
    peak = small.reshape(n, -1).max(axis=1)
    small = small / np.maximum(peak, 1e-6)[:, None, None]
    return small.reshape(n, SIDE * SIDE).astype(np.float32)


def load_mnist_8x8(images_path, labels_path):
    """MNIST (or any MNIST-layout IDX pair the user gives) as 8x8 digits: (x (N, 64), y (N,))."""
    x, y = load_idx_images(images_path, labels_path)
    side = int(round(np.sqrt(x.shape[1])))
    if side * side != x.shape[1]:
        raise ValueError(f"load_mnist_8x8: {x.shape[1]} pixels per image is not a square image")
    return downsample_to_8x8(x.reshape(len(x), side, side)), y
