"""Callbacks that interrupt a training run on purpose, for the resume tests.

Added to a run as any callback, e.g. on the command line with
`+callbacks.kill._target_=interrupt.KillAt +callbacks.kill.epoch=2` (with tests/ on the path).
"""

from __future__ import annotations

import os
import signal

import lightning as L


class StopAfter(L.Callback):
    """A clean stop after `epochs` epochs, as a time limit or a preempted job would stop."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class KillAt(L.Callback):
    """SIGKILL this process at batch `batch` of epoch `epoch` (0-based): no handler runs."""

    def __init__(self, epoch: int, batch: int):
        self.epoch = epoch
        self.batch = batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)
