"""Small Lightning callbacks of our own."""

from __future__ import annotations

import random
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import WeightAveraging


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


class RandomState(L.Callback):
    """Saves the random generators in every checkpoint and restores them on resume.

    Dropout and the watch head's sampled negatives draw from torch's global generator, which a
    resumed run would otherwise restart from `seed_everything`: its epochs would differ from an
    uninterrupted run's. The states are captured when the checkpoint is written (end of an
    epoch) and nothing draws from them between then and the next epoch's first batch, so a
    resumed run continues the same streams. The training batches themselves are keyed by
    (seed, epoch, rank, batch) and need nothing here. Under DDP the checkpoint holds rank 0's
    states, so only single-process runs resume bit for bit.
    """

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": numpy_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, key, *rest = state_dict["numpy"]
        np.random.set_state((kind, key.numpy().astype(np.uint32), *rest))
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def numpy_state() -> tuple[Any, ...]:
    """numpy's global generator state with its key as a tensor: checkpoints must load with
    `torch.load(weights_only=True)`, which refuses numpy arrays."""
    kind, key, *rest = np.random.get_state()
    return (kind, torch.from_numpy(key.astype(np.int64)), *rest)


class ExponentialMovingAverage(WeightAveraging):
    """Validates, checkpoints and finally keeps an exponential moving average of the weights.

    Why: early stopping halts training while the cosine schedule's learning rate is still high,
    so the last iterate carries the noise of its last few hundred steps; an average over them
    is a better model at no training cost. The average's memory is given in epochs, not steps
    (`half_life` epochs: a weight from that many epochs ago counts half as much as the newest),
    because a step count would only fit one data set's size. Early in training the decay is
    capped at (1 + n) / (10 + n) after n updates, so the average does not cling to the random
    initialisation. Only parameters are averaged: the model's buffers (co-watch weights, vocab
    tables) never change while training. Lightning's `WeightAveraging` swaps the average in for
    validation and writes it as each checkpoint's `state_dict`, so the best checkpoint *is* the
    averaged model and `load_from_checkpoint` needs nothing special.
    """

    def __init__(self, half_life: float = 0.5) -> None:
        if not half_life > 0:
            raise ValueError(f"callbacks.ema.half_life must be > 0 epochs, got {half_life}")
        super().__init__(use_buffers=False, avg_fn=self._average)
        self.half_life = half_life
        self.decay = 0.0

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Keep the average in the model, then forget it: Lightning would otherwise swap the
        last average into every later `trainer.validate` on this trainer, so the validation
        metrics of the best checkpoint, reloaded after fit, would be the last epoch's."""
        super().on_train_end(trainer, pl_module)
        self._average_model = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        steps = max(int(trainer.num_training_batches), 1)
        self.decay = 0.5 ** (1.0 / (self.half_life * steps))

    def _average(
        self, average: torch.Tensor, current: torch.Tensor, n: torch.Tensor
    ) -> torch.Tensor:
        decay = min(self.decay, (1.0 + float(n)) / (10.0 + float(n)))
        return average + (current - average) * (1.0 - decay)
