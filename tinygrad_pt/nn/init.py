"""Parameter initialisation, in place, with PyTorch's names and formulas.

Every function overwrites ``tensor.data`` (keeping its dtype, device and identity) and returns the
tensor. Random values are drawn on the host from the cpu generator (``tg.manual_seed``), or from
``generator=`` (a cpu ``tg.Generator``, as PyTorch's init functions take one), whatever the
tensor's device, so the same seed gives the same model on cpu and cuda.

    fan_in  = shape[1] * prod(shape[2:])      (a Linear weight (out, in) has fan_in = in)
    fan_out = shape[0] * prod(shape[2:])
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..backend import rng, to_device
from ..ops.arguments import check_float_tensor
from ..random import Generator
from ..tensor import Tensor

__all__ = ["uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "calculate_gain"]


def _fill(tensor: Tensor, values) -> Tensor:
    """Write host `values` into the tensor's data, in its dtype and on its device."""
    with no_grad():
        tensor.data[...] = to_device(np.asarray(values).astype(tensor.dtype), tensor.device)
        tensor._bump_version()
    return tensor


def _host_rng(op: str, generator):
    """The host generator to draw from: `generator`'s (a cpu tg.Generator) or the default."""
    if generator is None:
        return rng("cpu")
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a tg.Generator, got {type(generator).__name__}")
    if generator.device != "cpu":
        raise RuntimeError(f"{op}: init draws its values on the host, so the generator must be a "
                           f"cpu tg.Generator, got one on {generator.device}")
    return generator.numpy_generator()


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with U(a, b)."""
    check_float_tensor("uniform_", tensor)
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, _host_rng("uniform_", generator).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with N(mean, std^2)."""
    check_float_tensor("normal_", tensor)
    if not std >= 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, _host_rng("normal_", generator).normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with `val`."""
    check_float_tensor("constant_", tensor)
    return _fill(tensor, np.full(tensor.shape, val))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) as in the module docstring; needs at least 2 dimensions."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape "
                         f"{tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance stable through `nonlinearity` (PyTorch's
    table): 1 for linear/sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + a^2)) for
    leaky_relu with slope a (default 0.01), 3/4 for selu."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected linear, "
                     "sigmoid, tanh, relu, leaky_relu or selu")


def _fan(op, tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    check_float_tensor("xavier_uniform_", tensor)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _host_rng("xavier_uniform_", generator).uniform(-a, a, size=tensor.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    check_float_tensor("xavier_normal_", tensor)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _host_rng("xavier_normal_", generator).normal(0.0, std, size=tensor.shape))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He: U(-bound, bound), bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    With ``a=sqrt(5)`` this is PyTorch's default Linear weight init, bound = 1 / sqrt(fan_in).
    """
    check_float_tensor("kaiming_uniform_", tensor)
    fan = _fan("kaiming_uniform_", tensor, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan > 0 else 0.0
    g = _host_rng("kaiming_uniform_", generator)
    return _fill(tensor, g.uniform(-bound, bound, size=tensor.shape))


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He: N(0, std^2) with std = gain / sqrt(fan)."""
    check_float_tensor("kaiming_normal_", tensor)
    fan = _fan("kaiming_normal_", tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan > 0 else 0.0
    g = _host_rng("kaiming_normal_", generator)
    return _fill(tensor, g.normal(0.0, std, size=tensor.shape))
