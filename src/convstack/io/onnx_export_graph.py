"""The graph an export builds: recorded op calls (``Call``) and the ``GraphBuilder`` the converters add nodes to.

``GraphBuilder`` names values and nodes (unique), turns parameters and buffers into
initializers named by their state-dict names (their ``doc_string`` says ``parameter``,
``buffer`` or ``constant``), and notes what would fix the batch size (``static``).
"""

from __future__ import annotations

import numpy

from convstack.backend import to_numpy
from convstack.tensor import Tensor


def _require_onnx():
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - onnx is installed where these functions are tested
        raise ImportError("ONNX export and import need the `onnx` package: pip install 'convstack[onnx]'") from error
    return onnx


class Call:
    """One recorded op: its ``Function`` instance, tensors in and out, options, and the name of its node."""

    __slots__ = ("fn", "tensors", "options", "results", "inputs", "outputs", "name")

    def __init__(self, fn, tensors, options, results, name):
        self.fn, self.tensors, self.options, self.results, self.name = fn, tensors, options, results, name
        self.inputs: list = []  # value names of ``tensors``
        self.outputs: list = []  # value names of ``results``


class GraphBuilder:
    """Collects ONNX nodes, initializers and value names; the converters in ``onnx_export_ops`` call it."""

    def __init__(self, opset: int, model, dynamic_batch: bool):
        self.onnx = _require_onnx()
        self.opset = opset
        self.nodes: list = []
        self.initializers: dict = {}  # name -> TensorProto
        self.used: set = set()  # every value and initializer name
        self.node_names: set = set()
        self.values: dict = {}  # id(tensor) -> value name
        self.shapes: dict = {}  # value name -> shape
        self.derived: set = set()  # values that depend on a graph input (carry its batch dimension)
        self.batch = None
        self.dynamic_batch = dynamic_batch
        self.static_reasons: list = []
        self.unsupported: dict = {}  # value name -> why no ONNX node can produce it
        self.dtypes: dict = {}  # value name -> numpy dtype
        self.input_rank = 0
        self.kinds: dict = {}  # initializer name -> "parameter" | "buffer" | "buffer (not persistent)" | "constant"
        self.named: dict = {}  # id(parameter or buffer tensor or array) -> (state-dict style name, kind, tensor)
        for name, param in model.named_parameters():
            self.named[id(param)] = (name, "parameter", param)
        persistent = set(model.state_dict(keep_vars=True))
        for name, buffer in model.named_buffers():
            kind = "buffer" if name in persistent else "buffer (not persistent)"
            self.named[id(buffer)] = (name, kind, buffer)
            self.named[id(buffer.data)] = (name, kind, buffer)

    # ------------------------------------------------------------------------ names
    def unique(self, hint: str) -> str:
        name, count = hint, 0
        while name in self.used:
            count += 1
            name = f"{hint}_{count}"
        self.used.add(name)
        return name

    def temp(self, call: Call, suffix: str) -> str:
        """A fresh intermediate value name inside ``call``'s node group."""
        return self.unique(f"{call.name}/{suffix}")

    # -------------------------------------------------------------------- constants
    def initializer(self, array, hint: str, kind: str = "constant") -> str:
        onnx = self.onnx
        name = self.unique(hint)
        proto = onnx.numpy_helper.from_array(numpy.array(to_numpy(array), order="C"), name)
        proto.doc_string = kind
        self.initializers[name] = proto
        self.kinds[name] = kind
        self.shapes[name] = tuple(array.shape)
        return name

    def ints(self, values, hint: str) -> str:
        return self.initializer(numpy.asarray(list(values), dtype=numpy.int64), hint)

    def scalar_like(self, value, like: str, hint: str) -> str:
        """A 0-d constant of the dtype of the initializer or traced value ``like``."""
        return self.initializer(numpy.asarray(value, dtype=self.dtypes.get(like, numpy.float32)), hint)

    def value_of(self, tensor: Tensor, call: Call) -> str:
        """The value name of an op's input: an earlier op's output, a parameter/buffer, or a new constant."""
        key = id(tensor)
        if key in self.values:
            if self.values[key] in self.unsupported:
                raise ValueError(f"export_onnx: node {call.name!r} uses {self.unsupported[self.values[key]]}")
            return self.values[key]
        if key in self.named:
            name, kind, _ = self.named[key]
            value = self.initializer(tensor.data, name, kind)
        else:
            if (self.batch is not None and tensor.ndim == self.input_rank and tensor.ndim > 0
                    and tensor.shape[0] == self.batch > 1):
                self.static(f"a constant of the batch's size ({tensor.shape}) in {call.name}")
            value = self.initializer(tensor.data, f"{call.name}/constant")
        self.values[key] = value
        self.dtypes[value] = tensor.dtype
        return value

    def array_value(self, array, hint: str) -> str:
        """An array option (batch norm's running statistics) as an initializer, named if it is a buffer's."""
        key = id(array)
        if key in self.values:
            return self.values[key]
        if key in self.named:
            name, kind, _ = self.named[key]
            value = self.initializer(array, name, kind)
        else:
            value = self.initializer(array, hint)
        self.values[key] = value
        return value

    # ------------------------------------------------------------------------ nodes
    def node(self, op_type: str, inputs, outputs, call: Call, **attributes) -> list:
        """Add one node; ``outputs`` are value names (or an int: that many fresh ones)."""
        if isinstance(outputs, int):
            outputs = [self.temp(call, op_type) for _ in range(outputs)]
        name = call.name if call.name not in self.node_names else self.unique_node(f"{call.name}/{op_type}")
        self.node_names.add(name)
        attributes = {k: v for k, v in attributes.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), list(outputs), name=name, **attributes))
        return list(outputs)

    def unique_node(self, hint: str) -> str:
        name, count = hint, 0
        while name in self.node_names:
            count += 1
            name = f"{hint}_{count}"
        return name

    def static(self, reason: str) -> None:
        """Note that the graph fixes the batch size (the export then keeps dimension 0 static)."""
        if reason not in self.static_reasons:
            self.static_reasons.append(reason)

    def is_derived(self, call: Call) -> bool:
        return any(name in self.derived for name in call.inputs)
