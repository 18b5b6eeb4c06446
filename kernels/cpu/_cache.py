"""Numba's cache of the CPU kernels, dropped whenever any of their sources has changed.

Numba caches a kernel's machine code next to its source (``cache=True``) and checks only that
source file's modification time and size before it loads the cache. But the kernels inline
helpers from ``_common.py`` (vexp, muladd, the row sums) and from each other: after an edit of
``_common.py`` alone, every kernel would go on running the old helpers' code from its cache,
silently. So at import the sources of this package are hashed together, and when the hash
differs from the one recorded in the cache directory, the cached kernels there are deleted (they
recompile on their next call, once) and the new hash is recorded.

A fresh install changes nothing here (its cache directory is empty). In a checkout that a
developer edits, or that a ``git pull`` changes, this is what keeps the kernels in step with the
code. Where the directory cannot be written (a read-only install), Numba keeps its cache
elsewhere and nothing is done: there only a reinstall changes the sources, and it gives every
file a new modification time, which Numba does check.
"""
from __future__ import annotations

import glob
import hashlib
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_STAMP = "sources.sha256"  # in __pycache__: the hash the cached kernels were compiled from


def sources_digest(directory: str = _HERE) -> str:
    """One hash of every .py file of the package (names and contents, in name order)."""
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(directory, "*.py"))):
        h.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def drop_stale(directory: str = _HERE) -> bool:
    """Delete the cached kernels in `directory`/__pycache__ when they were compiled from other
    sources than those there now; True when it deleted. Errors (a read-only or missing
    directory, a file another process removed first) leave things as they are: the worst case
    is Numba's own check, as without this."""
    cache = os.path.join(directory, "__pycache__")
    digest = sources_digest(directory)
    stamp = os.path.join(cache, _STAMP)
    try:
        with open(stamp) as f:
            if f.read().strip() == digest:
                return False
    except OSError:
        pass
    try:  # made now if missing, so that a fresh checkout's first caches are stamped
        os.makedirs(cache, exist_ok=True)
    except OSError:
        return False
    if not os.access(cache, os.W_OK):
        return False
    dropped = False
    for path in glob.glob(os.path.join(cache, "*.nbi")) + glob.glob(os.path.join(cache, "*.nbc")):
        try:
            os.remove(path)
            dropped = True
        except OSError:
            continue
    try:  # written whole, then renamed: a process starting now reads the old hash or the new one
        tmp = f"{stamp}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(digest + "\n")
        os.replace(tmp, stamp)
    except OSError:
        pass
    return dropped
