"""Shape ops: reshape, permute, expand, and the joins cat and stack."""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module


class Reshape(Function):
    def forward(self, a, *, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, grad):
        return (grad.reshape(self.in_shape),)


class Permute(Function):
    def forward(self, a, *, dims):
        self.dims = dims
        return a.transpose(dims)

    def backward(self, grad):
        xp = get_array_module(grad)
        inverse = xp.argsort(xp.asarray(self.dims)).tolist() if xp.__name__ != "numpy" else _inverse(self.dims)
        return (grad.transpose(inverse),)


def _inverse(dims):
    inverse = [0] * len(dims)
    for position, d in enumerate(dims):
        inverse[d] = position
    return inverse


class Expand(Function):
    def forward(self, a, *, shape):
        from convstack.ops.arithmetic import unbroadcast  # noqa: F401 - used in backward

        self.in_shape = a.shape
        return get_array_module(a).broadcast_to(a, shape)

    def backward(self, grad):
        from convstack.ops.arithmetic import unbroadcast

        return (unbroadcast(grad, self.in_shape),)


class Cat(Function):
    def forward(self, *arrays, dim):
        xp = get_array_module(*arrays)
        self.dim = dim
        self.sizes = [a.shape[dim] for a in arrays]
        return xp.concatenate(arrays, axis=dim)

    def backward(self, grad):
        grads, start = [], 0
        for size in self.sizes:
            index = [slice(None)] * grad.ndim
            index[self.dim] = slice(start, start + size)
            grads.append(grad[tuple(index)])
            start += size
        return tuple(grads)


class Stack(Function):
    def forward(self, *arrays, dim):
        xp = get_array_module(*arrays)
        self.dim, self.count = dim, len(arrays)
        return xp.stack(arrays, axis=dim)

    def backward(self, grad):
        xp = get_array_module(grad)
        return tuple(xp.take(grad, i, axis=self.dim) for i in range(self.count))
