"""Shared fixtures: tiny synthetic data written in the real formats, composed configs."""

from __future__ import annotations

import os
from pathlib import Path

# Tests run in parallel workers (pytest-xdist, `-n auto` in pyproject.toml): one torch thread
# per worker and per process a test starts, or the workers' thread pools fight over the same
# cores (two 2-thread torch processes on 2 cores ran 10x slower than 1 thread each). Set
# before torch loads; a test that needs another thread count sets its own environment.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def compose_config(name: str, overrides: list[str], root: Path) -> DictConfig:
    """Compose a conf/ config as the CLI would, with every path under `root`."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(root)
        cfg.paths.output_dir = str(root / "run")
        cfg.paths.cache_dir = str(root / "cache")
        cfg.paths.log_dir = str(root / "logs")
        del cfg["hydra"]
    return cfg


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder shared by the session, so tiny data is generated and prepared once."""
    return tmp_path_factory.mktemp("cache")


# The one home of the overrides that keep a test's run small: tests pass them to
# `compose_config` (`tiny_train_cfg`) or on a command line (tests/test_cli.py).
# TINY: the tiny synthetic data (50 users, 120 movies), enough triples per epoch to learn from.
TINY = ["data.synthetic.size=tiny", "data.samples_per_epoch=20000", "data.batch_size=512"]
# QUIET: no progress bar or model summary in the output.
QUIET = [
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
# CHEAP_EVAL: the evaluation without the parts a test not about them does not need: the ranking
# baselines (EASE, item-kNN, iALS, SASRec...: `eval.rankers={}` would be merged into the
# defaults and drop none, null drops them all), fold-in's prior choice (an empty grid keeps
# model.foldin_prior), the diversity re-ranks, most bootstrap resamples, the rating baselines
# but the global mean. Every key is also in conf/evaluate.yaml.
CHEAP_EVAL = [
    "eval.rankers=null",
    "eval.foldin_choice.priors=[]",
    "eval.diversity=[0.0]",
    "eval.bootstrap=50",
    "eval.baselines=[global_mean]",
]
# CHEAP_DUO: the duo model's co-watch EASE fitted for one L2 value, not chosen from a grid.
CHEAP_DUO = ["model.cowatch.lam=[200]"]
# FAST: all of the above and one short epoch, for a run that only has to go through.
FAST = [
    "data.synthetic.size=tiny",
    "data.samples_per_epoch=2048",
    "data.batch_size=256",
    "trainer.max_epochs=1",
    *QUIET,
    *CHEAP_EVAL,
    *CHEAP_DUO,
]


def only_rankers(*names: str) -> list[str]:
    """Overrides keeping just the named ranking baselines of conf/eval/default.yaml, as set
    there (EASE, say, for a test comparing the model with it)."""
    rankers = OmegaConf.load(Path(CONF_DIR) / "eval" / "default.yaml").rankers
    kept = {name: OmegaConf.to_container(rankers[name]) for name in names}
    return ["eval.rankers=null", f"+eval.rankers={_hydra_value(kept)}"]


def _hydra_value(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value).lower() if isinstance(value, bool) else str(value)


def tiny_train_cfg(root: Path, cache: Path, *extra: str) -> DictConfig:
    """The train config on the tiny data, quiet, every path under `root`, cache `cache`."""
    cfg = compose_config("train", [*TINY, *QUIET, *extra], root)
    cfg.paths.cache_dir = str(cache)
    return cfg


def best_checkpoint(run: Path) -> Path:
    """The monitored best checkpoint of a run folder, whether or not it wrote metrics.json
    (`duorec.checkpoint.best_in_run` needs it, or falls back to last.ckpt)."""
    (path,) = (run / "checkpoints").glob("epoch*.ckpt")  # callbacks.model_checkpoint: top 1
    return path


@pytest.fixture(scope="session")
def learned_run(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> SimpleNamespace:
    """The default model trained until it has learned its users (6 epochs at lr 3e-3), once
    per session worker for test_train, test_foldin and test_foldin_choice: its run folder and
    `train`'s result. Evaluated beside the baselines test_train compares it with (EASE the only
    ranker); fold-in's prior and the rank weight are chosen as by default."""
    root = tmp_path_factory.mktemp("learned")
    cfg = tiny_train_cfg(
        root,
        tiny_cache,
        "trainer.max_epochs=6",
        "optim.lr=3e-3",
        *only_rankers("ease"),
        "eval.diversity=[0.0]",
        "eval.bootstrap=50",
    )
    from duorec.train import train

    result = train(cfg)
    return SimpleNamespace(run=root / "run", result=result)


def run_command(
    module: str, args: list[str], root: Path, timeout: int = 300, **env: str
) -> subprocess.CompletedProcess:
    """`python -m module args` in a fresh process as a user runs it, every path under `root`
    (DUOREC_ROOT), W&B offline and quiet; `env` adds or replaces variables."""
    full = {**os.environ, "DUOREC_ROOT": str(root), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    full.pop("DUOREC_SWEEP_GROUP", None)  # a sweep's group must come from the sweep itself
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=root,
        env={**full, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_in_process(
    capsys: pytest.CaptureFixture[str], command: str, root: Path, cache: Path, *overrides: str
) -> subprocess.CompletedProcess:
    """`python -m duorec.COMMAND overrides` without a new interpreter (4-5 s of imports): the
    config composed as the command line composes it (paths under `root`, cache `cache`), then
    the command's own `main`, so its checks and its one-line errors
    (`duorec.cli.friendly_errors`) are the ones a user meets; what it printed is read from
    the test's `capsys`. Each command keeps one case run as a real process, for what only
    that shows (Hydra's own parsing and logging, nothing else on stderr)."""
    module = importlib.import_module(f"duorec.{command}")
    cfg = compose_config(command, list(overrides), root)
    cfg.paths.cache_dir = str(cache)
    capsys.readouterr()  # what the test printed before is not the command's
    threads = torch.get_num_threads()  # `threads: auto` would resize this worker's pool
    try:
        module.main(cfg)
        code = 0
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr()
    return subprocess.CompletedProcess([command, *overrides], code, out.out, out.err)


def model_kwargs(name: str = "duo", **overrides: object) -> dict:
    """The hyperparameters of conf/model/NAME.yaml (the one home of their defaults)."""
    cfg = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "model" / f"{name}.yaml"))
    cfg.pop("_target_")
    cfg.update(overrides)
    return cfg


def rating_steps(model, optimizer, batches) -> None:
    """Plain optimiser steps on the model's rating losses, one per pair/group batch."""
    for batch in batches:
        users = torch.cat([batch["user_a"], batch["user_b"]])
        loss, _ = model.rating_losses(
            model.user_vectors_for(users, batch["movie"].repeat(2)), batch
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path):
    """A quick tiny model (the FAST run, 2 epochs: a few seconds) loaded as `duorec.serve`
    loads it, trained once per test worker for the service's test files: what it recommends
    is compared with its own Recommender, so its quality does not matter."""
    from duorec.serving.recommender import Recommender
    from duorec.train import train

    root = tmp_path_factory.getbasetemp() / "serve-model"
    run = root / "run"
    if not (run / "metrics.json").is_file():
        cfg = compose_config("train", [*FAST, "trainer.max_epochs=2", "logger=csv"], root)
        cfg.paths.cache_dir = str(tiny_cache)
        train(cfg)
    return Recommender.load(run, run.parent, tiny_cache)
