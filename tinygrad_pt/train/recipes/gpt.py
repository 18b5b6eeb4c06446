"""GPTRecipe ("gpt"): a byte-level GPT on the Python standard library's own source.

    tinygrad-pt train gpt     # ~4.5 min of CPU: val ~2.6 bits/byte vs unigram 4.6; samples.txt

One step: B random windows of block_size + 1 bytes from the train split (drawn by ``self.rng``),
next-byte cross-entropy, backward, gradient clipping to norm 1, AdamW (weight decay on matrices
only: ``GPT.configure_optimizers``) with a cosine learning rate after a linear warmup.

Evaluation reports the validation loss in nats and in bits per byte (nats / ln 2) over a fixed
set of validation windows, drawn once from a generator of their own (so evaluating never moves
the training stream), beside the unigram baseline: the bits per byte of a model that knows only
the byte frequencies of the train split. A model that learned anything about context beats it.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ...autograd import no_grad
from ...backend import xp_for
from ...creation import tensor
from ...data.text import ByteCorpus
from ...models.gpt import GPT
from ...nn import functional as F
from ...nn.utils import clip_grad_norm_
from ...optim.lr_scheduler import CosineWithWarmup
from ...errors import UserError
from ..recipe import (BOOL, COUNT, FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Check, Recipe,
                      _is_int, int_in)

__all__ = ["GPTRecipe"]

EVAL_SEED = 1234     # the validation windows: the same for every run, whatever its seed
SAMPLE_SEED = 4321   # the sampling generator of artifacts() and sample(): reproducible text
PROMPTS = (b"def ", b"import ", b"class ", b"    return ")
SAMPLES_NAME = "samples.txt"


class GPTRecipe(Recipe):
    name = "gpt"
    defaults = {
        # A step costs ~0.29 s of CPU (benchmarks/results/models_gpt.md), so 800 steps take about
        # 4 minutes on a quiet CPU and bring validation far under the unigram baseline.
        "steps": 800,
        "batch_size": 16,
        "eval_every": 100,
        "log_every": 10,
        # the model (GPTConfig): 0.8M parameters
        "block_size": 128,
        "n_layer": 4,
        "n_head": 4,
        "n_embd": 128,
        "dropout": 0.0,        # the corpus is far larger than what a short run sees: no overfitting
        "bias": True,
        # the optimizer and schedule
        "lr": 2e-3,            # peak; small models take large rates (nanoGPT's char model: 1e-3)
        "min_lr": 2e-4,        # the cosine ends at lr / 10, as nanoGPT
        "warmup_steps": 50,
        "weight_decay": 0.1,   # on matrices only
        "beta1": 0.9,
        "beta2": 0.95,         # GPT-2/3's: forgets old squared gradients faster than 0.999
        "grad_clip": 1.0,
        # data and evaluation
        "data_path": None,     # a file or folder of text; None: the standard library's .py files
        "max_bytes": 8_000_000,
        "eval_windows": 64,    # validation windows of block_size + 1 bytes
        # sampling
        "sample_tokens": 256,
        "temperature": 0.8,
        "top_k": 40,
    }

    checks = {
        **Recipe.checks,
        "block_size": POSITIVE_INT, "n_layer": POSITIVE_INT, "n_head": POSITIVE_INT,
        "n_embd": POSITIVE_INT, "dropout": FRACTION, "bias": BOOL,
        "lr": POSITIVE, "min_lr": NON_NEGATIVE, "warmup_steps": COUNT,
        "weight_decay": NON_NEGATIVE, "beta1": FRACTION, "beta2": FRACTION, "grad_clip": POSITIVE,
        "data_path": Check("a path to a text file or folder, or null (the standard library)",
                           lambda v: v is None or (isinstance(v, str) and v != "")),
        "max_bytes": int_in(2), "eval_windows": POSITIVE_INT,
        # Each sampled byte is one forward pass: 1e5 of them already take minutes.
        "sample_tokens": int_in(1, 100_000, "each byte is a forward pass"),
        "temperature": Check("a number >= 0 (finite; 0: greedy)", NON_NEGATIVE.ok),
        "top_k": Check(f"an integer in [1, {ByteCorpus.vocab_size}] or null (all bytes)",
                       lambda v: v is None or (_is_int(v) and 1 <= v <= ByteCorpus.vocab_size)),
    }
    size_keys = ("batch_size", "block_size", "n_layer", "n_head", "n_embd", "max_bytes",
                 "eval_windows")

    @classmethod
    def check_config(cls, c):
        if c["n_embd"] % c["n_head"]:
            cls.bad(c, "n_embd", f"a multiple of n_head={c['n_head']} (each head gets "
                    "n_embd // n_head features)")
        if c["min_lr"] > c["lr"]:
            cls.bad(c, "min_lr", f"at most lr={c['lr']!r} (the cosine decays from lr to min_lr)")

    @classmethod
    def state_sizes(cls, c):
        C, T, L, V = c["n_embd"], c["block_size"], c["n_layer"], ByteCorpus.vocab_size
        bias = C if c["bias"] else 0
        # wte, wpe and lm_head (tied to wte, but the state dict holds it under both names);
        # per block: c_attn 3C^2, c_proj C^2, c_fc and mlp c_proj 4C^2 each, two LayerNorms,
        # and 9C of Linear biases; then ln_f.
        block = 12 * C * C + 2 * C + 2 * bias + 9 * bias
        return {"model": 2 * V * C + T * C + L * block + C + bias}

    @classmethod
    def memory_bytes(cls, c):
        B, T, C, L, H = c["batch_size"], c["block_size"], c["n_embd"], c["n_layer"], c["n_head"]
        V = ByteCorpus.vocab_size
        # float32 forward values and their gradients: ~20 (B, T, C) arrays per block, the
        # (B, H, T, T) attention weights, and the (B, T, V) logits (evaluation runs in chunks
        # of batch_size windows, so no more rows than training).
        activations = 4 * 2 * B * T * (20 * C * L + H * T * L + 3 * V)
        data = 3 * c["max_bytes"] + 8 * c["eval_windows"] * (T + 1)
        return super().memory_bytes(c) + activations + data

    def build(self):
        c = self.config
        self.corpus = ByteCorpus(c["data_path"], seed=0, max_bytes=c["max_bytes"])
        for split in ("train", "val"):
            # A window is block_size + 1 bytes (inputs and next-byte targets).
            n = len(self.corpus.split(split))
            if n <= c["block_size"]:
                raise UserError(
                    f"gpt: the {split} split of {self.corpus.source!r} has {n} bytes, but "
                    f"block_size={c['block_size']} needs windows of {c['block_size'] + 1}; use "
                    f"more text (data_path, max_bytes={c['max_bytes']}) or a smaller block_size")
        model = GPT(vocab_size=ByteCorpus.vocab_size, block_size=c["block_size"],
                    n_layer=c["n_layer"], n_head=c["n_head"], n_embd=c["n_embd"],
                    dropout=c["dropout"], bias=c["bias"]).to(self.device)
        opt = model.configure_optimizers(weight_decay=c["weight_decay"], lr=c["lr"],
                                         betas=(c["beta1"], c["beta2"]), verbose=False)
        self.modules = {"model": model}
        self.optimizers = {"opt": opt}
        warmup = min(c["warmup_steps"], c["steps"])  # (so that a short run is still valid)
        self.schedulers = {"lr": CosineWithWarmup(opt, warmup_steps=warmup,
                                                  total_steps=c["steps"], min_lr=c["min_lr"])}
        # Fixed validation windows from their own generator: self.rng draws only training batches.
        eval_rng = np.random.default_rng(EVAL_SEED)
        self.eval_windows = self.corpus.batch("val", c["eval_windows"], c["block_size"], eval_rng)
        self.unigram_bpb = self.corpus.unigram_bits_per_byte("val")

    def draw_batch(self) -> tuple:
        """(windows,): `batch_size` random windows of block_size + 1 bytes, (B, T + 1) int64."""
        c = self.config
        return (self.corpus.batch("train", c["batch_size"], c["block_size"], self.rng),)

    def step_on(self, windows: np.ndarray) -> dict:
        c = self.config
        model, opt, sched = self.modules["model"], self.optimizers["opt"], self.schedulers["lr"]
        batch = tensor(windows, device=self.device)  # (B, T + 1) int64, one transfer
        x, y = batch[:, :-1], batch[:, 1:]           # inputs, next-byte targets: (B, T) each
        logits = model(x)                            # (B, T, 256)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        self.sync_gradients("opt")  # data parallel: clip the averaged gradient (a no-op alone)
        grad_norm = clip_grad_norm_(model.parameters(), c["grad_clip"])  # the norm before clipping
        lr = sched.get_last_lr()[0]  # the rate this step uses
        opt.step()
        sched.step()
        return {"loss": loss.detach(), "grad_norm": grad_norm, "lr": lr}

    def evaluate(self) -> dict:
        """val_loss (nats/byte) and val_bits_per_byte over the fixed windows; the unigram
        baseline (bits/byte) beside them."""
        model = self.modules["model"]
        model.eval()  # (the loop restores the mode afterwards)
        total, count = 0.0, 0
        chunk = max(1, self.config["batch_size"])
        with no_grad():
            for i in range(0, len(self.eval_windows), chunk):
                batch = tensor(self.eval_windows[i:i + chunk], device=self.device)
                logits = model(batch[:, :-1])
                total += F.cross_entropy(logits, batch[:, 1:], reduction="sum").item()
                count += batch.shape[0] * (batch.shape[1] - 1)
        val_loss = total / count
        return {"val_loss": val_loss, "val_bits_per_byte": val_loss / math.log(2),
                "unigram_bits_per_byte": self.unigram_bpb}

    # ------------------------------------------------------------------------------------------------
    # Text out

    def _write_samples(self, path: str, n: int) -> str:
        """n samples, the prompts taken in turn, each extended by sample_tokens bytes."""
        c = self.config
        model = self.modules["model"]
        gen = xp_for(self.device).random.default_rng(SAMPLE_SEED)
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
        texts = []
        for prompt in dict.fromkeys(prompts):  # one batched generate() per distinct prompt
            rows = prompts.count(prompt)
            idx = np.tile(ByteCorpus.encode(prompt.decode()), (rows, 1))
            out = model.generate(idx, c["sample_tokens"], temperature=c["temperature"],
                                 top_k=c["top_k"], generator=gen).numpy()
            texts += [(prompt, ByteCorpus.decode(row)) for row in out]
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# {n} samples of {c['sample_tokens']} bytes, temperature "
                    f"{c['temperature']}, top_k {c['top_k']}\n")
            for i, (prompt, text) in enumerate(texts):
                f.write(f"\n----- sample {i + 1}, prompt {prompt.decode()!r} -----\n{text}\n")
        return path

    def artifacts(self, out_dir: str) -> list:
        """samples.txt: one sample per prompt (the loss curves are drawn by the loop)."""
        os.makedirs(out_dir, exist_ok=True)
        return [self._write_samples(os.path.join(out_dir, SAMPLES_NAME), len(PROMPTS))]

    def sample(self, out_dir: str, n: int = 16) -> list:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"gpt.sample: n must be a positive integer, got {n!r}")
        os.makedirs(out_dir, exist_ok=True)
        return [self._write_samples(os.path.join(out_dir, SAMPLES_NAME), int(n))]

    def summary(self, metrics: dict) -> str:
        if "val_bits_per_byte" not in metrics:
            return super().summary(metrics)
        return (f"val {metrics['val_bits_per_byte']:.3f} bits/byte vs unigram "
                f"{metrics['unigram_bits_per_byte']:.3f} bits/byte")
