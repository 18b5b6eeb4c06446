"""Each rank's part of a global batch.

Two ways, both keeping the global batch exactly what one process would train on:
  - ``shard_rows(batch, rank, world)``: every rank draws the same global batch (one generator
    seeded alike everywhere) and keeps its contiguous block of rows. The recipes do this: their
    draws (indices, augmentations, corruptions) then stay bit-identical to a single process's,
    at the price of drawing (not training on) the whole batch on every rank.
  - ``DistributedSampler``: an epoch iterator for data sets read in order. Each epoch is one
    permutation of the indices from ``seed + epoch`` (the same on every rank: a shared seed,
    nothing communicated); global batch b is positions [b*B, (b+1)*B) of it, and rank r takes
    its block of B/N, so the ranks' shards are disjoint and together are the global batch.
"""
from __future__ import annotations

import numpy as np

__all__ = ["shard_bounds", "shard_rows", "DistributedSampler"]


def shard_bounds(n: int, rank: int, world: int, what: str = "batch") -> tuple[int, int]:
    """[lo, hi) of rank's rows among n; n must divide by world (equal shards keep the mean of
    the ranks' means the mean over the global batch)."""
    if n % world:
        raise ValueError(f"distributed: a {what} of {n} rows cannot be split evenly over "
                         f"{world} ranks; use a batch size divisible by {world} (e.g. "
                         f"{max(world, n - n % world)})")
    per = n // world
    return rank * per, (rank + 1) * per


def shard_rows(array, rank: int, world: int, axis: int = 0):
    """This rank's contiguous block of `array` along `axis` (a view; works for Tensors too)."""
    if world == 1:
        return array
    lo, hi = shard_bounds(array.shape[axis], rank, world)
    index = [slice(None)] * len(array.shape)
    index[axis] = slice(lo, hi)
    return array[tuple(index)]


class DistributedSampler:
    """Indices of this rank's shard of each global batch, epoch after epoch.

        sampler = DistributedSampler(len(data), batch_size=64, seed=0, rank=r, world=n)
        for epoch in range(3):
            sampler.set_epoch(epoch)           # reshuffles: the same permutation on every rank
            for idx in sampler: x = data[idx]  # (64 / n,) indices, disjoint across ranks

    An incomplete last batch is dropped (every step has the same global batch size)."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1):
        if n <= 0 or batch_size <= 0:
            raise ValueError(f"DistributedSampler: n and batch_size must be positive, got "
                             f"n={n}, batch_size={batch_size}")
        if not 0 <= rank < world:
            raise ValueError(f"DistributedSampler: rank {rank} outside [0, {world})")
        shard_bounds(batch_size, rank, world)  # the divisibility check, with its message
        if batch_size > n:
            raise ValueError(f"DistributedSampler: batch_size {batch_size} exceeds the {n} "
                             "examples")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.epoch = rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self):
        order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        lo, hi = shard_bounds(self.batch_size, self.rank, self.world)
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size][lo:hi]
