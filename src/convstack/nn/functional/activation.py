"""Point-wise activations and the (log-)softmax, each forward beside its backward.

``inplace=True`` is accepted for PyTorch compatibility but the ops always return a new
tensor: autograd needs the input (or output) kept intact for the backward pass.
"""

from __future__ import annotations

import math

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import activation as activation_kernels
from convstack.tensor import Tensor, as_tensor

# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969); coefficients of the CALERF routine (netlib specfun), accurate to
# float64 precision. erf on |x| <= 0.46875; erfc on 0.46875 < |x| <= 4 and on |x| > 4.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 0.56418958354775628695


def _rational(y, top, bottom, steps):
    """Cody's nested evaluation: ``(top[-1] y^k + ... ) / (y^k + ...)`` as CALERF writes it."""
    numerator, denominator = top[-1] * y, y
    for i in range(steps):
        numerator = (numerator + top[i]) * y
        denominator = (denominator + bottom[i]) * y
    return (numerator + top[steps]) / (denominator + bottom[steps])


# float32: x P(x^2) / Q(x^2) on [-4, 4] (erf(4) rounds to 1 in float32), the approximation Eigen
# and XLA use for single precision; one pass over the array, no masking.
_ERF32_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
            -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF32_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
            -1.42647390514189e-02)


def _horner(z, coefficients):
    result = coefficients[0] * z + coefficients[1]
    for c in coefficients[2:]:
        result *= z
        result += c
    return result


def _erf_float32(x):
    xp = get_array_module(x)
    x = xp.clip(x, -4.0, 4.0)
    z = x * x
    return x * _horner(z, _ERF32_P) / _horner(z, _ERF32_Q)


def _erf_cody(x):
    xp = get_array_module(x)
    y = xp.abs(x)
    out = xp.empty_like(x)
    small = y <= 0.46875
    ys = y[small]
    out[small] = x[small] * _rational(ys * ys, _ERF_A, _ERF_B, 3)
    large = ~small
    yl = xp.minimum(y[large], 30.0)  # erfc(30) underflows to 0 in float64; avoids inf - inf below
    middle = yl <= 4.0
    erfc = xp.empty_like(yl)
    erfc[middle] = _rational(yl[middle], _ERFC_C, _ERFC_D, 7)
    tail = yl[~middle]
    inverse_square = 1.0 / (tail * tail)
    erfc[~middle] = (_INV_SQRT_PI - inverse_square * _rational(inverse_square, _ERFC_P, _ERFC_Q, 4)) / tail
    # exp(-y^2) split as exp(-r^2) exp(-(y-r)(y+r)) with r = y rounded down to 1/16: keeps precision
    rounded = xp.floor(yl * 16) / 16
    erfc *= xp.exp(-rounded * rounded) * xp.exp(-(yl - rounded) * (yl + rounded))
    out[large] = xp.copysign(1 - erfc, x[large])
    return out


def erf(x):
    """The error function of an array, vectorised, accurate to the precision of its dtype.

    float64 (and wider) uses Cody's rational approximations, each range evaluated only on
    the elements that fall in it; float32 uses a single rational approximation.
    """
    if x.dtype.itemsize <= 4:
        return _erf_float32(x)
    return _erf_cody(x)


class ReLU(Function):
    """``max(0, x)``; kernels ``relu_forward`` / ``relu_backward`` of the tier in use."""

    def forward(self, x):
        tier = tiers.tier_for(x)
        self.backward_kernel = tier.implementation(activation_kernels.relu_backward)
        self.out = tier.implementation(activation_kernels.relu_forward)(x)
        return self.out

    def backward(self, grad):
        return (self.backward_kernel(grad, self.out),)

    def keep_output(self, out) -> None:
        """Keep ``out`` (the rectified array, made elsewhere, as in place) and the tier's backward kernel for it."""
        self.backward_kernel = tiers.tier_for(out).implementation(activation_kernels.relu_backward)
        self.out = out


# Element-wise selections below are written as arithmetic on 0/1 masks rather than xp.where:
# NumPy's where on an unpredictable mask runs an order of magnitude slower than a multiply.


class LeakyReLU(Function):
    def forward(self, x, *, negative_slope):
        slope = (x > 0).astype(x.dtype)  # 1 where x > 0, negative_slope elsewhere
        slope *= 1 - negative_slope
        slope += negative_slope
        self.slope = slope
        return x * slope

    def backward(self, grad):
        return (grad * self.slope,)


class ELU(Function):
    def forward(self, x, *, alpha):
        xp = get_array_module(x)
        self.negative_part = alpha * xp.expm1(xp.minimum(x, 0))  # 0 where x > 0
        self.positive, self.alpha = x > 0, alpha
        return xp.maximum(x, 0) + self.negative_part

    def backward(self, grad):
        # x > 0: 1; otherwise d/dx alpha (e^x - 1) = alpha e^x = negative_part + alpha
        slope = self.negative_part + self.alpha
        slope += self.positive * (1 - self.alpha)
        return (grad * slope,)


