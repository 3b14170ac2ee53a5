"""Whether a loaded state (from a checkpoint: untrusted) has the structure of the state it replaces.

``load_state_dict`` methods that copy a saved state over live objects (schedulers, optimizer
hyperparameters, callbacks) call ``check_like(saved, own.state_dict(), "scheduler")``
first, so that a file holding a string where a number belongs, a list for a dict, or
another optimizer's hyperparameters is refused with one line naming the entry, before
anything changes, instead of failing later, mid-training, with a ``KeyError`` or
``TypeError`` deep inside a step.
"""

from __future__ import annotations

import numbers

import numpy


def kind(value) -> str:
    """A value's kind in the user's terms: 'a number', 'a string', 'a list' ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, numpy.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_like(value, reference, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` and the entry when ``value`` is not shaped like ``reference``.

    Dicts must have the same keys; lists and tuples the same length; numbers (integers and
    floats alike), booleans, strings and arrays (of the same shape) must match in kind.
    ``None`` in the reference accepts null or any number or string (an optional setting);
    values of other types in the reference (functions) are not checked.
    """
    if isinstance(reference, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where} is {kind(value)}, expected a dict")
        missing = [str(k) for k in reference if k not in value]
        extra = [str(k) for k in value if k not in reference]
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []
            )
            raise ValueError(f"{where} does not have the expected entries ({'; '.join(parts)})")
        for key, expected in reference.items():
            check_like(value[key], expected, f"{where}.{key}")
    elif isinstance(reference, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(reference):
            raise ValueError(f"{where} is {kind(value)}{_length(value)}, expected a list of {len(reference)}")
        for index, (item, expected) in enumerate(zip(value, reference)):
            check_like(item, expected, f"{where}[{index}]")
    elif isinstance(reference, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} is {kind(value)}, expected a boolean")
    elif _number(reference):
        if not _number(value):
            raise ValueError(f"{where} is {kind(value)}, expected a number")
    elif isinstance(reference, str):
        if not isinstance(value, str):
            raise ValueError(f"{where} is {kind(value)}, expected a string")
    elif isinstance(reference, numpy.ndarray):
        if not isinstance(value, numpy.ndarray) or value.shape != reference.shape:
            raise ValueError(f"{where} is {kind(value)}, expected an array of shape {reference.shape}")
    elif reference is None:
        if not (value is None or _number(value) or isinstance(value, str)):
            raise ValueError(f"{where} is {kind(value)}, expected null, a number or a string")


def _length(value) -> str:
    return f" of {len(value)}" if isinstance(value, (list, tuple)) else ""
