"""When a Numba kernel falls back to the reference, registry.which() says so and why, and a warning
says so once per reason (kernels/registry.py, kernels/cpu/_common.fallback).

Forced here: a kernel that Numba cannot compile (monkeypatched into kernels/cpu/gelu.py), and a
dtype the CPU kernels do not take (float16). The import failure is in test_kernels_reference.py.
"""
import warnings
from collections import Counter

import numba
import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt.kernels import reference as R
from tinygrad_pt.kernels import registry
from tinygrad_pt.kernels.cpu import _common
from tinygrad_pt.kernels.cpu import gelu as nb_gelu


@numba.njit
def _does_not_compile(x, y, k):
    y[0] = x.no_such_attribute  # a typing error, raised when Numba compiles on the first call


@pytest.fixture
def fresh(monkeypatch):
    """Fast kernels, no warning given yet in this process, no hand-back counted yet."""
    saved = registry.kernel_settings()
    monkeypatch.setattr(registry, "_warned", set())
    monkeypatch.setattr(_common, "fallback_counts", Counter())
    tg.set_kernels("fast")
    yield
    registry.set_kernels(**saved)


def test_a_kernel_that_does_not_compile_falls_back_and_which_says_why(fresh, monkeypatch):
    monkeypatch.setattr(nb_gelu, "_gelu_tanh_fwd_flat", _does_not_compile)
    x = np.linspace(-3.0, 3.0, 11)
    kernels = registry.kernels_for("gelu", np)
    assert registry.which("gelu") == "numba"
    with pytest.warns(RuntimeWarning, match=r"numba gelu_fwd failed to compile: TypingError.*"
                                            r"'gelu' runs the reference on cpu instead") as caught:
        y = kernels.gelu_fwd(x, "tanh")
    assert len(caught) == 1
    np.testing.assert_array_equal(y, R.gelu_fwd(x, "tanh"))
    assert registry.which("gelu").startswith("reference (numba gelu_fwd failed to compile: "
                                             "TypingError")
    # The family is on the reference now: later calls and the op's backward no longer try.
    assert registry.kernels_for("gelu", np) is R
    assert kernels.gelu_bwd is R.gelu_bwd
    # After a settings change it is tried again, fails again, and says so in which() only.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.set_kernels("fast")
        np.testing.assert_array_equal(registry.kernels_for("gelu", np).gelu_fwd(x, "tanh"), y)
    assert registry.which("gelu").startswith("reference (numba gelu_fwd failed to compile")


def test_a_kernel_asked_for_by_name_that_does_not_compile_is_an_error(fresh, monkeypatch):
    monkeypatch.setattr(nb_gelu, "_gelu_tanh_fwd_flat", _does_not_compile)
    tg.set_kernels(gelu="numba")
    with pytest.raises(RuntimeError, match=r"'numba' of 'gelu' was asked for but gelu_fwd failed "
                                           r"to compile: TypingError"):
        registry.kernels_for("gelu", np).gelu_fwd(np.ones(3), "tanh")


def test_through_the_op_a_compile_failure_still_gives_the_right_gradient(fresh, monkeypatch):
    monkeypatch.setattr(nb_gelu, "_gelu_tanh_fwd_flat", _does_not_compile)
    x = tg.tensor(np.linspace(-2.0, 2.0, 5), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="failed to compile"):
        tg.nn.functional.gelu(x, approximate="tanh").sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), R.gelu_bwd(np.ones(5), x.numpy(), "tanh"),
                               rtol=1e-12)
    assert registry.which("gelu").startswith("reference (")


def test_calls_handed_to_the_reference_show_in_which_and_warn_once_per_reason(fresh):
    softmax = registry.kernels_for("softmax", np)
    x16 = np.linspace(-2, 2, 12, dtype=np.float16).reshape(3, 4)
    with pytest.warns(RuntimeWarning, match=r"numba softmax_fwd handed a call to the reference "
                                            r"\(dtype float16\)"):
        softmax.softmax_fwd(x16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same reason: counted, not warned again
        softmax.softmax_fwd(x16)
    assert registry.which("softmax") == ("numba (2 calls ran the reference: softmax_fwd: dtype "
                                         "float16 (2))")
    softmax.softmax_fwd(np.ones((3, 4), np.float32))  # taken by the kernel: nothing added
    assert registry.which("softmax").startswith("numba (2 calls")
    assert registry.which("layer_norm") == "numba"  # another family: untouched
    tg.set_kernels("fast")  # which() reports the hand-backs since the settings last changed
    assert registry.which("softmax") == "numba"
