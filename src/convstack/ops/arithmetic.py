"""Broadcasting arithmetic: + - * / ** negation and matrix multiplication."""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Add(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad):
        return unbroadcast(grad, self.a_shape), unbroadcast(grad, self.b_shape)


class Sub(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad):
        grad_b = unbroadcast(-grad, self.b_shape) if self.needs_input_grad[1] else None
        return unbroadcast(grad, self.a_shape), grad_b


class Mul(Function):
    """``a * b``; each operand is kept only for the other's gradient (as PyTorch: a tensor backward
    will not read is neither held nor version-checked)."""

    def forward(self, a, b):
        needs = self.needs_input_grad
        self.a, self.b = (a if needs[1] else None), (b if needs[0] else None)
        self.a_shape, self.b_shape = a.shape, b.shape
        return a * b

    def backward(self, grad):
        grad_a = unbroadcast(grad * self.b, self.a_shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * self.a, self.b_shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """``a / b``; ``a`` is kept only for ``b``'s gradient."""

    def forward(self, a, b):
        self.a, self.b = (a if self.needs_input_grad[1] else None), b
        self.a_shape = a.shape
        return a / b

    def backward(self, grad):
        grad_a = unbroadcast(grad / self.b, self.a_shape) if self.needs_input_grad[0] else None
        grad_b = None
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(-grad * self.a / (self.b * self.b), self.b.shape)
        return grad_a, grad_b


class Pow(Function):
    """``a ** b`` with both operands tensors (a constant exponent is a 0-d tensor)."""

    def forward(self, a, b):
        xp = get_array_module(a)
        self.a, self.b = a, b
        self.out = xp.power(a, b)
        return self.out

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            # b * a^(b-1), written to stay finite at a = 0 for b >= 1
            grad_a = unbroadcast(grad * self.b * xp.power(self.a, self.b - 1), self.a.shape)
        if self.needs_input_grad[1]:
            log_a = xp.log(xp.where(self.a > 0, self.a, 1))
            grad_b = unbroadcast(grad * self.out * log_a, self.b.shape)
        return grad_a, grad_b


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)


class MatMul(Function):
    """``a @ b`` with NumPy's matmul semantics (1-D operands, batch broadcasting)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        xp = get_array_module(grad)
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a  # (…, n, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (…, k, m)
        g = grad
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = unbroadcast(g @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(xp.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return grad_a, grad_b
