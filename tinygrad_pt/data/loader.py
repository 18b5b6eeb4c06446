"""A minimal DataLoader over NumPy arrays: batches, seeded shuffling, drop_last.

Batches stay NumPy arrays; the training loop puts them on the device with tg.tensor(..., device=).
"""
from __future__ import annotations

import numpy as np


class DataLoader:
    """Iterate over aligned arrays in batches.

    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [b[1].tolist() for b in DataLoader((x, y), batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, arrays, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0):
        self.arrays = tuple(arrays) if isinstance(arrays, (tuple, list)) else (arrays,)
        n = len(self.arrays[0])
        for i, a in enumerate(self.arrays):
            if len(a) != n:
                raise ValueError(f"DataLoader: array {i} has {len(a)} rows, array 0 has {n}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self):
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = tuple(a[idx] for a in self.arrays)
            yield batch if len(batch) > 1 else batch[0]
