"""Checkpoints: everything a recipe needs to continue training, in one safetensors file.

A checkpoint holds arrays and strings only (no pickle), written atomically by ``tg.save``:

  module.<name>.<param>   every parameter and buffer of ``recipe.modules[name]`` (state_dict)
  optim.<name>.<key>      ``recipe.optimizers[name].state_dict()``: moments, step counts, lr, ...
  sched.<name>.<key>      ``recipe.schedulers[name].state_dict()``
  extra.<key>             ``recipe.extra_state()`` (MoCo's queue of negatives, ...)

and in the header's str -> str metadata:

  format_version   FORMAT_VERSION, so an old file gives a clear error instead of a wrong load
  recipe           the recipe's name ("gpt", "vae", ...)
  config           the recipe's config as JSON (the model is rebuilt from it)
  step             completed optimisation steps
  seed, device     what the run was started with
  rng_recipe       ``recipe.rng.bit_generator.state`` as JSON (draws batches and augmentations)
  rng_backend      ``tinygrad_pt.backend.get_rng_state("cpu")`` as JSON (dropout, noise, latents)
  rng_cuda         "not saved": CuPy's generator state cannot be read back, so a run on
                   device="cuda" resumes statistically, not bitwise, identically (a warning says so)
  elapsed          seconds of training so far (the metrics log's clock continues from it)

Restoring both generators with the weights and optimizer state is what makes resume on the cpu
bit-identical: N steps + save + load + N steps gives exactly the arrays of 2N steps in one go.
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np

from ..backend import get_rng_state, set_rng_state
from ..errors import UserError
from ..serialization import load, load_metadata, save

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_info", "CHECKPOINT_NAME",
           "FORMAT_VERSION", "CheckpointError"]

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.safetensors"  # the loop's file name inside a run directory
# Config keys that steer only the loop, not the model or the data: a resumed run may change them.
# ("steps" also sets the length of some learning-rate schedules: changing it warns.)
LOOP_KEYS = ("steps", "eval_every", "log_every", "checkpoint_every")
_SECTIONS = ("module", "optim", "sched", "extra")


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded into this recipe (another recipe, another config,
    another format version, missing or unexpected entries)."""


# ----------------------------------------------------------------------------------------------------
# JSON for generator states (plain ints and dicts, plus ndarrays for MT19937-style generators)

def _to_json(obj):
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.integer):
        return int(obj)
    raise TypeError(f"checkpoint: cannot store a {type(obj).__name__} in JSON metadata")


def _from_json(obj):
    if "__ndarray__" in obj:
        return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
    return obj


def _config_json(config: dict) -> str:
    try:
        return json.dumps(config, sort_keys=True, default=_to_json)
    except TypeError as e:
        raise TypeError(f"save_checkpoint: the recipe's config must be JSON-serialisable "
                        f"(numbers, strings, lists, dicts): {e}") from None


def _check_name(kind: str, name) -> None:
    # The key layout is "<section>.<name>.<key>": a dot inside a name would make it ambiguous.
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"save_checkpoint: recipe.{kind} keys must be non-empty strings without "
                         f"dots, got {name!r}")


# ----------------------------------------------------------------------------------------------------
# Save

def save_checkpoint(path, recipe, step: int, elapsed: float = 0.0) -> str:
    """Write `recipe`'s full training state at `step` (completed steps) to `path`; returns it.

    The write is atomic (a temporary file renamed over `path`), so an interrupted save leaves the
    previous checkpoint intact.
    """
    arrays = {}
    for kind, section, objects in (("modules", "module", recipe.modules),
                                   ("optimizers", "optim", recipe.optimizers),
                                   ("schedulers", "sched", recipe.schedulers)):
        for name, obj in objects.items():
            _check_name(kind, name)
            for key, value in obj.state_dict().items():
                arrays[f"{section}.{name}.{key}"] = value
    extra = recipe.extra_state()
    if not isinstance(extra, dict):
        raise TypeError(f"save_checkpoint: {recipe.name}.extra_state() must return a dict of "
                        f"name -> array, got {type(extra).__name__}")
    for key, value in extra.items():
        if isinstance(value, (np.generic, int, float)):  # a counter kept as a number: 0-d array
            value = np.asarray(value)
        arrays[f"extra.{key}"] = value

    metadata = {
        "format_version": str(FORMAT_VERSION),
        "recipe": recipe.name,
        "config": _config_json(recipe.config),
        "step": str(int(step)),
        "seed": str(int(recipe.seed)),
        "device": str(recipe.device),
        "rng_recipe": json.dumps(recipe.rng.bit_generator.state, default=_to_json),
        "rng_backend": json.dumps(get_rng_state("cpu"), default=_to_json),
        "rng_cuda": "not saved",
        "elapsed": repr(float(elapsed)),
    }
    save(arrays, path, metadata=metadata)
    return os.fspath(path)


# ----------------------------------------------------------------------------------------------------
# Load

