"""Lookups by integer index: ``one_hot`` and ``embedding`` (a row gather), as ``torch.nn.functional``.

``embedding``'s backward scatters each output row's gradient back to the weight row it
came from (repeated indices add up, through ``_scatter.scatter_add_channels``); the ``padding_idx``
row gets none, and ``scale_grad_by_freq`` divides each contribution by how often its
index occurs in the input. ``max_norm`` renormalises, in place and before the lookup, the
rows the input refers to whose ``norm_type``-norm exceeds it (as PyTorch's
``embedding_renorm_``: scale ``max_norm / (norm + 1e-7)``).
"""

from __future__ import annotations

import math
import numbers

from convstack.autograd import Function, no_grad
from convstack.backend import get_array_module
from convstack.nn.functional._scatter import scatter_add_channels
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor, as_tensor


def _indices(op: str, input) -> Tensor:
    input = as_tensor(input)
    if input.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer indices, received dtype {input.dtype}")
    return input


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """Class indices (*) as one-hot rows (*, num_classes) of int64.

    Args:
        tensor: integer class indices of any shape (0-D and empty included), in [0, num_classes).
        num_classes: the number of classes; -1 infers ``max(tensor) + 1`` (not from an empty tensor).

    Shape:
        - Input: (*). Output: (*, num_classes).

    Examples:
        >>> F.one_hot(cs.tensor([0, 2]))
        tensor([[1, 0, 0],
                [0, 0, 1]])
    """
    op = "one_hot"
    indices = _indices(op, tensor).data
    xp = get_array_module(indices)
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < -1:
        raise invalid(op, "num_classes", "a non-negative integer, or -1 to infer it", num_classes)
    if indices.size and int(indices.min()) < 0:
        raise ValueError(f"{op}: class values must be non-negative, received {int(indices.min())}")
    if num_classes == -1:
        if indices.size == 0:
            raise ValueError(f"{op}: cannot infer the number of classes from an empty tensor; pass num_classes")
        num_classes = int(indices.max()) + 1
    elif indices.size and int(indices.max()) >= num_classes:
        raise ValueError(f"{op}: class values must be smaller than num_classes {num_classes}, received "
                         f"{int(indices.max())}")
    classes = xp.arange(int(num_classes))
    return Tensor._make((indices[..., None] == classes).astype(xp.int64))  # (*, C)


class Embedding(Function):
    """Rows of ``weight`` (V, D) picked by ``indices`` (*): (*, D)."""

    def forward(self, weight, *, indices, padding_idx, scale_grad_by_freq):
        xp = get_array_module(weight)
        self.indices, self.rows = indices, weight.shape[0]
        self.padding_idx, self.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        return xp.take(weight, indices, axis=0)

    def backward(self, grad):
        xp = get_array_module(grad)
        dim = grad.shape[-1]
        flat = self.indices.reshape(-1)  # (M,)
        rows = grad.reshape(-1, dim)  # (M, D)
        if self.scale_grad_by_freq:
            counts = xp.bincount(flat, minlength=self.rows)
            rows = rows / counts[flat][:, None].astype(grad.dtype)
        if self.padding_idx is not None:
            rows = rows * (flat != self.padding_idx)[:, None]
        summed = scatter_add_channels(flat, xp.ascontiguousarray(rows.T), self.rows)  # (D, V)
        return (xp.ascontiguousarray(summed.T),)


def _renorm_(weight: Tensor, indices, max_norm: float, norm_type: float) -> None:
    """Scale, in place, the referenced rows whose norm exceeds ``max_norm`` down to it."""
    xp = get_array_module(weight.data)
    rows = xp.unique(indices)
    picked = weight.data[rows]  # (R, D)
    magnitude = xp.abs(picked)
    if math.isinf(norm_type):
        norms = magnitude.max(axis=1) if norm_type > 0 else magnitude.min(axis=1)
    else:
        norms = (magnitude ** norm_type).sum(axis=1) ** (1 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1).astype(weight.dtype)
    with no_grad():
        weight.data[rows] = picked * scale[:, None]


def padding_index(op: str, padding_idx, num_embeddings: int):
    """``padding_idx`` (None, or an int in [-V, V)) as a non-negative index, or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral) or not (
        -num_embeddings <= padding_idx < num_embeddings
    ):
        raise invalid(op, "padding_idx", f"None or an integer in [{-num_embeddings}, {num_embeddings - 1}] "
                      f"(within num_embeddings {num_embeddings})", padding_idx)
    return int(padding_idx) % num_embeddings


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of ``weight`` by the integer indices in ``input``.

    Args:
        input: integer indices of any shape (0-D and empty included), in [0, V).
        weight: the (V, D) embedding matrix.
        padding_idx: this row (negative counts from the end) receives no gradient.
        max_norm: if given, rows referenced by ``input`` whose ``norm_type``-norm exceeds it are
            rescaled to it, in place in ``weight``, before the lookup.
        norm_type: the p of the norm for ``max_norm``.
        scale_grad_by_freq: divide each row's gradient by its index's count in ``input``.
        sparse: must be False (convstack has dense gradients only).

    Shape:
        - Input: (*). Weight: (V, D). Output: (*, D).

    Examples:
        >>> F.embedding(cs.tensor([2, 0]), cs.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]))
        tensor([[4., 5.],
                [0., 1.]])
    """
    op = "embedding"
    indices, weight = _indices(op, input), as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: expected a 2-D weight (num_embeddings, embedding_dim), received weight shape "
                         f"{weight.shape}")
    if weight.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point weight, received dtype {weight.dtype}")
    if sparse is not False:
        raise invalid(op, "sparse", "False (convstack has dense gradients only)", sparse)
    rows = weight.shape[0]
    padding = padding_index(op, padding_idx, rows)
    data = indices.data
    if data.size and (int(data.min()) < 0 or int(data.max()) >= rows):
        bad = int(data.min()) if int(data.min()) < 0 else int(data.max())
        raise IndexError(f"{op}: index {bad} is out of range for {rows} embeddings (expected indices in [0, {rows}))")
    if max_norm is not None:
        if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real):
            raise invalid(op, "max_norm", "None or a number", max_norm)
        if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or norm_type == 0:
            raise invalid(op, "norm_type", "a non-zero number (or inf)", norm_type)
        if data.size:
            _renorm_(weight, data, float(max_norm), float(norm_type))
    return Embedding.apply(weight, indices=data, padding_idx=padding, scale_grad_by_freq=bool(scale_grad_by_freq))
