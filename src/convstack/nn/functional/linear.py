"""The affine map ``y = x W^T + b`` over the last dimension (a fully connected layer)."""

from __future__ import annotations

from convstack.autograd import Function
from convstack.nn.functional._utils import shape_context
from convstack.tensor import Tensor, as_tensor


class Linear(Function):
    """``x @ W.T + b`` as one GEMM on ``x`` flattened to (M, in_features)."""

    def forward(self, x, weight, bias=None):
        out_features, in_features = weight.shape
        rows = x.reshape(-1, in_features)  # (M, in) with M the product of the leading dims
        out = rows @ weight.T  # (M, out)
        if bias is not None:
            out += bias
        # Each operand is kept only for the other's gradient (as PyTorch): less memory, and no
        # version check on a tensor that backward will not read.
        self.rows = rows if self.needs_input_grad[1] else None
        self.weight = weight if self.needs_input_grad[0] else None
        self.out_features, self.x_shape = out_features, x.shape
        return out.reshape(x.shape[:-1] + (out_features,))

    def backward(self, grad):
        grad_rows = grad.reshape(-1, self.out_features)  # (M, out)
        grad_x = (grad_rows @ self.weight).reshape(self.x_shape) if self.needs_input_grad[0] else None
        grad_weight = grad_rows.T @ self.rows if self.needs_input_grad[1] else None
        grad_bias = None
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            grad_bias = grad_rows.sum(axis=0)
        return (grad_x, grad_weight) if len(self.needs_input_grad) == 2 else (grad_x, grad_weight, grad_bias)


def linear(input, weight, bias=None) -> Tensor:
    """Apply ``y = x W^T + b`` to the last dimension of ``input``.

    Args:
        input: (*, in_features), any number of leading dimensions (none included).
        weight: (out_features, in_features).
        bias: (out_features,) or None.

    Shape:
        - Input: (*, H_in) with H_in = in_features.
        - Output: (*, H_out) with H_out = out_features.

    Examples:
        >>> F.linear(cs.ones(2, 3), cs.ones(4, 3), cs.zeros(4)).shape
        (2, 4)
    """
    input, weight = as_tensor(input), as_tensor(weight)
    x, w = input.data, weight.data
    if w.ndim != 2:
        context = shape_context(input=input.shape, weight=weight.shape)
        raise ValueError(f"linear: expected a 2-D weight (out_features, in_features), received {context}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        last = input.shape[-1] if input.ndim else None
        raise ValueError(
            f"linear: the last dimension of input ({last}) must equal in_features ({weight.shape[1]}), "
            f"received {shape_context(input=input.shape, weight=weight.shape)}"
        )
    tensors = (input, weight) if bias is None else (input, weight, as_tensor(bias))
    if w.dtype != x.dtype or (bias is not None and tensors[2].data.dtype != x.dtype):
        dtypes = ", ".join(f"{name} {t.dtype}" for name, t in zip(("input", "weight", "bias"), tensors))
        raise TypeError(f"linear: expected one dtype for all arguments, received {dtypes}")
    if bias is None:
        return Linear.apply(input, weight)
    bias = tensors[2]
    if bias.data.shape != (w.shape[0],):
        raise ValueError(
            f"linear: expected bias of shape ({weight.shape[0]},) (out_features), received "
            f"{shape_context(input=input.shape, weight=weight.shape, bias=bias.shape)}"
        )
    return Linear.apply(input, weight, bias)
