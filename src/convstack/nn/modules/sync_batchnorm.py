"""``SyncBatchNorm``: batch normalisation over the whole batch of every rank, as PyTorch's.

Its parameters and buffers are those of ``BatchNorm1d/2d/3d`` (same names), so its state
dict loads into a plain batch-norm model and back. ``SyncBatchNorm.convert_sync_batchnorm``
turns every batch-norm layer of a model into one, keeping its tensors.
"""

from __future__ import annotations

from convstack.distributed.group import default_group, is_initialized
from convstack.nn.functional.sync_batch_norm import SyncBatchNorm as SyncBatchNormFn
from convstack.nn.modules.normalization import _BatchNorm


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics span the batches of all ranks.

    In training, with a process group of several ranks, the mean and variance normalising
    the input (and updating the running statistics, identically on every rank) are those
    of the union of every rank's batch, and the input gradient flows through them to every
    rank: N ranks with batches of B compute what one process with ``BatchNorm`` computes on
    the N*B samples. In eval mode, or in a world of one, it is ``BatchNorm``.

    Args:
        num_features: C.
        eps, momentum, affine, track_running_stats, dtype, bias: as ``BatchNorm2d``.
        process_group: the ranks whose batches it spans (default: the default group,
            when ``init_process_group`` has run).

    Shape:
        Input (N, C, *) (any number of trailing dimensions), output the same.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.SyncBatchNorm(3)(cs.randn(4, 3, 5, 5)).shape   # no process group: a world of one
        (4, 3, 5, 5)
        >>> model = cs.nn.SyncBatchNorm.convert_sync_batchnorm(cs.models.resnet20())  # doctest: +SKIP
    """

    _ranks, _layout = (2, 3, 4, 5, 6), "(N, C, *)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias=bias)
        self.process_group = process_group

    def _group(self):
        if self.process_group is not None:
            return self.process_group
        return default_group() if is_initialized() else None

    def forward(self, input):
        group = self._group()
        if not self.training or group is None or group.size == 1:
            return super().forward(input)
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative moving average, as PyTorch
                factor = 1.0 / float(self.num_batches_tracked.data)
        params = [p for p in (self.weight, self.bias) if p is not None]
        running_mean = self.running_mean.data if self.running_mean is not None else None
        running_var = self.running_var.data if self.running_var is not None else None
        return SyncBatchNormFn.apply(
            input, *params, running_mean=running_mean, running_var=running_var, momentum=float(factor),
            eps=float(self.eps), affine=(self.weight is not None, self.bias is not None), group=group,
        )

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every ``BatchNorm1d/2d/3d`` inside replaced by a ``SyncBatchNorm`` sharing its tensors.

        Returns the converted module (a new object when ``module`` itself is a batch-norm
        layer); parameters and running statistics are the same tensors, so an optimizer
        built before the conversion still trains them.
        """
        converted = module
        if isinstance(module, _BatchNorm):
            dtype = module.weight.dtype if module.affine else (
                module.running_mean.dtype if module.track_running_stats else None)
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group, dtype, bias=module.bias is not None)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(converted, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(converted, name, getattr(module, name))
            converted.train(module.training)
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted
