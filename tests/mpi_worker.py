"""Checks of data parallel training on the recipes, run under mpiexec by
tests/test_distributed_mpi.py (the collectives' own check is tinygrad_pt.distributed.check):

    mpiexec -n 2 python tests/mpi_worker.py same FAMILY[,FAMILY...] [STEPS [default]]
    mpiexec -n 2 python tests/mpi_worker.py raise
    mpiexec -n 2 python tests/mpi_worker.py mismatch

same      every rank first trains FAMILY alone on the whole global batch (no collective: the
          single-process reference), then the same recipe data parallel; prints, on rank 0, the
          relative difference (rel_diff) of the first step's averaged gradients (the largest over
          the optimizers) and of the weights after STEPS steps, as ``grad_rel=... weight_rel=...``
raise     rank 1 raises in the middle of training: the job must end with its error, not hang
mismatch  rank 1 builds a wider model: a clear error, on every rank
"""
from __future__ import annotations

import sys

import numpy as np

from tinygrad_pt import distributed as dist
from tinygrad_pt.distributed.check import rel_diff

# Small configs: the check is about agreement, not quality; a few seconds per family.
SMALL = {
    "ae": {"batch_size": 16, "hidden": 32, "latent": 8},
    "dae": {"batch_size": 16, "hidden": 32, "latent": 8},
    "vae": {"batch_size": 16, "hidden": 32, "latent": 8},
    "gan": {"batch_size": 16, "hidden": 32, "latent": 8, "score_samples": 16},
    "wgan_gp": {"batch_size": 16, "hidden": 32, "latent": 8, "score_samples": 16},
    "gpt": {"batch_size": 4, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
    "simclr": {"batch_size": 16, "hidden": 32, "feat_dim": 16, "proj_hidden": 16,
               "proj_dim": 8},
    "moco": {"batch_size": 16, "hidden": 32, "feat_dim": 16, "proj_hidden": 16, "proj_dim": 8,
             "queue_size": 48},
}


def _params(recipe):
    return [p for m in recipe.modules.values() for p in m.parameters()]


def _first_grads(recipe):
    """The gradients of the first training step, as its optimizers saw them (averaged under
    data parallel), before any update: each optimizer's step is intercepted once."""
    grads = {}
    for name, opt in recipe.optimizers.items():
        step = opt.step

        def first(*a, _name=name, _opt=opt, _step=step, **k):
            if _name not in grads:
                averager = getattr(_opt, "_averager", None)
                if averager is not None and not _opt._grads_synced:
                    averager.sync()
                    _opt._grads_synced = True
                grads[_name] = [p.grad.numpy().copy() for g in _opt.param_groups
                                for p in g["params"] if p.grad is not None]
            return _step(*a, **k)
        opt.step = first
    return grads


def _train(family, steps, parallel, config=None):
    from tinygrad_pt.train.recipes import get_recipe

    recipe = get_recipe(family)(SMALL[family] if config is None else config, seed=0)
    if parallel:
        recipe.data_parallel()
    grads = _first_grads(recipe)
    for step in range(steps):
        recipe.train_step(step)
    return grads, [p.numpy() for p in _params(recipe)]


def same(family: str, steps: int = 5, config=None) -> None:
    ref_grads, ref_weights = _train(family, steps, parallel=False, config=config)
    grads, weights = _train(family, steps, parallel=True, config=config)
    grad_rel = max(rel_diff(ref_grads[name], grads[name]) for name in ref_grads)
    weight_rel = rel_diff(ref_weights, weights)
    # Every rank must also hold the same weights as rank 0 (bit for bit: same updates).
    spread = max(float(np.abs(dist.all_gather(w)[0] - w).max()) for w in weights)
    if dist.rank() == 0:
        print(f"{family}: grad_rel={grad_rel:.3e} weight_rel={weight_rel:.3e} "
              f"rank_spread={spread:.3e}", flush=True)


def fail() -> None:
    from tinygrad_pt.train.recipes import get_recipe

    recipe = get_recipe("ae")(SMALL["ae"], seed=0)
    recipe.data_parallel()
    for step in range(1000):
        if step == 3 and dist.rank() == 1:
            raise RuntimeError("rank 1 failed on purpose at step 3")
        recipe.train_step(step)
    print("the other ranks finished: the failure did not end the job", flush=True)


def mismatch() -> None:
    config = dict(SMALL["ae"], hidden=32 if dist.rank() == 0 else 48)
    _train("ae", 1, parallel=True, config=config)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dist.init()
    from tinygrad_pt import set_num_threads
    set_num_threads(1)
    what = argv[0] if argv else ""
    if what == "same":
        # "default" after the steps: the family's own defaults instead of the small config
        config = {} if argv[3:4] == ["default"] else None
        for family in argv[1].split(","):  # several families in one job: one start-up
            same(family, int(argv[2]) if len(argv) > 2 else 5, config)
    elif what == "raise":
        fail()
    elif what == "mismatch":
        mismatch()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
