"""Import an ONNX model as convstack modules: a ``GraphModule`` that runs the graph's nodes in order.

Every node becomes a convstack module: the layers that own weights (``Conv``,
``ConvTranspose``, ``Gemm``, ``BatchNormalization``) become ``nn.Conv2d``, ``nn.Linear``,
``nn.BatchNorm2d`` ... holding the initializers as parameters and buffers; the other nodes
become ``nn.ReLU``, ``nn.MaxPool2d`` ... or small ``OnnxOp`` modules (``Add``, ``Concat``,
``Reshape``). So an imported model can be evaluated, visualised (its convolutions are
``nn.Conv2d``), fine-tuned and saved like any other.

Where modules live: a layer whose initializers are named ``P.weight``, ``P.bias`` (as
``export_onnx`` and ``torch.onnx.export`` name them, after the state dict) is placed at
path ``P``, so the imported model's ``state_dict()`` has the original names (and loads
torchvision or convstack weights); a layer whose initializers share another stem (``conv1_w``,
``conv1_b`` in the Caffe2 conversions of the ONNX model zoo) is placed at that stem (``conv1``);
other initializers a node reads at run time sit at their
own names (parameters, or buffers where the exporter marked them so); every other node sits
at its node name, split on ``.`` and ``/`` with other characters made ``_``. A name that is
taken or not a valid attribute gets a numbered suffix.

Constant inputs that fix an op's configuration (a ``Reshape`` 's shape, a ``Pad`` 's pads,
a ``Resize`` 's scales) are read once, at import; they must be initializers or ``Constant``
nodes. An operator outside the supported set raises
``ValueError("import_onnx: unsupported operator 'Foo' in node 'bar'")``.
"""

from __future__ import annotations

import os
import re

import numpy

from convstack.io.onnx_export_graph import _require_onnx
from convstack.io.onnx_import_checks import OnnxImportError, read_model, sorted_nodes, source_name
from convstack.nn.modules.module import Module
from convstack.nn.modules.parameter import Parameter
from convstack.tensor import Tensor


class Namespace(Module):
    """A plain container for the submodules, parameters and buffers under one dotted path."""

    def forward(self, *args):
        raise RuntimeError("Namespace holds part of an imported graph's state and is not called on its own")


