"""In-place ops (add_, mul_, copy_, lerp_, ...) and the version counter that makes a backward over
overwritten values an error instead of a wrong gradient (PyTorch's "modified by an inplace
operation")."""
import numpy as np
import pytest

import tinygrad_pt as tg
import tinygrad_pt.nn as nn

MODIFIED = r"was modified by an in-place operation after the forward"


# ----------------------------------------------------------------------------------------------------
# The version check: the three ways a saved array gets overwritten

def test_an_optimizer_step_between_two_backwards_is_refused():
    # The case: without the check the second backward gave -2 from the stepped weights.
    w = nn.Parameter(tg.ones(2))
    opt = tg.optim.SGD([w], lr=1.0)
    y = (w * w).sum()
    y.backward(retain_graph=True)
    opt.step()
    opt.zero_grad()
    with pytest.raises(RuntimeError, match=r"backward through Mul: its input 0 \(\(2,\) float32\) "
                                           + MODIFIED + r" \(now at version 1, saved at version 0\)"):
        y.backward()


def test_load_state_dict_under_a_live_graph_is_refused():
    net = nn.Linear(3, 2)
    loss = (net(tg.ones(4, 3)) ** 2).sum()
    net.load_state_dict({k: v.numpy() * 2 for k, v in net.state_dict().items()})
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_a_write_through_detach_is_seen_by_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()  # Exp saves its output
    y.detach().zero_()  # the detached tensor shares y's storage and its version counter
    with pytest.raises(RuntimeError, match=r"backward through Exp: its output " + r".*" + MODIFIED):
        y.sum().backward()


def test_an_op_that_saved_nothing_may_go_on():
    # Add's backward reads no input, so overwriting one is harmless (PyTorch agrees).
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0])
    y = (a + b).sum()
    b.add_(10.0)
    y.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0])


def test_versions_count_writes_and_survive_a_fresh_forward():
    w = nn.Parameter(tg.ones(2))
    assert w._version == 0
    with tg.no_grad():
        w.mul_(2).add_(1)
    assert w._version == 2
    (w * w).sum().backward()  # a forward after the writes sees the new values: no error
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 6.0])


# ----------------------------------------------------------------------------------------------------
# The ops' meaning

def test_the_ops_compute_in_place_and_return_the_tensor():
    x = tg.tensor([1.0, 2.0, 3.0])
    storage = x.data
    assert x.add_(tg.tensor([1.0, 1.0, 1.0]), alpha=2) is x
    np.testing.assert_array_equal(x.numpy(), [3.0, 4.0, 5.0])
    x.sub_(1.0).mul_(2.0).div_(4.0)
    np.testing.assert_array_equal(x.numpy(), [1.0, 1.5, 2.0])
    x.lerp_(tg.tensor([3.0, 3.5, 4.0]), 0.5)
    np.testing.assert_array_equal(x.numpy(), [2.0, 2.5, 3.0])
    x.copy_(np.array([7.0, 8.0, 9.0]))  # float64 source, cast into float32
    np.testing.assert_array_equal(x.numpy(), [7.0, 8.0, 9.0])
    assert x.dtype == np.float32
    x.fill_(5)
    np.testing.assert_array_equal(x.numpy(), [5.0, 5.0, 5.0])
    x.zero_()
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.0, 0.0])
    assert x.data is storage  # never a new array
    assert x._version == 8


def test_operands_broadcast_to_the_tensor_not_the_tensor_to_them():
    x = tg.zeros(2, 3)
    x.add_(tg.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(ValueError, match=r"add_: an operand of shape \(2, 3\) does not broadcast "
                                         r"to the tensor's shape \(3,\)"):
        tg.zeros(3).add_(tg.ones(2, 3))


def test_a_result_of_another_kind_is_refused():
    i = tg.tensor([1, 2])
    with pytest.raises(TypeError, match=r"add_: a float operand cannot be stored in the tensor's "
                                        r"dtype int64"):
        i.add_(0.5)
    with pytest.raises(TypeError, match=r"mul_: the result has dtype float\d+, which cannot be "
                                        r"stored in the tensor's dtype int64"):
        i.mul_(tg.tensor([1.5, 2.0]))
    with pytest.raises(TypeError, match=r"div_: true division of a tensor of dtype int64"):
        i.div_(2)
    i.add_(3)
    np.testing.assert_array_equal(i.numpy(), [4, 5])


def test_no_graph_is_recorded_so_gradient_mode_writes_are_refused():
    w = nn.Parameter(tg.ones(2))
    with pytest.raises(RuntimeError, match=r"add_: in-place write to a leaf tensor that requires "
                                           r"grad while gradients are recorded"):
        w.add_(1.0)
    h = w * 2
    with pytest.raises(RuntimeError, match=r"mul_: in-place write to a tensor that is part of a "
                                           r"graph"):
        h.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"copy_: the operand requires grad"):
        tg.zeros(2).copy_(w)
    with tg.no_grad():
        w.add_(1.0)
    np.testing.assert_array_equal(w.numpy(), [2.0, 2.0])


def test_fill_takes_a_number_or_a_one_element_tensor():
    x = tg.zeros(2)
    x.fill_(tg.tensor(3.0))
    np.testing.assert_array_equal(x.numpy(), [3.0, 3.0])
    with pytest.raises(ValueError, match=r"fill_: expected a number or a one-element tensor"):
        x.fill_(tg.ones(2))
    with pytest.raises(TypeError, match=r"fill_: expected a number, got str"):
        x.fill_("a")


def test_clone_copies_and_passes_the_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.data is not x.data and y.requires_grad
    (y * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_the_momentum_update_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    k, q = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    m = 0.99
    ours = tg.tensor(k.copy())
    with tg.no_grad():
        ours.mul_(m).add_(tg.tensor(q), alpha=1 - m)
        ours.lerp_(tg.tensor(q), 0.25)
    theirs = torch.tensor(k.copy())
    with torch.no_grad():
        theirs.mul_(m).add_(torch.tensor(q), alpha=1 - m)
        theirs.lerp_(torch.tensor(q), 0.25)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)
