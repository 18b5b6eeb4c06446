"""The per-op cases of bench/ops.py in PyTorch eager (optional; imported only for the comparison).

The same sizes, dtype (float32), inputs drawn alike, and the same work per call: one forward and
one backward (AdamW: one optimizer step, torch's default foreach implementation).
"""
from __future__ import annotations

import numpy as np

from .ops import fresh_grads

__all__ = ["torch_op"]


def torch_op(case, device: str, seed: int = 0):
    import torch
    from torch.nn import functional as F

    dev = "cuda" if device == "cuda" else "cpu"
    rng = np.random.default_rng(seed)

    def leaf(*shape, scale=1.0):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        return torch.from_numpy(a).to(dev).requires_grad_(True)

    def seeded(*shape):
        return torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(dev)

    p = case.params
    if case.name == "copy":
        data = seeded(p["n"])
        out = data.clone()
        return lambda: out.copy_(data)
    if case.name == "matmul":
        a, b = leaf(p["m"], p["k"]), leaf(p["k"], p["n"])
        g = seeded(p["m"], p["n"])
        return fresh_grads(lambda: (a @ b).backward(g), a, b)
    if case.name == "softmax":
        x, g = leaf(p["rows"], p["cols"]), seeded(p["rows"], p["cols"])
        return fresh_grads(lambda: torch.softmax(x, dim=-1).backward(g), x)
    if case.name == "cross_entropy":
        logits = leaf(p["rows"], p["vocab"])
        target = torch.from_numpy(rng.integers(0, p["vocab"], p["rows"])).to(dev)
        return fresh_grads(lambda: F.cross_entropy(logits, target).backward(), logits)
    if case.name in ("layer_norm", "gpt_layer_norm"):
        ln = torch.nn.LayerNorm(p["width"]).to(dev)
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
        w.grad = seeded(p["n"])
        opt = torch.optim.AdamW([w], lr=1e-3, weight_decay=0.1)
        return opt.step
    raise ValueError(f"bench ops: unknown case {case.name!r}")
