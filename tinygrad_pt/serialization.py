"""tg.save / tg.load: dicts of tensors as safetensors files, written atomically. No pickle.

A safetensors file is a JSON header (names, dtypes, shapes, offsets, an optional str -> str
metadata dict) followed by the raw little-endian bytes: it holds arrays and nothing else, so
loading a file can never run code. Files go through the ``safetensors`` package's NumPy API; cuda
tensors are copied to the host to be written.

Atomic write: the bytes go to a temporary file in the target's directory, which is flushed and
fsync'ed, then renamed over the target with ``os.replace`` (atomic on POSIX and Windows). A crash
or an exception mid-write leaves the old file as it was, and the temporary file is removed.
"""
from __future__ import annotations

import os
import secrets

import numpy as np
import safetensors
import safetensors.numpy

from .backend import canonical_device, is_cupy_array, to_device
from .tensor import Tensor

__all__ = ["save", "load", "load_metadata"]


def _host_array(key, value) -> np.ndarray:
    """The value of `key` as a C-contiguous little-endian NumPy array, or a TypeError."""
    if isinstance(value, Tensor):
        value = value.data
    if is_cupy_array(value):
        value = value.get()  # device -> host copy: safetensors writes from host memory
    if not isinstance(value, np.ndarray):
        raise TypeError(f"save: the value of {key!r} is a {type(value).__name__}; only Tensors and "
                        "arrays can be saved (wrap numbers with np.asarray)")
    if value.dtype.kind not in "biuf":
        raise TypeError(f"save: the value of {key!r} has dtype {value.dtype}; safetensors holds "
                        "bool, integer and floating-point arrays only")
    if value.dtype.byteorder == ">":
        value = value.astype(value.dtype.newbyteorder("<"))
    # safetensors copies the raw buffer: a strided view (x.T) must be laid out first.
    # (Not np.ascontiguousarray: it turns a 0-d array into shape (1,).)
    return value if value.flags.c_contiguous else value.copy(order="C")


def save(state_dict: dict, path, metadata: dict | None = None) -> None:
    """Write `state_dict` ({str: Tensor or array}) to `path` as a safetensors file, atomically.

    `metadata` is an optional {str: str} dict stored in the header (``load_metadata`` reads it).
    Raises TypeError for a non-string key or a value that is not a Tensor/array.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a dict of name -> Tensor, got {type(state_dict).__name__}")
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be strings, got {key!r} ({type(key).__name__})")
        arrays[key] = _host_array(key, value)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("save: metadata must be a dict of str -> str")
    data = safetensors.numpy.save(arrays, metadata=metadata)

    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(2, "save: the directory to write into does not exist", directory)
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never clobber another writer's temporary; mode 0o666 lets the umask decide, as for
    # any new file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_readable(op: str, path) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, f"{op}: no such file", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, f"{op}: expected a safetensors file, got a directory", path)
    return path


def load(path, device="cpu") -> dict:
    """Read a safetensors file into {name: Tensor} on `device` (requires_grad False).

    Raises FileNotFoundError for a missing path and ValueError, naming the path, for a file that
    is not a valid safetensors file (truncated, garbage, another format).
    """
    path = _check_readable("load", path)
    device = canonical_device(device)
    try:
        arrays = safetensors.numpy.load_file(path)
    except safetensors.SafetensorError as e:
        raise ValueError(f"load: {path!r} is not a valid safetensors file ({e})") from None
    out = {}
    for key, arr in arrays.items():
        if not arr.flags.writeable:
            arr = arr.copy()  # optimizers and load_state_dict write into loaded arrays
        out[key] = Tensor._make(to_device(arr, device))
    return out


def load_metadata(path) -> dict:
    """The {str: str} metadata stored in a safetensors file's header ({} if none)."""
    path = _check_readable("load_metadata", path)
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            return dict(f.metadata() or {})
    except safetensors.SafetensorError as e:
        raise ValueError(f"load_metadata: {path!r} is not a valid safetensors file ({e})") from None
