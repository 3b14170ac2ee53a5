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

Version counters, as PyTorch's: every in-place operation on a tensor (``add_``,
``__setitem__``, an optimizer's step ...) bumps its ``_version``, shared with the tensors
that view the same memory (an op whose output is a view of an input shares the input's
counter). When ``apply`` records an op, it notes the version of each input (and of the
output) whose array the op's ``forward`` kept on ``self`` (the array itself or a view of
it); the graph walk compares before calling ``backward`` and raises PyTorch's
``RuntimeError`` ("one of the variables needed for gradient computation has been modified
by an inplace operation ...") naming the op that saved it and the in-place op that changed
it, instead of computing a wrong gradient. ``Function.apply_inplace`` runs an op in place
and makes its target's history continue from it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref

from convstack import anomaly as _anomaly
from convstack.backend import ARRAY_TYPES as _ARRAYS

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
    _saved_versions: tuple = ()  # (counter, version, input position or -1 for the output, array) per saved tensor

    @classmethod
    def apply(cls, *inputs, **options):
        tensors = [x if isinstance(x, _Tensor) else _as_tensor(x) for x in inputs]
        for t in tensors:
            if t._view_base is not None:  # a view whose base an in-place op changed since: its history anew
                _refresh_view(t)
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
            _guard_saved(fn, tensors, outputs, result)
        else:
            result = _make(outputs)
        if getattr(outputs, "base", None) is not None:  # maybe a view of an input: share its version counter
            _share_view(result, outputs.base, tensors, cls, options)
        if extra:
            result = (result, *(_make(e) for e in extra))
        if _recorder is not None:
            _recorder(fn, tuple(tensors), options, result)
        return result

    @classmethod
    def apply_inplace(cls, target, *inputs, op: str, **options):
        """Run this op in place on ``target``: ``forward`` overwrites the first array it gets and returns it.

        As PyTorch: refused on a leaf that requires grad (and on a view of one) while
        gradients are on; ``target``'s version is bumped (``op`` names the operation in a
        later error); when the graph is recorded, ``target``'s history continues from this
        op (its ``grad_fn`` becomes it). Returns ``target``.
        """
        tensors = [target] + [x if isinstance(x, _Tensor) else _as_tensor(x) for x in inputs]
        recording = getattr(_state, "grad_enabled", True)
        if recording and target.requires_grad:
            if target.grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            base = target._view_base
            if base is not None and base.grad_fn is None and base.requires_grad:
                raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place "
                                   "operation.")
        flags = getattr(target.data, "flags", None)
        if flags is not None and not flags.writeable:
            raise RuntimeError(f"{op}: the tensor is a read-only view (expand() or a broadcast): more than one "
                               "element of it may refer to a single memory location; clone() it first")
        target._bump_version(op)
        fn = cls()
        fn.needs_input_grad = needs = tuple([t.requires_grad for t in tensors])
        outputs = fn.forward(*[t.data for t in tensors], **options)
        if _anomaly._enabled:
            _anomaly.check_forward(fn, [t.data for t in tensors], outputs)
        if True in needs and recording:
            fn.next_edges = tuple(
                [(t.grad_fn or t, t.data.shape, t.data.dtype) if t.requires_grad else None for t in tensors]
            )
            _guard_saved(fn, tensors, outputs, target)
            if target._view_base is not None:
                _rebase_view(fn, target, tensors)
            else:
                if target._retains_grad:
                    fn._retained = weakref.ref(target)
                target.grad_fn, target.requires_grad = fn, True
        if _recorder is not None:
            _recorder(fn, tuple(tensors), options, target)
        return target

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


# ----------------------------------------------------------------------------- version counters
def _guard_saved(fn, tensors, outputs, result) -> None:
    """Note the versions of the tensors whose arrays ``fn.forward`` kept (itself, or a view of it)."""
    owners = {}  # id of the memory's owner -> True, for every array kept on fn
    for value in fn.__dict__.values():
        if isinstance(value, _ARRAYS):
            base = value.base
            owners[id(value if base is None else base)] = True
    if not owners:
        return
    guards = []
    for position, t in enumerate(tensors):
        data = t.data
        base = data.base
        if owners.pop(id(data if base is None else base), False):  # popped: one guard per memory
            counter = t._counter or t._version_counter()
            guards.append((counter, counter.value, position, data))
    if owners:
        base = outputs.base
        if owners.pop(id(outputs if base is None else base), False):
            counter = result._version_counter()
            guards.append((counter, counter.value, -1, outputs))
    if guards:
        fn._saved_versions = tuple(guards)


