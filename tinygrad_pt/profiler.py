"""``tg.profile()``: where the time of a forward and backward pass goes, op by op.

    with tg.profile() as prof:
        loss = model(x).sum()
        loss.backward()
    print(prof.table())

Inside the block every ``Function.apply`` times its op's ``forward`` and every step of the backward
pass times the op's ``backward``; both are added up per op (the Function class name). The rest of
the backward pass, its own bookkeeping (the topological sort, adding gradients into the dict, shape
and dtype checks, hooks, releasing saved arrays), is

    backward bookkeeping = wall time of all backward() calls - time inside Function.backward

and has its own row. The time ``Function.apply`` spends around ``forward`` (building the output
Tensor, recording the graph) is in no row: it is the caller's time, as in any Python profiler.

Outside the block the profiler costs one global boolean check per op and per backward step.

On CUDA (CuPy arrays) the GPU runs asynchronously: without ``sync=True`` the times are host-side
dispatch times (how long Python took to queue the kernels), not how long the kernels ran. With
``sync=True`` the device is synchronised before and after each op on CuPy data, so each op's time
includes its kernels (and the run is slower, as every op now waits for the GPU).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from . import autograd
from .backend import array_module, is_cupy_array

__all__ = ["profile", "OpStats"]

BOOKKEEPING = "backward bookkeeping"


@dataclass
class OpStats:
    """The calls and seconds of one op (times are kept in seconds, shown in milliseconds)."""
    fwd_calls: int = 0
    fwd_s: float = 0.0
    bwd_calls: int = 0
    bwd_s: float = 0.0

    @property
    def fwd_ms(self) -> float:
        return self.fwd_s * 1e3

    @property
    def bwd_ms(self) -> float:
        return self.bwd_s * 1e3

    @property
    def total_ms(self) -> float:
        return (self.fwd_s + self.bwd_s) * 1e3


def _synchronize(arrays) -> None:
    """Wait for the GPU when any of `arrays` is a CuPy array (sync=True only)."""
    for a in arrays:
        if is_cupy_array(a):
            array_module(a).cuda.Device().synchronize()
            return


class profile:
    """Context manager that records, per op, forward/backward calls and times (see the module doc).

    After (or inside) the block:
      stats         dict op name -> OpStats (fwd_calls, fwd_ms, bwd_calls, bwd_ms, total_ms)
      bookkeeping_ms  backward wall time not spent inside any Function.backward
      total_ms      sum of every op's total plus the bookkeeping
      table()       the table as a string, ops sorted by total time (largest first)

    Only one profile block can be active at a time (the switch is a module global, shared by
    threads): entering one inside another raises RuntimeError. Entering the same object again
    after its block has ended adds to its counts.
    """

    def __init__(self, sync: bool = False):
        self.sync = bool(sync)
        self.stats: dict[str, OpStats] = {}
        self.bookkeeping_s = 0.0
        self._backward_depth = 0  # a hook may call backward() inside backward(): time only the outer

    # -- the switch ---------------------------------------------------------------------------

    def __enter__(self):
        if autograd._profiling:
            raise RuntimeError("profile: a tg.profile() block is already active; profile blocks "
                               "cannot be nested or run concurrently (end the outer one first)")
        autograd._profiler = self
        autograd._profiling = True
        return self

    def __exit__(self, *exc):
        autograd._profiling = False
        autograd._profiler = None
        return False

    # -- called by autograd.py while profiling ------------------------------------------------

    def _record(self, fn) -> OpStats:
        name = type(fn).__name__
        rec = self.stats.get(name)
        if rec is None:
            rec = self.stats[name] = OpStats()
        return rec

    def forward(self, fn, arrays, params):
        """Run ``fn.forward(*arrays, **params)`` and add its time to fn's op."""
        if self.sync:
            _synchronize(arrays)  # earlier queued work is not this op's
        start = time.perf_counter()
        out = fn.forward(*arrays, **params)
        if self.sync:
            _synchronize((out,))
        elapsed = time.perf_counter() - start
        rec = self._record(fn)
        rec.fwd_calls += 1
        rec.fwd_s += elapsed
        return out

    def backward(self, fn, grad):
        """Run ``fn.backward(grad)`` and add its time to fn's op (and to the inner total)."""
        if self.sync:
            _synchronize((grad,))
        start = time.perf_counter()
        in_grads = fn.backward(grad)
        if self.sync:
            _synchronize(in_grads if isinstance(in_grads, tuple) else (in_grads,))
        elapsed = time.perf_counter() - start
        rec = self._record(fn)
        rec.bwd_calls += 1
        rec.bwd_s += elapsed
        self._inner_s += elapsed
        return in_grads

    def time_backward(self, run, root, grad, retain_graph):
        """Run the backward sweep `run` and add its wall time, less the ops' own, to bookkeeping."""
        if self._backward_depth:
            return run(root, grad, retain_graph)  # counted by the outer call
        self._backward_depth += 1
        self._inner_s = 0.0
        start = time.perf_counter()
        try:
            return run(root, grad, retain_graph)
        finally:
            wall = time.perf_counter() - start
            self.bookkeeping_s += max(wall - self._inner_s, 0.0)
            self._backward_depth -= 1

    _inner_s = 0.0  # seconds inside Function.backward during the current outer backward()

    # -- results ------------------------------------------------------------------------------

    @property
    def bookkeeping_ms(self) -> float:
        return self.bookkeeping_s * 1e3

    @property
    def total_ms(self) -> float:
        return sum(r.total_ms for r in self.stats.values()) + self.bookkeeping_ms

    def table(self) -> str:
        """One row per op sorted by total time (largest first), then the bookkeeping row."""
        total = self.total_ms
        share = (lambda ms: 100.0 * ms / total) if total > 0 else (lambda ms: 0.0)
        rows = sorted(self.stats.items(), key=lambda kv: (-kv[1].total_ms, kv[0]))
        width = max([len(BOOKKEEPING)] + [len(name) for name in self.stats])
        head = (f"{'op':<{width}}  {'fwd calls':>9}  {'fwd ms':>10}  {'bwd calls':>9}  "
                f"{'bwd ms':>10}  {'total ms':>10}  {'share %':>7}")
        lines = [f"profile: {len(rows)} ops, {total:.3f} ms in all", head, "-" * len(head)]
        for name, r in rows:
            lines.append(f"{name:<{width}}  {r.fwd_calls:>9}  {r.fwd_ms:>10.3f}  {r.bwd_calls:>9}  "
                         f"{r.bwd_ms:>10.3f}  {r.total_ms:>10.3f}  {share(r.total_ms):>7.1f}")
        bk = self.bookkeeping_ms
        lines.append(f"{BOOKKEEPING:<{width}}  {'':>9}  {'':>10}  {'':>9}  "
                     f"{'':>10}  {bk:>10.3f}  {share(bk):>7.1f}")
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<profile: {len(self.stats)} ops, {self.total_ms:.3f} ms>"
