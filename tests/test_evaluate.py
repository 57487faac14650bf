"""`python -m duorec.evaluate` reproduces the training run's numbers; checkpoints are found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import CHEAP_DUO, CHEAP_EVAL, run_in_process, tiny_train_cfg
from test_recommend import assert_one_line_error, run_cli, trained_run

from duorec.checkpoint import (
    best_in_run,
    describe_choice,
    latest_checkpoint,
    load_checkpoint,
    load_reference,
    read_reference,
    resolve_checkpoint,
)
from duorec.cli import UsageError
from duorec.data.errors import DataError
from duorec.data.synthetic import generate
from duorec.train import train


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}/"))
        return out
    return {prefix.rstrip("/"): tree}


def touch_ckpt(folder: Path, name: str, best: bool = True) -> Path:
    """A checkpoint file; `best`: named as the run's checkpoint in its metrics.json."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"x")
    if best:
        (folder.parent / "metrics.json").write_text(json.dumps({"checkpoint": str(path)}))
    return path


def test_best_in_run_is_the_one_its_metrics_name(tmp_path: Path) -> None:
    ckpts = tmp_path / "run" / "checkpoints"
    touch_ckpt(ckpts, "last.ckpt", best=False)
    # no metrics.json (stopped before evaluating): last.ckpt is all there is
    assert best_in_run(tmp_path / "run") == ckpts / "last.ckpt"
    # metrics.json decides, whatever the file names say
    best = touch_ckpt(ckpts, "epoch003-rmse0.9100.ckpt")
    touch_ckpt(ckpts, "epoch005-rmse0.8700.ckpt", best=False)
    assert best_in_run(tmp_path / "run") == best
    assert best_in_run(ckpts) == best
    assert best_in_run(tmp_path / "nothing") is None
    # a run folder moved since: the recorded name is found in its own checkpoints/
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "run", moved)
    shutil.rmtree(tmp_path / "run")
    assert best_in_run(moved) == moved / "checkpoints" / best.name
    # the named checkpoint is gone: nothing to use (not some other file)
    (moved / "checkpoints" / best.name).unlink()
    assert best_in_run(moved) is None


