"""Run by tests/test_cli.py: 2-process DDP on CPU (gloo), recording each rank's batches.

A standalone script because Lightning's `ddp` strategy relaunches `sys.argv` for rank 1.
Usage: python tests/ddp_probe.py CACHE_DIR OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import lightning as L
from omegaconf import OmegaConf

from duorec.data.build import prepare_dataset
from duorec.data.datamodule import PairDataModule
from duorec.model.module import DuoModule

CONF = Path(__file__).resolve().parents[1] / "conf"


class BatchProbe(L.Callback):
    """Fingerprint of every training batch this rank sees, by epoch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        digest = hashlib.sha1()
        for key in ("user_a", "user_b", "movie"):
            digest.update(batch[key].numpy().tobytes())
        self.seen.append((trainer.current_epoch, digest.hexdigest()))


def main(cache_dir: str, out_dir: str) -> None:
    data = OmegaConf.load(CONF / "data" / "synthetic.yaml")
    data.synthetic.size = "tiny"
    data.seed = 0
    data.name = "synthetic-tiny"
    prepared = prepare_dataset(data, cache_dir)
    datamodule = PairDataModule(prepared.dataset, batch_size=128, samples_per_epoch=1024, seed=0)
    model = DuoModule.from_dataset(prepared.dataset, hidden=16, optim={"lr": 1e-3})
    probe = BatchProbe()
    trainer = L.Trainer(
        strategy="ddp",
        accelerator="cpu",
        devices=2,
        max_epochs=2,
        use_distributed_sampler=False,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
    )
    trainer.fit(model, datamodule=datamodule)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    record = {
        "rank": trainer.global_rank,
        "world": trainer.world_size,
        "batches": probe.seen,
        "val_rmse": float(trainer.callback_metrics["val/pair_rmse"]),
    }
    (Path(out_dir) / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
