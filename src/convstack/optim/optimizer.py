"""``Optimizer``: parameter groups, per-parameter state, step hooks, and a pickle-free state dict.

Mirrors ``torch.optim.Optimizer``. A subclass passes its hyperparameters as
``defaults`` and implements ``_step_group(group)``, which updates every parameter of
one group IN PLACE (``p.data`` keeps its array across steps) and keeps its buffers in
``self.state[p]``. ``step(closure=None)`` runs the pre hooks, the closure, the group
updates and the post hooks, in that order.

State holds arrays of the parameters' array module (NumPy, or CuPy on the GPU) and
plain Python numbers. ``state_dict()`` copies every array to a NumPy array and keys
parameters by their index across the groups (PyTorch's convention), so a checkpoint
writer can save it as arrays + JSON; ``load_state_dict()`` accepts the index keys as
ints or as strings (what a JSON round trip leaves).
"""

from __future__ import annotations

import copy
import itertools
import numbers
from collections import OrderedDict, defaultdict

import numpy

from convstack import backend
from convstack.autograd import enable_grad
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    _next_id = itertools.count()

    def __init__(self, hooks: OrderedDict):
        self._hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def check_number(op: str, argument: str, value, low: float = 0.0, high: float | None = None, high_open=True):
    """Raise the project's ``ValueError`` unless ``low <= value`` (and ``value < high`` or ``<= high``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(op, argument, "a real number", value)
    if high is None:
        if not value >= low:
            raise invalid(op, argument, f"a number >= {low:g}", value)
    elif not (low <= value < high if high_open else low <= value <= high):
        bracket = ")" if high_open else "]"
        raise invalid(op, argument, f"a number in [{low:g}, {high:g}{bracket}", value)
    return value


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (parameter
            groups: ``{"params": [...], "lr": 0.1, ...}``; options a group omits come from
            ``defaults``).
        defaults: the optimizer's default hyperparameters.

    Examples:
        >>> w = cs.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = SGD([{"params": [w], "lr": 0.1}], momentum=0.9)
        >>> (w * w).sum().backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._step_pre_hooks: OrderedDict = OrderedDict()
        self._step_post_hooks: OrderedDict = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                "but got a Tensor"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key not in ("params", "param_names"))
        return "\n".join(lines) + "\n)"

    # -------------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (fine-tuning: unfreeze a layer)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        group = dict(param_group)
        group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            group["param_names"] = names
        for tensor in tensors:
            if not isinstance(tensor, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {type(tensor).__name__}"
                )
            if not tensor.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)
        if len({id(t) for t in tensors}) != len(tensors):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        existing = {id(t) for g in self.param_groups for t in g["params"]}
        if any(id(t) in existing for t in tensors):
            raise ValueError("some parameters appear in more than one parameter group")
        for other in self.param_groups:
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError("all optimizer param groups should be with/without names")
        self.param_groups.append(group)
        self._init_group_state(group)

    def _check_group(self, group: dict) -> None:
        """Subclasses validate a group's hyperparameters here (they may differ from ``defaults``)."""

    def _init_group_state(self, group: dict) -> None:
        """Subclasses that allocate state eagerly (Adagrad) do it here."""

    # ---------------------------------------------------------------------- step
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: drop them (``set_to_none``) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; return ``closure()``'s loss if given.

        ``closure`` re-evaluates the model and returns the loss (it runs with gradients on).
        """
        args, kwargs = (closure,), {}
        for hook in list(self._step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"a step pre hook must return None or (args, kwargs), but got {result!r}")
                args, kwargs = result
        closure = args[0] if args else kwargs.get("closure")
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        for hook in list(self._step_post_hooks.values()):
            hook(self, args, kwargs)
        return loss

    def _step_group(self, group: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define _step_group")

    def _params_with_grad(self, group: dict):
        """``(parameter, its array, its gradient array)`` for the group's parameters that have a gradient.

        Each parameter's version is bumped (the step updates it in place, as PyTorch's): a graph
        that saved it before the step can no longer be walked back.
        """
        op = f"{type(self).__name__}.step"
        for p in group["params"]:
            if p.grad is not None:
                p._bump_version(op)
                yield p, p.data, p.grad.data

    def register_step_pre_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)``, called before each step."""
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None``, called after each step (e.g. a max-norm constraint)."""
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    # ---------------------------------------------------------------- state dict
    def state_dict(self) -> dict:
        """``{"state": {index: {name: ndarray | number}}, "param_groups": [{..., "params": [index]}]}``.

        Arrays are NumPy copies: later steps do not change a state dict already taken.
        """
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index_of[id(p)]] = {key: _export(value) for key, value in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state; parameters are matched by position, as PyTorch.

        The saved state is checked before anything changes: each group must hold this
        optimizer's hyperparameters (another optimizer's state, say SGD's into Adam, is
        refused naming the missing ones), of the same kinds, and each buffer must have its
        parameter's shape. Raises ``ValueError`` naming the entry otherwise.
        """
        if isinstance(state_dict, dict) and isinstance(state_dict.get("state"), dict):  # tensors (convstack.load,
            state_dict = dict(state_dict, state={  # as torch.load gives them) stand for their arrays
                key: {name: value.data if isinstance(value, Tensor) else value for name, value in values.items()}
                if isinstance(values, dict) else values for key, values in state_dict["state"].items()})
        _check_saved_state(state_dict, self.param_groups, type(self).__name__)
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups "
                f"({len(saved_groups)}, optimizer has {len(self.param_groups)})"
            )
        for saved, group in zip(saved_groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
                )
        param_of = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for index, p in zip(saved["params"], group["params"]):
                param_of[int(index)] = p
        state: defaultdict = defaultdict(dict)
        for key, values in state_dict["state"].items():
            p = param_of.get(int(key))
            if p is not None:
                state[p] = {name: _import(value, p) for name, value in values.items()}
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            restored = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            if "betas" in restored:
                restored["betas"] = tuple(restored["betas"])
            restored["params"] = group["params"]
            if "param_names" in group and "param_names" not in restored:
                restored["param_names"] = group["param_names"]
            new_groups.append(restored)
        self.param_groups = new_groups
        self.state = state


