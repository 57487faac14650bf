"""Cold start: held-out users never reach training; the protocol scores only what was hidden."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import CHEAP_DUO, only_rankers, tiny_train_cfg

from duorec.cli import UsageError
from duorec.data.build import DatasetSpec, prepare_dataset
from duorec.data.pairs import Triples
from duorec.data.split import COLD, COLD_MOVIE, COLD_USER_STREAM, held_out_mask
from duorec.eval.coldstart import (
    reveal_earliest,
    reveal_settings,
    scored_triples,
)
from duorec.metrics import pair_target
from duorec.model.ranking_baselines import EASE
from duorec.model.rating_baselines import BiasBaseline
from duorec.train import train

COLD_RUN = [
    "data.cold_users=0.2",
    "data.cold_movies=0.1",
    "eval.cold_start.reveal=[3,8]",
    "trainer.max_epochs=2",
    # the main evaluation as far as cold start reads it: the rating baselines and EASE
    *only_rankers("ease"),
    "eval.foldin_choice.priors=[]",
    "eval.diversity=[0.0]",
    "eval.bootstrap=50",
    *CHEAP_DUO,
]


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path):
    """A tiny model trained with 20% of users held out; its metrics and data module."""
    root = tmp_path_factory.mktemp("cold")
    cfg = tiny_train_cfg(root, tiny_cache, *COLD_RUN)
    result = train(cfg)
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    spec = DatasetSpec.from_config(cfg.data)
    dataset = prepare_dataset(spec, tiny_cache).dataset
    return SimpleNamespace(cfg=cfg, result=result, metrics=metrics, dataset=dataset)


def cold_users(dataset) -> np.ndarray:
    return np.unique(dataset.split("cold")["user"].to_numpy())


def test_cold_users_are_a_seeded_share_and_bad_shares_are_refused() -> None:
    def mask(seed: int, share: float | None = 0.1) -> np.ndarray:
        return held_out_mask(200, share, seed, COLD_USER_STREAM)

    assert mask(3).sum() == 20
    assert (mask(3) == mask(3)).all()
    assert (mask(3) != mask(4)).any()
    assert not mask(3, None).any()
    for key in ("cold_users", "cold_movies"):
        for bad in (0, 1, 1.5, -0.1, "x", True):
            with pytest.raises(UsageError, match=rf"data\.{key}") as err:
                DatasetSpec("synthetic", "s", 0, {}, {}, **{key: bad})
            assert "\n" not in str(err.value)


def test_the_cache_key_holds_cold_users_only_when_set() -> None:
    plain = DatasetSpec("synthetic", "s", 0, {}, {})
    assert not {"cold_users", "cold_movies"} & set(plain.as_dict())  # old caches keep their key
    assert DatasetSpec("synthetic", "s", 0, {}, {}, cold_users=0.1).as_dict()["cold_users"] == 0.1


def test_bad_reveal_is_one_line_naming_the_key() -> None:
    assert reveal_settings({}) == []
    assert reveal_settings({"cold_start": {"reveal": [5, 20]}}) == [5, 20]
    for bad in ([0], [5, -1], [2.5], ["x"]):
        with pytest.raises(UsageError, match=r"eval\.cold_start\.reveal") as err:
            reveal_settings({"cold_start": {"reveal": bad}})
        assert "\n" not in str(err.value)


def test_reveal_takes_each_users_earliest_and_drops_users_without_enough() -> None:
    cold = pd.DataFrame(
        {
            "user": [7, 7, 7, 7, 9, 9],
            "movie": [1, 2, 3, 4, 1, 2],
            "rating": [5.0, 4.0, 3.0, 2.0, 1.0, 2.0],
            "timestamp": [40, 10, 30, 20, 5, 6],
        }
    )
    revealed, hidden = reveal_earliest(cold, 2, seed=0)
    assert sorted(revealed["movie"]) == [2, 4] and set(revealed["user"]) == {7}
    assert sorted(hidden["movie"]) == [1, 3]  # user 9 has only 2 ratings: nothing to score


def test_held_out_users_never_reach_training(cold_run) -> None:
    ds = cold_run.dataset
    held = cold_users(ds)
    assert len(held) == round(0.2 * ds.n_users)
    assert ds.manifest["split_sizes"]["cold"] == len(ds.split("cold"))
    for split in ("train", "val", "test"):
        assert not np.isin(ds.split(split)["user"].to_numpy(), held).any(), split
    assert (ds.ratings["split"].to_numpy() == COLD).sum() == len(ds.split("cold"))
    # features from train only: a held-out user looks like any user without train ratings
    features = ds.features.user
    assert np.allclose(features[held], features[held[0]])
    # the trained model's history and co-watch rows of held-out users are empty
    from duorec.checkpoint import load_checkpoint

    model, _ = load_checkpoint(cold_run.metrics["checkpoint"], cold_run.cfg.paths.cache_dir)
    for indptr in (model.history.indptr, model.cowatch.history_indptr):
        counts = np.diff(indptr.numpy())
        assert (counts[held] == 0).all() and counts.sum() > 0


def test_cold_start_metrics_beside_baselines(cold_run) -> None:
    cold = cold_run.metrics["cold_start"]
    assert cold["protocol"]["held_out_users"] == len(cold_users(cold_run.dataset))
    for n in ("3", "8"):
        block = cold[n]
        assert block["n_triples"] > 0 and 0 < block["n_cold_cold"] < block["n_triples"]
        assert block["n_revealed"] == int(n) * block["n_users"]
        for name in ("model", "bias"):
            assert 0 < block[name]["pair_rmse"] < 4.5
        for name in ("model", "bias", "ease_sum", "ease_both", "popularity"):
            assert 0 <= block[name]["ndcg@10"] <= 1
        assert block["ci"]["pair_rmse"]["baseline"] == "bias"
        ci = block["ci"]["ndcg@10"]
        assert ci["low"] <= ci["diff"] <= ci["high"]
    # the main numbers are still there, measured as without the protocol
    assert "pair_rmse" in cold_run.metrics["test"]


def test_revealed_ratings_are_never_scored(cold_run) -> None:
    ds = cold_run.dataset
    cold = ds.split("cold")
    revealed, hidden = reveal_earliest(cold, 3, seed=0)
    people = np.unique(revealed["user"].to_numpy())
    new_index = {int(u): ds.n_users + i for i, u in enumerate(people)}
    triples = scored_triples(ds, SimpleNamespace(eval_max_triples=None), hidden, new_index, {})
    assert len(triples) > 0
    assert (triples.user_b >= ds.n_users).all()  # every triple has a held-out user
    shown = {(new_index[u], m) for u, m in zip(revealed["user"], revealed["movie"], strict=True)}
    scored = set(zip(triples.user_a.tolist(), triples.movie.tolist(), strict=True))
    scored |= set(zip(triples.user_b.tolist(), triples.movie.tolist(), strict=True))
    assert not shown & scored
    # the known side of a triple is a test rating
    test = ds.split("test")
    test_keys = set(zip(test["user"], test["movie"], strict=True))
    known = triples.user_a < ds.n_users
    assert all(
        (u, m) in test_keys
        for u, m in zip(triples.user_a[known], triples.movie[known], strict=True)
    )


def test_folded_bias_is_the_hand_computation() -> None:
    user = np.array([0, 0, 1, 1, 1])
    movie = np.array([0, 1, 0, 1, 2])
    rating = np.array([4.0, 2.0, 5.0, 3.0, 4.0])
    bias = BiasBaseline(reg_user=2.0, rating_range=(0.5, 5.0)).fit(user, movie, rating, 2, 3)
    # a new person (index 2) rated movie 0 with 5 and movie 2 with 3
    person, p_movie, p_rating = np.array([0, 0]), np.array([0, 2]), np.array([5.0, 3.0])
    ub = bias.fold_in(person, p_movie, p_rating, 1)
    resid = p_rating - bias.mu - bias.movie_bias[p_movie]
    assert ub[2] == pytest.approx(resid.sum() / (2.0 + 2))
    assert (ub[:2] == bias.user_bias).all()
    triples = Triples(np.array([1]), np.array([2]), np.array([1]), np.array([3.0]), np.array([4.0]))
    expected = np.mean(
        [bias.mu + bias.user_bias[1] + bias.movie_bias[1], bias.mu + ub[2] + bias.movie_bias[1]]
    )
    guess = bias.pair_prediction(ub, triples.user_a, triples.user_b, triples.movie, "mean")
    assert guess[0] == pytest.approx(expected)
    assert pair_target(np.array([3.0]), np.array([4.0]), "mean")[0] == 3.5


def test_folded_ease_is_ease_of_the_same_interactions() -> None:
    rng = np.random.default_rng(0)
    user = rng.integers(0, 30, 300)
    movie = rng.integers(0, 20, 300)
    ease = EASE(lam=10.0).fit(user, movie, np.full(300, 4.0), 30, 20)
    mine = np.unique(movie[user == 4])
    rows = ease.fold_in(np.zeros(mine.size, dtype=np.int64), mine, 1)
    together = rows(np.array([4, 30]))
    assert np.allclose(together[1], ease.user_scores(np.array([4]))[0], atol=1e-5)
    assert np.allclose(together[0], together[1], atol=1e-5)


def test_protocol_numbers_are_a_hand_computation(cold_run) -> None:
    """N=3 rebuilt from scratch: each held-out user's 3 earliest ratings folded in, every
    (held-out, other) pair on a movie both rated outside the reveal, scored by the model and
    by the hand-folded bias baseline."""
    from duorec.checkpoint import load_checkpoint
    from duorec.eval.scoring import predict_triples
    from duorec.model.foldin import Person

    ds = cold_run.dataset
    model, _ = load_checkpoint(cold_run.metrics["checkpoint"], cold_run.cfg.paths.cache_dir)
    cold = ds.split("cold").sort_values(["user", "timestamp"], kind="stable")
    people, rows, hidden = [], {}, []
    for user, mine in cold.groupby("user"):
        if len(mine) <= 3 or mine["timestamp"].iloc[2] == mine["timestamp"].iloc[3]:
            assert len(mine) <= 3, "a tie at the reveal boundary: pick another seed"
            continue
        rows[user] = ds.n_users + len(people)
        people.append(Person(mine["movie"].to_numpy()[:3], mine["rating"].to_numpy()[:3]))
        hidden += [
            (rows[user], m, r) for m, r in zip(mine["movie"][3:], mine["rating"][3:], strict=True)
        ]
    test = ds.split("test")
    known = list(zip(test["user"], test["movie"], test["rating"], strict=True))
    triples = []
    for i, (u, m, r) in enumerate(hidden):
        for v, m2, r2 in hidden[i + 1 :] + known:
            if m2 == m and v != u:
                a, b = sorted([(u, r), (v, r2)])
                triples.append((a[0], b[0], m, a[1], b[1]))
    triples.sort(key=lambda t: (t[2], t[0], t[1]))
    t = Triples(*(np.array(c) for c in zip(*triples, strict=True)))
    block = cold_run.metrics["cold_start"]["3"]
    assert block["n_triples"] == len(t)
    truth = (t.rating_a + t.rating_b) / 2
    folded = model.fold_in(ds, people)
    pair, _, _ = predict_triples(folded.model, t)
    rmse = np.sqrt(np.mean((pair - truth) ** 2))
    assert block["model"]["pair_rmse"] == pytest.approx(rmse, rel=1e-4)
    train = ds.split("train")
    bias = BiasBaseline(rating_range=ds.rating_range).fit(
        train["user"].to_numpy(),
        train["movie"].to_numpy(),
        train["rating"].to_numpy(),
        ds.n_users,
        ds.n_movies,
    )
    user_bias = list(bias.user_bias)
    for p in people:
        resid = p.ratings - bias.mu - bias.movie_bias[p.movies]
        user_bias.append(resid.sum() / (bias.reg_user + len(p.ratings)))
    own = [
        np.clip(bias.mu + np.array(user_bias)[u] + bias.movie_bias[t.movie], 0.5, 5.0)
        for u in (t.user_a, t.user_b)
    ]
    guess = (own[0] + own[1]) / 2
    assert block["bias"]["pair_rmse"] == pytest.approx(np.sqrt(np.mean((guess - truth) ** 2)))


def test_new_movies_have_no_training_rating_and_are_scored_against_the_fallback(
    cold_run,
) -> None:
    ds = cold_run.dataset
    held = np.unique(ds.split("cold_movies")["movie"].to_numpy())
    assert 0 < len(held) <= round(0.1 * ds.n_movies)  # a movie only held-out users rated drops
    for split in ("train", "val", "test"):
        assert not np.isin(ds.split(split)["movie"].to_numpy(), held).any(), split
    # ratings of a held-out movie by a held-out user stay with the user's fold-in
    cold_user_rows = ds.ratings["split"].to_numpy() == COLD
    assert (ds.ratings["split"].to_numpy() == COLD_MOVIE).sum() + cold_user_rows[
        np.isin(ds.ratings["movie"].to_numpy(), held)
    ].sum() == np.isin(ds.ratings["movie"].to_numpy(), held).sum()
    block = cold_run.metrics["cold_start"]["new_movies"]
    assert block["n_movies"] == len(held) and block["n_triples"] > 0
    # the fallback by hand: global mean + user bias for each person, averaged
    frame = ds.split("cold_movies")
    train = ds.split("train")
    bias = BiasBaseline(rating_range=ds.rating_range).fit(
        train["user"].to_numpy(),
        train["movie"].to_numpy(),
        train["rating"].to_numpy(),
        ds.n_users,
        ds.n_movies,
    )
    errors = []
    for _, mine in frame.groupby("movie"):
        rows = list(zip(mine["user"], mine["rating"], strict=True))
        for i, (u, r) in enumerate(rows):
            for v, r2 in rows[i + 1 :]:
                guess = [np.clip(bias.mu + bias.user_bias[x], 0.5, 5.0) for x in (u, v)]
                errors.append(np.mean(guess) - (r + r2) / 2)
    assert block["n_triples"] == len(errors)
    rmse = np.sqrt(np.mean(np.square(errors)))
    assert block["mean_plus_user_bias"]["pair_rmse"] == pytest.approx(rmse)
    assert 0 < block["model"]["pair_rmse"] < 4.5
