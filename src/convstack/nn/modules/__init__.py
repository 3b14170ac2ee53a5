"""Modules: ``Module``, ``Parameter``, the containers, and a layer for every functional op."""

from convstack.nn.modules.activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from convstack.nn.modules.adaptive_pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
)
from convstack.nn.modules.container import ModuleDict, ModuleList, Sequential
from convstack.nn.modules.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from convstack.nn.modules.dropout import Dropout, Dropout2d, Dropout3d
from convstack.nn.modules.hooks import RemovableHandle
from convstack.nn.modules.linear import Flatten, Identity, Linear, Unflatten
from convstack.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    MultiMarginLoss,
    NLLLoss,
    SmoothL1Loss,
)
from convstack.nn.modules.module import IncompatibleKeys, Module
from convstack.nn.modules.parameter import Parameter
from convstack.nn.modules.per_sample_normalization import (
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
)
from convstack.nn.modules.pooling import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d
from convstack.nn.modules.unpooling import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d

__all__ = [
    "Module", "Parameter", "IncompatibleKeys", "RemovableHandle",
    "Sequential", "ModuleList", "ModuleDict",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "Linear", "Identity", "Flatten", "Unflatten",
    "ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "ReLU6", "Hardsigmoid", "Hardswish", "SiLU", "Mish", "Softplus", "PReLU",
    "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "Dropout", "Dropout2d", "Dropout3d",
    "CrossEntropyLoss", "NLLLoss", "MultiMarginLoss", "MSELoss", "L1Loss", "BCEWithLogitsLoss",
    "BCELoss", "HuberLoss", "SmoothL1Loss", "KLDivLoss",
]

# isort: split
# PyTorch's layers for vision (issue 17), a block of their own so merges stay easy
from convstack.nn.modules.activation_extra import (
    CELU,
    GLU,
    SELU,
    Hardshrink,
    Hardtanh,
    LogSigmoid,
    Softmin,
    Softshrink,
    Softsign,
    Tanhshrink,
    Threshold,
)
from convstack.nn.modules.distance import CosineSimilarity, PairwiseDistance
from convstack.nn.modules.embedding import Embedding
from convstack.nn.modules.loss_metric import MarginRankingLoss, TripletMarginLoss
from convstack.nn.modules.sliding_blocks import Fold, Unfold
from convstack.nn.modules.vision import ChannelShuffle, PixelShuffle, PixelUnshuffle

__all__ += [
    "Hardtanh", "Threshold", "CELU", "SELU", "GLU", "LogSigmoid", "Softmin", "Softsign",
    "Hardshrink", "Softshrink", "Tanhshrink",
    "Unfold", "Fold", "PixelShuffle", "PixelUnshuffle", "ChannelShuffle",
    "CosineSimilarity", "PairwiseDistance", "Embedding", "TripletMarginLoss", "MarginRankingLoss",
]
