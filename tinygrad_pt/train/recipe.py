"""Recipe: what one model family needs to be trained by the shared loop (train/loop.py).

A recipe builds its modules and optimizers, draws batches, takes one step, evaluates, and draws
its plots. The loop owns everything else: steps, the progress bar, the metrics log, evaluation
cadence, checkpoints and resume.

Resume must continue bit-identically, so a recipe keeps no hidden state outside:
  - ``self.modules`` / ``self.optimizers`` / ``self.schedulers`` (saved via their state dicts),
  - ``self.rng``, a NumPy Generator that draws every batch, augmentation and corruption
    (the loop saves and restores its bit-generator state),
  - the framework's own generator (``tg.backend.rng``), used by dropout, reparameterisation noise
    and GAN latents (saved and restored by the loop too),
  - ``self.extra_state()`` / ``self.load_extra_state()`` for anything else (MoCo's queue).
Batches are drawn fresh from ``self.rng`` each step (random indices, not an epoch iterator), so
no data-loader position needs saving.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..backend import manual_seed
from ..errors import UserError

__all__ = ["Recipe", "Check", "int_in", "number_in", "one_of", "POSITIVE_INT", "COUNT",
           "POSITIVE", "NON_NEGATIVE", "FRACTION", "PROBABILITY", "BOOL", "memory_limit"]


# ----------------------------------------------------------------------------------------------------
# Config checks: what each setting must be, said in words. Recipe.checks maps every config key to
# one, so that a bad value fails before step 1 (not after the whole run, in sampling or plotting).

class Check:
    """A test of one config value and, for the error, what it expects in words."""

    def __init__(self, expected: str, ok):
        self.expected, self.ok = expected, ok

    def __repr__(self):
        return f"Check({self.expected!r})"


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_)))


def int_in(lo: int, hi: int | None = None, why: str = "") -> Check:
    """An integer in [lo, hi] (no upper end when hi is None)."""
    text = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    return Check(text + (f" ({why})" if why else ""),
                 lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi))


def number_in(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Check:
    """A finite number between lo and hi, each end open or closed."""
    text = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def ok(v):
        if not _is_number(v) or not math.isfinite(v):
            return False
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    return Check(text, ok)


def one_of(*choices) -> Check:
    return Check(f"one of {tuple(choices)}", lambda v: isinstance(v, str) and v in choices)


POSITIVE_INT = Check("a positive integer", lambda v: _is_int(v) and v > 0)
COUNT = Check("an integer >= 0", lambda v: _is_int(v) and v >= 0)
# Finite: lr=inf (or 1e400, which JSON and float() read as inf) cannot train anything.
POSITIVE = Check("a positive number (finite)", lambda v: _is_number(v) and 0 < v < math.inf)
NON_NEGATIVE = Check("a number >= 0 (finite)", lambda v: _is_number(v) and 0 <= v < math.inf)
FRACTION = number_in(0, 1, hi_open=True)      # dropout, betas, confidence: 1 would be degenerate
PROBABILITY = number_in(0, 1)
BOOL = Check("true or false", lambda v: isinstance(v, (bool, np.bool_)))


def memory_limit(device: str = "cpu") -> int:
    """Half of the memory a run on `device` allocates from, in bytes: the machine's physical
    memory (cpu), the GPU's (cuda). The most a run's estimate may need: half, so that the OS,
    the data and a second process still fit. 0 where it cannot be read (no limit then)."""
    if device == "cuda":
        try:
            from ..backend import cupy_module
            return int(cupy_module().cuda.runtime.memGetInfo()[1]) // 2
        except Exception:  # noqa: BLE001 (no GPU here: the device check says so, not this)
            pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 0


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


class Recipe:
    """Base class; subclasses set ``name`` and ``defaults`` and implement the methods below."""

    name = "base"
    # Hyperparameters with their defaults; the CLI and ``config`` override them. ``steps``,
    # ``batch_size``, ``eval_every`` and ``log_every`` are read by the loop.
    defaults: dict = {"steps": 300, "batch_size": 64, "eval_every": 100, "log_every": 10}
    # What each config value must be (see Check). Subclasses extend it with their own keys;
    # tests/test_cli.py holds every registered recipe to a check for every key of its defaults.
    checks: dict = {"steps": POSITIVE_INT, "batch_size": POSITIVE_INT, "eval_every": COUNT,
                    "log_every": COUNT}

    def __init__(self, config: dict | None = None, device: str = "cpu", seed: int = 0):
        self.config = self.validate_config(config, device)
        self.device = device
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.modules: dict = {}      # name -> nn.Module
        self.optimizers: dict = {}   # name -> optim.Optimizer
        self.schedulers: dict = {}   # name -> lr scheduler (optional)
        # Seeded here, once for every recipe, just before build: the initial weights (drawn from
        # the framework's generators) are then a function of `seed` alone, whoever builds it.
        manual_seed(seed)
        self.build()

    # -- the config, checked before anything is built ----------------------------------------
    @classmethod
    def validate_config(cls, config: dict | None, device: str = "cpu") -> dict:
        """The defaults overridden by `config`, every value checked (type and range), the
        settings checked together (``check_config``) and the memory they need estimated; a
        UserError naming the key, the value and what is expected otherwise. Runs before any
        data is loaded or any array allocated, so a bad setting fails at once, not after the
        training (and a hostile checkpoint's config allocates nothing)."""
        if config is not None and not isinstance(config, dict):
            raise UserError(f"{cls.name}: the config must be a dict of settings, got "
                            f"{type(config).__name__}")
        unknown = set(config or {}) - set(cls.defaults)
        if unknown:
            raise UserError(f"{cls.name}: unknown config keys {sorted(unknown)}; "
                            f"known: {sorted(cls.defaults)}")
        c = {**cls.defaults, **(config or {})}
        for key, value in c.items():
            check = cls.checks.get(key)
            if check is not None and not check.ok(value):
                cls.bad(c, key, check.expected)
        cls.check_config(c)
        cls.check_memory(c, device)
        return c

    @classmethod
    def bad(cls, c: dict, key: str, expected: str):
        raise UserError(f"{cls.name}: config {key}={c[key]!r}; expected {expected}")

    @classmethod
    def check_config(cls, c: dict) -> None:
        """Checks of settings against each other (every value alone is already checked)."""

    @classmethod
    def state_sizes(cls, c: dict) -> dict | None:
        """{module name: how many numbers its state_dict holds} for config `c`, computed without
        building anything; None when the recipe does not say. It lets a checkpoint's config be
        held to the tensors the file holds before a model is built from it, and sizes the
        memory estimate."""
        return None

    @classmethod
    def memory_bytes(cls, c: dict) -> int:
        """About how many bytes training with config `c` needs at its peak: by default 16 per
        number of state (float32 weights, gradients and two Adam moments); recipes add what
        their activations and data take."""
        sizes = cls.state_sizes(c)
        return 16 * sum(sizes.values()) if sizes else 0

    @classmethod
    def check_memory(cls, c: dict, device: str = "cpu") -> None:
        need, limit = cls.memory_bytes(c), memory_limit(device)
        if limit and need > limit:
            sized = ", ".join(f"{k}={c[k]!r}" for k in cls.size_keys if k in c)
            where = "the GPU's" if device == "cuda" else "this machine's"
            raise UserError(f"{cls.name}: this config needs about {_gib(need)} of memory "
                            f"({sized}), more than the {_gib(limit)} a run may take (half of "
                            f"{where} {_gib(2 * limit)}); lower those settings")

    # The settings that size a run's memory, named in the estimate's error.
    size_keys: tuple = ("batch_size",)

    def optimizer_steps_per_step(self, name: str) -> int:
        """How many times optimizer `name` steps in one training step: 1, except where a recipe
        steps one several times (WGAN-GP's critic). A checkpoint whose optimizer counted more
        than this times its step was altered (train/checkpoint.py)."""
        return 1

    # -- to implement ---------------------------------------------------------------------------
    def build(self) -> None:
        """Load data, create self.modules, self.optimizers (and self.schedulers)."""
        raise NotImplementedError

    def draw_batch(self) -> tuple:
        """This step's data as a tuple of NumPy arrays, drawn from self.rng (indices,
        augmentations, corruptions: all the host-side randomness of a step)."""
        raise NotImplementedError

    def step_on(self, *arrays) -> dict:
        """One optimisation step on drawn data (moved to the device here); return the step's
        metrics as 0-d Tensors (not synced: the loop reads them back only at log steps).

        Kept apart from draw_batch so that a benchmark can time the framework's part of a step
        (transfer, forward, backward, update) on fixed data (tinygrad_pt/bench/steps.py)."""
        raise NotImplementedError

    def train_step(self, step: int) -> dict:
        """Draw a batch, take one optimisation step on it; return its metrics. Each optimizer
        steps at most once (loading a checkpoint holds its step to the optimizers' counts).
        Data parallel: every rank draws the whole global batch and trains on its shard."""
        return self.step_on(*self.shard_batch(self.draw_batch()))

    # -- data parallel (tinygrad_pt/distributed; the loop calls data_parallel under mpiexec) ---
    # This process's place among the ranks; (0, 1) alone, when every hook below is the identity.
    shard_rank, shard_world = 0, 1
    # The axis of draw_batch's arrays that indexes examples (WGAN-GP's is 1: (n_critic, N, 64)).
    batch_axis = 0

    def shard_batch(self, arrays: tuple) -> tuple:
        """This rank's rows of each drawn array along ``batch_axis``."""
        from ..distributed import shard_rows
        return tuple(shard_rows(a, self.shard_rank, self.shard_world, self.batch_axis)
                     for a in arrays)

    def local_rows(self, t):
        """This rank's rows (axis 0) of noise drawn for the whole global batch (GAN latents,
        VAE's eps): drawn whole on every rank, the framework's generator stays in step with a
        single process's and each rank uses exactly the noise one process gives its rows."""
        from ..distributed import shard_rows
        return shard_rows(t, self.shard_rank, self.shard_world)

    def sync_gradients(self, name: str) -> None:
        """Average optimizer `name`'s gradients over the ranks now (before clipping their norm);
        its step then does not average again. A no-op alone."""
        from ..distributed import sync_gradients
        sync_gradients(self.optimizers[name])

    def data_parallel(self, wire_dtype=np.float32) -> None:
        """Join the ranks: check every rank built the same recipe (config, seed, model), take
        rank 0's weights, make each optimizer average its gradients before it steps, and let the
        recipe adapt what needs the whole global batch (``distributed_setup``)."""
        from .. import distributed as dist
        import json
        n = dist.world_size()
        if n == 1 or self.shard_world > 1:  # alone, or joined already (a second train call)
            return
        if self.config.get("batch_size") is not None and self.config["batch_size"] % n:
            error = UserError(f"{self.name}: batch_size={self.config['batch_size']} cannot be split "
                            f"evenly over {n} ranks (mpiexec -n {n}); use a multiple of {n}: the "
                            "global batch stays what one process trains on, each rank its share")
            error.every_rank = True  # the same config on every rank: each stops by itself
            raise error
        try:
            dist.check_same_everywhere("the run's settings (recipe, config, seed, device)",
                                       json.dumps([self.name, self.config, self.seed, self.device],
                                                  sort_keys=True, default=str))
            dist.broadcast_state(list(self.modules.values()))
        except ValueError as e:
            error = UserError(str(e))
            error.every_rank = getattr(e, "every_rank", False)
            raise error from None
        for opt in self.optimizers.values():
            params = [p for group in opt.param_groups for p in group["params"]]
            dist.average_on_step(opt, dist.GradientAverager(params, wire_dtype=wire_dtype))
        self.shard_rank, self.shard_world = dist.rank(), n
        self.distributed_setup()

    def distributed_setup(self) -> None:
        """What a recipe changes to train data parallel beyond sharding its batch (MoCo gathers
        the keys it enqueues). Called once, after data_parallel has joined the ranks."""

    def evaluate(self) -> dict:
        """Held-out metrics as Python floats (e.g. test MSE, ELBO per sample, val bits/byte)."""
        raise NotImplementedError

    def artifacts(self, out_dir: str) -> list:
        """Write plots (PNG) / samples (text) into out_dir; return their paths."""
        return []

    def sample(self, out_dir: str, n: int = 16) -> list:
        """Generate from the trained model (images or text) into out_dir; return the paths.
        Families that do not generate (AE, SimCLR) raise NotImplementedError."""
        raise NotImplementedError(f"{self.name}: this model family does not generate samples")

    def summary(self, metrics: dict) -> str:
        """One line for the end of a run: the headline metric and what it means."""
        return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())

    # -- optional -------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        """Arrays (name -> ndarray) beyond modules/optimizers that a checkpoint must hold."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def feature_encoder(self):
        """The family's image encoder, for the probe (train/probe.py): a module from images
        (N, 64) to features (N, D) that shares the recipe's parameters (nothing copied). Only
        families that have one override this."""
        raise NotImplementedError(f"{self.name}: this model family has no image encoder")

    @classmethod
    def has_feature_encoder(cls) -> bool:
        """Whether the family has an image encoder: asked of the class, before a run is rebuilt."""
        return cls.feature_encoder is not Recipe.feature_encoder
