"""Stateless ops, used as ``import convstack.nn.functional as F``.

Names, argument names and argument order follow ``torch.nn.functional``.
One op family per file: conv, pooling, unpooling, activation (classic, piecewise, smooth), linear,
dropout, padding, loss, normalization (batch, per-sample), sliding blocks (unfold/fold), spatial
transforms (affine_grid/grid_sample), distances, lookups (embedding) ...
"""
from convstack.nn.functional.activation import (  # noqa: F401
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from convstack.nn.functional.adaptive_pooling import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
)
from convstack.nn.functional.conv import conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d
from convstack.nn.functional.dropout import dropout, dropout2d, dropout3d  # noqa: F401
from convstack.nn.functional.linear import linear  # noqa: F401
from convstack.nn.functional.local import (  # noqa: F401
    locally_connected1d,
    locally_connected2d,
    tiled_conv1d,
    tiled_conv2d,
)
from convstack.nn.functional.loss import cross_entropy, multi_margin_loss, nll_loss  # noqa: F401
from convstack.nn.functional.maxout import maxout  # noqa: F401
from convstack.nn.functional.normalization import batch_norm, local_response_norm  # noqa: F401
from convstack.nn.functional.padding import pad  # noqa: F401
from convstack.nn.functional.per_sample_normalization import group_norm, instance_norm, layer_norm  # noqa: F401
from convstack.nn.functional.piecewise_activation import hardsigmoid, hardswish, prelu, relu6  # noqa: F401
from convstack.nn.functional.pooling import (
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
)
from convstack.nn.functional.probability_loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    kl_div,
)
from convstack.nn.functional.regression_loss import huber_loss, l1_loss, mse_loss, smooth_l1_loss  # noqa: F401
from convstack.nn.functional.smooth_activation import mish, silu, softplus  # noqa: F401
from convstack.nn.functional.unpooling import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: F401
from convstack.nn.functional.upsample import interpolate, upsample  # noqa: F401

# isort: split
# PyTorch's functional surface for vision, one family per file (a block of its own, so merges stay easy)
from convstack.nn.functional.activation_extra import (  # noqa: F401
    celu,
    glu,
    hardtanh,
    logsigmoid,
    selu,
    softmin,
    softsign,
    threshold,
)
from convstack.nn.functional.distance import cosine_similarity, normalize, pairwise_distance  # noqa: F401
from convstack.nn.functional.lookup import embedding, one_hot  # noqa: F401
from convstack.nn.functional.loss_metric import margin_ranking_loss, triplet_margin_loss  # noqa: F401
from convstack.nn.functional.shrink import hardshrink, softshrink, tanhshrink  # noqa: F401
from convstack.nn.functional.sliding_blocks import fold, unfold  # noqa: F401
from convstack.nn.functional.spatial_transform import affine_grid, grid_sample  # noqa: F401
from convstack.nn.functional.vision import channel_shuffle, pixel_shuffle, pixel_unshuffle  # noqa: F401
