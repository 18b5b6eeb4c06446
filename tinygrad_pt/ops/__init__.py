"""Differentiable ops, one Function each, in files by kind.

Each module lists in ``__all__`` the functions it gives the ``tg`` namespace (``tg.exp``,
``tg.concatenate``) and in ``TENSOR_METHODS`` the methods it gives Tensor (``x.exp()``, ``x + y``).
``install_tensor_methods`` attaches those when the package is imported: see the note in tensor.py.
"""
from ..backend import register_array_namespace
from ..tensor import Tensor
from . import (activation, attention, dropout, elementwise, indexing, inplace, linalg, loss,
               normalization, reduce, selection, shape, tensor_xp, torch_names)
from .activation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .selection import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .torch_names import *  # noqa: F401,F403

MODULES = (elementwise, selection, reduce, linalg, shape, indexing, activation, normalization,
           dropout, attention, loss, inplace, torch_names)


def install_tensor_methods():
    for module in MODULES:
        for name, fn in getattr(module, "TENSOR_METHODS", {}).items():
            setattr(Tensor, name, fn)


install_tensor_methods()
register_array_namespace(Tensor, tensor_xp)  # backward rules handed Tensors (create_graph)
