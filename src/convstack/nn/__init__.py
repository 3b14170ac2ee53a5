"""Neural-network layers (``convstack.nn``) and their stateless ops (``convstack.nn.functional``).

``convstack.nn.Conv2d`` and friends are modules owning their parameters, each with a
one-line ``forward`` that calls ``convstack.nn.functional``; ``convstack.nn.init``
holds the weight initialisation schemes.
"""

from convstack.nn import functional, init, parallel
from convstack.nn.modules import *  # noqa: F403 - the layers are this package's API
from convstack.nn.modules import __all__ as _module_names

__all__ = ["functional", "init", "parallel", *_module_names]
from convstack.nn.modules.blocks import Concat, Residual  # noqa: E402
from convstack.nn.modules.local import LocallyConnected1d, LocallyConnected2d, TiledConv1d, TiledConv2d  # noqa: E402
from convstack.nn.modules.maxout import CrossChannelPool, Maxout  # noqa: E402
from convstack.nn.modules.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LocalResponseNorm  # noqa: E402
from convstack.nn.modules.padding import (  # noqa: E402
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)
from convstack.nn.modules.partial_conv import PartialConv2d, lenet5_c3_table  # noqa: E402
from convstack.nn.modules.sync_batchnorm import SyncBatchNorm  # noqa: E402
from convstack.nn.modules.upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: E402

__all__ += [
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LocalResponseNorm", "SyncBatchNorm",
    "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
    "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
    "LocallyConnected1d", "LocallyConnected2d", "TiledConv1d", "TiledConv2d",
    "Maxout", "CrossChannelPool", "Residual", "Concat", "PartialConv2d", "lenet5_c3_table",
]
