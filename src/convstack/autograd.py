"""Reverse-mode automatic differentiation: the ``Function`` base and the graph walk.

A ``Function`` subclass implements one op: ``forward`` on raw arrays, saving on
``self`` only what ``backward`` needs, and ``backward`` returning one gradient per
tensor input, in order (``None`` where an input needs none). ``Function.apply``
wraps the arrays in tensors and records the op in the graph when gradients are on.

``backward()`` on a tensor sorts the graph topologically and walks it in reverse,
as micrograd does, but iteratively so that deep networks do not hit Python's
recursion limit.

In anomaly mode (``convstack.detect_anomaly()``, see ``convstack.anomaly``) ``apply``
checks every op's output and the graph walk every gradient an op returns for NaN and Inf.
"""

from __future__ import annotations

import contextlib
import threading

from convstack import anomaly as _anomaly

_state = threading.local()

# Opt-in op recorder (``convstack.io.onnx_export`` sets it while tracing one forward pass):
# called as ``_recorder(fn, inputs, options, result)`` after every op; ``None`` costs one test per op.
_recorder = None


def is_grad_enabled() -> bool:
    """Whether ops record the graph (``False`` inside ``no_grad()``)."""
    return getattr(_state, "grad_enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


@contextlib.contextmanager
def no_grad():
    """Context manager (and decorator) under which ops record no graph."""
    previous = is_grad_enabled()
    set_grad_enabled(False)
    try:
        yield
    finally:
        set_grad_enabled(previous)


@contextlib.contextmanager
def enable_grad():
    previous = is_grad_enabled()
    set_grad_enabled(True)
    try:
        yield
    finally:
        set_grad_enabled(previous)


class Function:
    """One differentiable op. Subclasses define ``forward`` and ``backward``.

    ``forward(*arrays, **options)`` receives the arrays of the tensor inputs
    (positional) and any non-tensor options (keywords) and returns one array, or a
    tuple whose first element is the differentiable output and whose other elements
    are non-differentiable outputs (indices, masks).

    ``backward(grad_output)`` receives the gradient of the first output and returns
    a tuple with one gradient array (or ``None``) per tensor input.
    ``self.needs_input_grad`` says which inputs need one.
    """

    needs_input_grad: tuple = ()
    inputs: tuple = ()

    @classmethod
    def apply(cls, *inputs, **options):
        from convstack.tensor import Tensor, as_tensor

        tensors = tuple(x if isinstance(x, Tensor) else as_tensor(x) for x in inputs)
        fn = cls()
        fn.needs_input_grad = tuple(t.requires_grad for t in tensors)
        outputs = fn.forward(*(t.data for t in tensors), **options)
        extra = ()
        if isinstance(outputs, tuple):
            outputs, *extra = outputs
        if _anomaly._enabled:
            _anomaly.check_forward(fn, [t.data for t in tensors], outputs)
        requires_grad = is_grad_enabled() and any(fn.needs_input_grad)
        result = Tensor._make(outputs, requires_grad=requires_grad, grad_fn=fn if requires_grad else None)
        if requires_grad:
            fn.inputs = tensors
        if extra:
            result = (result, *(Tensor._make(e) for e in extra))
        if _recorder is not None:
            _recorder(fn, tensors, options, result)
        return result

    def forward(self, *arrays, **options):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad_output):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    released = False

    def release(self):
        """Drop the saved arrays and the links to inputs once backward has run."""
        self.__dict__.clear()
        self.released = True


def _topological_order(root):
    """Tensors reachable from ``root`` through ``grad_fn``, inputs before outputs."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor.grad_fn is not None:
            for parent in tensor.grad_fn.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def run_backward(root, gradient, retain_graph: bool = False) -> None:
    """Propagate ``gradient`` (an array shaped like ``root``) back through the graph."""
    from convstack.tensor import Tensor

    grads = {id(root): gradient}
    with no_grad():
        for tensor in reversed(_topological_order(root)):
            grad = grads.pop(id(tensor), None)
            if grad is None:
                continue
            for hook in tensor._hooks:
                replaced = hook(Tensor._make(grad))
                if replaced is not None:
                    grad = replaced.data if isinstance(replaced, Tensor) else replaced
            fn = tensor.grad_fn
            if fn is None or tensor._retains_grad:
                # A fresh array: backward passes may hand the same array to several inputs.
                if tensor.grad is None:
                    tensor.grad = Tensor._make(grad.copy())
                else:
                    tensor.grad = Tensor._make(tensor.grad.data + grad)
            if fn is None:
                continue
            if fn.released:
                raise RuntimeError(
                    "Trying to backward through the graph a second time; "
                    "pass retain_graph=True to the first backward() to keep it"
                )
            input_grads = fn.backward(grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(fn.inputs):
                raise RuntimeError(
                    f"{type(fn).__name__}.backward returned {len(input_grads)} gradients for {len(fn.inputs)} inputs"
                )
            if _anomaly._enabled:
                _anomaly.check_backward(fn, grad, input_grads)
            for parent, parent_grad in zip(fn.inputs, input_grads):
                if parent_grad is None or not parent.requires_grad:
                    continue
                if parent_grad.shape != parent.shape:
                    raise RuntimeError(
                        f"{type(fn).__name__}.backward returned a gradient of shape "
                        f"{parent_grad.shape} for an input of shape {parent.shape}"
                    )
                if parent_grad.dtype != parent.dtype:
                    parent_grad = parent_grad.astype(parent.dtype)
                key = id(parent)
                if key in grads:
                    grads[key] = grads[key] + parent_grad
                else:
                    grads[key] = parent_grad
            if not retain_graph:
                fn.release()
