"""The weight-averaging callback: the kept model is the hand-computed moving average."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from duorec.callbacks import ExponentialMovingAverage


class Walk(L.LightningModule):
    """One weight, moved by a known step each batch: w_t = w_{t-1} - step_t (SGD, lr 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.w * batch.sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1.0)


def averaging_trainer(root) -> L.Trainer:
    """Two epochs with the average of half an epoch's half-life, nothing else."""
    return L.Trainer(
        max_epochs=2,
        callbacks=[ExponentialMovingAverage(half_life=0.5)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )


def test_the_kept_weights_are_the_moving_average_with_an_epoch_half_life(tmp_path):
    batches = torch.arange(1.0, 5.0).reshape(4, 1)  # an epoch: 4 batches of one step each
    trainer = averaging_trainer(tmp_path)
    model = Walk()
    trainer.fit(model, DataLoader(batches, batch_size=1))

    decay = 0.5 ** (1 / (0.5 * 4))  # half-life of half an epoch of 4 batches
    w, average = 0.0, None
    for n, step in enumerate(2 * batches.flatten().tolist()):
        w -= step
        if average is None:
            average = w  # the first update copies the weights
        else:
            d = min(decay, (1 + n) / (10 + n))  # capped early: n updates averaged so far
            average += (w - average) * (1 - d)
    assert w == -20.0
    assert model.w.item() == pytest.approx(average)
    assert average != pytest.approx(w)  # the test can tell the average from the last iterate


class Checked(Walk):
    """Walk that logs its weight as the validation metric."""

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/w", self.w.detach())


def test_validating_another_model_after_fit_reads_that_model(tmp_path):
    """train.py reloads the best checkpoint after fit and validates it on the same trainer:
    the metric must be that model's, not the last average swapped in by the callback."""
    batches = torch.arange(1.0, 5.0).reshape(4, 1)
    trainer = averaging_trainer(tmp_path)
    loader = DataLoader(batches, batch_size=1)
    trainer.fit(Checked(), loader, loader)
    best = Checked()
    with torch.no_grad():
        best.w.fill_(3.0)
    assert trainer.validate(best, loader, verbose=False)[0]["val/w"] == pytest.approx(3.0)
    assert best.w.item() == 3.0


def test_a_half_life_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="half_life must be > 0"):
        ExponentialMovingAverage(half_life=0)
