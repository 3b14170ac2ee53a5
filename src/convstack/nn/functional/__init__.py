"""Stateless ops, used as ``import convstack.nn.functional as F``.

Names, argument names and argument order follow ``torch.nn.functional``.
One op family per file: conv, pooling, activation, linear, dropout, padding, loss.
"""
from convstack.nn.functional.conv import conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d
