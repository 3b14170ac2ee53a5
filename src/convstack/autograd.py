"""Reverse-mode automatic differentiation: the ``Function`` base and the graph walk.

A ``Function`` subclass implements one op: ``forward`` on raw arrays, saving on
``self`` only what ``backward`` needs, and ``backward`` returning one gradient per
tensor input, in order (``None`` where an input needs none). ``Function.apply``
wraps the arrays in tensors and records the op in the graph when gradients are on.

The graph links ops, not tensors: each recorded ``Function`` keeps one edge per input,
to the op that made it (or to the input itself when it is a leaf), so an op's inputs stay
alive only when its ``forward`` saved them for ``backward``. ``backward()`` on a tensor
counts, for every op it reaches, how many edges lead there, and runs each op's
``backward`` once all of its output's gradient has arrived (iteratively, so deep networks
do not hit Python's recursion limit). Each gradient is dropped as soon as its op consumed
it, and each op's saved arrays as soon as its ``backward`` ran. Hooks and ``retain_grad``
on a non-leaf tensor live on the op that made it. A leaf's post-accumulate hooks run once
its ``.grad`` holds the pass's gradient, and ``queue_callback`` runs a function when the
walk has ended: with them, gradient averaging across processes
(``convstack.nn.parallel.DistributedDataParallel``) starts while backward goes on and
finishes before ``backward()`` returns.

In anomaly mode (``convstack.detect_anomaly()``, see ``convstack.anomaly``) ``apply``
checks every op's output and the graph walk every gradient an op returns for NaN and Inf.
"""

from __future__ import annotations

