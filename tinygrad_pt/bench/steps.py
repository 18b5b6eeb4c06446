"""Whole training steps of each model family, on fixed data.

A step case is a recipe (tinygrad_pt/train/recipes) built with the bench's config and seed 0.
Four batches are drawn up front with ``recipe.draw_batch()`` (indices, augmentations: NumPy work
that is the same whatever the framework) and the timed call is ``recipe.step_on(*batch)``, cycling
through them: host-to-device copy, forward, backward, optimizer update (and for GPT gradient
clipping and the learning-rate schedule), exactly what the training loop runs. The torch mirror
(bench/torch_steps.py) starts from the same weights and takes the same batches.

Sizes: the model issue's defaults, with the image families at batch 128 (their default is 64; the
performance target is stated for 128-256). The same sizes on every device, so that CPU and GPU
rows compare directly.
"""
from __future__ import annotations

__all__ = ["STEP_CONFIGS", "step_config", "build_recipe", "cycling"]

STEP_CONFIGS = {
    "ae": {"batch_size": 128},
    "dae": {"batch_size": 128},
    "vae": {"batch_size": 128},
    "gan": {"batch_size": 128},
    "simclr": {},   # batch 256 (two views each)
    "moco": {},     # batch 256, queue 1024
    "gpt": {},      # 4 layers, 4 heads, 128 wide, T=128, batch 16, vocab 256 (bytes)
}


def step_config(name: str) -> dict:
    if name not in STEP_CONFIGS:
        raise ValueError(f"bench steps: unknown model family {name!r}; known: "
                         f"{', '.join(STEP_CONFIGS)}")
    return dict(STEP_CONFIGS[name])


def build_recipe(name: str, device: str, config: dict | None = None):
    """The recipe for family `name`, seed 0, quiet (no optimizer printout)."""
    import contextlib
    import io

    from ..train.recipes import make_recipe

    with contextlib.redirect_stdout(io.StringIO()):  # GPT's configure_optimizers prints a line
        return make_recipe(name, {**step_config(name), **(config or {})}, device=device, seed=0)


def cycling(step, batches):
    """A zero-argument call doing ``step(*batch)`` on the next of `batches`, round and round."""
    state = {"i": 0}

    def run():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        return step(*batch)
    return run


def describe(recipe) -> str:
    """The size of a step, for the table."""
    c = recipe.config
    if recipe.name == "gpt":
        return (f"{c['n_layer']}L {c['n_head']}H {c['n_embd']}w T={c['block_size']} "
                f"B={c['batch_size']}")
    return f"batch {c['batch_size']}"
