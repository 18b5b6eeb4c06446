"""Data parallel training over MPI (CPUs) or NCCL (GPUs): every rank holds the whole model, takes
its shard of each global batch, and the gradients are averaged before each optimizer step, so N
ranks train the same model as one process on the global batch.

    mpiexec -n 2 tinygrad-pt train ae --steps 40      # the CLI does all of the below itself

    import tinygrad_pt as tg
    dist = tg.distributed
    dist.init()                           # reads the MPI world; without mpiexec: world size 1
    model = dist.DataParallel(model)      # rank 0's weights broadcast; models checked alike
    ...
    loss.backward()
    model.sync_gradients()                # flat float32 buckets, allreduced, averaged, unpacked
    opt.step()

Without mpiexec every call here is a no-op (world size 1), and mpi4py is not imported.

Gradients are reduced in one pass after backward (buckets of ``bucket_mb`` each, one allreduce
per bucket), not overlapped with backward: the autograd pass has no end-of-backward hook to wait
on an asynchronous reduction, and per-tensor hooks would reduce one tensor at a time. What it
costs is measured in benchmarks/results/distributed_cpu.md.

A rank that raises ends the whole job (MPI_Abort from ``sys.excepthook``, and from the CLI on
any non-zero exit), so the others never wait forever in a collective; an error that every rank
raises at the same point (the agreement checks, a bad batch size, a diverged run: marked
``every_rank``) ends each rank by itself, without the abort. A rank that hangs without raising
still hangs the job: collectives here have no timeout.
"""
from __future__ import annotations

import sys
import traceback
import weakref
import zlib

import numpy as np

from ..autograd import Function, register_after_backward
from ..backend import array_module
from ..tensor import Tensor
from .comm import Communicator, MPIComm, NCCLComm, Single, launched_by_mpiexec
from .sampler import DistributedSampler, shard_bounds, shard_rows

__all__ = ["init", "is_initialized", "rank", "world_size", "backend", "all_reduce", "broadcast",
           "all_gather", "gather_rows", "barrier", "any_rank", "abort", "DataParallel",
           "GradientAverager", "raised_everywhere",
           "broadcast_state", "average_on_step", "sync_gradients",
           "DistributedSampler", "shard_rows", "shard_bounds", "check_same_everywhere",
           "Communicator"]

_comm: Communicator | None = None


def init(backend: str | None = None) -> Communicator:
    """Join the job this process belongs to and return its communicator (idempotent).

    backend  None: "mpi" when started by mpiexec, else world size 1; "nccl" for CuPy arrays
             between GPUs (bootstrapped over MPI; unproven: never run on a GPU here); "single"
    """
    global _comm
    if _comm is not None:
        if backend is not None and backend != _comm.backend:
            raise RuntimeError(f"distributed.init: already initialised with backend "
                               f"{_comm.backend!r}, asked for {backend!r}")
        return _comm
    if backend is None:
        backend = "mpi" if launched_by_mpiexec() else "single"
    if backend == "single":
        _comm = Single()
    elif backend == "mpi":
        _comm = MPIComm()
    elif backend == "nccl":
        _comm = NCCLComm(MPIComm())
    else:
        raise ValueError(f"distributed.init: backend must be 'mpi', 'nccl' or 'single', got "
                         f"{backend!r}")
    if _comm.world_size > 1:
        _install_abort_hook()
    return _comm


def is_initialized() -> bool:
    return _comm is not None


def _get() -> Communicator:
    return _comm if _comm is not None else init()


def rank() -> int:
    return _get().rank


def world_size() -> int:
    return _get().world_size


def backend() -> str:
    return _get().backend


def all_reduce(array, op: str = "sum"):
    """Sum (or max) `array` over the ranks, in place; returns it. Takes a raw array or a Tensor
    (its data is reduced)."""
    data = array.data if isinstance(array, Tensor) else array
    _get().all_reduce(data, op)
    return array


def broadcast(array, root: int = 0):
    """Overwrite `array` (raw or Tensor) on every rank with root's, in place; returns it."""
    data = array.data if isinstance(array, Tensor) else array
    _get().broadcast(data, root)
    return array


def all_gather(array):
    """(world_size, *shape): every rank's raw `array`, in rank order (no gradient: see
    gather_rows)."""
    return _get().all_gather(array)


def barrier() -> None:
    _get().barrier()


def any_rank(flag: bool) -> bool:
    """Whether `flag` is true on some rank (an allreduce of one byte's worth; every rank must
    call it at the same point)."""
    comm = _get()
    if comm.world_size == 1:
        return bool(flag)
    return bool(comm.all_reduce(np.array([int(bool(flag))], dtype=np.int64), "max")[0])


def abort(code: int = 1) -> None:
    """End the whole job with exit status `code` (MPI_Abort), or this process when alone."""
    comm = _get()
    if comm.world_size > 1:
        comm.abort(code)
    sys.exit(code)


