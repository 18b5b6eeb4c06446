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
  schedules        {scheduler name: {"total_steps", "lr"}} as JSON, for schedules of a fixed
                   length (CosineWithWarmup): how long the schedule was built to run and the rate
                   it had reached, so that resuming to another total can say what changes

Restoring both generators with the weights and optimizer state is what makes resume on the cpu
bit-identical: N steps + save + load + N steps gives exactly the arrays of 2N steps in one go.

Loading checks before it builds or copies anything: a file that is not a checkpoint (truncated,
garbage, another format), metadata of the wrong type or range (a negative step, a config that is
not a JSON object), entries that do not fit the recipe (names, shapes, dtypes), and a step that
the optimizer's own step counts contradict: each is a CheckpointError naming the file and what
is wrong. ``check_sizes`` holds a checkpoint's config to the tensors the file holds, from the
header alone, so that a small file whose config asks for a huge model is refused before the
model is built.
"""
from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import safetensors

from ..backend import get_rng_state, set_rng_state
from ..errors import UserError
from ..serialization import load, load_metadata, save

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_info", "check_sizes",
           "CHECKPOINT_NAME", "FORMAT_VERSION", "CheckpointError"]

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.safetensors"  # the loop's file name inside a run directory
# Config keys that steer only the loop, not the model or the data: a resumed run may change them.
# ("steps" also sets the length of some learning-rate schedules: changing it warns, saying how.)
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


def _schedules(recipe) -> dict:
    """{name: {"total_steps", "lr"}} of the recipe's fixed-length schedules."""
    out = {}
    for name, sched in recipe.schedulers.items():
        total = getattr(sched, "total_steps", None)
        if isinstance(total, (int, np.integer)):
            out[name] = {"total_steps": int(total), "lr": float(sched.get_last_lr()[0])}
    return out


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
        "schedules": json.dumps(_schedules(recipe)),
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
    try:
        meta = load_metadata(path)
    except (ValueError, OSError) as e:  # truncated, garbage, a directory, a pipe, unreadable
        raise CheckpointError(f"{path!r} cannot be read as a checkpoint: {e}") from None
    if "format_version" not in meta or "recipe" not in meta:
        raise CheckpointError(f"{path!r} is a safetensors file but not a tinygrad_pt training "
                              "checkpoint (its metadata has no format_version/recipe); "
                              "tg.load reads plain state dicts")
    if meta["format_version"] != str(FORMAT_VERSION):
        raise CheckpointError(f"{path!r} has checkpoint format version {meta['format_version']}, "
                              f"but this tinygrad_pt reads version {FORMAT_VERSION}; train again "
                              "or load it with the tinygrad_pt version that wrote it")

    def field(key, parse, expected, default=None):
        if key not in meta:
            if default is not None:
                return default
            raise CheckpointError(f"{path!r}: damaged checkpoint metadata: no {key!r} entry")
        try:
            value = parse(meta[key])
        except (ValueError, TypeError, RecursionError):
            value = _BAD
        if value is _BAD or not expected[1](value):
            raise CheckpointError(f"{path!r}: damaged checkpoint metadata: {key}="
                                  f"{meta[key][:80]!r}; expected {expected[0]}")
        return value

    is_dict = lambda v: isinstance(v, dict)  # noqa: E731
    rng = lambda text: json.loads(text, object_hook=_from_json)  # noqa: E731
    return {
        "format_version": int(meta["format_version"]),
        "recipe": meta["recipe"],
        "config": field("config", json.loads, ("a JSON object of settings", is_dict)),
        # A negative step would cut every row from the metrics log on resume.
        "step": field("step", int, ("a whole number of steps >= 0", lambda v: v >= 0)),
        "seed": field("seed", int, ("an integer seed >= 0", lambda v: v >= 0)),
        "device": field("device", str, ("cpu or cuda", lambda v: v in ("cpu", "cuda")), "cpu"),
        "elapsed": field("elapsed", float, ("seconds >= 0",
                                            lambda v: math.isfinite(v) and v >= 0), 0.0),
        "rng_recipe": field("rng_recipe", rng, ("a generator state (JSON object)", is_dict)),
        "rng_backend": field("rng_backend", rng, ("a generator state (JSON object)", is_dict)),
        "schedules": field("schedules", json.loads, ("a JSON object", is_dict), {}),
    }


