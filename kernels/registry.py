"""Which implementation of each kernel family runs, per device and per user setting.

Every family has the reference implementation (``kernels/reference.py``, the specification) and may
have faster ones per device: Numba on the CPU (``kernels/cpu``), Numba-CUDA on the GPU
(``kernels/cuda``). A faster implementation is a module that defines the family's functions with
the reference's names and signatures; adding one is one line in ``FAST`` below.

The user chooses with ``tg.set_kernels``:

    tg.set_kernels("reference")              every family runs the reference (to compare)
    tg.set_kernels("fast")                   the fastest available (the default)
    tg.set_kernels(attention="reference")    one family only; the others keep their setting
    tg.set_kernels(softmax="numba")          a named implementation where a device offers it

or, before the package is imported, with the environment variable ``TINYGRAD_PT_KERNELS``
("reference", "fast", or a comma-separated list such as "fast,attention=reference").

Ops call ``kernels_for(family, xp)`` in every forward, so the answer is cached per (family, device)
until the settings change. ``which(family, device)`` says which implementation that is.
"""
from __future__ import annotations

import importlib
import os
import warnings

import numpy as np

from tinygrad_pt.kernels import reference  # absolute: see the note in reference.py

# The functions each family defines (the same names in every implementation).
FAMILIES = {
    "matmul": ("matmul_fwd", "matmul_bwd"),
    "softmax": ("softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd"),
    "cross_entropy": ("cross_entropy_fwd", "cross_entropy_bwd"),
    "layer_norm": ("layer_norm_fwd", "layer_norm_bwd"),
    "gelu": ("gelu_fwd", "gelu_bwd"),
    "attention": ("attention_fwd", "attention_bwd"),
    "nt_xent": ("nt_xent_fwd", "nt_xent_bwd"),
    "adamw": ("adamw_update",),
    "dropout": ("dropout_fwd", "dropout_bwd"),
}

DEVICES = ("cpu", "cuda")

# Faster implementations, per device and family, fastest first: (name, module path). Modules are
# imported on first use; one that fails to import (Numba or CUDA missing) is skipped with a warning
# under "fast", and is an error when asked for by name. An entry is here only where
# benchmarks/kernels_cpu.py measured it faster than the reference (benchmarks/results/kernels_cpu.md):
#   - matmul: NumPy's BLAS (the reference, `a @ b`) is 3-6x faster than the blocked Numba study
#     kernel from 512^3 up, so kernels/cpu/matmul.py is not listed.
#   - nt_xent: the Numba kernel measured 0.68x (fwd) / 1.05x (bwd) of the reference at 1024x128,
#     whose similarity matrix is one BLAS product, so kernels/cpu/nt_xent.py is not listed.
#   - attention: the tiled kernel keeps memory O(T) per row instead of O(T^2) per batch and is
#     4.7x (fwd) / 1.8x (bwd) faster at T=1024 causal; non-causal and short T are about even.
_CPU = "tinygrad_pt.kernels.cpu."
FAST: dict[str, dict[str, list[tuple[str, str]]]] = {
    "cpu": {family: [("numba", _CPU + family)] for family in
            ("softmax", "cross_entropy", "layer_norm", "gelu", "dropout", "adamw", "attention")},
    # kernels/cuda/ (Numba-CUDA softmax, layer norm, cross-entropy) is tested against the
    # reference under NUMBA_ENABLE_CUDASIM=1 only; it is listed here once it has been measured on
    # a GPU (the GPU issue), so that "fast" never means "unmeasured".
    "cuda": {},
}

GLOBAL_SETTINGS = ("reference", "fast")

_ENV_VAR = "TINYGRAD_PT_KERNELS"

# Current settings: the default and per-family overrides (a family absent follows the default).
_default = "fast"
_per_family: dict[str, str] = {}

# (family, xp module or device name) -> the module to call; cleared whenever the settings change.
_cache: dict = {}
# (family, device) -> the implementation name that the cached module is, for which().
_chosen: dict = {}
_import_errors: dict[str, Exception] = {}


# ----------------------------------------------------------------------------------------------------
# Settings


def _check_setting(value, family=None):
    if family is None:
        if value not in GLOBAL_SETTINGS:
            raise ValueError(f"set_kernels: unknown setting {value!r}; expected one of "
                             f"{list(GLOBAL_SETTINGS)}")
        return
    if value in GLOBAL_SETTINGS:
        return
    offered = sorted({name for dev in DEVICES for name, _ in FAST[dev].get(family, [])})
    if value not in offered:
        raise ValueError(f"set_kernels: unknown implementation {value!r} for family {family!r}; "
                         f"expected one of {list(GLOBAL_SETTINGS) + offered}")


