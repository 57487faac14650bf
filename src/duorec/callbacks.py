"""Small Lightning callbacks of our own."""

from __future__ import annotations

import time

import lightning as L


class TripleThroughput(L.Callback):
    """Logs `train/triples_per_s` each epoch: wall time of the training batches only.

    Sweeps compare batch sizes by throughput, so it must exclude validation and start-up.
    """

    def __init__(self) -> None:
        self.start = 0.0
        self.triples = 0
        self.seconds = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.triples, self.seconds = 0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds += time.perf_counter() - self.start
        self.triples += len(batch["movie"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seconds > 0:
            # per rank; the sum over ranks is the job's throughput
            pl_module.log(
                "train/triples_per_s", self.triples / self.seconds, reduce_fx="sum", sync_dist=True
            )