class GraphModule(Module):
    """An imported ONNX graph: its nodes as submodules, run in the graph's (topological) order.

    ``forward`` takes the graph inputs positionally (``input_names`` gives their order) and
    returns the output tensor, or a tuple for several outputs (``output_names``).
    """

    def __init__(self):
        super().__init__()
        self.input_names: list = []
        self.output_names: list = []
        self.steps: list = []  # (module path, input value names, output value names)
        self.constants: dict = {}  # value name -> dotted path of the parameter or buffer holding it

    def _tensor_at(self, path: str) -> Tensor:
        owner, _, attribute = path.rpartition(".")
        module = self.get_submodule(owner) if owner else self
        return getattr(module, attribute)

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"GraphModule: expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), "
                             f"received {len(inputs)}")
        values = dict(zip(self.input_names, inputs))
        for name, path in self.constants.items():
            values[name] = self._tensor_at(path)
        for path, input_names, output_names in self.steps:
            arguments = [values[name] if name else None for name in input_names]
            result = self.get_submodule(path)(*arguments)
            results = result if isinstance(result, tuple) else (result,)
            for name, value in zip(output_names, results):
                if name:
                    values[name] = value
        outputs = tuple(values[name] for name in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs

    def extra_repr(self) -> str:
        return f"inputs={self.input_names}, outputs={self.output_names}, nodes={len(self.steps)}"


_UNSAFE = re.compile(r"\W")


def _components(name: str) -> list:
    parts = [part for part in re.split(r"[./]", name) if part]
    return [_UNSAFE.sub("_", part) for part in parts] or ["node"]


class _Placer:
    """Puts modules, parameters and buffers at dotted paths under the root, creating namespaces on the way."""

    def __init__(self, root: Module):
        self.root = root

    def _free(self, owner: Module, name: str) -> bool:
        return not hasattr(owner, name) and name not in dir(Module)

    def _walk(self, parts) -> Module | None:
        owner = self.root
        for part in parts:
            child = owner._modules.get(part)
            if child is None:
                if not self._free(owner, part):
                    return None
                child = Namespace()
                owner.add_module(part, child)
            elif not isinstance(child, Namespace):
                return None
            owner = child
        return owner

    def place(self, name: str, add) -> str:
        """Call ``add(owner, attribute)`` at ``name`` 's path, or at a flat numbered name if that is taken."""
        parts = _components(name)
        owner = self._walk(parts[:-1])
        if owner is not None and self._free(owner, parts[-1]):
            add(owner, parts[-1])
            return ".".join(parts)
        flat, count = "_".join(parts), 1
        while not self._free(self.root, f"{flat}_{count}"):
            count += 1
        add(self.root, f"{flat}_{count}")
        return f"{flat}_{count}"


def _layer_path(params: dict) -> str | None:
    """``P`` when every initializer of a layer is named ``P.<its attribute>`` (``conv1.weight``, ``conv1.bias``);
    else the stem the names share up to a separator, as other exporters name weights (``conv1_w`` and
    ``conv1_b`` from Caffe2, ``vgg0_conv0_weight`` from MXNet: ``conv1``, ``vgg0_conv0``)."""
    prefixes = {name[: -len(attribute) - 1] for attribute, name in params.items()
                if name.endswith("." + attribute)}
    if len(prefixes) == 1 and all(name.endswith("." + attribute) for attribute, name in params.items()):
        (prefix,) = prefixes
        return prefix if prefix and all(_UNSAFE.sub("_", p) == p for p in prefix.split(".")) else None
    common = os.path.commonprefix(list(params.values()))
    cut = max(common.rfind(separator) for separator in "._/")
    return ".".join(_components(common[:cut])) if cut > 0 else None


def _fold(node, steps, ctx) -> bool:
    """Run a node whose inputs are all fixed constants (not parameters) once, at import, as ``Constant`` s are.

    Exporters build shapes, scales and slice bounds this way (``Concat`` of ``Unsqueeze`` d constants);
    folding them lets the ops that need constant configuration inputs see constants.
    """
    names = [name for name in node.input if name]
    if not names or not all(name in ctx.constants and _fixed(name, ctx) for name in names):
        return False
    values = {name: Tensor(ctx.constants[name]) for name in names}
    for step in steps:
        result = step.module(*[values[name] if name else None for name in step.inputs])
        for name, value in zip(step.outputs, result if isinstance(result, tuple) else (result,)):
            values[name] = value
    for name in node.output:
        if name:
            ctx.constants[name] = numpy.asarray(values[name].data)
            ctx.kinds[name] = "constant"
    return True


def _fixed(name: str, ctx) -> bool:
    """A constant that is not a model parameter: marked so by the exporter, or an integer/boolean or 0-d array."""
    kind = ctx.kinds.get(name, "")
    if kind:
        return kind == "constant"
    array = ctx.constants[name]
    return array.dtype.kind != "f" or array.ndim == 0


def _free_initializer(graph_module, placer, name: str, array, kind: str) -> None:
    """A run-time initializer as a parameter (learnable) or a buffer, per the exporter's note or its dtype."""
    tensor_kind = kind or ("parameter" if array.dtype.kind == "f" and array.ndim >= 1 else "constant")

    def add(owner, attribute):
        if tensor_kind == "parameter":
            owner.register_parameter(attribute, Parameter(array.copy()))
        else:
            owner.register_buffer(attribute, Tensor(array.copy()), persistent=tensor_kind == "buffer")

    graph_module.constants[name] = placer.place(name, add)


def import_onnx(source) -> GraphModule:
    """Build a convstack ``GraphModule`` from an ONNX file (a path) or an ``onnx.ModelProto``.

    The file and the graph are checked first (``convstack.io.onnx_import_checks``): whatever
    it holds, a model that cannot be imported raises ``OnnxImportError`` (a ``ValueError``)
    naming the file and the node or tensor at fault.

    Examples:
        >>> model = import_onnx("resnet20.onnx")
        >>> model.eval()(convstack.randn(1, 3, 32, 32)).shape
        (1, 10)
    """
    onnx = _require_onnx()
    name = source_name(source)
    proto = read_model(onnx, source)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise OnnxImportError(f"{name}: import_onnx: the model imports no version of the default ONNX operator set")
    nodes = sorted_nodes(proto.graph, name)
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - shapes only refine the import (ranks); the graph itself is what counts
        pass
    try:
        return _import_graph(proto.graph, nodes, opset, name)
    except OnnxImportError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, ArithmeticError) as error:
        raise OnnxImportError(f"{name}: {_message(error)}") from None


