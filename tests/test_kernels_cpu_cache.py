"""kernels/cpu/_cache.py: cached kernels are dropped when any kernel source changes, else kept."""
import os

from tinygrad_pt.kernels.cpu import _cache


def _cached(d):
    return sorted(f for f in os.listdir(d / "__pycache__") if f.endswith((".nbi", ".nbc")))


def test_cached_kernels_go_when_a_source_changes_and_stay_otherwise(tmp_path):
    (tmp_path / "_common.py").write_text("HELPER = 1\n")
    (tmp_path / "gelu.py").write_text("KERNEL = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("gelu._k-1.py311.nbi", "gelu._k-1.py311.1.nbc"):
        (cache / name).write_text("x")
    assert _cache.drop_stale(str(tmp_path))  # no record yet: compiled from unknown sources
    assert _cached(tmp_path) == []
    (cache / "gelu._k-1.py311.nbi").write_text("x")  # recompiled under the recorded sources
    assert not _cache.drop_stale(str(tmp_path))
    assert _cached(tmp_path) == ["gelu._k-1.py311.nbi"]
    (tmp_path / "_common.py").write_text("HELPER = 2\n")  # a helper the kernel inlines changed
    assert _cache.drop_stale(str(tmp_path))
    assert _cached(tmp_path) == []
    assert not _cache.drop_stale(str(tmp_path))


def test_a_fresh_directory_is_stamped_before_the_first_compile(tmp_path):
    (tmp_path / "a.py").write_text("")
    assert not _cache.drop_stale(str(tmp_path))  # nothing to drop; the record is made
    assert (tmp_path / "__pycache__" / "sources.sha256").read_text().strip() == \
        _cache.sources_digest(str(tmp_path))
