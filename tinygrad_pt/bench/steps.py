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

__all__ = ["STEP_CASES", "step_cases", "build_recipe", "cycling", "describe"]

# case name -> (recipe, config overrides)
STEP_CASES = {
    "ae": ("ae", {"batch_size": 128}),
    "dae": ("dae", {"batch_size": 128}),
    "vae": ("vae", {"batch_size": 128}),
    "gan": ("gan", {"batch_size": 128}),
    "simclr": ("simclr", {}),   # batch 256 (two views each)
    "moco": ("moco", {}),       # batch 256, queue 1024
    "gpt": ("gpt", {}),         # 4 layers, 4 heads, 128 wide, T=128, batch 16, vocab 256 (bytes)
    # GPT-2 small's shape (124M parameters with GPT-2's vocabulary; here byte-level, vocab 256),
    # fp32: the GPU issue's tokens/s comparison. GPU only: one step takes seconds on a CPU.
    "gpt2-small": ("gpt", {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024,
                           "batch_size": 8}),
}
GPU_ONLY = ("gpt2-small",)


def step_cases(device: str) -> list:
    """The case names run by default on `device`."""
    return [name for name in STEP_CASES if device == "cuda" or name not in GPU_ONLY]


def build_recipe(name: str, device: str, config: dict | None = None):
    """The recipe of step case `name`, seed 0, quiet (no optimizer printout)."""
    import contextlib
    import io

    from ..train.recipes import make_recipe

    if name not in STEP_CASES:
        raise ValueError(f"bench steps: unknown model {name!r}; known: {', '.join(STEP_CASES)}")
    recipe, overrides = STEP_CASES[name]
    with contextlib.redirect_stdout(io.StringIO()):  # GPT's configure_optimizers prints a line
        return make_recipe(recipe, {**overrides, **(config or {})}, device=device, seed=0)


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


def tokens_per_step(recipe) -> int | None:
    """Tokens a GPT step trains on (batch x block), None for the other families."""
    c = recipe.config
    return c["batch_size"] * c["block_size"] if recipe.name == "gpt" else None
