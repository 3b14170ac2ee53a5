"""Hook handles, and the bookkeeping behind ``Module.register_full_backward_hook``.

A full backward hook ``hook(module, grad_input, grad_output)`` must see the gradient
with respect to the module's own inputs and outputs, not the total gradient of a tensor
that other code also uses. So, as PyTorch's ``BackwardHook`` does, each tensor input
and output is passed through an identity node, and a tensor hook
(``Tensor.register_hook``) on that node records the gradient. Output nodes are
descendants of input nodes, so the graph walk reaches every output hook before the
last input hook; that last input hook calls the module's hooks.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from functools import partial

from convstack.autograd import Function
from convstack.tensor import Tensor

_handle_ids = itertools.count()


class RemovableHandle:
    """Returned by ``register_*_hook``; ``remove()`` unregisters the hook (also a context manager)."""

    def __init__(self, hooks: OrderedDict):
        self._hooks = hooks
        self.id = next(_handle_ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


class _HookIdentity(Function):
    """y = x: a fresh graph node whose gradient is this module's share alone."""

    def forward(self, a):
        return a

    def backward(self, grad):
        return (grad,)


class BackwardHookCall:
    """One forward call's wiring for the module's full backward hooks."""

    def __init__(self, module, hooks):
        self.module = module
        self.hooks = hooks
        self.grad_inputs: list = []
        self.grad_outputs: list = []
        self.inputs_expected = 0
        self.inputs_waiting = 0
        self.outputs_expected = 0
        self.outputs_waiting = 0

    def wrap_inputs(self, args: tuple) -> tuple:
        """``args`` with every tensor that requires grad passed through an identity node."""
        wrapped = list(args)
        slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.grad_inputs = [None] * len(slots)
        for slot, position in enumerate(slots):
            if args[position].requires_grad:
                node = _HookIdentity.apply(args[position])
                node.register_hook(partial(self._on_input_grad, slot))
                wrapped[position] = node
                self.inputs_expected += 1
        self.inputs_waiting = self.inputs_expected
        return tuple(wrapped)

    def wrap_outputs(self, result):
        """``result`` (a tensor or a tuple/list holding tensors) with outputs behind identity nodes."""
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        wrapped = list(outputs)
        slots = [i for i, o in enumerate(outputs) if isinstance(o, Tensor)]
        self.grad_outputs = [None] * len(slots)
        for slot, position in enumerate(slots):
            if outputs[position].requires_grad:
                node = _HookIdentity.apply(outputs[position])
                node.register_hook(partial(self._on_output_grad, slot))
                wrapped[position] = node
                self.outputs_expected += 1
        self.outputs_waiting = self.outputs_expected
        if isinstance(result, (tuple, list)):
            return type(result)(wrapped)
        return wrapped[0]

    def _on_output_grad(self, slot, grad):
        self.grad_outputs[slot] = grad
        self.outputs_waiting -= 1
        if self.outputs_waiting == 0 and self.inputs_expected == 0:
            # No input needs a gradient (the first layer of a network): PyTorch still
            # calls the hooks, with None for every grad_input.
            self._call_hooks()

    def _on_input_grad(self, slot, grad):
        self.grad_inputs[slot] = grad
        self.inputs_waiting -= 1
        if self.inputs_waiting > 0:
            return None
        replacement = self._call_hooks()
        if replacement is None:
            return None
        if self.inputs_expected != 1:
            raise RuntimeError(
                f"{type(self.module).__name__}: a full backward hook can replace grad_input only when "
                f"exactly one input requires grad; {self.inputs_expected} do"
            )
        if not isinstance(replacement, (tuple, list)) or len(replacement) != len(self.grad_inputs):
            raise RuntimeError(
                f"{type(self.module).__name__}: a full backward hook returned {type(replacement).__name__}; "
                f"expected None or a tuple of {len(self.grad_inputs)} gradients"
            )
        return replacement[slot]

    def _call_hooks(self):
        grad_input, grad_output = tuple(self.grad_inputs), tuple(self.grad_outputs)
        # Reset for a second backward through the same graph (retain_graph=True).
        self.inputs_waiting, self.outputs_waiting = self.inputs_expected, self.outputs_expected
        replacement = None
        for hook in list(self.hooks.values()):
            result = hook(self.module, grad_input, grad_output)
            if result is not None:
                replacement = grad_input = tuple(result)
        return replacement
