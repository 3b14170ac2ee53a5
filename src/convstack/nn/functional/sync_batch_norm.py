"""Batch normalisation whose statistics span every rank's batch (``nn.SyncBatchNorm``'s op).

With data parallelism each rank sees B of the N*B samples of a step. Plain batch norm
would normalise each rank's B samples by their own statistics; this op normalises them
by the statistics of all N*B, forward and backward, so that N ranks compute what one
process computes on the whole batch.

Forward: each rank computes, per channel, its count ``n_r``, mean ``m_r`` and sum of squared
deviations ``M2_r`` (shifted-data, as ``batch_norm``); one allgather of ``(n_r, m_r, M2_r)``
and every rank combines them in the same order (Chan et al. 1979):
``mean = sum n_r m_r / n``, ``M2 = sum (M2_r + n_r (m_r - mean)^2)``, ``var = M2 / n``.

Backward: with ``g`` the upstream gradient, ``c = x - mean`` and ``a = weight * inv_std``,
``dx = a * (g - sum(g) / n - x_hat * sum(g * x_hat) / n)`` where the sums run over all ranks'
samples: one allreduce of the two per-channel sums. The weight and bias gradients are
the rank's own sums; ``DistributedDataParallel`` averages them as any other gradient.
"""

from __future__ import annotations

import numpy

from convstack.autograd import Function
from convstack.distributed.collectives import all_gather_into_tensor, all_reduce
from convstack.nn.kernels.reference.normalization import _channel_dots, _channel_sums, _rows


class SyncBatchNorm(Function):
    """Training-mode batch norm over the ranks of ``group``; inputs ``x`` then ``weight``, ``bias`` when affine.

    ``running_mean`` / ``running_var`` (arrays or None) are updated in place with the
    statistics of all ranks, identically on each.
    """

    def forward(self, x, *params, running_mean, running_var, momentum, eps, affine, group):
        weight = params[0] if affine[0] else None
        bias = params[-1] if affine[1] else None
        n, channels = x.shape[0], x.shape[1]
        x3 = x.reshape(n, channels, -1)  # (N, C, L)
        length = x3.shape[2]
        count = n * length
        local_mean = _channel_sums(x3) / count
        centred = x3 - _rows(local_mean, length)  # (N, C, L), centred on this rank's first mean
        shift = _channel_sums(centred) / count  # what that first mean missed
        m2 = _channel_dots(centred, centred) - count * shift * shift  # (C,) sum of squared deviations
        # The per-channel statistics travel as float64 host (NumPy) arrays, whatever the input's array module.
        stats = numpy.empty((3, channels), dtype=numpy.float64)  # rows: count, mean, M2
        stats[0], stats[1], stats[2] = count, local_mean + shift, m2
        gathered = numpy.empty((group.size, 3, channels), dtype=numpy.float64)
        all_gather_into_tensor(gathered, stats, group)
        counts, means, m2s = gathered[:, 0], gathered[:, 1], gathered[:, 2]  # each (ranks, C)
        total = counts.sum(axis=0)
        if total[0] < 2:
            raise ValueError(
                f"sync_batch_norm: expected more than 1 value per channel over all ranks when training, received "
                f"{int(total[0])} (input shape {x.shape} on rank {group.rank})"
            )
        mean = (counts * means).sum(axis=0) / total
        var = (m2s + counts * (means - mean) ** 2).sum(axis=0) / total  # biased: the one that normalises
        inv_std = (1.0 / numpy.sqrt(var + eps)).astype(x.dtype)
        total_count = float(total[0])
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += (momentum * var * (total_count / (total_count - 1))).astype(running_var.dtype)
        delta = (mean - local_mean).astype(x.dtype)  # c = centred - delta is x minus the global mean
        scale = inv_std if weight is None else inv_std * weight
        offset = -delta * scale if bias is None else bias - delta * scale
        out = centred * _rows(scale, length)
        out += _rows(offset, length)
        self.centred, self.delta, self.inv_std, self.weight = centred, delta, inv_std, weight
        self.affine, self.group, self.total_count = affine, group, total_count
        return out.reshape(x.shape)

    def backward(self, grad):
        needs, affine = self.needs_input_grad, self.affine
        n, channels = grad.shape[0], grad.shape[1]
        g3 = grad.reshape(n, channels, -1)  # (N, C, L)
        length = g3.shape[2]
        inv_std = self.inv_std
        sum_g = _channel_sums(g3)
        # x_hat = (centred - delta) * inv_std
        sum_g_x_hat = inv_std * (_channel_dots(g3, self.centred) - self.delta * sum_g)
        grads = []
        if needs[0]:
            sums = numpy.stack([sum_g, sum_g_x_hat]).astype(numpy.float64)  # (2, C), over every rank's samples below
            all_reduce(sums, group=self.group)
            total_g, total_g_x_hat = sums.astype(grad.dtype)
            a = inv_std if self.weight is None else inv_std * self.weight
            # dx = a g + b c + k per channel, c = centred - delta (see the module's docstring)
            b = -a * inv_std * total_g_x_hat / self.total_count
            k = -a * total_g / self.total_count - b * self.delta
            grad_input = g3 * _rows(a, length)
            term = self.centred * _rows(b, length)
            term += _rows(k, length)
            grad_input += term
            grads.append(grad_input.reshape(grad.shape))
        else:
            grads.append(None)
        if affine[0]:
            grads.append(sum_g_x_hat if needs[1] else None)
        if affine[1]:
            grads.append(sum_g if needs[-1] else None)
        return tuple(grads)
