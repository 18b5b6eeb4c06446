"""Every CUDA C kernel compiles for sm_90 (H100/H200) with NVRTC: no GPU or driver needed.

NVRTC comes from NVIDIA's wheel ``nvidia-cuda-nvrtc-cu12``, which the ``dev`` extra installs on
Linux x86-64 (pyproject.toml), so CI runs this file; elsewhere it skips, saying why. Each family's
``SOURCE`` is compiled with exactly the ``NAME_EXPRESSIONS`` and ``_common.OPTIONS`` that CuPy's
RawModule gets on a GPU, through ptxas (sm_90 gives a cubin), and a failure shows NVRTC's log.

Also checked here, without a GPU: the launchers' choices (vector width, threads per row) and that
the registry reaches the kernels by name only.
"""
import importlib

import numpy as np
import pytest

from tinygrad_pt.kernels import registry
from tinygrad_pt.kernels.cuda import cuda_c
from tinygrad_pt.kernels.cuda.cuda_c import _common, nvrtc

needs_nvrtc = pytest.mark.skipif(nvrtc.find_nvrtc() is None,
                                 reason=f"NVRTC not installed: {nvrtc.why_missing()}")


@needs_nvrtc
@pytest.mark.parametrize("module_name", cuda_c.MODULES)
def test_every_kernel_compiles_for_sm_90(module_name):
    module = importlib.import_module(module_name)
    result = nvrtc.compile_source(module.SOURCE, module.NAME_EXPRESSIONS, arch="sm_90",
                                  options=_common.OPTIONS, name=module_name + ".cu")
    assert result.ok, f"{module_name} failed to compile for sm_90 (NVRTC " \
                      f"{nvrtc.version()}):\n{result.log}"
    assert set(result.lowered) == set(module.NAME_EXPRESSIONS)
    assert result.binary_bytes > 0
    # ptxas reports each kernel; a spill to local memory would slow a memory-bound kernel.
    summary = nvrtc.ptxas_summary(result.log, result.lowered)
    assert set(summary) == set(module.NAME_EXPRESSIONS), result.log
    spilled = {k: s for k, s in summary.items() if " 0 bytes spill stores" not in s}
    assert not spilled, f"{module_name}: kernels spill registers: {spilled}"


@needs_nvrtc
def test_a_compile_error_returns_nvrtcs_log():
    result = nvrtc.compile_source("__global__ void broken(float* x) { x[0] = undeclared; }", [])
    assert not result.ok
    assert "undeclared" in result.log


def test_modules_define_the_families_functions_and_import_without_cupy():
    for family, module_name in zip(cuda_c.FAMILIES, cuda_c.MODULES):
        module = importlib.import_module(module_name)
        for function in registry.FAMILIES[family]:
            assert callable(getattr(module, function)), f"{module_name} lacks {function}"
        assert module.SOURCE.startswith(_common.HEADER)
        # every instantiation is one of the four (dtype, width) pairs of a template
        for expr in module.NAME_EXPRESSIONS:
            assert expr.split("<")[1] in ("float, 4>", "float, 1>", "double, 2>", "double, 1>")


def test_registry_serves_cuda_c_by_name_only():
    assert registry.FAST["cuda"] == {}, "no GPU kernel is selected before a GPU run measured it"
    for family, module_name in zip(cuda_c.FAMILIES, cuda_c.MODULES):
        assert ("cuda_c", module_name) in registry.BY_NAME["cuda"][family]
    saved = registry.kernel_settings()
    try:
        registry.set_kernels(softmax="cuda_c")  # accepted; the CPU keeps running its own
        assert registry.which("softmax", "cpu") != "cuda_c"
    finally:
        registry.set_kernels(**saved)


class _FakeDeviceArray:
    """Just what vector_width reads: a dtype and a data pointer."""

    class _Data:
        def __init__(self, ptr):
            self.ptr = ptr

    def __init__(self, ptr, dtype=np.float32):
        self.data, self.dtype = self._Data(ptr), np.dtype(dtype)


def test_vector_width_needs_alignment_and_a_whole_number_of_packs_per_row():
    a, b, off = _FakeDeviceArray(4096), _FakeDeviceArray(8192), _FakeDeviceArray(4100)
    assert _common.vector_width(np.float32, a, b) == 4
    assert _common.vector_width(np.float64, a, b) == 2
    assert _common.vector_width(np.float32, a, b, row_length=4096) == 4
    assert _common.vector_width(np.float32, a, b, row_length=50257) == 1  # GPT-2's vocabulary
    assert _common.vector_width(np.float64, a, row_length=6) == 2
    assert _common.vector_width(np.float32, a, off) == 1  # a view 4 bytes into its buffer
    assert _common.vector_width(np.float32, a, None) == 4  # an absent weight


def test_row_threads_are_whole_warps_within_the_limit():
    for packs in (1, 31, 32, 128, 129, 1024, 10**6):
        t = _common.row_threads(packs)
        assert t % 32 == 0 and 32 <= t <= _common.ROW_THREADS_MAX
    assert _common.row_threads(16) == 32 and _common.row_threads(1024) == 256
    assert 1 <= _common.flat_blocks(1) <= _common.flat_blocks(10**9) == 132 * 8
