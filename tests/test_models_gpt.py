"""GPT (tinygrad_pt/models/gpt.py) and its recipe: shapes, causality, weight tying, decay groups,
gradients (gradcheck, and a plain PyTorch implementation as oracle), sampling, errors.

Everything here is fast (tiny models); the quality bar is tests/test_quality_gpt.py (slow).
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
import tinygrad_pt.nn.functional as F
from tinygrad_pt.models.gpt import GPT, GPTConfig


def tiny(**kw):
    """A GPT small enough for per-test speed: 2 layers, 2 heads, width 16, 13 tokens."""
    cfg = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return GPT(**cfg)


def ids(shape, vocab=13, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, size=shape)


# ----------------------------------------------------------------------------------------------------
# Construction and the forward contract

def test_logits_shape_and_dtype():
    model = tiny()
    logits = model(tg.tensor(ids((3, 5))))
    assert logits.shape == (3, 5, 13)
    assert logits.dtype == np.float32
    # nanoGPT's form: with targets, (logits, mean cross-entropy)
    y = ids((3, 5), seed=1)
    logits2, loss = model(ids((3, 5)), tg.tensor(y))
    np.testing.assert_array_equal(logits2.numpy(), logits.numpy())
    expected = F.cross_entropy(logits, tg.tensor(y)).item()
    assert loss.shape == () and loss.item() == pytest.approx(expected, rel=1e-6)


def test_initial_loss_is_near_uniform():
    # std-0.02 init gives nearly uniform predictions: loss ~ ln(vocab)
    model = GPT(vocab_size=256, block_size=16, n_layer=2, n_head=2, n_embd=32)
    _, loss = model(ids((4, 16), 256), tg.tensor(ids((4, 16), 256, seed=1)))
    assert abs(loss.item() - math.log(256)) < 0.05


def test_config_forms_agree():
    cfg = GPTConfig(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=16)
    tg.manual_seed(0)
    a = GPT(config=cfg)
    tg.manual_seed(0)
    b = GPT.from_config(cfg)
    tg.manual_seed(0)
    c = GPT(13, 8, 2, 2, 16)  # DESIGN.md's positional order
    for (na, pa), (nb, pb), (nc, pc) in zip(a.named_parameters(), b.named_parameters(),
                                            c.named_parameters()):
        assert na == nb == nc
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
        np.testing.assert_array_equal(pa.numpy(), pc.numpy())
    assert a.config == cfg and c.config == cfg


def test_names_follow_nanogpt():
    names = {n for n, _ in tiny(n_layer=1).named_parameters()}
    assert names == {
        "wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias",
        "h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.ln_2.weight", "h.0.ln_2.bias",
        "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
        "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias",
        "h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias", "h.0.mlp.c_proj.weight", "h.0.mlp.c_proj.bias",
    }  # lm_head.weight is wte.weight: listed once, under its first name


def test_bias_false_has_no_biases():
    model = tiny(bias=False)
    assert not any(n.endswith("bias") for n, _ in model.named_parameters())
    assert model(ids((1, 4))).shape == (1, 4, 13)


def test_init_statistics():
    n_layer = 3
    model = GPT(vocab_size=64, block_size=32, n_layer=n_layer, n_head=2, n_embd=64)
    residual = 0.02 / math.sqrt(2 * n_layer)
    for name, p in model.named_parameters():
        x = p.numpy()
        if name.endswith("c_proj.weight"):
            assert abs(x.std() / residual - 1) < 0.1, name
        elif p.ndim == 2:
            assert abs(x.std() / 0.02 - 1) < 0.1, name
        elif name.endswith("bias"):
            assert np.all(x == 0), name
        else:  # LayerNorm gains
            assert np.all(x == 1), name


@given(t=st.integers(0, 6), seed=st.integers(0, 10))
def test_causality(t, seed):
    """Changing the tokens after position t leaves the logits at positions <= t unchanged, and
    changes the logits at t + 1."""
    model = tiny()
    x = ids((2, 8), seed=seed)
    x2 = x.copy()
    x2[:, t + 1:] = (x2[:, t + 1:] + 1 + np.arange(7 - t)) % 13
    a, b = model(x).numpy(), model(x2).numpy()
    np.testing.assert_allclose(a[:, :t + 1], b[:, :t + 1], rtol=0, atol=1e-6)
    assert np.abs(a[:, t + 1] - b[:, t + 1]).max() > 1e-4


def test_position_matters():
    # the same token at two positions gets different logits (position embeddings are used)
    logits = tiny()(np.full((1, 4), 3)).numpy()
    assert np.abs(logits[0, 0] - logits[0, 3]).max() > 1e-4


# ----------------------------------------------------------------------------------------------------
# Weight tying

def test_weight_tying_is_one_parameter():
    model = tiny()
    assert model.lm_head.weight is model.wte.weight
    params = list(model.parameters())
    assert len({id(p) for p in params}) == len(params)
    assert sum(p is model.wte.weight for p in params) == 1
    # num_params counts it once; non_embedding leaves out only the position table
    total = sum(p.size for p in params)
    assert model.num_params(non_embedding=False) == total
    assert model.num_params() == total - model.wpe.weight.size
    assert model.num_parameters() == total


def test_tied_gradient_is_the_sum_of_both_uses():
    """The tied matrix's gradient equals, in an untied copy, the embedding's gradient plus the
    output head's."""
    tied = tiny()
    untied = tiny()
    untied.load_state_dict(tied.state_dict())
    untied.lm_head.weight = nn.Parameter(tied.wte.weight.numpy())  # a separate copy
    assert untied.lm_head.weight is not untied.wte.weight
    x, y = ids((2, 6)), tg.tensor(ids((2, 6), seed=1))
    for m in (tied, untied):
        m(x, y)[1].backward()
    g_in, g_out = untied.wte.weight.grad.numpy(), untied.lm_head.weight.grad.numpy()
    assert np.abs(g_in).max() > 0 and np.abs(g_out).max() > 0
    np.testing.assert_allclose(tied.wte.weight.grad.numpy(), g_in + g_out, rtol=1e-5, atol=1e-7)


