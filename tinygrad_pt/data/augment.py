"""Augmentations and corruptions for small grey images, in NumPy, vectorised over the batch.

Each function takes a batch of images, either flat (N, H*W) with square images (digits: (N, 64))
or (N, H, W), plus a NumPy Generator that draws every random choice, and returns a new array of
the same shape and dtype (the input is never modified). Pixels are intensities in [0, 1] with 0 as
background, so what is shifted in or erased is 0.

    random_shift          move each image by whole pixels (zeros shifted in)
    random_resized_crop   crop a random box, resize it back with bilinear interpolation
    gaussian_noise        add N(0, std^2) noise, clip to [0, 1]
    random_erasing        zero one random rectangle (with probability p)
    mask_pixels           zero a random subset of the pixels (a denoising autoencoder's corruption)
    two_views             two independently augmented views of a batch (SimCLR, MoCo)

``shift`` and ``resized_crop`` are the deterministic parts, with the offsets and boxes given.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["shift", "random_shift", "resized_crop", "random_resized_crop", "gaussian_noise",
           "random_erasing", "mask_pixels", "two_views"]


# -- checks and shapes ---------------------------------------------------------------------------
def _images(x, op: str):
    """x as (N, H, W) plus the shape to give back; TypeError/ValueError for what is not a batch of
    float images."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point images, got dtype {x.dtype}")
    if x.ndim == 3:
        return x, x.shape
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1] and side > 0:
            return x.reshape(x.shape[0], side, side), x.shape
        raise ValueError(f"{op}: flat images need a square number of pixels, got {x.shape[1]} "
                         f"(shape {x.shape})")
    raise ValueError(f"{op}: expected images of shape (N, H*W) or (N, H, W), got shape {x.shape}")


def _check_rng(rng, op: str):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator "
                        f"(np.random.default_rng(seed)), got {type(rng).__name__}")


def _check_range(op: str, name: str, pair, lo: float, hi: float, integer: bool = False):
    """A (low, high) pair with lo <= low <= high <= hi (integers when `integer`)."""
    ok = isinstance(pair, (tuple, list)) and len(pair) == 2
    if ok and integer:
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    if not ok or not lo <= pair[0] <= pair[1] <= hi:
        kind = "integers" if integer else "numbers"
        raise ValueError(f"{op}: {name} must be a pair (low, high) of {kind} with "
                         f"{lo} <= low <= high <= {hi}, got {pair!r}")


# -- shifts --------------------------------------------------------------------------------------
def shift(x, dy, dx):
    """Move image n down by dy[n] and right by dx[n] pixels (negative: up, left); zeros fill in.

    out[n, i, j] = x[n, i - dy[n], j - dx[n]] where that index is inside the image, else 0.
    dy, dx: integer arrays of shape (N,) (or scalars, the same for every image).
    """
    imgs, shape = _images(x, "shift")
    n, h, w = imgs.shape
    dy, dx = np.asarray(dy), np.asarray(dx)
    if dy.dtype.kind not in "iu" or dx.dtype.kind not in "iu":
        raise TypeError(f"shift: offsets must be integers, got dtypes {dy.dtype} and {dx.dtype}")
    if dy.shape not in ((), (n,)) or dx.shape not in ((), (n,)):
        raise ValueError(f"shift: dy and dx must be scalars or have shape ({n},) for {n} images, "
                         f"got shapes {dy.shape} and {dx.shape}")
    dy, dx = np.broadcast_to(dy, (n,)), np.broadcast_to(dx, (n,))
    src_i = np.arange(h)[None, :] - dy[:, None]                  # (N, H): source row of each row
    src_j = np.arange(w)[None, :] - dx[:, None]                  # (N, W)
    inside = (((src_i >= 0) & (src_i < h))[:, :, None]
              & ((src_j >= 0) & (src_j < w))[:, None, :])         # (N, H, W)
    gathered = imgs[np.arange(n)[:, None, None],
                    np.clip(src_i, 0, h - 1)[:, :, None],
                    np.clip(src_j, 0, w - 1)[:, None, :]]         # (N, H, W), clipped reads
    return np.where(inside, gathered, imgs.dtype.type(0)).reshape(shape)


