"""The file and graph checks ``import_onnx`` runs before it builds anything.

An ONNX file is untrusted input. Whatever it holds (random bytes, a truncated protobuf,
tensors whose dims promise more data than the file has or more memory than the machine,
values used before any node makes them, cycles, nodes of unknown kinds), the import ends
in ``OnnxImportError`` (a ``ValueError``) naming the file and the node or tensor, never in
a protobuf, NumPy or Python exception from deep inside:

- ``read_model``: the protobuf is parsed (``onnx.load`` without its external data), the
  tensors are checked, and only then is external data read (onnx refuses locations
  outside the model's folder and ranges beyond the file).
- ``check_tensors``: every initializer and every tensor attribute (``Constant``'s value)
  has a known element type, non-negative dims whose product, in Python integers, is what
  its data holds, and a size that ``backend.check_allocation`` lets through.
- ``sorted_nodes``: each node's inputs are graph inputs, initializers or outputs of other
  nodes, each value is produced once, and the nodes are put in an order where every value
  is made before it is read (ONNX requires it; a graph listed out of order is sorted, a
  cycle is refused naming its nodes).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from convstack.backend import check_allocation

_TOO_LARGE = "the model is too large for this machine"
MAX_FILE_BYTES = 1 << 31  # protobuf's own limit for one message: larger models keep their tensors outside


class OnnxImportError(ValueError):
    """An ONNX model that cannot be imported; the message starts with the file (or the model's name)."""


def source_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    graph = getattr(source, "graph", None)
    return f"ONNX model {graph.name!r}" if graph is not None and graph.name else "ONNX model"


def read_model(onnx, source):
    """The ``ModelProto`` of a path (checked, its external data loaded) or of a ``ModelProto`` (checked)."""
    if isinstance(source, onnx.ModelProto):
        check_tensors(onnx, source, source_name(source), external_allowed=False)
        return source
    path = Path(source)
    name = source_name(source)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise OnnxImportError(f"{name}: cannot read the ONNX file ({error.strerror or error})") from None
    if size > MAX_FILE_BYTES:
        raise OnnxImportError(f"{name}: {size:,} bytes, more than an ONNX protobuf can hold ({MAX_FILE_BYTES:,})")
    check_allocation(size, f"import_onnx: reading {name}", hint=_TOO_LARGE)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - DecodeError, RuntimeWarning-as-error, OSError ...: not ONNX
        raise OnnxImportError(f"{name}: not an ONNX model ({type(error).__name__}: {_first_line(error)})") from None
    check_tensors(onnx, proto, name, external_allowed=True)
    try:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(proto, str(path.parent))
    except Exception as error:  # noqa: BLE001 - a location outside the folder, a range beyond the file ...
        raise OnnxImportError(f"{name}: cannot read its external tensor data ({_first_line(error)})") from None
    check_tensors(onnx, proto, name, external_allowed=False)
    return proto


def _first_line(error) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ----------------------------------------------------------------------------- tensors
_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
_FOUR_BIT = {21, 22, 23}  # TensorProto.UINT4, INT4, FLOAT4E2M1: two elements a byte


def _tensors(graph):
    """(where, TensorProto) for every initializer and tensor attribute of the graph's nodes."""
    for tensor in graph.initializer:
        yield f"initializer {tensor.name!r}", tensor
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield f"the {attribute.name} attribute of node {node.name!r} ({node.op_type})", attribute.t
            for index, tensor in enumerate(attribute.tensors):
                yield f"the {attribute.name}[{index}] attribute of node {node.name!r} ({node.op_type})", tensor


def check_tensors(onnx, proto, name: str, external_allowed: bool) -> None:
    """Every tensor's element type, dims and data agree, and fit in memory; raises OnnxImportError naming it."""
    if not proto.HasField("graph"):
        raise OnnxImportError(f"{name}: the model has no graph")
    for where, tensor in _tensors(proto.graph):
        _check_tensor(onnx, tensor, f"{name}: {where}", external_allowed)


def _check_tensor(onnx, tensor, where: str, external_allowed: bool) -> None:
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
    except Exception:  # noqa: BLE001 - KeyError for an unknown or undefined element type
        raise OnnxImportError(f"{where} has an unknown element type ({tensor.data_type})") from None
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise OnnxImportError(f"{where} has negative dims {dims}")
    count = math.prod(dims)
    packed = tensor.data_type in _FOUR_BIT  # two elements a byte (raw) or an int32 (typed)
    nbytes = (count + 1) // 2 if packed else count * dtype.itemsize
    values = (count + 1) // 2 if packed else count * (2 if dtype.kind == "c" else 1)  # complex: two values each
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        if not external_allowed:
            raise OnnxImportError(f"{where} keeps its data in an external file (import the model from its path)")
        length = {entry.key: entry.value for entry in tensor.external_data}.get("length")
        if length is not None and (not length.isdigit() or int(length) != nbytes):
            raise OnnxImportError(f"{where}: dims {dims} of {dtype} make {nbytes:,} bytes, its external data "
                                  f"holds {length}")
        check_allocation(nbytes, f"import_onnx: {where}", f"dims {dims}, {dtype}", hint=_TOO_LARGE)
        return
    if tensor.HasField("raw_data") or not any(len(getattr(tensor, field)) for field in _TYPED_FIELDS):
        if len(tensor.raw_data) != nbytes:
            raise OnnxImportError(f"{where}: dims {dims} of {dtype} make {nbytes:,} bytes, its data holds "
                                  f"{len(tensor.raw_data):,}")
    else:
        held = sum(len(getattr(tensor, field)) for field in _TYPED_FIELDS)
        if held != values:
            raise OnnxImportError(f"{where}: dims {dims} make {count:,} elements, its data holds {held:,} values")
    check_allocation(nbytes, f"import_onnx: {where}", f"dims {dims}, {dtype}", hint=_TOO_LARGE)


# ----------------------------------------------------------------------------- graph order
def sorted_nodes(graph, name: str) -> list:
    """The graph's nodes in an order where each value is made before it is read; refuses what has no such order."""
    available = {value.name for value in graph.input} | {tensor.name for tensor in graph.initializer}
    producer = {}
    for index, node in enumerate(graph.node):
        for output in node.output:
            if not output:
                continue
            if output in producer or output in available:
                first = "a graph input or initializer" if output in available else \
                    f"node {graph.node[producer[output]].name!r}"
                raise OnnxImportError(f"{name}: value {output!r} is made twice, by {first} and by node "
                                      f"{node.name!r} ({node.op_type})")
            producer[output] = index
    waiting = [0] * len(graph.node)  # per node: how many of its inputs other nodes still have to make
    readers: dict = {}
    for index, node in enumerate(graph.node):
        for value in {v for v in node.input if v}:
            if value in available:
                continue
            if value not in producer:
                raise OnnxImportError(f"{name}: node {node.name!r} ({node.op_type}) reads {value!r}, which no node, "
                                      "graph input or initializer makes")
            waiting[index] += 1
            readers.setdefault(value, []).append(index)
    ready = [index for index, count in enumerate(waiting) if count == 0]
    order = []
    while ready:
        ready.sort(reverse=True)  # keep the file's order where it is already valid
        index = ready.pop()
        order.append(index)
        for value in graph.node[index].output:
            for reader in readers.get(value, ()):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    ready.append(reader)
    if len(order) < len(graph.node):
        stuck = [graph.node[i] for i, count in enumerate(waiting) if count > 0]
        names = ", ".join(f"{node.name!r} ({node.op_type})" for node in stuck[:6])
        raise OnnxImportError(f"{name}: the graph has a cycle: nodes {names}{' ...' if len(stuck) > 6 else ''} "
                              "each wait for a value that only they make")
    for value in graph.output:
        if value.name not in producer and value.name not in available:
            raise OnnxImportError(f"{name}: graph output {value.name!r} is made by no node")
    return [graph.node[index] for index in order]