def test_tying_survives_state_dict_round_trip():
    a, b = tiny(), tiny()
    b.load_state_dict(a.state_dict())
    assert b.lm_head.weight is b.wte.weight
    np.testing.assert_array_equal(a(ids((1, 5))).numpy(), b(ids((1, 5))).numpy())


# ----------------------------------------------------------------------------------------------------
# Optimizer groups

def test_configure_optimizers_decays_matrices_only(capsys):
    model = tiny()
    opt = model.configure_optimizers(weight_decay=0.1, lr=3e-4, betas=(0.9, 0.95))
    assert isinstance(opt, tg.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"])
    assert all(p.ndim < 2 for p in no_decay["params"])
    named = dict(model.named_parameters())
    ids_decay = {id(p) for p in decay["params"]}
    want_decay = {n for n in named if n.endswith("weight") and named[n].ndim == 2}
    assert {n for n, p in named.items() if id(p) in ids_decay} == want_decay
    assert len(want_decay) == 2 + 4 * 2  # wte (tied, once), wpe; 4 matrices per block
    # every parameter in exactly one group, the tied one once
    everything = decay["params"] + no_decay["params"]
    assert len(everything) == len(named) == len({id(p) for p in everything})
    assert opt.param_groups[0]["lr"] == 3e-4 and opt.param_groups[0]["betas"] == (0.9, 0.95)
    # the sizes are printed and kept
    n_decay = sum(p.size for p in decay["params"])
    n_no = sum(p.size for p in no_decay["params"])
    assert model.decay_counts == {"decay": (10, n_decay),
                                  "no_decay": (len(no_decay["params"]), n_no)}
    out = capsys.readouterr().out
    assert f"{n_decay:,}" in out and f"{n_no:,}" in out


def test_weight_decay_leaves_vectors_alone():
    # With zero gradients, AdamW changes only the decayed matrices (p *= 1 - lr * wd).
    model = tiny()
    opt = model.configure_optimizers(weight_decay=0.5, lr=0.1, verbose=False)
    before = {n: p.numpy() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = tg.zeros(*p.shape)
    opt.step()
    for n, p in model.named_parameters():
        if p.ndim >= 2:
            np.testing.assert_allclose(p.numpy(), before[n] * (1 - 0.1 * 0.5), rtol=1e-6)
        else:
            np.testing.assert_array_equal(p.numpy(), before[n])


# ----------------------------------------------------------------------------------------------------
# Gradients

def test_gradients_reach_every_parameter():
    model = tiny()
    model(ids((2, 8)), tg.tensor(ids((2, 8), seed=1)))[1].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        g = p.grad.numpy()
        assert g.dtype == np.float32 and g.shape == p.shape, name
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0, name


def _swap_parameters(model, tensors):
    """Put `tensors` (name -> Tensor) in place of the model's parameters, in every module that
    holds them (a tied parameter is replaced in both places); returns an undo function."""
    named = dict(model.named_parameters())
    undo = []
    for name, t in tensors.items():
        old = named[name]
        for mod in model.modules():
            for key, p in list(mod._parameters.items()):
                if p is old:
                    mod._parameters[key] = t
                    undo.append((mod, key, p))

    def restore():
        for mod, key, p in undo:
            mod._parameters[key] = p
    return restore


def test_gradcheck_tiny_gpt():
    """d loss / d every parameter of a 1-layer GPT (width 8, T = 4), in float64, along random
    directions."""
    model = GPT(vocab_size=7, block_size=4, n_layer=1, n_head=2, n_embd=8).double()
    # lift the biases and gains off their init values so that every path is exercised
    for name, p in model.named_parameters():
        p.data += np.random.default_rng(1).normal(0, 0.1 if p.ndim == 1 else 0.05, p.shape)
    names = [n for n, _ in model.named_parameters()]
    x = ids((2, 4), 7)
    y = tg.tensor(ids((2, 4), 7, seed=1))

    def loss_of(*params):
        restore = _swap_parameters(model, dict(zip(names, params)))
        try:
            return model(x, y)[1]
        finally:
            restore()

    params = [tg.tensor(p.numpy(), requires_grad=True) for _, p in model.named_parameters()]
    loss_of(*params).backward()  # the swap really routes every parameter (not a vacuous check)
    assert all(np.abs(p.grad.numpy()).max() > 0 for p in params)
    assert all(p.grad is None for p in model.parameters())
    assert tg.testing.gradcheck(loss_of, *params, per_element=False)


def test_a_few_steps_reduce_the_loss():
    tg.manual_seed(0)
    model = tiny()
    opt = model.configure_optimizers(weight_decay=0.1, lr=1e-2, verbose=False)
    x, y = ids((4, 8)), tg.tensor(ids((4, 8), seed=1))
    losses = []
    for _ in range(30):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]  # memorising one batch


# ----------------------------------------------------------------------------------------------------
# PyTorch as the oracle: the same architecture written plainly in torch, float64

def _torch_gpt(P, idx, n_layer, n_head):
    """A plain PyTorch GPT over a dict of weights P (written independently of tinygrad_pt:
    explicit mask, softmax and tanh-GELU formula)."""
    import torch
    T = idx.shape[1]
    x = P["wte.weight"][idx] + P["wpe.weight"][:T]
    C = x.shape[-1]
    hs = C // n_head
    mask = torch.ones(T, T, dtype=torch.bool).tril()

    def ln(z, name):
        mu = z.mean(-1, keepdim=True)
        var = ((z - mu) ** 2).mean(-1, keepdim=True)
        return (z - mu) / torch.sqrt(var + 1e-5) * P[name + ".weight"] + P[name + ".bias"]

    def lin(z, name):
        return z @ P[name + ".weight"].T + P[name + ".bias"]

    for i in range(n_layer):
        h = f"h.{i}."
        qkv = lin(ln(x, h + "ln_1"), h + "attn.c_attn")
        q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
        heads = lambda z: z.view(z.shape[0], T, n_head, hs).transpose(1, 2)  # noqa: E731
        q, k, v = heads(q), heads(k), heads(v)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(x.shape)
        x = x + lin(y, h + "attn.c_proj")
        u = lin(ln(x, h + "ln_2"), h + "mlp.c_fc")
        u = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))
        x = x + lin(u, h + "mlp.c_proj")
    return ln(x, "ln_f") @ P["wte.weight"].T  # tied head


