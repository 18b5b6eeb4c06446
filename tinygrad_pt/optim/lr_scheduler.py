"""Learning-rate schedules: cosine with linear warmup, and LambdaLR.

A scheduler sets ``group["lr"]`` of its optimizer's groups. As in PyTorch, building it sets the
rate for step 0, and ``scheduler.step()`` is called once after each ``optimizer.step()``:

    for batch in loader:
        loss = ...; loss.backward()
        opt.step(); opt.zero_grad()
        sched.step()

Each group's starting rate is remembered in ``group["initial_lr"]`` (the base lr).
"""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer

__all__ = ["LRScheduler", "CosineWithWarmup", "LambdaLR", "cosine_with_warmup"]


def cosine_with_warmup(step: int, base_lr: float, warmup_steps: int, total_steps: int,
                       min_lr: float = 0.0) -> float:
    """The learning rate at `step` (0-based):

        base_lr * step / warmup_steps                                   step < warmup_steps
        min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2      warmup_steps <= step < total
        min_lr                                                          step >= total_steps
        with progress = (step - warmup_steps) / (total_steps - warmup_steps)

    so it rises linearly from 0 to base_lr over the warmup, then falls along half a cosine to
    min_lr at total_steps, and stays there.

    >>> [round(cosine_with_warmup(s, 1.0, 2, 6), 3) for s in range(7)]
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < 0:
        raise ValueError(f"cosine_with_warmup: step must be >= 0, got {step}")
    if warmup_steps < 0 or total_steps <= 0 or warmup_steps > total_steps:
        raise ValueError(f"cosine_with_warmup: expected 0 <= warmup_steps <= total_steps and "
                         f"total_steps > 0, got warmup_steps={warmup_steps}, "
                         f"total_steps={total_steps}")
    if min_lr < 0 or base_lr < 0:
        raise ValueError(f"cosine_with_warmup: base_lr and min_lr must be >= 0, got "
                         f"base_lr={base_lr}, min_lr={min_lr}")
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


class LRScheduler:
    """Base class: ``get_lr()`` gives each group's rate at ``self.last_epoch`` (the step count).

    ``state_dict()`` is ``{"last_epoch": 0-d int64, "base_lrs": 1-d float64}`` arrays, so that
    ``tg.save`` can write it next to the optimizer's.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        elif any("initial_lr" not in g for g in optimizer.param_groups):
            raise ValueError(f"{type(self).__name__}: last_epoch={last_epoch} resumes a schedule, "
                             "but the optimizer's groups have no 'initial_lr'; load the "
                             "optimizer's state dict first")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and set every group's lr."""
        self.last_epoch += 1
        self._last_lr = [float(lr) for lr in self.get_lr()]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` (or the constructor) set, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {"last_epoch": np.asarray(self.last_epoch, dtype=np.int64),
                "base_lrs": np.asarray(self.base_lrs, dtype=np.float64)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume: restore the step count and base rates, and set the groups' lr to match."""
        def raw(key):
            if key not in state_dict:
                raise ValueError(f"{type(self).__name__}.load_state_dict: missing {key!r}")
            value = state_dict[key]
            return np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        base_lrs = [float(v) for v in raw("base_lrs").reshape(-1)]
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(base_lrs)} base rates "
                             f"for {len(self.optimizer.param_groups)} parameter groups")
        self.base_lrs = base_lrs
        self.last_epoch = int(raw("last_epoch")) - 1
        self.step()  # re-applies the rate of the restored step


class CosineWithWarmup(LRScheduler):
    """Linear warmup from 0 to each group's base lr over `warmup_steps`, then a cosine decay to
    `min_lr` at `total_steps` (see ``cosine_with_warmup``)."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int,
                 min_lr: float = 0.0, last_epoch: int = -1):
        # Checked here too, so that a bad schedule fails when it is built, not at some later step.
        cosine_with_warmup(0, 0.0, warmup_steps, total_steps, min_lr)
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [cosine_with_warmup(self.last_epoch, base, self.warmup_steps, self.total_steps,
                                   self.min_lr) for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(step); `lr_lambda` is one function or a list, one per group."""

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per parameter group), "
                                 f"got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError("LambdaLR: lr_lambda must be a function of the step (or a list of "
                            "them)")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]
