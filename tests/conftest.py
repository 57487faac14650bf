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


TINY = ["data.synthetic.size=tiny", "data.samples_per_epoch=20000", "data.batch_size=512"]


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
