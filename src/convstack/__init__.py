"""convstack: a convolutional neural network framework written from first principles.

>>> import convstack as cs
>>> x = cs.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([[2., 4.],
        [6., 8.]])
"""

from convstack import backend
from convstack.anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from convstack.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from convstack.factory import (
    arange,
    empty,
    eye,
    from_numpy,
    full,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    zeros,
    zeros_like,
)
from convstack.functions import abs, argmax, cat, clamp, exp, flatten, log, matmul, mean, sqrt, stack, sum, where
from convstack.functions import (  # selection, sorting and running sums (ops/selection.py, ops/sorting.py)
    argsort,
    clip,
    cumsum,
    gather,
    index_select,
    masked_fill,
    scatter,
    scatter_add,
    sort,
    topk,
)
from convstack.random import default_generator, manual_seed
from convstack.tensor import Tensor, as_tensor, tensor
from convstack.threads import get_num_threads, set_num_threads
from convstack.nn.kernels.tiers import get_kernel_tier, kernel_tier, set_kernel_tier

# Sub-packages: convstack.nn, .optim, .data, .models, .train, .io (imported after the core they build on).
from convstack import nn, optim
from convstack.io.serialization import load, save  # torch.save / torch.load on the pickle-free checkpoint format

float32 = backend.numpy.float32
float64 = backend.numpy.float64
int64 = backend.numpy.int64

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "tensor",
    "as_tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_grad_enabled",
    "detect_anomaly",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "AnomalyError",
    "manual_seed",
    "default_generator",
    "backend",
    "zeros",
    "ones",
    "empty",
    "full",
    "zeros_like",
    "ones_like",
    "arange",
    "eye",
    "randn",
    "rand",
    "randint",
    "randperm",
    "from_numpy",
    "cat",
    "stack",
    "where",
    "exp",
    "log",
    "sqrt",
    "abs",
    "clamp",
    "sum",
    "mean",
    "flatten",
    "matmul",
    "argmax",
    "gather",
    "scatter",
    "scatter_add",
    "index_select",
    "masked_fill",
    "sort",
    "argsort",
    "topk",
    "cumsum",
    "clip",
    "save",
    "load",
    "float32",
    "float64",
    "int64",
    "nn",
    "optim",
    "set_num_threads",
    "get_num_threads",
    "set_kernel_tier",
    "get_kernel_tier",
    "kernel_tier",
]
