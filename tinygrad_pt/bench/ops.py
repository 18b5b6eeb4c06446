"""Per-op benchmark cases: forward + backward through the Tensor API, as a training step runs them.

Each case builds its inputs once and returns a zero-argument callable doing one forward and one
backward (AdamW: one optimizer step). Three implementations are timed per case:

    tinygrad_pt   the default kernels (the registry's fastest measured one per family)
    reference     tinygrad_pt with ``set_kernels("reference")``: the NumPy (or CuPy) reference
                  kernels of kernels/reference.py, i.e. what plain array code achieves
    torch         PyTorch eager, the same op and sizes (bench/torch_ops.py, in its own process)

``copy`` (a plain device-to-device array copy) is the yardstick: a memory-bound op's bandwidth
is also reported as a share of the copy's. ``work`` counts what one call moves or computes, so a time becomes a rate: FLOP for matmul and
attention (the forward's 2*M*N*K per product; backward twice that), bytes for the memory-bound
families (every array read or written once by an ideal fused kernel, float32).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OpCase", "op_cases", "tg_op", "fresh_grads"]


@dataclass
class OpCase:
    name: str
    shape: str        # the sizes, as a user reads them
    work: float       # FLOP or bytes per call (forward + backward)
    unit: str         # "FLOP" or "B"
    params: dict      # what tg_op / torch_op need to build the call


def op_cases(device: str) -> list:
    """The cases at sizes that suit the device: a few milliseconds each on a 2-core CPU; on a GPU
    the sizes of the GPU issue's targets (GPT-2 small's rows, B=8 H=12 T=1024 D=64 attention)."""
    gpu = device == "cuda"
    m, k, n = (4096, 4096, 4096) if gpu else (512, 512, 512)
    rows, cols = (16384, 4096) if gpu else (2048, 1024)
    ce_rows, vocab = (8192, 50304) if gpu else (2048, 256)
    ln_rows, width = (16384, 768) if gpu else (2048, 768)
    b, h, t, d = (8, 12, 1024, 64) if gpu else (4, 4, 256, 32)
    n_params = 2 ** 24 if gpu else 2 ** 20
    # The CPU bench's GPT (bench/steps.py: 4 layers, width 128, B=16, T=128) at its own shapes:
    # its layer norms' rows and its MLP's hidden activations, the sizes the issue's "no slower
    # than PyTorch's at the GPT's shapes" is about (small enough that starting threads matters)
    gpt_rows, gpt_width = 16 * 128, 128
    n_copy = 2 ** 28 if gpu else 2 ** 24
    f4 = 4  # bytes per float32
    return [
        # the yardstick of the memory-bound rows: a copy into an existing array (read once, write
        # once; a fresh output would add its page faults, which the fused ops amortise)
        OpCase("copy", f"{n_copy:,} floats" + (", device to device" if gpu else ", copyto"),
               2.0 * n_copy * f4, "B", dict(n=n_copy)),
        OpCase("matmul", f"{m}x{k} @ {k}x{n}", 3 * 2.0 * m * n * k, "FLOP",
               dict(m=m, k=k, n=n)),
        # softmax: fwd reads x, writes y; bwd reads y and dy, writes dx
        OpCase("softmax", f"{rows}x{cols}, last axis", 5.0 * rows * cols * f4, "B",
               dict(rows=rows, cols=cols)),
        # cross-entropy: fwd reads the logits; bwd reads them again and writes dlogits
        OpCase("cross_entropy", f"{ce_rows} rows x {vocab} classes", 3.0 * ce_rows * vocab * f4,
               "B", dict(rows=ce_rows, vocab=vocab)),
        # layer norm: fwd reads x, writes y; bwd reads x and dy, writes dx
        OpCase("layer_norm", f"{ln_rows}x{width}", 5.0 * ln_rows * width * f4, "B",
               dict(rows=ln_rows, width=width)),
        OpCase("gpt_layer_norm", f"{gpt_rows}x{gpt_width} (the bench GPT's)",
               5.0 * gpt_rows * gpt_width * f4, "B", dict(rows=gpt_rows, width=gpt_width)),
        # GELU: fwd reads x, writes y; bwd reads x and dy, writes dx. tanh: the GPT's; "none":
        # the exact (erf) form, nn.GELU()'s default
        OpCase("gpt_gelu_tanh", f"{gpt_rows}x{4 * gpt_width} (the bench GPT's MLP)",
               5.0 * gpt_rows * 4 * gpt_width * f4, "B",
               dict(rows=gpt_rows, cols=4 * gpt_width, approximate="tanh")),
        OpCase("gelu", f"{gpt_rows}x{4 * gpt_width}, exact (erf)",
               5.0 * gpt_rows * 4 * gpt_width * f4, "B",
               dict(rows=gpt_rows, cols=4 * gpt_width, approximate="none")),
        # causal attention: q k^T and P v, each 2*T*T*D per head halved by the mask; bwd 2.5x
        OpCase("attention", f"B={b} H={h} T={t} D={d}, causal",
               3.5 * 2 * 2.0 * b * h * t * t * d / 2, "FLOP", dict(b=b, h=h, t=t, d=d)),
        # AdamW: reads param, grad, m, v; writes param, m, v
        OpCase("adamw", f"{n_params:,} params, one step", 7.0 * n_params * f4, "B",
               dict(n=n_params)),
    ]


def fresh_grads(call, *leaves):
    """`call`, then the leaves' gradients dropped: every timed backward writes fresh gradients
    instead of adding into the previous call's (both frameworks alike)."""
    def run():
        call()
        for t in leaves:
            t.grad = None
    return run


