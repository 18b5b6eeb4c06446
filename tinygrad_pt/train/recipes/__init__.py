"""The registry of training recipes: name -> "module:Class", imported only when asked for.

    cls = get_recipe("vae")                       # imports tinygrad_pt.train.recipes.vae
    recipe = make_recipe("gpt", {"steps": 500}, device="cpu", seed=0)

Lazy imports keep ``tinygrad-pt --help`` fast and let one family's missing dependency (or a bug in
its module) leave the others usable. A value may also be a Recipe subclass itself, which is how
tests register a recipe of their own.
"""
from __future__ import annotations

import importlib

from ...backend import manual_seed
from ..recipe import Recipe

__all__ = ["RECIPES", "get_recipe", "make_recipe"]

_PKG = "tinygrad_pt.train.recipes"
RECIPES: dict = {
    "ae": f"{_PKG}.autoencoder:AERecipe",
    "dae": f"{_PKG}.autoencoder:DAERecipe",
    "vae": f"{_PKG}.vae:VAERecipe",
    "gan": f"{_PKG}.gan:GANRecipe",
    "wgan_gp": f"{_PKG}.wgan_gp:WGANGPRecipe",
    "gpt": f"{_PKG}.gpt:GPTRecipe",
    "simclr": f"{_PKG}.contrastive:SimCLRRecipe",
    "moco": f"{_PKG}.contrastive:MoCoRecipe",
}


def get_recipe(name: str) -> type:
    """The Recipe subclass registered as `name`.

    Raises ValueError for an unknown name (listing the known ones), ImportError when the
    recipe's module is missing, and TypeError when the entry is not a Recipe subclass.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    target = RECIPES[name]
    if isinstance(target, type):
        cls = target
    else:
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:  # the module exists but something it imports does not
                raise
            raise ImportError(f"recipe {name!r}: its module {module_name} is not there "
                              f"({target})") from e
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ImportError(f"recipe {name!r}: {module_name} defines no {class_name}")
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise TypeError(f"recipe {name!r}: {target!r} is not a subclass of "
                        "tinygrad_pt.train.recipe.Recipe")
    return cls


def make_recipe(name: str, config: dict | None = None, device: str = "cpu",
                seed: int = 0) -> Recipe:
    """Seed the framework's generators with `seed`, then build the recipe.

    Seeding first makes the initial weights (drawn by ``build``) a function of `seed` alone.
    """
    cls = get_recipe(name)
    manual_seed(seed)
    return cls(config, device=device, seed=seed)
