"""Numba CPU kernels: the reference's functions (``kernels/reference.py``), fused and parallel.

One module per family, each exposing the reference's names and signatures, so the registry
(``registry.FAST["cpu"]``) and the tests can swap them in: softmax, cross_entropy, layer_norm,
gelu, dropout, adamw (row-wise and elementwise), attention, nt_xent, matmul. ``_common`` holds the
pieces they share (a vectorizable exp, float64 row sums, array preparation, fallback counts).

Importing a module compiles nothing: Numba compiles each kernel on its first call, once per dtype
(float32, float64), and caches the machine code next to the source (``cache=True``). Importing
this package has no side effect (``import tinygrad_pt`` does not even import Numba).

How many threads a kernel runs on is the framework's thread policy (tinygrad_pt/threads.py):
``_common.launch`` asks it per call, and the first parallel call starts Numba's OpenMP threads
under the passive wait policy without leaving it in the environment.
"""
