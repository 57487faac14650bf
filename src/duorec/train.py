"""`python -m duorec.train`: prepare data, fit, test the best checkpoint, evaluate, report.

A thin entry point in the lightning-hydra-template manner: compose the config, instantiate,
call. Every number in metrics.json comes from `duorec.eval.protocol.evaluate`, the same code path
`python -m duorec.evaluate` runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from duorec.callbacks import RandomState
from duorec.checkpoint_io import SafeCheckpointIO, load_checkpoint_file, save_checkpoint_file
from duorec.cli import friendly_errors
from duorec.data.datamodule import PairDataModule
from duorec.eval.foldin_choice import choose_foldin_prior
from duorec.eval.groups import group_table
from duorec.eval.protocol import evaluate
from duorec.eval.rank_weight import choose_rank_rating_weight
from duorec.eval.recent_level import choose_recent_weight
from duorec.io import atomic_path
from duorec.model.base import load_model
from duorec.report import print_report
from duorec.runs import run_folder_of

log = logging.getLogger("duorec.train")


def instantiate_list(group: DictConfig | None) -> list[Any]:
    """Callbacks / loggers: each entry of the group that has a `_target_`."""
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if c and "_target_" in c]


def log_config(loggers: list[Any], cfg: DictConfig) -> None:
    """Give every logger the resolved config: a W&B run is only comparable with it."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(resolved)


def continue_in_run_folder(cfg: DictConfig) -> None:
    """Resuming from `<run>/checkpoints/*.ckpt` writes into `<run>`, whatever the config said.

    The command line gets there through `hydra.run.dir` (conf/hydra/train.yaml); this covers
    `train(cfg)` called directly and sweep jobs. The best checkpoint so far and the early
    stopping counters are only restored into callbacks writing to the same folder.
    """
    folder = run_folder_of(cfg.get("ckpt_path"))
    if folder is None:
        if cfg.get("ckpt_path"):
            log.warning(
                "%s is not in a run's checkpoints/ folder: resuming into %s, where the best "
                "checkpoint so far is not known",
                cfg.ckpt_path,
                cfg.paths.output_dir,
            )
        return
    if Path(cfg.paths.output_dir).absolute() != folder:
        log.info("resuming in the checkpoint's run folder %s", folder)
        with open_dict(cfg):
            cfg.paths.output_dir = str(folder)


def build_model(cfg: DictConfig, datamodule: PairDataModule) -> L.LightningModule:
    """The model of `cfg.model`, sized from the prepared data, with its optimiser and schedule.

    Groups (data.group_sizes) give the three-tower model a group head; the factorisation
    baselines rate a group by aggregating its members' predictions.
    """
    # partial first: Hydra would turn the dataset (a dataclass) into a config node
    build = hydra.utils.instantiate(cfg.model, _partial_=True)
    duo = "DuoModule" in cfg.model._target_
    groups = {"groups": True} if datamodule.group_sizes and duo else {}
    return build(
        dataset=datamodule.dataset,
        optimizer=hydra.utils.instantiate(cfg.optim),
        scheduler=hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        **groups,
    )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test and evaluate; return the metrics dictionary also written to metrics.json.

    `ckpt_path=<run>/checkpoints/last.ckpt` resumes an interrupted run in its own folder and
    ends as the uninterrupted run would have (same metrics.json, same best checkpoint):
    weights, optimiser, schedule, early stopping, best-checkpoint tracking, random generators
    (`RandomState`) and the training stream (keyed by epoch) all continue. Checkpoints are
    written once per epoch, so a run killed mid-epoch repeats that epoch from its start.
    """
    continue_in_run_folder(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule: PairDataModule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()  # the model is sized from the data
    model = build_model(cfg, datamodule)
    callbacks = [*instantiate_list(cfg.get("callbacks")), RandomState()]
    loggers = instantiate_list(cfg.get("logger"))
    log_config(loggers, cfg)
    # checkpoints are read weights-only and written beside their target (duorec.checkpoint_io)
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[SafeCheckpointIO()]
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    if trainer.interrupted:  # a Lightning that returns after Ctrl-C instead of exiting
        raise KeyboardInterrupt
    out_dir = Path(cfg.paths.output_dir)
    checkpoint = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if checkpoint:
        model = load_model(checkpoint)
        log.info("best checkpoint: %s", checkpoint)
        # a best checkpoint from before a resume carries the stopped run's choices; the
        # validation numbers are of the model as trained, and the choices are made again below
        if hasattr(model, "recent_weight"):
            model.recent_weight = 0.0
    # validation metrics of the model we keep (the best checkpoint), not of the last epoch
    validated = trainer.validate(model, datamodule=datamodule, verbose=False)[0]
    result: dict[str, Any] = {"val": {k.split("/", 1)[1]: float(v) for k, v in validated.items()}}
    if not trainer.is_global_zero:
        return result
    eval_opts = OmegaConf.to_container(cfg.eval, resolve=True)
    result.update(choose_ranking(model, datamodule, eval_opts, checkpoint))
    if cfg.get("test"):
        result.update(evaluate(model, datamodule, eval_opts))
        result["checkpoint"] = checkpoint or None
        with atomic_path(out_dir / "metrics.json") as tmp:
            tmp.write_text(json.dumps(result, indent=2))
        print_report(result)
        if result.get("groups"):
            print(group_table(result["groups"], int(eval_opts["k"])))
        log.info("metrics: %s", out_dir / "metrics.json")
    # baselines, intervals, tables and pictures to every logger (imported here: matplotlib)
    from duorec.dashboards import publish

    publish(result, loggers, model, datamodule, cfg)
    print(f"checkpoint: {checkpoint or '(none: no checkpoint callback)'}")
    return result


def choose_ranking(
    model: Any, datamodule: PairDataModule, eval_opts: dict[str, Any], checkpoint: str
) -> dict[str, Any]:
    """Choose the recent rating level's weight, the ranking score's weight and pair rule,
    and fold-in's prior, on validation;
    save them into the best checkpoint (recommend and evaluate read them there); what
    metrics.json records of it."""
    out: dict[str, Any] = {}
    choice: dict[str, Any] = {}
    recent = choose_recent_weight(model, datamodule, eval_opts)
    if recent is not None:
        out["recent_weight"] = recent
        choice["recent_weight"] = recent["best"]
    chosen = choose_rank_rating_weight(model, datamodule, eval_opts)
    if chosen is not None:
        out["rank_rating_weight"] = chosen
        choice["rank_rating_weight"] = chosen["best"]
        if chosen["rule"] is not None:
            choice["rank_pair_rule"] = chosen["rule"]
    prior = choose_foldin_prior(model, datamodule, eval_opts)
    if prior is not None:
        out["foldin_prior"] = prior
        choice["foldin_prior"] = prior["best"]
    if checkpoint and choice:
        save_hyperparameters(checkpoint, choice)
    return out


def save_hyperparameters(checkpoint: str, values: dict[str, Any]) -> None:
    """Rewrite hyperparameters of a saved checkpoint (atomically): choices made after
    training, on validation, that serving must repeat."""
    state = load_checkpoint_file(checkpoint)
    state["hyper_parameters"].update(values)
    save_checkpoint_file(state, checkpoint)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
@friendly_errors("duorec.train")
def main(cfg: DictConfig) -> float | None:
    result = train(cfg)
    metric = cfg.get("optimized_metric")
    if metric and metric.startswith("val/"):
        return result["val"].get(metric.split("/", 1)[1])
    return None


if __name__ == "__main__":
    from duorec.overrides import run_checked

    run_checked(main, "train", "duorec.train")
