"""ByteCorpus: split by file (never a file in both), the byte cap, random windows, the unigram
baseline against a Counter-and-log2 oracle, the default standard-library corpus, and errors."""
import math
import os
import sysconfig
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_pt.data import ByteCorpus


def make_folder(root, contents):
    """Write files f00.txt, f01.txt, ... with the given bytes; return their paths."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(contents):
        p = root / f"f{i:02d}.txt"
        p.write_bytes(data)
        paths.append(str(p))
    return paths


def read(path):
    with open(path, "rb") as f:
        return f.read()


@given(contents=st.lists(st.binary(min_size=1, max_size=40), min_size=2, max_size=12),
       val_fraction=st.floats(0.05, 0.95), seed=st.integers(0, 2**32 - 1))
def test_folder_split_is_a_partition_of_files(tmp_path_factory, contents, val_fraction, seed):
    root = tmp_path_factory.mktemp("corpus")
    paths = make_folder(root, contents)
    c = ByteCorpus(root, val_fraction=val_fraction, seed=seed, max_bytes=None)
    assert not set(c.files_train) & set(c.files_val)              # never a file in both
    assert sorted(c.files_train + c.files_val) == sorted(paths)   # every file somewhere
    expected_val = min(max(1, round(val_fraction * len(paths))), len(paths) - 1)
    assert len(c.files_val) == expected_val
    # each split is its files' bytes, in the listed order, joined by a newline
    assert c.train.tobytes() == b"\n".join(read(p) for p in c.files_train)
    assert c.val.tobytes() == b"\n".join(read(p) for p in c.files_val)
    assert c.train.dtype == np.uint8 and c.val.dtype == np.uint8


def test_split_is_deterministic_given_seed_and_changes_with_it(tmp_path):
    make_folder(tmp_path, [bytes([65 + i]) * 10 for i in range(30)])
    a, b = ByteCorpus(tmp_path, seed=3), ByteCorpus(tmp_path, seed=3)
    assert a.files_val == b.files_val and np.array_equal(a.train, b.train)
    others = {tuple(sorted(ByteCorpus(tmp_path, seed=s).files_val)) for s in range(5)}
    assert len(others) > 1


def test_hidden_empty_and_unmatched_files_are_skipped(tmp_path):
    make_folder(tmp_path, [b"alpha", b"beta"])
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / ".hidden.txt").write_bytes(b"secret")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "obj.txt").write_bytes(b"git")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.txt").write_bytes(b"gamma")
    (tmp_path / "sub" / "img.png").write_bytes(b"\x89PNG")
    c = ByteCorpus(tmp_path, val_fraction=0.4, pattern="*.txt")
    names = sorted(os.path.basename(p) for p in c.files_train + c.files_val)
    assert names == ["deep.txt", "f00.txt", "f01.txt"]
    every = ByteCorpus(tmp_path, val_fraction=0.4)  # default pattern "*": the png comes in
    assert "img.png" in {os.path.basename(p) for p in every.files_train + every.files_val}


def test_single_file_is_split_by_bytes(tmp_path):
    data = bytes(range(256)) * 4
    (tmp_path / "one.bin").write_bytes(data)
    c = ByteCorpus(tmp_path / "one.bin", val_fraction=0.25)
    assert c.train.tobytes() == data[:768] and c.val.tobytes() == data[768:]
    capped = ByteCorpus(tmp_path / "one.bin", val_fraction=0.25, max_bytes=100)
    assert capped.train.tobytes() == data[:75] and capped.val.tobytes() == data[75:100]


def test_max_bytes_caps_each_split_in_proportion_keeping_a_prefix(tmp_path):
    rng = np.random.default_rng(0)
    make_folder(tmp_path, [rng.integers(32, 127, size=int(n), dtype=np.uint8).tobytes()
                           for n in rng.integers(50, 400, size=40)])
    full = ByteCorpus(tmp_path, seed=1, max_bytes=None)
    total = len(full.train) + len(full.val)
    cap = total // 3
    c = ByteCorpus(tmp_path, seed=1, max_bytes=cap)
    assert len(c.train) + len(c.val) == cap
    # the same share of val as the uncapped split, to within a byte
    assert abs(len(c.val) - cap * len(full.val) / total) <= 1
    # the capped splits are prefixes of the full ones: the same files, in the same order
    assert full.train.tobytes().startswith(c.train.tobytes())
    assert full.val.tobytes().startswith(c.val.tobytes())
    assert c.files_train == full.files_train[:len(c.files_train)]
    assert len(c.files_train) < len(full.files_train)   # the cap really read fewer files
    assert not set(c.files_train) & set(c.files_val)
    # a cap above the corpus size changes nothing
    big = ByteCorpus(tmp_path, seed=1, max_bytes=10 * total)
    assert np.array_equal(big.train, full.train) and np.array_equal(big.val, full.val)


# -- batches -------------------------------------------------------------------------------------
def test_batch_windows_are_contiguous_slices_of_the_split(tmp_path):
    make_folder(tmp_path, [b"The quick brown fox jumps over the lazy dog. " * 5,
                           b"Pack my box with five dozen liquor jugs! " * 5, b"0123456789" * 20])
    c = ByteCorpus(tmp_path, val_fraction=0.34, seed=0)
    for split, data in (("train", c.train), ("val", c.val)):
        w = c.batch(split, 8, 16, np.random.default_rng(1))
        assert w.dtype == np.int64 and w.shape == (8, 17)
        for row in w:
            assert bytes(row.astype(np.uint8)) in data.tobytes()


def test_batch_starts_cover_every_valid_position(tmp_path):
    (tmp_path / "a.bin").write_bytes(bytes(range(40)))   # each byte value is its own position
    (tmp_path / "b.bin").write_bytes(bytes(range(100, 140)))
    c = ByteCorpus(tmp_path, val_fraction=0.5, seed=0)
    data = c.train
    w = c.batch("train", 4000, 5, np.random.default_rng(0))
    starts = {int(np.flatnonzero(data == row[0])[0]) for row in w}
    assert starts == set(range(len(data) - 5))   # 0 .. len - T - 1, nothing past the end
    for row in w:                                # targets are the inputs moved by one byte
        s = int(np.flatnonzero(data == row[0])[0])
        assert row.tolist() == data[s:s + 6].tolist()


def test_batch_is_determined_by_the_generator(tmp_path):
    make_folder(tmp_path, [bytes(range(256)), bytes(range(255, -1, -1)), b"x" * 300])
    c = ByteCorpus(tmp_path, val_fraction=0.3)
    a = c.batch("train", 6, 12, np.random.default_rng(7))
    b = c.batch("train", 6, 12, np.random.default_rng(7))
    d = c.batch("train", 6, 12, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, d)
    rng = np.random.default_rng(7)
    assert not np.array_equal(c.batch("train", 6, 12, rng), c.batch("train", 6, 12, rng))


# -- the unigram baseline ------------------------------------------------------------------------
@given(train=st.binary(min_size=1, max_size=60), val=st.binary(min_size=1, max_size=60))
def test_unigram_bits_per_byte_matches_a_counter_oracle(tmp_path_factory, train, val):
    root = tmp_path_factory.mktemp("uni")
    (root / "one.bin").write_bytes(train + val)
    c = ByteCorpus(root / "one.bin", val_fraction=len(val) / (len(train) + len(val)))
    tr, va = c.train.tobytes(), c.val.tobytes()
    counts = Counter(tr)
    for split, data in (("train", tr), ("val", va)):
        bits = 0.0
        for byte in data:   # add-one smoothing over all 256 byte values
            bits -= math.log2((counts.get(byte, 0) + 1) / (len(tr) + 256))
        assert c.unigram_bits_per_byte(split) == pytest.approx(bits / len(data), rel=1e-12)


def test_unigram_extremes(tmp_path):
    (tmp_path / "a").write_bytes(b"a" * 10_000)
    (tmp_path / "b").write_bytes(b"a" * 1_000)
    c = ByteCorpus(tmp_path, val_fraction=0.5)
    n = len(c.train)  # one byte value everywhere: p(a) = (n + 1) / (n + 256)
    assert c.unigram_bits_per_byte() == pytest.approx(-math.log2((n + 1) / (n + 256)), rel=1e-12)
    assert c.unigram_bits_per_byte() < 0.4
    (tmp_path / "b").write_bytes(b"b" * 1_000)
    c = ByteCorpus(tmp_path, val_fraction=0.5)
    n = len(c.train)  # val's byte never occurs in train: p = 1 / (n + 256)
    assert c.unigram_bits_per_byte() == pytest.approx(math.log2(n + 256), rel=1e-12)
    assert c.unigram_bits_per_byte() > 10


# -- the default corpus --------------------------------------------------------------------------
def test_default_corpus_is_the_stdlib_source_and_loads_fast():
    t = time.perf_counter()
    c = ByteCorpus()
    elapsed = time.perf_counter() - t
    assert elapsed < 2.0, f"loading the default corpus took {elapsed:.2f} s"
    stdlib = sysconfig.get_paths()["stdlib"]
    files = c.files_train + c.files_val
    assert all(f.endswith(".py") and f.startswith(stdlib) for f in files)
    assert not any("site-packages" in f.split(os.sep) for f in files)
    assert not set(c.files_train) & set(c.files_val)
    assert len(c.train) + len(c.val) <= 8_000_000
    assert 0.02 < len(c.val) / (len(c.train) + len(c.val)) < 0.3
    assert len(files) > 100 and len(c.files_val) > 10
    # Python source: mostly ASCII, far from uniform bytes
    assert 3.0 < c.unigram_bits_per_byte("val") < 6.0
    assert c.vocab_size == 256


def test_encode_decode_round_trip():
    text = "def f(x):\n    return x ** 2  # \u00e9\u4e2d"
    ids = ByteCorpus.encode(text)
    assert ids.dtype == np.int64 and ids.max() < 256
    assert ByteCorpus.decode(ids) == text
    assert ByteCorpus.decode([104, 105, 0xFF]) == "hi\ufffd"  # a stray byte is replaced


# -- errors --------------------------------------------------------------------------------------
def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such file or folder.*nope"):
        ByteCorpus(tmp_path / "nope")


def test_empty_corpus(tmp_path):
    with pytest.raises(ValueError, match=r"no non-empty files matching '\*'.*empty"):
        ByteCorpus(tmp_path)
    with pytest.raises(ValueError, match=r"no non-empty files matching '\*.nothing'"):
        ByteCorpus(pattern="*.nothing")
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no non-empty files"):
        ByteCorpus(tmp_path)
    with pytest.raises(ValueError, match=r"no non-empty files"):
        ByteCorpus(tmp_path / "e.txt")
    (tmp_path / "one.txt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"has 1 byte.*at least 2"):
        ByteCorpus(tmp_path / "one.txt")


def test_bad_arguments(tmp_path):
    make_folder(tmp_path, [b"abcdefgh" * 4, b"ijklmnop" * 2])
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got 1.0"):
        ByteCorpus(tmp_path, val_fraction=1.0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got '0.1'"):
        ByteCorpus(tmp_path, val_fraction="0.1")
    with pytest.raises(ValueError, match=r"max_bytes must be an int >= 2 or None, got 0"):
        ByteCorpus(tmp_path, max_bytes=0)
    c = ByteCorpus(tmp_path, val_fraction=0.5, seed=0)
    rng = np.random.default_rng(0)
    n = len(c.val)
    with pytest.raises(ValueError, match=rf"block_size {n} needs a split of more than {n} "
                                         rf"bytes; the 'val' split has {n}"):
        c.batch("val", 2, n, rng)
    c.batch("val", 2, n - 1, rng)  # the largest block that fits
    with pytest.raises(ValueError, match=r"split must be 'train' or 'val', got 'test'"):
        c.batch("test", 2, 4, rng)
    with pytest.raises(ValueError, match=r"split must be 'train' or 'val'"):
        c.unigram_bits_per_byte("validation")
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        c.batch("train", 0, 4, rng)
    with pytest.raises(ValueError, match=r"block_size must be a positive int, got 2.5"):
        c.batch("train", 2, 2.5, rng)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator.*got int"):
        c.batch("train", 2, 4, 0)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 255\].*from -1 to 300"):
        ByteCorpus.decode([-1, 300])
