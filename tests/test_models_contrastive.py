"""Contrastive models (SimCLR, MoCo), the probe helpers and their recipes: fast checks.

Shapes; SimCLR learns on a fixed batch; MoCo's key encoder gets no gradient and follows the
momentum rule exactly; the queue is a FIFO of fixed size; InfoNCE against a plain-loop NumPy
computation and gradcheck; the linear probe never touches its encoder; few_label_subset draws
exactly k per class; the recipes step, evaluate, checkpoint (the queue included) and resume
bit-identically; run_probe writes its table.
"""
import copy
import os
from collections import deque

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
import tinygrad_pt.nn.functional as F
from tinygrad_pt.data import load_digits
from tinygrad_pt.models.contrastive import MLPEncoder, MoCo, ProjectionHead, SimCLR, info_nce
from tinygrad_pt.train.transfer import (LinearProbe, accuracy, few_label_subset, fine_tune,
                                        fresh_copy, train_from_scratch)
from tinygrad_pt.testing import gradcheck

TINY = {"hidden": 16, "feat_dim": 8, "proj_hidden": 8, "proj_dim": 4, "batch_size": 16,
        "probe_steps": 20}


def small_encoder(in_dim=6, hidden=8, feat_dim=5):
    return MLPEncoder(in_dim, hidden, feat_dim)


