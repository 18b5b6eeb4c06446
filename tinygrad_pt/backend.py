"""Devices, array modules, dtypes and random number generators.

This is the bottom floor: it knows NumPy and (optionally) CuPy, and nothing of Tensors.

- ``array_module(*arrays)`` is the one way to choose between NumPy and CuPy: an op takes its
  ``xp`` from its data, so one forward/backward serves both devices.
- CuPy is imported lazily, once. When it is missing, the import error is kept and raised only when a
  user asks for ``device="cuda"``, with the extra to install (``cuda12`` or ``cuda13``).
- Every device has its own seeded generator; ``manual_seed`` reseeds them all.
"""
from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "cuda")
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
default_float = np.dtype(np.float32)  # Python floats and modules are float32 unless asked otherwise

# ----------------------------------------------------------------------------------------------------
# CuPy, imported lazily

_cupy = None
_cupy_error: Exception | None = None


def _try_cupy():
    """Import CuPy once; remember the failure instead of raising it."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy  # noqa: PLC0415 (optional dependency)
            _cupy = cupy
        except Exception as e:  # ImportError, or a broken CUDA install raising at import
            _cupy_error = e
    return _cupy


def cupy_module():
    """CuPy, or a clear error saying how to get it and whether a GPU is visible."""
    cp = _try_cupy()
    if cp is None:
        raise RuntimeError(
            "device='cuda' needs CuPy, which could not be imported "
            f"({type(_cupy_error).__name__}: {_cupy_error}). Install the extra matching your CUDA "
            "toolkit: pip install 'tinygrad_pt[cuda12]' or 'tinygrad_pt[cuda13]'.")
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as e:
        raise RuntimeError(f"device='cuda': CuPy is installed but no CUDA GPU is usable ({e}).") from e
    if n == 0:
        raise RuntimeError("device='cuda': CuPy is installed but no CUDA GPU was found.")
    return cp


def cuda_available() -> bool:
    """True when CuPy imports and at least one GPU answers."""
    try:
        cupy_module()
        return True
    except RuntimeError:
        return False


def is_cupy_array(x) -> bool:
    # Decided by the type's module so that a missing CuPy costs nothing here.
    return type(x).__module__.startswith("cupy")


# Array types from the floors above that have a namespace of their own: ops/__init__.py registers
# Tensor with a namespace of Tensor ops, so that a backward rule handed Tensors (create_graph)
# takes its `xp` from them as it takes numpy or cupy from arrays. This floor never sees Tensor.
_namespaces: dict = {}


def register_array_namespace(array_type, namespace) -> None:
    """Make ``array_module(x)`` return `namespace` for an `x` of `array_type`."""
    _namespaces[array_type] = namespace


def array_module(*arrays):
    """numpy, or cupy if any of `arrays` lives on the GPU (Chainer's get_array_module); for a
    registered array type (a Tensor), its namespace."""
    xp = np
    for a in arrays:
        if type(a) is np.ndarray:
            continue  # the common case first
        namespace = _namespaces.get(type(a))
        if namespace is not None:
            return namespace  # a Tensor among arrays: the rule is building a graph
        if is_cupy_array(a):
            xp = _cupy
    return xp


# ----------------------------------------------------------------------------------------------------
# Devices

def canonical_device(device) -> str:
    """'cpu' or 'cuda' (also accepts 'cuda:0' and None for cpu); anything else is a ValueError."""
    if device is None:
        return "cpu"
    name = str(device).lower()
    if name == "cuda:0" or name == "gpu":
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return name


def device_of(array) -> str:
    return "cuda" if is_cupy_array(array) else "cpu"


def xp_for(device: str):
    """The array module that holds data on `device`."""
    return cupy_module() if canonical_device(device) == "cuda" else np


# Called, in order, before every device-to-host copy in to_device. checks.py, one floor up,
# registers its flush_checks here when it is imported, so that queued GPU input checks resolve
# at a host read while this module imports nothing above it. Nothing is missed: a check can only
# be queued by checks.py, so it is imported (and registered) before any check waits.
_before_host_read: list = []


def on_host_read(hook) -> None:
    """Run hook() before every device-to-host copy (once per hook, however often registered)."""
    if hook not in _before_host_read:
        _before_host_read.append(hook)


def to_device(array, device: str):
    """Move a raw array to `device`; a no-op when it is already there (no copy)."""
    device = canonical_device(device)
    if device_of(array) == device:
        return array
    if device == "cuda":
        return cupy_module().asarray(array)
    for hook in _before_host_read:
        hook()  # a host read: queued GPU input checks resolve here
    return array.get()  # cupy -> numpy (a synchronising copy, asked for explicitly)


# ----------------------------------------------------------------------------------------------------
# Dtypes

def resolve_dtype(dtype):
    """A numpy dtype from a dtype-like (np.float32, 'float64', ...); None stays None."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"unknown dtype {dtype!r}") from e


def _is_dtype_name(s: str) -> bool:
    try:
        np.dtype(s)
        return True
    except TypeError:
        return False


def parse_to_args(args, device=None, dtype=None) -> tuple:
    """(device, dtype) from the torch-like arguments of ``Tensor.to`` and ``Module.to``:
    ``.to("cuda")``, ``.to("cuda:0")``, ``.to(np.float64)``, ``.to("float64")``,
    ``.to(device=..., dtype=...)``. One parser for both, so a Tensor and a Module accept the same
    strings: a string that names a dtype is a dtype, any other string a device (a bad one is
    canonical_device's "unknown device" ValueError). Either comes back None when not given.
    """
    for a in args:
        if isinstance(a, str) and not _is_dtype_name(a):
            device = a
        else:
            dtype = a
    return (None if device is None else canonical_device(device)), resolve_dtype(dtype)


# ----------------------------------------------------------------------------------------------------
# Random number generators, one per device

_DEFAULT_SEED = 0
_rngs: dict[str, object] = {}


def manual_seed(seed: int) -> None:
    """Reseed the generators of every device: same seed, same device, same numbers."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    global _DEFAULT_SEED
    _DEFAULT_SEED = int(seed)
    _rngs.clear()  # recreated lazily from the new seed


def rng(device: str = "cpu"):
    """The generator of `device`: numpy.random.Generator on cpu, cupy.random.Generator on cuda."""
    device = canonical_device(device)
    g = _rngs.get(device)
    if g is None:
        if device == "cpu":
            g = np.random.default_rng(_DEFAULT_SEED)
        else:
            g = cupy_module().random.default_rng(_DEFAULT_SEED)
        _rngs[device] = g
    return g


def get_rng_state(device: str = "cpu") -> dict:
    """The generator's state as plain data (for checkpoints); cpu only."""
    if canonical_device(device) != "cpu":
        raise NotImplementedError("get_rng_state: only the cpu generator's state can be saved")
    return rng("cpu").bit_generator.state


def set_rng_state(state: dict, device: str = "cpu") -> None:
    if canonical_device(device) != "cpu":
        raise NotImplementedError("set_rng_state: only the cpu generator's state can be restored")
    rng("cpu").bit_generator.state = state
