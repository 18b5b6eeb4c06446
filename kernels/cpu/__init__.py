"""Numba CPU kernels: the reference's functions (``kernels/reference.py``), fused and parallel.

One module per family, each exposing the reference's names and signatures, so the registry
(``registry.FAST["cpu"]``) and the tests can swap them in: softmax, cross_entropy, layer_norm,
gelu, dropout, adamw (row-wise and elementwise), attention, nt_xent, matmul. ``_common`` holds the
pieces they share (a vectorizable exp, float64 row sums, array preparation, fallback counts).

Importing a module compiles nothing: Numba compiles each kernel on its first call, once per dtype
(float32, float64), and caches the machine code next to the source (``cache=True``). This package
imports only ``os`` (``import tinygrad_pt`` does not import Numba), and sets one default below.

OMP_WAIT_POLICY. Numba runs parallel loops on OpenMP threads (GNU libgomp here), which by default
wait for the next loop by spinning. When other processes hold the cores (``pytest -n 2`` on two
cores, a second job), a spinning thread keeps the one that has work off the CPU, and every
parallel call waits for the scheduler: measured at load average 5 on 2 cores, a cross-entropy
backward of 8192 x 256 took 16 ms per call (median of 15) against 0.7 ms with PASSIVE, where
waiting threads sleep; on an idle machine PASSIVE costs a thread wake-up, microseconds, per call.
libgomp reads the variable when Numba first starts its threads, so it is set here, before any
kernel runs, unless the user has set it.
"""
import os

# Whether the user chose a policy; a benchmark that starts another framework in a child process
# (tinygrad_pt/bench/worker.py) gives that child the user's environment, not this default.
USER_SET_WAIT_POLICY = "OMP_WAIT_POLICY" in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
