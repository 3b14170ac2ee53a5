"""conv1d/2d/3d with each algorithm forced: values and all gradients against PyTorch, through the autograd path."""

import numpy as np
import pytest
from tests.helpers import check_against_torch

import convstack.nn.functional as F
from convstack.nn.kernels import algorithm

# (input shape, weight shape, keyword arguments)
CASES = {
    "2d-3x3-pad1": ((2, 8, 9, 7), (6, 8, 3, 3), dict(padding=1)),
    "2d-3x3-pad2-groups": ((2, 8, 6, 6), (4, 4, 3, 3), dict(padding=2, groups=2)),
    "2d-3x3-unbatched": ((8, 5, 6), (8, 8, 3, 3), dict(padding=1)),
    "2d-1x1-stride2": ((2, 6, 7, 6), (4, 6, 1, 1), dict(stride=2)),
    "1d-k9": ((2, 4, 30), (3, 4, 9), dict(padding=4)),
    "3d-3x3x3": ((1, 3, 5, 6, 5), (2, 3, 3, 3, 3), dict(padding=1)),
}


@pytest.mark.parametrize("name", algorithm.ALGORITHMS)
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_forced_algorithm_matches_torch(case, name, rng):
    torch = pytest.importorskip("torch")
    input_shape, weight_shape, options = case
    dims = len(weight_shape) - 2
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    torch_conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[dims]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (input_shape, weight_shape, (weight_shape[0],))]
    with algorithm.use(name):  # the forward and the backward that check_against_torch runs
        check_against_torch(
            lambda *t: conv(*t, **options), lambda *t: torch_conv(*t, **options), arrays, rtol=1e-4, atol=1e-4
        )


def test_training_forward_keeps_small_columns_only_for_im2col(rng):
    import convstack as cs
    from convstack.nn.kernels import chunked

    x = cs.tensor(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    lenet_like = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True))
    assert isinstance(lenet_like.grad_fn.x, chunked.Columns)  # the weight gradient needs only its GEMM
    winograd = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True))
    with algorithm.use("winograd4"):
        winograd = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True))
    assert winograd.grad_fn.x is x.data  # Winograd rebuilds its tiles from the input


def test_large_columns_are_not_kept(rng):
    import convstack as cs

    x = cs.tensor(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    with algorithm.workspace(2**10):  # one sample a chunk: the columns are never whole
        out = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True))
    assert out.grad_fn.x is x.data
