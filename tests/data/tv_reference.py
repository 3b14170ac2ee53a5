"""torchvision.transforms.v2's affine warp, rebuilt from torch ops (torchvision itself is not installable here).

``_affine_grid`` and ``_apply_grid_transform`` of torchvision/transforms/v2/functional/_geometry.py,
step for step, so convstack's warps can be compared with what torchvision computes.
"""

import numpy as np


def torchvision_warp(image, matrix, mode, fill, out_size=None):
    """Warp one image (C, H, W) by the inverse matrix (6 numbers) as torchvision does; same dtype back."""
    import torch

    fp = image.dtype.kind == "f"
    x = torch.tensor(image, dtype=torch.float32)[None]
    height, width = image.shape[-2:]
    out_h, out_w = out_size or (height, width)
    theta = torch.tensor(np.asarray(matrix, np.float64).ravel(), dtype=torch.float32).reshape(1, 2, 3)
    base = torch.empty(1, out_h, out_w, 3)
    base[..., 0].copy_(torch.linspace((1.0 - out_w) * 0.5, (out_w - 1.0) * 0.5, steps=out_w))
    base[..., 1].copy_(torch.linspace((1.0 - out_h) * 0.5, (out_h - 1.0) * 0.5, steps=out_h).unsqueeze_(-1))
    base[..., 2].fill_(1)
    rescaled = theta.transpose(1, 2).div_(torch.tensor([0.5 * width, 0.5 * height]))
    grid = base.view(1, out_h * out_w, 3).bmm(rescaled).view(1, out_h, out_w, 2)
    if fill is not None:
        x = torch.cat((x, torch.ones(1, 1, height, width)), 1)
    out = torch.nn.functional.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    if fill is not None:
        out, mask = out[:, :-1], out[:, -1:].expand_as(out[:, :-1])
        fill_image = torch.tensor([float(f) for f in np.atleast_1d(fill)]).view(1, -1, 1, 1)
        if mode == "nearest":
            out = torch.where(mask < 0.5, fill_image.expand_as(out), out)
        else:
            out = (out - fill_image) * mask + fill_image
    out = out[0]
    return out.numpy() if fp else out.round().to(torch.uint8).numpy()
