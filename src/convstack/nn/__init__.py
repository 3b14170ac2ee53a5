"""Neural-network layers (``convstack.nn``) and their stateless ops (``convstack.nn.functional``).

``convstack.nn.Conv2d`` and friends are modules owning their parameters, each with a
one-line ``forward`` that calls ``convstack.nn.functional``; ``convstack.nn.init``
holds the weight initialisation schemes.
"""

from convstack.nn import functional, init
from convstack.nn.modules import *  # noqa: F403 - the layers are this package's API
from convstack.nn.modules import __all__ as _module_names

__all__ = ["functional", "init", *_module_names]
