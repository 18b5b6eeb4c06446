"""``array_module(t)`` for a Tensor t: the array-module calls backward rules make, as Tensor ops.

A backward rule takes its ``xp`` from its data (``xp = array_module(self.x)``). With create_graph
that data is Tensors (see ``Function.graph_backward``), and this namespace answers with recorded
ops, so the rule's result is itself a graph. A call that holds no Tensor (a mask computed from
raw arrays) goes to the arrays' own module: constants stay constants.

Only what the rules call is here; anything else is an AttributeError that names the function,
never a silent detour through NumPy (which would turn a Tensor into a constant).
"""
from __future__ import annotations

from ..backend import array_module
from ..tensor import Tensor
from . import elementwise, selection, shape
from .activation import tanh as _tanh

__all__ = ["exp", "log", "sqrt", "sin", "cos", "tanh", "abs", "sign", "where", "maximum",
           "minimum", "broadcast_to"]


def _dual(name: str, on_tensors):
    """`on_tensors` when some argument is a Tensor, else the arrays' module's own `name`."""
    def call(*args, **kwargs):
        if any(isinstance(a, Tensor) for a in args):
            return on_tensors(*args, **kwargs)
        return getattr(array_module(*args), name)(*args, **kwargs)
    call.__name__ = name
    return call


def _sign(x: Tensor) -> Tensor:
    """sign(x) as a constant: its derivative is 0 wherever it exists."""
    return Tensor._make(array_module(x.data).sign(x.data))


exp = _dual("exp", elementwise.exp)
log = _dual("log", elementwise.log)
sqrt = _dual("sqrt", elementwise.sqrt)
sin = _dual("sin", elementwise.sin)
cos = _dual("cos", elementwise.cos)
tanh = _dual("tanh", _tanh)
abs = _dual("abs", elementwise.abs)  # noqa: A001 (the array-module name)
sign = _dual("sign", _sign)
where = _dual("where", selection.where)
maximum = _dual("maximum", selection.maximum)
minimum = _dual("minimum", selection.minimum)
broadcast_to = _dual("broadcast_to", shape.broadcast_to)


def __getattr__(name):
    raise AttributeError(f"array_module of a Tensor (a backward rule run with create_graph) has no "
                         f"{name!r}: the rule calls an array function that has no Tensor op here; "
                         "give the op a graph_backward written with Tensor ops")
