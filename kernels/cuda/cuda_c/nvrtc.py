"""Compile CUDA C source with NVRTC through ctypes: no GPU, no driver, no CuPy needed.

NVRTC (NVIDIA's runtime compiler) is a plain shared library; NVIDIA ships it as a wheel
(``nvidia-cuda-nvrtc-cu12``: ``nvidia/cuda_nvrtc/lib/libnvrtc.so.12``; the CUDA 13 wheel
``nvidia-cuda-nvrtc``: ``nvidia/cu13/lib/libnvrtc.so.13``). It compiles for any architecture on
any x86-64 Linux machine, which is how CI checks that every CUDA C kernel builds for the H100/H200
(sm_90) without one (tests/test_cuda_c_compile.py). On a GPU, CuPy's RawModule compiles the same
source with the same name expressions (``_common.OPTIONS``), so what compiles here is what runs.

    >>> lib = find_nvrtc()                               # doctest: +SKIP
    >>> result = compile_source(SOURCE, ["softmax_fwd<float, 4>"])   # doctest: +SKIP
    >>> result.ok, result.lowered["softmax_fwd<float, 4>"]           # doctest: +SKIP

``compile_source`` targets sm_90 by default, so NVRTC runs ptxas too (register allocation,
spills: the log of ``--ptxas-options=-v`` lists them per kernel) and returns a cubin.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
from dataclasses import dataclass, field

ARCH = "sm_90"  # the H100 and H200 (compute capability 9.0)

_lib = None
_lib_error: str | None = None


def _candidates() -> list[str]:
    """libnvrtc paths to try, the wheels' first (in every sys.path entry, so a --target install
    on PYTHONPATH counts), then the system's (a CUDA toolkit, or the loader's own search)."""
    found = []
    for entry in sys.path:
        for pattern in ("nvidia/cuda_nvrtc/lib/libnvrtc.so.*", "nvidia/cu*/lib/libnvrtc.so.*"):
            found += sorted(p for p in glob.glob(os.path.join(entry or ".", pattern))
                            if ".alt." not in p and "builtins" not in p)
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    found += sorted(glob.glob(os.path.join(cuda_home, "lib64", "libnvrtc.so*")))
    return found + ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]


def find_nvrtc():
    """The loaded libnvrtc (ctypes.CDLL), or None when none can be loaded; ``why_missing()``
    then says what was tried."""
    global _lib, _lib_error
    if _lib is not None or _lib_error is not None:
        return _lib
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        _declare(lib)
        _lib = lib
        return lib
    _lib_error = ("no libnvrtc could be loaded (install the wheel: pip install -e \".[dev]\" "
                  "or pip install nvidia-cuda-nvrtc-cu12); tried: " + "; ".join(errors[:4]))
    return None


def why_missing() -> str | None:
    """Why find_nvrtc() found nothing, or None when it found a library."""
    find_nvrtc()
    return _lib_error


def _declare(lib):
    """The C signatures of the NVRTC calls used here (nvrtc.h): every call returns an
    nvrtcResult (0 = NVRTC_SUCCESS); a program is an opaque pointer."""
    p, c_size = ctypes.c_void_p, ctypes.c_size_t
    sigs = {
        "nvrtcVersion": [ctypes.POINTER(ctypes.c_int)] * 2,
        "nvrtcCreateProgram": [ctypes.POINTER(p), ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
                               p, p],
        "nvrtcDestroyProgram": [ctypes.POINTER(p)],
        "nvrtcAddNameExpression": [p, ctypes.c_char_p],
        "nvrtcCompileProgram": [p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)],
        "nvrtcGetLoweredName": [p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)],
        "nvrtcGetProgramLogSize": [p, ctypes.POINTER(c_size)],
        "nvrtcGetProgramLog": [p, ctypes.c_char_p],
        "nvrtcGetPTXSize": [p, ctypes.POINTER(c_size)],
        "nvrtcGetCUBINSize": [p, ctypes.POINTER(c_size)],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    lib.nvrtcGetErrorString.argtypes, lib.nvrtcGetErrorString.restype = [ctypes.c_int], \
        ctypes.c_char_p


def version() -> tuple[int, int] | None:
    """NVRTC's (major, minor), or None without the library."""
    lib = find_nvrtc()
    if lib is None:
        return None
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


@dataclass
class CompileResult:
    """What one NVRTC compilation gave: ok, the log (errors, warnings and ptxas's -v lines),
    each name expression's mangled (lowered) name, and the size of the PTX or cubin."""
    ok: bool
    log: str
    lowered: dict = field(default_factory=dict)
    binary_bytes: int = 0
    arch: str = ARCH


def _check(lib, status, what):
    if status != 0:
        raise RuntimeError(f"NVRTC {what} failed: {lib.nvrtcGetErrorString(status).decode()}")


def compile_source(source: str, name_expressions, arch: str = ARCH, options=(),
                   name: str = "kernels.cu") -> CompileResult:
    """Compile `source` for `arch` ("sm_90": a cubin, through ptxas; "compute_90": PTX only),
    instantiating every template named in `name_expressions` ("softmax_fwd<float, 4>"), as
    CuPy's RawModule(name_expressions=...) does. A compile error is a result with ok False and
    NVRTC's log, not an exception; RuntimeError only when the library itself is missing or fails."""
    lib = find_nvrtc()
    if lib is None:
        raise RuntimeError(why_missing())
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                       None, None), "nvrtcCreateProgram")
    try:
        for expr in name_expressions:
            _check(lib, lib.nvrtcAddNameExpression(prog, expr.encode()), "nvrtcAddNameExpression")
        opts = [f"--gpu-architecture={arch}", *options]
        if arch.startswith("sm_"):
            opts.append("--ptxas-options=-v")  # registers, shared memory and spills in the log
        argv = (ctypes.c_char_p * len(opts))(*(o.encode() for o in opts))
        status = lib.nvrtcCompileProgram(prog, len(opts), argv)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = buf.value.decode(errors="replace")
        if status != 0:
            return CompileResult(False, f"{lib.nvrtcGetErrorString(status).decode()}\n{log}",
                                 arch=arch)
        lowered = {}
        for expr in name_expressions:
            out = ctypes.c_char_p()
            _check(lib, lib.nvrtcGetLoweredName(prog, expr.encode(), ctypes.byref(out)),
                   f"nvrtcGetLoweredName({expr})")
            lowered[expr] = out.value.decode()
        getter = lib.nvrtcGetCUBINSize if arch.startswith("sm_") else lib.nvrtcGetPTXSize
        _check(lib, getter(prog, ctypes.byref(size)), getter.__name__)
        return CompileResult(True, log, lowered, size.value, arch)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def ptxas_summary(log: str, lowered: dict) -> dict:
    """{name expression: "R registers, S bytes smem, spills"} read from ptxas's -v lines
    ("Compiling entry function '<mangled>'" then "Used N registers, ..."; spill stores and
    loads on the line before)."""
    by_mangled = {v: k for k, v in lowered.items()}
    out, current, spills = {}, None, ""
    for line in log.splitlines():
        if "Compiling entry function" in line:
            mangled = line.split("'")[1] if "'" in line else ""
            current, spills = by_mangled.get(mangled), ""
        elif "spill stores" in line:
            spills = line.split(".", 1)[-1].strip()  # "ptxas . 0 bytes stack frame, ..."
        elif "Used" in line and "registers" in line and current is not None:
            used = line.split("Used", 1)[1].strip()
            out[current] = f"used {used}" + (f"; {spills}" if spills else "")
            current = None
    return out
