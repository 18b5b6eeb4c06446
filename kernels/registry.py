"""Which implementation of each kernel family runs, per device and per user setting.

Every family has the reference implementation (``kernels/reference.py``, the specification) and may
have faster ones per device: Numba on the CPU (``kernels/cpu``), Numba-CUDA on the GPU
(``kernels/cuda``) and CUDA C for CuPy's RawModule (``kernels/cuda/cuda_c``). A faster
implementation is a module that defines the family's functions with the reference's names and
signatures; adding one is one line in ``FAST`` below (or in ``BY_NAME`` for one measured slower
or not yet measured, which runs only when asked for by name, as the matmul study kernels).

The user chooses with ``tg.set_kernels``:

    tg.set_kernels("reference")              every family runs the reference (to compare)
    tg.set_kernels("fast")                   the fastest available (the default)
    tg.set_kernels(attention="reference")    one family only; the others keep their setting
    tg.set_kernels(softmax="numba")          a named implementation where a device offers it
    tg.set_kernels(matmul="numba")           matmul and F.linear through the Numba study kernel
    tg.set_kernels(softmax="cuda_c")         the CUDA C kernel on the GPU (not measured yet)

or, before the package is imported, with the environment variable ``TINYGRAD_PT_KERNELS``
("reference", "fast", or a comma-separated list such as "fast,attention=reference").

Ops call ``kernels_for(family, xp)`` in every forward, so the answer is cached per (family, device)
until the settings change. ``which(family, device)`` says which implementation that is, and when a
faster one fell back to the reference, why:

    "numba"                                    the Numba kernels run
    "reference (numba unavailable: ImportError: No module named 'numba')"
    "reference (numba gelu_fwd failed to compile: TypingError: ...)"
    "numba (2 calls ran the reference: softmax_fwd: dtype float16 (2))"   per-call hand-backs

A fallback of the whole family (the module does not import, a kernel does not compile) also warns,
once per reason; so does each reason for which a CPU kernel hands single calls to the reference
(``kernels/cpu/_common.fallback``: an unsupported dtype, an empty array, ...).
"""
from __future__ import annotations

import importlib
import os
import sys
import types
import warnings
from collections import Counter

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
# benchmarks/kernels_cpu.py measured it faster than the reference (the figures, with the machine:
# benchmarks/results/kernels_cpu.md):
#   - matmul: NumPy's BLAS (the reference, `a @ b`) is several times faster than the blocked
#     Numba study kernel on large products, so kernels/cpu/matmul.py is only in BY_NAME below.
#   - nt_xent: the products through BLAS as the reference, the passes between them fused: 1.3x
#     faster at SimCLR's size (2N = 512, D = 128), 2.1x at 2N = 2048, on two threads.
#   - attention: the tiled kernel keeps memory O(T) per row instead of O(T^2) per batch and is
#     faster at long causal sequences; without the mask and at short T they are about even.
_CPU = "tinygrad_pt.kernels.cpu."
FAST: dict[str, dict[str, list[tuple[str, str]]]] = {
    "cpu": {family: [("numba", _CPU + family)] for family in
            ("softmax", "cross_entropy", "layer_norm", "gelu", "dropout", "adamw", "attention",
             "nt_xent")},
    # kernels/cuda/ (Numba-CUDA softmax, layer norm, cross-entropy) is tested against the
    # reference under NUMBA_ENABLE_CUDASIM=1 only; it is listed here once it has been measured on
    # a GPU (the GPU issue), so that "fast" never means "unmeasured".
    "cuda": {},
}

# Implementations that run only when asked for by name, never under "fast": measured slower than
# the reference, they stay reachable to study and compare them (tg.set_kernels(matmul="numba")),
# and on the GPU for where cuBLAS cannot serve (inside CUDA-graph stream capture, DESIGN.md).
# The CUDA C kernels (kernels/cuda/cuda_c, "cuda_c") are here until a GPU run has measured them
# correct and faster than the CuPy reference (benchmarks/gpu_kernels_check.py writes that
# measurement); only then do they move to FAST["cuda"].
_CUDA_C = "tinygrad_pt.kernels.cuda.cuda_c."
BY_NAME: dict[str, dict[str, list[tuple[str, str]]]] = {
    "cpu": {"matmul": [("numba", _CPU + "matmul")]},
    "cuda": {"matmul": [("cuda", "tinygrad_pt.kernels.cuda.matmul")],
             **{family: [("cuda_c", _CUDA_C + family)] for family in
                ("softmax", "cross_entropy", "layer_norm", "gelu", "adamw")}},
}

