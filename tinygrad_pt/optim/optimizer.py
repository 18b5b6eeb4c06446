"""Optimizer: parameter groups, per-parameter state, zero_grad, and a checkpointable state dict.

Subclasses write one method, ``_update(p, grad, group, state)``, which changes ``p.data`` in place
on raw arrays (numpy or cupy, ``xp`` taken from the data) with Python-float hyperparameters, so
float32 parameters stay float32. ``step()`` calls it for every parameter that has a gradient.

The state dict is flat, with Tensors as values only, so that ``tg.save`` writes it as it is
(safetensors holds arrays, nothing else). Parameters are numbered 0, 1, ... in the order of
``param_groups`` (as PyTorch numbers them):

  state.<i>.<name>         per-parameter state array, e.g. state.0.exp_avg, state.3.momentum_buffer
  state.<i>.step           the parameter's step count (0-d int64)
  param_groups.<g>.params  the indices of group g's parameters (1-d int64)
  param_groups.<g>.<key>   each hyperparameter of group g: lr, weight_decay, ... as 0-d arrays
                           (float64, int64 or bool); a tuple (betas) as a 1-d float64 array
"""
from __future__ import annotations

import numpy as np

from ..autograd import enable_grad, no_grad
from ..backend import to_device
from ..tensor import Tensor

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: ``Optimizer(params, defaults)``.

    `params` is an iterable of Tensors that require grad (``model.parameters()``), or of dicts,
    each a parameter group ``{"params": [...], "lr": ..., ...}`` whose missing keys take the
    defaults. ``param_groups`` is the list of those dicts, ``state`` maps a parameter to its
    state dict (e.g. ``{"step": 3, "exp_avg": array, "exp_avg_sq": array}``).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self._check_hyperparameters(self.defaults)
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or of "
                            "dicts, got a single Tensor; wrap it in a list: [tensor]")
        if isinstance(params, dict):
            params = [params]
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list; did the model "
                             "register its parameters (nn.Parameter attributes, nn.ModuleList)?")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict] = []
        self.state: dict = {}
        for group in groups:
            self.add_param_group(group)

    # The names of a parameter's state, and those it must have once it has any (load_state_dict
    # refuses others: a state dict of another optimizer, or a tampered one, fails here, not in a
    # step). Subclasses say theirs.
    STATE_NAMES: tuple = ("step",)
    REQUIRED_STATE: tuple = ("step",)

    def _check_hyperparameters(self, group: dict) -> None:
        """Raise ValueError for values the update rule cannot take (each optimizer adds its own)."""
        lr = group.get("lr")
        if lr is not None and not (isinstance(lr, (int, float, np.number)) and lr >= 0):
            raise ValueError(f"{type(self).__name__}: invalid learning rate lr={lr!r}, expected a "
                             "number >= 0")
        wd = group.get("weight_decay", 0.0)
        if not wd >= 0:
            raise ValueError(f"{type(self).__name__}: invalid weight_decay={wd!r}, expected >= 0")

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (fine-tuning a head faster)."""
        name = type(self).__name__
        if not isinstance(group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can optimize only Tensors, but parameter {i} is a "
                                f"{type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) does not require grad; "
                                 "only tensors with requires_grad=True can be optimized")
            if not p.is_leaf:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) is not a leaf tensor "
                                 "(it was computed by an op); optimize the leaves it came from")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) appears more than once "
                                 "among the parameter groups")
            seen.add(id(p))
        group = {**self.defaults, **group, "params": params}
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (``set_to_none=False`` zeros it in place instead)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    @no_grad()
    def step(self, closure=None):
        """Update every parameter that has a ``.grad`` (those without one are skipped).

        `closure`, if given, re-evaluates the model and returns the loss (run with gradients on),
        which step returns.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.dtype != p.data.dtype or grad.shape != p.data.shape:
                    # .grad's setter refuses such a gradient; this catches p.grad.data replaced
                    raise RuntimeError(
                        f"{type(self).__name__}.step: a parameter of shape {p.shape} and dtype "
                        f"{p.dtype} has a gradient of shape {tuple(grad.shape)} and dtype "
                        f"{grad.dtype}; gradients are never cast or broadcast")
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self._update(p, grad, group, state)
                p._bump_version()  # a graph built on the old weights must not backward any more
        return loss

    def _update(self, p: Tensor, grad, group: dict, state: dict) -> None:
        raise NotImplementedError

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"

    # ------------------------------------------------------------------------------------------------
    # State dict (flat, arrays only: see the module docstring)

    def _indexed_params(self):
        """(index, parameter) in the order of param_groups."""
        return list(enumerate(p for g in self.param_groups for p in g["params"]))

    def state_dict(self) -> dict:
        """The optimizer's state as ``{flat key: Tensor}`` (copies), ready for ``tg.save``."""
        out = {}
        index = {}
        for i, p in self._indexed_params():
            index[id(p)] = i
            for name, value in self.state.get(p, {}).items():
                if name == "step":
                    arr = np.asarray(value, dtype=np.int64)
                else:
                    arr = value.copy()
                out[f"state.{i}.{name}"] = Tensor._make(arr)
        for g, group in enumerate(self.param_groups):
            out[f"param_groups.{g}.params"] = Tensor._make(
                np.array([index[id(p)] for p in group["params"]], dtype=np.int64))
            for key, value in group.items():
                if key != "params":
                    out[f"param_groups.{g}.{key}"] = Tensor._make(_hyper_to_array(g, key, value))
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state written by ``state_dict()`` (possibly through tg.save / tg.load).

        The optimizer must have been built over parameters of the same shapes in the same group
        layout. State arrays are copied onto each parameter's device, floating-point ones in its
        dtype; hyperparameters (lr, betas, ...) are restored into the groups.
        """
        name = type(self).__name__
        arrays = {}
        for key, value in state_dict.items():
            if isinstance(value, Tensor):
                value = value.data
            if not hasattr(value, "shape"):
                raise TypeError(f"{name}.load_state_dict: {key!r} holds a {type(value).__name__}, "
                                "expected a Tensor or an array")
            arrays[key] = to_device(value, "cpu") if key.startswith("param_groups.") else value

        params = self._indexed_params()
        # Group layout: same number of groups, same parameter counts.
        for g, group in enumerate(self.param_groups):
            key = f"param_groups.{g}.params"
            if key not in arrays:
                raise ValueError(f"{name}.load_state_dict: missing {key!r}: the state dict has "
                                 f"fewer parameter groups than this optimizer "
                                 f"({len(self.param_groups)})")
            if arrays[key].size != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {g} holds {arrays[key].size} "
                                 f"parameters in the state dict but {len(group['params'])} here")
        # The saved parameter indices, over all groups, must name each parameter exactly once.
        saved = [arrays[f"param_groups.{g}.params"] for g in range(len(self.param_groups))]
        if any(a.dtype.kind not in "iu" for a in saved) or sorted(
                int(i) for a in saved for i in a.reshape(-1)) != list(range(len(params))):
            got = [a.reshape(-1).tolist() for a in saved]
            raise ValueError(f"{name}.load_state_dict: the groups' parameter indices {got} are not "
                             f"the integers 0..{len(params) - 1}, each once")
        new_state, new_hyper, unexpected = {}, {}, []
        for key, arr in arrays.items():
            parts = key.split(".")
            if parts[0] == "state" and len(parts) == 3 and parts[1].isdigit():
                i = int(parts[1])
                if i >= len(params):
                    raise ValueError(f"{name}.load_state_dict: {key!r} refers to parameter {i}, "
                                     f"but this optimizer has {len(params)} parameters")
                p = params[i][1]
                if parts[2] not in self.STATE_NAMES:
                    raise ValueError(f"{name}.load_state_dict: {key!r} is not part of {name}'s "
                                     f"state (its names: {', '.join(self.STATE_NAMES)})")
                if parts[2] == "step":
                    new_state.setdefault(i, {})["step"] = _step_count(name, key, arr)
                    continue
                if tuple(arr.shape) != p.shape:
                    raise ValueError(f"{name}.load_state_dict: {key!r} has shape {tuple(arr.shape)}"
                                     f", but parameter {i} has shape {p.shape}")
                arr = to_device(arr, p.device)
                dtype = p.dtype if arr.dtype.kind == "f" else arr.dtype
                new_state.setdefault(i, {})[parts[2]] = arr.astype(dtype, copy=True)
            elif parts[0] == "param_groups" and len(parts) == 3 and parts[1].isdigit():
                g = int(parts[1])
                if g >= len(self.param_groups):
                    raise ValueError(f"{name}.load_state_dict: {key!r} refers to group {g}, but "
                                     f"this optimizer has {len(self.param_groups)} groups")
                if parts[2] != "params":
                    new_hyper.setdefault(g, {})[parts[2]] = _array_to_hyper(arr)
            else:
                unexpected.append(key)
        if unexpected:
            raise ValueError(f"{name}.load_state_dict: unexpected keys " +
                             ", ".join(repr(k) for k in unexpected) +
                             "; expected 'state.<i>.<name>' and 'param_groups.<g>.<key>'")
        for i, s in new_state.items():
            missing = [n for n in self.REQUIRED_STATE if n not in s]
            if missing:
                raise ValueError(f"{name}.load_state_dict: the state of parameter {i} lacks "
                                 f"{', '.join(missing)} (a partial or foreign state dict)")
        for g, hyper in new_hyper.items():
            self._check_hyperparameters({**self.param_groups[g], **hyper})
        # Every check passed: now replace.
        for g, hyper in new_hyper.items():
            self.param_groups[g].update(hyper)
        self.state = {params[i][1]: s for i, s in new_state.items()}


def _step_count(name: str, key: str, arr) -> int:
    """A saved step count: one non-negative integer (bias corrections divide by 1 - beta^step)."""
    if arr.size != 1 or arr.dtype.kind not in "iu" or int(arr.reshape(-1)[0]) < 0:
        raise ValueError(f"{name}.load_state_dict: {key!r} must be one non-negative integer, got "
                         f"{arr.reshape(-1)[:4].tolist()} ({arr.dtype}, shape {tuple(arr.shape)})")
    return int(arr.reshape(-1)[0])


def _hyper_to_array(g: int, key: str, value) -> np.ndarray:
    if isinstance(value, (bool, np.bool_)):
        return np.asarray(value, dtype=np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.asarray(value, dtype=np.int64)
    if isinstance(value, (float, np.floating)):
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
        return np.asarray(value, dtype=np.float64)
    raise TypeError(f"state_dict: param_groups[{g}][{key!r}] is a {type(value).__name__}; only "
                    "numbers, bools and tuples of numbers can be saved")


def _array_to_hyper(arr):
    """Back from _hyper_to_array: 0-d arrays to Python scalars, 1-d to a tuple of floats."""
    if arr.ndim == 0:
        return arr.item()
    return tuple(float(v) for v in arr.tolist())