def test_matches_plain_pytorch_logits_and_gradients():
    torch = pytest.importorskip("torch")
    model = GPT(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8).double()
    for name, p in model.named_parameters():
        p.data += np.random.default_rng(2).normal(0, 0.05, p.shape)
    x, y = ids((3, 6), 11), ids((3, 6), 11, seed=1)
    logits, loss = model(x, tg.tensor(y))
    loss.backward()

    P = {n: torch.tensor(p.numpy(), requires_grad=True) for n, p in model.named_parameters()}
    t_logits = _torch_gpt(P, torch.tensor(x), n_layer=2, n_head=2)
    t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, 11),
                                               torch.tensor(y).reshape(-1))
    t_loss.backward()

    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-12)
    worst = {n: float(np.abs(p.grad.numpy() - P[n].grad.numpy()).max())
             for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), P[n].grad.numpy(), rtol=1e-8, atol=1e-12,
                                   err_msg=f"{n}: largest differences per tensor {worst}")


# ----------------------------------------------------------------------------------------------------
# Sampling

def _last_logits(model, idx):
    with tg.no_grad():
        return model(idx[:, -model.config.block_size:]).numpy()[:, -1]


def test_generate_shape_prompt_and_cropping():
    model = tiny()  # block_size 8
    prompt = ids((2, 11))  # longer than block_size: generate crops the context itself
    out = model.generate(prompt, 5, temperature=0).numpy()
    assert out.shape == (2, 16) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:, :11], prompt)
    # greedy: every new token is the argmax given the last block_size tokens before it
    for t in range(11, 16):
        np.testing.assert_array_equal(out[:, t], _last_logits(model, out[:, :t]).argmax(-1))
    # only the last block_size tokens matter
    np.testing.assert_array_equal(model.generate(prompt[:, -8:], 5, temperature=0).numpy()[:, 8:],
                                  out[:, 11:])


