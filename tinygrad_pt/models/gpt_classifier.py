"""A byte-level GPT turned into a sequence classifier, for fine-tuning a pre-trained LM.

    clf = GPTClassifier(gpt, n_classes=5)     # shares gpt's parameters (nothing copied)
    logits = clf(idx)                         # idx (B, T) byte ids -> (B, n_classes)

The GPT's residual stream after its final LayerNorm (B, T, n_embd) is averaged over the T
positions (a causal model's last position alone has seen the whole snippet, but every position's
state carries something; the mean is the steadier summary in short fine-tunings) and a linear
head maps it to class logits. The head starts at zero: its first gradients then depend on the
features only, the same for a pre-trained and a freshly initialised GPT. The language-model head
stays (tied to the token embedding), so the fine-tuned model can still generate text.
"""
from __future__ import annotations

from .. import nn
from ..nn import init
from ..tensor import Tensor
from .gpt import GPT

__all__ = ["GPTClassifier"]


class GPTClassifier(nn.Module):
    """GPTClassifier(gpt, n_classes): mean-pooled final hidden states -> Linear -> logits."""

    def __init__(self, gpt: GPT, n_classes: int):
        super().__init__()
        if not isinstance(gpt, GPT):
            raise TypeError(f"GPTClassifier: expected a GPT, got {type(gpt).__name__}")
        self.gpt = gpt
        self.head = nn.Linear(gpt.config.n_embd, n_classes)
        init.zeros_(self.head.weight)
        init.zeros_(self.head.bias)

    def features(self, idx: Tensor) -> Tensor:
        """(B, T) byte ids -> (B, n_embd): the mean over positions of the final hidden states."""
        return self.gpt._trunk(idx).mean(axis=1)

    def forward(self, idx: Tensor) -> Tensor:
        return self.head(self.features(idx))  # (B, n_classes)
