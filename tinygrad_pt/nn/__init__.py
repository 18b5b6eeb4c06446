"""Neural-network building blocks: Module, Parameter, layers, init, utils, functional.

    import tinygrad_pt.nn as nn
    import tinygrad_pt.nn.functional as F
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
"""
from . import functional, init, utils  # noqa: F401  (nn.functional, nn.init, nn.utils)
from .containers import ModuleList, Sequential
from .layers import (GELU, Dropout, Embedding, Flatten, Identity, LayerNorm, LeakyReLU, Linear,
                     ReLU, Sigmoid, Tanh)
from .module import Module, Parameter
from .state_dict import StateDictError

__all__ = ["Module", "Parameter", "ModuleList", "Sequential", "StateDictError", "Linear",
           "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "LeakyReLU", "Tanh", "Sigmoid",
           "Identity", "Flatten", "functional", "init", "utils"]
