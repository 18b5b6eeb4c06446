"""tinygrad_pt: a small reverse-mode autograd framework over NumPy and CuPy.

    import tinygrad_pt as tg
    x = tg.tensor(np_array, requires_grad=True)
    loss = (x @ w + b).relu().sum(); loss.backward()
"""
from . import ops  # installs Tensor's operator methods (see tensor.py)
from . import nn, optim, testing  # noqa: F401  (tg.nn, tg.optim, tg.testing.gradcheck)
from .autograd import (AnomalyError, Function, detect_anomaly, enable_grad, is_grad_enabled,
                       no_grad, set_grad_enabled)
from .backend import cuda_available, manual_seed
from .creation import (arange, eye, full, ones, ones_like, rand, randint, randn, tensor, zeros,
                       zeros_like)
from .kernels.registry import set_kernels
from .profiler import profile
from .ops import *  # noqa: F401,F403  (tg.exp, tg.maximum, tg.concatenate, ...)
from .serialization import load, save
from .tensor import Tensor
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

# The upper floors load on first use (tg.models.GPT, tg.viz.to_dot, tg.data.load_digits): they are
# not needed to build and differentiate graphs, and `import tinygrad_pt` stays fast.
_LAZY_SUBMODULES = ("models", "viz", "data", "train")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'tinygrad_pt' has no attribute {name!r}")
