"""The GEMM convolution kernels on plain arrays: im2col/col2im are adjoint, the pointwise path equals im2col's."""

import numpy as np
import pytest

from convstack.nn.kernels.reference import conv_gemm


@pytest.mark.parametrize(
    "shape, kernel, stride, dilation, groups",
    [
        ((2, 4, 7, 6), (3, 2), (2, 1), (1, 2), 2),
        ((1, 3, 9), (2,), (3,), (1,), 1),
        ((2, 2, 4, 5, 3), (2, 2, 1), (1, 2, 1), (2, 1, 1), 1),
    ],
)
def test_col2im_is_the_adjoint_of_im2col(shape, kernel, stride, dilation, groups, rng):
    x = rng.standard_normal(shape)
    cols, out_sizes = conv_gemm.im2col(x, kernel, stride, dilation, groups)
    assert cols.shape == (groups, shape[1] // groups * int(np.prod(kernel)), shape[0] * int(np.prod(out_sizes)))
    c = rng.standard_normal(cols.shape)
    back = conv_gemm.col2im(c, shape, kernel, out_sizes, stride, dilation)
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize("groups", [1, 3])
def test_pointwise_path_equals_im2col_path(groups, rng):
    x = rng.standard_normal((2, 6, 4, 5))
    weight = rng.standard_normal((9, 6 // groups, 1, 1))
    grad = rng.standard_normal((2, 9, 4, 5))
    out, cols = conv_gemm.forward(x, weight, (1, 1), (1, 1), groups)
    assert cols is x  # no copy: the columns of a pointwise convolution are its input
    im2col_cols, _ = conv_gemm.im2col(x, (1, 1), (1, 1), (1, 1), groups)
    w = weight.reshape(groups, 9 // groups, -1)
    np.testing.assert_allclose(out, conv_gemm.batch_major(w @ im2col_cols, 2, (4, 5)), rtol=1e-12)
    data = conv_gemm.backward_data(grad, weight, x.shape, (1, 1), (1, 1), groups)
    dcols = w.transpose(0, 2, 1) @ conv_gemm.channel_major(grad, groups)
    np.testing.assert_allclose(data, conv_gemm.col2im(dcols, x.shape, (1, 1), (4, 5), (1, 1), (1, 1)), rtol=1e-12)
    dw = conv_gemm.backward_weight(grad, cols, weight.shape, (1, 1), groups)
    expected = conv_gemm.channel_major(grad, groups) @ im2col_cols.transpose(0, 2, 1)  # (G, Og, Cg)
    np.testing.assert_allclose(dw, expected.reshape(weight.shape), rtol=1e-12)