def test_latest_checkpoint_picks_the_newest_finished_run(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with pytest.raises(UsageError, match=f"no finished training run .* under {logs}"):
        latest_checkpoint(logs)
    runs = logs / "train" / "runs"
    old = touch_ckpt(runs / "2024-01-01_10-00-00" / "checkpoints", "epoch001-rmse0.8000.ckpt")
    assert latest_checkpoint(logs) == old
    newer = touch_ckpt(runs / "2024-02-01_10-00-00" / "checkpoints", "epoch004-rmse0.7.ckpt")
    # made later but started earlier: the folder's stamp decides, not the file time
    time.sleep(0.01)
    touch_ckpt(runs / "2024-01-15_10-00-00" / "checkpoints", "epoch000-rmse0.7000.ckpt")
    assert latest_checkpoint(logs) == newer
    # newer runs without a usable checkpoint, or unfinished (no metrics.json), are skipped
    (runs / "2024-03-01_10-00-00").mkdir()
    (runs / "2024-03-02_10-00-00" / "checkpoints").mkdir(parents=True)
    touch_ckpt(runs / "2024-03-03_10-00-00" / "checkpoints", "last.ckpt", best=False)
    assert latest_checkpoint(logs) == newer
    # a sweep started later wins, its highest job number first
    sweep = logs / "train" / "multiruns" / "2024-02-10_09-00-00"
    touch_ckpt(sweep / "0" / "checkpoints", "epoch002-rmse0.6000.ckpt")
    job = touch_ckpt(sweep / "1" / "checkpoints", "epoch002-rmse0.6500.ckpt")
    assert latest_checkpoint(logs) == job
    assert resolve_checkpoint(None, logs) == job
    assert resolve_checkpoint(job.parent.parent, logs) == job
    with pytest.raises(UsageError, match="checkpoint not found"):
        resolve_checkpoint(tmp_path / "missing.ckpt", logs)
    # any task name is a training run's folder (task_name=...), an evaluate run is not one
    other = touch_ckpt(logs / "ablation" / "runs" / "2024-02-20_00-00-00" / "checkpoints", "b.ckpt")
    assert latest_checkpoint(logs) == other
    evaluated = logs / "evaluate" / "runs" / "2024-02-21_00-00-00"
    evaluated.mkdir(parents=True)
    (evaluated / "metrics.json").write_text(json.dumps({"checkpoint": str(old)}))
    swept = logs / "ablation" / "multiruns" / "2024-02-22_00-00-00"
    newest = touch_ckpt(swept / "3" / "checkpoints", "c.ckpt")
    assert latest_checkpoint(logs) == newest


def test_only_unfinished_runs_is_an_error_naming_the_resume_command(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    last = touch_ckpt(
        logs / "train" / "runs" / "2024-01-01_10-00-00" / "checkpoints", "last.ckpt", best=False
    )
    with pytest.raises(UsageError, match=f"no finished training run.*ckpt_path={last}"):
        latest_checkpoint(logs)


def test_the_choice_is_described_by_its_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    best = touch_ckpt(run / "checkpoints", "epoch002-rmse0.5700.ckpt")
    metrics = {
        "checkpoint": str(best),
        "protocol": {"data": "ml-latest-small"},
        "test": {"pair_rmse": 0.57271, "ndcg@10": 0.3012, "n_triples": 10},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    expected = f"using {run} (data ml-latest-small, test pair_rmse 0.5727, ndcg@10 0.30)"
    assert describe_choice(best) == expected
    last = touch_ckpt(run / "checkpoints", "last.ckpt", best=False)
    assert "not the checkpoint its run's metrics.json describes" in describe_choice(last)
    (run / "metrics.json").unlink()
    assert describe_choice(best) == f"using {best} (an unfinished run: no metrics.json)"


def test_evaluate_cli_reproduces_the_training_metrics(
    tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path, tmp_path: Path
) -> None:
    run = trained_run(tmp_path_factory, tiny_cache)
    trained = json.loads((run / "metrics.json").read_text())
    ckpt = Path(trained["checkpoint"])
    # an older run and the trained checkpoint as the newest one: no ckpt_path needed
    older = tmp_path / "logs" / "train" / "runs" / "2000-01-01_00-00-00" / "checkpoints"
    older.mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "last.ckpt", older / "last.ckpt")
    newest = tmp_path / "logs" / "train" / "runs" / "2099-01-01_00-00-00" / "checkpoints"
    newest.mkdir(parents=True)
    shutil.copy(ckpt, newest / ckpt.name)
    # a copied run folder: its metrics.json still names the original file, found in the copy
    shutil.copy(ckpt.parent.parent / "metrics.json", newest.parent / "metrics.json")

    proc = run_cli("duorec.evaluate", tmp_path, tiny_cache)
    assert proc.returncode == 0, proc.stderr
    written = sorted((tmp_path / "logs" / "evaluate" / "runs").glob("*/metrics.json"))
    assert len(written) == 1
    metrics = json.loads(written[0].read_text())
    assert metrics["checkpoint"] == str((newest / ckpt.name).resolve())
    # the rank weight, the fold-in prior and the recent level's weight are the training run's
    # choices on validation, saved with the checkpoint, which evaluate reads back rather than
    # choosing again
    trained.pop("rank_rating_weight", None)
    trained.pop("foldin_prior", None)
    trained.pop("recent_weight", None)
    assert set(trained) <= set(metrics)
    for key in ("test", "baselines", "ci"):
        assert metrics[key], key
    assert {"pair_rmse", "ndcg@10"} <= set(metrics["test"])
    assert "pair_rmse" in metrics["ci"] and "ndcg@10" in metrics["ci"]
    expected = flatten({k: v for k, v in trained.items() if k != "checkpoint"})
    got = flatten({k: v for k, v in metrics.items() if k != "checkpoint"})
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if key.endswith("/seconds"):  # wall-clock time of a fit, not a result
            continue
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
        else:
            assert got[key] == value, key
    assert "pair_rmse" in proc.stdout  # the table was printed
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"using {newest.parent} (data synthetic-tiny, test pair_rmse "), first


def test_evaluate_cli_errors_are_one_line(tiny_cache: Path, tmp_path: Path, capsys) -> None:
    """The first as a user runs it, the second in this process (`run_in_process`)."""
    proc = run_cli("duorec.evaluate", tmp_path, tiny_cache)
    assert_one_line_error(
        proc,
        "duorec.evaluate: error: no finished training run (one with metrics.json) under",
        "run python -m duorec.train first",
    )
    missing = tmp_path / "nope.ckpt"
    proc = run_in_process(capsys, "evaluate", tmp_path, tiny_cache, f"ckpt_path={missing}")
    assert_one_line_error(proc, f"checkpoint not found: {missing}")
    assert not list((tmp_path / "logs").rglob("metrics.json"))


def test_a_checkpoint_alone_finds_its_data(tmp_path: Path) -> None:
    """No config, no cache: the data module's state in the checkpoint rebuilds the data.

    The model is trained with its own cache, the checkpoint is copied elsewhere and the cache
    deleted; evaluate and recommend, run from an empty folder with only `ckpt_path`, prepare
    the same data set again from the saved data config and reproduce the run's numbers.
    """
    cache = tmp_path / "train-cache"
    short = ["trainer.max_epochs=1", "data.samples_per_epoch=2048", *CHEAP_EVAL, *CHEAP_DUO]
    train(tiny_train_cfg(tmp_path / "trained", cache, *short))
    trained = json.loads((tmp_path / "trained" / "run" / "metrics.json").read_text())
    alone = tmp_path / "moved" / "model.ckpt"
    alone.parent.mkdir()
    shutil.copy(trained["checkpoint"], alone)
    shutil.rmtree(cache)
    shutil.rmtree(tmp_path / "trained")

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    env = {**os.environ, "DUOREC_ROOT": str(fresh), "WANDB_MODE": "offline"}

    def run(module: str, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", module, f"ckpt_path={alone}", *args]
        return subprocess.run(command, cwd=fresh, env=env, capture_output=True, text=True)

    proc = run("duorec.evaluate", *CHEAP_EVAL)
    assert proc.returncode == 0, proc.stderr
    (written,) = (fresh / "logs" / "evaluate" / "runs").glob("*/metrics.json")
    metrics = json.loads(written.read_text())
    assert metrics["test"]["pair_rmse"] == pytest.approx(trained["test"]["pair_rmse"], rel=1e-6)
    assert metrics["protocol"] == trained["protocol"]
    assert list((fresh / "data" / "cache" / "prepared").iterdir())  # rebuilt under the new root
    proc = run("duorec.recommend", "users=[1,2]", "k=5", f"output={fresh / 'top.csv'}")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(fresh / "top.csv")) == 5


def test_moved_raw_files_are_accepted_by_their_content(tmp_path: Path, capsys) -> None:
    """A MovieLens checkpoint whose raw files moved (and whose cache is gone) loads with
    `data.movielens_dir=NEW` when the files hold the same data; other data is refused."""
    raw = generate(tmp_path / "raw", "tiny", seed=0)
    cache = tmp_path / "cache"
    where = [f"data.movielens_dir={raw / 'movielens'}", f"data.imdb_dir={raw / 'imdb'}"]
    short = ["data.samples_per_epoch=2048", *CHEAP_EVAL, *CHEAP_DUO]
    cfg = tiny_train_cfg(tmp_path / "trained", cache, "data=movielens", *where, *short)
    cfg.trainer.max_epochs, cfg.test = 1, False
    train(cfg)
    ckpt = tmp_path / "trained" / "run" / "checkpoints" / "last.ckpt"
    moved = tmp_path / "elsewhere"
    shutil.move(raw, moved)
    shutil.rmtree(cache)
    with pytest.raises(DataError, match=str(raw / "movielens")):
        load_checkpoint(ckpt, cache)  # the files are not where the checkpoint says
    sources = {"movielens_dir": str(moved / "movielens"), "imdb_dir": str(moved / "imdb")}
    model, dataset = load_checkpoint(ckpt, cache, sources)
    assert dataset.manifest["fingerprint"] == read_reference(ckpt)["fingerprint"]
    assert (dataset.n_users, dataset.n_movies) == (model.hparams.n_users, model.hparams.n_movies)

    # the same names, other content: one rating changed, then one person left out
    changed = tmp_path / "changed"
    shutil.copytree(moved, changed)
    ratings = changed / "movielens" / "ratings.csv"
    frame = pd.read_csv(ratings)
    frame.loc[0, "rating"] = 5.5 - frame.loc[0, "rating"]
    frame.to_csv(ratings, index=False)
    sources = {"movielens_dir": str(changed / "movielens"), "imdb_dir": str(changed / "imdb")}
    with pytest.raises(UsageError, match=r"\(fingerprint differs\)"):
        load_checkpoint(ckpt, cache, sources)
    frame[frame["userId"] != frame["userId"].iloc[0]].to_csv(ratings, index=False)
    with pytest.raises(UsageError, match=r"\(fingerprint and users differ\)"):
        load_checkpoint(ckpt, cache, sources)

    # the command lines take them as data.movielens_dir=... data.imdb_dir=...
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    moved_args = [f"data.movielens_dir={moved / 'movielens'}", f"data.imdb_dir={moved / 'imdb'}"]
    proc = run_cli(
        "duorec.recommend",
        fresh,
        fresh / "cache",
        f"ckpt_path={ckpt}",
        "users=[1,2]",
        "k=3",
        *moved_args,
    )
    assert proc.returncode == 0, proc.stderr
    assert "top 3 for users 1 and 2" in proc.stdout
    changed_args = [
        f"data.movielens_dir={changed / 'movielens'}",
        f"data.imdb_dir={changed / 'imdb'}",
    ]
    proc = run_in_process(
        capsys, "evaluate", fresh, fresh / "cache", f"ckpt_path={ckpt}", *changed_args
    )
    assert_one_line_error(proc, "duorec.evaluate: error:", "fingerprint and users differ")


def test_moved_raw_files_only_apply_to_movielens_data(tmp_path: Path) -> None:
    reference = {"data": {"source": "synthetic", "name": "synthetic-tiny"}, "cache_key": "k"}
    with pytest.raises(UsageError, match="data.movielens_dir only applies to a MovieLens"):
        load_reference(reference, tmp_path, {"movielens_dir": str(tmp_path)})


def test_latest_checkpoint_orders_unique_run_folders_by_their_stamp(tmp_path: Path) -> None:
    # conf/hydra/default.yaml appends microseconds and the pid to the second-resolution stamp
    logs = tmp_path / "logs"
    paths = []
    for name in ("2024-02-10_09-00-00_000200_77", "2024-02-10_09-00-00_000100_99"):
        paths.append(touch_ckpt(logs / "train" / "runs" / name / "checkpoints", "best.ckpt"))
    # the second folder is newer on disk, but the names say which run started last
    assert latest_checkpoint(logs) == paths[0]