def checkpoint_info(path) -> dict:
    """The metadata of a checkpoint, parsed: recipe, config (dict), step, seed, device, elapsed,
    format_version, rng_recipe / rng_backend (dicts). Reads only the header.

    Raises FileNotFoundError for a missing file and CheckpointError for a file that is not a
    tinygrad_pt training checkpoint or has another format version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no checkpoint here (resuming or sampling a run needs the "
                                "checkpoint.safetensors that training writes)", path)
    meta = load_metadata(path)
    if "format_version" not in meta or "recipe" not in meta:
        raise CheckpointError(f"{path!r} is a safetensors file but not a tinygrad_pt training "
                              "checkpoint (its metadata has no format_version/recipe); "
                              "tg.load reads plain state dicts")
    if meta["format_version"] != str(FORMAT_VERSION):
        raise CheckpointError(f"{path!r} has checkpoint format version {meta['format_version']}, "
                              f"but this tinygrad_pt reads version {FORMAT_VERSION}; train again "
                              "or load it with the tinygrad_pt version that wrote it")
    try:
        return {
            "format_version": int(meta["format_version"]),
            "recipe": meta["recipe"],
            "config": json.loads(meta["config"]),
            "step": int(meta["step"]),
            "seed": int(meta["seed"]),
            "device": meta.get("device", "cpu"),
            "elapsed": float(meta.get("elapsed", "0")),
            "rng_recipe": json.loads(meta["rng_recipe"], object_hook=_from_json),
            "rng_backend": json.loads(meta["rng_backend"], object_hook=_from_json),
        }
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path!r}: damaged checkpoint metadata ({type(e).__name__}: "
                              f"{e})") from None


def _check_config(path, saved: dict, current: dict) -> None:
    """Model/data keys must match exactly; loop keys may differ (a longer run warns)."""
    current = json.loads(_config_json(current))  # tuples -> lists, as the saved JSON holds them
    differ = [k for k in sorted(set(saved) | set(current))
              if k not in LOOP_KEYS and saved.get(k, "<absent>") != current.get(k, "<absent>")]
    if differ:
        pairs = ", ".join(f"{k}: checkpoint {saved.get(k, '<absent>')!r} vs recipe "
                          f"{current.get(k, '<absent>')!r}" for k in differ)
        raise CheckpointError(f"{path!r} was trained with another config ({pairs}); rebuild the "
                              "recipe with the checkpoint's config (checkpoint_info(path)"
                              "['config']) to resume it")
    if "steps" in saved and saved.get("steps") != current.get("steps"):
        warnings.warn(f"resuming {path!r} with steps={current.get('steps')} instead of "
                      f"{saved['steps']}: a learning-rate schedule built from 'steps' changes "
                      "length, so the run will differ from one started with the new total",
                      RuntimeWarning, stacklevel=3)


def _split_sections(path, arrays: dict) -> dict:
    """{"module": {name: {key: Tensor}}, "optim": ..., "sched": ..., "extra": {key: Tensor}}."""
    out = {"module": {}, "optim": {}, "sched": {}, "extra": {}}
    for full_key, value in arrays.items():
        section, _, rest = full_key.partition(".")
        if section not in _SECTIONS or not rest:
            raise CheckpointError(f"{path!r}: unexpected entry {full_key!r}; expected keys "
                                  "starting with module., optim., sched. or extra.")
        if section == "extra":
            out["extra"][rest] = value
            continue
        name, _, key = rest.partition(".")
        if not key:
            raise CheckpointError(f"{path!r}: malformed entry {full_key!r}; expected "
                                  f"'{section}.<name>.<key>'")
        out[section].setdefault(name, {})[key] = value
    return out


def load_checkpoint(path, recipe) -> int:
    """Restore `recipe`'s full training state from `path`; returns the checkpoint's step.

    Checks first, then loads: the recipe name, the format version and the config must match
    (loop-only keys such as ``steps`` may differ), and the checkpoint must hold exactly the
    recipe's modules, optimizers and schedulers. Errors name the path and what differed.
    """
    path = os.fspath(path)
    info = checkpoint_info(path)
    if info["recipe"] != recipe.name:
        raise CheckpointError(f"{path!r} is a checkpoint of the {info['recipe']!r} recipe, not of "
                              f"{recipe.name!r}; point --out/--from at a {recipe.name!r} run")
    _check_config(path, info["config"], recipe.config)
    sections = _split_sections(path, load(path, device=recipe.device))
    for section, kind, objects in (("module", "modules", recipe.modules),
                                   ("optim", "optimizers", recipe.optimizers),
                                   ("sched", "schedulers", recipe.schedulers)):
        # An optimizer or scheduler with no state yet still writes its groups / step count,
        # so every object of the recipe has entries in the file.
        # (A module without parameters or buffers writes nothing, hence the second condition.)
        saved = set(sections[section])
        have = {name for name, obj in objects.items() if name in saved or obj.state_dict()}
        if saved != have:
            raise CheckpointError(f"{path!r}: the checkpoint holds {kind} {sorted(saved)}, the "
                                  f"recipe {sorted(have)}")
    for section, objects in (("module", recipe.modules), ("optim", recipe.optimizers),
                             ("sched", recipe.schedulers)):
        for name, obj in objects.items():
            if name not in sections[section]:
                continue
            try:
                obj.load_state_dict(sections[section][name])
            except (ValueError, TypeError) as e:
                raise CheckpointError(f"{path!r}: cannot load {section}.{name} into the recipe's "
                                      f"{type(obj).__name__}: {e}") from e
    recipe.load_extra_state({k: t.data for k, t in sections["extra"].items()})

    recipe.rng.bit_generator.state = info["rng_recipe"]
    set_rng_state(info["rng_backend"], "cpu")
    if "cuda" in (recipe.device, info["device"]):
        warnings.warn(f"{path!r}: the GPU generator's state (CuPy) cannot be saved, so dropout, "
                      "noise and latents drawn on device='cuda' continue from a different random "
                      "stream: the resumed run is statistically, not bitwise, identical to an "
                      "uninterrupted one", RuntimeWarning, stacklevel=2)
    return info["step"]
