"""Training end to end on tiny synthetic data: it learns, resumes, and every config composes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_config
from omegaconf import OmegaConf

from duorec.train import train

QUIET = [
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def tiny_train_cfg(root: Path, cache: Path, *extra: str):
    cfg = compose_config("train", [*TINY, *QUIET, *extra], root)
    cfg.paths.cache_dir = str(cache)
    return cfg


def test_model_learns_and_beats_global_mean(tmp_path: Path, tiny_cache: Path) -> None:
    cfg = tiny_train_cfg(tmp_path, tiny_cache, "trainer.max_epochs=6", "optim.lr=3e-3")
    result = train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["pair_rmse"] == pytest.approx(result["test"]["pair_rmse"])
    model = metrics["test"]["pair_rmse"]
    mean = metrics["baselines"]["global_mean"]["pair_rmse"]
    assert model < 0.9 * mean, (model, mean)
    assert metrics["test"]["n_triples"] > 100
    assert Path(metrics["checkpoint"]).exists()
    # the scaled MSE is the pair MSE over the squared rating range (0.5..5 -> 4.5)
    assert metrics["test"]["scaled_mse"] == pytest.approx(model**2 / 4.5**2, rel=1e-5)
    # synthetic data knows its noise floor; no model can beat it by much
    floor = metrics["oracle"]["pair_rmse"]
    assert metrics["oracle"]["model_ratio"] == pytest.approx(model / floor)
    assert model > 0.9 * floor
    # every baseline was scored on the same triples, with a bootstrap interval vs the best
    assert {"bias", "mf", "popularity"} <= set(metrics["baselines"])
    assert metrics["ci"]["pair_rmse"]["low"] <= metrics["ci"]["pair_rmse"]["high"]
    assert set(metrics["targets"]) == {"mean", "min", "max"}
    # it learned to rank too: its top 10 beat the most-rated movies for the test pairs
    ndcg = metrics["test"]["ndcg@10"]
    assert ndcg > metrics["baselines"]["popularity"]["ndcg@10"] + 0.03, metrics["baselines"]
    assert metrics["rank_rating_weight"]["best"] in metrics["rank_rating_weight"]["grid"]


def test_resume_continues_where_it_stopped(tmp_path: Path, tiny_cache: Path) -> None:
    """2 epochs + resume for 2 more == 4 epochs straight: weights, optimiser and sampler stream."""
    common = [
        "trainer.deterministic=true",
        "model.dropout=0.0",
        "callbacks.early_stopping=null",
        "test=false",
        "~scheduler",
    ]
    straight = tiny_train_cfg(tmp_path / "a", tiny_cache, "trainer.max_epochs=4", *common)
    train(straight)
    first = tiny_train_cfg(tmp_path / "b", tiny_cache, "trainer.max_epochs=2", *common)
    train(first)
    last = tmp_path / "b" / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 1
    resumed = tiny_train_cfg(
        tmp_path / "c", tiny_cache, "trainer.max_epochs=4", f"ckpt_path={last}", *common
    )
    train(resumed)
    a = torch.load(tmp_path / "a" / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    c = torch.load(tmp_path / "c" / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["epoch"] == c["epoch"] == 3
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(c["state_dict"][name], tensor, msg=name)


@pytest.mark.parametrize("model", ["mf", "bias"])
def test_baselines_train_as_models(tmp_path: Path, tiny_cache: Path, model: str) -> None:
    """model=mf / model=bias go through the same train, checkpoint and evaluation path."""
    cfg = tiny_train_cfg(
        tmp_path,
        tiny_cache,
        f"model={model}",
        "trainer.max_epochs=4",
        "optim.lr=1e-2",
        "optim.weight_decay=0.0",
    )
    result = train(cfg)
    assert result["test"]["pair_rmse"] < result["baselines"]["global_mean"]["pair_rmse"]
    checkpoint = torch.load(result["checkpoint"], weights_only=False)
    assert checkpoint["duorec_model_class"].endswith("FactorizationModule")
    assert checkpoint["hyper_parameters"]["k"] == (32 if model == "mf" else 0)


GROUPS = {
    "optim": ["adamw"],
    "trainer": ["default", "cpu", "gpu", "ddp"],
    "logger": ["csv", "tensorboard", "wandb", "many"],
    "callbacks": ["default", "none"],
    "data": ["synthetic", "movielens", "ml_latest_small"],
    "model": ["duo", "mf", "bias"],
    "eval": ["default"],
    "hparams_search": ["optuna"],
    "+ablation": ["ids_only", "features_only", "ids_features", "all"],
    "+experiment": [
        "underfitting",
        "underfitting_ablation",
        "underfitting_optuna",
        "underfitting_samples",
        "best_ml_latest_small",
    ],
}


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g, options in GROUPS.items() for o in options]
)
def test_every_config_group_composes(tmp_path: Path, group: str, option: str) -> None:
    extra = ["data.movielens_dir=/x"] if option == "movielens" else []
    cfg = compose_config("train", [f"{group}={option}", *extra], tmp_path)
    assert cfg.model._target_.startswith("duorec.model.") and cfg.data.batch_size > 0
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if option == "best_ml_latest_small":
        assert cfg.data.name == "ml-latest-small" and cfg.optim.lr == 1e-3
    if group == "+ablation":
        expected = {
            "ids_only": (True, False, False),
            "features_only": (False, True, False),
            "ids_features": (True, True, False),
            "all": (True, True, True),
        }[option]
        assert (cfg.model.use_ids, cfg.model.use_features, cfg.model.use_people) == expected


def test_config_files_cover_every_option() -> None:
    """A new conf/ file without a compose test above would go unchecked."""
    conf = Path(__file__).resolve().parents[1] / "conf"
    for group, options in GROUPS.items():
        folder = conf / group.lstrip("+")
        assert sorted(p.stem for p in folder.glob("*.yaml")) == sorted(options), group
