"""Training end to end on tiny synthetic data: it learns, resumes, and every config composes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import (
    CHEAP_DUO,
    CHEAP_EVAL,
    QUIET,
    TINY,
    best_checkpoint,
    compose_config,
    tiny_train_cfg,
)
from omegaconf import OmegaConf

from duorec.train import train

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def test_model_learns_and_beats_global_mean(learned_run) -> None:
    """The default model, 6 epochs at lr 3e-3 (conftest's `learned_run`, shared with the
    fold-in tests)."""
    result = learned_run.result
    metrics = json.loads((learned_run.run / "metrics.json").read_text())
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
    # it learned to rank too: its top 10 beat the most-rated movies and EASE (both pair
    # rules) for the test pairs (84 ranked pairs here: a margin of a few points is noise)
    ndcg = metrics["test"]["ndcg@10"]
    rankers = ("popularity", "ease_sum", "ease_both")
    best = max(metrics["baselines"][name]["ndcg@10"] for name in rankers)
    assert ndcg > best, metrics["baselines"]
    assert metrics["rank_rating_weight"]["best"] in metrics["rank_rating_weight"]["grid"]


@pytest.fixture
def one_thread():
    """Bit-identical comparisons need one torch thread: with two, the history bag's
    EmbeddingBag backward sums in a varying order, so even two straight runs differ in the
    last bits (`train()` called directly does not apply the `threads` setting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_resume_continues_where_it_stopped(tmp_path: Path, tiny_cache: Path) -> None:
    """2 epochs + resume for 2 more == 4 epochs straight: weights, optimiser, sampler stream
    and the random generators (dropout is on), continued in the first run's folder. Short
    epochs (4 batches) and nothing evaluated: the checkpoints are what is compared."""
    common = [
        "callbacks.early_stopping=null",
        "test=false",
        "~scheduler",
        "data.samples_per_epoch=2048",
        *CHEAP_EVAL,
        *CHEAP_DUO,
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
    assert not (tmp_path / "c" / "run").exists()  # it went on in the checkpoint's run folder
    a = torch.load(tmp_path / "a" / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    c = torch.load(last, weights_only=False)
    assert a["epoch"] == c["epoch"] == 3
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(c["state_dict"][name], tensor, msg=name, rtol=0, atol=0)


def comparable(metrics: dict) -> dict:
    """metrics.json without its wall-clock fields, the checkpoint by file name only."""

    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "seconds"}
        return node

    out = strip(metrics)
    out["checkpoint"] = Path(metrics["checkpoint"]).name
    return out


# the best epoch comes first and early stopping must count across the interruption: the
# straight run stops after its third epoch; a resumed run that forgot the count would go on
# (full 20000-triple epochs: with shorter ones the best epoch comes after the stop). The
# evaluation is the cheap one: metrics.json is compared whole, whatever it holds
FAITHFUL = [
    "trainer.max_epochs=6",
    "callbacks.early_stopping.patience=2",
    *CHEAP_EVAL,
    *CHEAP_DUO,
]


@pytest.mark.usefixtures("one_thread")
def test_resume_after_a_clean_stop_ends_as_the_straight_run(
    tmp_path: Path, tiny_cache: Path
) -> None:
    """With the default cosine schedule, dropout and early stopping: a run stopped after 2 of
    its epochs and resumed from last.ckpt writes the straight run's metrics.json (same best
    checkpoint, kept from before the stop) into its own folder."""
    # a fast rate and no weight average (it moves the best epoch later): the best epoch comes
    # before the stop. Resuming with the average is the kill -9 test's default recipe.
    # The project's defaults, not the synthetic data's quick recipe (conf/recipe/): with its
    # narrower towers and no watch head the best epoch comes after the stop.
    fast = [*FAITHFUL, "optim.lr=1e-2", "callbacks.ema=null", "recipe=full"]
    train(tiny_train_cfg(tmp_path / "a", tiny_cache, *fast))
    straight = json.loads((tmp_path / "a" / "run" / "metrics.json").read_text())
    stop = ["+callbacks.stop._target_=interrupt.StopAfter", "+callbacks.stop.epochs=2"]
    # the stopped run is not tested: its best checkpoint is on disk all the same
    train(tiny_train_cfg(tmp_path / "b", tiny_cache, *fast, *stop, "test=false"))
    run = tmp_path / "b" / "run"
    assert not (run / "metrics.json").exists()
    best_before = str(best_checkpoint(run))
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    last = run / "checkpoints" / "last.ckpt"
    train(tiny_train_cfg(tmp_path / "c", tiny_cache, *fast, f"ckpt_path={last}"))
    resumed = json.loads((run / "metrics.json").read_text())
    assert comparable(resumed) == comparable(straight)
    assert Path(resumed["checkpoint"]).parent == run / "checkpoints"
    assert resumed["checkpoint"] == best_before  # the best epoch came before the stop
    assert not (tmp_path / "c" / "run").exists()
    stopped = torch.load(tmp_path / "a" / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert stopped["epoch"] < 5  # early stopping ended it, counting epochs from before the stop
    assert_same_last_epoch(tmp_path / "a" / "run", run, epoch=stopped["epoch"])


def assert_same_last_epoch(straight: Path, resumed: Path, epoch: int) -> None:
    """Both runs ended at `epoch` with bit-identical weights (schedule and dropout followed)."""
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["epoch"] == b["epoch"] == epoch
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], tensor, msg=name, rtol=0, atol=0)


def test_resume_after_kill_9_mid_epoch_ends_as_the_straight_run(
    tmp_path: Path, tiny_cache: Path
) -> None:
    """`python -m duorec.train` killed by SIGKILL in its third epoch and resumed from
    last.ckpt (end of the second) continues in the same run folder to the same metrics.json."""
    # the epochs after the kill are retrained: the last weights must be bit-identical
    settings = [
        "trainer.max_epochs=4",
        "data.samples_per_epoch=4096",
        "optim.lr=3e-3",
    ]
    common = [*TINY, *QUIET, *settings, *CHEAP_EVAL, *CHEAP_DUO, "threads=1"]
    common.append(f"paths.cache_dir={tiny_cache}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
    }

    def cli(logs: str, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "duorec.train", f"paths.log_dir={tmp_path / logs}"]
        return subprocess.run(
            [*command, *common, *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    proc = cli("straight")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (straight,) = (tmp_path / "straight" / "train" / "runs").glob("*/metrics.json")
    kill = ["+callbacks.kill._target_=interrupt.KillAt", "+callbacks.kill.epoch=2"]
    proc = cli("killed", *kill, "+callbacks.kill.batch=5")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    (run,) = (tmp_path / "killed" / "train" / "runs").glob("*")
    assert not (run / "metrics.json").exists()
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 1
    proc = cli("elsewhere", f"ckpt_path={last}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "elsewhere").exists()  # hydra.run.dir is the checkpoint's run
    resumed = json.loads((run / "metrics.json").read_text())
    assert comparable(resumed) == comparable(json.loads(straight.read_text()))
    assert_same_last_epoch(straight.parent, run, epoch=3)
    assert "dirpath has changed" not in proc.stderr


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
        *CHEAP_EVAL,
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
