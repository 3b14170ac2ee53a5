"""Weight averaging: stochastic weight averaging (SWA, Izmailov et al. 2018) and exponential moving
averages (EMA, Polyak averaging with exponential weights), as ``torch.optim.swa_utils``.

``AveragedModel(model)`` keeps a copy of ``model`` whose parameters are a running average of
the ones passed to ``update_parameters(model)``: the equal-weight mean by default (SWA), or
what ``avg_fn`` (one tensor at a time, returns the new average) or ``multi_avg_fn`` (lists of
tensors, updated in place) compute; ``get_ema_multi_avg_fn(decay)`` gives the EMA. Buffers
(batch-norm statistics) are copied from the model, or averaged too with ``use_buffers=True``;
otherwise ``update_bn`` recomputes the statistics for the averaged weights with one pass over
the data. ``SWALR`` anneals the rate to a constant for the averaging phase.

Examples:
    An EMA of the weights and buffers, updated after every optimizer step:

    >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    >>> for images, labels in loader:
    ...     ...; optimizer.step(); ema.update_parameters(model)
    >>> accuracy(ema, test_loader)
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers

import numpy

from convstack.autograd import no_grad
from convstack.nn.functional._utils import invalid
from convstack.nn.modules.module import Module
from convstack.nn.modules.normalization import _BatchNorm
from convstack.optim.lr_scheduler import LRScheduler, per_group
from convstack.tensor import Tensor

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay) -> float:
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0.0 <= decay <= 1.0:
        raise invalid("get_ema_multi_avg_fn", "decay", "a number in [0, 1]", decay)
    return float(decay)


def _store(target: Tensor, values) -> None:
    """Write ``values`` (an array or tensor) into ``target``'s array, cast to its dtype (floats truncated for
    integer buffers, as PyTorch's ``copy_``)."""
    target.data[...] = values.data if isinstance(values, Tensor) else values


