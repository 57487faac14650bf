"""The history before test (train + validation): the model and every ranker read it, its movies
are never candidates; and the popularity concentration of the ranked lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import model_kwargs

from duorec.data.pairs import Triples
from duorec.eval.history import history_splits, model_history
from duorec.eval.ranking import rank_everyone
from duorec.metrics import RankingResult
from duorec.model.cowatch import fit_cowatch
from duorec.model.module import DuoModule

N_USERS, N_MOVIES = 20, 30


def _train() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    seen = rng.random((N_USERS, N_MOVIES)) < 0.3
    seen[:, 29] = False  # nobody has seen movie 29 in train
    seen[[0, 1], 28] = False  # nor users 0 and 1 movie 28
    seen[np.arange(N_USERS), rng.integers(0, 28, N_USERS)] = True
    user, movie = np.nonzero(seen)
    return {
        "user": user,
        "movie": movie,
        "rating": rng.choice([2.0, 3.0, 4.0, 5.0], user.size),
        "timestamp": np.arange(user.size),
    }


def _with_validation(train: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Train plus one later rating: user 0 rated movie 29 (in validation)."""
    extra = {"user": 0, "movie": 29, "rating": 5.0, "timestamp": 10_000}
    return {k: np.r_[v, extra[k]] for k, v in train.items()}


def _model(train: dict[str, np.ndarray]) -> DuoModule:
    fit = fit_cowatch(train, train, N_USERS, N_MOVIES, [10.0], 20000, N_MOVIES)
    kwargs = {"rating_range": (0.5, 5.0), **model_kwargs()}
    kwargs.pop("max_people_per_movie"), kwargs.pop("history_max")
    torch.manual_seed(0)
    model = DuoModule(
        n_users=N_USERS,
        n_movies=N_MOVIES,
        n_user_features=2,
        n_movie_features=2,
        n_people=0,
        max_people=0,
        n_history=len(train["user"]),
        n_cowatch=(len(train["user"]), len(fit.weight)),
        **kwargs,
    ).eval()
    model.history.set_history(train["user"], train["movie"], train["rating"], train["timestamp"])
    model.cowatch.set(fit, train["user"], train["movie"])
    return model


def test_the_model_reads_the_validation_ratings_at_test_time_and_its_own_history_after() -> None:
    train = _train()
    model = _model(train)
    users = torch.tensor([0, 1])
    with torch.no_grad():
        before = model.encode_users(users)
        saved = {name: getattr(model.history, name).clone() for name in ("indptr", "movies")}
        assert not model.cowatch.seen(users)[0, 29]
        with model_history(model, _with_validation(train)):
            assert model.cowatch.seen(users)[0, 29]  # co-watch: seen, and scored from it
            bag = model.history
            assert 29 in bag.movies[bag.indptr[0] : bag.indptr[1]].tolist()
            inside = model.encode_users(users)
            assert not torch.allclose(inside[0], before[0])  # user 0's bag grew
            torch.testing.assert_close(inside[1], before[1])  # user 1's did not
        torch.testing.assert_close(model.encode_users(users), before)
    for name, value in saved.items():
        assert torch.equal(getattr(model.history, name), value)
    assert not model.cowatch.seen(users)[0, 29]


def test_a_validation_movie_is_never_a_test_candidate() -> None:
    train = _train()
    # a scorer that loves movie 29 and, after it, movie 28
    def scorer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros((len(a), N_MOVIES))
        out[:, 29], out[:, 28] = 2.0, 1.0
        return out

    triples = Triples(*(np.array([x]) for x in (0, 1, 28, 5.0, 5.0)))
    opts = {"k": 1, "relevance_threshold": 4.0, "ranking_pairs": 10, "seed": 0, "long_tail_head": 5}
    on_train = rank_everyone({"s": scorer}, triples, train, N_USERS, N_MOVIES, opts)
    on_history = rank_everyone(
        {"s": scorer}, triples, _with_validation(train), N_USERS, N_MOVIES, opts
    )
    assert on_train["s"]["ndcg@1"] == 0.0  # movie 29 was still a candidate, and first
    assert on_history["s"]["ndcg@1"] == 1.0  # user 0 rated it in validation: not any more
    assert on_history["s"]["top_title@1"] == 28


def test_the_test_history_follows_the_split() -> None:
    def manifest(method: str) -> dict:
        return {"settings": {"split": {"method": method}}}

    assert history_splits(manifest("chrono"), {}) == ("train", "val")
    assert history_splits(manifest("temporal"), {"test_history": "auto"}) == ("train", "val")
    assert history_splits(manifest("random"), {"test_history": "auto"}) == ("train",)
    assert history_splits(manifest("random"), {"test_history": "train_val"}) == ("train", "val")
    assert history_splits(manifest("chrono"), {"test_history": "train"}) == ("train",)
    with pytest.raises(ValueError, match="unknown eval.test_history 'all'"):
        history_splits(manifest("chrono"), {"test_history": "all"})


def test_concentration_by_hand() -> None:
    # four lists of three: movie 7 is in three of them, movie 1 in two; -1 is an empty slot
    top = np.array([[7, 1, 2], [7, 3, -1], [1, 7, 4], [5, 6, 8]])
    ranked = RankingResult(
        pairs=np.zeros((4, 2), dtype=np.int64),
        ndcg=np.zeros(4),
        recall=np.zeros(4),
        hit_rate=np.zeros(4),
        k=3,
        top=top,
    )
    assert ranked.top_title() == (7, 0.75)
    # head = the most-rated {7, 1}: 5 of the 11 filled slots
    assert ranked.head_share(np.array([7, 1])) == pytest.approx(5 / 11)
    empty = RankingResult(np.zeros((0, 2)), *(np.zeros(0) for _ in range(3)), 3, np.zeros((0, 3)))
    movie, share = empty.top_title()
    assert movie == -1 and np.isnan(share) and np.isnan(empty.head_share(np.array([1])))
