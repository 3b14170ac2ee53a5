"""Fine-tuning: start from trained weights, freeze what should stay, give the model a new head.

The usual recipe (Yosinski et al. 2014, "How transferable are features in deep neural
networks?"; the "fine-tune from ImageNet" advice): load a network trained on one task,
replace its last layer by a fresh one with the new task's number of classes, keep the early
layers fixed (``freeze(model, "features.*")``) or train them with a smaller learning rate
(``param_groups_with_lr``), and train.

Names are parameter names as ``model.named_parameters()`` gives them (``features.0.weight``),
matched with shell-style patterns (``fnmatch``: ``*`` ``?`` ``[...]``); a pattern also matches
everything under a module of that name (``"features"`` is ``"features.*"``). A pattern that
matches nothing is an error: a typo must not silently train what it meant to freeze.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from convstack import nn

_HEAD_TYPES = (nn.Linear,)
_CONV_HEAD_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _patterns(patterns, op: str) -> list:
    if isinstance(patterns, str):
        patterns = [patterns]
    patterns = list(patterns)
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"{op}: invalid value for argument `patterns`: expected a name pattern or a list of them, "
                         f"received {patterns!r}")
    return patterns


def _matches(name: str, pattern: str) -> bool:
    return fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*")


def _select(model, patterns, op: str) -> list:
    """``(name, parameter)`` pairs matched by any pattern; each pattern must match something."""
    named = list(model.named_parameters())
    for pattern in patterns:
        if not any(_matches(name, pattern) for name, _ in named):
            some = ", ".join(name for name, _ in named[:4])
            raise ValueError(f"{op}: pattern {pattern!r} matches no parameter of {type(model).__name__} "
                             f"(names look like: {some}, ...)")
    return [(name, p) for name, p in named if any(_matches(name, pattern) for pattern in patterns)]


def freeze(model, patterns) -> list:
    """Stop training the parameters whose names match ``patterns``; returns their names.

    Examples:
        >>> freeze(model, "features.*")
        ['features.0.weight', 'features.0.bias', ...]
    """
    selected = _select(model, _patterns(patterns, "freeze"), "freeze")
    for _, parameter in selected:
        parameter.requires_grad_(False)
        parameter.grad = None
    return [name for name, _ in selected]


def unfreeze(model, patterns) -> list:
    """Train again the parameters whose names match ``patterns``; returns their names."""
    selected = _select(model, _patterns(patterns, "unfreeze"), "unfreeze")
    for _, parameter in selected:
        parameter.requires_grad_(True)
    return [name for name, _ in selected]


def find_head(model) -> tuple:
    """``(name, layer)`` of the classifier head: ``fc``, else the last Linear of ``classifier``, else the last
    Linear in module order, else (fully convolutional classifiers) the last convolution."""
    modules = list(model.named_modules())
    direct = dict(modules)
    if isinstance(direct.get("fc"), _HEAD_TYPES):
        return "fc", direct["fc"]
    for kinds in (_HEAD_TYPES, _CONV_HEAD_TYPES):
        in_classifier = [(n, m) for n, m in modules if isinstance(m, kinds) and (n + ".").startswith("classifier.")]
        if in_classifier:
            return in_classifier[-1]
        anywhere = [(n, m) for n, m in modules if isinstance(m, kinds) and n]
        if anywhere:
            return anywhere[-1]
    raise ValueError(f"find_head: {type(model).__name__} has no Linear or convolution layer to act as its head")


def replace_head(model, num_classes: int, generator=None) -> str:
    """Replace the head (see ``find_head``) by a freshly initialised layer with ``num_classes`` outputs.

    Returns the head's name. The new layer has the old one's inputs, bias setting and dtype.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"replace_head: invalid value for argument `num_classes`: expected a positive integer, "
                         f"received {num_classes!r}")
    name, old = find_head(model)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None, dtype=old.weight.dtype)
    else:
        config = dict(old.get_config())
        config["out_channels"] = num_classes
        config.pop("dtype", None)
        new = type(old)(**config).to(old.weight.dtype)
    if generator is not None:
        new.reset_parameters(generator)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
    return name


