"""Classical image filtering on the engine's own convolution: ``correlate`` and ``convolve``.

An image is filtered by one small kernel: 1-D signals (L,), gray images (H, W), volumes
(D, H, W), and the same with a trailing channel axis (..., C) which the kernel filters
channel by channel (one depthwise, ``groups=C``, convolution). The work is done by
``convstack.nn.functional.conv1d/2d/3d`` on the input extended at its borders, so a
Tensor that requires grad gets gradients for the image and the kernel.

Conventions, chosen to agree with ``scipy.ndimage`` and ``scipy.signal``:

- correlation slides the kernel as it is, ``out[i] = sum_j w[j] x[i + j - c]``; true
  convolution flips the kernel along every axis first (the lecture's "notice the flip").
- ``c``, the kernel's centre, is ``k // 2`` along an axis of size ``k`` (scipy.ndimage's
  ``origin=0``). An even kernel therefore reaches one cell further before the centre
  than after it under correlation (pads ``k//2`` before, ``k//2 - 1`` after), and
  convolution, which flips the kernel about that same centre cell, the other way round.
- modes: ``'same'`` keeps the input size; ``'full'`` returns every position where kernel
  and input overlap (size ``n + k - 1``), ``'valid'`` only those where the kernel lies
  inside the input (``n - k + 1``). ``'same'`` agrees with ``scipy.signal.correlate2d`` /
  ``convolve2d`` for odd kernels; for even ones scipy.signal's own 'same' centring differs
  between its functions, and this module follows scipy.ndimage.
- boundaries name what lies beyond the border, for input ``a b c d``:

  ==============  ======================  ==============  =================
  ``boundary``    beyond the left edge    scipy.ndimage   ``F.pad`` / numpy
  ==============  ======================  ==============  =================
  ``'zero'``      ``0 0 0 | a b c d``     ``constant``    constant
  ``'reflect'``   ``c b a | a b c d``     ``reflect``     -- / symmetric
  ``'mirror'``    ``d c b | a b c d``     ``mirror``      reflect / reflect
  ``'replicate'`` ``a a a | a b c d``     ``nearest``     replicate / edge
  ``'wrap'``      ``b c d | a b c d``     ``wrap``        circular / wrap
  ==============  ======================  ==============  =================

  ``'reflect'`` (half-sample symmetric, the edge pixel repeated) is scipy's meaning, not
  PyTorch's: PyTorch's ``'reflect'`` is called ``'mirror'`` here. Extensions longer than
  the input repeat periodically, as in scipy.

dtypes: float32 and float64 images keep their dtype; integer and boolean images (uint8
photographs) are filtered in float64 with their values unchanged (0..255, not rescaled),
and the result is float64. The kernel is cast to the image's float dtype.
"""

from __future__ import annotations

import math

import numpy

from convstack.autograd import is_grad_enabled
from convstack.backend import get_array_module
from convstack.nn import functional as F
from convstack.nn.functional._utils import invalid, shape_context
from convstack.tensor import Tensor, as_tensor

MODES = ("same", "full", "valid")
BOUNDARIES = ("zero", "reflect", "mirror", "replicate", "wrap")

# numpy.pad's name for each boundary: it defines the extension for every length, which is
# how the gather path below reproduces scipy's periodic extensions exactly.
NUMPY_PAD_MODES = {"zero": "constant", "reflect": "symmetric", "mirror": "reflect", "replicate": "edge", "wrap": "wrap"}
_TORCH_PAD_MODES = {"zero": "constant", "mirror": "reflect", "replicate": "replicate", "wrap": "circular"}
_CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# Without gradients, a large image is filtered in bands of output rows so that the im2col
# columns of one band (channels * prod(kernel) * band pixels values) stay under this size.
BAND_BYTES = 64 << 20


