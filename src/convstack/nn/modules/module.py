"""``Module``: the base of every layer and model.

A module owns parameters, buffers and submodules, registered by plain attribute
assignment (``self.conv1 = Conv2d(...)``), and walks them recursively with
PyTorch's dotted names (``features.0.weight``). ``training`` is a per-module
attribute, set down the tree by ``train()``/``eval()``; no global mode flag exists.

Layers that take a tensor of a known layout define ``_check_input(input)``, raising
``ValueError`` (or ``TypeError`` for a dtype, ``MemoryError`` for an output that cannot
fit) with the expected and received shapes;
``__call__`` runs it before ``forward`` and prefixes the layer's path in the model
(``features.3 (Conv2d): expected input with 6 channels, got 3 ...``). Paths come from
the stack of running calls kept in ``convstack.anomaly`` (computed only on an error or
in anomaly mode).
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

from convstack import anomaly, backend
from convstack.autograd import is_grad_enabled
from convstack.nn.modules.hooks import BackwardHookCall, RemovableHandle
from convstack.nn.modules.parameter import Parameter
from convstack.nn.modules.state import load_into
from convstack.tensor import Tensor


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict(strict=False)`` skipped."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _name_the_layer(module, error) -> str:
    """``error``'s message prefixed by the layer's path (``features.0 (Conv2d): ...``) instead of its type."""
    message = str(error)
    own = f"{type(module).__name__}: "
    if message.startswith(own):
        message = message[len(own) :]
    return f"{anomaly.layer_name()}: {message}"


def check_spatial_input(input, spatial_dims: int, channels: int | None = None) -> None:
    """Refuse an input that is not ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, or has the wrong ``C``.

    For layers over ``spatial_dims`` spatial dimensions (convolution, pooling, normalisation);
    ``channels=None`` accepts any channel count. Inputs without a ``shape`` are left to ``forward``.
    """
    shape = getattr(input, "shape", None)
    if shape is None:
        return
    shape = tuple(shape)
    spatial = ("L",) if spatial_dims == 1 else ("D", "H", "W")[3 - spatial_dims :]
    if len(shape) not in (spatial_dims + 1, spatial_dims + 2):
        batched, unbatched = ", ".join(("N", "C", *spatial)), ", ".join(("C", *spatial))
        raise ValueError(
            f"expected a {spatial_dims + 2}-D input ({batched}) or a {spatial_dims + 1}-D unbatched input "
            f"({unbatched}), got a {len(shape)}-D input of shape {shape}"
        )
    if channels is not None and shape[-spatial_dims - 1] != channels:
        raise ValueError(
            f"expected input with {channels} channel{'s' if channels != 1 else ''}, got {shape[-spatial_dims - 1]} "
            f"(input shape {shape})"
        )


def check_input_dtype(input, dtype) -> None:
    """Refuse an input whose dtype is not the layer's floating ``dtype`` (``TypeError``, saying how to convert)."""
    received = getattr(input, "dtype", None)
    if received is None or received == dtype:
        return
    shape = tuple(input.shape)
    if received not in backend.FLOAT_DTYPES:
        kind = "unsupported " if received not in backend.SUPPORTED_DTYPES else ""
        raise TypeError(
            f"expected a floating-point input of dtype {dtype} (the layer's), got {kind}dtype {received} "
            f"(input shape {shape}); convert it with .float()"
        )
    raise TypeError(
        f"expected an input of dtype {dtype} (the layer's), got {received} (input shape {shape}); "
        f"convert the input with .to({dtype}) or the model with .to({received})"
    )