def _share_view(result, base, tensors, cls, options) -> None:
    """Give ``result`` its input's version counter when its array is a view of that input's memory."""
    for t in tensors:
        data = t.data
        if base is data or base is data.base:
            result._counter = counter = t._version_counter()
            root = t._view_base if t._view_base is not None else t
            result._view_base, result._view_chain = root, t._view_chain + ((cls, options),)
            result._view_version = counter.value
            return


def _refresh_view(view) -> None:
    """A view's history, made again from its base's when an in-place op changed their memory since
    (through the base or another view): as PyTorch regenerates a view's grad_fn."""
    if view._view_version == view._counter.value or not getattr(_state, "grad_enabled", True):
        return
    view._view_version = view._counter.value
    base = view._view_base
    if not base.requires_grad:
        return
    fresh = base
    for cls, options in view._view_chain:
        fresh = cls.apply(fresh, **options)
    view.grad_fn, view.requires_grad = fresh.grad_fn, True


def _check_versions(fn) -> None:
    for counter, version, position, array in fn._saved_versions:
        if counter.value != version:
            which = "the output" if position < 0 else f"input {position}"
            shape = "[" + ", ".join(str(size) for size in array.shape) + "]"
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"[{array.dtype} tensor of shape {shape}], {which} of {type(fn).__name__}, is at version "
                f"{counter.value}; expected version {version} instead. Hint: {counter.op} changed it after "
                f"{type(fn).__name__} saved it for backward; clone() it before changing it, or use the "
                "out-of-place operation."
            )


def _rebase_view(fn, view, tensors) -> None:
    """An in-place ``fn`` on ``view`` changed its base's memory: the base's history continues through
    ``CopySlices(fn)``, and the view's from the base (PyTorch's CopySlices)."""
    base = view._view_base
    copy = CopySlices()
    copy.inner, copy.chain, copy.layout = fn, view._view_chain, base.data
    copy.needs_input_grad = (base.requires_grad,) + fn.needs_input_grad[1:]
    copy.next_edges = ((base.grad_fn or base, base.data.shape, base.data.dtype) if base.requires_grad else None,
                       *fn.next_edges[1:])
    copy._saved_versions = fn._saved_versions
    base.grad_fn, base.requires_grad = copy, True
    with enable_grad():
        fresh = base
        for cls, options in view._view_chain:  # the view again, now of the base's new history
            fresh = cls.apply(fresh, **options)
    view.grad_fn, view.requires_grad = fresh.grad_fn, True
    view._view_version = view._counter.value


class CopySlices(Function):
    """The base of a view that an in-place op changed: its gradient outside the view passes through
    unchanged, inside the view it goes through the in-place op's backward (``inner``)."""

    def backward(self, grad):
        from convstack.backend import get_array_module

        whole = get_array_module(grad).empty_like(self.layout)  # the base's memory layout: the same views
        whole[...] = grad
        region = whole
        for cls, options in self.chain:  # the same views of the gradient as of the data
            region = cls().forward(region, **options)
        if region.base is not whole and region.base is not whole.base:
            raise RuntimeError(f"CopySlices: the view chain {[cls.__name__ for cls, _ in self.chain]} did not give "
                               "a view of the gradient")
        grads = self.inner.backward(region.copy())  # the walk checked inner's saved versions, as this node's
        grads = grads if type(grads) is tuple else (grads,)
        region[...] = 0 if grads[0] is None else grads[0]
        return (whole if self.needs_input_grad[0] else None, *grads[1:])


class VersionCounter:
    """How many in-place operations changed a tensor (and the tensors viewing its memory); the last one's name."""

    __slots__ = ("value", "op")

    def __init__(self):
        self.value, self.op = 0, None


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
                if fn._saved_versions:
                    _check_versions(fn)
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
