"""``Embedding``: a (num_embeddings, embedding_dim) table of learned vectors looked up by index."""

from __future__ import annotations

import numpy

from convstack.autograd import no_grad
from convstack.nn import functional as F
from convstack.nn import init
from convstack.nn.functional.lookup import padding_index
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module
from convstack.nn.modules.parameter import Parameter
from convstack.tensor import as_tensor


class Embedding(Configurable, Module):
    """A lookup table: integer indices (*) -> rows of ``weight`` (*, embedding_dim).

    Args:
        num_embeddings: the number of rows V; embedding_dim: their size D.
        padding_idx: this row (negative counts from the end) starts at zero and gets no gradient.
        max_norm: rows looked up whose ``norm_type``-norm exceeds it are rescaled to it, in
            place, at each lookup.
        norm_type: the p of that norm (default 2).
        scale_grad_by_freq: divide each row's gradient by its index's count in the batch.
        sparse: must be False (convstack has dense gradients only).
        dtype: float32 (default) or float64.

    The weight is initialised from N(0, 1), as PyTorch's.

    Shape:
        Input (*) of integers in [0, V); output (*, D). ``weight`` is (V, D).

    Examples:
        >>> import convstack as cs
        >>> table = cs.nn.Embedding(10, 3, padding_idx=0)
        >>> table(cs.tensor([[0, 2], [4, 9]])).shape
        (2, 2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, max_norm=None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None,
                 _freeze: bool = False, dtype=None):
        super().__init__()
        check = ArgumentCheck("Embedding")
        self.num_embeddings = check.positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = check.positive_int("embedding_dim", embedding_dim)
        if max_norm is not None:
            max_norm = check.number("max_norm", max_norm, 0.0, expected="None or a non-negative number")
        self.max_norm = max_norm
        self.norm_type = check.number("norm_type", norm_type)
        if self.norm_type == 0:
            check.fail("norm_type", "a non-zero number (or inf)", norm_type)
        self.scale_grad_by_freq = check.boolean("scale_grad_by_freq", scale_grad_by_freq)
        if sparse is not False:
            check.fail("sparse", "False (convstack has dense gradients only)", sparse)
        self.sparse = False
        dtype = check.float_dtype(dtype)
        if self.num_embeddings is not None and padding_idx is not None:
            try:
                padding_idx = padding_index("Embedding", padding_idx, self.num_embeddings)
            except ValueError as error:
                check.errors.append(error)
        self.padding_idx = padding_idx
        shape = (num_embeddings, embedding_dim)
        if _weight is not None and self.num_embeddings is not None and self.embedding_dim is not None:
            if tuple(as_tensor(_weight).shape) != shape:
                check.fail("_weight", f"a tensor of shape {shape} (num_embeddings, embedding_dim)",
                           f"a tensor of shape {tuple(as_tensor(_weight).shape)}")
        check.done()
        if _weight is None:
            self.weight = Parameter(numpy.empty(shape, dtype=dtype))
            self.reset_parameters()
        else:
            self.weight = Parameter(numpy.array(as_tensor(_weight).data, dtype=dtype))
        if _freeze:
            self.weight.requires_grad_(False)

    def reset_parameters(self, generator=None) -> None:
        """N(0, 1), then the padding row set to zero."""
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            with no_grad():
                self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False):
        """An ``Embedding`` holding a copy of the 2-D ``embeddings``; ``freeze`` keeps it from training.

        The padding row is left as given (not zeroed), as PyTorch does.
        """
        embeddings = as_tensor(embeddings)
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: expected a 2-D tensor (num_embeddings, embedding_dim), "
                             f"received shape {embeddings.shape}")
        dtype = embeddings.dtype if embeddings.dtype.kind == "f" else None
        return cls(embeddings.shape[0], embeddings.shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq,
                   sparse, _weight=embeddings, _freeze=freeze, dtype=dtype)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def get_config(self) -> dict:
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "max_norm": self.max_norm,
            "norm_type": self.norm_type,
            "scale_grad_by_freq": self.scale_grad_by_freq,
            "sparse": self.sparse,
            "dtype": str(self.weight.dtype),
        }

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text

