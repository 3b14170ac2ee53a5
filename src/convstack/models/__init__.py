"""The model zoo: each model is a function taking ``num_classes``, ``in_channels`` and an input size."""

from convstack.models.lenet import LeNet5, lenet5
from convstack.models.spec import from_spec

#: Model builders by the names the command line accepts.
MODELS = {"lenet5": lenet5}


def get_model(name: str, **options):
    """Build the zoo model called ``name`` (see ``MODELS``), or a spec-string model with ``spec:...``."""
    if name.startswith("spec:"):
        return from_spec(name[len("spec:") :], **options)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(sorted(MODELS))} or 'spec:...'")
    return MODELS[name](**options)


__all__ = ["LeNet5", "lenet5", "from_spec", "get_model", "MODELS"]
