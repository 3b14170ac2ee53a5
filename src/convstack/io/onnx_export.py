"""Export a model to ONNX by tracing one forward pass.

Tracing records every ``Function.apply`` call made while the model runs once on an example
input (``convstack.autograd._recorder``): each op, its input and output tensors and its
options. That sees the glue a model's ``forward`` writes between layers (``out + identity``
in a ResNet block, ``cs.cat`` in an Inception module, ``x.flatten(1)``) exactly as the layers
themselves, so every model exports without special cases. Each recorded op becomes one or a
few ONNX nodes (``onnx_export_ops``); tensors that are the model's parameters or buffers
become initializers named by their state-dict names, other fixed tensors become constants.
Nodes are named after the module that ran them (``layer1.0.conv1``, ``layer1.0.add``).

The graph is static, as the trace is: Python control flow and shapes read in ``forward``
are fixed at the example's values. With ``dynamic_batch`` the first dimension of the input
and outputs is left symbolic (``N``) unless an op bakes the batch size into the graph (a
reshape that folds the batch away, a constant of the batch's size): then the export stays
static and says why in the model's ``doc_string``.

``onnx`` is imported lazily: convstack does not need it unless you export or import.
"""

from __future__ import annotations

import numpy

from convstack import autograd
from convstack.atomic import atomic_write
from convstack.io.onnx_export_graph import Call, GraphBuilder, _require_onnx
from convstack.tensor import Tensor, as_tensor


class _Tracer:
    """Runs the model once with the op recorder on, noting which module each op ran in."""

    def __init__(self, model):
        self.model = model
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.scopes: list = []  # (path, is_leaf) of the modules running, outermost first
        self.calls: list = []
        self.names_used: dict = {}

    def _pre(self, module, args):
        parent = self.scopes[-1][0] if self.scopes else ""
        path = self.paths.get(id(module), f"{parent}.{type(module).__name__}".lstrip("."))
        self.scopes.append((path, not module._modules))

    def _post(self, module, args, output):
        self.scopes.pop()

    def _node_name(self, fn) -> str:
        path, leaf = self.scopes[-1] if self.scopes else ("", False)
        kind = type(fn).__name__.strip("_").lower()
        base = path if leaf and path else f"{path}.{kind}".lstrip(".")
        count = self.names_used.get(base, 0)
        self.names_used[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def _record(self, fn, tensors, options, result):
        results = result if isinstance(result, tuple) else (result,)
        self.calls.append(Call(fn, tensors, options, results, self._node_name(fn)))

    def run(self, inputs):
        handles = []
        for module in self.model.modules():
            handles.append(module.register_forward_pre_hook(self._pre))
            handles.append(module.register_forward_hook(self._post))
        previous = autograd._recorder
        autograd._recorder = self._record
        try:
            with autograd.no_grad():
                output = self.model(*inputs)
        finally:
            autograd._recorder = previous
            for handle in handles:
                handle.remove()
        return output


def _as_inputs(example_input) -> tuple:
    items = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    tensors = tuple(as_tensor(item) for item in items)
    for position, tensor in enumerate(tensors):
        if tensor.dtype.kind != "f":
            raise TypeError(f"export_onnx: expected floating point example inputs, received input {position} of "
                            f"dtype {tensor.dtype}")
    return tensors


def _flatten_outputs(output) -> list:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)) and output and all(isinstance(o, Tensor) for o in output):
        return list(output)
    raise TypeError(f"export_onnx: the model must return a tensor or a tuple of tensors, returned "
                    f"{type(output).__name__}")


