"""RMSprop (Tieleman & Hinton 2012), with the centred variant of Graves 2013 and momentum."""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.optim.optimizer import Optimizer, check_number


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``, update for update.

    With ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g          (centered)
        d = sqrt(v - a * a) + eps if centered else sqrt(v) + eps
        b = momentum * b + g / d; p = p - lr * b (momentum > 0)
        p = p - lr * g / d                       (otherwise)

    Args:
        params: tensors or parameter groups (see ``Optimizer``).
        lr: learning rate (>= 0).
        alpha: smoothing constant of the squared-gradient average (>= 0).
        eps: added to the denominator (>= 0).
        weight_decay: L2 coefficient (>= 0).
        momentum: momentum factor (>= 0).
        centered: normalise by the estimated variance of the gradient instead of its second moment.
        maximize: ascend the objective instead of descending it.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        defaults = {
            "lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
            "centered": centered, "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_group(self, group):
        for argument in ("lr", "eps", "momentum", "weight_decay", "alpha"):
            check_number("RMSprop", argument, group[argument])

    def _step_group(self, group):
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        for p, param, grad in self._params_with_grad(group):
            xp = get_array_module(param)
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["square_avg"] = xp.zeros_like(param)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = xp.zeros_like(param)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = xp.zeros_like(param)
            state["step"] += 1
            if group["maximize"]:
                grad = -grad
            if weight_decay != 0:
                grad = grad + weight_decay * param
            square_avg = state["square_avg"]
            square_avg *= alpha
            square_avg += (1 - alpha) * grad * grad
            if centered:
                grad_avg = state["grad_avg"]
                grad_avg += (1 - alpha) * (grad - grad_avg)  # torch's lerp_(grad, 1 - alpha)
                denominator = square_avg - grad_avg * grad_avg
                xp.sqrt(denominator, out=denominator)
            else:
                denominator = xp.sqrt(square_avg)
            denominator += eps
            if momentum > 0:
                buffer = state["momentum_buffer"]
                buffer *= momentum
                xp.divide(grad, denominator, out=denominator)
                buffer += denominator
                param -= lr * buffer
            else:
                xp.divide(grad, denominator, out=denominator)
                denominator *= lr
                param -= denominator