import contextlib
import sys
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

    Recorded ops hold ``next_edges``: per input, ``None`` when it needs no gradient, else
    ``(node, shape, dtype)`` with ``node`` the op that made the input, or the input tensor
    itself when it is a leaf. Not the input tensors: their arrays stay alive only where
    ``forward`` saved them.
    """

    needs_input_grad: tuple = ()
    next_edges: tuple = ()
    _tensor_hooks: tuple = ()  # hooks registered on the output tensor (a list once one is)
    _retained = None  # weak reference to the output tensor when it retains its gradient

    @classmethod
    def apply(cls, *inputs, **options):
        tensors = [x if isinstance(x, _Tensor) else _as_tensor(x) for x in inputs]
        fn = cls()
        fn.needs_input_grad = needs = tuple([t.requires_grad for t in tensors])
        outputs = fn.forward(*[t.data for t in tensors], **options)
        extra = ()
        if type(outputs) is tuple:
            outputs, *extra = outputs
        if _anomaly._enabled:
            _anomaly.check_forward(fn, [t.data for t in tensors], outputs)
        if True in needs and getattr(_state, "grad_enabled", True):
            fn.next_edges = tuple(
                [(t.grad_fn or t, t.data.shape, t.data.dtype) if t.requires_grad else None for t in tensors]
            )
            result = _make(outputs, True, fn)
        else:
            result = _make(outputs)
        if extra:
            result = (result, *(_make(e) for e in extra))
        if _recorder is not None:
            _recorder(fn, tuple(tensors), options, result)
        return result

    def forward(self, *arrays, **options):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad_output):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    released = False

    def release(self):
        """Drop the saved arrays and the edges once backward has run."""
        self.__dict__.clear()
        self.released = True


_Tensor = _as_tensor = _make = None


def _bind_tensor(tensor_class, as_tensor) -> None:
    """Called once by ``convstack.tensor`` (which imports this module first) to hand over ``Tensor``."""
    global _Tensor, _as_tensor, _make
    _Tensor, _as_tensor, _make = tensor_class, as_tensor, tensor_class._make


def _count_edges(root_node) -> dict:
    """For every node reachable from ``root_node``: ``id -> [node, edges leading to it]``."""
    nodes = {id(root_node): [root_node, 0]}
    stack = [root_node]
    while stack:
        node = stack.pop()
        for edge in node.next_edges if isinstance(node, Function) else ():
            if edge is None:
                continue
            entry = nodes.get(id(edge[0]))
            if entry is None:
                nodes[id(edge[0])] = [edge[0], 1]
                stack.append(edge[0])
            else:
                entry[1] += 1
    return nodes


def _run_hooks(hooks, grad):
    for hook in list(hooks):
        replaced = hook(_make(grad))
        if replaced is not None:
            grad = replaced.data if isinstance(replaced, _Tensor) else replaced
    return grad


# References to a gradient array that only the backward walk holds, as sys.getrefcount sees
# them inside ``_store_grad``: run_backward's local, _store_grad's parameter, getrefcount's argument.
_WALK_REFERENCES = 3


def _store_grad(tensor, grad, steal: bool = False) -> None:
    """Accumulate ``grad`` into ``tensor.grad``; the first gradient is copied unless it can be taken over.

    Backward functions may return arrays they share (an addition passes its incoming
    gradient on to both inputs; a hook may keep what it saw), so ``tensor.grad`` gets a
    copy of them. With ``steal``, an array that owns its memory and that nothing but the
    backward walk references is taken over instead, as PyTorch's AccumulateGrad does:
    an input gradient of a convolution is then not copied once more (1-8 MiB for the
    benchmark layers).
    """
    if tensor.grad is None:
        owned = steal and grad.base is None and grad.flags.writeable and grad.flags.c_contiguous
        if owned and sys.getrefcount(grad) <= _WALK_REFERENCES:
            tensor.grad = _make(grad)
        else:
            tensor.grad = _make(grad.copy())
    else:
        tensor.grad = _make(tensor.grad.data + grad)


def queue_callback(callback) -> None:
    """Call ``callback()`` once the backward pass now running has walked the whole graph.

    For hooks (as PyTorch's ``Variable._execution_engine.queue_callback``): a hook that
    starts work during backward queues the function that completes it, which then runs
    before ``backward()`` returns, once every leaf has its gradient. Callbacks run in the
    order queued (one may queue another), and not at all when the walk raised.
    """
    queued = getattr(_state, "callbacks", None)
    if queued is None:
        raise RuntimeError("queue_callback: no backward pass is running (call it from a hook during backward)")
    queued.append(callback)


@contextlib.contextmanager
def _callback_queue():
    """The scope of one backward walk for ``queue_callback``; runs the queue when the walk succeeded."""
    outer = getattr(_state, "callbacks", None)
    _state.callbacks = queued = []
    try:
        yield
        for callback in queued:  # the list may grow while it is walked
            callback()
    finally:
        _state.callbacks = outer


def run_backward(root, gradient, retain_graph: bool = False) -> None:
    """Propagate ``gradient`` (an array shaped like ``root``) back through the graph."""
    root_node = root.grad_fn if root.grad_fn is not None else root
    nodes = _count_edges(root_node)
    grads = {id(root_node): gradient}
    ready = [root_node]
    with no_grad(), _callback_queue():
        while ready:
            node = ready.pop()
            grad = grads.pop(id(node), None)
            if not isinstance(node, Function):  # a leaf
                if grad is not None:
                    if node._tensor_hooks:
                        grad = _run_hooks(node._tensor_hooks, grad)
                    _store_grad(node, grad, steal=True)
                    if node._post_accumulate_grad_hooks:
                        for hook in list(node._post_accumulate_grad_hooks):
                            hook(node)
                continue
            fn, edges = node, node.next_edges
            input_grads = ()
            if grad is not None:
                if fn.released:
                    raise RuntimeError(
                        "Trying to backward through the graph a second time; "
                        "pass retain_graph=True to the first backward() to keep it"
                    )
                if fn._tensor_hooks:
                    grad = _run_hooks(fn._tensor_hooks, grad)
                if fn._retained is not None and (retained := fn._retained()) is not None:
                    _store_grad(retained, grad)
                input_grads = fn.backward(grad)
                if type(input_grads) is not tuple:
                    input_grads = (input_grads,)
                if len(input_grads) != len(edges):
                    raise RuntimeError(
                        f"{type(fn).__name__}.backward returned {len(input_grads)} gradients for {len(edges)} inputs"
                    )
                if _anomaly._enabled:
                    _anomaly.check_backward(fn, grad, input_grads)
                grad = None
                if not retain_graph:
                    fn.release()
            for i, edge in enumerate(edges):
                if edge is None:
                    continue
                parent, shape, dtype = edge
                key = id(parent)
                parent_grad = input_grads[i] if input_grads else None
                if parent_grad is not None:
                    if parent_grad.shape != shape:
                        raise RuntimeError(
                            f"{type(fn).__name__}.backward returned a gradient of shape "
                            f"{parent_grad.shape} for an input of shape {shape}"
                        )
                    if parent_grad.dtype != dtype:
                        parent_grad = parent_grad.astype(dtype)
                    held = grads.get(key)
                    grads[key] = parent_grad if held is None else held + parent_grad
                entry = nodes[key]
                entry[1] -= 1
                if entry[1] == 0:
                    ready.append(parent)
            input_grads = parent_grad = held = None  # noqa: F841 - drop the last references now
