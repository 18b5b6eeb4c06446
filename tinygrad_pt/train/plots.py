"""Plots of a training run, as PNG files (matplotlib's Agg renderer), and text samples.

    loss_curves("runs/vae/metrics.jsonl", "runs/vae/loss_curves.png")
    image_grid(samples, "samples.png", nrow=8, title="VAE samples")    # (N, 8, 8) or (N, 64)
    image_grid((x, x_hat), "recon.png", nrow=8, title="originals / reconstructions")
    scatter_2d(features, labels, "tsne.png", method="tsne")
    write_text(["def f(x):\\n    ...", ...], "samples.txt")

Figures are built with ``matplotlib.figure.Figure`` and drawn by ``FigureCanvasAgg``, never through
``pyplot``: importing this module changes no global matplotlib state (no backend switch), draws
no window, and keeps no figure alive after the file is written. Every function returns its path.
"""
from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import read_metrics

__all__ = ["loss_curves", "image_grid", "scatter_2d", "write_text", "pca_2d"]

_LOG_COLUMNS = ("step", "split", "time")


def _host(name: str, value) -> np.ndarray:
    """A NumPy array from a NumPy array, a list, a Tensor or a CuPy array."""
    if hasattr(value, "numpy") and callable(value.numpy):  # a Tensor
        value = value.numpy()
    elif type(value).__module__.startswith("cupy"):
        value = value.get()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: expected an array, got {type(value).__name__} ({e})") from None


def _save(fig: Figure, png_path) -> str:
    png_path = os.fspath(png_path)
    if not png_path.lower().endswith(".png"):
        raise ValueError(f"plots: the output path must end in .png, got {png_path!r}")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: savefig renders with Agg
    fig.savefig(png_path, dpi=100)
    return png_path


# ----------------------------------------------------------------------------------------------------
# Loss curves

def loss_curves(jsonl_path, png_path, title: str | None = None) -> str:
    """Every metric of a metrics log against the step, one panel per metric name, train as a
    line and eval as a line with markers (a metric logged by both shares a panel).

    Raises FileNotFoundError for a missing log and ValueError for one without any metric.
    """
    rows = read_metrics(jsonl_path)
    series: dict = {}  # metric -> split -> ([steps], [values])
    for row in rows:
        for key, value in row.items():
            if key in _LOG_COLUMNS or isinstance(value, bool):
                continue
            steps, values = series.setdefault(key, {}).setdefault(row["split"], ([], []))
            steps.append(row["step"])
            values.append(np.nan if value is None else float(value))  # None: a non-finite value
    if not series:
        raise ValueError(f"loss_curves: {os.fspath(jsonl_path)!r} holds no metrics to plot "
                         f"({len(rows)} rows)")
    n = len(series)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    for i, (metric, by_split) in enumerate(series.items()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for split, (steps, values) in by_split.items():
            style = {"marker": "o", "markersize": 3} if split == "eval" else {"linewidth": 1}
            ax.plot(steps, values, label=split, **style)
        finite = np.concatenate([np.asarray(v, dtype=np.float64) for _, v in by_split.values()])
        finite = finite[np.isfinite(finite)]
        if finite.size and finite.min() > 0 and finite.max() > 50 * finite.min():
            ax.set_yscale("log")  # a loss falling by orders of magnitude: keep the tail visible
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, png_path)


# ----------------------------------------------------------------------------------------------------
# Image grids

def _as_images(name: str, images) -> np.ndarray:
    """(N, H, W) float images from (N, H, W) or (N, D) with D a perfect square, checked to lie in
    [0, 1]."""
    x = _host(name, images)
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(f"{name}: flat images (N, D) need D a perfect square (64 for 8x8), "
                             f"got shape {x.shape}")
        x = x.reshape(x.shape[0], side, side)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected images of shape (N, H, W) or (N, H*W) with N >= 1, "
                         f"got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numeric images, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: the images hold NaN or Inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name}: pixel values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}] "
                         "(map tanh outputs with (x + 1) / 2, logits with a sigmoid)")
    return np.clip(x, 0.0, 1.0)