def arrays_of(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def unit_rows(rng, n, d):
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------------------------
# Shapes


def test_shapes():
    x = tg.randn(5, 64)
    enc = MLPEncoder()
    h = enc(x)
    assert h.shape == (5, 128) and h.dtype == np.float32
    z = ProjectionHead(128, 32, 16)(h)
    assert z.shape == (5, 16)
    assert SimCLR(enc, ProjectionHead())(x).shape == (5, 64)
    moco = MoCo(nn.Sequential(MLPEncoder(), ProjectionHead()), queue_size=32)
    q = moco(x)
    assert q.shape == (5, 64) and moco.queue.shape == (32, 64) and moco.dim == 64
    np.testing.assert_allclose(np.linalg.norm(q.numpy(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(moco.queue.numpy(), axis=1), 1.0, rtol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"MLPEncoder: expected input of shape \(N, 64\), got "
                                         r"\(3, 10\)"):
        MLPEncoder()(tg.randn(3, 10))
    with pytest.raises(ValueError, match="two views must have the same shape"):
        SimCLR(MLPEncoder(), ProjectionHead()).loss(tg.randn(4, 64), tg.randn(3, 64))
    with pytest.raises(ValueError, match="momentum must be in"):
        MoCo(small_encoder(), momentum=1.5)
    with pytest.raises(ValueError, match="queue_size must be a positive int"):
        MoCo(small_encoder(), queue_size=0)
    with pytest.raises(ValueError, match="pass dim="):
        MoCo(nn.Sequential(nn.ReLU()))
    moco = MoCo(small_encoder(), queue_size=4)
    with pytest.raises(ValueError, match=r"N <= queue_size = 4, got \(5, 5\)"):
        moco.enqueue(tg.randn(5, 5))
    with pytest.raises(ValueError, match="info_nce: expected q and k of shape"):
        info_nce(tg.randn(3, 4), tg.randn(3, 4), tg.randn(7, 5), 0.1)


# ----------------------------------------------------------------------------------------------------
# SimCLR


def test_simclr_loss_is_nt_xent_of_the_two_projections():
    model = SimCLR(small_encoder(), ProjectionHead(5, 6, 3))
    x1, x2 = tg.randn(4, 6), tg.randn(4, 6)
    expected = F.nt_xent(model(x1), model(x2), 0.3).item()  # each view on its own
    assert model.loss(x1, x2, 0.3).item() == pytest.approx(expected, rel=1e-5)


def test_simclr_loss_decreases_over_a_few_steps():
    x, _ = load_digits("train")
    rng = np.random.default_rng(0)
    batch = x[:32]
    v1 = np.clip(batch + 0.1 * rng.standard_normal(batch.shape), 0, 1).astype(np.float32)
    v2 = np.clip(batch + 0.1 * rng.standard_normal(batch.shape), 0, 1).astype(np.float32)
    v1, v2 = tg.tensor(v1), tg.tensor(v2)
    model = SimCLR(MLPEncoder(64, 64, 32), ProjectionHead(32, 32, 16))
    opt = tg.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = model.loss(v1, v2, 0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(p.grad is not None for p in model.parameters())


# ----------------------------------------------------------------------------------------------------
# MoCo: key encoder, momentum, queue


def perturbed_moco(momentum=0.9, queue_size=8):
    moco = MoCo(small_encoder(), momentum=momentum, queue_size=queue_size, temperature=0.2)
    with tg.no_grad():  # make the query encoder differ from its copy
        for p in moco.encoder_q.parameters():
            p.data += 0.5
    return moco


def test_key_encoder_is_a_copy_that_gets_no_gradient():
    moco = MoCo(small_encoder(), queue_size=8)
    for pq, pk in zip(moco.encoder_q.parameters(), moco.encoder_k.parameters()):
        np.testing.assert_array_equal(pq.numpy(), pk.numpy())
        assert pq.data is not pk.data and not np.shares_memory(pq.data, pk.data)
        assert not pk.requires_grad and pq.requires_grad
    loss = moco.loss(tg.randn(4, 6), tg.randn(4, 6))
    loss.backward()
    assert all(p.grad is None for p in moco.encoder_k.parameters())
    assert all(p.grad is not None for p in moco.encoder_q.parameters())


def test_momentum_update_follows_the_rule_exactly():
    moco = perturbed_moco(momentum=0.9)
    k0 = [p.numpy() for p in moco.encoder_k.parameters()]
    q0 = [p.numpy() for p in moco.encoder_q.parameters()]
    moco.momentum_update()
    for pk, k, q in zip(moco.encoder_k.parameters(), k0, q0):
        expected = np.float32(0.9) * k + np.float32(1 - 0.9) * q  # NumPy, float32
        assert pk.dtype == np.float32
        np.testing.assert_allclose(pk.numpy(), expected, rtol=1e-6, atol=1e-7)
        assert not np.allclose(pk.numpy(), k)  # it did move
    for pq, q in zip(moco.encoder_q.parameters(), q0):  # the query encoder did not
        np.testing.assert_array_equal(pq.numpy(), q)


def test_training_step_moves_keys_by_momentum_and_queries_by_gradient():
    moco = perturbed_moco(momentum=0.75)
    opt = tg.optim.SGD(moco.encoder_q.parameters(), lr=0.1)
    k0 = [p.numpy() for p in moco.encoder_k.parameters()]
    q0 = [p.numpy() for p in moco.encoder_q.parameters()]
    loss = moco.loss(tg.randn(4, 6), tg.randn(4, 6))  # momentum step, then the keys
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.numpy() for p in moco.encoder_q.parameters()]
    opt.step()
    for pk, k, q in zip(moco.encoder_k.parameters(), k0, q0):
        np.testing.assert_allclose(pk.numpy(), 0.75 * k + 0.25 * q, rtol=1e-5, atol=1e-6)
    for pq, q, g in zip(moco.encoder_q.parameters(), q0, grads):
        np.testing.assert_allclose(pq.numpy(), q - 0.1 * g, rtol=1e-5, atol=1e-6)


def test_queue_is_a_fifo_of_fixed_size():
    size, dim = 7, 5
    moco = MoCo(small_encoder(feat_dim=dim), queue_size=size)
    reference = deque([tuple(row) for row in moco.queue.numpy()], maxlen=size)  # oldest first
    counter = 0
    for n in (3, 3, 1, 4, 7, 2):
        batch = np.arange(counter, counter + n * dim, dtype=np.float32).reshape(n, dim)
        counter += n * dim
        moco.enqueue(tg.tensor(batch))
        reference.extend(tuple(row) for row in batch)  # drops the oldest from the left
        assert moco.queue.shape == (size, dim)
        queue = moco.queue.numpy()
        in_age_order = np.roll(queue, -moco.queue_ptr, axis=0)  # the oldest sits at queue_ptr
        np.testing.assert_array_equal(in_age_order, np.array(list(reference), dtype=np.float32))
    assert moco.queue_ptr == (3 + 3 + 1 + 4 + 7 + 2) % size


def test_loss_enqueues_the_new_keys_and_evaluation_changes_nothing():
    moco = perturbed_moco(queue_size=8)
    xq, xk = tg.randn(3, 6), tg.randn(3, 6)
    before = moco.queue.numpy()
    k_before = arrays_of(moco.encoder_k)
    moco.loss(xq, xk, update=False)
    np.testing.assert_array_equal(moco.queue.numpy(), before)
    assert moco.queue_ptr == 0
    assert_same_arrays(arrays_of(moco.encoder_k), k_before)
    moco.loss(xq, xk)  # update=True
    keys = moco.keys(xk).numpy()  # the key encoder has already taken this step's momentum update
    np.testing.assert_allclose(moco.queue.numpy()[:3], keys, rtol=1e-6)
    np.testing.assert_array_equal(moco.queue.numpy()[3:], before[3:])
    assert moco.queue_ptr == 3


def test_enqueue_inside_loss_does_not_corrupt_the_gradient():
    # momentum 1: the key encoder stays put, so update=True differs from update=False only by
    # the enqueue, which happens before backward: the gradients must still be equal.
    a = MoCo(small_encoder(), momentum=1.0, queue_size=4)
    b = copy.deepcopy(a)
    xq, xk = tg.randn(4, 6), tg.randn(4, 6)
    a.loss(xq, xk, update=True).backward()
    b.loss(xq, xk, update=False).backward()
    assert a.queue_ptr == 0 and not np.array_equal(a.queue.numpy(), b.queue.numpy())
    for pa, pb in zip(a.encoder_q.parameters(), b.encoder_q.parameters()):
        np.testing.assert_allclose(pa.grad.numpy(), pb.grad.numpy(), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------------------
# InfoNCE


def info_nce_loop(q, k, negatives, temperature):
    """Per-row Python loop: -log( e^{q.k/t} / (e^{q.k/t} + sum_j e^{q.n_j/t}) ), then the mean."""
    total = 0.0
    for i in range(len(q)):
        pos = float(np.dot(q[i], k[i])) / temperature
        negs = [float(np.dot(q[i], n)) / temperature for n in negatives]
        top = max([pos] + negs)
        denom = np.exp(pos - top) + sum(np.exp(v - top) for v in negs)
        total += -(pos - top) + np.log(denom)
    return total / len(q)


@given(n=st.integers(1, 4), k=st.integers(1, 5), d=st.integers(1, 4),
       temperature=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_info_nce_matches_a_loop_and_gradchecks(n, k, d, temperature, seed):
    rng = np.random.default_rng(seed)
    q, key, negs = unit_rows(rng, n, d), unit_rows(rng, n, d), unit_rows(rng, k, d)
    got = info_nce(tg.tensor(q), tg.tensor(key), tg.tensor(negs), temperature).item()
    assert got == pytest.approx(info_nce_loop(q, key, negs, temperature), rel=1e-9, abs=1e-12)
    leaves = [tg.tensor(a, requires_grad=True) for a in (q, key, negs)]
    assert gradcheck(lambda a, b, c: info_nce(a, b, c, temperature), *leaves)


def test_moco_loss_is_info_nce_with_the_positive_first():
    moco = perturbed_moco(queue_size=6)
    xq, xk = tg.randn(5, 6), tg.randn(5, 6)
    q, k, queue = moco(xq).numpy(), moco.keys(xk).numpy(), moco.queue.numpy()
    got = moco.loss(xq, xk, update=False).item()
    expected = info_nce_loop(q.astype(np.float64), k.astype(np.float64),
                             queue.astype(np.float64), 0.2)
    assert got == pytest.approx(expected, rel=1e-5)
    # positive at index 0: swapping the key for a queue entry changes the loss
    wrong = info_nce_loop(q.astype(np.float64), np.roll(k, 1, axis=0).astype(np.float64),
                          queue.astype(np.float64), 0.2)
    assert abs(wrong - expected) > 1e-3


# ----------------------------------------------------------------------------------------------------
# Probe helpers


def test_linear_probe_leaves_the_encoder_unchanged_and_learns():
    x, y = load_digits("train")
    x_test, y_test = load_digits("test")
    enc = MLPEncoder(64, 32, 16)
    before = arrays_of(enc)
    probe = LinearProbe(enc, 10)
    loss = probe.fit(x, y, steps=60)
    assert_same_arrays(arrays_of(enc), before)
    assert all(p.grad is None for p in enc.parameters())
    assert probe.head.weight.grad is not None
    assert loss < 1.0 and probe.accuracy(x_test, y_test) > 0.7
    assert probe.predict(x_test[:7]).shape == (7,)
    logits = probe(tg.tensor(x_test[:7]))
    assert logits.shape == (7, 10)
    # the same classifier as one Linear on the raw features
    folded = probe.as_linear()(enc(tg.tensor(x_test[:7])))
    np.testing.assert_allclose(folded.numpy(), logits.numpy(), rtol=1e-4, atol=1e-4)


def test_linear_probe_on_raw_pixels_and_errors():
    x, y = load_digits("train")
    probe = LinearProbe(None, 10, feat_dim=64)
    probe.fit(x[:200], y[:200], steps=30)
    assert probe.accuracy(x[:200], y[:200]) > 0.8
    with pytest.raises(ValueError, match="pass feat_dim="):
        LinearProbe(None, 10)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        LinearProbe(None, 3, feat_dim=64).fit(x[:20], y[:20])
    with pytest.raises(ValueError, match="y must hold one integer label per row"):
        LinearProbe(None, 10, feat_dim=64).fit(x[:20], y[:19])


def test_few_label_subset_picks_exactly_k_per_class():
    x, y = load_digits("train")
    xs, ys = few_label_subset(x, y, 10, np.random.default_rng(0))
    assert xs.shape == (100, 64) and ys.shape == (100,)
    np.testing.assert_array_equal(np.bincount(ys, minlength=10), np.full(10, 10))
    # every picked row is a real (image, label) pair, each at most once
    rows = {x[i].tobytes(): y[i] for i in range(len(x))}
    assert all(rows[a.tobytes()] == b for a, b in zip(xs, ys))
    assert len({a.tobytes() for a in xs}) == 100
    again, _ = few_label_subset(x, y, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(again, xs)  # same rng, same subset
    other, _ = few_label_subset(x, y, 10, np.random.default_rng(1))
    assert not np.array_equal(other, xs)
    with pytest.raises(ValueError, match="has only 2 examples, fewer than labels_per_class=3"):
        few_label_subset(x[:4], np.array([0, 0, 1, 1]), 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="labels_per_class must be a positive int"):
        few_label_subset(x, y, 0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        few_label_subset(x, y, 1, 0)


def test_fine_tune_trains_a_copy_and_scratch_starts_fresh():
    x, y = load_digits("train")
    xs, ys = few_label_subset(x, y, 5, np.random.default_rng(0))
    enc = MLPEncoder(64, 32, 16)
    before = arrays_of(enc)
    model = fine_tune(enc, xs, ys, steps=30)
    assert_same_arrays(arrays_of(enc), before)  # the pre-trained encoder is untouched
    assert model[0] is not enc and accuracy(model, xs, ys) > 0.9
    tuned = arrays_of(model[0])
    assert any(not np.array_equal(tuned[k], before[k]) for k in before)  # the copy did train
    scratch = train_from_scratch(lambda: fresh_copy(enc), xs, ys, steps=30, lr=1e-2,
                                 head_init="random")
    assert accuracy(scratch, xs, ys) > 0.9
    with pytest.raises(ValueError, match="head_init must be 'probe' or 'random'"):
        fine_tune(enc, xs, ys, head_init="zeros")
    with pytest.raises(TypeError, match="make_encoder\\(\\) must return an nn.Module"):
        train_from_scratch(lambda: None, xs, ys)


def test_fresh_copy_reinitialises_without_sharing():
    enc = MLPEncoder(64, 32, 16)
    fresh = fresh_copy(enc)
    for (name, p), q in zip(enc.named_parameters(), fresh.parameters()):
        assert p.shape == q.shape and not np.shares_memory(p.data, q.data)
        assert not np.array_equal(p.numpy(), q.numpy()), name
        bound = 1 / np.sqrt(32 if name.startswith("net.2") or name.startswith("net.4") else 64)
        assert np.abs(q.numpy()).max() <= bound

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.ones(3, np.float32))

    with pytest.raises(TypeError, match="cannot re-initialise the parameters of a Odd"):
        fresh_copy(Odd())


# ----------------------------------------------------------------------------------------------------
# Recipes (tiny configs)


@pytest.mark.parametrize("name", ["simclr", "moco"])
def test_recipe_steps_and_evaluates(name):
    from tinygrad_pt.train.recipes import make_recipe

    config = dict(TINY, **({"queue_size": 32} if name == "moco" else {}))
    recipe = make_recipe(name, config)
    first = recipe.train_step(0)
    assert set(first) == {"loss"}
    assert isinstance(first["loss"], tg.Tensor) and first["loss"].shape == ()  # not synced
    for step in range(1, 5):
        recipe.train_step(step)
    metrics = recipe.evaluate()
    assert set(metrics) == {"probe_acc", "raw_probe_acc", "test_loss"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert 0.1 < metrics["probe_acc"] <= 1.0
    assert "linear-probe test accuracy" in recipe.summary(metrics)
    with pytest.raises(NotImplementedError):
        recipe.sample("unused")


def test_recipe_config_errors():
    from tinygrad_pt.train.recipes import make_recipe

    with pytest.raises(ValueError, match="moco: config queue_size=20; expected at least the 32 "
                                         "keys enqueued each step"):
        make_recipe("moco", dict(TINY, queue_size=20))
    with pytest.raises(ValueError, match="simclr: config temperature=0; expected a positive"):
        make_recipe("simclr", dict(TINY, temperature=0))
    with pytest.raises(ValueError, match="unknown config keys"):
        make_recipe("simclr", {"queue_size": 10})


def test_moco_checkpoint_holds_key_encoder_and_queue(tmp_path):
    from tinygrad_pt.train.checkpoint import load_checkpoint, save_checkpoint
    from tinygrad_pt.train.recipes import make_recipe

    config = dict(TINY, queue_size=40)  # 40 is not a multiple of 2 x 16: the ring wraps mid-step
    a = make_recipe("moco", config)
    for step in range(3):
        a.train_step(step)
    assert set(a.modules) == {"encoder_q", "encoder_k"} and a.moco.queue_ptr == 3 * 32 % 40
    path = save_checkpoint(tmp_path / "ckpt.safetensors", a, 3)
    b = make_recipe("moco", config, seed=1)  # other weights, other queue
    assert load_checkpoint(path, b) == 3
    np.testing.assert_array_equal(b.moco.queue.numpy(), a.moco.queue.numpy())
    assert b.moco.queue_ptr == a.moco.queue_ptr
    assert_same_arrays(arrays_of(b.moco.encoder_k), arrays_of(a.moco.encoder_k))
    assert_same_arrays(arrays_of(b.moco.encoder_q), arrays_of(a.moco.encoder_q))
    with pytest.raises(ValueError, match="lacks \\['queue_ptr'\\]"):
        b.load_extra_state({"queue": a.moco.queue.numpy()})


@pytest.mark.parametrize("name", ["simclr", "moco"])
def test_resume_is_bit_identical(tmp_path, name):
    from tinygrad_pt.train.loop import train
    from tinygrad_pt.train.recipes import make_recipe

    config = dict(TINY, eval_every=0, **({"queue_size": 40} if name == "moco" else {}))
    straight = make_recipe(name, config)
    train(straight, tmp_path / "straight", steps=6, progress=False, artifacts=False)
    first = make_recipe(name, config)
    train(first, tmp_path / "resumed", steps=3, progress=False, artifacts=False)
    second = make_recipe(name, config, seed=5)  # whatever it starts with is overwritten
    train(second, tmp_path / "resumed", steps=6, resume=True, progress=False, artifacts=False)
    for key in straight.modules:
        assert_same_arrays(arrays_of(second.modules[key]), arrays_of(straight.modules[key]))
    if name == "moco":
        np.testing.assert_array_equal(second.moco.queue.numpy(), straight.moco.queue.numpy())
        assert second.moco.queue_ptr == straight.moco.queue_ptr


# ----------------------------------------------------------------------------------------------------
# run_probe


def test_run_probe_writes_a_table(tmp_path):
    from tinygrad_pt.train.loop import train
    from tinygrad_pt.train.probe import run_probe
    from tinygrad_pt.train.recipes import make_recipe

    run = tmp_path / "run"
    train(make_recipe("simclr", dict(TINY, eval_every=0)), run, steps=2, progress=False,
          artifacts=False)
    results = run_probe(run, labels_per_class=(2,), subsets=1, probe_steps=100,
                        finetune_steps=20, progress=False, out_dir=tmp_path / "out")
    expected = {"recipe", "step", "probe_pretrained", "probe_random_init", "probe_raw_pixels"}
    expected |= {f"k2_{kind}{std}" for kind in ("probe", "fine_tune", "scratch", "gain")
                 for std in ("", "_std")}
    assert set(results) == expected
    assert results["recipe"] == "simclr" and results["step"] == 2
    assert 0.5 < results["probe_raw_pixels"] <= 1.0
    assert results["k2_gain"] == pytest.approx(results["k2_fine_tune"] - results["k2_scratch"])
    text = (tmp_path / "out" / "probe.md").read_text()
    assert "| raw pixels |" in text and "| 2 |" in text


def test_run_probe_errors(tmp_path):
    from tinygrad_pt.train.probe import encoder_of, run_probe

    with pytest.raises(FileNotFoundError, match="no checkpoint here"):
        run_probe(tmp_path)
    meta = {"format_version": "1", "recipe": "gpt", "config": "{}", "step": "0", "seed": "0",
            "rng_recipe": "{}", "rng_backend": "{}"}
    tg.save({"x": np.zeros(1, np.float32)}, os.path.join(tmp_path, "checkpoint.safetensors"),
            metadata=meta)
    with pytest.raises(ValueError, match="holds a 'gpt' run, which has no image encoder.*simclr"):
        run_probe(tmp_path)

    class Fake:
        name = "gpt"

    with pytest.raises(ValueError, match="supported recipes: ae, dae, vae, gan, wgan_gp, simclr, moco"):
        encoder_of(Fake())


def test_symmetric_moco_averages_both_directions_and_enqueues_both_keys():
    moco = perturbed_moco(queue_size=8)
    moco.symmetric = True
    x1, x2 = tg.randn(3, 6), tg.randn(3, 6)
    q1, q2 = moco(x1).numpy(), moco(x2).numpy()
    k1, k2 = moco.keys(x1).numpy(), moco.keys(x2).numpy()
    queue = moco.queue.numpy().astype(np.float64)
    expected = 0.5 * (info_nce_loop(q1.astype(np.float64), k2.astype(np.float64), queue, 0.2)
                      + info_nce_loop(q2.astype(np.float64), k1.astype(np.float64), queue, 0.2))
    assert moco.loss(x1, x2, update=False).item() == pytest.approx(expected, rel=1e-5)
    moco.momentum = 1.0  # keys stay as computed above
    moco.loss(x1, x2)
    np.testing.assert_allclose(moco.queue.numpy()[:6], np.concatenate([k2, k1]), rtol=1e-6)
    assert moco.queue_ptr == 6