def random_shift(x, rng, max_shift: int = 1):
    """Shift each image by (dy, dx), each drawn uniformly from the integers -max_shift..max_shift
    (zeros shifted in)."""
    imgs, shape = _images(x, "random_shift")
    _check_rng(rng, "random_shift")
    limit = min(imgs.shape[1:])
    if not isinstance(max_shift, (int, np.integer)) or isinstance(max_shift, bool) \
            or not 0 <= max_shift < limit:
        raise ValueError(f"random_shift: max_shift must be an int in [0, {limit - 1}] for "
                         f"{imgs.shape[1]}x{imgs.shape[2]} images, got {max_shift!r}")
    d = rng.integers(-max_shift, max_shift + 1, size=(2, imgs.shape[0]))
    return shift(imgs, d[0], d[1]).reshape(shape)


# -- crop and resize -----------------------------------------------------------------------------
def resized_crop(x, boxes):
    """Crop box n of image n and resize it to the full H x W with bilinear interpolation.

    boxes: (N, 4) floats (top, left, height, width) in pixel units, where the image spans
    [0, H] x [0, W] and pixel (i, j) covers [i, i+1) x [j, j+1). Output pixel (i, j) samples the
    box at its own centre's relative position (align_corners=False, as PyTorch's default):

        y = top + (i + 0.5) * height / H - 0.5,   x = left + (j + 0.5) * width / W - 0.5

    and mixes the four nearest pixels (coordinates clamped to the image, so edges repeat):

        out = (1-wy) [(1-wx) x[y0, x0]   + wx x[y0, x0+1]]
            +    wy  [(1-wx) x[y0+1, x0] + wx x[y0+1, x0+1]]

    with y0 = floor(y), wy = y - y0 (and likewise for x). The full box (0, 0, H, W) is the
    identity. Samples near the box's edge mix in the pixels just outside it, as RoIAlign does:
    the box is a window on the image, not a cut-out.
    """
    imgs, shape = _images(x, "resized_crop")
    n, h, w = imgs.shape
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape != (n, 4):
        raise ValueError(f"resized_crop: boxes must have shape ({n}, 4) (top, left, height, "
                         f"width), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError("resized_crop: boxes must be finite numbers")
    top, left, bh, bw = (boxes[:, k:k + 1] for k in range(4))      # each (N, 1)
    y = top + (np.arange(h) + 0.5) * bh / h - 0.5                 # (N, H) source rows
    xs = left + (np.arange(w) + 0.5) * bw / w - 0.5               # (N, W) source columns
    y, xs = np.clip(y, 0, h - 1), np.clip(xs, 0, w - 1)
    y0, x0 = np.floor(y).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy = (y - y0).astype(imgs.dtype)[:, :, None]                  # (N, H, 1), in the images' dtype
    wx = (xs - x0).astype(imgs.dtype)[:, None, :]                 # (N, 1, W)
    b = np.arange(n)[:, None, None]

    def at(rows, cols):                                           # (N, H, W) gathered pixels
        return imgs[b, rows[:, :, None], cols[:, None, :]]

    top_row = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom_row = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return (top_row * (1 - wy) + bottom_row * wy).reshape(shape)


def random_resized_crop(x, rng, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3)):
    """Crop a random box of each image and resize it back to full size (bilinear).

    The box covers a fraction `a` of the image's area drawn uniformly from `scale`, with aspect
    ratio r = (width/W) / (height/H) (for a square image, width/height) drawn log-uniformly from
    `ratio`, then clamped to [a, 1/a], the ratios at which a box of that area fits (so the area is
    always the drawn one, and scale=(1, 1) is the identity). Its position is uniform over the
    places where it fits. See ``resized_crop`` for the interpolation.
    """
    imgs, shape = _images(x, "random_resized_crop")
    _check_rng(rng, "random_resized_crop")
    _check_range("random_resized_crop", "scale", scale, 1e-6, 1.0)
    _check_range("random_resized_crop", "ratio", ratio, 1e-6, math.inf)
    n, h, w = imgs.shape
    area = rng.uniform(scale[0], scale[1], size=n)
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=n))
    aspect = np.clip(aspect, area, 1 / area)                      # bh <= H and bw <= W
    bh = np.minimum(h * np.sqrt(area / aspect), h)                # bh * bw = area * H * W
    bw = np.minimum(w * np.sqrt(area * aspect), w)                # (minimum: rounding only)
    top = rng.uniform(0.0, 1.0, size=n) * (h - bh)
    left = rng.uniform(0.0, 1.0, size=n) * (w - bw)
    return resized_crop(imgs, np.stack([top, left, bh, bw], axis=1)).reshape(shape)