def build_onnx(model, example_input, opset: int = 17, dynamic_batch: bool = True, input_names=None,
               output_names=None):
    """Trace ``model`` on ``example_input`` and return the ONNX ``ModelProto`` (not checked, not saved)."""
    from convstack.io.onnx_export_ops import CONVERTERS

    onnx = _require_onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or not 17 <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"export_onnx: invalid value for argument `opset`: expected an integer from 17 to "
                         f"{onnx.defs.onnx_opset_version()}, received {opset!r}")
    inputs = _as_inputs(example_input)
    input_names = list(input_names) if input_names else (
        ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))])
    if len(input_names) != len(inputs):
        raise ValueError(f"export_onnx: {len(input_names)} input names for {len(inputs)} inputs")
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        tracer = _Tracer(model)
        outputs = _flatten_outputs(tracer.run(inputs))
    finally:
        for module, mode in modes:
            module.training = mode
    g = GraphBuilder(opset, model, dynamic_batch)
    g.batch = inputs[0].shape[0] if inputs[0].ndim else None
    g.input_rank = inputs[0].ndim
    for name, tensor in zip(input_names, inputs):
        g.used.add(name)
        g.values[id(tensor)] = name
        g.shapes[name] = tensor.shape
        g.dtypes[name] = tensor.dtype
        g.derived.add(name)
    for call in tracer.calls:
        # an op's class, or the op it derives from (ReLUInplace converts as ReLU)
        converter = next((CONVERTERS[c] for c in type(call.fn).__mro__ if c in CONVERTERS), None)
        if converter is None:
            raise ValueError(f"export_onnx: no ONNX conversion for the op {type(call.fn).__name__} (node "
                             f"{call.name!r})")
        call.inputs = [g.value_of(t, call) for t in call.tensors]
        call.outputs = [g.unique(call.name if i == 0 else f"{call.name}:{i}") for i in range(len(call.results))]
        for value, tensor in zip(call.outputs, call.results):
            g.values[id(tensor)] = value
            g.shapes[value] = tensor.shape
            g.dtypes[value] = tensor.dtype
            if g.is_derived(call):
                g.derived.add(value)
        converter(g, call)
    return _assemble(g, model, inputs, input_names, outputs, output_names)


def _assemble(g: GraphBuilder, model, inputs, input_names, outputs, output_names):
    onnx = g.onnx
    helper = onnx.helper
    output_names = list(output_names) if output_names else (
        ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    if len(output_names) != len(outputs):
        raise ValueError(f"export_onnx: {len(output_names)} output names for {len(outputs)} outputs")
    produced = {out for node in g.nodes for out in node.output}
    renames = {}
    for wanted, tensor in zip(output_names, outputs):
        value = g.values.get(id(tensor))
        if value is None or value not in produced or value in renames:
            # The output is an input, a parameter or another output: give it its own name through Identity.
            source = value if value is not None else g.initializer(tensor.data, f"{wanted}/constant")
            g.nodes.append(helper.make_node("Identity", [source], [wanted], name=g.unique_node(f"{wanted}/identity")))
        else:
            renames[value] = wanted
    if renames:
        for node in g.nodes:
            node.output[:] = [renames.get(v, v) for v in node.output]
            node.input[:] = [renames.get(v, v) for v in node.input]
    dynamic = g.dynamic_batch and not g.static_reasons and g.batch is not None

    def info(name, tensor):
        dims = list(tensor.shape)
        if dynamic and dims and id(tensor) in derived_ids:
            dims[0] = "N"
        element = helper.np_dtype_to_tensor_dtype(numpy.dtype(tensor.dtype))
        return helper.make_tensor_value_info(name, element, dims)

    derived_ids = {id(t) for t in inputs} | {id(t) for t in outputs if g.values.get(id(t)) in g.derived}
    graph = helper.make_graph(
        g.nodes, type(model).__name__,
        [info(name, t) for name, t in zip(input_names, inputs)],
        [info(name, t) for name, t in zip(output_names, outputs)],
        initializer=list(g.initializers.values()),
    )
    opsets = [helper.make_opsetid("", g.opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="convstack")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    if g.dynamic_batch and g.static_reasons:
        proto.doc_string = "static batch size: " + "; ".join(g.static_reasons)
    return proto


def export_onnx(model, example_input, path, opset: int = 17, dynamic_batch: bool = True, input_names=None,
                output_names=None, check: bool = True):
    """Write ``model`` as an ONNX file by tracing it on ``example_input`` (in eval mode).

    Args:
        model: a ``convstack.nn.Module`` (any model of the zoo, or your own).
        example_input: a tensor (or a tuple of tensors for several inputs) of the shape to export.
        path: the ``.onnx`` file to write.
        opset: the ONNX operator set, 17 or newer (Gelu is a node from 20 on, a formula before).
        dynamic_batch: leave the first dimension symbolic where the graph allows (see the module docstring).
        input_names, output_names: graph input and output names (default ``input``, ``output``).
        check: run ``onnx.checker.check_model`` on the result.

    Returns:
        The ``onnx.ModelProto`` written. Initializers carry their state-dict names (``layer1.0.conv1.weight``)
        and, in ``doc_string``, whether they are a ``parameter``, a ``buffer`` or a ``constant``.

    Examples:
        >>> model = convstack.models.resnet20(num_classes=10)
        >>> proto = export_onnx(model, convstack.randn(1, 3, 32, 32), "resnet20.onnx")
        >>> proto.opset_import[0].version
        17
    """
    onnx = _require_onnx()
    proto = build_onnx(model, example_input, opset, dynamic_batch, input_names, output_names)
    if check:
        onnx.checker.check_model(proto, full_check=False)
    atomic_write(path, proto.SerializeToString())
    return proto
