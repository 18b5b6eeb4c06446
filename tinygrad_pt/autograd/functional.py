"""tg.autograd.functional: vjp, jvp, hvp, vhp, jacobian, hessian of a function of Tensors.

torch.autograd.functional's argument order, defaults and return values: ``func`` takes the
inputs (a Tensor, or a tuple of Tensors passed as separate arguments) and returns a Tensor or a
tuple of Tensors; results have the structure of the inputs (vjp, hvp, vhp), of the outputs
(jvp), or both (jacobian, hessian). vjp, jvp, hvp and vhp return ``(func_output, result)``.

Everything is reverse mode on ``grad``: the Jacobian-vector product uses the double-vjp trick,

    g(u) = J^T u      (a vjp with a dummy u, recorded with create_graph)
    J v  = d<g(u), v>/du,

which is exact because g is linear in u; the Hessian-vector product is the gradient of
<grad f, v>. Inputs are detached first (or, with create_graph, taken through a view that keeps
their own graph), so nothing accumulates into anyone's ``.grad``; without create_graph the
results are detached. An input that an output does not depend on gets zeros (strict=True makes
that an error, as PyTorch).
"""
from __future__ import annotations

from .. import autograd as _engine  # Tensor is registered there at run time (see tensor.py)
from ..backend import array_module
from . import grad

__all__ = ["vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"]


def _as_tuple(op: str, what: str, value):
    """(tuple of Tensors, whether `value` was a tuple/list)."""
    is_tuple = isinstance(value, (tuple, list))
    seq = tuple(value) if is_tuple else (value,)
    for i, t in enumerate(seq):
        if not isinstance(t, _engine._Tensor):
            where = f"{what}[{i}]" if is_tuple else what
            raise TypeError(f"{op}: {where} must be a Tensor, got {type(t).__name__}")
    return seq, is_tuple


def _prepare_inputs(op: str, inputs, create_graph: bool):
    """Fresh tensors to differentiate with respect to: with create_graph, an input that requires
    grad is taken through a reshape (a view in the graph), so the results stay connected to
    whatever computed it; otherwise inputs are detached."""
    xs, is_tuple = _as_tuple(op, "inputs", inputs)
    prepared = []
    for i, x in enumerate(xs):
        if x.dtype.kind != "f":
            raise TypeError(f"{op}: inputs must be floating-point tensors, got dtype {x.dtype} "
                            f"for input {i}")
        if create_graph and x.requires_grad:
            prepared.append(x.reshape(x.shape))
        else:
            prepared.append(x.detach().requires_grad_())
    return tuple(prepared), is_tuple


def _outputs(op: str, func, xs):
    out = func(*xs)
    outs, is_tuple = _as_tuple(op, "the output of func", out)
    return outs, is_tuple


def _vectors(op: str, v, like, what: str):
    """v as a tuple matching the tensors `like` (shapes checked); None only for single-element
    tensors (then ones)."""
    if v is None:
        if len(like) != 1 or like[0].size != 1:
            raise RuntimeError(f"{op}: v can be omitted only when {what} is a single Tensor with "
                               f"one element, got shapes {[t.shape for t in like]}")
        return (_ones_like(like[0]),)
    vs, _ = _as_tuple(op, "v", v)
    if len(vs) != len(like):
        raise RuntimeError(f"{op}: v has {len(vs)} Tensor(s) but {what} has {len(like)}")
    for i, (a, b) in enumerate(zip(vs, like)):
        if a.shape != b.shape:
            raise RuntimeError(f"{op}: v[{i}] has shape {a.shape}, expected {b.shape} (the shape "
                               f"of {what}[{i}])")
    return vs


def _ones_like(t):
    return _engine._Tensor._make(array_module(t.data).ones_like(t.data))


def _zeros_like(t):
    return _engine._Tensor._make(array_module(t.data).zeros_like(t.data))