GLOBAL_SETTINGS = ("reference", "fast")

_ENV_VAR = "TINYGRAD_PT_KERNELS"

# Current settings: the default and per-family overrides (a family absent follows the default).
_default = "fast"
_per_family: dict[str, str] = {}

# (family, xp module or device name) -> the module to call; cleared whenever the settings change.
_cache: dict = {}
# (family, device) -> (implementation name, module): what _cache holds for every array module or
# device name of that device (one guarded module per device, see _guarded), and what which() says.
_chosen: dict = {}
_import_errors: dict[str, Exception] = {}
# (family, device) -> why the family runs the reference although a faster implementation was
# wanted (it failed to import or to compile), for which(); cleared with the settings.
_fell_back: dict = {}
# The CPU kernels' per-call hand-backs (kernels/cpu/_common.fallback_counts) when the settings
# last changed: which() reports those made since.
_handed_back_before: Counter = Counter()
_warned: set = set()  # the fallback messages already warned about: each warns once per process
# The families that may run something other than the reference on some device under the current
# settings (a name, or "fast" where FAST lists an implementation). An op whose reference is one
# array expression (matmul's `a @ b`) tests `family in ROUTED` and skips kernels_for otherwise:
# a set lookup, where kernels_for also costs array_module(...). Updated in place, never rebound,
# so a module may hold the set itself.
ROUTED: set = set()


# ----------------------------------------------------------------------------------------------------
# Settings


def _named_candidates(family: str, device: str) -> list:
    """(name, module path) of every implementation of `family` that `device` offers by name."""
    return FAST[device].get(family, []) + BY_NAME[device].get(family, [])


def _check_setting(value, family=None):
    if family is None:
        if value not in GLOBAL_SETTINGS:
            raise ValueError(f"set_kernels: unknown setting {value!r}; expected one of "
                             f"{list(GLOBAL_SETTINGS)}")
        return
    if value in GLOBAL_SETTINGS:
        return
    offered = sorted({name for dev in DEVICES for name, _ in _named_candidates(family, dev)})
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

    >>> saved = kernel_settings()
    >>> set_kernels("reference"); which("softmax")
    'reference'
    >>> set_kernels(**saved)
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
    _fell_back.clear()
    ROUTED.clear()
    ROUTED.update(f for f in FAMILIES if _may_leave_the_reference(f))
    _handed_back_before.clear()
    _handed_back_before.update(_cpu_hand_backs())


