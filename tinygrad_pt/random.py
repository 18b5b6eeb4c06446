"""Random number generators: ``tg.Generator`` and the default generators' state, PyTorch's names.

Every device has a default generator (``backend.rng``), reseeded by ``tg.manual_seed``. A
``Generator`` is a stream of its own: a random function given ``generator=g`` draws from g and
leaves the default untouched, as in PyTorch. Seeded alike, the two give the same numbers:

    >>> import tinygrad_pt as tg
    >>> g = tg.Generator().manual_seed(3)
    >>> a = tg.randn(2, generator=g)
    >>> tg.manual_seed(3)
    >>> bool((tg.randn(2) == a).all())
    True

What differs from PyTorch: a state (``get_state``, ``tg.get_rng_state``) is NumPy's bit-generator
state, a dict of ints (JSON-able, for checkpoints), not a ByteTensor; only the cpu generators'
states can be saved (CuPy's cannot); an unseeded Generator starts from seed 0, as the default
generators do, not from PyTorch's 67280421310721.

This module sits beside backend.py, on the bottom floor: it knows devices and arrays only.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .backend import canonical_device, cupy_module, get_rng_state as _get_state, xp_for

__all__ = ["Generator", "get_rng_state", "set_rng_state", "initial_seed"]


def _check_seed(op: str, seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{op}: expected a non-negative integer seed, got {seed!r}")
    return int(seed)


def _check_state(op: str, state) -> dict:
    """A state as get_rng_state / Generator.get_state give it: NumPy's PCG64 state dict."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        got = (f"a dict for bit generator {state.get('bit_generator')!r}"
               if isinstance(state, dict) else type(state).__name__)
        raise TypeError(f"{op}: expected a state as tg.get_rng_state() returns it (a dict of "
                        f"NumPy's PCG64 bit-generator state, not PyTorch's ByteTensor), got {got}")
    return state


class Generator:
    """PyTorch's torch.Generator: ``g = tg.Generator(device="cpu").manual_seed(0)``, then
    ``tg.randn(3, generator=g)``. Methods: manual_seed, seed, initial_seed, get_state, set_state;
    attribute device."""

    def __init__(self, device="cpu"):
        self.device = canonical_device(device)
        xp_for(self.device)  # device="cuda" without CuPy or a GPU fails here, clearly
        self._seed = 0
        self._rng = None  # made on first draw, from the seed

    def __repr__(self):
        return f"Generator(device={self.device!r}, initial_seed={self._seed})"

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from `seed`; returns the generator (as PyTorch's)."""
        self._seed = _check_seed("Generator.manual_seed", seed)
        self._rng = None
        return self

    def seed(self) -> int:
        """Restart from a fresh, non-deterministic seed and return it."""
        self.manual_seed(int(np.random.SeedSequence().entropy) % 2**63)
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """NumPy's bit-generator state (a dict of ints; cpu only)."""
        if self.device != "cpu":
            raise NotImplementedError("Generator.get_state: only a cpu generator's state can be "
                                      "saved")
        return self.numpy_generator().bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        if self.device != "cpu":
            raise NotImplementedError("Generator.set_state: only a cpu generator's state can be "
                                      "restored")
        self.numpy_generator().bit_generator.state = _check_state("Generator.set_state", state)
        return self

    def numpy_generator(self):
        """The array library's generator behind it: numpy.random.Generator on cpu,
        cupy.random.Generator on cuda."""
        if self._rng is None:
            if self.device == "cpu":
                self._rng = np.random.default_rng(self._seed)
            else:
                self._rng = cupy_module().random.default_rng(self._seed)
        return self._rng


def generator_for(op: str, generator, device: str):
    """The array generator a random op draws from: `generator`'s, or the device's default."""
    if generator is None:
        return backend.rng(device)
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a tg.Generator, got {type(generator).__name__}")
    if generator.device != device:
        raise RuntimeError(f"{op}: the generator is on {generator.device} but the tensor is made "
                           f"on {device}; use a Generator(device={device!r})")
    return generator.numpy_generator()


def get_rng_state(device="cpu") -> dict:
    """The default generator's state (NumPy's bit-generator state, a dict of ints; cpu only)."""
    return _get_state(device)


def set_rng_state(state: dict, device="cpu") -> None:
    """Restore a state from get_rng_state: the default generator continues from there."""
    backend.set_rng_state(_check_state("set_rng_state", state), device)


def initial_seed() -> int:
    """The seed the default generators started from (the last tg.manual_seed, or 0)."""
    return backend._DEFAULT_SEED
