"""The CUDA C kernels' logic, run on the CPU: each family's SOURCE built by g++ with the shim of
tests/cuda_c_host.py (a block's threads are std::threads, __syncthreads a barrier, warp shuffles
an exchange between barriers), called through the real Python launchers on NumPy arrays, and held
to the float64 reference by the cases of benchmarks/gpu_kernels_check.py (the ones the GPU run
uses). So indices, packs and tails, the reductions, -inf rows, ignore_index, smoothing and weights
are tested without a GPU; speed and the device's own math are left to the GPU run.

Threads per row are capped at 64 here (two warps: the cross-warp step of every block reduction
still runs) and the elementwise kernels use blocks of 64, so the emulation stays quick; one test
runs the GPU's own caps. About 10 s, and 20 s when the five libraries are first built (they are
cached by content in the temp folder).
"""
import importlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_pt.kernels import reference as R
from tinygrad_pt.kernels.cuda import cuda_c
from tinygrad_pt.kernels.cuda.cuda_c import _common

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cuda_c_host as H  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the host build of the CUDA C kernels needs g++")

REPO = Path(__file__).resolve().parents[1]


def _check_module():
    spec = importlib.util.spec_from_file_location(
        "gpu_kernels_check", REPO / "benchmarks" / "gpu_kernels_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def on_host(monkeypatch):
    """The five CUDA C modules launching through the host build; small blocks."""
    modules = [importlib.import_module(m) for m in cuda_c.MODULES]
    for m in modules:
        monkeypatch.setattr(m, "get_kernel", H.emulated_get_kernel)
        if hasattr(m, "FLAT_THREADS"):
            monkeypatch.setattr(m, "FLAT_THREADS", 64)
    monkeypatch.setattr(_common, "ROW_THREADS_MAX", 64)
    return dict(zip(cuda_c.FAMILIES, modules))


def test_every_kernel_matches_the_reference_on_the_host(on_host):
    for m in on_host.values():
        assert not H.uses_only_known_builtins(m.SOURCE), "a CUDA builtin the shim lacks"
    check = _check_module()
    H.LAUNCHED.clear()
    rows = check.check("cuda_c (host)", lambda family: on_host[family], np,
                       (np.float32, np.float64), quick=True)
    bad = [r for r in rows if r[4] != "ok"]
    assert not bad, "\n".join(" | ".join(map(str, r)) for r in bad[:10])
    # every instantiation ran: the 16-byte and the scalar path of each kernel, both dtypes
    wanted = {f"{family}: {e}" for family, m in on_host.items() for e in m.NAME_EXPRESSIONS}
    assert wanted <= set(H.LAUNCHED), f"never launched: {sorted(wanted - set(H.LAUNCHED))}"


def test_the_gpus_block_sizes_on_the_host(on_host, monkeypatch):
    monkeypatch.setattr(_common, "ROW_THREADS_MAX", 512)
    x = np.random.default_rng(0).standard_normal((2, 8192)).astype(np.float32)
    H.LAUNCHED.clear()
    y = on_host["softmax"].softmax_fwd(x)
    (grid, block), = H.LAUNCHED["softmax: softmax_fwd<float, 4>"]
    assert grid == (2,) and block == (512,)  # sixteen warps
    np.testing.assert_allclose(y, R.softmax_fwd(x.astype(np.float64)), rtol=1e-5)


def test_the_host_run_catches_a_kernel_that_skips_a_pack(on_host, monkeypatch):
    softmax = on_host["softmax"]
    sweep = "for (int k = threadIdx.x; k < packs; k += blockDim.x) {\n        const Pack<T, V> p"
    assert sweep in softmax.SOURCE
    monkeypatch.setattr(softmax, "SOURCE", softmax.SOURCE.replace(
        sweep, sweep.replace("k < packs", "k < packs - 1"), 1))
    x = np.random.default_rng(1).standard_normal((3, 1000)).astype(np.float32)
    y = softmax.softmax_fwd(x)  # the statistics miss the row's last four values
    assert not np.allclose(y, R.softmax_fwd(x), rtol=1e-4)