def tg_op(case: OpCase, device: str, seed: int = 0):
    """The tinygrad_pt call for `case` on `device`: one forward + backward (AdamW: one step)."""
    from .. import Tensor, nn, optim
    from ..backend import array_module
    from ..creation import tensor
    from ..nn import functional as F

    rng = np.random.default_rng(seed)

    def leaf(*shape, scale=1.0):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        return tensor(a, device=device, requires_grad=True)

    def seeded(*shape):
        return tensor(rng.standard_normal(shape).astype(np.float32), device=device)

    p = case.params
    if case.name == "copy":  # into an existing array: bandwidth, not page faults of a new one
        data = seeded(p["n"]).data
        out = data.copy()
        xp = array_module(data)
        return lambda: xp.copyto(out, data)
    if case.name == "matmul":
        a, b = leaf(p["m"], p["k"]), leaf(p["k"], p["n"])
        g = seeded(p["m"], p["n"])
        return fresh_grads(lambda: (a @ b).backward(g), a, b)
    if case.name == "softmax":
        x, g = leaf(p["rows"], p["cols"]), seeded(p["rows"], p["cols"])
        return fresh_grads(lambda: F.softmax(x, dim=-1).backward(g), x)
    if case.name == "cross_entropy":
        logits = leaf(p["rows"], p["vocab"])
        target = tensor(rng.integers(0, p["vocab"], p["rows"]), device=device)
        return fresh_grads(lambda: F.cross_entropy(logits, target).backward(), logits)
    if case.name in ("layer_norm", "gpt_layer_norm"):
        ln = nn.LayerNorm(p["width"]).to(device)
        x, g = leaf(p["rows"], p["width"]), seeded(p["rows"], p["width"])
        return fresh_grads(lambda: ln(x).backward(g), x, *ln.parameters())
    if case.name in ("gpt_gelu_tanh", "gelu"):
        x, g = leaf(p["rows"], p["cols"]), seeded(p["rows"], p["cols"])
        return fresh_grads(lambda: F.gelu(x, approximate=p["approximate"]).backward(g), x)
    if case.name == "attention":
        shape = (p["b"], p["h"], p["t"], p["d"])
        q, k, v, g = leaf(*shape), leaf(*shape), leaf(*shape), seeded(*shape)
        return fresh_grads(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
                           .backward(g), q, k, v)
    if case.name == "adamw":
        w = leaf(p["n"], scale=0.02)
        w.grad = Tensor._make(seeded(p["n"]).data)
        opt = optim.AdamW([w], lr=1e-3, weight_decay=0.1)
        return opt.step
    raise ValueError(f"bench ops: unknown case {case.name!r}")
