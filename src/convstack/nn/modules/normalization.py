"""Normalisation layers: ``BatchNorm1d/2d/3d`` (Ioffe & Szegedy 2015) and ``LocalResponseNorm`` (AlexNet).

The batch-norm layers keep PyTorch's parameter and buffer names (``weight``, ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``) so that state dicts exchange
with PyTorch models unchanged.
"""

from __future__ import annotations

import numpy

from convstack.nn import functional as F
from convstack.nn.functional.normalization import batch_norm_relu
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.activation import ReLU
from convstack.nn.modules.module import Module
from convstack.nn.modules.parameter import Parameter
from convstack.tensor import Tensor


class _NormBase(Configurable, Module):
    """Per-channel normalisation state, as PyTorch's ``_NormBase``: ``weight`` (gamma, ones) and ``bias``
    (beta, zeros) of shape (C,) when ``affine``, and the running statistics when ``track_running_stats``.

    Shared by batch norm (here) and instance norm (``per_sample_normalization``), which differ in
    which statistics normalise the input and in their defaults.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None, *, bias: bool = True):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.num_features = check.positive_int("num_features", num_features)
        self.eps = check.number("eps", eps, 0.0, expected="a non-negative number")
        self.momentum = None if momentum is None else check.number(
            "momentum", momentum, 0.0, 1.0, expected="a number in [0, 1] or None"
        )
        self.affine = check.boolean("affine", affine)
        self.track_running_stats = check.boolean("track_running_stats", track_running_stats)
        check.boolean("bias", bias)
        dtype = check.float_dtype(dtype)
        check.done()
        if affine:
            self.weight = Parameter(numpy.ones(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = Parameter(numpy.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(numpy.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(numpy.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(numpy.array(0, dtype=numpy.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def get_config(self) -> dict:
        dtype = self.weight.dtype if self.affine else (self.running_mean.dtype if self.track_running_stats else None)
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum, "affine": self.affine,
                "track_running_stats": self.track_running_stats, "dtype": None if dtype is None else str(dtype),
                "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """Batch statistics in training (the running ones move towards them:
    ``running = (1 - momentum) * running + momentum * batch``; with ``momentum=None`` a
    cumulative average over the ``num_batches_tracked`` batches seen); the running statistics
    in eval mode. Without ``track_running_stats`` the batch statistics are used in both modes.
    """

    _ranks: tuple  # accepted input ranks
    _layout: str

    def _check_input(self, input) -> None:
        if input.ndim not in self._ranks:
            expected = " or ".join(f"{r}-D" for r in self._ranks)
            raise ValueError(f"{type(self).__name__}: expected a {expected} input {self._layout}, received a "
                             f"{input.ndim}-D input of shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected an input with {self.num_features} channels "
                             f"(num_features), received shape {tuple(input.shape)}")

    def forward(self, input):
        self._check_input(input)
        return self._normalise(input, relu=False)

    def fused_forward(self, following):
        """With a ``ReLU`` after it: this layer and the ReLU as one op (see ``fusion``); else None.

        Only the two classes' own ``forward`` fuse: a subclass that overrides either runs as written.
        """
        if type(following) is ReLU and type(self).forward is _BatchNorm.forward:
            return self._forward_relu
        return None

    def _forward_relu(self, input):
        self._checked(input)
        return self._normalise(input, relu=True)

    def _normalise(self, input, relu):
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative moving average, as PyTorch
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch_stats = self.training or self.running_mean is None
        # Running statistics are updated only in training with track_running_stats, read only in eval.
        keep = not self.training or self.track_running_stats
        normalise = batch_norm_relu if relu else F.batch_norm
        return normalise(input, self.running_mean if keep else None, self.running_var if keep else None,
                         self.weight, self.bias, use_batch_stats, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` features or ``(N, C, L)`` sequences.

    Args:
        num_features: C.
        eps: added to the variance under the square root.
        momentum: weight of each batch in the running statistics; None: cumulative average.
        affine: learn ``weight`` (gamma) and ``bias`` (beta).
        track_running_stats: keep running statistics for eval mode.
        dtype: of the parameters and running statistics (default float32).
        bias: (keyword only, as PyTorch 2.13) with ``affine``, also learn ``bias``.

    Shape:
        Input (N, C) or (N, C, L), output the same.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.BatchNorm1d(4)(cs.randn(8, 4)).shape
        (8, 4)
    """

    _ranks, _layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)`` images, per channel; arguments as ``BatchNorm1d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.BatchNorm2d(3)(cs.randn(2, 3, 4, 4)).shape
        (2, 3, 4, 4)
    """

    _ranks, _layout = (4,), "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over ``(N, C, D, H, W)`` volumes, per channel; arguments as ``BatchNorm1d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.BatchNorm3d(2)(cs.randn(2, 2, 3, 3, 3)).shape
        (2, 2, 3, 3, 3)
    """

    _ranks, _layout = (5,), "(N, C, D, H, W)"


class LocalResponseNorm(Configurable, Module):
    """Local response normalisation across channels (Krizhevsky et al. 2012), as ``torch.nn.LocalResponseNorm``.

    ``b_c = a_c / (k + alpha / size * sum_{c'} a_{c'}^2) ** beta`` over the ``size`` channels around c.
    AlexNet used ``size=5, alpha=1e-4, beta=0.75, k=2`` (with alpha not divided by size).

    Shape:
        Input (N, C, *) with at least one trailing dimension, output the same.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.LocalResponseNorm(5, k=2.0)(cs.randn(1, 8, 4, 4)).shape
        (1, 8, 4, 4)
    """

    _config_keys = ("size", "alpha", "beta", "k")

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        check = ArgumentCheck("LocalResponseNorm")
        self.size = check.positive_int("size", size)
        self.alpha = check.number("alpha", alpha)
        self.beta = check.number("beta", beta)
        self.k = check.number("k", k)
        check.done()

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
