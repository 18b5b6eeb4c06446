"""A check of an MPI installation and of the collectives, run under mpiexec:

    mpiexec -n 2 python -m tinygrad_pt.distributed.check

It checks all_reduce (sum, max), broadcast, DataParallel (rank 1 starts from other weights and
takes rank 0's; the averaged gradient is the full batch's, float32 and float16 on the wire) and
gather_rows' gradient, and prints "api: ok" on rank 0. The recipes' checks (one process against
data parallel, per family) are tests/mpi_worker.py: they train the recipes, which sit above this
package.
"""
from __future__ import annotations

import sys

import numpy as np

from .. import distributed as dist
from . import DataParallel, shard_bounds


def rel_diff(a: list, b: list) -> float:
    """||a - b|| / ||a|| over all the tensors of a and b taken as one vector (the model's
    weights, or its gradient): float32 rounding gives ~1e-7. (Per tensor, a max-relative measure
    is unfit: a bias initialised to 0 has max |a| of a few updates, and one near-zero gradient
    that Adam's division turns the other way is then a relative difference of order 1.)"""
    num = sum(float(((x.astype(np.float64) - y) ** 2).sum()) for x, y in zip(a, b))
    den = sum(float((x.astype(np.float64) ** 2).sum()) for x in a)
    return (num / max(den, 1e-300)) ** 0.5


def api() -> None:
    """DataParallel on a plain model: rank 1 starts from other weights (rank 0's win), the
    averaged gradient is the full batch's, fp16 on the wire within fp16's precision, and the
    collectives' results."""
    from .. import nn
    from ..backend import manual_seed
    from ..creation import tensor
    from ..nn import functional as F

    r, n = dist.rank(), dist.world_size()
    a = np.full(3, r + 1.0, dtype=np.float32)
    assert np.array_equal(dist.all_reduce(a), np.full(3, n * (n + 1) / 2)), a
    assert np.array_equal(dist.all_reduce(np.array([r], np.int64), op="max"), [n - 1])
    assert np.array_equal(dist.broadcast(np.array([r + 5.0])), [5.0])
    g = np.random.default_rng(0)
    x = g.standard_normal((8, 5)).astype(np.float32)
    y = g.standard_normal((8, 2)).astype(np.float32)

    def model_for(seed):
        manual_seed(seed)
        return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))

    ref = model_for(0)  # one process, the whole batch
    F.mse_loss(ref(tensor(x)), tensor(y)).backward()
    want = [p.grad.numpy() for p in ref.parameters()]
    # float32 in one bucket, in buckets of 32 numbers (the packing across bucket ends), float16
    # The first config relies on the average made when backward returns; the others also call
    # sync_gradients() after it, which must change nothing (averaging equal values is a no-op).
    for k, (wire, tol, bucket_mb) in enumerate(((np.float32, 1e-6, 25),
                                                (np.float32, 1e-6, 128 / 2**20),
                                                (np.float16, 2e-3, 25))):
        dp = DataParallel(model_for(0 if r == 0 else 7), bucket_mb=bucket_mb, wire_dtype=wire)
        lo, hi = shard_bounds(len(x), r, n)
        F.mse_loss(dp(tensor(x[lo:hi])), tensor(y[lo:hi])).backward()
        if k > 0:
            dp.sync_gradients()
        got = [p.grad.numpy() for p in dp.parameters()]
        worst = rel_diff(want, got)
        assert worst < tol, f"{np.dtype(wire).name} on the wire: rel_diff {worst:.2e} >= {tol}"
        if r == 0:
            print(f"DataParallel {np.dtype(wire).name}, buckets of {bucket_mb * 2**18:.0f} "
                  f"numbers: grad_rel={worst:.2e}", flush=True)
    # gather_rows: the gradient reaches each rank's own rows, scaled back by the average.
    t = tensor(x[r * 4:(r + 1) * 4], requires_grad=True)
    (dist.gather_rows(t) ** 2).sum().backward()
    assert np.allclose(t.grad.numpy() / n, 2 * x[r * 4:(r + 1) * 4]), "gather_rows backward"
    if r == 0:
        print("api: ok", flush=True)


def main(argv=None) -> int:
    dist.init()
    from ..threads import set_num_threads
    set_num_threads(1)
    api()
    return 0


if __name__ == "__main__":
    sys.exit(main())