def test_generate_respects_top_k():
    """A peaked, flattened distribution: at temperature 10 every token would appear among 2000
    draws, but with top_k only the k most likely ever do."""
    model = tiny()
    prompt = np.tile(ids((1, 4)), (2000, 1))
    top3 = set(np.argsort(_last_logits(model, prompt[:1])[0])[-3:].tolist())
    drawn = model.generate(prompt, 1, temperature=10.0, top_k=3).numpy()[:, -1]
    assert set(drawn.tolist()) == top3  # all three appear, nothing else does
    everything = model.generate(prompt, 1, temperature=10.0).numpy()[:, -1]
    assert len(set(everything.tolist())) > 3  # (the test could see a leak)
    # top_k = 1 is greedy
    greedy = model.generate(prompt[:3], 4, temperature=0).numpy()
    np.testing.assert_array_equal(model.generate(prompt[:3], 4, top_k=1).numpy(), greedy)


def test_generate_samples_by_probability():
    # the empirical frequencies follow softmax(logits / temperature)
    model = tiny()
    prompt = np.tile(ids((1, 3)), (4000, 1))
    logits = _last_logits(model, prompt[:1])[0] / 0.05
    p = np.exp(logits - logits.max())
    p /= p.sum()
    drawn = model.generate(prompt, 1, temperature=0.05).numpy()[:, -1]
    freq = np.bincount(drawn, minlength=13) / len(drawn)
    np.testing.assert_allclose(freq, p, atol=0.03)


def test_generate_is_seeded_and_leaves_training_mode():
    model = tiny(dropout=0.1)
    tg.manual_seed(5)
    a = model.generate(ids((2, 3)), 6).numpy()
    tg.manual_seed(5)
    b = model.generate(ids((2, 3)), 6).numpy()
    np.testing.assert_array_equal(a, b)
    assert model.training  # restored after generating in eval mode
    c = model.generate(ids((2, 3)), 6, generator=np.random.default_rng(1)).numpy()
    d = model.generate(ids((2, 3)), 6, generator=np.random.default_rng(1)).numpy()
    np.testing.assert_array_equal(c, d)
    assert model.generate(ids((2, 3)), 0).shape == (2, 3)


def test_generate_does_not_record_a_graph():
    model = tiny()
    out = model.generate(ids((1, 2)), 3)
    assert not out.requires_grad and out.grad_fn is None
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------------------------------
# Errors

def test_too_long_input_raises():
    with pytest.raises(ValueError, match=r"length 9.*block_size is 8"):
        tiny()(ids((1, 9)))


@pytest.mark.parametrize("bad", [13, -1, 300])
def test_bad_token_ids_raise(bad):
    x = ids((2, 4))
    x[1, 2] = bad
    with pytest.raises(IndexError, match=r"GPT: token ids must be in 0\.\.12 \(vocab_size 13\)"):
        tiny()(x)


