"""Differentiable tensor ops (the ``Function`` subclasses behind ``Tensor``'s methods)."""