def _grads(op, outputs, inputs, grad_outputs, create_graph, strict, out_index=None):
    """grad() of the outputs that require grad, with zeros (or, strict, an error) for inputs
    they do not depend on."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if pairs:
        found = grad([o for o, _ in pairs], list(inputs), [g for _, g in pairs],
                     retain_graph=True, create_graph=create_graph, allow_unused=True)
    else:
        found = (None,) * len(inputs)
    result = []
    for j, (g, x) in enumerate(zip(found, inputs)):
        if g is None:
            if strict:
                which = "the output" if out_index is None else f"output {out_index}"
                raise RuntimeError(f"{op}: {which} does not depend on input {j} (strict=True)")
            g = _zeros_like(x)
        result.append(g)
    return tuple(result)


def _finish(results, create_graph: bool):
    """Detach the results unless create_graph (nested tuples kept)."""
    if isinstance(results, tuple):
        return tuple(_finish(r, create_graph) for r in results)
    return results if create_graph else results.detach()


def _shape_like(seq, is_tuple):
    return seq if is_tuple else seq[0]


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product, one reverse pass.

    v has the structure of func's output (None for a one-element output); the product has the
    structure of `inputs`.
    """
    xs, in_tuple = _prepare_inputs("vjp", inputs, create_graph)
    outs, out_tuple = _outputs("vjp", func, xs)
    vs = _vectors("vjp", v, outs, "the output of func")
    result = _grads("vjp", outs, xs, vs, create_graph, strict)
    return (_finish(_shape_like(outs, out_tuple), create_graph),
            _finish(_shape_like(result, in_tuple), create_graph))


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product by the double-vjp trick (module docstring).

    v has the structure of `inputs` (None for a single one-element input); the product has the
    structure of func's output.
    """
    xs, in_tuple = _prepare_inputs("jvp", inputs, create_graph)
    vs = _vectors("jvp", v, xs, "inputs")
    outs, out_tuple = _outputs("jvp", func, xs)
    # u: a dummy upstream gradient per output; J^T u is linear in u, so its value is irrelevant.
    us = tuple(_zeros_like(o).requires_grad_() for o in outs)
    pulled = _grads("jvp", outs, xs, us, True, strict)  # J^T u, recorded
    live = [(p, w) for p, w in zip(pulled, vs) if p.requires_grad]
    if live:
        found = grad([p for p, _ in live], list(us), [w for _, w in live],
                     retain_graph=True, create_graph=create_graph, allow_unused=True)
    else:
        found = (None,) * len(us)
    result = tuple(_zeros_like(o) if g is None else g for g, o in zip(found, outs))
    return (_finish(_shape_like(outs, out_tuple), create_graph),
            _finish(_shape_like(result, out_tuple), create_graph))


def _scalar_output(op: str, func, xs):
    outs, out_tuple = _outputs(op, func, xs)
    if out_tuple or outs[0].size != 1:
        raise RuntimeError(f"{op}: func must return a single Tensor with one element, got "
                           f"{'a tuple' if out_tuple else f'shape {outs[0].shape}'}")
    return outs[0]


def _hessian_product(op, func, inputs, v, create_graph, strict):
    xs, in_tuple = _prepare_inputs(op, inputs, create_graph)
    out = _scalar_output(op, func, xs)
    vs = _vectors(op, v, xs, "inputs")
    first = _grads(op, [out], xs, [None], True, strict)  # grad f, recorded
    result = _grads(op, first, xs, vs, create_graph, strict)  # d<grad f, v>/dx
    return _finish(out, create_graph), _finish(_shape_like(result, in_tuple), create_graph)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v) for a func with a one-element output: the gradient of <grad f, v>.

    v has the structure of `inputs`, as has the product (H is symmetric for a twice
    continuously differentiable f, so this is also v^T H: see vhp).
    """
    return _hessian_product("hvp", func, inputs, v, create_graph, strict)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H): the gradient of <grad f, v> (equal to hvp for a symmetric H)."""
    return _hessian_product("vhp", func, inputs, v, create_graph, strict)


STRATEGIES = ("reverse-mode", "forward-mode")


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian of func at `inputs`: for output i and input j, a Tensor of shape
    out_i.shape + in_j.shape. A single output and a single input give one Tensor; a tuple on
    either side gives a tuple over it; tuples on both give J[i][j].

    One reverse pass per output element (small inputs); vectorize and strategy are accepted for
    PyTorch's signature and compute the same values.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"jacobian: strategy must be one of {STRATEGIES}, got {strategy!r}")
    xs, in_tuple = _prepare_inputs("jacobian", inputs, create_graph)
    outs, out_tuple = _outputs("jacobian", func, xs)
    return _finish(_jacobian_of("jacobian", outs, out_tuple, xs, in_tuple, create_graph, strict),
                   create_graph)


def _jacobian_of(op, outs, out_tuple, xs, in_tuple, create_graph, strict):
    from ..ops.shape import stack  # noqa: PLC0415 (ops sit a floor above autograd)

    rows = []
    for i, out in enumerate(outs):
        per_input = [[] for _ in xs]
        flat_n = out.size
        for k in range(flat_n):
            one_hot = array_module(out.data).zeros(out.size, dtype=out.dtype)
            one_hot[k] = 1
            seed = _engine._Tensor._make(one_hot.reshape(out.shape))
            gs = _grads(op, [out], xs, [seed], create_graph, strict, out_index=i)
            for j, g in enumerate(gs):
                per_input[j].append(g)
        row = []
        for j, x in enumerate(xs):
            if flat_n:
                block = stack(per_input[j], axis=0).reshape(out.shape + x.shape)
            else:
                block = _engine._Tensor._make(x.data.reshape(-1)[:0].reshape(out.shape + x.shape))
            row.append(block)
        rows.append(tuple(row) if in_tuple else row[0])
    return tuple(rows) if out_tuple else rows[0]


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a func with a one-element output: for inputs i, j a Tensor of shape
    in_i.shape + in_j.shape (H[i][j] for a tuple of inputs, one Tensor for a single input).

    The Jacobian of the gradient (recorded with create_graph), one reverse pass per input
    element: for small inputs.
    """
    if outer_jacobian_strategy not in STRATEGIES:
        raise ValueError(f"hessian: outer_jacobian_strategy must be one of {STRATEGIES}, got "
                         f"{outer_jacobian_strategy!r}")
    xs, in_tuple = _prepare_inputs("hessian", inputs, create_graph)
    out = _scalar_output("hessian", func, xs)
    first = _grads("hessian", [out], xs, [None], True, strict)  # grad f, recorded
    rows = _jacobian_of("hessian", first, True, xs, True, create_graph, strict)
    return _finish(rows if in_tuple else rows[0][0], create_graph)