# -- noise, erasing, masking ---------------------------------------------------------------------
def gaussian_noise(x, rng, std: float = 0.1):
    """x + std * N(0, 1) noise, clipped to [0, 1]; the noise is drawn in x's dtype."""
    imgs, shape = _images(x, "gaussian_noise")
    _check_rng(rng, "gaussian_noise")
    if not isinstance(std, (int, float, np.floating, np.integer)) or not 0 <= std < math.inf:
        raise ValueError(f"gaussian_noise: std must be a finite number >= 0, got {std!r}")
    # Generator draws float32 or float64 directly; float16 goes through float32
    draw_dtype = imgs.dtype if imgs.dtype in (np.float32, np.float64) else np.float32
    noise = rng.standard_normal(imgs.shape, dtype=draw_dtype).astype(imgs.dtype, copy=False)
    out = imgs + imgs.dtype.type(std) * noise
    return np.clip(out, 0, 1).reshape(shape)


def random_erasing(x, rng, p: float = 0.5, size=(2, 4)):
    """With probability p per image, zero one rectangle inside it.

    Its height and width are each drawn uniformly from the integers size[0]..size[1] (inclusive),
    its top-left corner uniformly over the places where it fits.
    """
    imgs, shape = _images(x, "random_erasing")
    _check_rng(rng, "random_erasing")
    n, h, w = imgs.shape
    if not isinstance(p, (int, float, np.floating, np.integer)) or not 0 <= p <= 1:
        raise ValueError(f"random_erasing: p must be a probability in [0, 1], got {p!r}")
    _check_range("random_erasing", "size", size, 1, min(h, w), integer=True)
    erase = rng.random(n) < p                                     # (N,)
    rh = rng.integers(size[0], size[1] + 1, size=n)               # rectangle heights
    rw = rng.integers(size[0], size[1] + 1, size=n)
    top = rng.integers(0, h - rh + 1)                             # broadcast over the (N,) highs
    left = rng.integers(0, w - rw + 1)
    rows = np.arange(h)[None, :]
    cols = np.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + rh)[:, None])     # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + rw)[:, None])   # (N, W)
    hole = in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None]
    return np.where(hole, imgs.dtype.type(0), imgs).reshape(shape)


def mask_pixels(x, rng, fraction: float = 0.25, return_mask: bool = False):
    """Zero round(fraction * H * W) pixels of each image, chosen uniformly without replacement.

    With return_mask=True, also returns the boolean mask (True = zeroed) in x's shape.
    """
    imgs, shape = _images(x, "mask_pixels")
    _check_rng(rng, "mask_pixels")
    if not isinstance(fraction, (int, float, np.floating, np.integer)) or not 0 <= fraction <= 1:
        raise ValueError(f"mask_pixels: fraction must be in [0, 1], got {fraction!r}")
    n, h, w = imgs.shape
    k = round(fraction * h * w)
    # The k pixels with the smallest of D uniform keys: a uniform k-subset of each image.
    chosen = rng.random((n, h * w)).argsort(axis=1)[:, :k]          # (N, k) flat pixel indices
    mask = np.zeros((n, h * w), dtype=bool)
    mask[np.arange(n)[:, None], chosen] = True
    mask = mask.reshape(n, h, w)
    out = np.where(mask, imgs.dtype.type(0), imgs).reshape(shape)
    return (out, mask.reshape(shape)) if return_mask else out


# -- views for contrastive learning --------------------------------------------------------------
def two_views(x, rng, scale=(0.6, 1.0), max_shift: int = 1, noise_std: float = 0.1,
              erase_p: float = 0.5, erase_size=(2, 4)):
    """Two independently augmented views of each image, for SimCLR and MoCo.

    Each view is random_resized_crop -> random_shift -> gaussian_noise -> random_erasing, with
    its own random draws. Returns (view1, view2), each in x's shape and dtype.
    """
    imgs, shape = _images(x, "two_views")
    _check_rng(rng, "two_views")

    def view():
        v = random_resized_crop(imgs, rng, scale=scale)
        v = random_shift(v, rng, max_shift=max_shift)
        v = gaussian_noise(v, rng, std=noise_std)
        return random_erasing(v, rng, p=erase_p, size=erase_size).reshape(shape)

    return view(), view()
