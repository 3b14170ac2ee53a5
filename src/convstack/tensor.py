"""``Tensor``: an array, an optional gradient, and the ``Function`` that made it.

Shapes and semantics follow PyTorch: broadcasting arithmetic, ``dim``/``keepdim``
reductions, ``.grad`` accumulating until zeroed, ``backward(gradient=None)``.
The array lives in ``.data`` (a NumPy array, or a CuPy array on the GPU backend).
"""

from __future__ import annotations

import numbers
import weakref
from collections import namedtuple

import numpy

from convstack import autograd, backend
from convstack.autograd import Function, run_backward
from convstack.ops import arithmetic, elementwise, indexing, reduction, selection, shape, sorting

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _coerce_array(data, dtype=None, where="tensor"):
    """``data`` as an array of a supported dtype (float32 for Python floats, as PyTorch)."""
    if isinstance(data, Tensor):
        array = data.data
    elif isinstance(data, numpy.ndarray) or backend.get_array_module(data) is not numpy:
        array = data
    else:
        array = numpy.asarray(data)
        if array.dtype == numpy.float64 and dtype is None:
            array = array.astype(backend.DEFAULT_FLOAT_DTYPE)
        elif array.dtype.kind in "iu" and dtype is None and array.dtype != numpy.uint8:
            array = array.astype(numpy.int64)
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(f"{where}: cannot make a tensor from data of dtype {array.dtype}")
    if dtype is not None:
        array = array.astype(backend.check_dtype(dtype, where), copy=False)
    else:
        backend.check_dtype(array.dtype, where)
    return array


