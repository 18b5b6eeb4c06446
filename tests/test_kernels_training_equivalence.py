"""The fast kernels and the reference train the same model to the same loss curve.

A small GPT (attention, layer norm, GELU, cross-entropy, AdamW: every registered CPU family) is
trained a few steps twice from the same seed, once with tg.set_kernels("reference") and once
with the fast kernels; the losses must agree to float32 tolerance at every step.
"""
import numpy as np
import pytest

import tinygrad_pt as tg
import tinygrad_pt.nn.functional as F
from tinygrad_pt.kernels import registry
from tinygrad_pt.models import GPT


@pytest.fixture(autouse=True)
def _restore_kernel_settings():
    saved = registry.kernel_settings()
    yield
    tg.set_kernels(**saved)


def loss_curve(setting, steps=6):
    tg.set_kernels(setting)
    tg.manual_seed(0)
    model = GPT(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
    opt = tg.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    batch = np.random.default_rng(0).integers(0, 64, (4, 17))  # one batch: the loss must fall
    losses = []
    for _ in range(steps):
        logits = model(tg.tensor(batch[:, :-1]))
        loss = F.cross_entropy(logits, tg.tensor(batch[:, 1:]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def test_fast_kernels_are_in_use_on_cpu():
    tg.set_kernels("fast")
    for family in ("softmax", "cross_entropy", "layer_norm", "gelu", "attention", "adamw"):
        assert registry.which(family, "cpu") == "numba", family


def test_reference_and_fast_kernels_give_the_same_loss_curve():
    reference = loss_curve("reference")
    fast = loss_curve("fast")
    assert reference[-1] < reference[0]  # it learns, so the comparison covers real updates
    np.testing.assert_allclose(fast, reference, rtol=1e-4, atol=1e-5,
                               err_msg="fast kernels diverge from the reference while training")
