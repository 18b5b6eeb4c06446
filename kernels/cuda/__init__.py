"""The GPU kernels: two sets with the reference's names and signatures, on CuPy arrays.

``cuda_c/`` (CUDA C for CuPy's RawModule): the kernels written to reach memory bandwidth for the
memory-bound families (softmax/log_softmax, cross-entropy, layer norm, GELU, AdamW): 16-byte
loads, warp-shuffle reductions, the online softmax. CI compiles every one for sm_90 with NVRTC
(tests/test_cuda_c_compile.py); a GPU run checks and times them (benchmarks/gpu_check.sh).

The modules directly here (``softmax``, ``layer_norm``, ``attention``, ``matmul``, ...): Numba-CUDA
kernels, kept as study versions whose logic is tested on any machine. On a GPU they take and
return CuPy arrays without a copy (Numba reads ``__cuda_array_interface__``). Without a GPU they
run under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before ``numba.cuda`` is first
imported) on NumPy arrays, which is how ``tests/test_kernels_cuda_sim*.py`` check them. Their
block reductions go through shared memory (the simulator lacks warp shuffles in some Numba
versions), so they are written for readability and testability, not for bandwidth.

Neither set is selected by the registry under "fast" until a GPU run has measured it correct and
faster than the CuPy reference; each is reachable by name (kernels/registry.py, BY_NAME).

Importing a module compiles nothing: ``numba.cuda.jit`` compiles a kernel on its first launch,
once per dtype, and CuPy compiles a RawModule on its first use. ``_common`` holds what the
Numba-CUDA modules share (block size, block reductions); ``_checks`` the input checks both sets
share (no Numba import, so the CUDA C set loads without numba-cuda).
"""