def image_grid(images, png_path, nrow: int = 8, title: str | None = None) -> str:
    """A grid of grey images, `nrow` to a row, dark strokes on white.

    `images` is (N, 8, 8) or (N, 64) (any (N, H, W) or (N, H*W)) with values in [0, 1]; or a pair
    ``(originals, reconstructions)`` of the same shape, drawn as a row of originals above the row
    of their reconstructions, `nrow` pairs wide.
    """
    if isinstance(nrow, bool) or not isinstance(nrow, (int, np.integer)) or nrow < 1:
        raise ValueError(f"image_grid: nrow must be a positive integer, got {nrow!r}")
    if isinstance(images, (tuple, list)) and len(images) == 2 and not np.isscalar(images[0]):
        top = _as_images("image_grid (originals)", images[0])
        bottom = _as_images("image_grid (reconstructions)", images[1])
        if top.shape != bottom.shape:
            raise ValueError(f"image_grid: originals and reconstructions must have the same "
                             f"shape, got {top.shape} and {bottom.shape}")
        # Interleave row blocks: originals 0..nrow-1, their reconstructions, originals nrow.., ...
        rows = []
        for start in range(0, len(top), nrow):
            rows.append(top[start:start + nrow])
            rows.append(bottom[start:start + nrow])
        pairs = True
    else:
        x = _as_images("image_grid", images)
        rows = [x[start:start + nrow] for start in range(0, len(x), nrow)]
        pairs = False

    h, w = rows[0].shape[1:]
    ncols = min(nrow, max(len(r) for r in rows))
    pad = 1
    # One canvas with a 1-pixel white border around each image: cheaper and crisper than a subplot
    # per image. 1 - x: ink is dark on white paper.
    canvas = np.ones((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
            canvas[y0:y0 + h, x0:x0 + w] = 1.0 - img
    scale = 0.6 if h <= 16 else 0.04 * h
    fig = Figure(figsize=(max(2.0, ncols * scale + 0.4), max(1.5, len(rows) * scale + 0.6)),
                 layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    if pairs:
        ax.set_yticks([(2 * i + 0.5) * (h + pad) + pad / 2 for i in range(len(rows) // 2)] +
                      [(2 * i + 1.5) * (h + pad) + pad / 2 for i in range(len(rows) // 2)],
                      ["orig."] * (len(rows) // 2) + ["recon."] * (len(rows) // 2),
                      fontsize="small")
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    return _save(fig, png_path)


# ----------------------------------------------------------------------------------------------------
# 2-D views of features

def pca_2d(features: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, 2): the projection on the two leading principal axes (centred SVD)."""
    x = features - features.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    components = vt[:2]
    if components.shape[0] < 2:  # D == 1: a second axis of zeros keeps the plot 2-D
        components = np.concatenate([components, np.zeros_like(components)])
    return x @ components.T


def scatter_2d(features, labels, png_path, method: str = "pca", title: str | None = None,
               seed: int = 0) -> str:
    """Features (N, D) drawn in 2-D by PCA or t-SNE, one colour per class, with a legend.

    `labels` is (N,) integers (e.g. digit classes). t-SNE uses scikit-learn (perplexity
    min(30, (N - 1) / 3), seeded by `seed`); PCA is a centred SVD.
    """
    if method not in ("pca", "tsne"):
        raise ValueError(f"scatter_2d: method must be 'pca' or 'tsne', got {method!r}")
    x = _host("scatter_2d", features)
    y = _host("scatter_2d (labels)", labels)
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 1:
        raise ValueError(f"scatter_2d: features must be (N, D) with N >= 3, got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"scatter_2d: labels must be (N,) = ({x.shape[0]},) to match the "
                         f"features, got shape {y.shape}")
    if y.dtype.kind not in "biu":
        raise TypeError(f"scatter_2d: labels must be integers (class indices), got dtype {y.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("scatter_2d: the features hold NaN or Inf")
    if method == "pca":
        points = pca_2d(x)
    else:
        from sklearn.manifold import TSNE  # slow to import: only when asked
        from threadpoolctl import threadpool_limits  # (a scikit-learn dependency)
        perplexity = min(30.0, (x.shape[0] - 1) / 3.0)
        # One thread: for a few thousand points OpenMP's threads gain little, and on a busy
        # machine (pytest -n, training beside it) their spin-waiting made a 45-point t-SNE take
        # seconds instead of 0.1 s.
        with threadpool_limits(limits=1, user_api="openmp"):
            points = TSNE(n_components=2, perplexity=perplexity, init="pca",
                          random_state=seed).fit_transform(x)

    fig = Figure(figsize=(6.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    classes = np.unique(y)
    # Classes are discrete: matplotlib's colour cycle (C0..C9) and a legend, not a colour bar.
    for c in classes:
        keep = y == c
        ax.scatter(points[keep, 0], points[keep, 1], s=8, label=str(c), alpha=0.8, linewidths=0)
    ax.legend(title="class", fontsize="small", markerscale=2, loc="best",
              ncols=1 if len(classes) <= 10 else 2)
    ax.set_xlabel(f"{method} 1")
    ax.set_ylabel(f"{method} 2")
    ax.set_title(title or f"{method.upper() if method == 'pca' else 't-SNE'} of the features")
    return _save(fig, png_path)


# ----------------------------------------------------------------------------------------------------
# Text

def write_text(samples, path, separator: str = "\n" + "-" * 72 + "\n") -> str:
    """Write text samples (a list of str) to `path`, separated by a rule line; returns the path."""
    if isinstance(samples, str):
        samples = [samples]
    if not isinstance(samples, (list, tuple)) or not all(isinstance(s, str) for s in samples):
        raise TypeError("write_text: samples must be a string or a list of strings, got "
                        f"{type(samples).__name__}")
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(separator.join(samples) + "\n")
    return path
