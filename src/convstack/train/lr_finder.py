"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks").

Raise the learning rate exponentially from ``start_lr`` to ``end_lr`` over ``steps``
mini-batches, recording the (exponentially smoothed) loss; stop early once the loss
exceeds ``divergence`` times the best seen. The suggested rate is the one where the
smoothed loss falls fastest (steepest negative slope against log(lr)), a common
reading of Smith's plot. The model and optimizer are restored afterwards.
"""

from __future__ import annotations

import copy
import math

import numpy


def lr_range_test(
    model, optimizer, loader, loss_fn=None, start_lr=1e-6, end_lr=1.0, steps=200, smoothing=0.05, divergence=4.0
):
    """Run the range test; returns ``{"lrs": [...], "losses": [...], "suggested_lr": float}``."""
    if loss_fn is None:
        from convstack.nn.functional import cross_entropy

        loss_fn = cross_entropy
    if not 0 < start_lr < end_lr:
        raise ValueError(
            f"lr_range_test: expected 0 < start_lr < end_lr, received start_lr={start_lr}, end_lr={end_lr}"
        )
    if steps < 2:
        raise ValueError(f"lr_range_test: invalid value for argument `steps`: expected at least 2, received {steps}")
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = optimizer.state_dict()
    factor = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs, losses = [], []
    smoothed, best = 0.0, math.inf
    model.train()
    batches = iter(loader)
    for step in range(steps):
        try:
            inputs, targets = next(batches)
        except StopIteration:
            batches = iter(loader)
            inputs, targets = next(batches)
        lr = start_lr * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(inputs), targets)
        value = float(loss.item())
        if not math.isfinite(value):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        smoothed = smoothing * value + (1 - smoothing) * smoothed
        debiased = smoothed / (1 - (1 - smoothing) ** (step + 1))
        lrs.append(lr)
        losses.append(debiased)
        best = min(best, debiased)
        if debiased > divergence * best:
            break
    model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_optimizer)
    return {"lrs": lrs, "losses": losses, "suggested_lr": suggest(lrs, losses)}


def suggest(lrs, losses) -> float:
    """The rate at the steepest descent of loss against log(lr), ignoring the noisy ends."""
    if len(lrs) < 3:
        return float(lrs[0]) if lrs else float("nan")
    log_lrs = numpy.log(numpy.asarray(lrs))
    slopes = numpy.gradient(numpy.asarray(losses), log_lrs)
    trim = max(1, len(lrs) // 10)
    window = slopes[trim:-trim] if len(lrs) > 2 * trim + 2 else slopes
    return float(lrs[int(numpy.argmin(window)) + (trim if window is not slopes else 0)])
