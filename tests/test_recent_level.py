"""A person's recent rating level in their bias (`HistoryBag.recent_level`, DuoModule's
`recent_weight`), its weight chosen on validation after training (`duorec.eval.recent_level`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FAST, best_checkpoint, compose_config

from duorec.checkpoint import load_checkpoint, read_reference
from duorec.data.datamodule import PairDataModule
from duorec.errors import UsageError
from duorec.eval.history import history_at_test
from duorec.eval.scoring import predict_triples
from duorec.metrics import pair_target
from duorec.model.foldin import Person
from duorec.model.history import HistoryBag
from duorec.settings import check_settings
from duorec.train import train


def bag(n_ratings: int, max_len: int | None = None) -> HistoryBag:
    """Person 0 rated 5, 4, 3, 2, 1 stars at times 1..5 (falling); person 1 rated 2, 4, 3 at
    times 1, 2, 3; person 2 nothing."""
    out = HistoryBag(n_users=3, n_movies=10, n_ratings=n_ratings, dim=4)
    user = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    movie = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    rating = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 2.0, 4.0, 3.0])
    time = np.array([1, 2, 3, 4, 5, 1, 2, 3])
    out.set_history(user, movie, rating, time, max_len)
    return out


def test_recent_level_by_hand() -> None:
    users = torch.arange(3)
    whole = bag(8)
    # person 0: centred newest first -2, -1, 0, 1, 2; the newest ceil(0.2 x 5) = 1 is -2,
    # the bag's mean 0. Person 1: newest first 0, +1, -1; ceil(0.6) = 1 newest: 0.
    torch.testing.assert_close(whole.recent_level(users), torch.tensor([-2.0, 0.0, 0.0]))
    # half the bag: person 0 mean(-2, -1, 0) = -1; person 1 ceil(1.5) = 2 newest: mean(0, 1)
    torch.testing.assert_close(whole.recent_level(users, 0.5), torch.tensor([-1.0, 0.5, 0.0]))
    # a capped bag keeps the newest 3 (centred on all 5: -2, -1, 0; mean -1): -2 - (-1)
    capped = bag(6, max_len=3)
    torch.testing.assert_close(capped.recent_level(users), torch.tensor([-1.0, 0.0, 0.0]))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> SimpleNamespace:
    """A chrono run choosing the weight from [0, 0.5], and its best checkpoint reloaded."""
    root = tmp_path_factory.mktemp("recent")
    cfg = compose_config(
        "train", [*FAST, "data.split.method=chrono", "eval.recent_weights=[0.0,0.5]"], root
    )
    cfg.paths.cache_dir = str(tiny_cache)
    train(cfg)
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    ckpt = best_checkpoint(root / "run")
    model, dataset = load_checkpoint(ckpt, tiny_cache)
    datamodule = PairDataModule.from_reference(read_reference(ckpt), tiny_cache)
    datamodule.seed = 0
    datamodule.use_dataset(dataset)
    return SimpleNamespace(metrics=metrics, model=model, dataset=dataset, dm=datamodule)


def test_the_weight_moves_each_persons_bias_by_their_level(run: SimpleNamespace) -> None:
    model = run.model
    users = torch.arange(run.dataset.n_users)
    level = model.history.recent_level(users)
    assert level.abs().max() > 0.1  # people do drift in the tiny data: not a vacuous check
    model.recent_weight = 0.0
    before = model.user_vectors(users)
    model.recent_weight = 0.5
    after = model.user_vectors(users)
    torch.testing.assert_close(after[:, :-1], before[:, :-1], rtol=0, atol=0)
    expected = 0.5 * level / (model.r_max - model.r_min)
    torch.testing.assert_close(after[:, -1] - before[:, -1], expected, rtol=1e-5, atol=1e-6)
    # still exactly symmetric: each person's shift is their own
    half = len(users) // 2
    a, b = users[:half], users[half : 2 * half]
    movie = torch.arange(half) % run.dataset.n_movies
    ab, ba = model(a, b, movie)[0], model(b, a, movie)[0]
    torch.testing.assert_close(ab, ba, rtol=0, atol=0)


def test_the_choice_is_the_lowest_validation_pair_rmse(run: SimpleNamespace) -> None:
    chosen = run.metrics["recent_weight"]
    assert chosen["grid"] == [0.0, 0.5]
    triples = run.dm.evaluation_triples("val")
    truth = pair_target(triples.rating_a, triples.rating_b, run.model.target).astype(np.float64)
    by_hand = []
    for weight in chosen["grid"]:
        run.model.recent_weight = weight
        pair = predict_triples(run.model, triples)[0].astype(np.float64)
        by_hand.append(float(np.sqrt(np.mean((pair - truth) ** 2))))
    np.testing.assert_allclose(chosen["val_pair_rmse"], by_hand, rtol=1e-5)
    assert chosen["best"] == chosen["grid"][int(np.argmin(by_hand))]
    assert run.model.hparams["recent_weight"] == chosen["best"]  # saved for serving


def test_at_test_time_the_level_reads_train_and_validation(run: SimpleNamespace) -> None:
    """The history before the test period, newest first as the bag orders it and capped at
    the longest training bag (`model_history`), by hand."""
    ds, model = run.dataset, run.model
    before = ds.ratings[ds.ratings["split"].isin([0, 1])]
    cap = int(torch.diff(model.history.indptr).max())
    users = torch.arange(ds.n_users)
    with history_at_test(model, ds, {"test_history": "auto"}):
        level = model.history.recent_level(users).numpy()
    for u in range(0, ds.n_users, 7):
        mine = before[before["user"] == u]
        order = np.lexsort((mine["movie"].to_numpy(), -mine["timestamp"].to_numpy()))
        rating = mine["rating"].to_numpy(np.float64)[order]
        centred = (rating - rating.mean())[:cap]  # centred on all of them, then capped
        newest = int(np.ceil(0.2 * len(centred)))
        expected = centred[:newest].mean() - centred.mean() if len(centred) else 0.0
        assert level[u] == pytest.approx(expected, abs=1e-5)
    # and back to the train history outside
    train = ds.split("train")
    assert int(torch.diff(model.history.indptr).sum()) == len(train)


def test_a_bad_grid_fails_before_any_work(tmp_path: Path) -> None:
    cfg = compose_config("train", ["eval.recent_weights=[0.2,-1]"], tmp_path)
    with pytest.raises(UsageError, match=r"eval.recent_weights=\[0.2, -1\] is not allowed"):
        check_settings(cfg, "train")


def test_a_folded_in_persons_level_follows_their_dates_and_none_without(
    run: SimpleNamespace,
) -> None:
    """Ten ratings falling from 5 to 1 star over time: the newest two (1.4 and 1) are below the
    mean of 3 by 1.8 stars. The same ratings without dates carry no order, so no level."""
    model, ds = run.model, run.dataset
    movies = np.arange(10)
    ratings = np.linspace(5.0, 1.0, 10)
    dated = Person(movies, ratings, timestamps=np.arange(10) * 1000)
    undated = Person(movies, ratings)
    model.recent_weight = 0.5
    folded = model.fold_in(ds, [dated, undated])
    level = folded.model.history.recent_level(torch.as_tensor(folded.users))
    newest = ratings[-2:].mean() - ratings.mean()
    torch.testing.assert_close(level, torch.tensor([newest, 0.0], dtype=torch.float32))
    assert model.history.undated is None  # the trained model itself is untouched
