"""Augmentations: shapes and dtypes kept, determinism given the generator, values in [0, 1], each
function's specific effect checked against a plain loop or a known answer, and bad arguments."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_pt.data import augment as A

RANDOM_FNS = {
    "random_shift": A.random_shift,
    "random_resized_crop": A.random_resized_crop,
    "gaussian_noise": A.gaussian_noise,
    "random_erasing": A.random_erasing,
    "mask_pixels": A.mask_pixels,
    "view": lambda x, rng: A.two_views(x, rng)[0],
}


def rng(seed=0):
    return np.random.default_rng(seed)


@st.composite
def image_batches(draw):
    """(N, 64), (N, 8, 8), (N, 36) or (N, 5, 7) images in [0, 1], float32 or float64."""
    n = draw(st.integers(0, 6))
    shape = draw(st.sampled_from([(n, 64), (n, 8, 8), (n, 36), (n, 5, 7)]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=32)))


@pytest.mark.parametrize("name", list(RANDOM_FNS))
@given(x=image_batches(), seed=st.integers(0, 2**32 - 1))
def test_shape_dtype_range_determinism_and_input_untouched(name, x, seed):
    fn = RANDOM_FNS[name]
    before = x.copy()
    out = fn(x, rng(seed))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.all((out >= 0) & (out <= 1))
    np.testing.assert_array_equal(x, before)              # a new array; the input is unchanged
    np.testing.assert_array_equal(fn(x, rng(seed)), out)  # same generator state, same result


@pytest.mark.parametrize("name", list(RANDOM_FNS))
def test_different_seeds_give_different_results(name):
    x = np.random.default_rng(0).random((32, 64)).astype(np.float32)
    fn = RANDOM_FNS[name]
    assert not np.array_equal(fn(x, rng(1)), fn(x, rng(2)))


# -- shift ---------------------------------------------------------------------------------------
def shift_by_loop(img, dy, dx):
    h, w = img.shape
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[i, j] = img[i - dy, j - dx]
    return out


def test_shift_moves_a_known_pixel():
    x = np.zeros((3, 8, 8), dtype=np.float32)
    x[:, 3, 4] = 1.0
    out = A.shift(x, np.array([2, 0, -3]), np.array([-1, 3, 0]))
    for n, (i, j) in enumerate([(5, 3), (3, 7), (0, 4)]):
        assert out[n, i, j] == 1.0 and out[n].sum() == 1.0
    flat = A.shift(x.reshape(3, 64), 1, 1)   # scalar offsets, flat layout
    assert flat.shape == (3, 64) and flat[0, 4 * 8 + 5] == 1.0
    gone = A.shift(x, 5, 0)                  # shifted out of the image: all zero
    assert not gone.any()


@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)),
                    elements=st.floats(0, 1)),
       data=st.data())
def test_shift_matches_a_loop(x, data):
    n = x.shape[0]
    dy = np.array(data.draw(st.lists(st.integers(-7, 7), min_size=n, max_size=n)))
    dx = np.array(data.draw(st.lists(st.integers(-7, 7), min_size=n, max_size=n)))
    out = A.shift(x, dy, dx)
    for k in range(n):
        np.testing.assert_array_equal(out[k], shift_by_loop(x[k], dy[k], dx[k]))


def test_random_shift_uses_every_offset_within_max_shift():
    x = np.zeros((400, 8, 8), dtype=np.float32)
    x[:, 4, 4] = 1.0
    out = A.random_shift(x, rng(0), max_shift=1)
    seen = set()
    for img in out:
        (i,), (j,) = np.nonzero(img.any(axis=1))[0], np.nonzero(img.any(axis=0))[0]
        assert img.sum() == 1.0 and abs(i - 4) <= 1 and abs(j - 4) <= 1
        seen.add((i - 4, j - 4))
    assert seen == {(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    np.testing.assert_array_equal(A.random_shift(x, rng(0), max_shift=0), x)


# -- crop and resize -----------------------------------------------------------------------------
def bilinear_by_loop(img, top, left, bh, bw):
    """Per-pixel bilinear sampling, written out with the four neighbours and their areas."""
    h, w = img.shape
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            y = min(max(top + (i + 0.5) * bh / h - 0.5, 0.0), h - 1.0)
            x = min(max(left + (j + 0.5) * bw / w - 0.5, 0.0), w - 1.0)
            total = 0.0
            for yy in range(h):
                for xx in range(w):
                    # tent weights: 1 - distance, for the (up to) four pixels within 1 of (y, x)
                    wgt = max(0.0, 1 - abs(y - yy)) * max(0.0, 1 - abs(x - xx))
                    total += wgt * img[yy, xx]
            out[i, j] = total
    return out


@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(3, 8, 8), (2, 5, 7)]))
def test_resized_crop_matches_a_loop(seed, shape):
    g = np.random.default_rng(seed)
    x = g.random(shape)
    n, h, w = shape
    bh, bw = g.uniform(0.5, h, n), g.uniform(0.5, w, n)
    boxes = np.stack([g.uniform(0, 1, n) * (h - bh), g.uniform(0, 1, n) * (w - bw), bh, bw], 1)
    out = A.resized_crop(x, boxes)
    for k in range(n):
        np.testing.assert_allclose(out[k], bilinear_by_loop(x[k], *boxes[k]), rtol=1e-12,
                                   atol=1e-12)


def test_resized_crop_of_a_linear_image_samples_the_box_exactly():
    # Bilinear interpolation reproduces a linear function: out(i, j) = f(source point of (i, j)).
    i, j = np.mgrid[0:8, 0:8].astype(np.float64)
    img = 0.3 * i - 0.2 * j + 2.0
    top, left, bh, bw = 1.5, 2.0, 4.0, 3.0   # all source points inside the image, no clamping
    out = A.resized_crop(img[None], np.array([[top, left, bh, bw]]))[0]
    expected = 0.3 * (top + (i + 0.5) * bh / 8 - 0.5) - 0.2 * (left + (j + 0.5) * bw / 8 - 0.5) + 2
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_full_box_is_the_identity():
    x = np.random.default_rng(0).random((4, 64)).astype(np.float32)
    np.testing.assert_array_equal(A.resized_crop(x, np.tile([0.0, 0.0, 8.0, 8.0], (4, 1))), x)
    # area 1 fits only as the whole image, whatever aspect ratio is drawn
    np.testing.assert_array_equal(A.random_resized_crop(x, rng(0), scale=(1, 1)), x)


def test_random_resized_crop_zooms_by_the_drawn_scale():
    # A ramp f = row index: in a box of side 4 (area 1/4, square) rows are 4/8 = 0.5 apart.
    ramp = np.repeat(np.arange(8.0)[None, :, None], 8, axis=2).repeat(50, axis=0)   # (50, 8, 8)
    out = A.random_resized_crop(ramp, rng(3), scale=(0.25, 0.25), ratio=(1, 1))
    np.testing.assert_allclose(out[:, 4] - out[:, 3], 0.5, atol=1e-12)
    tops = out[:, 3, 0] - 1.25           # row 3 samples top + 3.5 * 0.5 - 0.5
    assert tops.min() >= -1e-12 and tops.max() <= 4 + 1e-12 and np.ptp(tops) > 2  # positions vary


def test_random_resized_crop_keeps_the_drawn_area_whatever_the_aspect_ratio():
    # f = row + 100 * col: one row down adds height/H, one column right adds 100 * width/W.
    i, j = np.mgrid[0:8, 0:8].astype(np.float64)
    img = np.repeat((i + 100 * j)[None], 200, axis=0)
    out = A.random_resized_crop(img, rng(0), scale=(0.25, 0.25), ratio=(0.5, 2.0))
    rel_h = out[:, 4, 3] - out[:, 3, 3]                  # height / H
    rel_w = (out[:, 3, 4] - out[:, 3, 3]) / 100          # width / W
    np.testing.assert_allclose(rel_h * rel_w, 0.25, rtol=1e-9)
    np.testing.assert_allclose(np.log(rel_w / rel_h).min(), np.log(0.5), atol=0.05)
    np.testing.assert_allclose(np.log(rel_w / rel_h).max(), np.log(2.0), atol=0.05)


# -- noise ---------------------------------------------------------------------------------------
def test_gaussian_noise_statistics_and_clipping():
    x = np.full((200, 64), 0.5, dtype=np.float32)
    out = A.gaussian_noise(x, rng(0), std=0.1)
    noise = out - x
    assert out.dtype == np.float32
    assert abs(noise.mean()) < 0.005 and abs(noise.std() - 0.1) < 0.005
    np.testing.assert_array_equal(A.gaussian_noise(x, rng(0), std=0.0), x)
    loud = A.gaussian_noise(x, rng(0), std=10.0)
    assert loud.min() == 0.0 and loud.max() == 1.0   # clipped, both ends reached


# -- erasing -------------------------------------------------------------------------------------
def test_random_erasing_zeros_exactly_one_rectangle_of_the_stated_size():
    x = np.ones((500, 8, 8))
    out = A.random_erasing(x, rng(0), p=1.0, size=(2, 4))
    sizes, corners = set(), set()
    for img in out:
        rows, cols = np.nonzero(img == 0)
        r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
        hgt, wid = r1 - r0 + 1, c1 - c0 + 1
        assert len(rows) == hgt * wid                       # the zeros fill their bounding box
        assert 2 <= hgt <= 4 and 2 <= wid <= 4
        assert set(np.unique(img)) == {0.0, 1.0}
        sizes.add((hgt, wid))
        corners.add((r0, c0, r1, c1))
    assert sizes == {(a, b) for a in (2, 3, 4) for b in (2, 3, 4)}
    assert any(r0 == 0 and c0 == 0 for r0, c0, _, _ in corners)    # reaches the top-left corner
    assert any(r1 == 7 and c1 == 7 for _, _, r1, c1 in corners)    # and the bottom-right one


def test_random_erasing_probability():
    x = np.ones((2000, 64), dtype=np.float32)
    erased = (A.random_erasing(x, rng(0), p=0.3) == 0).any(axis=1).mean()
    assert 0.26 < erased < 0.34
    np.testing.assert_array_equal(A.random_erasing(x, rng(0), p=0.0), x)
    fixed = A.random_erasing(x, rng(0), p=1.0, size=(3, 3))
    assert ((fixed == 0).sum(axis=1) == 9).all()


# -- masking -------------------------------------------------------------------------------------
@given(fraction=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_mask_pixels_zeros_the_stated_fraction(fraction, seed):
    x = np.ones((5, 8, 8), dtype=np.float32)
    out, mask = A.mask_pixels(x, rng(seed), fraction=fraction, return_mask=True)
    k = round(fraction * 64)
    assert mask.shape == x.shape and mask.dtype == bool
    assert ((out == 0).sum(axis=(1, 2)) == k).all()
    np.testing.assert_array_equal(out == 0, mask)


def test_mask_pixels_chooses_pixels_uniformly():
    x = np.ones((4000, 64))
    zeroed = (A.mask_pixels(x, rng(0), fraction=0.25) == 0).mean(axis=0)   # per-pixel rate
    assert zeroed.min() > 0.2 and zeroed.max() < 0.3
    assert len({row.tobytes() for row in (A.mask_pixels(x[:50], rng(1)) == 0)}) > 45


# -- two views -----------------------------------------------------------------------------------
def test_two_views_are_two_different_augmentations():
    x = np.random.default_rng(0).random((16, 8, 8)).astype(np.float32)
    v1, v2 = A.two_views(x, rng(0))
    assert v1.shape == v2.shape == x.shape and v1.dtype == v2.dtype == np.float32
    assert not np.array_equal(v1, v2) and not np.array_equal(v1, x)
    w1, w2 = A.two_views(x, rng(0))
    np.testing.assert_array_equal(v1, w1)
    np.testing.assert_array_equal(v2, w2)
    # with every augmentation off, both views are the image itself
    p1, p2 = A.two_views(x, rng(0), scale=(1, 1), max_shift=0, noise_std=0.0, erase_p=0.0)
    np.testing.assert_allclose(p1, x, atol=1e-6)
    np.testing.assert_allclose(p2, x, atol=1e-6)


# -- errors --------------------------------------------------------------------------------------
X = np.zeros((2, 64), dtype=np.float32)


@pytest.mark.parametrize("call, match", [
    (lambda: A.random_shift(X, rng(), max_shift=-1), r"max_shift must be an int in \[0, 7\].*-1"),
    (lambda: A.random_shift(X, rng(), max_shift=8), r"max_shift must be an int in \[0, 7\].*8"),
    (lambda: A.random_shift(X, rng(), max_shift=1.5), r"max_shift .*1.5"),
    (lambda: A.random_resized_crop(X, rng(), scale=(0.5, 1.5)),
     r"scale must be a pair.*\(0.5, 1.5\)"),
    (lambda: A.random_resized_crop(X, rng(), scale=(0.9, 0.5)),
     r"scale must be a pair.*low <= high"),
    (lambda: A.random_resized_crop(X, rng(), scale=0.5), r"scale must be a pair"),
    (lambda: A.random_resized_crop(X, rng(), ratio=(0, 1)), r"ratio must be a pair"),
    (lambda: A.gaussian_noise(X, rng(), std=-0.1), r"std must be a finite number >= 0, got -0.1"),
    (lambda: A.random_erasing(X, rng(), p=1.5), r"p must be a probability in \[0, 1\], got 1.5"),
    (lambda: A.random_erasing(X, rng(), size=(0, 2)), r"size must be a pair.*integers.*1 <= low"),
    (lambda: A.random_erasing(X, rng(), size=(2, 9)), r"size must be a pair.*<= 8, got \(2, 9\)"),
    (lambda: A.random_erasing(X, rng(), size=(2.0, 3.0)),
     r"size must be a pair \(low, high\) of int"),
    (lambda: A.mask_pixels(X, rng(), fraction=1.2), r"fraction must be in \[0, 1\], got 1.2"),
    (lambda: A.gaussian_noise(np.zeros((2, 63), np.float32), rng()),
     r"square number of pixels, got 63"),
    (lambda: A.mask_pixels(np.zeros(64, np.float32), rng()),
     r"\(N, H\*W\) or \(N, H, W\).*\(64,\)"),
    (lambda: A.shift(X, np.array([1, 2, 3]), 0), r"dy and dx must be scalars or have shape \(2,\)"),
    (lambda: A.resized_crop(X, np.zeros((2, 3))), r"boxes must have shape \(2, 4\).*\(2, 3\)"),
    (lambda: A.resized_crop(X, np.full((2, 4), np.nan)), r"boxes must be finite"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: A.random_shift(np.zeros((2, 64), np.uint8), rng()),
     r"random_shift: expected floating-point images, got dtype uint8"),
    (lambda: A.gaussian_noise(X, 0), r"rng must be a numpy.random.Generator.*got int"),
    (lambda: A.two_views(X, np.random.RandomState(0)), r"two_views: rng must be.*RandomState"),
    (lambda: A.shift(X, 0.5, 0), r"offsets must be integers"),
])
def test_wrong_types_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
