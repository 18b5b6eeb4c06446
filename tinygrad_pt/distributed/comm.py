"""Communicators: the few collectives data parallel needs, on raw arrays, one class per backend.

    Single   one process: every collective returns its input (world size 1, the default)
    MPI      NumPy arrays through mpi4py's buffer API (upper-case Allreduce/Bcast/Allgather:
             the array's memory is handed to MPI as it is, nothing is pickled)
    NCCL     CuPy arrays between GPUs through cupy.cuda.nccl, bootstrapped over MPI (rank 0 makes
             the NCCL id and broadcasts it). UNPROVEN: written without a GPU to run it on

Every method works in place where it can (``all_reduce`` overwrites its argument and returns it),
so a gradient bucket is reduced without a second copy. ``op`` is "sum" or "max"; averaging is the
caller's division, so that a sum stays exact in integers.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

__all__ = ["Communicator", "Single", "MPIComm", "NCCLComm", "launched_by_mpiexec", "OPS"]

OPS = ("sum", "max")

# What the launchers set in every process they start: MPICH's Hydra (PMI_RANK/PMI_SIZE), Open MPI
# (OMPI_COMM_WORLD_*), Intel MPI and Slurm's PMI2 (PMI_*) and MPICH's PMIx. Without one of them the
# process was started by hand: world size 1, and mpi4py is not even imported (importing it
# initialises MPI, a side effect a plain run must not have).
_LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                       "MPI_LOCALNRANKS")


def launched_by_mpiexec() -> bool:
    return any(v in os.environ for v in _LAUNCHER_VARIABLES)


def _check_op(op: str) -> str:
    if op not in OPS:
        raise ValueError(f"all_reduce: op must be one of {OPS}, got {op!r}")
    return op


class Communicator:
    """The interface: rank, world_size and five collectives on raw arrays."""

    backend = "base"
    rank = 0
    world_size = 1

    def all_reduce(self, array, op: str = "sum"):
        """Reduce `array` over all ranks in place (every rank gets the result); returns it."""
        raise NotImplementedError

    def broadcast(self, array, root: int = 0):
        """Overwrite `array` on every rank with root's; returns it."""
        raise NotImplementedError

    def all_gather(self, array):
        """(world_size, *array.shape): every rank's `array`, stacked in rank order."""
        raise NotImplementedError

    def barrier(self) -> None:
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (a rank that failed must not leave the others
        waiting in a collective forever)."""
        os._exit(code)


class Single(Communicator):
    """World size 1: every collective is the identity, so single-process code pays nothing."""

    backend = "single"

    def all_reduce(self, array, op: str = "sum"):
        _check_op(op)
        return array

    def broadcast(self, array, root: int = 0):
        return array

    def all_gather(self, array):
        return array[None]

    def barrier(self) -> None:
        pass


class MPIComm(Communicator):
    """MPI_COMM_WORLD through mpi4py. Arrays must be NumPy and C-contiguous (the buffer MPI reads
    and writes is the array's own memory); anything else is a TypeError naming what it got."""

    backend = "mpi"

    def __init__(self):
        try:
            from mpi4py import MPI  # noqa: PLC0415 (optional: the `mpi` extra)
        except ImportError as e:
            raise ImportError(
                "tinygrad_pt.distributed: this process was started by mpiexec, but mpi4py cannot "
                f"be imported ({e}); install the extra: pip install -e \".[mpi]\" (mpi4py and "
                "the MPICH wheel)") from e
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX}

    @staticmethod
    def _buffer(array, what: str):
        if type(array) is not np.ndarray:
            raise TypeError(f"{what}: the MPI backend takes NumPy arrays, got "
                            f"{type(array).__module__}.{type(array).__name__} (CuPy arrays go "
                            "through the NCCL backend)")
        if not array.flags.c_contiguous:
            raise TypeError(f"{what}: the array must be C-contiguous (MPI reads its memory as "
                            "it is); pass np.ascontiguousarray(a)")
        return array

    def all_reduce(self, array, op: str = "sum"):
        buf = self._buffer(array, "all_reduce")
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self._ops[_check_op(op)])
        return array

    def broadcast(self, array, root: int = 0):
        self.comm.Bcast(self._buffer(array, "broadcast"), root=root)
        return array

    def all_gather(self, array):
        send = self._buffer(array, "all_gather")
        out = np.empty((self.world_size,) + array.shape, dtype=array.dtype)
        self.comm.Allgather(send, out)
        return out

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        # mpiexec forwards each rank's output through a proxy that the abort tears down: a
        # moment first, or the error that caused it can be lost.
        time.sleep(0.5)
        self.comm.Abort(code)


class NCCLComm(Communicator):
    """GPUs through NCCL (cupy.cuda.nccl), one GPU per rank (rank % visible GPUs), on the
    current CUDA stream. MPI starts the processes and carries the NCCL unique id.

    UNPROVEN: no GPU was available where this was written, so it has never run; the MPI backend
    is the tested one. Allgather goes through NCCL's allGather into a (world, ...) buffer.
    """

    backend = "nccl"

    def __init__(self, mpi: MPIComm):
        import cupy  # noqa: PLC0415 (optional: the cuda12/cuda13 extras)
        from cupy.cuda import nccl  # noqa: PLC0415

        self.cupy, self.nccl, self.mpi = cupy, nccl, mpi
        self.rank, self.world_size = mpi.rank, mpi.world_size
        cupy.cuda.Device(self.rank % cupy.cuda.runtime.getDeviceCount()).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = mpi.comm.bcast(uid, root=0)  # a tuple of bytes, once at start-up (pickled: tiny)
        self.comm = nccl.NcclCommunicator(self.world_size, uid, self.rank)
        self._ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX}
        self._dtypes = {np.dtype(np.float32): nccl.NCCL_FLOAT32,
                        np.dtype(np.float16): nccl.NCCL_FLOAT16,
                        np.dtype(np.float64): nccl.NCCL_FLOAT64,
                        np.dtype(np.int64): nccl.NCCL_INT64,
                        np.dtype(np.int32): nccl.NCCL_INT32}

    def _dtype(self, array, what):
        if not isinstance(array, self.cupy.ndarray) or not array.flags.c_contiguous:
            raise TypeError(f"{what}: the NCCL backend takes C-contiguous CuPy arrays, got "
                            f"{type(array).__name__}")
        try:
            return self._dtypes[np.dtype(array.dtype)]
        except KeyError:
            raise TypeError(f"{what}: NCCL has no type for dtype {array.dtype}") from None

    def _stream(self):
        return self.cupy.cuda.get_current_stream().ptr

    def all_reduce(self, array, op: str = "sum"):
        dt = self._dtype(array, "all_reduce")
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, dt,
                            self._ops[_check_op(op)], self._stream())
        return array

    def broadcast(self, array, root: int = 0):
        dt = self._dtype(array, "broadcast")
        self.comm.bcast(array.data.ptr, array.size, dt, root, self._stream())
        return array

    def all_gather(self, array):
        dt = self._dtype(array, "all_gather")
        out = self.cupy.empty((self.world_size,) + array.shape, dtype=array.dtype)
        self.comm.allGather(array.data.ptr, out.data.ptr, array.size, dt, self._stream())
        return out

    def barrier(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()
        self.mpi.barrier()

    def abort(self, code: int = 1) -> None:
        self.mpi.abort(code)
