"""Optimizers and LR schedules: each update rule against a plain NumPy re-implementation of
PyTorch's documented algorithm (and torch.optim itself when torch imports), state dicts through
tg.save / tg.load, schedules at chosen steps, and bad hyperparameters."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
from tinygrad_pt.optim import SGD, Adam, AdamW, cosine_with_warmup
from tinygrad_pt.optim.lr_scheduler import CosineWithWarmup, LambdaLR

SHAPES = [(3, 4), (4,), ()]
N_STEPS = 5


def initial_values(seed=0, dtype=np.float64):
    r = np.random.default_rng(seed)
    return [r.standard_normal(s).astype(dtype) for s in SHAPES]


def gradient_sequence(n_steps=N_STEPS, seed=1, dtype=np.float64):
    r = np.random.default_rng(seed)
    return [[r.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(n_steps)]


def run_tg(make_opt, values, grads):
    """Parameters from `values`, then one optimizer step per entry of `grads`; final values."""
    params = [tg.tensor(v.copy(), requires_grad=True) for v in values]
    opt = make_opt(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = tg.tensor(g.copy())
        opt.step()
    return [p.numpy() for p in params], opt


# ----------------------------------------------------------------------------------------------------
# Plain NumPy versions of the algorithms as PyTorch's documentation writes them

def numpy_sgd(values, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    out = []
    for k, p in enumerate(values):
        p = p.copy()
        b = None
        for t, gs in enumerate(grads):
            g = gs[k] + weight_decay * p
            if momentum:
                b = g if t == 0 else momentum * b + (1 - dampening) * g
                g = g + momentum * b if nesterov else b
            p = p - lr * g
        out.append(p)
    return out


def numpy_adam(values, grads, lr, betas, eps, weight_decay=0.0, decoupled=False):
    """The textbook form: bias-corrected m_hat, v_hat, then lr * m_hat / (sqrt(v_hat) + eps)."""
    b1, b2 = betas
    out = []
    for k, p in enumerate(values):
        p = p.copy()
        m = np.zeros_like(p)
        v = np.zeros_like(p)
        for t, gs in enumerate(grads, start=1):
            g = gs[k]
            if decoupled:
                p = p - lr * weight_decay * p
            else:
                g = g + weight_decay * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g ** 2
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def assert_all_close(got, expected, rtol=1e-10, atol=1e-12):
    for i, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"parameter {i}")


# ----------------------------------------------------------------------------------------------------
# Update rules vs NumPy

@given(lr=st.floats(1e-3, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       dampening=st.sampled_from([0.0, 0.3]), weight_decay=st.sampled_from([0.0, 0.1]),
       nesterov=st.booleans())
def test_sgd_matches_numpy(lr, momentum, dampening, weight_decay, nesterov):
    if nesterov and (momentum == 0 or dampening != 0):
        dampening, momentum = 0.0, momentum or 0.9  # the only legal nesterov settings
    kw = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
              nesterov=nesterov)
    values, grads = initial_values(), gradient_sequence()
    got, _ = run_tg(lambda ps: SGD(ps, **kw), values, grads)
    assert_all_close(got, numpy_sgd(values, grads, **kw))


def test_sgd_plain_step_by_hand():
    p = tg.tensor([1.0, -2.0], requires_grad=True)
    opt = SGD([p], lr=0.5)
    p.grad = tg.tensor([0.2, 0.4])
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.9, -2.2], rtol=1e-6)


def test_sgd_first_momentum_step_uses_the_gradient_undampened():
    # PyTorch: the buffer starts as g itself, so dampening only acts from the second step.
    p = tg.tensor(np.zeros(2), requires_grad=True)
    opt = SGD([p], lr=1.0, momentum=0.9, dampening=0.5)
    p.grad = tg.tensor(np.array([1.0, 2.0]))
    opt.step()
    np.testing.assert_allclose(p.numpy(), [-1.0, -2.0])
    opt.step()  # b = 0.9 * g + 0.5 * g = 1.4 g
    np.testing.assert_allclose(p.numpy(), [-2.4, -4.8])


@given(lr=st.floats(1e-4, 0.1), b1=st.sampled_from([0.0, 0.5, 0.9]),
       b2=st.sampled_from([0.9, 0.999]), eps=st.sampled_from([1e-8, 1e-3]),
       weight_decay=st.sampled_from([0.0, 0.05]))
def test_adam_matches_numpy(lr, b1, b2, eps, weight_decay):
    values, grads = initial_values(), gradient_sequence()
    got, _ = run_tg(lambda ps: Adam(ps, lr=lr, betas=(b1, b2), eps=eps,
                                    weight_decay=weight_decay), values, grads)
    assert_all_close(got, numpy_adam(values, grads, lr, (b1, b2), eps, weight_decay))


@given(lr=st.floats(1e-4, 0.1), b1=st.sampled_from([0.0, 0.9]), weight_decay=st.sampled_from(
    [0.0, 0.01, 0.3]))
def test_adamw_matches_numpy(lr, b1, weight_decay):
    values, grads = initial_values(), gradient_sequence()
    got, _ = run_tg(lambda ps: AdamW(ps, lr=lr, betas=(b1, 0.99), weight_decay=weight_decay),
                    values, grads)
    assert_all_close(got, numpy_adam(values, grads, lr, (b1, 0.99), 1e-8, weight_decay,
                                     decoupled=True))


def test_adam_and_adamw_differ_only_by_how_they_decay():
    values, grads = initial_values(), gradient_sequence()
    adam, _ = run_tg(lambda ps: Adam(ps, lr=0.1, weight_decay=0.5), values, grads)
    adamw, _ = run_tg(lambda ps: AdamW(ps, lr=0.1, weight_decay=0.5), values, grads)
    assert not np.allclose(adam[0], adamw[0])
    # Without decay they are the same algorithm.
    a0, _ = run_tg(lambda ps: Adam(ps, lr=0.1), values, grads)
    w0, _ = run_tg(lambda ps: AdamW(ps, lr=0.1, weight_decay=0.0), values, grads)
    assert_all_close(a0, w0, rtol=0, atol=0)


def test_adamw_default_weight_decay_is_pytorchs():
    p = tg.tensor([1.0], requires_grad=True)
    assert AdamW([p]).param_groups[0]["weight_decay"] == 0.01
    assert Adam([p]).param_groups[0]["weight_decay"] == 0.0
    assert SGD([p]).param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: Adam(ps, lr=0.1, weight_decay=0.1),
                                  lambda ps: AdamW(ps, lr=0.1)])
def test_float32_parameters_stay_float32(make):
    values = initial_values(dtype=np.float32)
    grads = gradient_sequence(3, dtype=np.float32)
    got, opt = run_tg(make, values, grads)
    assert all(a.dtype == np.float32 for a in got)
    for state in opt.state.values():
        for name, value in state.items():
            if name != "step":
                assert value.dtype == np.float32, name
    # and the float32 run follows the float64 one closely
    got64, _ = run_tg(make, [v.astype(np.float64) for v in values],
                      [[g.astype(np.float64) for g in gs] for gs in grads])
    assert_all_close(got, got64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: Adam(ps), lambda ps: AdamW(ps)])
def test_parameter_without_grad_is_skipped(make):
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0], requires_grad=True)
    opt = make([a, b])
    a.grad = tg.tensor([1.0, 1.0])
    opt.step()
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [3.0])
    assert b not in opt.state
    assert opt.state[a]["step"] == 2
    assert not np.allclose(a.numpy(), [1.0, 2.0])


def test_step_does_not_modify_the_gradient():
    p = tg.tensor(np.ones(3), requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    p.grad = tg.tensor(np.full(3, 2.0))
    opt.step()
    opt.step()
    np.testing.assert_array_equal(p.grad.numpy(), np.full(3, 2.0))


def test_zero_grad_sets_grads_to_none_and_closure_loss_is_returned():
    model = nn.Linear(2, 1)
    opt = SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = tg.zeros(*p.shape)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert opt.step(closure=lambda: 42.0) == 42.0


def test_parameter_groups_have_their_own_hyperparameters():
    a = tg.tensor([1.0], requires_grad=True)
    b = tg.tensor([1.0], requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.0  # missing keys take the defaults
    a.grad, b.grad = tg.tensor([1.0]), tg.tensor([1.0])
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.5], rtol=1e-6)


def test_an_optimizer_built_before_module_to_still_updates_it():
    model = nn.Linear(3, 2)
    opt = SGD(model.parameters(), lr=0.1)
    model.double()
    x = tg.tensor(np.ones((1, 3)))
    model(x).sum().backward()
    before = model.weight.numpy()
    opt.step()
    assert model.weight.dtype == np.float64
    np.testing.assert_allclose(model.weight.numpy(), before - 0.1)  # d sum / dW = x = 1


# ----------------------------------------------------------------------------------------------------
# torch.optim as the oracle

def run_torch(torch, make_opt, values, grads):
    params = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    opt = make_opt(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g.copy())
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.torch
@pytest.mark.parametrize("name,kw", [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.03, betas=(0.5, 0.9), weight_decay=0.2)),
])
def test_matches_torch_optim(name, kw):
    torch = pytest.importorskip("torch")
    values, grads = initial_values(), gradient_sequence(8)
    ours, _ = run_tg(lambda ps: getattr(tg.optim, name)(ps, **kw), values, grads)
    theirs = run_torch(torch, lambda ps: getattr(torch.optim, name)(ps, **kw), values, grads)
    assert_all_close(ours, theirs, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# State dicts

@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: Adam(ps, lr=0.01, weight_decay=0.1),
                                  lambda ps: AdamW(ps, lr=0.01, betas=(0.8, 0.9))])
def test_state_dict_round_trip_through_save_and_load_continues_identically(make, tmp_path):
    values = initial_values(dtype=np.float32)
    grads = gradient_sequence(6, dtype=np.float32)
    # Reference: six uninterrupted steps.
    expected, _ = run_tg(make, values, grads)
    # Resumed: three steps, checkpoint, a fresh optimizer over fresh parameters, three more.
    first, opt = run_tg(make, values, grads[:3])
    path = tmp_path / "opt.safetensors"
    tg.save(opt.state_dict(), path)
    params = [tg.tensor(v, requires_grad=True) for v in first]
    opt2 = make(params)
    opt2.load_state_dict(tg.load(path))
    for gs in grads[3:]:
        for p, g in zip(params, gs):
            p.grad = tg.tensor(g.copy())
        opt2.step()
    assert_all_close([p.numpy() for p in params], expected, rtol=0, atol=0)


def test_state_dict_keys_are_flat_and_documented():
    values, grads = initial_values(), gradient_sequence(2)
    _, opt = run_tg(lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.9)), values, grads)
    sd = opt.state_dict()
    assert all(isinstance(v, tg.Tensor) for v in sd.values())
    assert sd["state.0.step"].item() == 2
    assert sd["state.1.exp_avg"].shape == SHAPES[1]
    assert sd["state.2.exp_avg_sq"].shape == ()
    np.testing.assert_array_equal(sd["param_groups.0.params"].numpy(), [0, 1, 2])
    assert sd["param_groups.0.lr"].item() == 0.01
    np.testing.assert_array_equal(sd["param_groups.0.betas"].numpy(), [0.8, 0.9])
    # a copy: stepping on does not change a saved state dict
    before = sd["state.0.exp_avg"].numpy()
    for p in opt.param_groups[0]["params"]:
        p.grad = tg.tensor(np.ones(p.shape))
    opt.step()
    np.testing.assert_array_equal(sd["state.0.exp_avg"].numpy(), before)


def test_load_state_dict_restores_hyperparameters():
    p = tg.tensor([1.0], requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    opt2 = SGD([tg.tensor([1.0], requires_grad=True)], lr=0.7)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["momentum"] == 0.9
    assert opt2.param_groups[0]["nesterov"] is False


def test_load_state_dict_rejects_mismatches():
    values, grads = initial_values(), gradient_sequence(1)
    _, opt = run_tg(lambda ps: Adam(ps), values, grads)
    sd = opt.state_dict()
    wrong_shape = [tg.tensor(np.zeros((4, 3)), requires_grad=True)] + \
                  [tg.tensor(v, requires_grad=True) for v in values[1:]]
    with pytest.raises(ValueError, match=r"'state.0.exp_avg' has shape \(3, 4\).*\(4, 3\)"):
        Adam(wrong_shape).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 holds 3 parameters in the state dict but 2"):
        Adam([tg.tensor(v, requires_grad=True) for v in values[:2]]).load_state_dict(sd)
    fresh = Adam([tg.tensor(v, requires_grad=True) for v in values])
    with pytest.raises(ValueError, match="unexpected keys 'bogus'"):
        fresh.load_state_dict({**sd, "bogus": tg.zeros(1)})
    with pytest.raises(ValueError, match="fewer parameter groups"):
        fresh.load_state_dict({k: v for k, v in sd.items() if not k.startswith("param_groups")})
    assert fresh.state == {}  # nothing was loaded by the failed attempts


def test_state_dict_refuses_a_hyperparameter_it_cannot_save():
    p = tg.tensor([1.0], requires_grad=True)
    opt = SGD([{"params": [p], "name": "head"}], lr=0.1)
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['name'\] is a str"):
        opt.state_dict()


# ----------------------------------------------------------------------------------------------------
# Bad hyperparameters and parameters

@pytest.mark.parametrize("make,match", [
    (lambda ps: SGD(ps, lr=-0.1), "invalid learning rate lr=-0.1"),
    (lambda ps: SGD(ps, momentum=-0.5), "invalid momentum=-0.5"),
    (lambda ps: SGD(ps, weight_decay=-1.0), "invalid weight_decay=-1.0"),
    (lambda ps: SGD(ps, nesterov=True), "nesterov momentum needs momentum > 0"),
    (lambda ps: SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
    (lambda ps: Adam(ps, lr=-1e-3), "invalid learning rate"),
    (lambda ps: Adam(ps, betas=(1.0, 0.999)), r"invalid betas=\(1.0, 0.999\)"),
    (lambda ps: Adam(ps, betas=(0.9, -0.1)), "expected two numbers in"),
    (lambda ps: Adam(ps, eps=-1e-8), "invalid eps"),
    (lambda ps: AdamW(ps, weight_decay=-0.01), "invalid weight_decay"),
    (lambda ps: SGD([{"params": ps, "lr": -1.0}]), "invalid learning rate lr=-1.0"),
])
def test_bad_hyperparameters_raise(make, match):
    params = [tg.tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match=match):
        make(params)


def test_bad_parameter_lists_raise():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam(iter([]))
    with pytest.raises(ValueError, match="does not require grad"):
        Adam([tg.tensor([1.0])])
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="not a leaf"):
        SGD([x * 2.0], lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):
        SGD([x, x], lr=0.1)
    with pytest.raises(TypeError, match="got a single Tensor"):
        SGD(x, lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is a ndarray"):
        SGD([np.ones(2)], lr=0.1)


# ----------------------------------------------------------------------------------------------------
# LR schedules

def test_cosine_with_warmup_values():
    # warmup over 10 steps to 1.0, cosine to 0.1 at step 110
    f = lambda s: cosine_with_warmup(s, 1.0, 10, 110, min_lr=0.1)  # noqa: E731
    assert f(0) == 0.0
    assert f(5) == pytest.approx(0.5)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55)                     # halfway: the mean of 1.0 and 0.1
    assert f(35) == pytest.approx(0.1 + 0.9 * (1 + math.sqrt(0.5)) / 2)  # a quarter: cos(pi/4)
    assert f(110) == pytest.approx(0.1)
    assert f(1000) == pytest.approx(0.1)
    assert cosine_with_warmup(0, 3e-4, 0, 100) == pytest.approx(3e-4)   # no warmup: starts at base


@given(st.integers(0, 200), st.integers(0, 50), st.integers(1, 150))
def test_cosine_with_warmup_stays_between_min_and_base(step, warmup, extra):
    total = warmup + extra
    lr = cosine_with_warmup(step, 2.0, warmup, total, min_lr=0.5)
    if step < warmup:
        assert 0.0 <= lr < 2.0
    else:
        assert 0.5 - 1e-12 <= lr <= 2.0 + 1e-12
    if step >= warmup:  # non-increasing after the warmup
        assert cosine_with_warmup(step + 1, 2.0, warmup, total, min_lr=0.5) <= lr + 1e-12


@pytest.mark.parametrize("args,match", [
    ((-1, 1.0, 10, 100), "step must be >= 0"),
    ((0, 1.0, 20, 10), "warmup_steps <= total_steps"),
    ((0, 1.0, 0, 0), "total_steps > 0"),
    ((0, 1.0, 0, 10, -0.1), "min_lr must be >= 0"),
])
def test_cosine_with_warmup_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        cosine_with_warmup(*args)


def test_cosine_scheduler_sets_the_optimizer_lr_each_step():
    a = tg.tensor([1.0], requires_grad=True)
    b = tg.tensor([1.0], requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.2}], lr=0.1)
    sched = CosineWithWarmup(opt, warmup_steps=2, total_steps=6, min_lr=0.0)
    seen = [sched.get_last_lr()]
    for _ in range(7):
        opt.step()
        sched.step()
        seen.append(sched.get_last_lr())
    shape = [0.0, 0.5, 1.0, (1 + math.sqrt(0.5)) / 2, 0.5, (1 - math.sqrt(0.5)) / 2, 0.0, 0.0]
    np.testing.assert_allclose([s[0] for s in seen], [0.1 * v for v in shape], atol=1e-12)
    np.testing.assert_allclose([s[1] for s in seen], [0.2 * v for v in shape], atol=1e-12)
    assert opt.param_groups[1]["lr"] == seen[-1][1]
    assert opt.param_groups[0]["initial_lr"] == 0.1


def test_scheduler_state_round_trip(tmp_path):
    p = tg.tensor([1.0], requires_grad=True)
    opt = Adam([p], lr=1.0)
    sched = CosineWithWarmup(opt, 3, 20)
    for _ in range(7):
        sched.step()
    tg.save(sched.state_dict(), tmp_path / "s.safetensors")
    opt2 = Adam([tg.tensor([1.0], requires_grad=True)], lr=1.0)
    sched2 = CosineWithWarmup(opt2, 3, 20)
    sched2.load_state_dict(tg.load(tmp_path / "s.safetensors"))
    assert sched2.last_epoch == 7 and sched2.get_last_lr() == sched.get_last_lr()
    sched.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == cosine_with_warmup(8, 1.0,
                                                                                         3, 20)


def test_lambda_lr_matches_pytorch_semantics():
    p = tg.tensor([1.0], requires_grad=True)
    opt = SGD([p], lr=0.5)
    sched = LambdaLR(opt, lambda step: 0.9 ** step)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(3):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [0.5, 0.45, 0.405, 0.3645])
    with pytest.raises(ValueError, match="expected 1 lr_lambdas"):
        LambdaLR(opt, [lambda s: 1.0, lambda s: 1.0])
    with pytest.raises(TypeError, match="expected an Optimizer"):
        CosineWithWarmup([p], 1, 10)


@pytest.mark.torch
def test_lambda_lr_matches_torch():
    torch = pytest.importorskip("torch")
    f = lambda s: 1.0 / (1 + s)  # noqa: E731
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.3)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, f)
    opt = SGD([tg.tensor([0.0], requires_grad=True)], lr=0.3)
    sched = LambdaLR(opt, f)
    for _ in range(4):
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr())
        topt.step()
        tsched.step()
        sched.step()


@pytest.mark.gpu
@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: Adam(ps, lr=0.01), lambda ps: AdamW(ps, lr=0.01)])
def test_cuda_updates_match_cpu(make):
    values = initial_values(dtype=np.float32)
    grads = gradient_sequence(4, dtype=np.float32)
    expected, _ = run_tg(make, values, grads)
    params = [tg.tensor(v.copy(), requires_grad=True, device="cuda") for v in values]
    opt = make(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = tg.tensor(g.copy(), device="cuda")
        opt.step()
    assert all(p.device == "cuda" and p.dtype == np.float32 for p in params)
    assert_all_close([p.numpy() for p in params], expected, rtol=1e-5, atol=1e-6)


def test_adamw_uses_a_fused_kernel_when_the_registry_offers_one(monkeypatch):
    # Simulate a fast AdamW kernel (the registry has none registered on this machine yet): the
    # optimizer must hand it the same arrays and hyperparameters, and the result must not change.
    from tinygrad_pt.kernels import reference, registry
    calls = []

    class Fused:
        @staticmethod
        def adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay):
            calls.append(step)
            reference.adamw_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)

    monkeypatch.setattr(registry, "which", lambda family, device="cpu": "fake")
    monkeypatch.setattr(registry, "kernels_for", lambda family, xp: Fused)
    values, grads = initial_values(), gradient_sequence(3)
    got, _ = run_tg(lambda ps: AdamW(ps, lr=0.01, weight_decay=0.1), values, grads)
    assert calls == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert_all_close(got, numpy_adam(values, grads, 0.01, (0.9, 0.999), 1e-8, 0.1, decoupled=True))


def test_step_refuses_a_gradient_whose_array_was_replaced_by_another_dtype():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    p.grad = tg.ones(2)
    p.grad.data = np.ones(2)  # float64 behind the setter's back
    with pytest.raises(RuntimeError, match=r"SGD.step: a parameter of shape \(2,\) and dtype float32 "
                                           r"has a gradient of shape \(2,\) and dtype float64"):
        SGD([p], lr=0.1).step()


# ----------------------------------------------------------------------------------------------------
# Tampered state dicts are refused before anything is replaced

def _stepped_adam():
    a, b = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0], requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    a.grad, b.grad = tg.ones(2), tg.ones(1)
    opt.step()
    return opt


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.update({"state.0.step": tg.tensor(-3)}),
     r"'state.0.step' must be one non-negative integer, got \[-3\]"),
    (lambda sd: sd.update({"state.0.step": tg.tensor(1.5)}),
     r"'state.0.step' must be one non-negative integer, got \[1.5\] \(float32"),
    (lambda sd: sd.update({"param_groups.0.params": tg.tensor([0, 0])}),
     r"the groups' parameter indices \[\[0, 0\]\] are not the integers 0..1, each once"),
    (lambda sd: sd.update({"param_groups.0.params": tg.tensor([0, 7])}),
     r"the groups. parameter indices \[\[0, 7\]\]"),
    (lambda sd: sd.update({"state.1.momentum_buffer": tg.ones(1)}),
     r"'state.1.momentum_buffer' is not part of Adam's state \(its names: step, exp_avg, "
     r"exp_avg_sq\)"),
    (lambda sd: sd.pop("state.1.exp_avg_sq"),
     r"the state of parameter 1 lacks exp_avg_sq"),
])
def test_a_tampered_optimizer_state_is_refused(change, message):
    opt = _stepped_adam()
    before = {k: v.numpy().copy() for k, v in opt.state_dict().items()}
    sd = opt.state_dict()
    change(sd)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: " + message):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)  # nothing replaced
