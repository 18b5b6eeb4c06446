"""The containers: Modules that hold other Modules.

  ModuleList  a list whose items' parameters the parent sees (no forward: the parent calls them)
  Sequential  modules called one after the other

Children are named "0", "1", ... so that names read ``h.0.attn.weight``. ``Module.__setattr__``
(module.py) turns a plain list of Modules assigned as an attribute into a ModuleList.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .module import Module

__all__ = ["ModuleList", "Sequential"]


def _index(op: str, idx, n: int) -> int:
    if not isinstance(idx, (int, np.integer)) or isinstance(idx, bool):
        raise TypeError(f"{op}: indices must be integers or slices, got {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"{op}: index {idx} is out of range for {n} modules")
    return int(idx) % n


class ModuleList(Module):
    """A list of Modules whose parameters the parent sees: index, iterate, ``len``, ``append``,
    ``extend``, ``insert``. Children are named "0", "1", ... (so names read ``h.0.attn.weight``).
    It has no forward: the parent decides how to call its items."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _items(self):
        return list(self._modules.values())

    def _reset(self, items):
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def __getitem__(self, idx):
        items = self._items()
        if isinstance(idx, slice):
            return ModuleList(items[idx])
        return items[_index("ModuleList", idx, len(items))]

    def __setitem__(self, idx, module):
        items = self._items()
        items[_index("ModuleList", idx, len(items))] = module
        self._reset(items)

    def __delitem__(self, idx):
        items = self._items()
        if isinstance(idx, slice):
            del items[idx]
        else:
            del items[_index("ModuleList", idx, len(items))]
        self._reset(items)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._items())

    def append(self, module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError(f"ModuleList.extend: expected an iterable of Modules, got a single "
                            f"{type(modules).__name__}; use append")
        for m in modules:
            if not isinstance(m, Module):
                raise TypeError(f"ModuleList: every item must be a Module, got "
                                f"{type(m).__name__}")
            self.append(m)
        return self

    def insert(self, index: int, module) -> None:
        items = self._items()
        items.insert(index, module)
        self._reset(items)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(): iterate over it and call each "
                                  "module, or use nn.Sequential")


class Sequential(Module):
    """Modules called one after the other: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.

    Also takes one OrderedDict of name -> module. Indexable (a slice gives a Sequential), iterable,
    has ``len`` and ``append``.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, "
                                    "expected a Module")
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, idx):
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(items[idx]))
        return items[_index("Sequential", idx, len(items))][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self