class GELU(Function):
    """x Phi(x) with Phi the standard normal CDF (Hendrycks & Gimpel 2016), or its tanh form."""

    def forward(self, x, *, approximate):
        xp = get_array_module(x)
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
        return x * self.cdf

    def backward(self, grad):
        xp = get_array_module(grad)
        x = self.x
        if self.approximate == "tanh":
            inner_grad = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
            return (grad * (0.5 * (1 + self.t) + 0.5 * x * (1 - self.t * self.t) * inner_grad),)
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return (grad * (self.cdf + x * pdf),)


class Sigmoid(Function):
    def forward(self, x):
        xp = get_array_module(x)
        # exp(min(x, 0)) / (1 + exp(-|x|)): 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below; never overflows
        denominator = xp.exp(-xp.abs(x))
        denominator += 1
        self.out = xp.exp(xp.minimum(x, 0))
        self.out /= denominator
        return self.out

    def backward(self, grad):
        return (grad * self.out * (1 - self.out),)


class Tanh(Function):
    def forward(self, x):
        self.out = get_array_module(x).tanh(x)
        return self.out

    def backward(self, grad):
        return (grad * (1 - self.out * self.out),)


class Softmax(Function):
    def forward(self, x, *, dim):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        self.out, self.dim = e, dim
        return e

    def backward(self, grad):
        out = self.out
        return (out * (grad - (grad * out).sum(axis=self.dim, keepdims=True)),)


class LogSoftmax(Function):
    def forward(self, x, *, dim):
        xp = get_array_module(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.out, self.dim = shifted, dim
        return shifted

    def backward(self, grad):
        xp = get_array_module(grad)
        return (grad - xp.exp(self.out) * grad.sum(axis=self.dim, keepdims=True),)


def _float_input(op: str, input) -> Tensor:
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    return input


def relu(input, inplace: bool = False) -> Tensor:
    """max(0, x), element-wise; with ``inplace``, ``input.relu_()`` (overwrites and returns ``input``).

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.relu(cs.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """
    input = _float_input("relu", input)
    return input.relu_() if inplace else ReLU.apply(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise. ``inplace`` is accepted and ignored.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.leaky_relu(cs.tensor([-1.0, 2.0]), 0.1)
        tensor([-0.1,  2. ])
    """
    return LeakyReLU.apply(_float_input("leaky_relu", input), negative_slope=float(negative_slope))


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, ``alpha * (exp(x) - 1)`` otherwise (Clevert et al. 2015). ``inplace`` is ignored.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.elu(cs.tensor([0.0, 1.0]))
        tensor([0., 1.])
    """
    return ELU.apply(_float_input("elu", input), alpha=float(alpha))


def gelu(input, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x * Phi(x)``.

    Args:
        input: a float tensor of any shape.
        approximate: ``'none'`` for the exact erf form, ``'tanh'`` for
            ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.gelu(cs.tensor([0.0, 1.0]))
        tensor([0.    , 0.8413])
    """
    if approximate not in ("none", "tanh"):
        raise invalid("gelu", "approximate", "'none' or 'tanh'", approximate)
    return GELU.apply(_float_input("gelu", input), approximate=approximate)


def sigmoid(input) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow for large |x|.

    Examples:
        >>> F.sigmoid(cs.tensor([0.0]))
        tensor([0.5])
    """
    return Sigmoid.apply(_float_input("sigmoid", input))


def tanh(input) -> Tensor:
    """Hyperbolic tangent, element-wise.

    Examples:
        >>> F.tanh(cs.tensor([0.0]))
        tensor([0.])
    """
    return Tanh.apply(_float_input("tanh", input))


def _softmax_dim(op: str, input: Tensor, dim) -> int:
    rank = max(input.ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -rank <= dim < rank:
        raise invalid(op, "dim", f"an integer in [{-rank}, {rank - 1}] for a {input.ndim}-D input", dim,
                      f"input shape {input.shape}")
    return dim % rank


def _softmax_family(fn, op: str, input, dim, dtype) -> Tensor:
    input = _float_input(op, input)
    axis = _softmax_dim(op, input, dim)
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return fn.apply(input.reshape(1), dim=0).reshape(())
    return fn.apply(input, dim=axis)


def softmax(input, dim=None, *, dtype=None) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along ``dim``, with the maximum subtracted first for stability.

    Args:
        input: a float tensor.
        dim: the dimension summing to one (required, as PyTorch now requires it).
        dtype: cast the input to this dtype first (e.g. float64 for extra precision).

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.softmax(cs.tensor([[0.0, 0.0]]), dim=1)
        tensor([[0.5, 0.5]])
    """
    return _softmax_family(Softmax, "softmax", input, dim, dtype)


def log_softmax(input, dim=None, *, dtype=None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed as ``x - max - log(sum(exp(x - max)))`` (log-sum-exp).

    Args:
        input: a float tensor.
        dim: the dimension to normalise over (required).
        dtype: cast the input to this dtype first.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.log_softmax(cs.tensor([[0.0, 0.0]]), dim=1)
        tensor([[-0.6931, -0.6931]])
    """
    return _softmax_family(LogSoftmax, "log_softmax", input, dim, dtype)
