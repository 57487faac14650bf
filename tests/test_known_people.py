"""Temporal split: metrics.json's `known_people` reports known people apart from newcomers
(`duorec.eval.known`); random and chrono runs have no such key."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
from conftest import CHEAP_DUO, CHEAP_EVAL, compose_config, tiny_train_cfg
from rich.console import Console

from duorec.checkpoint import load_checkpoint, read_reference
from duorec.data.datamodule import PairDataModule
from duorec.errors import UsageError
from duorec.eval.history import history_at_test
from duorec.eval.scoring import predict_triples
from duorec.metrics import pair_target
from duorec.report import print_report
from duorec.settings import check_settings
from duorec.train import train

# one short epoch; the global mean and the bias model as rating baselines
SHORT = [
    "trainer.max_epochs=1",
    "data.samples_per_epoch=2048",
    *CHEAP_EVAL,
    *CHEAP_DUO,
    "eval.baselines=[global_mean,bias]",
]
# on the tiny data everyone has 17..79 ratings before the test period: 50 splits them
MIN_RATINGS = 50


def short_run(root: Path, cache: Path, *extra: str) -> SimpleNamespace:
    cfg = tiny_train_cfg(root, cache, *SHORT, *extra)
    train(cfg)
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    return SimpleNamespace(cfg=cfg, metrics=metrics)


@pytest.fixture(scope="module")
def temporal(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> SimpleNamespace:
    """A temporal run, its metrics.json, and what the evaluation read, rebuilt from its
    checkpoint as `python -m duorec.evaluate` does: the model, test triples, history."""
    root = tmp_path_factory.mktemp("temporal")
    run = short_run(
        root, tiny_cache, "data.split.method=temporal", f"eval.known_min_ratings={MIN_RATINGS}"
    )
    ckpt = run.metrics["checkpoint"]
    model, dataset = load_checkpoint(ckpt, tiny_cache)
    L.seed_everything(0)
    datamodule = PairDataModule.from_reference(read_reference(Path(ckpt)), tiny_cache)
    datamodule.seed = 0
    datamodule.use_dataset(dataset)
    run.model, run.dataset = model, dataset
    run.triples = datamodule.evaluation_triples("test")
    # the history at test time, by hand: train + validation ratings
    before = dataset.ratings[dataset.ratings["split"].isin([0, 1])]
    run.counts = before["user"].value_counts().reindex(range(dataset.n_users), fill_value=0)
    return run


def test_known_and_newcomers_split_the_test_pairs(temporal: SimpleNamespace) -> None:
    section = temporal.metrics["known_people"]
    known, newcomers = section["known"], section["newcomers"]
    assert section["min_ratings"] == MIN_RATINGS
    assert known["n_triples"] > 0 and newcomers["n_triples"] > 0
    assert (
        known["n_triples"] + newcomers["n_triples"] == temporal.metrics["protocol"]["test_triples"]
    )
    t, counts = temporal.triples, temporal.counts.to_numpy()
    both = (counts[t.user_a] >= MIN_RATINGS) & (counts[t.user_b] >= MIN_RATINGS)
    assert known["n_triples"] == int(both.sum())
    pairs = {tuple(sorted(p)) for p in zip(t.user_a.tolist(), t.user_b.tolist(), strict=True)}
    known_pairs = {p for p in pairs if min(counts[p[0]], counts[p[1]]) >= MIN_RATINGS}
    assert known["n_pairs"] == len(known_pairs)
    assert newcomers["n_pairs"] == len(pairs - known_pairs)
    for group in (known, newcomers):
        assert set(group["model"]) == {"pair_rmse", "ndcg@10", "recall@10"}
        assert set(group["baselines"]) == {"global_mean", "bias"}  # popularity ranks nothing
        assert "ndcg@10" in group["baselines"]["bias"]
        assert group["ci"]["pair_rmse"]["baseline"] in ("global_mean", "bias")
        assert group["ci"]["ndcg@10"]["baseline"] == "bias"
        assert 0 < group["n_ranked_pairs"] <= group["n_pairs"]


def test_group_rmse_by_hand(temporal: SimpleNamespace) -> None:
    """The model reads train + validation at test time; the global mean is train's mean."""
    model, ds, t = temporal.model, temporal.dataset, temporal.triples
    counts = temporal.counts.to_numpy()
    both = (counts[t.user_a] >= MIN_RATINGS) & (counts[t.user_b] >= MIN_RATINGS)
    global_mean = float(ds.split("train")["rating"].mean())
    with history_at_test(model, ds, {"test_history": "auto"}):
        for name, mask in (("known", both), ("newcomers", ~both)):
            group = t.take(np.flatnonzero(mask))
            truth = pair_target(group.rating_a, group.rating_b, model.target).astype(np.float64)
            pair = predict_triples(model, group)[0].astype(np.float64)
            got = temporal.metrics["known_people"][name]
            assert got["model"]["pair_rmse"] == pytest.approx(
                np.sqrt(np.mean((pair - truth) ** 2)), rel=1e-5
            )
            assert got["baselines"]["global_mean"]["pair_rmse"] == pytest.approx(
                np.sqrt(np.mean((global_mean - truth) ** 2)), rel=1e-5
            )


def test_the_console_prints_the_groups(temporal: SimpleNamespace) -> None:
    out = io.StringIO()
    print_report(temporal.metrics, Console(file=out, width=300))
    text = out.getvalue()
    assert f"known people (>= {MIN_RATINGS} ratings before test)" in text
    assert "newcomers" in text


@pytest.mark.parametrize("method", ["random", "chrono"])
def test_other_splits_add_nothing(method: str, tmp_path: Path, tiny_cache: Path) -> None:
    run = short_run(tmp_path, tiny_cache, f"data.split.method={method}")
    assert run.metrics["protocol"]["split"]["method"] == method
    assert "known_people" not in run.metrics
    out = io.StringIO()
    print_report(run.metrics, Console(file=out, width=300))
    assert "known people" not in out.getvalue()


def test_min_ratings_is_checked(tmp_path: Path) -> None:
    cfg = compose_config("train", ["eval.known_min_ratings=0"], tmp_path)
    with pytest.raises(UsageError, match="eval.known_min_ratings=0 is not allowed"):
        check_settings(cfg, "train")