def _message(error, node=None) -> str:
    """The message of an error met while importing, on one line, with the node where it arose."""
    text = " ".join(str(error).split())
    if isinstance(error, ValueError) and text.startswith("import_onnx"):
        return text
    where = f"node '{node.name}' ({node.op_type}): " if node is not None else ""
    return f"import_onnx: {where}{type(error).__name__}: {text}"


def _import_graph(graph, nodes, opset: int, model: str) -> GraphModule:
    """The ``GraphModule`` of a checked ``graph`` whose ``nodes`` are in a valid order."""
    from convstack.io.onnx_import_ops import BUILDERS, ImportContext

    ctx = ImportContext(graph, opset)
    root = GraphModule()
    placer = _Placer(root)
    initializer_names = set(ctx.constants)
    root.input_names = [v.name for v in graph.input if v.name not in initializer_names]
    root.output_names = [v.name for v in graph.output]
    planned = []
    for node in nodes:
        if node.domain not in ("", "ai.onnx"):
            raise ValueError(f"import_onnx: unsupported operator '{node.domain}.{node.op_type}' in node '{node.name}'")
        if node.op_type == "Constant":
            ctx.add_constant_node(node)
            continue
        builder = BUILDERS.get(node.op_type)
        if builder is None:
            raise ValueError(f"import_onnx: unsupported operator '{node.op_type}' in node '{node.name}'")
        try:
            steps = builder(node, ctx)
            if not _fold(node, steps, ctx):
                planned.extend(steps)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, ArithmeticError) as error:
            raise OnnxImportError(f"{model}: {_message(error, node)}") from None
    # Layers first (they claim their parameters' paths), then run-time initializers, then the other nodes.
    paths = {}
    for index, step in enumerate(planned):
        layer_path = _layer_path(step.params) if step.params else None
        if step.params and layer_path is not None:
            paths[index] = placer.place(layer_path, lambda owner, name, m=step.module: owner.add_module(name, m))
    needed = {name for step in planned for name in step.inputs if name}
    produced = set(root.input_names) | {name for step in planned for name in step.outputs if name}
    for name in sorted(needed - produced):
        if name in ctx.unsupported:
            raise ValueError(f"import_onnx: {ctx.unsupported[name]}")
        if name not in ctx.constants:
            raise ValueError(f"import_onnx: value '{name}' is used but no node or initializer produces it")
        _free_initializer(root, placer, name, ctx.constants[name], ctx.kinds.get(name, ""))
    for index, step in enumerate(planned):
        if index not in paths:
            paths[index] = placer.place(step.name, lambda owner, name, m=step.module: owner.add_module(name, m))
        root.steps.append((paths[index], list(step.inputs), list(step.outputs)))
    for name in root.output_names:
        if name in ctx.unsupported:
            raise ValueError(f"import_onnx: {ctx.unsupported[name]}")
        if name not in produced and name in ctx.constants and name not in root.constants:
            _free_initializer(root, placer, name, ctx.constants[name], ctx.kinds.get(name, ""))
    root.eval()
    return root
