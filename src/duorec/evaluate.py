"""`python -m duorec.evaluate [ckpt_path=PATH]`: the evaluation protocol on a saved model.

Thin entry point: load the checkpoint with the data set it was trained on, rebuild the data
module from the checkpoint's own loader settings and seed (so the fixed test triples are the
very ones the training run scored), then call `duorec.eval.protocol.evaluate`, the one code path
behind every number in metrics.json. The result is written to the run folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from duorec.checkpoint import describe_choice, load_checkpoint, read_reference, resolve_checkpoint
from duorec.cli import friendly_errors
from duorec.data.datamodule import PairDataModule
from duorec.eval.protocol import evaluate
from duorec.io import atomic_path
from duorec.model.base import PairRatingModule
from duorec.report import print_report

log = logging.getLogger("duorec.evaluate")


def training_seed(reference: Mapping[str, Any]) -> int:
    """The seed the checkpoint was trained with: it picks the sampled val/test triples."""
    seed = reference.get("seed", (reference.get("data") or {}).get("seed"))
    return 0 if seed is None else int(seed)


def validate(model: PairRatingModule, datamodule: PairDataModule) -> dict[str, float]:
    """Validation metrics through Lightning, exactly as the training run computed its `val`."""
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    validated = trainer.validate(model, datamodule=datamodule, verbose=False)[0]
    return {k.split("/", 1)[1]: float(v) for k, v in validated.items()}


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate the configured checkpoint; return (and write) the metrics.json dictionary."""
    ckpt = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir)
    print(describe_choice(ckpt), flush=True)
    model, dataset = load_checkpoint(ckpt, cfg.paths.cache_dir, cfg.get("data"))
    reference = read_reference(ckpt)
    seed = training_seed(reference) if cfg.get("seed") is None else int(cfg.seed)
    L.seed_everything(seed, workers=True)
    # the data module exactly as training built it (same loader settings, so the same fixed
    # val/test triples), serving the data set the checkpoint was checked against
    datamodule = PairDataModule.from_reference(reference, cfg.paths.cache_dir)
    datamodule.seed = seed
    datamodule.use_dataset(dataset)
    with open_dict(cfg):  # seed: null means the training seed, for every ${seed} in eval
        cfg.seed = seed
    options = OmegaConf.to_container(cfg.eval, resolve=True)
    result: dict[str, Any] = {"val": validate(model, datamodule)}
    result.update(evaluate(model, datamodule, options))
    result["checkpoint"] = str(ckpt.resolve())
    out = Path(cfg.paths.output_dir) / "metrics.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print_report(result)
    log.info("metrics: %s", out)
    print(f"metrics: {out}")
    return result


@hydra.main(version_base="1.3", config_path="../../conf", config_name="evaluate")
@friendly_errors("duorec.evaluate")
def main(cfg: DictConfig) -> None:
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    from duorec.overrides import run_checked

    run_checked(main, "evaluate", "duorec.evaluate")
