"""Plots: valid PNG files of sensible sizes, and clear errors for bad inputs."""
import struct
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_pt.train.metrics import MetricsLog
from tinygrad_pt.train.plots import image_grid, loss_curves, pca_2d, scatter_2d, write_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the PNG header, after checking the signature and the IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG file"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def log_path(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(1, 21):
        log.write(step, "train", {"loss": 1.0 / step, "lr": 1e-3}, step * 0.1)
        if step % 5 == 0:
            log.write(step, "eval", {"loss": 1.2 / step, "test_mse": 0.1 / step}, step * 0.1)
    return tmp_path / "metrics.jsonl"


def test_loss_curves_one_panel_per_metric(log_path, tmp_path):
    path = loss_curves(log_path, tmp_path / "curves.png", title="tiny")
    assert path == str(tmp_path / "curves.png")
    w, h = png_size(path)
    # Three metrics (loss, lr, test_mse): one row of three 420-pixel panels.
    assert (w, h) == (1260, 320)


def test_loss_curves_wraps_panels_and_skips_nulls(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    for step in range(1, 5):
        log.write(step, "train", {f"m{i}": (float("nan") if step == 2 else step) for i in range(4)},
                  0)
    w, h = png_size(loss_curves(tmp_path / "m.jsonl", tmp_path / "c.png"))
    assert (w, h) == (1260, 640)  # four panels: two rows of three


def test_loss_curves_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such metrics log"):
        loss_curves(tmp_path / "missing.jsonl", tmp_path / "c.png")
    MetricsLog(tmp_path / "empty.jsonl")
    with pytest.raises(ValueError, match="holds no metrics to plot"):
        loss_curves(tmp_path / "empty.jsonl", tmp_path / "c.png")


@pytest.mark.parametrize("shape", [(12, 8, 8), (12, 64), (3, 8, 8), (5, 28, 28)])
def test_image_grid_accepts_square_and_flat_images(tmp_path, shape):
    images = np.random.default_rng(0).random(shape)
    w, h = png_size(image_grid(images, tmp_path / "g.png", nrow=4, title="samples"))
    assert w >= 100 and h >= 100


def test_image_grid_of_pairs_is_twice_as_tall(tmp_path):
    x = np.random.default_rng(0).random((16, 64)).astype(np.float32)
    _, h_single = png_size(image_grid(x, tmp_path / "a.png", nrow=8))
    _, h_pairs = png_size(image_grid((x, 1 - x), tmp_path / "b.png", nrow=8))
    assert h_pairs > 1.6 * h_single


def test_image_grid_accepts_tensors(tmp_path):
    import tinygrad_pt as tg
    png_size(image_grid(tg.rand(4, 8, 8), tmp_path / "t.png", nrow=2))


@pytest.mark.parametrize("images, kw, error, match", [
    (np.full((4, 64), 1.5), {}, ValueError, r"must lie in \[0, 1\], got \[1.5, 1.5\]"),
    (np.full((4, 64), -1.0), {}, ValueError, r"\(x \+ 1\) / 2"),
    (np.full((4, 63), 0.5), {}, ValueError, "D a perfect square"),
    (np.zeros((0, 8, 8)), {}, ValueError, r"N >= 1, got shape \(0, 8, 8\)"),
    (np.zeros((2, 2, 8, 8)), {}, ValueError, r"got shape \(2, 2, 8, 8\)"),
    (np.full((4, 64), np.nan), {}, ValueError, "NaN or Inf"),
    (np.full((4, 64), "a"), {}, TypeError, "numeric images"),
    (np.zeros((4, 64)), {"nrow": 0}, ValueError, "nrow must be a positive integer"),
    ((np.zeros((4, 64)), np.zeros((3, 64))), {}, ValueError, "same shape"),
])
def test_image_grid_bad_inputs(tmp_path, images, kw, error, match):
    with pytest.raises(error, match=match):
        image_grid(images, tmp_path / "g.png", **kw)


def test_plots_need_a_png_path(tmp_path):
    with pytest.raises(ValueError, match="must end in .png"):
        image_grid(np.zeros((2, 64)), tmp_path / "g.jpg")


def _clusters(n_per_class=15, dim=6, classes=3):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, size=(classes, dim))
    x = np.concatenate([c + rng.normal(0, 0.3, size=(n_per_class, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(classes), n_per_class)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_scatter_2d(tmp_path, method):
    x, y = _clusters()
    w, h = png_size(scatter_2d(x, y, tmp_path / f"{method}.png", method=method))
    assert (w, h) == (600, 500)


def test_pca_2d_matches_an_independent_eigendecomposition():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4)) * np.array([5.0, 2.0, 0.5, 0.1])
    got = pca_2d(x)
    # Expected: the covariance's two leading eigenvectors (eigh, not an SVD), up to sign.
    centred = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    expected = centred @ vectors[:, np.argsort(values)[::-1][:2]]
    for k in range(2):
        sign = np.sign(got[:, k] @ expected[:, k])
        np.testing.assert_allclose(got[:, k], sign * expected[:, k], atol=1e-9)


@pytest.mark.parametrize("features, labels, kw, error, match", [
    (np.zeros((10, 3)), np.zeros(9, int), {}, ValueError, r"labels must be \(N,\) = \(10,\)"),
    (np.zeros((2, 3)), np.zeros(2, int), {}, ValueError, "N >= 3"),
    (np.zeros(10), np.zeros(10, int), {}, ValueError, r"\(N, D\)"),
    (np.zeros((10, 3)), np.zeros(10), {}, TypeError, "labels must be integers"),
    (np.full((10, 3), np.inf), np.zeros(10, int), {}, ValueError, "NaN or Inf"),
    (np.zeros((10, 3)), np.zeros(10, int), {"method": "umap"}, ValueError, "'pca' or 'tsne'"),
])
def test_scatter_2d_bad_inputs(tmp_path, features, labels, kw, error, match):
    with pytest.raises(error, match=match):
        scatter_2d(features, labels, tmp_path / "s.png", **kw)


def test_write_text(tmp_path):
    path = write_text(["def f():\n    return 1", "x = 2"], tmp_path / "s.txt")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("def f():\n    return 1\n----") and text.endswith("x = 2\n")
    write_text("one sample", tmp_path / "one.txt")
    assert open(tmp_path / "one.txt").read() == "one sample\n"
    with pytest.raises(TypeError, match="a string or a list of strings"):
        write_text([b"bytes"], tmp_path / "s.txt")


def test_importing_plots_leaves_matplotlib_alone():
    # (matplotlib.get_backend() itself imports pyplot: read the raw rcParams entry instead.)
    code = ("import matplotlib, sys; raw = lambda: dict.__getitem__(matplotlib.rcParams, "
            "'backend'); before = raw(); "
            "import tinygrad_pt.train.plots; "
            "assert raw() == before, (before, raw()); "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