def get_ema_multi_avg_fn(decay: float = 0.999):
    """The EMA update ``W_ema <- decay * W_ema + (1 - decay) * W_model``, in place over lists of tensors.

    The first ``update_parameters`` copies the model's weights (``W_0^ema = W_0``).
    """
    decay = _check_decay(decay)

    def ema_update(ema_params, current_params, num_averaged) -> None:
        for ema, current in zip(ema_params, current_params):
            if ema.dtype.kind == "f":  # lerp towards the model, as torch._foreach_lerp_
                _store(ema, ema.data + (1 - decay) * (current.data - ema.data))
            else:
                _store(ema, ema.data * decay + current.data * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """The SWA update ``W_avg <- W_avg + (W_model - W_avg) / (n + 1)``, in place over lists of tensors."""

    def swa_update(averaged_params, current_params, num_averaged) -> None:
        count = float(numpy.asarray(getattr(num_averaged, "data", num_averaged))) + 1
        for averaged, current in zip(averaged_params, current_params):
            _store(averaged, averaged.data + (current.data - averaged.data) / count)

    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """The EMA of one tensor: returns ``decay * W_ema + (1 - decay) * W_model``."""
    decay = _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """The equal-weight average of one tensor: returns ``W_avg + (W_model - W_avg) / (n + 1)``."""

    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` holding a running average of its parameters (SWA or EMA).

    Args:
        model: the model being trained; deep-copied here.
        device: where the copy lives (``None``: where the model is).
        avg_fn: ``avg_fn(averaged, current, num_averaged) -> new average`` for one tensor.
        multi_avg_fn: ``multi_avg_fn(averaged_list, current_list, num_averaged)``, updating in place.
            Give at most one of the two; neither: the equal-weight average (SWA).
        use_buffers: average the buffers too (batch-norm statistics) instead of copying them.

    ``n_averaged`` (an int64 buffer) counts the updates; the first copies the weights.
    ``forward`` runs the averaged copy. ``state_dict()`` holds ``n_averaged`` and ``module.*``, as
    PyTorch's; the averaging functions are not part of it.

    Examples:
        >>> swa_model = AveragedModel(model)
        >>> swa_scheduler = SWALR(optimizer, swa_lr=0.05)
        >>> for epoch in range(epochs):
        ...     train_one_epoch(model, optimizer)
        ...     if epoch >= swa_start:
        ...         swa_model.update_parameters(model); swa_scheduler.step()
        >>> update_bn(train_loader, swa_model)
    """

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel: expected a Module to average, received {type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise invalid("AveragedModel", "multi_avg_fn", "None when avg_fn is given (only one of the two)",
                          multi_avg_fn)
        if not isinstance(use_buffers, bool):
            raise invalid("AveragedModel", "use_buffers", "True or False", use_buffers)
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device=device)
        self.register_buffer("n_averaged", Tensor(numpy.array(0, dtype=numpy.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters (and, with ``use_buffers``, buffers) into the average."""
        if self.use_buffers:
            averaged = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            current = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            averaged, current = list(self.parameters()), list(model.parameters())
        if len(averaged) != len(current):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(current)} tensors to average, "
                             f"the averaged copy {len(averaged)}: pass the model this average was made from")
        for mine, theirs in zip(averaged, current):
            if mine.shape != theirs.shape:
                raise ValueError(f"AveragedModel.update_parameters: a tensor of shape {theirs.shape} does not fit "
                                 f"the averaged one of shape {mine.shape}")
        count = int(self.n_averaged.data)
        with no_grad():
            if count == 0:
                for mine, theirs in zip(averaged, current):
                    _store(mine, theirs.data)
            elif self.avg_fn is not None:
                for mine, theirs in zip(averaged, current):
                    _store(mine, self.avg_fn(mine.detach(), theirs.detach(), self.n_averaged))
            else:
                update = self.multi_avg_fn or get_swa_multi_avg_fn()
                update([p.detach() for p in averaged], [p.detach() for p in current], self.n_averaged)
            if not self.use_buffers:  # keep the buffers in step with the model's
                for mine, theirs in zip(self.module.buffers(), model.buffers()):
                    _store(mine, theirs.data)
        self.n_averaged.data += 1


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute every batch-norm layer's running statistics with one pass of ``loader`` through ``model``.

    The averaged weights of SWA never produced the running statistics they need; this
    resets them and accumulates the exact average over the pass (``momentum=None``), in
    training mode and without gradients, then restores each layer's momentum and the mode.

    Args:
        loader: batches, each a tensor or a list/tuple whose first element is the input.
        model: the model (an ``AveragedModel`` or any module).
        device: move each input there first.
    """
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if device is not None:
                    batch = batch.to(device=device)
                model(batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's rate to ``swa_lr`` over ``anneal_epochs`` steps, then hold it (the SWA phase).

    ``lr_t = swa_lr * alpha_t + lr_start * (1 - alpha_t)``, ``alpha_t`` rising from 0 to 1 as a half
    cosine (``'cos'``) or linearly (``'linear'``), computed chainably as PyTorch does.

    Args:
        optimizer: the optimizer.
        swa_lr: the rate to anneal to, one number or one per group.
        anneal_epochs: steps of the annealing (0: jump to ``swa_lr``).
        anneal_strategy: ``'cos'`` or ``'linear'``.
        last_epoch: see ``LRScheduler``.

    Examples:
        >>> swa_scheduler = SWALR(optimizer, swa_lr=0.05, anneal_epochs=5, anneal_strategy="linear")
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1):
        for lr, group in zip(per_group("swa_lr", optimizer, swa_lr, "SWALR"), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise invalid("SWALR", "anneal_strategy", "'cos' or 'linear'", anneal_strategy)
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise invalid("SWALR", "anneal_epochs", "an integer >= 0", anneal_epochs)
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        if self._anneal_strategy == "cos":
            return (1 - math.cos(math.pi * t)) / 2
        return t

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        """The rate the annealing started from, recovered from the current one (chainable form)."""
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        previous_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        starts = [self._get_initial_lr(group["lr"], group["swa_lr"], previous_alpha)
                  for group in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [group["swa_lr"] * alpha + start * (1 - alpha) for group, start in zip(self.optimizer.param_groups,
                                                                                       starts)]
