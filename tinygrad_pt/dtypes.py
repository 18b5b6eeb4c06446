"""PyTorch's dtype names (``tg.float32``, ``tg.long``, ...) as the NumPy dtypes they stand for.

A tensor's dtype is a NumPy dtype (``x.dtype == np.float32``), so these are aliases, not a type
of their own: ``tg.zeros(3, dtype=tg.long)``, ``x.to(tg.float64)`` and ``x.dtype == tg.float32``
all work, and so do NumPy's spellings. ``float``, ``int`` and ``bool`` shadow Python's builtins
as attributes of ``tg`` only (as in PyTorch); this module uses none of the builtins.
"""
import numpy as np

__all__ = ["float16", "half", "float32", "float", "float64", "double", "int8", "uint8", "int16",
           "short", "int32", "int", "int64", "long", "bool"]

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)  # noqa: A001 (PyTorch's name)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)  # noqa: A001 (PyTorch's name)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001 (PyTorch's name)
