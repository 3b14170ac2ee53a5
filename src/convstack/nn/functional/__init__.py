"""Stateless ops, used as ``import convstack.nn.functional as F``.

Names, argument names and argument order follow ``torch.nn.functional``.
One op family per file: conv, pooling, activation, linear, dropout, padding, loss.
"""
