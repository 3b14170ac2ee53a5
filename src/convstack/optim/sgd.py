"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay."""

from __future__ import annotations

from convstack.nn.functional._utils import invalid
from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import optimizers as kernels
from convstack.optim.optimizer import Optimizer, check_number


class SGD(Optimizer):
    """``torch.optim.SGD``, update for update.

    With ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        b = g                                   (first step)
        b = momentum * b + (1 - dampening) * g  (later steps)
        g = g + momentum * b if nesterov else b (when momentum != 0)
        p = p - lr * g

    Nesterov momentum in this form is Sutskever et al. 2013.

    Args:
        params: tensors or parameter groups (see ``Optimizer``).
        lr: learning rate (>= 0).
        momentum: momentum factor (>= 0).
        dampening: dampening of the momentum.
        weight_decay: L2 penalty coefficient (>= 0), added to the gradient.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening == 0).
        maximize: ascend the objective instead of descending it.

    Examples:
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        defaults = {
            "lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
            "nesterov": nesterov, "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_number("SGD", "lr", group["lr"])
        check_number("SGD", "momentum", group["momentum"])
        check_number("SGD", "dampening", group["dampening"], float("-inf"))
        check_number("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise invalid(
                "SGD", "nesterov", "False unless momentum > 0 and dampening == 0", group["nesterov"],
                f"momentum={group['momentum']}, dampening={group['dampening']}",
            )

    def _step_group(self, group):
        lr, momentum, dampening = float(group["lr"]), float(group["momentum"]), float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        nesterov, maximize = bool(group["nesterov"]), bool(group["maximize"])
        step = None
        for p, param, grad in self._params_with_grad(group):
            if step is None:  # the kernel of the tier in use, looked up once per group
                step = tiers.tier_for(param).implementation(kernels.sgd_step)
            state = self.state[p] if momentum != 0 else None
            buffer = step(param, grad, None if state is None else state.get("momentum_buffer"), lr, momentum,
                          dampening, weight_decay, nesterov, maximize)
            if state is not None:
                state["momentum_buffer"] = buffer
