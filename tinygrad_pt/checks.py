"""Value checks on the inputs (an index in range, a probability in [0, 1]) without stalling the GPU.

Such a check must look at the data. On NumPy it runs at once. On CuPy, reading the answer back
(``bool(bad.any())``) would make the host wait for the GPU in the middle of every training step,
which is what keeps small models launch-bound. So on the GPU the check is queued instead:

    check_values(bad, raise_error)   # bad: a boolean array of offending entries
                                     # raise_error(): raises the op's error, naming a bad value

computes ``bad.any()`` on the device (a tiny kernel, no sync) and keeps it. The queue is
drained, in order, at the next point where the host reads device data anyway (``Tensor.item``,
``.numpy()``, ``bool()``, ``.to("cpu")``) or when it holds MAX_PENDING checks: the first failed
check raises there. So on cuda an out-of-range token id still gives the same clear IndexError,
at the next loss read-back instead of the op that used it (the values computed in between are
garbage, and the error says where they came from).
"""
from __future__ import annotations

from .backend import array_module, is_cupy_array, on_host_read

__all__ = ["check_values", "flush_checks", "pending_checks"]

MAX_PENDING = 256  # then one sync drains them: bounded memory, one wait per 256 checks

_pending: list = []


def check_values(bad, raise_error) -> None:
    """Raise via raise_error() if any entry of the boolean array `bad` is True: now on the CPU,
    at the next host read on the GPU (see the module docstring)."""
    if not _queue_on_device(bad):
        if bad.any():
            raise_error()
        return
    _pending.append((bad.any(), raise_error))
    if len(_pending) >= MAX_PENDING:
        flush_checks()


def _queue_on_device(bad) -> bool:
    """Whether a check of `bad` waits for the next host read (device arrays do)."""
    return is_cupy_array(bad)


def pending_checks() -> int:
    """How many GPU checks wait for the next host read."""
    return len(_pending)


def flush_checks() -> None:
    """Resolve every queued GPU check, in the order they were made; the first failure raises.
    One host synchronisation for all of them. A no-op when none is queued."""
    if not _pending:
        return
    checks = _pending[:]
    _pending.clear()
    flags = [flag for flag, _ in checks]
    failed = array_module(*flags).stack(flags)
    if is_cupy_array(failed):
        failed = failed.get()  # the one synchronisation
    for bad, (_, raise_error) in zip(failed, checks):
        if bad:
            raise_error()


# backend.to_device (the floor below, which must not import this module) copies device data to
# the host: the queued checks resolve there too.
on_host_read(flush_checks)
