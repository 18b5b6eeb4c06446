"""GPT: a decoder-only transformer language model, in tinygrad_pt.

References (read them side by side with this file; the code here is written from scratch):
  1) GPT-2, Radford et al. 2019, "Language Models are Unsupervised Multitask Learners": pre-LN
     blocks, GELU MLP, learned position embeddings, the 1/sqrt(2 * n_layer) residual init.
  2) Karpathy's nanoGPT, model.py: the layout and the names (wte, wpe, h, ln_f, lm_head, c_attn,
     c_proj, c_fc), kept so that the two files compare line by line. nanoGPT nests the trunk in
     ``self.transformer``; here its modules sit directly on GPT (names read ``h.0.attn.c_attn``).

The model reads bytes by default (vocab_size=256), and ``GPT(idx)`` returns logits (B, T, vocab).
Everything is float32 unless ``.double()`` is called (gradient checks), and runs on "cpu" or
"cuda" after ``model.to(device)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..backend import array_module, is_cupy_array, rng, to_device
from ..creation import arange
from ..kernels import registry
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["GPTConfig", "GPT", "CausalSelfAttention", "MLP", "Block"]


@dataclass
class GPTConfig:
    block_size: int = 128    # the longest context the model sees (positions 0..block_size-1)
    vocab_size: int = 256    # byte-level: every byte is a token, so no tokenizer is needed
    n_layer: int = 4         # transformer blocks
    n_head: int = 4          # attention heads per block; n_embd must be a multiple of it
    n_embd: int = 128        # width of the residual stream
    dropout: float = 0.0     # 0 for pre-training on plenty of data; try 0.1+ when overfitting
    bias: bool = True        # biases in Linear layers and LayerNorms, as GPT-2

    def __post_init__(self):
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd={self.n_embd} must be divisible by "
                             f"n_head={self.n_head} (each head gets n_embd // n_head features)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout!r}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t sees positions 0..t only."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        # key, query and value projections for all heads, as one matrix
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        # output projection (a residual projection: see GPT._init_weights)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x):
        B, T, C = x.shape  # batch size, sequence length, embedding width (n_embd)
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).chunk(3, axis=2)  # 3 x (B, T, C)
        q = q.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
        k = k.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
        # softmax(q k^T / sqrt(hs), causal mask) v, in the attention kernels
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(0, 2, 1, 3).reshape(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: widen 4x, GELU (tanh approximation, as GPT-2), project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        x = F.gelu(self.c_fc(x), approximate="tanh")  # (B, T, 4C)
        return self.dropout(self.c_proj(x))           # (B, T, C)


class Block(nn.Module):
    """A pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    """``GPT(vocab_size, block_size, n_layer, n_head, n_embd, dropout=0.0, bias=True)``, or
    ``GPT(config=GPTConfig(...))`` / ``GPT.from_config(config)``; omitted values take GPTConfig's
    defaults.

    ``model(idx)``: integer token ids (B, T), T <= block_size, each in [0, vocab_size) ->
    logits (B, T, vocab_size), float32. ``model(idx, targets)`` returns ``(logits, loss)``, the
    mean cross-entropy in nats against targets (B, T), as nanoGPT's forward does.

    Init (GPT-2's): Linear and Embedding weights ~ N(0, 0.02^2); the residual projections
    (every ``c_proj``) ~ N(0, (0.02 / sqrt(2 * n_layer))^2), so that the residual stream's variance
    does not grow with depth (2 projections add into it per block); biases 0; LayerNorm gains 1.
    The output head shares the token embedding matrix (weight tying): ``lm_head.weight is
    wte.weight``, so ``parameters()`` yields it once and both uses add into one gradient.
    """

    def __init__(self, vocab_size=None, block_size=None, n_layer=None, n_head=None, n_embd=None,
                 dropout=None, bias=None, *, config: GPTConfig | None = None):
        super().__init__()
        given = {k: v for k, v in dict(vocab_size=vocab_size, block_size=block_size,
                                       n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                                       dropout=dropout, bias=bias).items() if v is not None}
        if config is not None:
            if not isinstance(config, GPTConfig):
                raise TypeError(f"GPT: config must be a GPTConfig, got {type(config).__name__}")
            if given:
                raise TypeError(f"GPT: give either config= or the hyperparameters, not both "
                                f"(got config and {sorted(given)})")
        else:
            config = GPTConfig(**given)
        self.config = config

        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embeddings
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying (Press & Wolf 2017): the same Parameter reads tokens in and scores them out.
        self.lm_head.weight = self.wte.weight

        self._init_weights()

    @classmethod
    def from_config(cls, config: GPTConfig) -> "GPT":
        return cls(config=config)

    def _init_weights(self):
        std = 0.02
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, residual_std)  # residual projections, scaled by depth
            elif p.ndim >= 2:
                nn.init.normal_(p, 0.0, std)  # Linear and Embedding weights (wte once: tied)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            # LayerNorm gains keep their 1

    def num_params(self, non_embedding: bool = True) -> int:
        """Trained numbers, the tied matrix counted once. With ``non_embedding`` (nanoGPT's
        default) the position embeddings are left out; the token embeddings stay in, since as the
        output head they are used as weights of the last layer."""
        n = sum(p.size for p in self.parameters())
        return n - self.wpe.weight.size if non_embedding else n

    def _check_idx(self, idx, any_length: bool = False):
        """idx as an integer Tensor (B, T) on the model's device, with clear errors; T must be
        at most block_size unless `any_length` (generate crops the context itself)."""
        device = self.wte.weight.device
        if not isinstance(idx, Tensor):
            arr = np.asarray(idx) if not is_cupy_array(idx) else idx
            idx = Tensor._make(to_device(arr, device))
        if idx.dtype.kind not in "iu":
            raise TypeError(f"GPT: idx must hold integer token ids, got dtype {idx.dtype}")
        if idx.ndim != 2:
            raise ValueError(f"GPT: idx must have shape (batch, time), got shape {idx.shape}")
        T = idx.shape[1]
        if T > self.config.block_size and not any_length:
            raise ValueError(f"GPT: cannot forward a sequence of length {T}: block_size is "
                             f"{self.config.block_size} (crop the context to the last "
                             f"{self.config.block_size} tokens)")
        return idx  # (the ids' range is checked by the embedding lookup, in _trunk)

    def _trunk(self, idx):
        """The residual stream after the final LayerNorm: idx (B, T) -> (B, T, n_embd)."""
        T = idx.shape[1]
        pos = arange(T, dtype=np.int64, device=idx.device)  # (T,)
        try:
            tok_emb = self.wte(idx)  # (B, T, C); the lookup checks the ids' range
        except IndexError as e:
            V = self.config.vocab_size
            raise IndexError(f"GPT: token ids must be in 0..{V - 1} (vocab_size {V}); "
                             f"{e}") from None
        pos_emb = self.wpe(pos)  # (T, C), broadcast over the batch
        x = self.drop(tok_emb + pos_emb)
        for block in self.h:
            x = block(x)
        return self.ln_f(x)

    def forward(self, idx, targets=None):
        idx = self._check_idx(idx)
        logits = self.lm_head(self._trunk(idx))  # (B, T, vocab_size)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits, targets)  # class axis last: (B, T, V) against (B, T)
        return logits, loss

    # ------------------------------------------------------------------------------------------------
    # Training set-up

    def configure_optimizers(self, weight_decay: float = 0.1, lr: float = 1e-3,
                             betas=(0.9, 0.95), eps: float = 1e-8, verbose: bool = True):
        """AdamW over two groups: matrices (ndim >= 2: embeddings and Linear weights) decay by
        `weight_decay`; vectors (biases, LayerNorm gains and shifts) do not, since shrinking them
        toward 0 only fights the normalisation. Prints both groups' sizes when `verbose`; they
        are also ``self.decay_counts`` = {"decay": (tensors, numbers), "no_decay": (...)}.
        """
        decay = [p for p in self.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.parameters() if p.ndim < 2]
        self.decay_counts = {"decay": (len(decay), sum(p.size for p in decay)),
                             "no_decay": (len(no_decay), sum(p.size for p in no_decay))}
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        opt = optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
        if verbose:
            (nd, sd), (nn_, sn) = self.decay_counts["decay"], self.decay_counts["no_decay"]
            which = registry.which("adamw", self.wte.weight.device)
            print(f"GPT.configure_optimizers: {nd} decayed tensors ({sd:,} numbers), {nn_} "
                  f"non-decayed tensors ({sn:,} numbers); AdamW kernel: {which}")
        return opt

    # ------------------------------------------------------------------------------------------------
    # Sampling

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k=None,
                 generator=None) -> Tensor:
        """Extend idx (B, T) by `max_new_tokens` sampled tokens: (B, T + max_new_tokens), int64.

        Each step feeds the last block_size tokens, divides the last position's logits by
        `temperature` (0 means greedy: argmax), keeps only the `top_k` largest (if given), and
        draws from the softmax. Draws come from ``generator`` if given (a numpy/cupy Generator),
        else from the device's seeded generator ``tg.backend.rng(device)`` (``tg.manual_seed``).
        Runs under no_grad in eval mode (dropout off); the previous mode is restored.
        """
        if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
            raise ValueError(f"GPT.generate: max_new_tokens must be an integer >= 0, got "
                             f"{max_new_tokens!r}")
        if not temperature >= 0:
            raise ValueError(f"GPT.generate: temperature must be >= 0 (0 = greedy), got "
                             f"{temperature!r}")
        if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"GPT.generate: top_k must be a positive integer or None, got "
                             f"{top_k!r}")
        idx = self._check_idx(idx, any_length=True)
        if idx.shape[1] == 0:
            raise ValueError("GPT.generate: idx needs at least one token of context per row, got "
                             f"shape {idx.shape}")
        out = idx.data.astype(np.int64)
        xp = array_module(out)
        gen = rng(idx.device) if generator is None else generator
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for _ in range(int(max_new_tokens)):
                    context = out[:, -self.config.block_size:]  # crop to the last block_size
                    h = self._trunk(Tensor._make(context))
                    # Only the last position is sampled from: project it alone.
                    logits = self.lm_head(h[:, -1, :]).data  # (B, V)
                    out = xp.concatenate([out, _sample(logits, temperature, top_k, gen)], axis=1)
        finally:
            self.train(was_training)
        return Tensor._make(out)


def _sample(logits, temperature: float, top_k, gen):
    """One token per row of logits (B, V) -> (B, 1) int64 (raw arrays, no graph)."""
    xp = array_module(logits)
    if temperature == 0:
        return logits.argmax(axis=-1).astype(np.int64)[:, None]
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = xp.sort(logits, axis=-1)[:, -top_k][:, None]  # the k-th largest of each row
        logits = xp.where(logits < kth, -xp.inf, logits)
    p = xp.exp(logits - logits.max(axis=-1, keepdims=True))  # masked entries: exp(-inf) = 0
    cdf = xp.cumsum(p.astype(np.float64), axis=-1)  # (B, V), unnormalised
    u = gen.random((logits.shape[0], 1)) * cdf[:, -1:]  # uniform in [0, total)
    # The first index whose cdf exceeds u; entries of probability 0 can never be it.
    picked = (cdf <= u).sum(axis=-1)
    return xp.minimum(picked, logits.shape[-1] - 1).astype(np.int64)[:, None]

