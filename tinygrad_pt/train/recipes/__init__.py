"""The registry of training recipes: name -> "module:Class", imported only when asked for.

    cls = get_recipe("vae")                       # imports tinygrad_pt.train.recipes.vae
    recipe = make_recipe("gpt", {"steps": 500}, device="cpu", seed=0)
    recipe, info = load_run("runs/gpt")           # a trained run, rebuilt from its checkpoint

Lazy imports keep ``tinygrad-pt --help`` fast and let one family's missing dependency (or a bug in
its module) leave the others usable. A value may also be a Recipe subclass itself, which is how
tests register a recipe of their own.
"""
from __future__ import annotations

import importlib
import os
import warnings

from ...errors import UserError
from ..checkpoint import (CHECKPOINT_NAME, CheckpointError, check_sizes, checkpoint_info,
                          load_checkpoint)
from ..recipe import Recipe

__all__ = ["RECIPES", "get_recipe", "make_recipe", "load_run"]

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
    "supervised": f"{_PKG}.supervised:SupervisedRecipe",
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
    """The recipe registered as `name`, built (and seeded: see Recipe) for `device` and `seed`."""
    return get_recipe(name)(config, device=device, seed=seed)


def load_run(from_dir, device: str = "cpu", require=None) -> tuple:
    """(recipe, info): the recipe of the run saved in `from_dir`, rebuilt from its checkpoint's
    recipe name, config and seed, with the saved state loaded; and the checkpoint's metadata.

    ``require(cls, info)``, when given, sees the recipe's class before anything is built, and
    raises if the run does not serve the caller (the probe: a family without an image encoder).
    A missing checkpoint is a FileNotFoundError; an unknown recipe or a config this version
    cannot build is a UserError; weights that do not fit are a CheckpointError.
    """
    from_dir = os.fspath(from_dir)
    path = os.path.join(from_dir, CHECKPOINT_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(2, f"no checkpoint here: no {CHECKPOINT_NAME} there; train a "
                                f"model first (tinygrad-pt train NAME --out {from_dir})", path)
    info = checkpoint_info(path)
    name = info["recipe"]
    if name not in RECIPES:
        raise UserError(f"{path} was written by recipe {name!r}, which this tinygrad_pt does not "
                        f"know (known: {', '.join(RECIPES)})")
    cls = get_recipe(name)
    if require is not None:
        require(cls, info)
    try:
        # Before anything is built: the config's values and the memory it needs, then the
        # config against the tensors the file holds (a small file must not allocate a huge model).
        check_sizes(path, cls, cls.validate_config(info["config"], device))
        recipe = cls(info["config"], device=device, seed=info["seed"])
    except CheckpointError:
        raise
    except ValueError as e:  # a config value out of range, a key this version no longer has
        raise UserError(f"cannot rebuild the {name!r} recipe from {path}: {e}") from e
    with warnings.catch_warnings():  # (on cuda: using a run needs no bit-identical continuation)
        warnings.simplefilter("ignore", RuntimeWarning)
        load_checkpoint(path, recipe)
    return recipe, info
