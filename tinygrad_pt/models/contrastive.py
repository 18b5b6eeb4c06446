"""Contrastive pre-training on small images: SimCLR and MoCo, with an MLP encoder for 8x8 digits.

References:
  SimCLR: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
          Representations" (2020): two augmented views, a projection head, the NT-Xent loss.
  MoCo:   He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation
          Learning" (2020), with v2's MLP head (Chen et al. 2020): a momentum key encoder and a
          queue of negatives, scored by InfoNCE.

The backbone (MLPEncoder) is what later tasks reuse: a linear probe reads its features and
fine-tuning trains it further (train/transfer.py). The projection head exists only for the loss and
is thrown away afterwards, as in both papers (features before the head transfer better).

Everything is float32 and runs on the device of its parameters ("cpu" or "cuda").
"""
from __future__ import annotations

import copy

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..backend import array_module
from ..creation import randn
from ..nn import functional as F
from ..ops import concatenate
from ..tensor import Tensor

__all__ = ["MLPEncoder", "ProjectionHead", "SimCLR", "MoCo", "info_nce"]


# ----------------------------------------------------------------------------------------------------
# Encoder and projection head


class MLPEncoder(nn.Module):
    """The backbone: x (N, in_dim) -> features h (N, feat_dim).

    Linear -> ReLU -> Linear -> ReLU -> Linear: two hidden layers of width `hidden`. The output
    has no activation, so a linear probe or a new head reads an unconstrained feature vector.
    Linear layers keep PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    def __init__(self, in_dim: int = 64, hidden: int = 256, feat_dim: int = 128):
        super().__init__()
        self.in_dim, self.feat_dim = in_dim, feat_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, feat_dim))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLPEncoder: expected input of shape (N, {self.in_dim}), got "
                             f"{x.shape}")
        return self.net(x)  # (N, feat_dim)


class ProjectionHead(nn.Module):
    """g(h): features (N, in_dim) -> projections z (N, out_dim), Linear -> ReLU -> Linear.

    SimCLR's finding: the loss is best applied after a small non-linear head, which can discard
    what the augmentations vary (position, noise) while the backbone keeps it.
    """

    def __init__(self, in_dim: int = 128, hidden: int = 128, out_dim: int = 64):
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)  # (N, out_dim)


# ----------------------------------------------------------------------------------------------------
# SimCLR


class SimCLR(nn.Module):
    """z = projection(encoder(x)); loss(x1, x2) = NT-Xent between the two views' projections.

    NT-Xent (F.nt_xent) normalises z1, z2 (N, D), scores all 2N x 2N cosine similarities divided
    by the temperature, and for each of the 2N rows takes the cross-entropy of picking its other
    view among the 2N - 1 other rows: every other image in the batch is a negative.
    """

    def __init__(self, encoder: nn.Module, projection: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.projection = projection

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.encoder(x))  # (N, proj_dim)

    def loss(self, x1: Tensor, x2: Tensor, temperature: float = 0.5) -> Tensor:
        """NT-Xent of the two views x1, x2 (N, in_dim): a 0-d tensor."""
        if x1.shape != x2.shape:
            raise ValueError(f"SimCLR.loss: the two views must have the same shape, got "
                             f"{x1.shape} and {x2.shape}")
        n = x1.shape[0]
        z = self(concatenate([x1, x2], axis=0))  # (2N, D): one pass through the network
        return F.nt_xent(z[:n], z[n:], temperature)


# ----------------------------------------------------------------------------------------------------
# MoCo


def info_nce(q: Tensor, k: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """InfoNCE of queries q (N, D) against their keys k (N, D) and shared negatives (K, D).

    logits_i = [q_i . k_i, q_i . n_1, ..., q_i . n_K] / temperature   (N, 1 + K)
    loss = mean_i cross_entropy(logits_i, 0): the positive is class 0 (MoCo's formulation).
    Inputs are used as given (MoCo normalises q and k first; the queue holds normalised keys).
    """
    if q.ndim != 2 or q.shape != k.shape or negatives.ndim != 2 \
            or negatives.shape[1] != q.shape[1]:
        raise ValueError(f"info_nce: expected q and k of shape (N, D) and negatives (K, D), got "
                         f"q {q.shape}, k {k.shape}, negatives {negatives.shape}")
    l_pos = (q * k).sum(axis=1, keepdims=True)  # (N, 1)
    l_neg = q @ negatives.T                     # (N, K)
    logits = concatenate([l_pos, l_neg], axis=1) * (1.0 / temperature)  # (N, 1 + K)
    xp = array_module(q.data)
    labels = Tensor._make(xp.zeros(q.shape[0], dtype=np.int64))  # the positive sits at index 0
    return F.cross_entropy(logits, labels)


def _last_linear_width(module: nn.Module):
    widths = [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]
    return widths[-1] if widths else None


class MoCo(nn.Module):
    """Momentum Contrast: a query encoder trained by gradient, a key encoder that follows it by an
    exponential moving average, and a FIFO queue of past keys used as negatives.

    encoder_q: any module x (N, ...) -> (N, dim) (here Sequential(MLPEncoder, ProjectionHead)).
    encoder_k: a deep copy of encoder_q; its parameters never get gradients, only
               theta_k <- m * theta_k + (1 - m) * theta_q   (momentum_update, in place).
    queue:     (queue_size, dim) normalised keys on the device, a ring buffer: each step's keys
               overwrite the oldest ones at queue_ptr. It starts as random unit vectors (as in
               the paper), which the first queue_size / N steps replace.

    symmetric=True scores both directions (queries of view 1 against keys of view 2 and the
    reverse), averages the two losses and enqueues both sets of keys, as the MoCo authors' CIFAR
    demo does; False is the paper's one-directional loss.

    The queue is a non-persistent buffer (it moves with .to() but is not in state_dict): a
    training recipe saves it and its pointer as extra state, beside encoder_q and encoder_k.
    """

    def __init__(self, encoder_q: nn.Module, momentum: float = 0.99, queue_size: int = 1024,
                 temperature: float = 0.2, dim: int | None = None, symmetric: bool = False):
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"MoCo: momentum must be in [0, 1], got {momentum}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, (int, np.integer)) \
                or queue_size <= 0:
            raise ValueError(f"MoCo: queue_size must be a positive int, got {queue_size!r}")
        if not temperature > 0:
            raise ValueError(f"MoCo: temperature must be positive, got {temperature}")
        dim = _last_linear_width(encoder_q) if dim is None else dim
        if dim is None:
            raise ValueError("MoCo: cannot tell the encoder's output width (it has no Linear "
                             "layer); pass dim=")
        self.momentum, self.temperature, self.dim = float(momentum), float(temperature), int(dim)
        self.symmetric = bool(symmetric)
        self.encoder_q = encoder_q
        self.encoder_k = copy.deepcopy(encoder_q)
        self.encoder_k.requires_grad_(False)  # moved only by momentum_update
        first = next(iter(encoder_q.parameters()), None)
        device = "cpu" if first is None else first.device  # the queue lives beside the weights
        with no_grad():
            queue = F.normalize(randn(int(queue_size), self.dim, device=device), axis=1)
        self.register_buffer("queue", queue, persistent=False)  # (K, dim)
        self.queue_ptr = 0  # where the next key is written (the oldest key)

    @property
    def queue_size(self) -> int:
        return self.queue.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        """Normalised query embeddings q (N, dim)."""
        return F.normalize(self.encoder_q(x), axis=1)

    @no_grad()
    def momentum_update(self) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q for every parameter, with in-place ops (under
        no_grad, so they need no graph; each write bumps pk's version counter)."""
        m = self.momentum
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            pk.mul_(m).add_(pq.detach(), alpha=1.0 - m)

    @no_grad()
    def keys(self, x: Tensor) -> Tensor:
        """Normalised keys k (N, dim) from the key encoder, outside the graph."""
        return F.normalize(self.encoder_k(x), axis=1)

    @no_grad()
    def enqueue(self, k: Tensor) -> None:
        """Write the N keys k (N, dim) over the N oldest entries of the queue (FIFO)."""
        n, size = k.shape[0], self.queue_size
        if k.ndim != 2 or k.shape[1] != self.dim or n > size:
            raise ValueError(f"MoCo.enqueue: expected keys of shape (N, {self.dim}) with "
                             f"N <= queue_size = {size}, got {k.shape}")
        xp = array_module(self.queue.data)
        rows = (self.queue_ptr + xp.arange(n)) % size  # wraps around the end of the ring
        self.queue.data[rows] = k.data
        self.queue_ptr = (self.queue_ptr + n) % size

    def loss(self, x_q: Tensor, x_k: Tensor, update: bool = True) -> Tensor:
        """InfoNCE of the queries (from view x_q) against keys (view x_k) and the queue; with
        symmetric=True also of queries from x_k against keys from x_q, the mean of the two.

        With update=True (training) the key encoder first takes its momentum step and afterwards
        the new keys are enqueued (k, or [k from x_k; k from x_q] when symmetric);
        update=False (evaluation) changes nothing.
        """
        if x_q.shape != x_k.shape:
            raise ValueError(f"MoCo.loss: the two views must have the same shape, got "
                             f"{x_q.shape} and {x_k.shape}")
        if update:
            self.momentum_update()
        # A copy: enqueue below overwrites the queue in place, while backward still needs the
        # negatives that this loss was computed with.
        negatives = Tensor._make(self.queue.data.copy())  # (K, dim)
        if self.symmetric:
            # Both directions in one pass: query rows [x_q; x_k] pair with key rows [x_k; x_q],
            # and the mean over the 2N rows is the mean of the two directions' losses.
            x_q, x_k = concatenate([x_q, x_k], axis=0), concatenate([x_k, x_q], axis=0)
        q, k = self(x_q), self.keys(x_k)  # (N or 2N, dim) each; only q is in the graph
        loss = info_nce(q, k, negatives, self.temperature)
        if update:
            self.enqueue(k)
        return loss

    def extra_repr(self) -> str:
        return (f"momentum={self.momentum}, queue_size={self.queue_size}, "
                f"temperature={self.temperature}, dim={self.dim}, symmetric={self.symmetric}")

