"""Collectives on tensors, as ``torch.distributed``'s: every rank calls them, in the same order.

Each works in place on the tensor's array (a Tensor, or a NumPy array), which must be
C-contiguous and of a dtype MPI moves (float32/64, int8/32/64, uint8, bool). With
``async_op=True`` the call returns a ``Work`` at once (finish it with ``wait()``); otherwise
it returns when the collective has completed, or raises ``DistributedError`` after the
group's timeout.
"""

from __future__ import annotations

import numpy

from convstack.distributed.group import ReduceOp, resolve
from convstack.distributed.work import Work
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor

_DTYPES = tuple(numpy.dtype(d) for d in ("float32", "float64", "int8", "int32", "int64", "uint8", "bool"))


def _array(op: str, argument: str, tensor):
    """The NumPy array a collective works on in place, checked."""
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, numpy.ndarray):
        raise invalid(op, argument, "a Tensor or a NumPy array", type(tensor).__name__)
    if array.dtype not in _DTYPES:
        raise invalid(op, argument, f"a tensor of dtype {', '.join(str(d) for d in _DTYPES)}", f"dtype {array.dtype}")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise invalid(op, argument, "a contiguous, writeable tensor", f"a view of shape {array.shape}")
    return array


def _finish(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` across the ranks with ``op``, in place: afterwards every rank holds the result.

    Examples:
        >>> t = cs.tensor([float(dist.get_rank() + 1)])  # doctest: +SKIP
        >>> dist.all_reduce(t)                            # doctest: +SKIP
        >>> t                                             # 2 ranks: 1 + 2
        tensor([3.])
    """
    group = resolve(group)
    array = _array("all_reduce", "tensor", tensor)
    if not isinstance(op, ReduceOp):
        raise invalid("all_reduce", "op", "a convstack.distributed.ReduceOp", op)
    if op is ReduceOp.AVG and array.dtype.kind != "f":
        raise invalid("all_reduce", "op", "SUM, PRODUCT, MIN or MAX for an integer tensor", op)
    return _finish(group.all_reduce(array, op), async_op)


def broadcast(tensor, src: int = 0, group=None, async_op: bool = False):
    """Overwrite ``tensor`` on every rank with rank ``src``'s, in place."""
    group = resolve(group)
    array = _array("broadcast", "tensor", tensor)
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < group.size:
        raise invalid("broadcast", "src", f"a rank from 0 to {group.size - 1}", src)
    return _finish(group.broadcast(array, src), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """``output_tensor[r] = input_tensor`` of rank r for every rank r; output shaped ``(world_size, *input.shape)``."""
    group = resolve(group)
    array = _array("all_gather_into_tensor", "input_tensor", input_tensor)
    output = _array("all_gather_into_tensor", "output_tensor", output_tensor)
    expected = (group.size, *array.shape)
    if output.shape != expected or output.dtype != array.dtype:
        raise invalid("all_gather_into_tensor", "output_tensor", f"a {array.dtype} tensor of shape {expected}",
                      f"{output.dtype} of shape {output.shape}")
    return _finish(group.all_gather(output, array), async_op)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor``, for every rank r (all of one shape and dtype)."""
    group = resolve(group)
    array = _array("all_gather", "tensor", tensor)
    if not isinstance(tensor_list, list) or len(tensor_list) != group.size:
        received = f"{len(tensor_list)} tensors" if isinstance(tensor_list, list) else type(tensor_list).__name__
        raise invalid("all_gather", "tensor_list", f"a list of {group.size} tensors (one per rank)", received)
    targets = [_array("all_gather", "tensor_list", t) for t in tensor_list]
    for target in targets:
        if target.shape != array.shape or target.dtype != array.dtype:
            raise invalid("all_gather", "tensor_list", f"{array.dtype} tensors of shape {array.shape}",
                          f"{target.dtype} of shape {target.shape}")
    gathered = numpy.empty((group.size, *array.shape), dtype=array.dtype)

    def copy_out():
        for target, row in zip(targets, gathered):
            target[...] = row

    work = group.all_gather(gathered, array)
    work_done = Work(group, work.is_completed, work.description, copy_out)
    return _finish(work_done, async_op)


def barrier(group=None, async_op: bool = False):
    """Return once every rank has called ``barrier``."""
    return _finish(resolve(group).barrier(), async_op)
