"""IDX files: the format MNIST, Fashion-MNIST and EMNIST ship in, read from a path the user gives.

An IDX file is a header and then the array, every number big-endian:

    bytes 0-1   0x00 0x00                    (the magic number starts with two zero bytes)
    byte  2     type code                    0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                             0x0D float32, 0x0E float64
    byte  3     ndim                         number of dimensions
    4 * ndim    sizes                        one big-endian int32 per dimension
    the rest    prod(sizes) items            row-major (C order), big-endian

MNIST's training images are ``00 00 08 03`` + (60000, 28, 28) + 47,040,000 uint8 pixels; its labels
``00 00 08 01`` + (60000,) + 60,000 uint8 labels. Files are often gzip-compressed (``.gz``):
``read_idx`` recognises gzip by its own magic bytes, whatever the file is called.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

__all__ = ["read_idx", "write_idx", "load_idx_images"]

# type code -> big-endian dtype of the items in the file
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# native dtype -> type code, for writing
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path) -> bytes:
    """The file's bytes, gunzipped if they start with gzip's magic number."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:  # truncated or corrupt gzip stream
            raise ValueError(f"read_idx: {os.fspath(path)!r} looks gzip-compressed but cannot be "
                             f"decompressed: {e}") from None
    return raw


def read_idx(path) -> np.ndarray:
    """The array stored in the IDX file at `path` (plain or gzip-compressed).

    Returns a new, writable array in native byte order with the file's dtype (uint8 for MNIST)
    and shape (the sizes in the header; a header with 0 dimensions gives a 0-d array).
    Raises FileNotFoundError for a missing file and ValueError for a bad magic number, an unknown
    type code, or a file whose length differs from what its header says.
    """
    name = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"read_idx: {name!r} has {len(raw)} bytes; an IDX header needs at least 4")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"read_idx: {name!r} is not an IDX file: its magic number starts with "
                         f"{raw[:2].hex(' ')}, expected 00 00")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in IDX_DTYPES.items())
        raise ValueError(f"read_idx: {name!r} has unknown IDX type code 0x{code:02X}; "
                         f"known codes: {known}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {name!r} is truncated: its header declares {ndim} dimensions "
                         f"and needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if any(s < 0 for s in shape):
        raise ValueError(f"read_idx: {name!r} declares negative sizes {shape}")
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "longer than its header says"
        raise ValueError(f"read_idx: {name!r} is {what}: shape {shape} of {dtype.name} needs "
                         f"{expected} data bytes after the {header}-byte header, the file has "
                         f"{actual}")
    data = np.frombuffer(raw, dtype=dtype, offset=header)
    # astype to the native byte order makes a writable copy (frombuffer's view is read-only)
    return data.astype(dtype.newbyteorder("=")).reshape(shape)


def write_idx(path, array) -> None:
    """Write `array` to `path` in IDX format (gzip-compressed when `path` ends with ``.gz``).

    The dtype must be one IDX holds: uint8, int8, int16, int32, float32 or float64 (convert
    first, e.g. ``labels.astype(np.uint8)``); anything else is a TypeError.
    """
    a = np.asarray(array)
    code = _IDX_CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: IDX cannot hold dtype {a.dtype}; supported: uint8, int8, "
                        "int16, int32, float32, float64")
    if a.ndim > 255:
        raise ValueError(f"write_idx: IDX holds at most 255 dimensions, got {a.ndim}")
    if any(s > np.iinfo(np.int32).max for s in a.shape):
        raise ValueError(f"write_idx: every size must fit in an int32, got shape {a.shape}")
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">i4").tobytes()
    payload = header + a.astype(IDX_DTYPES[code], copy=False).tobytes(order="C")
    if os.fspath(path).endswith(".gz"):
        payload = gzip.compress(payload)
    with open(path, "wb") as f:
        f.write(payload)


def load_idx_images(images_path, labels_path):
    """(images (N, H*W) float32 in [0, 1], labels (N,) int64) from an MNIST-layout pair of files.

    `images_path` holds uint8 pixels of shape (N, H, W); `labels_path` holds N integer labels.
    Pixels are divided by 255. Raises ValueError when the files do not fit that layout or the
    counts differ.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"load_idx_images: {os.fspath(images_path)!r} holds {images.dtype} of "
                         f"shape {images.shape}; expected uint8 images of shape (N, H, W)")
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise ValueError(f"load_idx_images: {os.fspath(labels_path)!r} holds {labels.dtype} of "
                         f"shape {labels.shape}; expected integer labels of shape (N,)")
    if len(images) != len(labels):
        raise ValueError(f"load_idx_images: {len(images)} images in {os.fspath(images_path)!r} "
                         f"but {len(labels)} labels in {os.fspath(labels_path)!r}")
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    return x, labels.astype(np.int64)