def test_bad_idx_types_and_shapes_raise():
    model = tiny()
    with pytest.raises(TypeError, match="integer token ids, got dtype float32"):
        model(tg.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"shape \(batch, time\), got shape \(4,\)"):
        model(np.arange(4))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="n_embd=10 must be divisible by n_head=4"):
        GPT(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="n_layer must be a positive integer, got 0"):
        GPTConfig(n_layer=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        GPTConfig(dropout=1.0)
    with pytest.raises(TypeError, match="either config= or the hyperparameters"):
        GPT(n_layer=2, config=GPTConfig())


def test_bad_generate_arguments_raise():
    model = tiny()
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(ids((1, 2)), 3, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        model.generate(ids((1, 2)), 3, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens must be an integer >= 0"):
        model.generate(ids((1, 2)), -1)
    with pytest.raises(ValueError, match="at least one token of context"):
        model.generate(np.zeros((1, 0), dtype=np.int64), 3)


# ----------------------------------------------------------------------------------------------------
# The recipe ("gpt"), at toy size

TOY = dict(steps=6, batch_size=4, block_size=16, n_layer=1, n_head=2, n_embd=16, warmup_steps=2,
           eval_windows=8, max_bytes=200_000, sample_tokens=12, eval_every=3, log_every=2)


def test_recipe_steps_evaluates_and_samples(tmp_path):
    from tinygrad_pt.train.recipes.gpt import GPTRecipe
    recipe = GPTRecipe(TOY)
    model = recipe.modules["model"]
    assert model.config.vocab_size == 256 and model.config.block_size == 16
    decay, no_decay = recipe.optimizers["opt"].param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0

    before = recipe.evaluate()
    state = recipe.rng.bit_generator.state
    assert recipe.evaluate() == before  # fixed windows, no draw from self.rng
    assert recipe.rng.bit_generator.state == state
    assert before["val_bits_per_byte"] == pytest.approx(before["val_loss"] / math.log(2))
    assert before["val_loss"] == pytest.approx(math.log(256), abs=0.05)  # untrained: uniform
    assert 3.0 < before["unigram_bits_per_byte"] < 7.0

    lrs = []
    for step in range(TOY["steps"]):
        metrics = recipe.train_step(step)
        assert isinstance(metrics["loss"], tg.Tensor) and metrics["loss"].shape == ()
        assert metrics["grad_norm"].shape == () and not metrics["loss"].requires_grad
        lrs.append(metrics["lr"])
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(2e-3)  # warmup, then cosine down
    assert lrs[-1] < max(lrs)
    after = recipe.evaluate()
    assert after["val_loss"] < before["val_loss"]

    line = recipe.summary(after)
    assert line.startswith("val ") and "bits/byte vs unigram" in line
    (path,) = recipe.sample(str(tmp_path), n=3)
    text = open(path, encoding="utf-8").read()
    assert text.count("----- sample") == 3 and "prompt 'def '" in text
    (art,) = recipe.artifacts(str(tmp_path / "art"))
    assert open(art, encoding="utf-8").read().count("----- sample") == 4
    with pytest.raises(ValueError, match="n must be a positive integer"):
        recipe.sample(str(tmp_path), n=0)


def test_recipe_resume_is_bit_identical(tmp_path):
    """2N steps in one go == N steps, checkpoint (tied weights included), resume, N steps."""
    from tinygrad_pt.train.loop import train
    from tinygrad_pt.train.recipes import make_recipe
    one = make_recipe("gpt", TOY)
    train(one, tmp_path / "one", steps=6, progress=False, artifacts=False)
    two = make_recipe("gpt", TOY)
    train(two, tmp_path / "two", steps=3, progress=False, artifacts=False)
    three = make_recipe("gpt", TOY)
    train(three, tmp_path / "two", steps=6, resume=True, progress=False, artifacts=False)
    changed = [not np.array_equal(p.numpy(), q.numpy()) for p, q in
               zip(one.modules["model"].parameters(), two.modules["model"].parameters())]
    assert all(changed)  # steps 4..6 moved every parameter: the comparison below means something
    model = three.modules["model"]
    assert model.lm_head.weight is model.wte.weight  # still tied after loading
    for (name, p), (_, q) in zip(one.modules["model"].named_parameters(),
                                 model.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
