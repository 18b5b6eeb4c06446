"""Training: the Recipe interface, the shared loop, checkpoints, the metrics log and plots.

    from tinygrad_pt.train import make_recipe, train
    recipe = make_recipe("vae", {"steps": 1000})
    final = train(recipe, "runs/vae")

Plots (``tinygrad_pt.train.plots``) import matplotlib, so they are not imported here.
"""
from .checkpoint import checkpoint_info, load_checkpoint, save_checkpoint
from .loop import train
from .metrics import MetricsLog, read_metrics
from .recipe import Recipe
from .recipes import RECIPES, get_recipe, make_recipe

__all__ = ["Recipe", "train", "save_checkpoint", "load_checkpoint", "checkpoint_info",
           "MetricsLog", "read_metrics", "RECIPES", "get_recipe", "make_recipe"]