def set_kernels(default: str | None = None, **per_family: str | None) -> None:
    """Choose the kernel implementations.

    default: "reference" or "fast" for every family; giving it also clears earlier per-family
        choices, so ``set_kernels("reference")`` really means every family.
    per_family: family=setting, where setting is "reference", "fast", an implementation name that
        some device offers for that family ("numba", "cuda"), or None to follow the default again.
        A named implementation applies on the device that offers it; other devices use "fast".

    Unknown settings or family names raise ValueError listing the valid ones.

    >>> set_kernels("reference"); which("softmax")
    'reference'
    >>> set_kernels("fast")
    """
    global _default
    for family in per_family:
        if family not in FAMILIES:
            raise ValueError(f"set_kernels: unknown kernel family {family!r}; expected one of "
                             f"{list(FAMILIES)}")
    if default is not None:
        _check_setting(default)
    for family, value in per_family.items():
        if value is not None:
            _check_setting(value, family)
    # Everything validated: apply.
    if default is not None:
        _default = default
        _per_family.clear()
    for family, value in per_family.items():
        if value is None:
            _per_family.pop(family, None)
        else:
            _per_family[family] = value
    _cache.clear()
    _chosen.clear()


def kernel_settings() -> dict:
    """The current settings as keyword arguments for set_kernels, so they can be restored:
    ``saved = kernel_settings(); ...; set_kernels(**saved)``."""
    return {"default": _default, **_per_family}


def _parse_env(value: str) -> tuple:
    """'reference' / 'fast' / 'fast,attention=reference' -> (default, {family: setting})."""
    default, per_family = None, {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            family, setting = (s.strip() for s in item.split("=", 1))
            per_family[family] = setting
        else:
            default = item
    return default, per_family


def _apply_env():
    value = os.environ.get(_ENV_VAR, "").strip()
    if not value:
        return
    default, per_family = _parse_env(value)
    try:
        set_kernels(default, **per_family)
    except ValueError as e:
        raise ValueError(f"environment variable {_ENV_VAR}={value!r}: {e}") from None


# ----------------------------------------------------------------------------------------------------
# Lookup


def _device_of(xp_or_device) -> str:
    if isinstance(xp_or_device, str):
        if xp_or_device in DEVICES:
            return xp_or_device
        from tinygrad_pt.backend import canonical_device  # noqa: PLC0415 ("cuda:0", "gpu")
        return canonical_device(xp_or_device)
    if xp_or_device is np:
        return "cpu"
    if getattr(xp_or_device, "__name__", "") == "cupy":
        return "cuda"
    raise TypeError(f"kernels_for: expected an array module (numpy or cupy) or a device name, "
                    f"got {xp_or_device!r}")


def _load(name: str, path: str, family: str, required: bool):
    """Import an implementation module and check it defines the family's functions."""
    try:
        module = importlib.import_module(path)
        missing = [f for f in FAMILIES[family] if not hasattr(module, f)]
        if missing:
            raise ImportError(f"{path} does not define {missing}")
        return module
    except Exception as e:  # ImportError, or a CUDA/Numba set-up error raised at import
        _import_errors[path] = e
        if required:
            raise RuntimeError(f"kernels: implementation {name!r} of {family!r} was asked for but "
                               f"could not be loaded from {path}: {type(e).__name__}: {e}") from e
        warnings.warn(f"kernels: {name!r} implementation of {family!r} unavailable "
                      f"({type(e).__name__}: {e}); using the reference", RuntimeWarning,
                      stacklevel=3)
        return None


def _resolve(family: str, device: str):
    """(implementation name, module) for a family on a device under the current settings."""
    setting = _per_family.get(family, _default)
    if setting == "reference":
        return "reference", reference
    candidates = FAST[device].get(family, [])
    if setting != "fast":  # a named implementation: use it where this device offers it
        named = [(n, p) for n, p in candidates if n == setting]
        if named:
            return named[0][0], _load(*named[0], family, required=True)
    for name, path in candidates:
        module = _load(name, path, family, required=False)
        if module is not None:
            return name, module
    return "reference", reference


def kernels_for(family: str, xp_or_device):
    """The module whose ``<family>_fwd`` / ``_bwd`` functions an op should call.

    xp_or_device: the array module of the data (numpy or cupy) or a device name. Cheap: one
    dict lookup once the (family, device) pair has been resolved.
    """
    module = _cache.get((family, xp_or_device))
    if module is not None:
        return module
    if family not in FAMILIES:
        raise ValueError(f"kernels_for: unknown kernel family {family!r}; expected one of "
                         f"{list(FAMILIES)}")
    device = _device_of(xp_or_device)
    name, module = _resolve(family, device)
    _cache[(family, xp_or_device)] = module
    _chosen[(family, device)] = name
    return module


def which(family: str, device: str = "cpu") -> str:
    """The name of the implementation that runs for `family` on `device` ("reference", "numba",
    "cuda"), under the current settings."""
    if family not in FAMILIES:
        raise ValueError(f"which: unknown kernel family {family!r}; expected one of "
                         f"{list(FAMILIES)}")
    device = _device_of(device)
    if (family, device) not in _chosen:
        _chosen[(family, device)] = _resolve(family, device)[0]
    return _chosen[(family, device)]


_apply_env()
