"""Optimizers, learning-rate schedules, regularisers and constraints (``convstack.optim``), as ``torch.optim``.

    >>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    >>> scheduler = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    >>> loss.backward(); opt.step(); opt.zero_grad(); scheduler.step()
"""

from convstack.optim import lr_scheduler, swa_utils
from convstack.optim.adagrad import Adagrad
from convstack.optim.adam import Adam, AdamW
from convstack.optim.constraints import MaxNorm, apply_max_norm_
from convstack.optim.cyclic_lr import CosineAnnealingWarmRestarts, CyclicLR
from convstack.optim.lambda_lr import LambdaLR, MultiplicativeLR
from convstack.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, MultiStepLR, StepLR
from convstack.optim.one_cycle import OneCycleLR
from convstack.optim.optimizer import Optimizer
from convstack.optim.plateau import ReduceLROnPlateau
from convstack.optim.regularization import (
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
    param_groups_weight_decay,
)
from convstack.optim.rmsprop import RMSprop
from convstack.optim.sgd import SGD
from convstack.optim.warmup import ConstantLR, LinearLR, SequentialLR

# ``convstack.optim.lr_scheduler.X`` as in PyTorch, for every schedule wherever it is defined.
for _schedule in (OneCycleLR, ReduceLROnPlateau, LinearLR, ConstantLR, SequentialLR, LambdaLR, MultiplicativeLR,
                  CyclicLR, CosineAnnealingWarmRestarts):
    setattr(lr_scheduler, _schedule.__name__, _schedule)
del _schedule

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler", "LRScheduler", "StepLR",
    "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau", "LinearLR",
    "ConstantLR", "SequentialLR", "LambdaLR", "MultiplicativeLR", "CyclicLR", "CosineAnnealingWarmRestarts",
    "swa_utils", "param_groups_weight_decay", "l1_penalty", "l2_penalty", "elastic_net_penalty",
    "MaxNorm", "apply_max_norm_",
]
