"""Learning-rate schedules, built from `conf/scheduler/*.yaml` as partials.

A schedule needs the number of optimiser steps of the whole run, which only the trainer knows
once it has seen the data module, so the config gives a partial and the model completes it in
`configure_optimizers` with `(optimizer, total_steps)`. All schedules step every batch.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR


def cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.0) -> LRScheduler:
    """Linear warm-up over `warmup_fraction` of the run, then cosine decay to zero.

    Why warm up: Adam's first steps use second-moment estimates from a handful of batches, and
    the first batches of a fresh model push every embedding the same way; a short ramp keeps
    those noisy steps small. Given as a fraction of the run, never a step count, so the same
    setting fits a data set of any size. Every parameter group (embeddings may have their own
    learning rate) follows the same curve.
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"scheduler.warmup_fraction must be in [0, 1), got {warmup_fraction}")
    warmup = int(warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return LambdaLR(optimizer, factor)


def onecycle(optimizer: Optimizer, total_steps: int, warmup_fraction: float) -> LRScheduler:
    """Warm up to the optimiser's learning rate over `warmup_fraction` of the run, then anneal."""
    max_lr = optimizer.param_groups[0]["lr"]
    return OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=warmup_fraction)
