"""Input checks and reshapes shared by both GPU kernel sets: the Numba-CUDA modules
(``kernels/cuda/*.py``, through ``_common``) and the CUDA C ones (``kernels/cuda/cuda_c``).

Plain array code with no Numba import, so that the CUDA C kernels load where numba-cuda does not
(it needs NumPy < 2.5, see pyproject.toml). The wrappers of both sets share their argument
handling here, each family's once; the two sets differ only in how they launch.
"""
from __future__ import annotations

import warnings

import numpy as np

from tinygrad_pt.backend import array_module
from tinygrad_pt.kernels import reference

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


# ----------------------------------------------------------------------------------------------------
# The wrappers' argument handling, one per family: both kernel sets differ only in how they launch.


def softmax_rows_fwd(x, axis, log, run):
    """softmax / log_softmax of x along `axis` through run(rows, y, log), which launches a kernel
    over C-contiguous (N, C) rows; the reference for what launches nothing (0-d, empty)."""
    name = "log_softmax_fwd" if log else "softmax_fwd"
    check_float(name, x=x)
    if x.ndim == 0 or x.size == 0:  # nothing to launch: the reference's answer
        return getattr(reference, name)(x, axis)
    xp = array_module(x)
    moved = xp.moveaxis(x, axis, -1)  # AxisError for a bad axis, as the reference
    rows = as_rows(moved)
    y = xp.empty_like(rows)
    run(rows, y, log)
    return xp.moveaxis(y.reshape(moved.shape), -1, axis)


def softmax_rows_bwd(dy, y, axis, log, run):
    """The backward of softmax_rows_fwd through run(dy_rows, y_rows, dx, log)."""
    name = "log_softmax_bwd" if log else "softmax_bwd"
    check_float(name, dy=dy, y=y)
    check_same_shape(name, "dy", dy, "y", y)
    if y.ndim == 0 or y.size == 0:
        return getattr(reference, name)(dy, y, axis)
    xp = array_module(y)
    y_moved = xp.moveaxis(y, axis, -1)
    y_rows, dy_rows = as_rows(y_moved), as_rows(xp.moveaxis(dy, axis, -1))
    dx = xp.empty_like(y_rows)
    run(dy_rows, y_rows, dx, log)
    return xp.moveaxis(dx.reshape(y_moved.shape), -1, axis)


def check_layer_norm_fwd(x, weight, bias) -> None:
    check_float("layer_norm_fwd", x=x, weight=weight, bias=bias)
    if x.ndim == 0 or x.size == 0:
        return
    c = x.shape[-1]
    for key, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (c,):
            raise ValueError(f"layer_norm_fwd: {key} has shape {p.shape}; expected ({c},) for "
                             f"x of shape {x.shape}")


def check_layer_norm_bwd(dy, x, weight, mean, rstd) -> None:
    check_float("layer_norm_bwd", dy=dy, x=x, weight=weight, mean=mean, rstd=rstd)
    check_same_shape("layer_norm_bwd", "dy", dy, "x", x)
    if x.ndim == 0 or x.size == 0:
        return
    for key, s in (("mean", mean), ("rstd", rstd)):
        if s.shape != x.shape[:-1]:
            raise ValueError(f"layer_norm_bwd: {key} has shape {s.shape}; expected "
                             f"{x.shape[:-1]} for x of shape {x.shape}")


def check_targets(name, n, target) -> None:
    """Class targets: one integer per row."""
    if target.shape != (n,):
        raise ValueError(f"{name}: target has shape {target.shape}; expected ({n},)")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target has dtype {target.dtype}; expected an integer dtype")


def adamw_done_without_kernel(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay,
                              kernel: str) -> bool:
    """Check adamw_update's arguments; True when the call is complete without a kernel: nothing
    to update, or state that is not C-contiguous (a flat view could not write it in place), which
    the reference updates, with a warning naming `kernel`."""
    check_float("adamw_update", p=p, g=g, m=m, v=v)
    for name, a in (("g", g), ("m", m), ("v", v)):
        check_same_shape("adamw_update", name, a, "p", p)
    if step < 1:  # 1 - beta^0 = 0: the bias correction would divide by zero
        raise ValueError(f"adamw_update: step is {step}; expected a count from 1")
    if p.size == 0:
        return True
    if not all(a.flags.c_contiguous for a in (p, m, v)):
        warnings.warn(f"adamw_update: p, m or v is not C-contiguous, so the {kernel} cannot "
                      "update it in place through a flat view; this call ran the reference "
                      "(kernels/reference.py)", RuntimeWarning, stacklevel=3)
        reference.adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)
        return True
    return False
