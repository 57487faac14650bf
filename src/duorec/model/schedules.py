"""Learning-rate schedules, built from `conf/scheduler/*.yaml` as partials.

A schedule needs the number of optimiser steps of the whole run, which only the trainer knows
once it has seen the data module, so the config gives a partial and the model completes it in
`configure_optimizers` with `(optimizer, total_steps)`. All schedules step every batch.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR


def cosine(optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """Cosine decay from the optimiser's learning rate to zero over `total_steps`."""
    return CosineAnnealingLR(optimizer, T_max=total_steps)


def onecycle(optimizer: Optimizer, total_steps: int, warmup_fraction: float) -> LRScheduler:
    """Warm up to the optimiser's learning rate over `warmup_fraction` of the run, then anneal."""
    max_lr = optimizer.param_groups[0]["lr"]
    return OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=warmup_fraction)
