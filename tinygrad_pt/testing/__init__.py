"""Tools for testing ops, public so that users can check their own Functions.

- ``gradcheck(fn, *inputs, eps, atol, rtol)``: analytic vs finite-difference gradients (float64).
- ``gradgradcheck(fn, inputs, grad_outputs, eps, atol, rtol)``: the same for second derivatives.
- ``tinygrad_pt.testing.strategies``: hypothesis strategies for arrays and shapes (needs the
  ``dev`` extra). It is imported on first use (``tg.testing.strategies`` or an explicit import),
  so that ``import tinygrad_pt`` never needs hypothesis.
"""
import importlib

from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError", "strategies"]


def __getattr__(name):
    if name == "strategies":  # needs hypothesis: imported on first use
        return importlib.import_module(f"{__name__}.strategies")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
