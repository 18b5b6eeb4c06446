"""CUDA C kernels for CuPy's RawModule: the memory-bound families written to reach bandwidth.

One module per family (``softmax``, ``cross_entropy``, ``layer_norm``, ``gelu``, ``adamw``), each
with the reference's names and signatures (``kernels/reference.py``), its CUDA C ``SOURCE`` (the
shared ``_common.HEADER`` followed by its kernel templates) and ``NAME_EXPRESSIONS`` (the
instantiations it launches). 16-byte loads (float4 / double2) where the row length and alignment
allow, warp-shuffle reductions, the online max-and-sum of softmax: see ``_common``.

Importing a module needs neither CuPy nor a GPU: the source is a string, compiled by CuPy on the
first launch. Without a GPU, ``nvrtc`` compiles the same source and name expressions for sm_90
(tests/test_cuda_c_compile.py), so CI knows that every kernel builds for an H100/H200.

Status: compiled in CI, not yet measured on a GPU, so the registry does not select them under
"fast"; they run when asked for by name, ``tg.set_kernels(softmax="cuda_c")`` (registry.BY_NAME),
and benchmarks/gpu_kernels_check.py checks and times them on a GPU.
"""
# The families here, in the order the compile test and the GPU check report them.
FAMILIES = ("softmax", "cross_entropy", "layer_norm", "gelu", "adamw")
MODULES = tuple(f"tinygrad_pt.kernels.cuda.cuda_c.{family}" for family in FAMILIES)
