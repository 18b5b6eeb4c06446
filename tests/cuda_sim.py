"""What the CUDA kernel tests share: where they run and how arrays get there.

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before numba.cuda is first
imported) the kernels take NumPy arrays; on a GPU, CuPy arrays. Without either, a test module
calls ``skip_unless_cuda_or_simulator()`` first and is skipped as a whole.
"""
import os

import numpy as np
import pytest

from tinygrad_pt.backend import cuda_available

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def skip_unless_cuda_or_simulator():
    if not SIMULATOR and not cuda_available():
        pytest.skip("the CUDA kernels need a GPU with CuPy, or Numba's simulator: run with "
                    "NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)


def to_device(a):
    """NumPy under the simulator; CuPy on a GPU."""
    if SIMULATOR or a is None:
        return a
    import cupy  # noqa: PLC0415 (GPU only)
    return cupy.asarray(a)


def to_host(a):
    return a if a is None or isinstance(a, np.ndarray) else a.get()