class Tensor:
    """A multi-dimensional array with reverse-mode automatic differentiation.

    Args:
        data: array-like (nested lists, scalars, NumPy arrays).
        requires_grad: record operations on this tensor for ``backward()``.
        dtype: ``numpy.float32`` (default for floats), ``numpy.float64``, an integer or bool dtype.
    """

    __array_priority__ = 1000  # make ``ndarray + Tensor`` defer to Tensor.__radd__
    __hash__ = object.__hash__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _coerce_array(data, dtype)
        self.grad: Tensor | None = None
        self.grad_fn = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # Defaults on the class, so that wrapping an op's output sets three attributes only.
    grad = None
    _retains_grad = False
    _tensor_hooks: tuple = ()  # a leaf's hooks (a list once one is registered); a non-leaf's live on grad_fn
    _post_accumulate_grad_hooks: tuple = ()  # a leaf's, run once its .grad is updated (a list once one is)

    @classmethod
    def _make(cls, array, requires_grad=False, grad_fn=None):
        """Wrap an array without copying or checking (for ops' outputs)."""
        t = cls.__new__(cls)
        t.data = array if hasattr(array, "shape") else numpy.asarray(array)
        t.grad_fn = grad_fn
        t.requires_grad = requires_grad
        return t

    # ----------------------------------------------------------------- attributes
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = numpy.array2string(backend.to_numpy(self.data), separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self.dtype != backend.DEFAULT_FLOAT_DTYPE and self.dtype != numpy.int64:
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> numpy.ndarray:
        """The data as a NumPy array (shares memory on the CPU; refuses if grad is tracked)."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on a Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        return backend.to_numpy(self.data)

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.data.reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of a Tensor with {self.data.size} values is ambiguous")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        array = backend.to_numpy(self.data)
        return array if dtype is None else array.astype(dtype)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data (and version counter, as PyTorch's), outside the graph."""
        detached = Tensor._make(self.data)
        detached._counter = self._version_counter()
        return detached

    def clone(self) -> Tensor:
        return _CloneFn.apply(self)

    def to(self, dtype=None, device=None) -> Tensor:
        """Cast to ``dtype`` and/or move to ``device`` (differentiable for float casts)."""
        if isinstance(dtype, str) and (dtype == "cpu" or dtype.startswith("cuda")):
            dtype, device = None, dtype
        out = self
        if dtype is not None and backend.check_dtype(dtype, "to") != self.dtype:
            out = _CastFn.apply(out, dtype=backend.check_dtype(dtype, "to"))
        if device is not None and device != out.device:
            moved = Tensor._make(backend.to_device(out.data, device), requires_grad=out.requires_grad)
            out = moved
        return out

    def float(self) -> Tensor:
        return self.to(numpy.float32)

    def double(self) -> Tensor:
        return self.to(numpy.float64)

    def long(self) -> Tensor:
        return self.to(numpy.int64)

    def bool(self) -> Tensor:
        return self.to(numpy.bool_)

    def contiguous(self) -> Tensor:
        return self

    # ------------------------------------------------------------------- autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not backend.is_floating(self.dtype):
            raise RuntimeError(f"only tensors of floating point dtype can require gradients, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after ``backward()`` (a leaf always keeps it)."""
        self._retains_grad = True
        if self.grad_fn is not None:
            self.grad_fn._retained = weakref.ref(self)  # the graph links ops: the op keeps the request

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        owner = self.grad_fn if self.grad_fn is not None else self  # the graph's node for this tensor
        hooks = owner.__dict__.get("_tensor_hooks")
        if hooks is None:
            hooks = owner._tensor_hooks = []
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf once backward has accumulated its gradient into ``.grad``.

        As PyTorch's: the hook sees the final ``.grad`` of the pass (what gradient averaging
        across processes needs) and returns nothing. Leaves only.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        hooks = self.__dict__.get("_post_accumulate_grad_hooks")
        if hooks is None:
            hooks = self._post_accumulate_grad_hooks = []
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    @property
    def _hooks(self) -> list:
        """The hooks registered on this tensor, in order."""
        owner = self.grad_fn if self.grad_fn is not None else self
        return list(owner._tensor_hooks)

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is required unless this tensor holds a single element.
        """
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape {self.shape}")
            xp = backend.get_array_module(self.data)
            grad = xp.ones(self.data.shape, dtype=self.dtype)
        else:
            grad = _coerce_array(gradient, self.dtype, "backward")
            if grad.shape != self.data.shape:
                raise RuntimeError(f"backward: gradient has shape {grad.shape}, expected {self.shape}")
        run_backward(self, grad, retain_graph=retain_graph)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other):
        return arithmetic.Add.apply(self, _operand(other, self))

    def __radd__(self, other):
        return arithmetic.Add.apply(_operand(other, self), self)

    def __sub__(self, other):
        return arithmetic.Sub.apply(self, _operand(other, self))

    def __rsub__(self, other):
        return arithmetic.Sub.apply(_operand(other, self), self)

    def __mul__(self, other):
        return arithmetic.Mul.apply(self, _operand(other, self))

    def __rmul__(self, other):
        return arithmetic.Mul.apply(_operand(other, self), self)

    def __truediv__(self, other):
        return arithmetic.Div.apply(self, _operand(other, self))

    def __rtruediv__(self, other):
        return arithmetic.Div.apply(_operand(other, self), self)

    def __pow__(self, other):
        return arithmetic.Pow.apply(self, _operand(other, self))

    def __rpow__(self, other):
        return arithmetic.Pow.apply(_operand(other, self), self)

    def __neg__(self):
        return arithmetic.Neg.apply(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return arithmetic.MatMul.apply(self, _operand(other, self))

    def __rmatmul__(self, other):
        return arithmetic.MatMul.apply(_operand(other, self), self)

    def matmul(self, other):
        return self @ other

    add, sub, mul, div, pow = __add__, __sub__, __mul__, __truediv__, __pow__

    # comparisons: no gradient, boolean results
    def _compare(self, other, op):
        other_data = other.data if isinstance(other, Tensor) else other
        return Tensor._make(op(self.data, other_data))

    def __lt__(self, other):
        return self._compare(other, numpy.less)

    def __le__(self, other):
        return self._compare(other, numpy.less_equal)

    def __gt__(self, other):
        return self._compare(other, numpy.greater)

    def __ge__(self, other):
        return self._compare(other, numpy.greater_equal)

    def __eq__(self, other):
        return self._compare(other, numpy.equal)

    def __ne__(self, other):
        return self._compare(other, numpy.not_equal)

    def __invert__(self):
        return Tensor._make(~self.data)

    def __and__(self, other):
        return self._compare(other, numpy.logical_and)

    def __or__(self, other):
        return self._compare(other, numpy.logical_or)

    # ------------------------------------------------------------ element-wise maths
    def exp(self):
        return elementwise.Exp.apply(self)

    def log(self):
        return elementwise.Log.apply(self)

    def sqrt(self):
        return elementwise.Sqrt.apply(self)

    def abs(self):
        return elementwise.Abs.apply(self)

    __abs__ = abs

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's argument names
        return elementwise.clamp(self, min, max)

    clip = clamp

    def relu(self):
        from convstack.nn import functional

        return functional.relu(self)

    def sigmoid(self):
        from convstack.nn import functional

        return functional.sigmoid(self)

    def tanh(self):
        from convstack.nn import functional

        return functional.tanh(self)

    def softmax(self, dim):
        from convstack.nn import functional

        return functional.softmax(self, dim)

    def log_softmax(self, dim):
        from convstack.nn import functional

        return functional.log_softmax(self, dim)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim: bool = False):
        return reduction.Sum.apply(self, axes=reduction.normalize_dims(dim, self.ndim, "sum"), keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        if not backend.is_floating(self.dtype):
            raise RuntimeError(f"mean(): expected a floating point tensor, got {self.dtype}")
        return reduction.Mean.apply(self, axes=reduction.normalize_dims(dim, self.ndim, "mean"), keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        if unbiased is not None and correction is not None:
            raise ValueError("var: pass `unbiased` or `correction`, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        axes = reduction.normalize_dims(dim, self.ndim, "var")
        return reduction.Var.apply(self, axes=axes, keepdim=keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def _max_min(self, dim, keepdim, largest, name):
        if dim is None:
            if self.data.size == 0:
                raise RuntimeError(f"{name}(): expected a non-empty tensor")
            return reduction.MaxMin.apply(self, dim=None, keepdim=False, largest=largest)
        (axis,) = reduction.normalize_dims(dim, self.ndim, name)
        values, indices = reduction.MaxMin.apply(self, dim=axis, keepdim=keepdim, largest=largest)
        return ValuesIndices(values, indices)

    def max(self, dim=None, keepdim: bool = False):
        """The maximum; with ``dim``, a ``(values, indices)`` pair, as ``torch.max``."""
        return self._max_min(dim, keepdim, True, "max")

    def min(self, dim=None, keepdim: bool = False):
        return self._max_min(dim, keepdim, False, "min")

    def argmax(self, dim=None, keepdim: bool = False):
        if dim is None:
            return Tensor._make(numpy.int64(self.data.argmax()))
        out = self.data.argmax(axis=dim)
        return Tensor._make(numpy.expand_dims(out, dim) if keepdim else out)

    def argmin(self, dim=None, keepdim: bool = False):
        if dim is None:
            return Tensor._make(numpy.int64(self.data.argmin()))
        out = self.data.argmin(axis=dim)
        return Tensor._make(numpy.expand_dims(out, dim) if keepdim else out)

    # ------------------------------------------ selection, sorting, running sums (ops/selection.py, ops/sorting.py)
    def gather(self, dim, index):
        return selection.gather(self, dim, index)

    def scatter(self, dim, index, src=None, *, value=None):
        """``src`` (a tensor) or ``value`` (a number, also accepted in ``src``'s place) written at ``index``."""
        if src is not None and not isinstance(src, numbers.Number):
            src = as_tensor(src)
        return selection.scatter(self, dim, index, src, value)

    def scatter_add(self, dim, index, src):
        return selection.scatter_add(self, dim, index, as_tensor(src))

    def index_select(self, dim, index):
        return selection.index_select(self, dim, index)

    def masked_fill(self, mask, value):
        if not isinstance(value, Tensor):
            if not isinstance(value, numbers.Number):
                raise TypeError(f"masked_fill: expected a number or a 0-D tensor as value, received "
                                f"{type(value).__name__}")
            value = Tensor._make(backend.get_array_module(self.data).asarray(value, dtype=self.dtype))
        return selection.masked_fill(self, mask, value, value)

    def where(self, condition, other):
        from convstack.functions import where

        return where(condition, self, other)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        """``(values, indices)`` sorted along ``dim`` (stable; NaN counts as the largest), as ``torch.sort``."""
        return ValuesIndices(*sorting.sort(self, dim, descending, stable))

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return sorting.argsort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
        """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) along ``dim``, as ``torch.topk``."""
        return ValuesIndices(*sorting.topk(self, k, dim, largest, sorted))

    def cumsum(self, dim: int, *, dtype=None):
        """Running sum along ``dim`` (integers and booleans in int64), as ``torch.cumsum``."""
        dtype = None if dtype is None else backend.check_dtype(dtype, "cumsum")
        return reduction.Cumsum.apply(self, dim=selection.axis("cumsum", dim, self.ndim), dtype=dtype)

    # ---------------------------------------------------------------------- shape
    def reshape(self, *shape):
        shape = tuple(int(s) for s in _shape_args(shape))
        target = _infer_shape(shape, self.numel())
        return shape_mod_reshape(self, target)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a {self.ndim}-d tensor")
        new_shape = self.shape[:start] + (_prod(self.shape[start : end + 1]),) + self.shape[end + 1 :]
        return shape_mod_reshape(self, new_shape)

    def permute(self, *dims):
        dims = _shape_args(dims)
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(
                f"permute: dims {list(dims)} are not a permutation of the {self.ndim} dimensions of shape {self.shape}"
            )
        return shape.Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int, dim1: int):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return shape.Permute.apply(self, dims=tuple(dims))

    def squeeze(self, dim=None):
        if dim is None:
            new_shape = tuple(s for s in self.shape if s != 1)
        else:
            axes = reduction.normalize_dims(dim, self.ndim, "squeeze")
            new_shape = tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1))
        return shape_mod_reshape(self, new_shape)

    def unsqueeze(self, dim: int):
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dimension out of range (expected [{-self.ndim - 1}, {self.ndim}], got {dim})")
        dim = dim % (self.ndim + 1)
        return shape_mod_reshape(self, self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *sizes):
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        target = tuple(self.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
        return shape.Expand.apply(self, shape=target)

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        elif isinstance(index, list):
            index = numpy.asarray(index)
        return indexing.GetItem.apply(self, index=index)

    # ------------------------------------------------- in-place operations and version counters
    # PyTorch's in-place methods, with gradients (convstack.ops.inplace, Function.apply_inplace):
    # each bumps the version shared by the tensors viewing the same memory, so that backward
    # through an op that saved the old values raises instead of computing a wrong gradient.
    _counter = None  # the VersionCounter, made on first need (version 0 until then)
    _view_base = None  # the tensor whose memory this one views (the root of a chain of views)
    _view_chain: tuple = ()  # ((Function class, options), ...) that make this view from _view_base
    _view_version = 0  # the version at which this view's history was last made from its base's

    @property
    def _version(self) -> int:
        """How many in-place operations changed this tensor's memory (as ``torch.Tensor._version``)."""
        counter = self._counter
        return 0 if counter is None else counter.value

    def _version_counter(self):
        counter = self._counter
        if counter is None:
            counter = self._counter = autograd.VersionCounter()
        return counter

    def _bump_version(self, op: str) -> None:
        """Record that ``op`` changed this tensor's memory in place (arrays written through ``.data``)."""
        counter = self._version_counter()
        counter.value += 1
        counter.op = op

    def _inplace(self, function, op: str, *operands, **options) -> Tensor:
        return function.apply_inplace(self, *operands, op=op, **options)

    def add_(self, other, *, alpha=1) -> Tensor:
        """``self += alpha * other``, in place (``other`` broadcast to this shape)."""
        from convstack.ops import inplace

        other = _operand(other, self) if alpha == 1 else _operand(other, self) * alpha
        inplace.check_operand(self, other, "add_")
        return self._inplace(inplace.AddInplace, "add_", other)

    def sub_(self, other, *, alpha=1) -> Tensor:
        """``self -= alpha * other``, in place."""
        from convstack.ops import inplace

        other = _operand(other, self) if alpha == 1 else _operand(other, self) * alpha
        inplace.check_operand(self, other, "sub_")
        return self._inplace(inplace.SubInplace, "sub_", other)

    def mul_(self, other) -> Tensor:
        """``self *= other``, in place."""
        from convstack.ops import inplace

        other = _operand(other, self)
        inplace.check_operand(self, other, "mul_")
        return self._inplace(inplace.MulInplace, "mul_", other)

    def div_(self, other) -> Tensor:
        """``self /= other``, in place (a floating-point tensor: true division)."""
        from convstack.ops import inplace

        other = _operand(other, self)
        inplace.check_operand(self, other, "div_")
        return self._inplace(inplace.DivInplace, "div_", other)

    def fill_(self, value) -> Tensor:
        """Every element set to ``value`` (a number or a one-element tensor), in place."""
        from convstack.ops import inplace

        value = _operand(value, self)
        if value.data.size != 1:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                               "dimensions")
        return self._inplace(inplace.FillInplace, "fill_", value.reshape(()))

    def zero_(self) -> Tensor:
        """Every element set to 0, in place."""
        from convstack.ops import inplace

        return self._inplace(inplace.FillInplace, "zero_", Tensor._make(numpy.zeros((), dtype=self.dtype)))

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's argument names
        """Clip to ``[min, max]`` in place; the gradient passes where the value was inside."""
        from convstack.ops import inplace

        if min is None and max is None:
            raise ValueError("clamp_: at least one of `min` and `max` must be given")
        return self._inplace(inplace.ClampInplace, "clamp_", min=min, max=max)

    clip_ = clamp_

    def copy_(self, src) -> Tensor:
        """This tensor's elements set to ``src``'s (broadcast, cast to this dtype), in place."""
        from convstack.ops import inplace

        src = as_tensor(src)
        inplace.check_operand(self, src, "copy_", cast=True)  # copy_ casts to this dtype whatever src's
        return self._inplace(inplace.CopyInplace, "copy_", src)

    def relu_(self) -> Tensor:
        """``max(0, x)`` in place."""
        from convstack.ops import inplace

        if not backend.is_floating(self.dtype):
            raise RuntimeError(f"relu_: expected a floating-point tensor, got {self.dtype}")
        return self._inplace(inplace.ReLUInplace, "relu_")

    def __setitem__(self, index, value):
        from convstack.ops import inplace

        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        elif isinstance(index, list):
            index = numpy.asarray(index)
        value = _operand(value, self)
        try:  # the indexed region's shape, from a zero-stride view: nothing the size of the tensor is made
            region = numpy.broadcast_to(numpy.False_, self.shape)[index].shape
        except IndexError as error:
            raise IndexError(f"__setitem__: {error} (tensor of shape {self.shape})") from None
        try:
            fits = numpy.broadcast_shapes(region, value.shape) == region
        except ValueError:
            fits = False
        if not fits:
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be broadcast to "
                               f"indexing result of shape {list(region)}")
        self._inplace(inplace.SetItemInplace, "__setitem__", value, index=index)


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def shape_mod_reshape(t: Tensor, new_shape: tuple) -> Tensor:
    if tuple(new_shape) == t.shape:
        return t
    return shape.Reshape.apply(t, shape=tuple(new_shape))


