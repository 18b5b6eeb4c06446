"""The autograd graph that made a tensor, as Graphviz dot source (and SVG), for study.

    >>> import tinygrad_pt as tg
    >>> from tinygrad_pt.viz import to_dot
    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> print(to_dot((x * x).sum(), params={"x": x}))  # doctest: +ELLIPSIS
    digraph autograd {
    ...

Nodes: one box per Function, labelled with its name and its output's shape and dtype (the tensor
that the op made: an intermediate tensor is drawn as the op that made it), and one ellipse per
leaf (a tensor no recorded op made: a parameter, an input, a constant), labelled with its shape,
dtype and whether it requires grad. Edges follow the data: input -> op -> output. The tensor
passed in is drawn with a double border. After ``backward()`` the graph is freed: an op whose
inputs are gone is drawn with "(freed)" and no edges into it.

The walk uses an explicit stack, like the backward pass, so a deep graph cannot hit Python's
recursion limit. ``to_svg`` runs Graphviz's ``dot`` program when it is installed.
"""
from __future__ import annotations

import shutil
import subprocess

from .tensor import Tensor

__all__ = ["to_dot", "to_svg"]


def _label(text: str) -> str:
    """`text` as a quoted dot string (backslashes and quotes escaped, newlines as \\n)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(t: Tensor) -> str:
    return f"{tuple(t.shape)} {t.dtype}"


def to_dot(tensor: Tensor, params: dict | None = None) -> str:
    """Graphviz dot source of the graph that made `tensor`.

    params: optional ``{name: Tensor}`` (e.g. ``dict(model.named_parameters())``) so that those
    leaves are labelled with their names.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    names = {id(t): name for name, t in (params or {}).items()}
    ids: dict[int, str] = {}  # id(tensor) -> node name, in the order nodes are found
    nodes: list[str] = []
    edges: list[str] = []

    def node_of(t: Tensor) -> tuple[str, bool]:
        """The node name of t, and whether it is new (and so still to be expanded)."""
        key = id(t)
        if key in ids:
            return ids[key], False
        ids[key] = f"n{len(ids)}"
        return ids[key], True

    node_of(tensor)
    stack = [tensor]
    while stack:
        t = stack.pop()
        name = ids[id(t)]
        border = ", peripheries=2" if t is tensor else ""
        fn = t._ctx
        if fn is None:
            grad = "requires_grad=True" if t.requires_grad else "requires_grad=False"
            lines = [names.get(id(t), "leaf"), _shape(t), grad]
            nodes.append(f"  {name} [shape=ellipse, label={_label(chr(10).join(lines))}{border}];")
            continue
        inputs = getattr(fn, "inputs", None)
        op = fn.name if inputs is not None else f"{getattr(fn, 'released_name', fn.name)} (freed)"
        lines = [op, _shape(t)]
        nodes.append(f"  {name} [shape=box, label={_label(chr(10).join(lines))}{border}];")
        for inp in inputs or ():
            child, new = node_of(inp)
            edges.append(f"  {child} -> {name};")
            if new:
                stack.append(inp)
    return ("digraph autograd {\n  node [fontname=\"Helvetica\", fontsize=10];\n"
            + "".join(line + "\n" for line in nodes + edges) + "}\n")


def to_svg(tensor: Tensor, path, params: dict | None = None) -> str:
    """Render ``to_dot(tensor)`` to an SVG file at `path` with Graphviz's ``dot``; returns path.

    Raises RuntimeError when ``dot`` is not installed (or fails), saying what to do.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("to_svg: Graphviz's `dot` program was not found on PATH; install "
                           "Graphviz (e.g. `apt-get install graphviz` or `brew install graphviz`), "
                           "or write to_dot(tensor) to a file and render it elsewhere")
    path = str(path)
    done = subprocess.run([dot, "-Tsvg", "-o", path], input=to_dot(tensor, params),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"to_svg: `dot` failed with exit code {done.returncode}: "
                           f"{done.stderr.strip()}")
    return path