def _may_leave_the_reference(family: str) -> bool:
    """Whether the current settings may pick something other than the reference for `family`
    on some device: a name, or "fast" where FAST lists an implementation."""
    setting = _per_family.get(family, _default)
    if setting == "reference":
        return False
    return setting != "fast" or any(FAST[dev].get(family) for dev in DEVICES)


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


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _summary(error: Exception) -> str:
    """`Type: message` on one line, cut short: Numba's compile errors run to dozens of lines."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:240] + '...' if len(text) > 240 else text}"


def _load(name: str, path: str, family: str, required: bool):
    """Import an implementation module and check it defines the family's functions; None (the
    error kept in _import_errors) when it cannot be loaded and was not asked for by name."""
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
                               f"could not be loaded from {path}: {_summary(e)}") from e
        return None


def _compile_errors(module) -> tuple:
    """The exception types that mean "Numba could not compile this kernel" for `module`: Numba's
    own error classes (typing, lowering, unsupported features), when the module uses Numba."""
    if "numba" not in sys.modules:
        return ()
    from numba.core.errors import NumbaError  # noqa: PLC0415 (numba is imported already)
    return (NumbaError,)


def _guarded(module, name: str, family: str, device: str, required: bool):
    """The family's functions from `module`, each falling back to the reference when its kernel
    fails to compile. Numba compiles on a kernel's first call per dtype, so that is where a
    failure shows; the family then runs the reference on `device` until the settings change,
    which() says why, and a warning says so once. Asked for by name, a failure is an error.
    No cost on the way in: a try block is free in Python until something raises."""
    errors = _compile_errors(module)
    if not errors:
        return module
    ns = types.SimpleNamespace(__name__=module.__name__, implementation=name)

    def fall_back(function: str, error: Exception):
        reason = f"{name} {function} failed to compile: {_summary(error)}"
        if required:
            raise RuntimeError(f"kernels: implementation {name!r} of {family!r} was asked for "
                               f"but {function} failed to compile: {_summary(error)}") from error
        for f in FAMILIES[family]:  # this op's backward and every later call: the reference
            setattr(ns, f, getattr(reference, f))
        for key in [k for k, m in _cache.items() if m is ns]:
            _cache[key] = reference
        _chosen[(family, device)] = ("reference", reference)
        _fell_back[(family, device)] = reason
        _warn_once(f"kernels: {reason}; {family!r} runs the reference on {device} instead")

    def guard(function: str):
        kernel = getattr(module, function)

        def call(*args, **kwargs):
            try:
                return kernel(*args, **kwargs)
            except errors as e:
                fall_back(function, e)
                return getattr(reference, function)(*args, **kwargs)
        call.__name__ = call.__qualname__ = function
        call.__doc__ = kernel.__doc__
        return call

    for function in FAMILIES[family]:
        setattr(ns, function, guard(function))
    return ns


def _resolve(family: str, device: str):
    """(implementation name, module) for a family on a device under the current settings."""
    setting = _per_family.get(family, _default)
    if setting == "reference":
        return "reference", reference
    candidates = FAST[device].get(family, [])
    if setting != "fast":  # a named implementation: use it where this device offers it
        named = [(n, p) for n, p in _named_candidates(family, device) if n == setting]
        if named:
            name, path = named[0]
            module = _load(name, path, family, required=True)
            return name, _guarded(module, name, family, device, required=True)
    reasons = []
    for name, path in candidates:
        module = _load(name, path, family, required=False)
        if module is not None:
            return name, _guarded(module, name, family, device, required=False)
        reasons.append(f"{name} unavailable: {_summary(_import_errors[path])}")
    if reasons:
        _fell_back[(family, device)] = "; ".join(reasons)
        for reason in reasons:
            _warn_once(f"kernels: {reason}; {family!r} runs the reference on {device} instead")
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
    if (family, device) not in _chosen:
        _chosen[(family, device)] = _resolve(family, device)
    module = _chosen[(family, device)][1]
    _cache[(family, xp_or_device)] = module
    return module


def _cpu_hand_backs() -> Counter:
    """(function, reason) -> calls that a CPU kernel handed to the reference so far
    (kernels/cpu/_common.fallback_counts); empty while no CPU kernel module is imported."""
    common = sys.modules.get(_CPU + "_common")  # looked up, not imported: no Numba import here
    return Counter(common.fallback_counts) if common is not None else Counter()


def which(family: str, device: str = "cpu") -> str:
    """The implementation that runs for `family` on `device` under the current settings:
    "reference", "numba", "cuda" or "cuda_c", followed, when something fell back to the
    reference, by why in parentheses (see the module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"which: unknown kernel family {family!r}; expected one of "
                         f"{list(FAMILIES)}")
    device = _device_of(device)
    if (family, device) not in _chosen:
        _chosen[(family, device)] = _resolve(family, device)
    name = _chosen[(family, device)][0]
    if (family, device) in _fell_back:
        return f"{name} ({_fell_back[(family, device)]})"
    if name != "reference" and device == "cpu":
        since = _cpu_hand_backs() - _handed_back_before
        mine = {key: n for key, n in since.items() if key[0] in FAMILIES[family]}
        if mine:
            listed = "; ".join(f"{fn}: {reason} ({n})" for (fn, reason), n in mine.items())
            calls = sum(mine.values())
            return f"{name} ({calls} call{'s' if calls > 1 else ''} ran the reference: {listed})"
    return name


ROUTED.update(f for f in FAMILIES if _may_leave_the_reference(f))
_apply_env()
