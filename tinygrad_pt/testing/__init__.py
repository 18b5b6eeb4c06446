"""Tools for testing ops, public so that users can check their own Functions.

- ``gradcheck(fn, *inputs, eps, atol, rtol)``: analytic vs finite-difference gradients (float64).
- ``tinygrad_pt.testing.strategies``: hypothesis strategies for arrays and shapes (needs the
  ``dev`` extra; imported on demand so that ``import tinygrad_pt`` never needs hypothesis).
"""
from .gradcheck import GradcheckError, gradcheck

__all__ = ["gradcheck", "GradcheckError"]
