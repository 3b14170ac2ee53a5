"""Adam (Kingma & Ba 2015), its AMSGrad variant (Reddi et al. 2018) and AdamW (Loshchilov & Hutter 2019)."""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import optimizers as kernels
from convstack.optim.optimizer import Optimizer, check_number


class Adam(Optimizer):
    """``torch.optim.Adam``, update for update.

    With ``g`` the gradient (negated when ``maximize``) and ``t`` the step count::

        g = g + weight_decay * p                 (coupled L2; AdamW instead does p *= 1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                    (amsgrad; v_max replaces v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: tensors or parameter groups (see ``Optimizer``).
        lr: learning rate (>= 0).
        betas: decay rates of the first and second moment averages, each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: L2 coefficient (>= 0).
        amsgrad: use the running maximum of the second moment (AMSGrad).
        maximize: ascend the objective instead of descending it.
        decoupled_weight_decay: decay the weights directly (AdamW) instead of through the gradient.

    Examples:
        >>> opt = Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = {
            "lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
            "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _check_group(self, group):
        name = type(self).__name__
        check_number(name, "lr", group["lr"])
        check_number(name, "eps", group["eps"])
        check_number(name, "weight_decay", group["weight_decay"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise invalid(name, "betas", "a pair of numbers in [0, 1)", betas)
        for beta in betas:
            if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
                raise invalid(name, "betas", "a pair of numbers in [0, 1)", betas)
        group["betas"] = tuple(betas)

    def _step_group(self, group):
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(beta) for beta in group["betas"])
        amsgrad, decoupled = bool(group["amsgrad"]), bool(group["decoupled_weight_decay"])
        maximize = bool(group["maximize"])
        update = None
        for p, param, grad in self._params_with_grad(group):
            xp = get_array_module(param)
            if update is None:  # the kernel of the tier in use, looked up once per group
                update = tiers.tier_for(param).implementation(kernels.adam_step)
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(param)
                state["exp_avg_sq"] = xp.zeros_like(param)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
            state["step"] += 1
            update(param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"), state["step"],
                   lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay, ``p *= 1 - lr * weight_decay`` each step.

    Same arguments as ``Adam``; ``weight_decay`` defaults to ``1e-2``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        """As ``Optimizer.load_state_dict``; the weight decay stays decoupled whatever the saved groups say."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
