"""Neural-network layers (``convstack.nn``) and their stateless ops (``convstack.nn.functional``)."""

from convstack.nn import functional
