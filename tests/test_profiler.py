"""tg.profile: exact per-op counts, consistent times, the table, and the switch turning off."""
import types

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
from tinygrad_pt import autograd
from tinygrad_pt.profiler import BOOKKEEPING, profile


def _leaves(shape=(3, 4)):
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal(shape), requires_grad=True)
    y = tg.tensor(rng.standard_normal(shape), requires_grad=True)
    return x, y


def _small_graph(x, y):
    (x * y + x.exp()).sum().backward()


def test_counts_are_exact_for_a_known_graph():
    x, y = _leaves()
    with profile() as prof:
        _small_graph(x, y)
    counts = {op: (r.fwd_calls, r.bwd_calls) for op, r in prof.stats.items()}
    assert counts == {"Mul": (1, 1), "Exp": (1, 1), "Add": (1, 1), "Sum": (1, 1)}


@given(st.integers(1, 6))
def test_chain_counts_scale_with_length(n):
    x, _ = _leaves((2,))
    with profile() as prof:
        h = x
        for _ in range(n):
            h = h * 1.5
        h.sum().backward()
    assert (prof.stats["Mul"].fwd_calls, prof.stats["Mul"].bwd_calls) == (n, n)
    assert (prof.stats["Sum"].fwd_calls, prof.stats["Sum"].bwd_calls) == (1, 1)


def test_forward_without_grad_counts_no_backward():
    x, y = _leaves()
    with tg.no_grad(), profile() as prof:
        x * y
    assert (prof.stats["Mul"].fwd_calls, prof.stats["Mul"].bwd_calls) == (1, 0)
    assert prof.bookkeeping_ms == 0.0


def test_times_are_non_negative_and_add_up():
    x, y = _leaves()
    with profile() as prof:
        for _ in range(3):
            _small_graph(x, y)
    for r in prof.stats.values():
        assert r.fwd_ms >= 0 and r.bwd_ms >= 0
        assert r.total_ms == pytest.approx(r.fwd_ms + r.bwd_ms)
    assert prof.bookkeeping_ms >= 0
    expected = sum(r.fwd_ms + r.bwd_ms for r in prof.stats.values()) + prof.bookkeeping_ms
    assert prof.total_ms == pytest.approx(expected)
    assert prof.total_ms > 0


def test_bookkeeping_is_backward_wall_time_less_op_time(monkeypatch):
    # A fake clock that advances 1 s per reading: the sweep's wall time and each op's backward
    # time are then whole numbers of readings, so the subtraction can be checked exactly.
    import tinygrad_pt.profiler as profiler_module
    ticks = iter(range(10**6))
    x, y = _leaves()
    loss = (x * y).sum()
    with profile() as prof:
        fake_time = types.SimpleNamespace(perf_counter=lambda: float(next(ticks)))
        monkeypatch.setattr(profiler_module, "time", fake_time)  # this module's clock only
        loss.backward()
        monkeypatch.undo()
    # 2 backward steps (Sum, Mul), 2 readings each = 1 s each; the sweep reads the clock once
    # before and once after them: 2 + 2 + 2 readings -> 5 s of wall time, 2 s inside ops.
    assert prof.stats["Sum"].bwd_ms == 1000.0 and prof.stats["Mul"].bwd_ms == 1000.0
    assert prof.bookkeeping_ms == 3000.0


def test_table_lists_every_op_sorted_by_total_then_bookkeeping():
    x, y = _leaves((30, 30))
    with profile() as prof:
        _small_graph(x, y)
        (x @ y).tanh().mean().backward()
    text = prof.table()
    assert text == str(prof)
    lines = text.splitlines()
    header = lines[1].split()
    assert header[0] == "op" and "share" in header and "total" in header
    assert lines[-1].startswith(BOOKKEEPING)
    rows = lines[3:-1]
    names = [row.split()[0] for row in rows]
    assert sorted(names) == sorted(prof.stats)  # every op, once
    totals = [float(row.split()[5]) for row in rows]
    assert totals == sorted(totals, reverse=True)
    shares = [float(row.split()[-1]) for row in lines[3:]]
    assert sum(shares) == pytest.approx(100.0, abs=0.1 * len(shares))


def test_empty_profile_table():
    with profile() as prof:
        pass
    assert prof.stats == {} and prof.total_ms == 0.0
    assert prof.table().splitlines()[-1].startswith(BOOKKEEPING)


def test_only_ops_inside_the_block_are_recorded():
    x, y = _leaves()
    x.exp()  # before: not recorded
    with profile() as prof:
        x * y
    (x + y).sum().backward()  # after: not recorded
    assert set(prof.stats) == {"Mul"}
    assert prof.stats["Mul"].bwd_calls == 0
    assert prof.bookkeeping_ms == 0.0


def test_profiler_is_off_after_the_block():
    with profile():
        assert autograd._profiling and autograd._profiler is not None
    assert autograd._profiling is False and autograd._profiler is None


def test_profiler_is_off_after_an_exception_in_the_block():
    x, _ = _leaves()
    with pytest.raises(ValueError, match="boom"):
        with profile() as prof:
            x.exp()
            raise ValueError("boom")
    assert autograd._profiling is False and autograd._profiler is None
    assert prof.stats["Exp"].fwd_calls == 1


def test_nesting_raises_and_leaves_the_outer_block_working():
    x, y = _leaves()
    with profile() as outer:
        with pytest.raises(RuntimeError, match="already active.*cannot be nested"):
            with profile():
                pass
        assert autograd._profiler is outer  # the failed inner enter changed nothing
        x * y
    assert outer.stats["Mul"].fwd_calls == 1
    assert autograd._profiling is False


def test_results_are_the_same_with_and_without_profiling():
    x, y = _leaves()
    _small_graph(x, y)
    gx, gy = x.grad.data.copy(), y.grad.data.copy()
    x.grad = y.grad = None
    with profile():
        _small_graph(x, y)
    np.testing.assert_array_equal(x.grad.data, gx)
    np.testing.assert_array_equal(y.grad.data, gy)
