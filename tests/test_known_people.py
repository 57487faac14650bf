"""Temporal split: metrics.json's `known_people` reports known people apart from newcomers
(`duorec.eval.known`); random and chrono runs have no such key."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
from conftest import CHEAP_DUO, CHEAP_EVAL, compose_config, tiny_train_cfg
from rich.console import Console

from duorec.checkpoint import load_checkpoint, read_reference
from duorec.data.datamodule import PairDataModule
from duorec.errors import UsageError
from duorec.eval.history import history_at_test
from duorec.eval.known import newcomer_reveal
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
    assert "newcomers folded in:" in text
    assert "newcomers folded in N=5: pair_rmse model - bias" in text


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


def frame(rows: list[tuple[int, int, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "movie", "rating", "timestamp"])


def test_newcomer_reveal_keeps_the_past_and_hides_only_later_test_ratings() -> None:
    """Hand-made: newcomer 0 (2 ratings before, 4 in test), newcomer 1 (1 test rating: not
    more than N, left out), known person 2. N = 2."""
    before = frame(
        [(0, 1, 4.0, 1), (0, 2, 3.0, 2), (1, 3, 5.0, 1)] + [(2, m, 4.0, 1) for m in range(10)]
    )
    test = frame([(0, 10, 4.0, 10), (0, 11, 4.0, 12), (0, 12, 4.0, 11), (0, 13, 4.0, 13)])
    test = pd.concat([test, frame([(1, 20, 4.0, 10), (2, 21, 4.0, 10)])], ignore_index=True)
    revealed, hidden = newcomer_reveal(before, test, np.array([0, 1]), 2, seed=0)
    assert sorted(zip(revealed["user"], revealed["movie"], strict=True)) == [
        (0, 1),
        (0, 2),
        (0, 10),
        (0, 12),
    ]  # everything before + the 2 earliest test ratings (times 10 and 11)
    assert sorted(zip(hidden["user"], hidden["movie"], strict=True)) == [(0, 11), (0, 13)]


def test_newcomers_are_folded_in_and_scored_on_later_ratings(temporal: SimpleNamespace) -> None:
    """The temporal run's newcomers, folded in from N = 5 (the default): who, how many
    ratings each side, and the triples, all counted by hand."""
    folded = temporal.metrics["known_people"]["newcomers_folded_in"]
    ds, counts = temporal.dataset, temporal.counts.to_numpy()
    test = ds.split("test")
    newcomer = counts[test["user"].to_numpy()] < MIN_RATINGS
    per_person = test[newcomer].groupby("user").size()
    folded_people = per_person[per_person > 5].index.to_numpy()
    five = folded["5"]
    assert five["n_users"] == len(folded_people) > 0
    assert five["n_revealed"] == int(counts[folded_people].sum()) + 5 * len(folded_people)
    hidden = test[test["user"].isin(folded_people)]
    assert five["n_hidden"] == len(hidden) - 5 * len(folded_people)
    # a hidden rating pairs with other newcomers' hidden ratings and known people's test
    # ratings of the same movie, never with the person's own test ratings
    # (which test ratings are later: newcomer_reveal, checked by hand above; ties in time
    # are broken by a seeded draw)
    before = ds.ratings[ds.ratings["split"].isin([0, 1])]
    _, later = newcomer_reveal(before, test, np.flatnonzero(counts < MIN_RATINGS), 5, 0)
    per_movie = later.groupby("movie").size()
    known_per_movie = test[~newcomer].groupby("movie").size()
    k = known_per_movie.reindex(per_movie.index, fill_value=0)
    expected = int((per_movie * k + per_movie * (per_movie - 1) // 2).sum())
    if expected <= temporal.cfg.data.eval_max_triples:
        assert five["n_triples"] == expected
    for name in ("model", "bias", "popularity", "ease_sum", "ease_both"):
        assert 0.0 <= five[name]["ndcg@10"] <= 1.0
    assert five["ci"]["pair_rmse"]["baseline"] == "bias"
    assert np.isfinite(five["model"]["pair_rmse"])


def test_newcomer_reveal_is_checked(tmp_path: Path) -> None:
    cfg = compose_config("train", ["eval.newcomer_reveal=[5,0]"], tmp_path)
    with pytest.raises(UsageError, match=r"eval.newcomer_reveal=\[5, 0\] is not allowed"):
        check_settings(cfg, "train")
