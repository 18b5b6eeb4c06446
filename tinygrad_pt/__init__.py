"""tinygrad_pt: a small reverse-mode autograd framework over NumPy and CuPy.

    import tinygrad_pt as tg
    x = tg.tensor(np_array, requires_grad=True)
    loss = (x @ w + b).relu().sum(); loss.backward()
"""
from .memory import keep_freed_memory as _keep_freed_memory

_keep_freed_memory()  # glibc keeps freed arrays' pages for the next step (see memory.py)

from . import ops  # noqa: E402  (installs Tensor's operator methods, see tensor.py)
from . import nn, optim, testing  # noqa: F401  (tg.nn, tg.optim, tg.testing.gradcheck)
from . import distributed  # noqa: F401  (tg.distributed.init(), DataParallel; see distributed/)
from .autograd import (AnomalyError, Function, detect_anomaly, enable_grad, is_grad_enabled,
                       no_grad, set_grad_enabled)
from .backend import cuda_available, manual_seed
from .creation import (arange, eye, from_numpy, full, full_like, ones, ones_like, rand, rand_like,
                       randint, randn, randn_like, randperm, tensor, zeros, zeros_like)
from .kernels.registry import set_kernels
from .profiler import profile
from .random import Generator, get_rng_state, initial_seed, set_rng_state
from .ops import *  # noqa: F401,F403  (tg.exp, tg.maximum, tg.concatenate, ...)
from .serialization import load, save
from .tensor import Tensor
from .threads import get_num_threads, set_num_threads
# PyTorch's dtype names (tg.float32, tg.long, ...). Last: tg.float, tg.int and tg.bool shadow the
# builtins from here on in this file, which uses none of them.
from .dtypes import *  # noqa: F401,F403,E402

__version__ = "0.1.0"

# The upper floors load on first use (tg.models.GPT, tg.viz.to_dot, tg.data.load_digits): they are
# not needed to build and differentiate graphs, and `import tinygrad_pt` stays fast.
_LAZY_SUBMODULES = ("models", "viz", "data", "train")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'tinygrad_pt' has no attribute {name!r}")
