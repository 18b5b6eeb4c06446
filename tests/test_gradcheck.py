"""tg.testing.gradcheck: catches wrong backwards in both modes and says where and by how much."""
import re

import numpy as np
import pytest
from hypothesis import given

import tinygrad_pt as tg
from tinygrad_pt.autograd import Function
from tinygrad_pt.testing import GradcheckError, gradcheck
from tinygrad_pt.testing.strategies import arrays, shapes


class SquareOffByOne(Function):
    """y = x^2 with a backward that is wrong in exactly one element (index `bad`)."""

    def forward(self, x, bad):
        self.x, self.bad = x, bad
        return x * x

    def backward(self, grad):
        g = grad * 2 * self.x
        g = g.copy()
        g[self.bad] += 1.0
        return g


class ScaledBackward(Function):
    """y = 3x with a backward that returns 3.01 * grad: off by a third of a percent everywhere."""

    def forward(self, x):
        return x * 3

    def backward(self, grad):
        return grad * 3.01


def test_returns_true_for_correct_ops():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    assert gradcheck(lambda t: (t * t).exp().sum(axis=1), x) is True
    assert gradcheck(lambda a, b: a @ b, x, x.T, per_element=False) is True


def test_per_element_failure_names_index_and_both_values():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: SquareOffByOne.apply(t, bad=(1, 2)), x, seed=3)
    msg = str(info.value)
    assert "input 0 (shape (2, 3))" in msg and "worst element at index (1, 2)" in msg
    assert "eps=1e-06" in msg and "atol=1e-05" in msg and "rtol=0.001" in msg
    analytic = float(re.search(r"analytic (\S+),", msg).group(1))
    numeric = float(re.search(r"numeric (\S+) ", msg).group(1))
    # the upstream gradient u is drawn from the seed, so the numeric value is known exactly
    u = np.random.default_rng(3).standard_normal((2, 3))
    assert numeric == pytest.approx(u[1, 2] * 2 * x[1, 2], rel=1e-6)
    assert analytic == pytest.approx(numeric + 1.0, rel=1e-6)  # the planted error
    assert "1 of 6 element(s) outside tolerance" in msg


def test_random_direction_mode_catches_wrong_gradient():
    x = np.linspace(-1, 1, 30)
    with pytest.raises(GradcheckError, match=r"random direction 0 .*analytic .*numeric"):
        gradcheck(lambda t: SquareOffByOne.apply(t, bad=(7,)), x, per_element=False)
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: ScaledBackward.apply(t), np.ones(600))  # large: directions by default


def test_per_element_mode_catches_small_relative_error():
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda t: ScaledBackward.apply(t), np.ones(4) * 10, per_element=True)


def test_second_input_is_checked_and_named():
    class WrongSecond(Function):
        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, grad):
            return grad * self.b, grad * self.a * 2  # the second is wrong

    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2,\)\)"):
        gradcheck(lambda x, y: WrongSecond.apply(x, y), a, b)


def test_missing_gradient_counts_as_zero_and_fails():
    class Forgets(Function):
        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return None

    with pytest.raises(GradcheckError, match=r"analytic 0, numeric"):
        gradcheck(lambda t: Forgets.apply(t), np.array([1.0, 2.0]))


def test_nan_gradient_never_passes():
    class NaNBackward(Function):
        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return grad * np.nan

    with pytest.raises(GradcheckError, match=r"analytic nan"):
        gradcheck(lambda t: NaNBackward.apply(t), np.array([1.0, 2.0]))


def test_non_contiguous_input_stays_non_contiguous_and_is_perturbed():
    base = np.arange(1.0, 13.0).reshape(3, 4)
    for x in (base.T, base[:, ::2], np.asfortranarray(base), base.astype(np.float32)[::2, 1:]):
        before = x.copy()
        seen = []

        def f(t):
            seen.append(t.data.flags.c_contiguous)
            return (t * t).sum(axis=0)

        assert gradcheck(f, x)
        assert not any(seen)  # the op saw the input's layout, not a contiguous copy
        with pytest.raises(GradcheckError):
            gradcheck(lambda t: SquareOffByOne.apply(t, bad=(0, 1)), x)
        np.testing.assert_array_equal(x, before)  # the caller's array is untouched


def test_inputs_are_copies():
    x = np.array([1.0, 2.0])
    t = tg.tensor([3.0, 4.0], requires_grad=True)
    gradcheck(lambda a, b: a * b, x, t)
    np.testing.assert_array_equal(x, [1.0, 2.0])
    assert t.grad is None and t.numpy().tolist() == [3.0, 4.0]


def test_tensor_inputs_and_pass_through_arguments():
    x = tg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)  # copied to float64
    const = tg.tensor([3.0, 4.0])  # not checked
    assert gradcheck(lambda a, c, k: (a * c) ** k, x, const, 2)
    assert x.grad is None  # the caller's tensor is untouched


def test_zero_d_input_and_output():
    assert gradcheck(lambda t: (t * 3).exp(), np.array(0.5))


def test_float32_leak_is_reported():
    with pytest.raises(TypeError, match=r"fn returned dtype float32 for float64 inputs"):
        gradcheck(lambda t: t.to(dtype=np.float32) * 2, np.array([1.0]))


def test_usage_errors():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda t: t * 2, tg.tensor([1.0]))
    with pytest.raises(TypeError, match="fn must return a Tensor, got float"):
        gradcheck(lambda t: 1.0, np.array([1.0]))


@given(arrays(shapes(max_dims=3, max_side=4), min_value=-3.0, max_value=3.0))
def test_gradcheck_agrees_with_hand_derivative(x):
    # d/dx of sum(u * sin(x) * x) is u * (cos(x) x + sin(x)): gradcheck must accept it and
    # reject the same value with a sign flipped.
    class Right(Function):
        def forward(self, t):
            self.t = t
            return np.sin(t) * t

        def backward(self, grad):
            return grad * (np.cos(self.t) * self.t + np.sin(self.t))

    class Wrong(Right):
        def backward(self, grad):
            return grad * (np.cos(self.t) * self.t - np.sin(self.t))

    assert gradcheck(lambda t: Right.apply(t), x)
    if np.abs(np.sin(x)).max() > 1e-2:
        with pytest.raises(GradcheckError):
            gradcheck(lambda t: Wrong.apply(t), x)