def _infer_shape(shape: tuple, numel: int) -> tuple:
    """Resolve one ``-1`` in ``shape`` and check the element count."""
    unknown = [i for i, s in enumerate(shape) if s == -1]
    known = _prod(s for s in shape if s != -1)
    if len(unknown) > 1 or any(s < -1 for s in shape):
        raise RuntimeError(f"shape {list(shape)} is invalid for input of size {numel}")
    if unknown:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape {list(shape)} is invalid for input of size {numel}")
        shape = shape[: unknown[0]] + (numel // known,) + shape[unknown[0] + 1 :]
    if _prod(shape) != numel:
        raise RuntimeError(f"shape {list(shape)} is invalid for input of size {numel}")
    return shape


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _shape_args(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _operand(value, like: Tensor) -> Tensor:
    """A Python number or array as a tensor of ``like``'s dtype where sensible."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, bool) and backend.is_floating(like.dtype):
        return Tensor._make(numpy.asarray(value, dtype=like.dtype))
    if isinstance(value, numbers.Number):
        return Tensor._make(numpy.asarray(value))
    return as_tensor(value)


def as_tensor(data, dtype=None) -> Tensor:
    """``data`` as a Tensor, sharing memory when it already is one or an array of the dtype."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    return Tensor(data, dtype=dtype)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new tensor holding a copy of ``data`` (as ``torch.tensor``)."""
    array = _coerce_array(data, dtype)
    xp = backend.get_array_module(array)
    return Tensor(xp.array(array, copy=True), requires_grad=requires_grad)


class _CastFn(Function):
    def forward(self, a, *, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return (grad.astype(self.in_dtype),)


class _CloneFn(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return (grad,)


autograd._bind_tensor(Tensor, as_tensor)
