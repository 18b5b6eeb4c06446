"""A run directory has one writer at a time: a lock held for the life of a training run.

    with run_lock("runs/gpt"):      # UserError naming the holder's pid if another run has it
        ...

The lock is ``fcntl.flock`` on ``DIR/run.lock``, which also holds the writer's pid (for the
message a second run gets). The OS drops the lock when its holder exits, however it exits (a
kill -9 included), so a lock left by a dead run never blocks a resume: the file stays behind, but
nothing holds it. Readers (``sample --from``, ``probe``) take no lock; they never see a
half-written checkpoint because saves are atomic (a temporary renamed over the file).

The lock is re-entrant within a process (the CLI takes it before checking the directory, and
``train`` takes it again), because two flocks on two descriptors of one file would refuse each
other even in one process.
"""
from __future__ import annotations

import contextlib
import os

from ..errors import UserError

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no advisory locks, a run directory is unguarded
    fcntl = None

__all__ = ["run_lock", "prepare_run_dir", "RunDirError", "LOCK_NAME"]

LOCK_NAME = "run.lock"
_held: dict = {}  # realpath of a run directory -> [file descriptor, depth]


class RunDirError(UserError):
    """A run directory that cannot be used: not a directory, not writable, or in use."""


def prepare_run_dir(out_dir) -> str:
    """Create `out_dir` if needed; a RunDirError in the user's terms when it cannot be one."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RunDirError(f"run directory {out_dir!r} (--out) exists and is not a directory; "
                          "give a directory (it is created if missing)")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create the run directory {out_dir!r} (--out): "
                          f"{e.strerror or e}") from None
    return out_dir


def _holder(path) -> str:
    try:
        with open(path) as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "pid unknown"


@contextlib.contextmanager
def run_lock(out_dir):
    """Hold `out_dir`'s lock for the block; RunDirError at once if another process holds it."""
    out_dir = prepare_run_dir(out_dir)
    key = os.path.realpath(out_dir)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    path = os.path.join(out_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise RunDirError(f"cannot write in the run directory {out_dir!r} (--out): "
                          f"{e.strerror or e} ({path})") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirError(f"run directory {out_dir!r} is in use by another training run "
                                  f"({_holder(path)}, holding {path}); wait for it to end, stop "
                                  "it, or train into another --out") from None
        # The pid for the message above; written only once the lock is ours.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # closing the descriptor releases the flock
