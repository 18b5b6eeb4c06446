"""AdamW, one fused elementwise kernel updating p, m, v in place (Numba-CUDA).

Same name, signature and result as ``kernels/reference.py``:
``adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)`` (PyTorch's rule, step
counting from 1), updating the arrays p, m (exp_avg) and v (exp_avg_sq) in place and returning
None. The reference has no maximize or amsgrad, so neither has this kernel (Adam's L2 penalty is
folded into g by the optimizer, which then passes weight_decay = 0). CuPy float32 / float64 on a
GPU, NumPy under the simulator (``NUMBA_ENABLE_CUDASIM=1``); other dtypes raise TypeError,
shapes that differ raise ValueError.

Kernel ``_adamw_flat``: a grid-stride loop over the flattened arrays (``_common.flat_blocks``), no
shared memory. Each element reads p, g, m, v once and writes p, m, v once (7 accesses, the least
possible; the reference's array statements make about 20 passes). The per-step scalars
(1 - lr * weight_decay, lr / (1 - beta1^step), 1 / sqrt(1 - beta2^step)) are computed once on
the host.

In place: p, m and v are updated through 1-D views, which exist only for C-contiguous arrays
(the optimizer's state, made by zeros_like, is as contiguous as the parameter). For a p, m or v
that is not, the call runs the reference instead (correct in place, only slower) and says so with
a RuntimeWarning, shown once per call site. g may have any strides (a contiguous copy is read).

Precision: the arithmetic runs in float64 also for float32 arrays, each new m, v and p rounded
once on store; so results are within a few ulps of the reference run in float64, and not bit
for bit those of the reference run in float32 (which rounds every intermediate to float32).
"""
from __future__ import annotations

import math

from numba import cuda, float64

from ._checks import adamw_done_without_kernel
from ._common import THREADS, as_flat, flat_blocks

# --------------------------------------------------------------------------------------------------
# Kernel: p, g, m, v C-contiguous 1-D arrays of one dtype; the scalars are Python floats.


@cuda.jit
def _adamw_flat(p, g, m, v, decay, beta1, beta2, step_size, inv_sqrt_bias2, eps):
    for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
        gi = float64(g[i])
        mi = float64(m[i]) * beta1 + gi * (1.0 - beta1)  # first moment
        vi = float64(v[i]) * beta2 + gi * gi * (1.0 - beta2)  # second moment
        m[i] = mi
        v[i] = vi
        # decoupled decay of the old p, then the bias-corrected step
        p[i] = float64(p[i]) * decay - (mi * step_size) / (math.sqrt(vi) * inv_sqrt_bias2 + eps)


# --------------------------------------------------------------------------------------------------
# Wrapper with the reference's signature


def adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """One AdamW step on p, m, v in place:

        p -= lr * weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p -= lr * (m / (1 - beta1^step)) / (sqrt(v) / sqrt(1 - beta2^step) + eps)
    """
    if adamw_done_without_kernel(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay,
                                 "CUDA kernel"):
        return None
    bias1 = 1.0 - beta1 ** step
    bias2 = 1.0 - beta2 ** step
    # reshape(-1) of a C-contiguous array is a view: the kernel writes into p, m, v themselves
    _adamw_flat[flat_blocks(p.size), THREADS](
        p.reshape(-1), as_flat(g), m.reshape(-1), v.reshape(-1), float(1.0 - lr * weight_decay),
        float(beta1), float(beta2), float(lr / bias1), float(1.0 / math.sqrt(bias2)), float(eps))
    return None
