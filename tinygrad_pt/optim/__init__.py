"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules (optim.lr_scheduler).

    opt = tg.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    sched = tg.optim.lr_scheduler.CosineWithWarmup(opt, warmup_steps=100, total_steps=5000)

Gradient clipping is ``tg.nn.utils.clip_grad_norm_``.
"""
from . import lr_scheduler  # noqa: F401  (optim.lr_scheduler.CosineWithWarmup, LambdaLR)
from .adam import Adam, AdamW
from .lr_scheduler import cosine_with_warmup
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "cosine_with_warmup"]
