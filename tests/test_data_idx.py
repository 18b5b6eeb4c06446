"""IDX files (MNIST layout): write_idx / read_idx round trips, files built byte by byte with
struct as an independent oracle, gzip, load_idx_images, and the errors for bad files."""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_pt.data import load_idx_images, read_idx, write_idx

# dtype -> (IDX type code, struct format character for one big-endian item)
CODES = {np.uint8: (0x08, "B"), np.int8: (0x09, "b"), np.int16: (0x0B, "h"),
         np.int32: (0x0C, "i"), np.float32: (0x0D, "f"), np.float64: (0x0E, "d")}


def idx_bytes_by_hand(array) -> bytes:
    """The IDX encoding of `array`, written with struct, item by item (no NumPy byte tricks)."""
    code, fmt = CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += b"".join(struct.pack(">i", s) for s in array.shape)
    return header + b"".join(struct.pack(">" + fmt, v) for v in array.ravel().tolist())


arrays = st.sampled_from(list(CODES)).flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    elements=hnp.from_dtype(np.dtype(dt), allow_nan=False)))


@given(array=arrays)
def test_write_idx_writes_the_bytes_struct_writes(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    write_idx(path, array)
    assert path.read_bytes() == idx_bytes_by_hand(array)


@given(array=arrays, gz=st.booleans())
def test_read_idx_reads_files_written_by_hand(tmp_path_factory, array, gz):
    raw = idx_bytes_by_hand(array)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.dtype.byteorder in ("=", "|")  # native order, ready for arithmetic
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # a writable copy, not a read-only view of the file's bytes


@given(array=arrays)
def test_round_trip_through_gzip(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("idx") / "a-ubyte.gz"
    write_idx(path, array)
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # really compressed
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_known_file_mnist_header(tmp_path):
    # The first bytes of MNIST's train-images file: magic 0x00000803, then 60000, 28, 28.
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[1, 27, 0] = 255
    write_idx(tmp_path / "img", images)
    raw = (tmp_path / "img").read_bytes()
    assert raw[:16] == bytes.fromhex("00000803 00000002 0000001c 0000001c")
    assert len(raw) == 16 + 2 * 28 * 28
    assert raw[16 + 784 + 27 * 28] == 255


def test_big_endian_and_non_contiguous_arrays_are_written_as_values(tmp_path):
    a = np.arange(12, dtype=">i4").reshape(3, 4)
    write_idx(tmp_path / "be", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "be"), a)
    b = np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2].T
    write_idx(tmp_path / "nc", b)
    np.testing.assert_array_equal(read_idx(tmp_path / "nc"), b)


def test_load_idx_images_scales_and_counts(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "x").write_bytes(idx_bytes_by_hand(images))
    (tmp_path / "y").write_bytes(idx_bytes_by_hand(labels))
    x, y = load_idx_images(tmp_path / "x", tmp_path / "y")
    assert x.dtype == np.float32 and x.shape == (5, 12)
    assert y.dtype == np.int64 and y.tolist() == [3, 1, 4, 1, 5]
    assert x[0, 0] == 0.0 and x[0, 1] == 1.0
    for n in range(5):  # pixel by pixel: row-major flattening, divided by 255
        for i in range(3):
            for j in range(4):
                assert x[n, i * 4 + j] == pytest.approx(images[n, i, j] / 255.0, abs=1e-7)


# -- errors --------------------------------------------------------------------------------------
def test_bad_magic_is_rejected(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">i", 1) + b"\x00")
    with pytest.raises(ValueError, match=r"not an IDX file.*01 00.*expected 00 00"):
        read_idx(path)


def test_unknown_type_code_is_rejected(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x0a\x01" + struct.pack(">i", 1) + b"\x00")
    with pytest.raises(ValueError, match=r"unknown IDX type code 0x0A.*0x08 \(uint8\)"):
        read_idx(path)


def test_truncated_data_names_the_path_and_both_sizes(tmp_path):
    path = tmp_path / "short-images"
    full = idx_bytes_by_hand(np.zeros((3, 2, 2), dtype=np.int16))
    path.write_bytes(full[:-5])  # 24 data bytes expected, 19 present
    with pytest.raises(ValueError, match=r"short-images.*truncated.*needs 24 data bytes.*has 19"):
        read_idx(path)


def test_truncated_header_and_tiny_file(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">i", 5))  # 3 dims declared, 1 size given
    with pytest.raises(ValueError, match=r"truncated.*3 dimensions.*needs 16 bytes.*has 8"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match=r"has 2 bytes.*at least 4"):
        read_idx(path)


def test_trailing_bytes_are_rejected(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes_by_hand(np.zeros(4, dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(ValueError, match=r"longer than its header says.*needs 4.*has 6"):
        read_idx(path)


def test_corrupt_gzip_is_a_value_error(tmp_path):
    path = tmp_path / "c.gz"
    path.write_bytes(gzip.compress(idx_bytes_by_hand(np.arange(100, dtype=np.uint8)))[:-10])
    with pytest.raises(ValueError, match=r"gzip-compressed but cannot be decompressed"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def test_write_idx_rejects_dtypes_idx_cannot_hold(tmp_path):
    for bad in (np.zeros(2, dtype=np.int64), np.zeros(2, dtype=bool), np.zeros(2, np.float16)):
        with pytest.raises(TypeError, match=rf"cannot hold dtype {bad.dtype}.*uint8"):
            write_idx(tmp_path / "x", bad)


def test_load_idx_images_checks_layout_and_counts(tmp_path):
    write_idx(tmp_path / "x", np.zeros((4, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "y3", np.zeros(3, dtype=np.uint8))
    write_idx(tmp_path / "flat", np.zeros((4, 4), dtype=np.uint8))
    write_idx(tmp_path / "yf", np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"4 images in .*x' but 3 labels"):
        load_idx_images(tmp_path / "x", tmp_path / "y3")
    with pytest.raises(ValueError,
                       match=r"shape \(4, 4\); expected uint8 images of shape \(N, H, W\)"):
        load_idx_images(tmp_path / "flat", tmp_path / "y3")
    with pytest.raises(ValueError, match=r"holds float32.*expected integer labels"):
        load_idx_images(tmp_path / "x", tmp_path / "yf")
