"""tg.save / tg.load: dicts of tensors as safetensors files, written atomically. No pickle.

A safetensors file is a JSON header (names, dtypes, shapes, offsets, an optional str -> str
metadata dict) followed by the raw little-endian bytes: it holds arrays and nothing else, so
loading a file can never run code. Files go through the ``safetensors`` package's NumPy API; cuda
tensors are copied to the host to be written.

Atomic write: the bytes go to a temporary file in the target's directory, which is flushed and
fsync'ed, then renamed over the target with ``os.replace`` (atomic on POSIX and Windows). A crash
or an exception mid-write leaves the old file as it was; an exception removes the temporary file,
and the temporary a kill left behind (its name holds the writer's pid) goes at the next save of
the same file.

Reading opens regular files only (a named pipe would block forever), and widens bfloat16 tensors
to float32 (NumPy has no bfloat16); fp8 is refused by name.
"""
from __future__ import annotations

import json
import os
import secrets
import stat
import struct
import warnings

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
    _remove_stale_temporaries(directory, name)
    # The writer's pid in the name: a later save can tell a dead writer's leftover from a live one.
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
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


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Delete the temporaries of earlier saves of `name` whose writing process is gone (a kill
    mid-save leaves one, as large as the checkpoint); those of a live writer stay."""
    prefix = f".{name}."
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix):-len(".tmp")].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, entry))
            except OSError:
                pass  # another process cleaned it first, or it is not ours to remove


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


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
    """`path`, if it names a regular file (symlinks followed); a clear error otherwise.

    Only regular files: opening a named pipe would wait forever for a writer, and a device file
    gives an OS error that says nothing of checkpoints.
    """
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(2, f"{op}: no such file", path) from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, f"{op}: expected a safetensors file, got a directory", path)
    if not stat.S_ISREG(mode):
        kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
        raise ValueError(f"{op}: {path!r} is {kind}, not a regular file; a checkpoint is read "
                         "from a regular file only")
    return path


# Dtypes that NumPy has no type for. bfloat16 keeps float32's exponent with a 7-bit mantissa, so
# widening it is exact: its 16 bits are the top half of the float32 with the same value.
_BF16 = "BF16"
_FP8 = ("F8_E4M3", "F8_E5M2", "F8_E4M3FN", "F8_E5M2FNUZ", "F8_E4M3FNUZ", "F8_E8M0")


def _header(path) -> tuple:
    """(header dict, offset of the data) of a file that safetensors has already validated."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def _load_with_bf16(path) -> dict:
    """The arrays of a file holding bfloat16 tensors: those widened to float32, the rest as usual.

    fp8 is refused: its formats differ (E4M3, E5M2, scaled variants) and a silent guess at the
    scale would give wrong weights."""
    with safetensors.safe_open(path, framework="numpy") as f:  # validates the file's layout
        dtypes = {key: f.get_slice(key).get_dtype() for key in f.keys()}
    fp8 = sorted(k for k, d in dtypes.items() if d.upper() in _FP8 or d.upper().startswith("F8"))
    if fp8:
        raise ValueError(f"load: {path!r} holds fp8 tensors ({', '.join(fp8[:5])}"
                         f"{', ...' if len(fp8) > 5 else ''}); fp8 is not supported: convert the "
                         "file to float16, bfloat16 or float32 first")
    header, start = _header(path)
    out = {}
    with safetensors.safe_open(path, framework="numpy") as f:
        for key, dtype in dtypes.items():
            if dtype != _BF16:
                out[key] = f.get_tensor(key)
                continue
            begin, end = header[key]["data_offsets"]
            raw = np.fromfile(path, dtype="<u2", count=(end - begin) // 2, offset=start + begin)
            widened = (raw.astype(np.uint32) << 16).view(np.float32)
            out[key] = widened.reshape(header[key]["shape"])
    widened_keys = sorted(k for k, d in dtypes.items() if d == _BF16)
    warnings.warn(f"load: {len(widened_keys)} bfloat16 tensor(s) in {path!r} were loaded as "
                  f"float32 (exactly: bfloat16 is float32 with fewer mantissa bits), e.g. "
                  f"{widened_keys[0]!r}", stacklevel=3)
    return out


def load(path, device="cpu") -> dict:
    """Read a safetensors file into {name: Tensor} on `device` (requires_grad False).

    Raises FileNotFoundError for a missing path and ValueError, naming the path, for a file that
    is not a valid safetensors file (truncated, garbage, another format) or not a regular file.
    bfloat16 tensors (common in files from PyTorch and model hubs) are widened to float32, with a
    warning; fp8 tensors are refused.
    """
    path = _check_readable("load", path)
    device = canonical_device(device)
    try:
        arrays = safetensors.numpy.load_file(path)
    except safetensors.SafetensorError as e:
        raise ValueError(f"load: {path!r} is not a valid safetensors file ({e})") from None
    except (TypeError, AttributeError):  # NumPy has no type for it: bfloat16, fp8
        try:
            arrays = _load_with_bf16(path)
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
