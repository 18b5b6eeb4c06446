"""The digits data set (split sizes, stratification, pixel range, a fixed split) and DataLoader
(batching, seeded shuffling, drop_last, errors)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_pt.data import DataLoader, load_digits


def sorted_rows(x, y):
    """Rows (label first, then pixels) in lexicographic order: a multiset to compare splits."""
    rows = np.concatenate([y[:, None].astype(np.float64), x.astype(np.float64)], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.fixture(scope="module")
def splits():
    return {s: load_digits(s) for s in ("train", "test", "all")}


def test_split_sizes_dtypes_and_range(splits):
    (xtr, ytr), (xte, yte), (xall, yall) = splits["train"], splits["test"], splits["all"]
    assert xtr.shape == (1438, 64) and ytr.shape == (1438,)
    assert xte.shape == (359, 64) and yte.shape == (359,)
    assert xall.shape == (1797, 64)
    for x, y in splits.values():
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        # pixels were 0..16 integers: every value is a multiple of 1/16
        np.testing.assert_allclose(x * 16, np.round(x * 16), atol=1e-5)
        assert set(np.unique(y)) == set(range(10))


def test_train_and_test_partition_all(splits):
    (xtr, ytr), (xte, yte), (xall, yall) = splits["train"], splits["test"], splits["all"]
    together = sorted_rows(np.concatenate([xtr, xte]), np.concatenate([ytr, yte]))
    np.testing.assert_array_equal(together, sorted_rows(xall, yall))


def test_split_is_stratified(splits):
    (_, ytr), (_, yte), (_, yall) = splits["train"], splits["test"], splits["all"]
    for c in range(10):
        n = int((yall == c).sum())
        assert int((yte == c).sum()) == round(0.2 * n)          # per class, not just overall
        assert int((ytr == c).sum()) == n - round(0.2 * n)


def test_split_is_fixed_and_depends_on_seed(splits):
    xte, yte = splits["test"]
    again = load_digits("test")
    np.testing.assert_array_equal(again[0], xte)
    np.testing.assert_array_equal(again[1], yte)
    other = load_digits("test", seed=1)
    assert other[0].shape == xte.shape and not np.array_equal(other[0], xte)
    x5, _ = load_digits("test", test_fraction=0.5)
    assert 880 <= len(x5) <= 920


def test_digits_errors():
    with pytest.raises(ValueError, match=r"split must be 'train', 'test' or 'all', got 'val'"):
        load_digits("val")
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.0"):
        load_digits("train", test_fraction=1.0)


# -- DataLoader ----------------------------------------------------------------------------------
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_batches_cover_rows_in_order(n, batch_size, drop_last):
    x = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n) * 10
    loader = DataLoader((x, y), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader)
    expected_count = n // batch_size if drop_last else -(-n // batch_size)
    assert len(batches) == expected_count
    seen = []
    for bx, by in batches:
        assert len(bx) == len(by) <= batch_size
        if drop_last:
            assert len(bx) == batch_size
        np.testing.assert_array_equal(bx[:, 0] // 2 * 10, by)   # rows stay aligned
        seen.extend(by.tolist())
    kept = expected_count * batch_size if drop_last else n
    assert seen == [10 * i for i in range(kept)]                # in order, nothing twice


def test_single_array_yields_arrays_not_tuples():
    batches = list(DataLoader(np.arange(5), batch_size=2))
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4]]


def test_shuffle_is_a_seeded_permutation_each_epoch():
    y = np.arange(50)
    loader = DataLoader(y, batch_size=8, shuffle=True, seed=3)
    epoch1 = np.concatenate(list(loader))
    epoch2 = np.concatenate(list(loader))
    assert sorted(epoch1.tolist()) == list(range(50)) == sorted(epoch2.tolist())
    assert not np.array_equal(epoch1, y)          # shuffled
    assert not np.array_equal(epoch1, epoch2)     # a new order each epoch
    again = DataLoader(y, batch_size=8, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate(list(again)), epoch1)   # same seed, same order
    other = DataLoader(y, batch_size=8, shuffle=True, seed=4)
    assert not np.array_equal(np.concatenate(list(other)), epoch1)


def test_shuffle_keeps_arrays_aligned():
    x = np.arange(30).reshape(10, 3)
    for bx, by in DataLoader((x, np.arange(10)), batch_size=3, shuffle=True, seed=0):
        np.testing.assert_array_equal(bx[:, 0], by * 3)


def test_drop_last_with_shuffle():
    loader = DataLoader(np.arange(10), batch_size=4, shuffle=True, drop_last=True, seed=0)
    batches = list(loader)
    assert len(loader) == 2 and [len(b) for b in batches] == [4, 4]
    assert len(set(np.concatenate(batches).tolist())) == 8


def test_loader_errors():
    with pytest.raises(ValueError, match=r"array 1 has 3 rows, array 0 has 4"):
        DataLoader((np.zeros(4), np.zeros(3)), batch_size=2)
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        DataLoader(np.zeros(4), batch_size=0)
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 2.5"):
        DataLoader(np.zeros(4), batch_size=2.5)
