"""Adagrad (Duchi, Hazan & Singer 2011) with learning-rate decay."""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.optim.optimizer import Optimizer, check_number


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``, update for update.

    With ``g`` the gradient (negated when ``maximize``) and ``t`` the step count::

        g = g + weight_decay * p
        s = s + g * g                      (s starts at initial_accumulator_value)
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    The accumulator is allocated when the parameter joins the optimizer, as in PyTorch.

    Args:
        params: tensors or parameter groups (see ``Optimizer``).
        lr: learning rate (>= 0).
        lr_decay: learning-rate decay per step (>= 0).
        weight_decay: L2 coefficient (>= 0).
        initial_accumulator_value: starting value of the sum of squared gradients (>= 0).
        eps: added to the denominator (>= 0).
        maximize: ascend the objective instead of descending it.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        defaults = {
            "lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value, "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_group(self, group):
        for argument in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_number("Adagrad", argument, group[argument])

    def _init_group_state(self, group):
        for p in group["params"]:
            xp = get_array_module(p.data)
            state = self.state[p]
            state["step"] = 0
            state["sum"] = xp.full_like(p.data, group["initial_accumulator_value"])

    def _step_group(self, group):
        lr, lr_decay, eps, weight_decay = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
        for p, param, grad in self._params_with_grad(group):
            xp = get_array_module(param)
            state = self.state[p]
            state["step"] += 1
            if group["maximize"]:
                grad = -grad
            if weight_decay != 0:
                grad = grad + weight_decay * param
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            total = state["sum"]
            total += grad * grad
            denominator = xp.sqrt(total)
            denominator += eps
            xp.divide(grad, denominator, out=denominator)
            denominator *= clr
            param -= denominator