def border_pads(kernel_shape, mode: str, flip: bool) -> tuple:
    """One (before, after) extension per axis for ``mode``; ``flip`` for true convolution.

    'same' centres the kernel on cell ``k // 2`` (scipy.ndimage's origin 0); a flipped
    kernel has that cell at ``k - 1 - k // 2``, hence the swapped amounts.
    """
    if mode == "valid":
        return tuple((0, 0) for _ in kernel_shape)
    if mode == "full":
        return tuple((k - 1, k - 1) for k in kernel_shape)
    return tuple((k - 1 - k // 2, k // 2) if flip else (k // 2, k - 1 - k // 2) for k in kernel_shape)


def extension_indices(size: int, before: int, after: int, boundary: str):
    """Source index of each cell of an axis of ``size`` extended by ``before``/``after``; -1 is a zero."""
    if boundary == "zero":
        return numpy.pad(numpy.arange(size), (before, after), mode="constant", constant_values=-1)
    return numpy.pad(numpy.arange(size), (before, after), mode=NUMPY_PAD_MODES[boundary])


def _fits_pad(size: int, before: int, after: int, boundary: str) -> bool:
    """Whether ``F.pad`` can extend this axis itself (it refuses long reflect/circular pads)."""
    if boundary == "mirror":
        return max(before, after) < size
    if boundary == "wrap":
        return max(before, after) <= size
    return boundary in ("zero", "replicate")


def _extend(x: Tensor, pads: tuple, boundary: str) -> Tensor:
    """(1, C, *S) -> (1, C, *(S + before + after)) with ``boundary``'s values beyond the borders.

    ``F.pad`` does it where it can; scipy's half-sample ``'reflect'`` (which PyTorch lacks)
    and extensions longer than the input gather the cells by index, one axis at a time.
    """
    if not any(b or a for b, a in pads):
        return x
    spatial = x.shape[2:]
    if all(_fits_pad(n, b, a, boundary) for n, (b, a) in zip(spatial, pads)):
        flat = tuple(amount for pair in reversed(pads) for amount in pair)  # last axis first, as F.pad
        return F.pad(x, flat, mode=_TORCH_PAD_MODES[boundary])
    xp = get_array_module(x.data)
    for axis, (n, (before, after)) in enumerate(zip(spatial, pads)):
        if before or after:
            index = xp.asarray(extension_indices(n, before, after, boundary))
            x = x[(slice(None), slice(None)) + (slice(None),) * axis + (index,)]
    return x


def _convolve_bands(conv, x: Tensor, weight: Tensor, groups: int) -> Tensor:
    """``conv(x, weight, groups=groups)``, in bands of output rows when no gradient is wanted."""
    kernel = weight.shape[2:]
    out_sizes = [n - k + 1 for n, k in zip(x.shape[2:], kernel)]
    row_bytes = x.shape[1] * math.prod(kernel) * math.prod(out_sizes[1:]) * x.data.itemsize
    rows = max(1, BAND_BYTES // max(row_bytes, 1))
    wants_grad = is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if wants_grad or rows >= out_sizes[0]:
        return conv(x, weight, groups=groups)
    xp = get_array_module(x.data)
    bands = [
        conv(x[:, :, start : start + rows + kernel[0] - 1], weight, groups=groups).data
        for start in range(0, out_sizes[0], rows)
    ]
    return Tensor._make(xp.concatenate(bands, axis=2))


def _as_float_tensor(value, dtype=None) -> Tensor:
    """A Tensor of ``value``; integer and boolean data become float64 (or ``dtype``)."""
    if not isinstance(value, Tensor):
        value = as_tensor(value if hasattr(value, "dtype") else numpy.asarray(value))
    target = dtype if dtype is not None else (value.dtype if value.dtype.kind == "f" else numpy.dtype(numpy.float64))
    return value if value.dtype == target else value.to(target)


def _filter(op: str, image, kernel, mode: str, boundary: str, flip: bool):
    if mode not in MODES:
        raise invalid(op, "mode", "'same', 'full' or 'valid'", mode)
    if boundary not in BOUNDARIES:
        raise invalid(op, "boundary", "'zero', 'reflect', 'mirror', 'replicate' or 'wrap'", boundary)
    return_tensor = isinstance(image, Tensor)
    x = _as_float_tensor(image)
    weight = _as_float_tensor(kernel, x.dtype)
    dims = weight.ndim
    context = shape_context(image=x.shape, kernel=weight.shape)
    if dims not in _CONVS:
        raise invalid(op, "kernel", "a 1-D, 2-D or 3-D kernel", f"a {dims}-D kernel", context)
    if x.ndim not in (dims, dims + 1):
        expected = f"a {dims}-D image, or {dims + 1}-D with channels last, for a {dims}-D kernel"
        raise invalid(op, "image", expected, f"a {x.ndim}-D image", context)
    for name, value in (("image", x), ("kernel", weight)):
        if min(value.shape) < 1:
            raise invalid(op, name, f"a non-empty {name}", f"shape {value.shape}", context)
    channels_last = x.ndim == dims + 1
    spatial = x.shape[:dims]
    if mode == "valid" and any(k > n for k, n in zip(weight.shape, spatial)):
        raise invalid(op, "kernel", "a kernel no larger than the image in mode 'valid'", weight.shape, context)

    if flip:
        weight = weight[(slice(None, None, -1),) * dims]
    channels = x.shape[-1] if channels_last else 1
    if channels_last:
        x = x.permute(dims, *range(dims)).unsqueeze(0)  # (1, C, *S)
    else:
        x = x.reshape(1, 1, *spatial)  # (1, 1, *S)
    weight = weight.reshape(1, 1, *weight.shape).expand(channels, 1, *weight.shape)  # (C, 1, *K)
    extended = _extend(x, border_pads(weight.shape[2:], mode, flip), boundary)  # (1, C, *S_ext)
    out = _convolve_bands(_CONVS[dims], extended, weight, groups=channels)  # (1, C, *S_out)
    if channels_last:
        out = out[0].permute(*range(1, dims + 1), 0)  # (*S_out, C)
    else:
        out = out.reshape(*out.shape[2:])  # (*S_out)
    if return_tensor:
        return out
    return get_array_module(out.data).ascontiguousarray(out.data)


_DOC = """{summary}

    Args:
        image: (L,), (H, W) or (D, H, W) matching the kernel's rank, or the same with a
            trailing channel axis (..., C), each channel filtered on its own. A NumPy
            array or a Tensor (then gradients reach the image and a Tensor kernel).
        kernel: 1-D, 2-D or 3-D weights; any sizes, odd or even (centre ``k // 2``).
        mode: ``'same'`` (the input size), ``'full'`` (``n + k - 1``) or ``'valid'``
            (``n - k + 1``; the kernel may not be larger than the image).
        boundary: what lies beyond the borders: ``'zero'``, ``'reflect'`` (``c b a | a b c``,
            scipy's), ``'mirror'`` (``c b | a b c``, PyTorch's reflect), ``'replicate'``
            or ``'wrap'``. Used by 'same' and 'full'; 'valid' never reads beyond.

    Returns:
        The same kind as ``image`` (array or Tensor), float: float32/float64 images keep
        their dtype, integer images (uint8) give float64 with unscaled values.

    Shape:
        Per spatial axis of size ``n`` and kernel size ``k``: ``n`` ('same'),
        ``n + k - 1`` ('full') or ``n - k + 1`` ('valid'); channels are kept.

    Examples:
        >>> f = numpy.array([10., 50, 60, 10, 20, 40, 30])
        >>> {name}(f, numpy.full(3, 1 / 3)).round(3)  # the lecture's box filter
        array([20.   , 40.   , 40.   , 30.   , 23.333, 30.   , 23.333])
        >>> {name}(numpy.eye(4), numpy.ones((3, 3)), mode="valid")
        array([[3., 2.],
               [2., 3.]])
    """


def correlate(image, kernel, mode: str = "same", boundary: str = "zero"):
    return _filter("correlate", image, kernel, mode, boundary, flip=False)


def convolve(image, kernel, mode: str = "same", boundary: str = "zero"):
    return _filter("convolve", image, kernel, mode, boundary, flip=True)


correlate.__doc__ = _DOC.format(
    name="correlate",
    summary="Cross-correlate ``image`` with ``kernel``: ``out[i] = sum_j kernel[j] * image[i + j - k // 2]``.",
)
convolve.__doc__ = _DOC.format(
    name="convolve",
    summary="Convolve ``image`` with ``kernel`` (correlation with the kernel flipped along every axis).",
)