def param_groups_with_lr(model, learning_rates: dict, default_lr: float) -> list:
    """Optimizer parameter groups with their own learning rates, chosen by name pattern.

    Args:
        model: the module whose trainable parameters (``requires_grad``) are grouped.
        learning_rates: ``{pattern: lr}``; a parameter joins the group of the first pattern it matches.
        default_lr: the learning rate of the parameters no pattern matches.

    Returns:
        ``[{"params": [...], "lr": lr, "name": pattern}, ..., {"params": rest, "lr": default_lr, "name": "default"}]``
        (groups left empty are dropped), ready for ``optim.SGD(groups, lr=default_lr)``.

    Examples:
        >>> groups = param_groups_with_lr(model, {"features.*": 1e-4}, default_lr=1e-2)
        >>> optimizer = convstack.optim.SGD(groups, lr=1e-2, momentum=0.9)
    """
    if not isinstance(learning_rates, dict):
        raise ValueError(f"param_groups_with_lr: invalid value for argument `learning_rates`: expected a dict "
                         f"{{pattern: lr}}, received {learning_rates!r}")
    for pattern, lr in list(learning_rates.items()) + [("default_lr", default_lr)]:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0:
            raise ValueError(f"param_groups_with_lr: invalid learning rate for {pattern!r}: expected a number >= 0, "
                             f"received {lr!r}")
    if learning_rates:
        _select(model, _patterns(list(learning_rates), "param_groups_with_lr"), "param_groups_with_lr")
    groups = {pattern: [] for pattern in learning_rates}
    rest = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        pattern = next((p for p in learning_rates if _matches(name, p)), None)
        (rest if pattern is None else groups[pattern]).append(parameter)
    result = [{"params": params, "lr": float(learning_rates[p]), "name": p} for p, params in groups.items() if params]
    if rest:
        result.append({"params": rest, "lr": float(default_lr), "name": "default"})
    return result


def read_weights(source) -> dict:
    """``{name: array}`` from a ``convstack train`` checkpoint (its ``model``), a torch or a safetensors file."""
    from convstack.io.checkpoint import load_checkpoint
    from convstack.io.torch_weights import TORCH_SUFFIXES, read_state_dict

    path = Path(source)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return read_state_dict(path)
    if not path.exists():
        raise FileNotFoundError(f"prepare_finetune: {path} does not exist")
    state = load_checkpoint(path)
    if isinstance(state.get("model"), dict):
        state = state["model"]
    return read_state_dict(state)


def prepare_finetune(model, init_from=None, freeze_patterns=(), num_classes: int | None = None) -> dict:
    """Get ``model`` ready to fine-tune: load weights, give it a head for ``num_classes``, freeze layers.

    Args:
        model: the model to fine-tune, built as for training (its head may have any size).
        init_from: a checkpoint written by ``convstack train`` (``best.ckpt``, ``last.ckpt``), a PyTorch
            ``.pt``/``.pth`` state dict or a ``.safetensors`` file; None loads nothing.
        freeze_patterns: parameter name patterns to freeze after loading (``"features.*"``).
        num_classes: the new task's classes. The head becomes a fresh layer of this size when it has
            another; the checkpoint's head is loaded only when its size is this one.

    Loading is strict: every other parameter and buffer must be in the file with its shape.

    Returns:
        ``{"loaded": [names], "head": name, "head_reset": bool, "frozen": [names]}``.
    """
    head_name, head = find_head(model)
    head_reset = False
    if num_classes is not None and head.weight.shape[0] != num_classes:
        replace_head(model, num_classes)
        head_reset = True
    loaded = []
    if init_from is not None:
        state = read_weights(init_from)
        targets = model.state_dict()
        head_keys = [k for k in targets if k.startswith(head_name + ".")]
        mismatched = [k for k in head_keys if k in state and tuple(state[k].shape) != targets[k].shape]
        if mismatched and num_classes is None:
            raise ValueError(f"prepare_finetune: {init_from} has a head of shape {tuple(state[mismatched[0]].shape)} "
                             f"for {mismatched[0]}, the model {targets[mismatched[0]].shape}; pass num_classes to "
                             "train a new head")
        if mismatched:
            state = {k: v for k, v in state.items() if k not in head_keys}
            head_reset = True
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not (mismatched and k in head_keys)]
        if missing or unexpected:
            raise ValueError(f"prepare_finetune: {init_from} does not fit {type(model).__name__}: missing "
                             f"{missing[:5]}{' ...' if len(missing) > 5 else ''}, unexpected "
                             f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        loaded = [k for k in state if k in targets]
        head_reset = head_reset and not any(k in loaded for k in head_keys)
    frozen = freeze(model, freeze_patterns) if freeze_patterns else []
    return {"loaded": loaded, "head": head_name, "head_reset": head_reset, "frozen": frozen}
