"""Input checks and reshapes shared by both GPU kernel sets: the Numba-CUDA modules
(``kernels/cuda/*.py``, through ``_common``) and the CUDA C ones (``kernels/cuda/cuda_c``).

Plain array code with no Numba import, so that the CUDA C kernels load where numba-cuda does not
(it needs NumPy < 2.5, see pyproject.toml).
"""
from __future__ import annotations

import numpy as np

from tinygrad_pt.backend import array_module

DTYPES = (np.float32, np.float64)


def check_float(name, **arrays):
    """TypeError unless every array is float32 or float64, all of one dtype."""
    dtypes = {key: a.dtype for key, a in arrays.items() if a is not None}
    for key, dtype in dtypes.items():
        if dtype not in DTYPES:
            raise TypeError(f"{name}: {key} has dtype {dtype}; the CUDA kernels take float32 or "
                            f"float64")
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"{name}: the arrays must share one dtype; got {dtypes}")


def check_same_shape(name, a_name, a, b_name, b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: {a_name} shape {a.shape} != {b_name} shape {b.shape}")


def as_rows(x):
    """x (..., C) as a C-contiguous (N, C) array: a view when x already is contiguous."""
    xp = array_module(x)
    c = x.shape[-1]
    return xp.ascontiguousarray(x).reshape(-1, c)


def as_flat(x):
    """x as a C-contiguous 1-D array: a view when x already is contiguous, else a copy."""
    return array_module(x).ascontiguousarray(x).reshape(-1)
