"""tinygrad_pt.kernels: the hot paths of the framework, each in several implementations.

- ``reference.py``: the specification, plain array code (NumPy or CuPy) with forward and backward
  side by side for every kernel family (matmul, softmax, cross-entropy, layer norm, GELU,
  attention, NT-Xent, AdamW, dropout).
- ``cpu/``: Numba ``@njit`` kernels; ``cuda/``: Numba-CUDA kernels on CuPy arrays. They expose the
  reference's names and signatures and are tested against it.
- ``registry.py``: picks the implementation per family and device (``tg.set_kernels``,
  ``TINYGRAD_PT_KERNELS``), and says which one runs (``registry.which``).

This directory sits at the top of the repository and is installed as ``tinygrad_pt.kernels``.
"""