_BAD = object()


def _header_entries(path) -> dict:
    """{key: (dtype tag, shape)} from the file's header, without reading any tensor."""
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            return {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape()))
                    for k in f.keys()}
    except (safetensors.SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path!r} cannot be read as a checkpoint: {e}") from None


def check_sizes(path, cls, config: dict) -> None:
    """Hold a checkpoint's (already validated) `config` to the tensors in its file, from the
    header alone: every module the recipe class `cls` would build from `config` must hold as
    many numbers as the file's ``module.<name>.*`` entries. Run before the model is built, so
    a small file whose config says hidden=1e8 or n_layer=1e6 is refused without allocating."""
    expected = cls.state_sizes(config)
    if expected is None:  # the recipe does not say; load_checkpoint still checks each shape
        return
    saved = {}
    for key, (_, shape) in _header_entries(path).items():
        section, _, rest = key.partition(".")
        if section == "module":
            name = rest.partition(".")[0]
            saved[name] = saved.get(name, 0) + int(np.prod(shape, dtype=np.int64))
    if saved != expected:
        sizes = ", ".join(f"{k}: file {saved.get(k, 0):,} vs config {expected.get(k, 0):,}"
                          for k in sorted(set(saved) | set(expected))
                          if saved.get(k, 0) != expected.get(k, 0))
        sized = ", ".join(f"{k}={config[k]!r}" for k in cls.size_keys if k in config)
        raise CheckpointError(f"{path!r}: its config ({sized}, ...) does not describe the "
                              f"tensors it holds (numbers per module: {sizes}); the file was "
                              "altered or damaged, so no model is built from it")


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
    recipe's modules, optimizers and schedulers, with the dtypes of the recipe's tensors and
    step counts no larger than the checkpoint's step. Errors name the path and what differed.
    A different ``steps`` than the run's own, for a recipe whose learning-rate schedule spans
    ``steps``, warns, saying how the schedule changes.
    """
    path = os.fspath(path)
    info = checkpoint_info(path)
    if info["recipe"] != recipe.name:
        raise CheckpointError(f"{path!r} is a checkpoint of the {info['recipe']!r} recipe, not of "
                              f"{recipe.name!r}; point --out/--from at a {recipe.name!r} run")
    _check_config(path, info["config"], recipe.config)
    try:
        arrays = load(path, device=recipe.device)
    except (ValueError, OSError) as e:  # a damaged body behind a readable header
        raise CheckpointError(f"{path!r} cannot be read as a checkpoint: {e}") from None
    sections = _split_sections(path, arrays)
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
    _check_dtypes(path, sections, recipe)
    _check_step_counts(path, sections, info["step"], recipe)
    for section, objects in (("module", recipe.modules), ("optim", recipe.optimizers),
                             ("sched", recipe.schedulers)):
        for name, obj in objects.items():
            if name not in sections[section]:
                continue
            try:
                obj.load_state_dict(sections[section][name])
            except (ValueError, TypeError, KeyError, IndexError) as e:
                # (load_state_dict lists its findings on several lines: one line here)
                found = "; ".join(line.strip() for line in str(e).splitlines()
                                  if line.strip()).replace(":;", ":")
                raise CheckpointError(f"{path!r}: cannot load {section}.{name} into the recipe's "
                                      f"{type(obj).__name__}: {found}") from e
    try:
        recipe.load_extra_state({k: t.data for k, t in sections["extra"].items()})
    except (ValueError, TypeError, KeyError, IndexError) as e:
        held = ", ".join(sections["extra"]) or "none"
        raise CheckpointError(f"{path!r}: cannot load the extra state ({held}) "
                              f"into the {recipe.name!r} recipe: {type(e).__name__}: {e}") from e
    try:
        recipe.rng.bit_generator.state = info["rng_recipe"]
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path!r}: damaged checkpoint metadata: rng_recipe is not a state "
                              f"of the recipe's {type(recipe.rng.bit_generator).__name__} "
                              f"generator ({type(e).__name__}: {e})") from None
    try:
        set_rng_state(info["rng_backend"], "cpu")
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path!r}: damaged checkpoint metadata: rng_backend is not a "
                              f"generator state ({type(e).__name__}: {e})") from None
    note = schedule_change(path, info, recipe)
    if note:
        warnings.warn(note, RuntimeWarning, stacklevel=2)
    if "cuda" in (recipe.device, info["device"]):
        warnings.warn(f"{path!r}: the GPU generator's state (CuPy) cannot be saved, so dropout, "
                      "noise and latents drawn on device='cuda' continue from a different random "
                      "stream: the resumed run is statistically, not bitwise, identical to an "
                      "uninterrupted one", RuntimeWarning, stacklevel=2)
    return info["step"]


def _check_dtypes(path, sections, recipe) -> None:
    """A weight must come back in the dtype the module holds (load_state_dict would cast it
    silently: int weights, or float64 that the run never trained in); optimizer and scheduler
    entries that the recipe has too must be of the same kind (float or integer)."""
    for section, objects, exact in (("module", recipe.modules, True),
                                    ("optim", recipe.optimizers, False),
                                    ("sched", recipe.schedulers, False)):
        for name, obj in objects.items():
            current = obj.state_dict()
            for key, value in sections[section].get(name, {}).items():
                if key not in current:
                    continue  # load_state_dict names unexpected keys
                want = np.dtype(getattr(current[key], "dtype", np.asarray(current[key]).dtype))
                got = np.dtype(value.dtype)
                if (got != want) if exact else (got.kind in "iub") != (want.kind in "iub"):
                    raise CheckpointError(f"{path!r}: {section}.{name}.{key} has dtype {got}, "
                                          f"the recipe's {want}")


def _check_step_counts(path, sections, step: int, recipe) -> None:
    """The optimizers and schedulers count their own steps, one per training step at most (or
    the recipe's optimizer_steps_per_step): a count above that means the step was altered
    (resuming would cut the metrics log back to it and train those steps again on
    already-trained weights)."""
    for section, suffix in (("optim", ".step"), ("sched", "last_epoch")):
        for name, entries in sections[section].items():
            per_step = recipe.optimizer_steps_per_step(name) if section == "optim" else 1
            for key, value in entries.items():
                if not (key == suffix or key.endswith(suffix)) or value.size != 1:
                    continue
                count = value.numpy().reshape(()).item()
                if count > step * per_step:
                    raise CheckpointError(f"{path!r}: its metadata says step {step}, but "
                                          f"{section}.{name}.{key} has counted {count} steps; "
                                          "the file was altered or damaged")


def schedule_change(path, info: dict, recipe):
    """One sentence on what resuming `info`'s run with the recipe's ``steps`` does to its
    fixed-length learning-rate schedules, or None when nothing changes (the same total, or no
    such schedule: ae, moco, ... resume to any total exactly)."""
    saved = info.get("schedules") or {}
    now = _schedules(recipe)  # (after loading: the rate at the resumed step, new length)
    if not saved and now and "steps" in info["config"]:
        # A file from before the "schedules" entry: its schedules spanned the config's steps.
        saved = {name: {"total_steps": info["config"]["steps"], "lr": None} for name in now}
    changed = [(name, saved[name], now[name]) for name in sorted(now) if name in saved
               and isinstance(saved[name], dict)
               and saved[name].get("total_steps") != now[name]["total_steps"]]
    if not changed:
        return None
    name, old, new = changed[0]
    step = info["step"]
    was = f"{old['lr']:.3g}" if isinstance(old.get("lr"), (int, float)) else "?"
    return (f"resuming {path!r} with steps={recipe.config.get('steps')} instead of "
            f"{old.get('total_steps')}: the learning-rate schedule {name!r} is stretched from "
            f"{old.get('total_steps')} to {new['total_steps']} steps from step {step} on (its rate "
            f"goes from {was} to {new['lr']:.3g}), so this run differs from one started with "
            f"--steps {new['total_steps']}; resuming with the run's own total is exact")
