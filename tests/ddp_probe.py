"""Run by tests/test_cli.py: 2-process DDP on CPU (gloo), recording each rank's batches.

A standalone script because Lightning's `ddp` strategy relaunches `sys.argv` for rank 1.
Usage: python tests/ddp_probe.py CACHE_DIR OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import partial
from pathlib import Path

import hydra
import lightning as L
import torch
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"


class BatchProbe(L.Callback):
    """Fingerprint of every training batch this rank sees, by epoch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        digest = hashlib.sha1()
        for key in ("user_a", "user_b", "movie"):
            digest.update(batch[key].numpy().tobytes())
        self.seen.append((trainer.current_epoch, digest.hexdigest()))


def main(cache_dir: str, out_dir: str) -> None:
    data = OmegaConf.load(CONF / "data" / "synthetic.yaml")
    data.synthetic.size = "tiny"
    data.seed = 0
    data.name = "synthetic-tiny"
    data.cache_dir = cache_dir
    data.batch_size = 128
    data.samples_per_epoch = 1024
    datamodule = hydra.utils.instantiate(data)
    model_cfg = OmegaConf.load(CONF / "model" / "duo.yaml")
    model_cfg.hidden = 16
    build = hydra.utils.instantiate(model_cfg, _partial_=True)
    model = build(dataset=datamodule.dataset, optimizer=partial(torch.optim.AdamW, lr=1e-3))
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
    # tear gloo down before the interpreter exits: left to shutdown, its threads were still
    # joinable when destroyed ("terminate called without an active exception", SIGABRT) in
    # one CI run in several
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
