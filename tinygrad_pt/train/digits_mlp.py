"""The demo run: a small MLP classifier trained on the real 8x8 digits, with a progress bar.

It touches every floor of the framework once (data -> tensors -> nn -> F.cross_entropy ->
backward -> AdamW), so it is the quickest end-to-end check that an install works.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from .. import nn, optim
from ..autograd import no_grad
from ..backend import manual_seed
from ..creation import tensor
from ..data import DataLoader, load_digits
from ..nn import functional as F
from .loop import optimize

LOG_EVERY = 10  # read the loss back to the host only this often (a device sync on cuda)


def make_mlp(hidden: int = 128) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                         nn.Linear(hidden, 10))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, device: str) -> float:
    model.eval()
    with no_grad():
        logits = model(tensor(x, device=device))
    model.train()
    return float((logits.numpy().argmax(axis=1) == y).mean())


def _endless(loader):
    """The loader's batches, epoch after epoch (each epoch shuffled anew by the loader)."""
    while True:
        yield from loader


def train_digits_mlp(steps: int = 300, batch_size: int = 64, lr: float = 3e-3, device: str = "cpu",
                     seed: int = 0, progress: bool = True) -> dict:
    """Train for `steps` AdamW steps; returns the final train loss, test accuracy and speed."""
    if steps <= 0:
        raise ValueError(f"train_digits_mlp: steps must be positive, got {steps}")
    manual_seed(seed)
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    model = make_mlp().to(device)
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loader = DataLoader((x_train, y_train), batch_size=batch_size, shuffle=True, drop_last=True,
                        seed=seed)

    batches = _endless(loader)
    bar = tqdm(total=steps, desc="digits-mlp", unit="step", disable=not progress)
    loss_value, start = float("nan"), time.perf_counter()

    def loss_of_step(step):
        xb, yb = next(batches)
        return F.cross_entropy(model(tensor(xb, device=device)), tensor(yb, device=device))

    def log(done, loss):
        nonlocal loss_value
        if done % LOG_EVERY == 0 or done == steps:
            loss_value = loss.item()  # the only host sync of the loop
            elapsed = time.perf_counter() - start
            rate = done * batch_size / elapsed
            bar.set_postfix(loss=f"{loss_value:.4f}", ex_per_s=f"{rate:,.0f}")
        bar.update(1)

    optimize(opt, loss_of_step, steps, on_step=log)
    bar.close()
    seconds = time.perf_counter() - start
    return {"steps": steps, "train_loss": loss_value,
            "test_accuracy": accuracy(model, x_test, y_test, device),
            "seconds": seconds, "examples_per_s": steps * batch_size / seconds}