def _check_saved_state(state_dict, own_groups, name: str) -> None:
    """Refuse a saved optimizer state that is not shaped as ``state_dict()`` writes it for these groups."""
    from convstack.structure import check_like, kind

    if not isinstance(state_dict, dict) or not isinstance(state_dict.get("param_groups"), list) \
            or not isinstance(state_dict.get("state"), dict):
        raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' (a dict) and 'param_groups' (a list), "
                         f"received {kind(state_dict)}")
    shapes = {}
    for index, (saved, group) in enumerate(zip(state_dict["param_groups"], own_groups)):
        where = f"{name} param_groups[{index}]"
        if not isinstance(saved, dict) or not isinstance(saved.get("params"), list):
            raise ValueError(f"{where} is {kind(saved)}, expected a dict with a 'params' list")
        own = {k: v for k, v in group.items() if k not in ("params", "param_names")}
        check_like({k: v for k, v in saved.items() if k not in ("params", "param_names")}, own, where)
        for position, (key, p) in enumerate(zip(saved["params"], group["params"])):
            if isinstance(key, bool) or not isinstance(key, int) or key < 0:
                raise ValueError(f"{where}.params[{position}] is {kind(key)}, expected a parameter index")
            shapes[key] = p.shape
    for key, values in state_dict["state"].items():
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and key.isdigit())):
            raise ValueError(f"{name} state key {key!r} is not a parameter index")
        if not isinstance(values, dict):
            raise ValueError(f"{name} state[{key}] is {kind(values)}, expected a dict of buffers")
        for buffer, value in values.items():
            shape = shapes.get(int(key))
            if isinstance(value, numpy.ndarray) and value.ndim > 0 and shape is not None and value.shape != shape:
                raise ValueError(f"{name} state[{key}].{buffer} has shape {value.shape}, its parameter {shape}")
            if not isinstance(value, (numpy.ndarray, numbers.Real)) or isinstance(value, bool):
                raise ValueError(f"{name} state[{key}].{buffer} is {kind(value)}, expected an array or a number")


def _export(value):
    """A state value as a NumPy array copy or a plain Python number."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if value.shape == () and not isinstance(value, numpy.ndarray):
            return value.item()
        return numpy.array(backend.to_numpy(value), copy=True)
    return copy.deepcopy(value)


def _import(value, param: Tensor):
    """A saved state value as an array on ``param``'s device (floats cast to its dtype), or as is."""
    if isinstance(value, (list, numpy.ndarray)) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        array = numpy.asarray(backend.to_numpy(value))
        if array.ndim == 0:  # a step count that went through an array file
            return array.item()
        if array.dtype.kind == "f":
            array = array.astype(param.dtype)
        xp = backend.get_array_module(param.data)
        return xp.array(array, copy=True) if xp is numpy else backend.to_device(array, param.device)
    return copy.deepcopy(value)
