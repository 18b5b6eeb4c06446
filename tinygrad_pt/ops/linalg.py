"""Matrix multiplication with NumPy's matmul semantics: 1-D, 2-D and batched N-D (broadcast batch),
and the fused affine map of nn.Linear.

Both run on BLAS (``a @ b``, the matmul family's reference) unless a matmul kernel is chosen by
name, ``tg.set_kernels(matmul="numba")`` (the blocked Numba study kernel, kernels/cpu/matmul.py)
or ``matmul="cuda"`` (the tiled Numba-CUDA kernel): then the products go through that kernel, to
study and compare it. The default path pays one set lookup (``registry.ROUTED``) per call.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, broadcast_shape, unbroadcast
from ..backend import array_module
from ..kernels import reference, registry
from ..kernels.registry import ROUTED
from ..tensor import Tensor, lift
from ..threads import prepare_blas
from .elementwise import promote_pair

__all__ = ["matmul", "linear"]


def _chosen_kernel(*arrays):
    """The matmul kernels chosen by name for these arrays' device, or None for BLAS. Callers
    test ``"matmul" in ROUTED`` first, inline: the default path then costs one set lookup."""
    kernels = registry.kernels_for("matmul", array_module(*arrays))
    return None if kernels is reference else kernels


def _blas_threads_for(a, b) -> None:
    """Give NumPy's BLAS the threads this product's size earns (tinygrad_pt/threads.py); a GPU
    product is cuBLAS's business. The backward's two products have the forward's size."""
    if type(a) is np.ndarray:
        m = b.shape[-1] if b.ndim > 1 else 1
        # A batched product is one BLAS call per matrix, and BLAS parallelises each call: the
        # size that counts is one matrix's. (..., n, k) @ (k, m) folds into one call.
        rows = a.size if b.ndim <= 2 else (a.shape[-2] if a.ndim > 1 else 1) * a.shape[-1]
        prepare_blas(rows * m)


def _as_batches(a, b):
    """a, b as the kernels take them (matmul_fwd's equal batch axes): 1-D operands promoted as
    NumPy does, batch axes broadcast to one shape (views; the kernel copies what it needs)."""
    xp = array_module(a, b)
    a2 = a[None, :] if a.ndim == 1 else a  # (1, n)
    b2 = b[:, None] if b.ndim == 1 else b  # (n, 1)
    batch = broadcast_shape(a2.shape[:-2], b2.shape[:-2])
    a3, b3 = xp.broadcast_to(a2, batch + a2.shape[-2:]), xp.broadcast_to(b2, batch + b2.shape[-2:])
    return a2, b2, a3, b3


