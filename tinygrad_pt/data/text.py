"""Bytes of text for a byte-level language model: any file or folder, by default the Python
standard library's own source (present wherever Python is, so it needs no download).

The vocabulary is the 256 byte values, so there is no tokenizer to train and nothing is ever out
of vocabulary. A folder is split into train and validation *by file* (a seeded shuffle of the
sorted file list), so no file's text is seen in both; the files of each split are concatenated
with a newline between them. A single file is split by bytes instead: the first
``1 - val_fraction`` of it trains, the rest validates.

Batches are random windows, not an epoch iterator: ``batch`` draws B start positions from the
caller's NumPy Generator and returns B windows of T + 1 bytes; inputs are ``w[:, :-1]``, targets
``w[:, 1:]``.
"""
from __future__ import annotations

import fnmatch
import math
import os
import sysconfig

import numpy as np

__all__ = ["ByteCorpus", "stdlib_files"]

VOCAB_SIZE = 256
SEPARATOR = b"\n"
# Folders under the standard library that are not the standard library (installed packages) or
# not source (bytecode caches).
_NOT_STDLIB = {"site-packages", "dist-packages", "__pycache__"}


def _list_files(root: str, pattern: str, skip_dirs=frozenset()) -> list:
    """Sorted paths of the non-empty regular files under `root` whose names match `pattern`,
    skipping hidden files and folders (a leading dot) and folders named in `skip_dirs`."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in skip_dirs]
        for name in names:
            full = os.path.join(folder, name)
            if (not name.startswith(".") and fnmatch.fnmatch(name, pattern)
                    and os.path.isfile(full) and os.path.getsize(full) > 0):
                found.append(full)
    return sorted(found)


def stdlib_files(pattern: str = "*.py") -> list:
    """Sorted paths of the standard library's files matching `pattern` (default: its Python
    source), installed packages and bytecode caches left out."""
    return _list_files(sysconfig.get_paths()["stdlib"], pattern, skip_dirs=_NOT_STDLIB)


def _read_capped(files: list, budget: int | None):
    """Concatenate `files` (newline between them), reading only as many as `budget` bytes need.

    Returns (uint8 array of at most `budget` bytes, the files actually read)."""
    chunks, used = [], 0
    for path in files:
        if budget is not None and used >= budget:
            break
        with open(path, "rb") as f:
            chunks.append(f.read())
        used += len(chunks[-1]) + len(SEPARATOR)
    data = SEPARATOR.join(chunks)[:budget]  # [:None] keeps everything
    return np.frombuffer(data, dtype=np.uint8).copy(), files[:len(chunks)]


class ByteCorpus:
    """A byte-level text corpus with a train/validation split.

    Args:
        path: a file or a folder (searched recursively); None means the standard library's .py
            files (``sysconfig.get_paths()["stdlib"]``, site-packages left out).
        val_fraction: the share of files (or, for one file, of bytes) that validates, in (0, 1).
        seed: seeds the shuffle that assigns files to splits (same seed, same split).
        max_bytes: cap on the bytes loaded, shared between the splits in proportion to their
            full sizes, so a capped corpus keeps the split's train:val ratio. Each split takes its
            files in their shuffled order, whole, and cuts the last one at the cap. The default
            (8 MB) loads the standard library in well under a second; None loads everything.
        pattern: file names to keep in a folder (fnmatch); default ``"*.py"`` for the standard
            library and ``"*"`` for a path. Hidden files and folders are always skipped.

    Attributes: ``train``, ``val`` (uint8 arrays), ``files_train``, ``files_val`` (the paths read
    into each split; for a single file, that file in both), ``vocab_size`` (256).

    >>> corpus = ByteCorpus(max_bytes=100_000)
    >>> corpus.batch("train", 4, 32, np.random.default_rng(0)).shape
    (4, 33)
    """

    vocab_size = VOCAB_SIZE

    def __init__(self, path=None, val_fraction: float = 0.1, seed: int = 0,
                 max_bytes: int | None = 8_000_000, pattern: str | None = None):
        if not isinstance(val_fraction, (int, float, np.floating)) or not 0.0 < val_fraction < 1.0:
            raise ValueError(f"ByteCorpus: val_fraction must be in (0, 1), got {val_fraction!r}")
        if max_bytes is not None and (not isinstance(max_bytes, (int, np.integer))
                                      or isinstance(max_bytes, bool) or max_bytes < 2):
            raise ValueError(f"ByteCorpus: max_bytes must be an int >= 2 or None, got "
                             f"{max_bytes!r}")
        pattern = pattern or ("*.py" if path is None else "*")
        if path is None:
            self.source = sysconfig.get_paths()["stdlib"]
            files = stdlib_files(pattern)
        else:
            self.source = os.fspath(path)
            if os.path.isfile(self.source):
                files = [self.source] if os.path.getsize(self.source) > 0 else []
            elif os.path.isdir(self.source):
                files = _list_files(self.source, pattern)
            else:
                raise FileNotFoundError(f"ByteCorpus: no such file or folder: {self.source!r}")
        if not files:
            raise ValueError(f"ByteCorpus: no non-empty files matching {pattern!r} in "
                             f"{self.source!r}; the corpus would be empty")
        if len(files) == 1:
            self._split_bytes(files[0], val_fraction, max_bytes)
        else:
            self._split_files(files, val_fraction, seed, max_bytes)

    def _split_files(self, files, val_fraction, seed, max_bytes):
        """Shuffle the sorted files with `seed`; the first share validates, the rest trains."""
        order = np.random.default_rng(seed).permutation(len(files))
        files = [files[i] for i in order]
        n_val = min(max(1, round(val_fraction * len(files))), len(files) - 1)  # both non-empty
        val_files, train_files = files[:n_val], files[n_val:]
        budget_train = budget_val = None
        if max_bytes is not None:
            size = {f: os.path.getsize(f) for f in files}
            n_train = sum(size[f] for f in train_files) + len(SEPARATOR) * (len(train_files) - 1)
            n_val_bytes = sum(size[f] for f in val_files) + len(SEPARATOR) * (len(val_files) - 1)
            if n_train + n_val_bytes > max_bytes:  # cap each split in proportion to its size
                budget_val = max(1, math.floor(max_bytes * n_val_bytes / (n_train + n_val_bytes)))
                budget_train = max_bytes - budget_val
        self.train, self.files_train = _read_capped(train_files, budget_train)
        self.val, self.files_val = _read_capped(val_files, budget_val)

    def _split_bytes(self, path, val_fraction, max_bytes):
        """One file: its first bytes train, its last ``val_fraction`` validates."""
        with open(path, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes)
        if len(data) < 2:
            raise ValueError(f"ByteCorpus: {path!r} has {len(data)} byte(s); splitting it into "
                             "train and val needs at least 2")
        n_val = min(max(1, round(val_fraction * len(data))), len(data) - 1)
        arr = np.frombuffer(data, dtype=np.uint8)
        self.train, self.val = arr[:-n_val].copy(), arr[-n_val:].copy()
        self.files_train = self.files_val = [path]

    def split(self, name: str) -> np.ndarray:
        """The uint8 bytes of split "train" or "val"."""
        if name == "train":
            return self.train
        if name == "val":
            return self.val
        raise ValueError(f"ByteCorpus: split must be 'train' or 'val', got {name!r}")

    def batch(self, split: str, batch_size: int, block_size: int, rng) -> np.ndarray:
        """B random windows of T + 1 consecutive bytes: int64 of shape (batch_size, block_size + 1).

        Window starts are uniform over every position where a whole window fits, drawn from
        `rng` (a NumPy Generator), so the caller's generator state fixes the batch.
        """
        data = self.split(split)
        for name, v in (("batch_size", batch_size), ("block_size", block_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ByteCorpus.batch: {name} must be a positive int, got {v!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"ByteCorpus.batch: rng must be a numpy.random.Generator "
                            f"(np.random.default_rng(seed)), got {type(rng).__name__}")
        if block_size >= len(data):
            raise ValueError(f"ByteCorpus.batch: block_size {block_size} needs a split of more "
                             f"than {block_size} bytes; the {split!r} split has {len(data)}")
        starts = rng.integers(0, len(data) - block_size, size=batch_size)  # last start: len - T - 1
        windows = data[starts[:, None] + np.arange(block_size + 1)]        # (B, T + 1)
        return windows.astype(np.int64)

    def unigram_bits_per_byte(self, split: str = "val") -> float:
        """Cross-entropy in bits per byte of `split` under the train split's byte frequencies.

        p(b) = (count_train(b) + 1) / (len(train) + 256)   (add-one smoothing: no byte has p = 0)
        bits/byte = -mean over the bytes x of `split` of log2 p(x)

        The baseline a language model must beat: it is (up to the smoothing) the best any model
        that ignores context can do on train, and about that on val.
        """
        data = self.split(split)
        if len(data) == 0:
            raise ValueError(f"ByteCorpus: the {split!r} split is empty")
        p = (np.bincount(self.train, minlength=VOCAB_SIZE) + 1.0) / (len(self.train) + VOCAB_SIZE)
        counts = np.bincount(data, minlength=VOCAB_SIZE)
        return float(-(counts * np.log2(p)).sum() / len(data))

    @staticmethod
    def encode(text: str) -> np.ndarray:
        """The UTF-8 bytes of `text` as int64 token ids (0..255)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    @staticmethod
    def decode(ids) -> str:
        """Token ids (0..255) back to text; byte sequences that are not UTF-8 become U+FFFD."""
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= VOCAB_SIZE):
            raise ValueError(f"ByteCorpus.decode: ids must be in [0, 255], got values from "
                             f"{ids.min()} to {ids.max()}")
        return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def __repr__(self):
        return (f"ByteCorpus({self.source!r}: train {len(self.train):,} bytes from "
                f"{len(self.files_train)} files, val {len(self.val):,} bytes from "
                f"{len(self.files_val)} files)")