def raised_everywhere(error) -> bool:
    """Whether `error` (or the error it was raised from or during) is one every rank raises
    at the same point (a check of what all ranks agree on): then no rank waits for another, and
    the job ends by itself with the message, without MPI_Abort."""
    while error is not None:
        if getattr(error, "every_rank", False):
            return True
        error = error.__cause__ or error.__context__
    return False


def _install_abort_hook() -> None:
    """An uncaught exception on one rank prints its traceback and aborts the job: the other
    ranks would otherwise block in their next collective for ever."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        sys.stderr.write(f"[rank {rank()} of {world_size()}] ")
        previous(kind, value, tb)
        if not raised_everywhere(value):  # else every rank exits by itself: nothing to end
            _comm.abort(1)
    sys.excepthook = hook


# ----------------------------------------------------------------------------------------------------
# A differentiable gather: losses over the whole global batch (SimCLR's NT-Xent)

class GatherRows(Function):
    """y = concatenate over ranks of x (rank order): (world * n, ...) from (n, ...).

    Every rank goes on to compute the same loss L from the same y, so dL/dy is the same
    everywhere; each rank's x reaches L through every rank's copy of y, so dL/dx is the sum over
    ranks of this rank's rows of dL/dy: an allreduce, then the rank's slice. (DataParallel's
    average then divides by N the N equal terms: the single-process gradient.)"""

    def forward(self, x):
        self.n = x.shape[0]
        stacked = _get().all_gather(np.ascontiguousarray(x))
        return stacked.reshape((-1,) + x.shape[1:])

    def backward(self, grad):
        total = _get().all_reduce(np.ascontiguousarray(grad, dtype=grad.dtype).copy())
        lo = rank() * self.n
        return (total[lo:lo + self.n],)


def gather_rows(x: Tensor) -> Tensor:
    """Every rank's rows of x, concatenated in rank order, with a gradient (see GatherRows);
    x itself when alone."""
    if world_size() == 1:
        return x
    return GatherRows.apply(x)


# ----------------------------------------------------------------------------------------------------
# Agreement checks: a job whose ranks built different things must stop with a clear error

def _fingerprint(text: str) -> int:
    return zlib.crc32(text.encode())


def check_same_everywhere(what: str, text: str) -> None:
    """Raise ValueError on every rank when `text` (a description: the model's names and shapes,
    the config) is not the same on all ranks, naming the ranks that differ from rank 0."""
    comm = _get()
    if comm.world_size == 1:
        return
    prints = comm.all_gather(np.asarray([_fingerprint(text)], dtype=np.int64))[:, 0]
    odd = [r for r in range(comm.world_size) if prints[r] != prints[0]]
    if odd:
        raise _everywhere(ValueError(f"distributed: {what} differs between ranks: rank(s) {odd} do not match "
                         f"rank 0 (this rank, {comm.rank}, has: {text[:200]}"
                         f"{'...' if len(text) > 200 else ''}); every rank must be started with "
                         "the same command, flags and seed"))


def _everywhere(error):
    error.every_rank = True  # see raised_everywhere
    return error


def _describe(named) -> str:
    return ";".join(f"{name}:{tuple(t.shape)}:{t.dtype}" for name, t in named)


# ----------------------------------------------------------------------------------------------------
# Gradient averaging

class GradientAverager:
    """Averages the gradients of `params` over the ranks: packed into flat buckets of at most
    `bucket_mb` MiB, one allreduce per bucket, divided by N, unpacked into each ``.grad``.

    wire_dtype  np.float32 (default; the sum is exact to float32 rounding) or np.float16: half
                the bytes on the wire, at fp16's ~3 significant digits. MPI has no float16
                sum, so fp16 buckets are all-gathered and summed in float32 on each rank
                (ring all-gather moves about the bytes of a ring allreduce).

    Only parameters that have a gradient take part, in a fixed order; every rank must have
    gradients for the same parameters (the same code on every rank ensures it; otherwise the
    message sizes differ and MPI fails loudly, it does not mix them up)."""

    def __init__(self, params, bucket_mb: float = 25.0, wire_dtype=np.float32):
        self.params = list(params)
        self.wire_dtype = np.dtype(wire_dtype)
        if self.wire_dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"GradientAverager: wire_dtype must be float32 or float16, got "
                             f"{self.wire_dtype}")
        if not bucket_mb > 0:
            raise ValueError(f"GradientAverager: bucket_mb must be positive, got {bucket_mb!r}")
        self.bucket_elems = max(1, int(bucket_mb * 2**20) // 4)
        self.bytes_last = 0  # bytes one rank handed to the reductions in the last sync

    def sync(self) -> None:
        comm = _get()
        if comm.world_size == 1:
            return
        have = [p for p in self.params if p.grad is not None]
        self.bytes_last = 0
        bucket, size = [], 0
        for p in have:
            if bucket and size + p.grad.size > self.bucket_elems:
                self._reduce(comm, bucket, size)
                bucket, size = [], 0
            bucket.append(p)
            size += p.grad.size
        if bucket:
            self._reduce(comm, bucket, size)

    def _reduce(self, comm, bucket, size) -> None:
        xp = array_module(bucket[0].grad.data)
        flat = xp.empty(size, dtype=np.float32)  # (size,) the bucket, packed
        offset = 0
        for p in bucket:
            n = p.grad.size
            flat[offset:offset + n] = p.grad.data.reshape(-1)
            offset += n
        if self.wire_dtype == np.float16:
            wire = flat.astype(np.float16)
            flat = comm.all_gather(wire).astype(np.float32).sum(axis=0)
            self.bytes_last += wire.nbytes
        else:
            comm.all_reduce(flat)
            self.bytes_last += flat.nbytes
        flat /= comm.world_size
        offset = 0
        for p in bucket:
            n = p.grad.size
            p.grad.data[...] = flat[offset:offset + n].reshape(p.grad.shape)
            offset += n


def broadcast_state(modules, root: int = 0) -> None:
    """Every rank's modules take root's weights and buffers (in place), after checking that all
    ranks built the same modules (names, shapes and dtypes)."""
    named = [(f"{i}.{k}", t) for i, m in enumerate(modules) for k, t in m.state_dict().items()]
    check_same_everywhere("the model (parameter names, shapes, dtypes)", _describe(named))
    comm = _get()
    if comm.world_size == 1:
        return
    for _, t in named:
        if not t.data.flags.c_contiguous:
            raise TypeError("broadcast_state: a non-contiguous state tensor cannot be broadcast "
                            "in place")
        comm.broadcast(t.data, root)


def average_on_step(optimizer, averager: GradientAverager) -> None:
    """Make `optimizer.step()` average its parameters' gradients first, unless they were already
    averaged since the last step (a recipe that clips the averaged norm syncs before clipping)."""
    if getattr(optimizer, "_averager", None) is not None:
        return  # already wrapped
    step = optimizer.step
    optimizer._averager = averager
    optimizer._grads_synced = False

    def averaged_step(*args, **kwargs):
        if not optimizer._grads_synced:
            averager.sync()
        optimizer._grads_synced = False
        return step(*args, **kwargs)
    optimizer.step = averaged_step


def sync_gradients(optimizer) -> None:
    """Average `optimizer`'s gradients now (before clipping them, say); its next step then does
    not average them again. A no-op alone or for an optimizer that was not wrapped."""
    averager = getattr(optimizer, "_averager", None)
    if averager is not None:
        averager.sync()
        optimizer._grads_synced = True


class DataParallel:
    """`module` replicated over the ranks: rank 0's weights are broadcast at construction (after
    checking every rank built the same model), calls go to the module, and the gradients are
    averaged across ranks when a backward returns after a forward through the model (as the
    design's API says; an autograd after-backward callback):

        model = DataParallel(model, bucket_mb=25, wire_dtype=np.float16)
        loss = model(x).mean(); loss.backward(); opt.step()   # .grad is the ranks' average

    Averaging is idempotent on gradients that are equal on every rank, so an explicit
    ``sync_gradients()`` after it, or ``model.attach(opt)`` (the optimizer's step() averages
    first), changes nothing but the traffic; gradient accumulation over several backwards stays
    exact (each backward averages what it added).
    ``state_dict``/``load_state_dict``/``parameters`` are the module's own (no prefix), so a
    checkpoint of a DataParallel model loads into a plain one."""

    def __init__(self, module, bucket_mb: float = 25.0, wire_dtype=np.float32):
        self.module = module
        broadcast_state([module])
        self.averager = GradientAverager(module.parameters(), bucket_mb, wire_dtype)
        self._pending = False  # a forward ran since the last average
        if world_size() > 1:  # one process: nothing to average, no callback at all
            ref = weakref.ref(self)
            self._after_backward = register_after_backward(lambda: _average_if_pending(ref))

    def __call__(self, *args, **kwargs):
        self._pending = True
        return self.module(*args, **kwargs)

    def __getattr__(self, name):  # parameters, state_dict, train, eval, ... of the module
        module = self.__dict__.get("module")
        if module is None:
            raise AttributeError(name)
        return getattr(module, name)

    def sync_gradients(self) -> None:
        self.averager.sync()

    def attach(self, optimizer):
        average_on_step(optimizer, self.averager)
        return optimizer

    def __repr__(self):
        return f"DataParallel({self.module!r}, world_size={world_size()})"


def _average_if_pending(ref) -> None:
    """The after-backward callback of a DataParallel (held weakly: a dropped model unhooks)."""
    model = ref()
    if model is None:
        return
    if model._pending:
        model._pending = False
        model.averager.sync()