def _addindent(text: str, spaces: int) -> str:
    """Indent every line of ``text`` but the first (PyTorch's ``_addindent``)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class for all layers and models.

    Subclasses call ``super().__init__()`` first, assign parameters and submodules as
    attributes, and define ``forward``. Calling the module runs forward pre-hooks,
    ``forward``, forward hooks, and wires full backward hooks.

    Examples:
        >>> import convstack as cs
        >>> from convstack import nn
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.features = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        ...         self.head = nn.Linear(3, 2)
        ...     def forward(self, x):
        ...         return self.head(self.features(x))
        >>> [name for name, _ in Net().named_parameters()]
        ['features.0.weight', 'features.0.bias', 'head.weight', 'head.bias']
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # ------------------------------------------------------------------ registration
    def _check_name(self, kind: str, name) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got: {name}')

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` (or ``None``, a declared but absent parameter such as ``bias=False``)."""
        self._check_name("parameter", name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(convstack.nn.Parameter or None required)"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a non-learnable tensor (running statistics, a loss weight) to the module's state.

        A persistent buffer is part of ``state_dict()``; a non-persistent one is not.
        NumPy arrays are wrapped into tensors (sharing memory).
        """
        self._check_name("buffer", name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            if not hasattr(tensor, "shape"):
                raise TypeError(
                    f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (Tensor or None required)"
                )
            tensor = Tensor(tensor)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as an attribute and in every recursive walk."""
        self._check_name("module", name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if isinstance(value, Parameter):
            if "_parameters" not in d:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
        elif "_parameters" in d and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(convstack.nn.Parameter or None expected)"
                )
            self._parameters[name] = None
        elif isinstance(value, Module):
            if "_modules" not in d:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            self._modules[name] = value
        elif "_modules" in d and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' (Module or None expected)"
                )
            self._modules[name] = None
        elif "_buffers" in d and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        """Drop ``name`` from every store before it is registered anew in one of them."""
        self.__dict__.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            self.__dict__[store].pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, ()):
                del self.__dict__[store][name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ---------------------------------------------------------------- tree walks
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """Yield ``(dotted_name, module)`` for this module (name ``prefix``) and every descendant."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen = set()
        walk = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in walk:
            for name, value in module.__dict__[store].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield ``(dotted_name, parameter)``; a parameter shared by two modules appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target: str) -> Module:
        """The descendant at dotted path ``target`` (``""`` is this module)."""
        module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule `{part}` (looking up {target!r})")
            module = child
        return module

    # ---------------------------------------------------------------- mode and grads
    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and every descendant; returns ``self``."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, received {mode!r}")
        object.__setattr__(self, "training", mode)
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.zero_()

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every child (recursively), then on ``self``, as for custom init."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --------------------------------------------------------------------- dtype
    def _apply_to_tensors(self, convert) -> Module:
        for module in self.modules():
            for store in ("_parameters", "_buffers"):
                for tensor in module.__dict__[store].values():
                    if tensor is None:
                        continue
                    tensor.data = convert(tensor.data)
                    if tensor.grad is not None:
                        tensor.grad.data = convert(tensor.grad.data)
        return self

    def to(self, dtype=None, device=None) -> Module:
        """Cast floating parameters and buffers to ``dtype`` and/or move all to ``device``, in place.

        The parameter objects stay the same, so an optimiser built before still holds them.
        ``module.to('cpu')`` and ``module.to(float64)`` both work, as in PyTorch.
        """
        if isinstance(dtype, str) and (dtype == "cpu" or dtype.startswith("cuda")):
            dtype, device = None, dtype
        if dtype is not None:
            dtype = backend.check_dtype(dtype, f"{type(self).__name__}.to")
            if not backend.is_floating(dtype):
                raise TypeError(f"{type(self).__name__}.to only accepts floating point dtypes, got {dtype}")
            self._apply_to_tensors(lambda a: a.astype(dtype) if backend.is_floating(a.dtype) else a)
        if device is not None:
            self._apply_to_tensors(lambda a: backend.to_device(a, device))
        return self

    def float(self) -> Module:
        return self.to(backend.numpy.float32)

    def double(self) -> Module:
        return self.to(backend.numpy.float64)

    def cpu(self) -> Module:
        return self.to(device="cpu")

    # --------------------------------------------------------------------- hooks
    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, args)`` runs before ``forward``; a returned value replaces ``args``."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook) -> RemovableHandle:
        """``hook(module, args, output)`` runs after ``forward``; a returned value replaces ``output``."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_full_backward_hook(self, hook) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs once the gradients w.r.t. the inputs are known.

        ``grad_input`` holds one entry per tensor positional argument (``None`` where it
        needs no gradient) and ``grad_output`` one per tensor output. A returned tuple
        replaces ``grad_input`` (for modules with one input that requires grad).
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    _check_input = None  # layers with a known input layout define _check_input(self, input)

    def __call__(self, *args, **kwargs):
        stack = anomaly._frames.stack
        stack.append([self, None])
        try:
            if anomaly._enabled:
                anomaly.layer_name()  # work out this call's path now, while its parents are on the stack
            if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks:
                return self._call(args, kwargs)
            if self._check_input is not None and args:  # the common case, without hooks: check, forward
                self._checked(args[0])
            return self.forward(*args, **kwargs)
        finally:
            stack.pop()

    def _checked(self, input) -> None:
        try:
            self._check_input(input)
        except (ValueError, TypeError, MemoryError) as error:
            kind = next(k for k in (TypeError, MemoryError, ValueError) if isinstance(error, k))
            raise kind(_name_the_layer(self, error)) from None

    def _call(self, args, kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        if self._check_input is not None and args:
            self._checked(args[0])
        backward_call = None
        if self._backward_hooks and is_grad_enabled():
            backward_call = BackwardHookCall(self, self._backward_hooks)
            args = backward_call.wrap_inputs(args)
        result = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, result)
            if replaced is not None:
                result = replaced
        if backward_call is not None:
            result = backward_call.wrap_outputs(result)
        return result

    # ---------------------------------------------------------------------- state
    def state_dict(self, destination: OrderedDict | None = None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict ``dotted_name -> tensor`` of parameters and persistent buffers.

        The tensors are detached and share memory with the module (``keep_vars=True``
        returns the parameters themselves).
        """
        if destination is None:
            destination = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = buffer if keep_vars else buffer.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy ``state_dict``'s values (tensors or arrays) into this module's parameters and buffers.

        Every key and shape is checked before anything is copied: on any error nothing
        changes. ``strict=True`` refuses missing and unexpected keys; ``strict=False``
        skips them and returns them. Mis-shaped values are refused either way.
        """
        missing, unexpected = load_into(self, state_dict, strict)
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """The layer's own settings, shown inside its parentheses by ``repr``."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(module), 2) for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"
