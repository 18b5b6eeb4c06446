"""Numba-CUDA kernels: the reference's names and signatures, on CuPy arrays on a GPU.

One module per family (``softmax``, ``layer_norm``, ...), each defining the same ``<name>_fwd`` /
``<name>_bwd`` functions as ``kernels/reference.py``. On a GPU they take and return CuPy arrays
without a copy (Numba reads ``__cuda_array_interface__``). Without a GPU they run under Numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before ``numba.cuda`` is first imported) on NumPy
arrays, which is how ``tests/test_kernels_cuda_sim.py`` checks their logic on any machine.

Importing a module compiles nothing: ``numba.cuda.jit`` compiles a kernel on its first launch,
once per dtype. ``_common`` holds what the modules share (block size, block reductions, checks).
"""