class MatMul(Function):
    """y = a @ b.

    For 2-D: da = dy @ b^T, db = a^T @ dy. 1-D operands are promoted as NumPy does (a vector on
    the left becomes a row (1, n), on the right a column (n, 1)) so that one rule serves every
    case; batch axes that were broadcast are summed back with unbroadcast.

    The common case in a network, activations (..., n, k) @ weight (k, m), folds the batch axes
    into rows: one 2-D product instead of NumPy's loop over the batch (about twice as fast), and
    db = a^T @ dy over all rows at once instead of a product per batch element and a sum.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        _blas_threads_for(a, b)
        self.kernels = _chosen_kernel(a, b) if "matmul" in ROUTED else None
        if self.kernels is not None:
            _, _, a3, b3 = _as_batches(a, b)
            y = self.kernels.matmul_fwd(a3, b3)  # (..., n, m); drop the axes 1-D operands got
            return y.reshape(a3.shape[:-2] + a.shape[-2:-1] + (b.shape[-1:] if b.ndim > 1 else ()))
        if a.ndim > 2 and b.ndim == 2:
            k, m = b.shape
            return (a.reshape(-1, k) @ b).reshape(a.shape[:-1] + (m,))  # (rows, m) -> (..., n, m)
        return a @ b

    def backward(self, grad):
        a, b = self.a, self.b
        _blas_threads_for(a, b)
        ga = gb = None
        if self.kernels is not None:
            a2, b2, a3, b3 = _as_batches(a, b)
            g = grad.reshape(a3.shape[:-1] + b3.shape[-1:])
            da, db = self.kernels.matmul_bwd(g, a3, b3)
            return (unbroadcast(da, a2.shape).reshape(a.shape) if self.needs_input_grad[0] else None,
                    unbroadcast(db, b2.shape).reshape(b.shape) if self.needs_input_grad[1] else None)
        if a.ndim >= 2 and b.ndim == 2:  # including plain 2-D @ 2-D
            g2 = grad.reshape(-1, b.shape[1])  # (rows, m)
            if self.needs_input_grad[0]:
                ga = (g2 @ b.T).reshape(a.shape)
            if self.needs_input_grad[1]:
                gb = a.reshape(-1, b.shape[0]).T @ g2  # (k, rows) @ (rows, m)
            return ga, gb
        a2 = a[None, :] if a.ndim == 1 else a  # (1, n)
        b2 = b[:, None] if b.ndim == 1 else b  # (n, 1)
        out_shape = broadcast_shape(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g = grad.reshape(out_shape)
        if self.needs_input_grad[0]:
            ga = unbroadcast(g @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb

    def graph_backward(self, grad, output):
        """backward's rule written with Tensor ops (the general N-D case serves every shape)."""
        a, b = self.inputs
        a2 = a.reshape(1, -1) if a.ndim == 1 else a  # (1, n)
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b  # (n, 1)
        out_shape = broadcast_shape(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g = grad.reshape(out_shape)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    """NumPy's matmul: (..., n, k) @ (..., k, m) -> (..., n, m), batch axes broadcast."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"matmul: expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    if not isinstance(a, Tensor):
        a = lift(a, b)
    if not isinstance(b, Tensor):
        b = lift(b, a)
    a, b = promote_pair(a, b)  # int @ float32 is float32, as int * float32
    sa, sb = a.shape, b.shape
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {sa} and {sb}")
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not align: the last axis of the first "
                         f"({k_a}) must equal the {'only' if len(sb) == 1 else 'second-to-last'} "
                         f"axis of the second ({k_b})")
    if (len(sa) > 2 or len(sb) > 2) and broadcast_shape(sa[:-2], sb[:-2]) is None:
        raise ValueError(f"matmul: batch axes {sa[:-2]} and {sb[:-2]} of shapes {sa} and {sb} "
                         "cannot be broadcast together")
    return MatMul.apply(a, b)


class Linear(Function):
    """y = x @ W^T + b, as one op: x (..., k), W (m, k), b (m,) or absent -> (..., m).

    The batch axes fold into rows, x2 (rows, k). Then
        y  = x2 @ W^T, and b added into y in place (no second (rows, m) array)
        dx = dy2 @ W,   dW = dy2^T @ x2,   db = sum over rows of dy2
    Against the composition matmul + transpose + add this saves, per layer and step, one
    (rows, m) temporary in the forward, the broadcast-sum bookkeeping of the add, and two graph
    nodes; dW comes out (m, k) like W, not as a transposed view.
    """

    def forward(self, x, w, *b):
        k, m = x.shape[-1], w.shape[0]
        self.x2, self.w, self.x_shape = x.reshape(-1, k), w, x.shape
        _blas_threads_for(self.x2, w.T)
        self.kernels = _chosen_kernel(x, w) if "matmul" in ROUTED else None
        y = self.x2 @ w.T if self.kernels is None else self.kernels.matmul_fwd(self.x2, w.T)
        if b:
            if np.result_type(y.dtype, b[0].dtype) == y.dtype:
                y += b[0]
            else:  # a wider bias promotes the output, as x @ W.T + b would
                y = y + b[0]
        return y.reshape(x.shape[:-1] + (m,))

    def backward(self, grad):
        g2 = grad.reshape(-1, self.w.shape[0])  # (rows, m)
        _blas_threads_for(self.x2, self.w.T)
        need = self.needs_input_grad
        if self.kernels is None:
            gx = (g2 @ self.w).reshape(self.x_shape) if need[0] else None
            gw = g2.T @ self.x2 if need[1] else None
        else:  # the same two products by the chosen kernel; dW stays (m, k) like W
            gx = self.kernels.matmul_fwd(g2, self.w).reshape(self.x_shape) if need[0] else None
            gw = self.kernels.matmul_fwd(g2.T, self.x2) if need[1] else None
        if len(need) == 2:
            return gx, gw
        gb = g2.sum(axis=0) if need[2] else None
        return gx, gw, gb

    def graph_backward(self, grad, output):
        x, w = self.inputs[0], self.inputs[1]
        g2 = grad.reshape(-1, w.shape[0])  # (rows, m)
        need = self.needs_input_grad
        gx = (g2 @ w).reshape(x.shape) if need[0] else None
        gw = g2.T @ x.reshape(-1, w.shape[1]) if need[1] else None
        if len(need) == 2:
            return gx, gw
        return gx, gw, (g2.sum(axis=0) if need[2] else None)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias for checked operands (nn.functional.linear checks them)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


TENSOR_METHODS = {"__matmul__": matmul, "__rmatmul__": lambda self, other: matmul(other, self),
                  "matmul": matmul}
