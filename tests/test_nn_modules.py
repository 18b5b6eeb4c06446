"""nn: Module bookkeeping (names, state dicts, modes, devices, repr), the layers against NumPy,
init ranges, nn.init and clip_grad_norm_."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_pt as tg
import tinygrad_pt.nn as nn
import tinygrad_pt.nn.functional as F
from tinygrad_pt.nn import init


# ----------------------------------------------------------------------------------------------------
# A small nested model used by several tests

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.ln = nn.LayerNorm(3)
        self.register_buffer("mask", tg.ones(3))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.ln(self.fc(x)) * self.mask)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 3)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(3, 2, bias=False)
        self.scale = nn.Parameter(tg.ones(1))
        self.plain = "not registered"

    def forward(self, idx):
        x = self.embed(idx)
        for b in self.blocks:
            x = b(x)
        return self.head(x) * self.scale


BLOCK_PARAMS = ["fc.weight", "fc.bias", "ln.weight", "ln.bias"]
# As PyTorch: a module's own parameters first, then its children's, depth first.
NET_PARAMS = (["scale", "embed.weight"]
              + [f"blocks.{i}.{n}" for i in range(2) for n in BLOCK_PARAMS] + ["head.weight"])


# ----------------------------------------------------------------------------------------------------
# Linear against NumPy

@given(lead=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), n_in=st.integers(1, 4),
       n_out=st.integers(1, 4), bias=st.booleans())
def test_linear_forward_and_gradients_match_numpy(lead, n_in, n_out, bias):
    layer = nn.Linear(n_in, n_out, bias=bias).double()
    r = np.random.default_rng(0)
    x_np = r.standard_normal(lead + (n_in,))
    upstream = r.standard_normal(lead + (n_out,))
    x = tg.tensor(x_np, requires_grad=True)
    y = layer(x)
    W = layer.weight.numpy()
    b = layer.bias.numpy() if bias else np.zeros(n_out)
    # expected output, one output unit at a time
    expected = np.stack([(x_np * W[j]).sum(-1) + b[j] for j in range(n_out)], axis=-1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)

    (y * tg.tensor(upstream)).sum().backward()
    xs, gs = x_np.reshape(-1, n_in), upstream.reshape(-1, n_out)
    dW = sum(np.outer(gs[i], xs[i]) for i in range(len(xs))) if len(xs) else np.zeros_like(W)
    np.testing.assert_allclose(layer.weight.grad.numpy(), dW, rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(layer.bias.grad.numpy(), gs.sum(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), upstream @ W, rtol=1e-10, atol=1e-12)


def test_linear_gradcheck_float64():
    layer = nn.Linear(3, 2).double()
    x = tg.tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    assert tg.testing.gradcheck(lambda x, w, b: F.linear(x, w, b), x, layer.weight, layer.bias)


def test_linear_is_float32_by_default_and_keeps_float32():
    layer = nn.Linear(3, 2)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)
    y = layer(tg.randn(5, 3))
    assert y.dtype == np.float32 and y.shape == (5, 2)


@pytest.mark.torch
def test_linear_matches_torch_with_the_same_weights():
    torch = pytest.importorskip("torch")
    layer = nn.Linear(4, 3)
    ref = torch.nn.Linear(4, 3)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.numpy()))
        ref.bias.copy_(torch.tensor(layer.bias.numpy()))
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(tg.tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# Initialisation

def test_linear_init_is_uniform_within_pytorchs_bound():
    layer = nn.Linear(16, 200)
    bound = 1 / math.sqrt(16)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.max() > 0.9 * bound and w.min() < -0.9 * bound  # spread over the whole range
    assert abs(w.mean()) < 0.02 and abs(w.var() - bound ** 2 / 3) < 0.005  # U(-k, k): var k^2/3


def test_embedding_init_is_standard_normal_and_layer_norm_is_identity():
    w = nn.Embedding(400, 50).weight.numpy()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02
    ln = nn.LayerNorm((2, 3))
    np.testing.assert_array_equal(ln.weight.numpy(), np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(ln.bias.numpy(), np.zeros((2, 3), np.float32))


def test_same_seed_same_model_and_different_seed_different_model():
    def weights(seed):
        tg.manual_seed(seed)
        return [p.numpy() for p in Net().parameters()]
    a, b, c = weights(7), weights(7), weights(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])  # a[0] is `scale`, ones whatever the seed


def test_nn_init_functions():
    w = tg.zeros(30, 20)
    assert init.xavier_uniform_(w) is w
    assert np.abs(w.numpy()).max() <= math.sqrt(6 / 50) and w.numpy().std() > 0.1
    init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 20)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.9 * bound
    init.kaiming_uniform_(w, a=math.sqrt(5))  # PyTorch's Linear default: 1/sqrt(fan_in)
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(20) + 1e-7
    init.normal_(w, mean=3.0, std=0.5)
    assert abs(w.numpy().mean() - 3.0) < 0.05 and abs(w.numpy().std() - 0.5) < 0.05
    init.uniform_(w, -2.0, -1.0)
    assert w.numpy().min() >= -2.0 and w.numpy().max() <= -1.0
    init.ones_(w)
    assert (w.numpy() == 1).all() and w.dtype == np.float32
    init.zeros_(w)
    assert (w.numpy() == 0).all()
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="at least 2 dimensions, got shape \\(3,\\)"):
        init.xavier_uniform_(tg.zeros(3))
    with pytest.raises(TypeError, match="expected a Tensor, got ndarray"):
        init.zeros_(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point tensor, got dtype int64"):
        init.normal_(tg.tensor(np.zeros(3, np.int64)))
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")


# ----------------------------------------------------------------------------------------------------
# Registration, names, state dicts

def test_named_parameters_of_a_nested_model():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NET_PARAMS
    assert len(list(net.parameters())) == len(NET_PARAMS)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_buffers()] == ["blocks.0.mask", "blocks.1.mask"]
    assert [n for n, _ in net.named_children()] == ["embed", "blocks", "head"]
    assert [n for n, _ in net.named_modules()][:5] == ["", "embed", "blocks", "blocks.0",
                                                       "blocks.0.fc"]
    assert "plain" not in dict(net.named_parameters())
    assert net.num_parameters() == 10 * 3 + 2 * (9 + 3 + 3 + 3) + 6 + 1


def test_state_dict_holds_parameters_and_buffers():
    net = Net()
    sd = net.state_dict()
    expected = (["embed.weight"]
                + [f"blocks.{i}.{n}" for i in range(2) for n in BLOCK_PARAMS[:2]
                   + BLOCK_PARAMS[2:] + ["mask"]]
                + ["head.weight", "scale"])
    assert sorted(sd) == sorted(expected)
    assert all(type(v) is tg.Tensor and not v.requires_grad for v in sd.values())
    # the values share the module's data (like PyTorch): no copy is made
    net.scale.data[...] = 5.0
    assert sd["scale"].item() == 5.0


def test_a_shared_parameter_is_listed_once_but_named_twice_in_the_state_dict():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(5, 3)
            self.lm_head = nn.Linear(3, 5, bias=False)
            self.lm_head.weight = self.wte.weight

    m = Tied()
    assert [n for n, _ in m.named_parameters()] == ["wte.weight"]
    assert sorted(m.state_dict()) == ["lm_head.weight", "wte.weight"]
    m.load_state_dict(m.state_dict())


def test_a_list_of_modules_is_registered_as_a_module_list():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(2, 2), nn.Linear(2, 2)]

    m = M()
    assert isinstance(m.layers, nn.ModuleList)
    assert [n for n, _ in m.named_parameters()] == ["layers.0.weight", "layers.0.bias",
                                                    "layers.1.weight", "layers.1.bias"]


def test_assigning_before_super_init_is_a_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first"):
        Forgetful()


def test_registration_errors():
    m = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="weight is a parameter: assign a Parameter or None"):
        m.weight = tg.ones(3, 2)
    with pytest.raises(TypeError, match="must be a Parameter or None, got Tensor"):
        m.register_parameter("extra", tg.ones(1))
    with pytest.raises(ValueError, match="without '.'"):
        m.register_buffer("a.b", tg.ones(1))
    with pytest.raises(ValueError, match="already has an attribute 'in_features'"):
        m.register_buffer("in_features", tg.ones(1))
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        m.nope
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        nn.Module()(tg.ones(1))


def test_buffers_can_be_replaced_and_non_persistent_ones_stay_out_of_the_state_dict():
    m = nn.Module()
    m.register_buffer("running", np.zeros(2))  # an array is wrapped
    m.register_buffer("cache", tg.ones(2), persistent=False)
    m.running = tg.ones(2)
    assert m.running.numpy().tolist() == [1.0, 1.0]
    assert list(m.state_dict()) == ["running"]
    assert len(list(m.buffers())) == 2 and list(m.parameters()) == []


def test_load_state_dict_copies_in_place_keeping_identity_and_dtype():
    src, dst = Net(), Net()
    weight_before = dst.head.weight
    state = {k: v.numpy().astype(np.float64) for k, v in src.state_dict().items()}  # arrays
    result = dst.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.head.weight is weight_before and dst.head.weight.dtype == np.float32
    for (name, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_load_state_dict_names_missing_unexpected_and_wrongly_shaped_keys():
    net = Net()
    good = {k: v.numpy() for k, v in Net().state_dict().items()}
    before = net.head.weight.numpy()

    missing = dict(good)
    del missing["blocks.1.fc.bias"]
    with pytest.raises(RuntimeError, match=r"missing keys: 'blocks\.1\.fc\.bias'"):
        net.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys: 'extra\.weight'"):
        net.load_state_dict({**good, "extra.weight": np.ones(2)})
    with pytest.raises(nn.StateDictError,
                       match=r"'head\.weight': the state_dict has shape \(3, 2\), the model "
                             r"\(2, 3\)"):
        net.load_state_dict({**good, "head.weight": np.ones((3, 2), np.float32)})
    with pytest.raises(TypeError, match="the value of 'scale' is a list"):
        net.load_state_dict({**good, "scale": [1.0]})
    np.testing.assert_array_equal(net.head.weight.numpy(), before)  # failed loads change nothing

    result = net.load_state_dict({**missing, "extra": np.ones(1)}, strict=False)
    assert result.missing_keys == ["blocks.1.fc.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(net.head.weight.numpy(), good["head.weight"])
    # a wrong shape is an error even when not strict
    with pytest.raises(RuntimeError, match="wrongly shaped keys"):
        net.load_state_dict({"scale": np.ones(3, np.float32)}, strict=False)


# ----------------------------------------------------------------------------------------------------
# Modes, devices, dtypes

def test_train_and_eval_propagate_to_every_descendant():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.blocks.train()
    assert net.blocks[1].drop.training and not net.training
    net.train()
    assert all(m.training for m in net.modules())


def test_dropout_in_training_and_in_eval():
    drop = nn.Dropout(p=0.25)
    x = tg.ones(100, 100)
    y = drop(x).numpy()
    kept = y != 0
    assert 0.2 < 1 - kept.mean() < 0.3
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # survivors are scaled by 1/(1-p)
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    assert (nn.Dropout(0.0)(x).numpy() == 1).all()


def test_to_double_and_float_keep_the_parameter_objects():
    net = Net()
    params = list(net.parameters())
    net.head.weight.grad = tg.ones(2, 3)
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.head.weight.grad.dtype == np.float64
    assert net.blocks[0].mask.dtype == np.float64
    net.to(dtype=np.float32)
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.to("cpu")
    assert all(p.device == "cpu" for p in net.parameters())


def test_to_keeps_integer_buffers_and_refuses_integer_dtypes():
    m = nn.Module()
    m.register_buffer("idx", tg.tensor(np.arange(3)))
    m.double()
    assert m.idx.dtype == np.int64
    with pytest.raises(TypeError, match="only floating-point dtypes"):
        m.to(dtype=np.int32)
    with pytest.raises(ValueError, match="unknown device"):
        m.to(device="tpu")


@pytest.mark.gpu
def test_to_cuda_and_back():
    net = Net()
    x_idx = tg.tensor(np.array([[1, 2]]))
    expected = net.eval()(x_idx).numpy()
    net.to("cuda")
    assert all(p.device == "cuda" for p in net.parameters())
    np.testing.assert_allclose(net(x_idx.to("cuda")).numpy(), expected, rtol=1e-5, atol=1e-6)
    net.cpu()
    assert all(p.device == "cpu" for p in net.parameters())


def test_zero_grad_and_requires_grad_():
    layer = nn.Linear(2, 2)
    layer(tg.ones(1, 2)).sum().backward()
    assert layer.weight.grad is not None
    layer.zero_grad(set_to_none=False)
    assert (layer.weight.grad.numpy() == 0).all()
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None
    layer.requires_grad_(False)
    assert not any(p.requires_grad for p in layer.parameters())


# ----------------------------------------------------------------------------------------------------
# repr

def test_repr_is_nested_like_pytorchs():
    model = nn.Sequential(nn.Linear(2, 8), nn.GELU(approximate="tanh"), nn.Dropout(0.1),
                          nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 1, bias=False)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=8, bias=True)\n"
        "  (1): GELU(approximate='tanh')\n"
        "  (2): Dropout(p=0.1)\n"
        "  (3): Sequential(\n"
        "    (0): LayerNorm((8,), eps=1e-05, elementwise_affine=True)\n"
        "    (1): Linear(in_features=8, out_features=1, bias=False)\n"
        "  )\n"
        ")")
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Embedding(10, 3)) == "Embedding(10, 3)"
    assert repr(nn.Parameter(tg.zeros(2))).startswith("Parameter containing:\ntensor(")


# ----------------------------------------------------------------------------------------------------
# Containers

def test_sequential_chains_and_indexes():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = tg.randn(5, 3)
    by_hand = model[2](model[1](model[0](x)))
    np.testing.assert_array_equal(model(x).numpy(), by_hand.numpy())
    assert len(model) == 3 and list(model)[1] is model[1] and model[-1] is model[2]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    model.append(nn.Tanh())
    assert len(model) == 4 and [n for n, _ in model.named_children()][-1] == "3"
    with pytest.raises(IndexError, match="index 4 is out of range for 4 modules"):
        model[4]
    with pytest.raises(TypeError, match="argument 1 is a int, expected a Module"):
        nn.Sequential(nn.ReLU(), 3)


def test_module_list_operations():
    ml = nn.ModuleList()
    ml.append(nn.Linear(1, 1))
    ml.extend([nn.ReLU(), nn.Linear(1, 2)])
    assert len(ml) == 3 and isinstance(ml[1], nn.ReLU) and ml[-1].out_features == 2
    assert [type(m).__name__ for m in ml] == ["Linear", "ReLU", "Linear"]
    ml.insert(0, nn.Tanh())
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2", "3"]
    assert isinstance(ml[0], nn.Tanh)
    ml[0] = nn.Sigmoid()
    assert isinstance(ml[0], nn.Sigmoid)
    assert len(ml[1:]) == 3
    assert [n for n, _ in ml.named_parameters()] == ["1.weight", "1.bias", "3.weight", "3.bias"]
    with pytest.raises(IndexError):
        ml[10]
    with pytest.raises(TypeError, match="every item must be a Module, got int"):
        ml.extend([1])


# ----------------------------------------------------------------------------------------------------
# The other layers

def test_activation_modules_match_their_formulas():
    x_np = np.linspace(-3, 3, 13)
    x = tg.tensor(x_np)
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), np.where(x_np > 0, x_np, 0.0))
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(x).numpy(), np.where(x_np > 0, x_np, 0.2 * x_np))
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x_np), rtol=1e-12)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x_np)), rtol=1e-12)
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(nn.GELU()(x).numpy(), 0.5 * x_np * (1 + erf(x_np / math.sqrt(2))),
                               rtol=1e-7, atol=1e-12)
    assert nn.Identity()(x) is x


def test_layer_norm_module_matches_numpy():
    ln = nn.LayerNorm(4).double()
    ln.weight.data[...] = [1.0, 2.0, 3.0, 4.0]
    ln.bias.data[...] = 0.5
    x_np = np.random.default_rng(0).standard_normal((3, 4))
    mu = x_np.mean(-1, keepdims=True)
    var = ((x_np - mu) ** 2).mean(-1, keepdims=True)
    expected = (x_np - mu) / np.sqrt(var + 1e-5) * np.array([1.0, 2.0, 3.0, 4.0]) + 0.5
    np.testing.assert_allclose(ln(tg.tensor(x_np)).numpy(), expected, rtol=1e-10)


def test_embedding_module_looks_up_rows():
    emb = nn.Embedding(5, 2)
    idx = np.array([[0, 4], [2, 2]])
    np.testing.assert_array_equal(emb(tg.tensor(idx)).numpy(), emb.weight.numpy()[idx])


def test_flatten():
    x = tg.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0)(x).shape == (24,)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    np.testing.assert_array_equal(nn.Flatten()(x).numpy(), x.numpy().reshape(2, 12))
    with pytest.raises(ValueError, match="do not select axes of an input of shape"):
        nn.Flatten(3)(x)


@pytest.mark.parametrize("make,exc,match", [
    (lambda: nn.Linear(0, 3), ValueError, "in_features must be positive, got 0"),
    (lambda: nn.Linear(3, -1), ValueError, "out_features must be positive, got -1"),
    (lambda: nn.Linear(2.5, 3), TypeError, "in_features must be an int, got float"),
    (lambda: nn.Linear(2, 3, dtype=np.int32), TypeError, "floating-point dtype, got int32"),
    (lambda: nn.Embedding(0, 3), ValueError, "num_embeddings must be positive"),
    (lambda: nn.Embedding(3, True), TypeError, "embedding_dim must be an int"),
    (lambda: nn.LayerNorm(4, eps=0.0), ValueError, "eps must be positive"),
    (lambda: nn.LayerNorm(()), ValueError, "at least one axis"),
    (lambda: nn.Dropout(1.5), ValueError, r"p must be a probability in \[0, 1\], got 1.5"),
    (lambda: nn.GELU("fast"), ValueError, "approximate must be 'none' or 'tanh', got 'fast'"),
])
def test_constructor_arguments_are_validated(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_parameter_dtypes_and_sharing():
    p = nn.Parameter([1.0, 2.0])
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.dtype == np.float32
    assert nn.Parameter().dtype == np.float32 and nn.Parameter().shape == (0,)
    arr = np.zeros(3)
    q = nn.Parameter(arr)
    q.data += 1  # a Parameter owns a copy of an array ...
    assert arr.sum() == 0 and q.dtype == np.float64
    t = tg.zeros(3)
    r = nn.Parameter(t)
    r.data += 1  # ... and shares a Tensor's data, as PyTorch does
    assert t.numpy().sum() == 3
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        nn.Parameter(np.arange(3))


# ----------------------------------------------------------------------------------------------------
# clip_grad_norm_

def set_grads(grads):
    params = [tg.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = tg.tensor(g.copy())
    return params


@given(seed=st.integers(0, 2 ** 16), norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]),
       max_norm=st.sampled_from([0.1, 1.0, 100.0]))
def test_clip_grad_norm_matches_numpy(seed, norm_type, max_norm):
    r = np.random.default_rng(seed)
    grads = [r.standard_normal(s) for s in [(3, 2), (4,), ()]]
    params = set_grads(grads)
    total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    flat = np.concatenate([g.ravel() for g in grads])
    if norm_type == math.inf:
        expected_total = np.abs(flat).max()
    else:
        expected_total = sum(abs(v) ** norm_type for v in flat) ** (1 / norm_type)
    assert isinstance(total, tg.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), expected_total, rtol=1e-10)
    scale = min(1.0, max_norm / (expected_total + 1e-6))
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-10)


def test_clip_grad_norm_keeps_float32_and_skips_missing_grads():
    params = set_grads([np.full(4, 3.0, np.float32)])
    params.append(tg.tensor(np.ones(2, np.float32), requires_grad=True))  # no grad
    total = nn.utils.clip_grad_norm_(params, 1.0)
    assert total.dtype == np.float32 and total.item() == pytest.approx(6.0)
    assert params[0].grad.dtype == np.float32
    np.testing.assert_allclose(params[0].grad.numpy(), np.full(4, 0.5), rtol=1e-5)
    assert params[1].grad is None
    assert nn.utils.clip_grad_norm_([params[1]], 1.0).item() == 0.0
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        nn.utils.clip_grad_norm_(params, -1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=0)


@pytest.mark.torch
def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(3)
    grads = [r.standard_normal(s) * 5 for s in [(3, 4), (5,)]]
    params = set_grads(grads)
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.tensor(g)
    ours = nn.utils.clip_grad_norm_(params, 2.0)
    theirs = torch.nn.utils.clip_grad_norm_(tparams, 2.0)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


@pytest.mark.torch
def test_parameter_and_state_dict_names_match_torch():
    torch = pytest.importorskip("torch")

    def build(lib):
        class Inner(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.ln = lib.nn.LayerNorm(3)
                self.register_buffer("mask", lib.ones(3))
                self.fc = lib.nn.Linear(3, 3)

        class Outer(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = lib.nn.Embedding(5, 3)
                self.h = lib.nn.ModuleList([Inner(), Inner()])
                self.gain = lib.nn.Parameter(lib.ones(1))
                self.head = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.ReLU())
        return Outer()

    ours, theirs = build(tg), build(torch)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    # and torch's weights load into ours (names and shapes agree)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.h[1].fc.weight.numpy(),
                                  theirs.h[1].fc.weight.detach().numpy())


@pytest.mark.gpu
def test_clip_grad_norm_on_cuda_matches_cpu():
    r = np.random.default_rng(5)
    grads = [r.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,)]]
    cpu = set_grads(grads)
    gpu = [tg.tensor(np.zeros_like(g), requires_grad=True, device="cuda") for g in grads]
    for p, g in zip(gpu, grads):
        p.grad = tg.tensor(g, device="cuda")
    total_cpu = nn.utils.clip_grad_norm_(cpu, 1.0)
    total_gpu = nn.utils.clip_grad_norm_(gpu, 1.0)
    assert total_gpu.device == "cuda" and total_gpu.dtype == np.float32
    assert total_gpu.item() == pytest.approx(total_cpu.item(), rel=1e-5)
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-5)


def test_deepcopy_gives_an_independent_module():
    # MoCo's momentum encoder and fine-tuning start from a copy of a model.
    import copy
    net = Net()
    twin = copy.deepcopy(net)
    assert [n for n, _ in twin.named_parameters()] == NET_PARAMS
    assert all(a is not b and np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(net.parameters(), twin.parameters()))
    twin.head.weight.data += 1.0
    assert not np.array_equal(twin.head.weight.numpy(), net.head.weight.numpy())
    assert isinstance(twin.head.weight, nn.Parameter) and twin.head.weight.requires_grad


@pytest.mark.parametrize("bad", ["tpu", "cuda:1", "cpu:0x"])
def test_tensor_and_module_to_refuse_the_same_device_strings(bad):
    # one parser (backend.parse_to_args) serves both, so the two cannot drift apart again
    with pytest.raises(ValueError, match=f"unknown device '{bad}'"):
        tg.zeros(2).to(bad)
    with pytest.raises(ValueError, match=f"unknown device '{bad}'"):
        nn.Linear(2, 2).to(bad)


def test_tensor_and_module_to_read_dtype_strings_and_device_strings_alike():
    m = nn.Linear(2, 2).to("float64")
    assert m.weight.dtype == np.float64
    assert tg.zeros(2).to("float64").dtype == np.float64
    assert m.to("CPU").weight.device == "cpu" and tg.zeros(2).to("CPU").device == "cpu"
