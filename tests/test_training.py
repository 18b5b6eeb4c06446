"""End to end: small MLPs trained with each optimizer learn XOR and y = sin(x), seeded and fast;
a checkpoint (model + optimizer) saved mid-run resumes to the same weights."""
import numpy as np
import pytest

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
import tinygrad_pt.nn.functional as F
from tinygrad_pt.optim import SGD, Adam, AdamW
from tinygrad_pt.optim.lr_scheduler import CosineWithWarmup

OPTIMIZERS = {
    "sgd_momentum": lambda ps, lr: SGD(ps, lr=lr, momentum=0.9),
    "adam": lambda ps, lr: Adam(ps, lr=lr),
    "adamw": lambda ps, lr: AdamW(ps, lr=lr, weight_decay=1e-4),
}
# learning rates per task and optimizer, chosen once; the runs are seeded
XOR_LR = {"sgd_momentum": 0.1, "adam": 0.05, "adamw": 0.05}
SIN_LR = {"sgd_momentum": 0.02, "adam": 0.01, "adamw": 0.01}


def mlp(n_in, hidden, n_out):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, n_out))


def train(model, opt, x, y, loss_fn, steps):
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss_fn(model(x), y).item()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_mlp_learns_xor(name):
    tg.manual_seed(0)
    x = tg.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = tg.tensor([[0.0], [1.0], [1.0], [0.0]])
    model = mlp(2, 8, 1)
    opt = OPTIMIZERS[name](model.parameters(), XOR_LR[name])
    loss = train(model, opt, x, y, F.binary_cross_entropy_with_logits, 300)
    assert loss < 0.05, f"{name}: final loss {loss:.4f}"
    predictions = (model(x).numpy() > 0).astype(np.float32)
    np.testing.assert_array_equal(predictions, y.numpy())


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_mlp_fits_a_sine(name):
    tg.manual_seed(0)
    x_np = np.linspace(-3, 3, 64, dtype=np.float32)[:, None]
    x, y = tg.tensor(x_np), tg.tensor(np.sin(x_np))
    model = mlp(1, 32, 1)
    opt = OPTIMIZERS[name](model.parameters(), SIN_LR[name])
    start = F.mse_loss(model(x), y).item()
    mse = train(model, opt, x, y, F.mse_loss, 600)
    assert mse < 0.01, f"{name}: final MSE {mse:.4f} (started at {start:.4f})"
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_clipping_and_a_schedule_in_the_loop():
    tg.manual_seed(1)
    x_np = np.linspace(-3, 3, 64, dtype=np.float32)[:, None]
    x, y = tg.tensor(x_np), tg.tensor(np.sin(x_np))
    model = mlp(1, 32, 1)
    opt = AdamW(model.parameters(), lr=0.02, weight_decay=0.0)
    sched = CosineWithWarmup(opt, warmup_steps=20, total_steps=400, min_lr=1e-3)
    for _ in range(400):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    assert sched.get_last_lr() == [pytest.approx(1e-3)]
    assert F.mse_loss(model(x), y).item() < 0.01


def test_checkpoint_resume_gives_the_same_weights(tmp_path):
    x_np = np.linspace(-3, 3, 32, dtype=np.float32)[:, None]
    x, y = tg.tensor(x_np), tg.tensor(np.sin(x_np))

    def fresh():
        tg.manual_seed(3)
        model = mlp(1, 16, 1)
        return model, Adam(model.parameters(), lr=0.01)

    model, opt = fresh()
    train(model, opt, x, y, F.mse_loss, 20)
    expected = model.state_dict()

    model, opt = fresh()
    train(model, opt, x, y, F.mse_loss, 10)
    tg.save(model.state_dict(), tmp_path / "model.safetensors")
    tg.save(opt.state_dict(), tmp_path / "opt.safetensors")
    tg.manual_seed(99)  # a different init: everything must come from the checkpoint
    model2 = mlp(1, 16, 1)
    opt2 = Adam(model2.parameters(), lr=0.5)
    model2.load_state_dict(tg.load(tmp_path / "model.safetensors"))
    opt2.load_state_dict(tg.load(tmp_path / "opt.safetensors"))
    train(model2, opt2, x, y, F.mse_loss, 10)
    for name, value in model2.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[name].numpy(), err_msg=name)
