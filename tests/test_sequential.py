"""Rankers that read time: recent popularity, SASRec, and the fold-in of a longer history."""

from __future__ import annotations

import numpy as np
import pytest

from duorec.model.ranking_baselines import (
    DAY,
    EASE,
    ImplicitALS,
    RecentPopularity,
    individual_ndcg,
    period_start,
    tune,
)
from duorec.model.sequential import SASRec


def _ratings(user, movie, time) -> dict[str, np.ndarray]:
    user, movie = np.asarray(user), np.asarray(movie)
    return {
        "user": user,
        "movie": movie,
        "rating": np.full(user.size, 4.0),
        "timestamp": np.asarray(time, dtype=np.float64),
    }


def _fit(model, part, n_users, n_movies):
    return model.fit(
        part["user"], part["movie"], part["rating"], n_users, n_movies, timestamp=part["timestamp"]
    )


# --------------------------------------------------------------------------- recent popularity


def _old_and_new_hits() -> dict[str, np.ndarray]:
    """Movie 0: rated by users 1..8 a thousand days ago; movie 1: by users 1..3 last week.
    User 0 asks today (day 1000) and has seen movie 2 only."""
    user = [0] + list(range(1, 9)) + [1, 2, 3]
    movie = [2] + [0] * 8 + [1] * 3
    time = [999 * DAY] + [0.0] * 8 + [995 * DAY] * 3
    return _ratings(user, movie, time)


def test_a_window_ranks_a_recent_hit_above_an_old_one() -> None:
    history = _old_and_new_hits()
    now = np.full(9, 1000 * DAY)
    recent = _fit(RecentPopularity(window_days=30), history, 9, 4).at(now)
    assert recent.user_scores([0])[0, 1] > recent.user_scores([0])[0, 0]
    every = _fit(RecentPopularity(window_days=None), history, 9, 4).at(now)
    assert every.user_scores([0])[0, 0] > every.user_scores([0])[0, 1]


def test_ratings_after_the_moment_asked_do_not_count() -> None:
    history = _old_and_new_hits()
    # asked on day 500, movie 1's ratings (day 995) lie in the future: all time is movie 0
    model = _fit(RecentPopularity(window_days=None), history, 9, 4)
    scores = model.at(np.full(9, 500 * DAY)).user_scores([0])[0]
    assert scores[0] > 0 and scores[1] == scores[3] == 0
    # in a window with nothing in it, the all-time counts before then still order the movies
    quiet = _fit(RecentPopularity(window_days=30), history, 9, 4).at(np.full(9, 500 * DAY))
    assert np.argmax(quiet.user_scores([0])[0]) == 0
    # not told when: just after the person's own latest rating (day 999), so movie 1 counts
    assert np.argmax(_fit(RecentPopularity(30), history, 9, 4).user_scores([0])[0]) == 1


def test_validation_asks_at_each_persons_first_validation_rating() -> None:
    history = _old_and_new_hits()
    val = _ratings([0, 0], [1, 3], [1000 * DAY, 1200 * DAY])
    val["rating"] = np.array([4.0, 2.0])  # movie 1 is what user 0 liked
    assert period_start(val, 9)[0] == 1000 * DAY and np.isnan(period_start(val, 9)[1])
    result = tune(lambda w: RecentPopularity(window_days=w), [None, 30], history, val, 9, 4)
    assert result.best == 30 and result.best_ndcg == pytest.approx(1.0)
    assert dict(result.ndcg)[None] < 1.0


def test_time_aware_rankers_need_timestamps() -> None:
    with pytest.raises(ValueError, match="needs a timestamp per rating"):
        RecentPopularity(30).fit(np.array([0]), np.array([0]), np.array([4.0]), 1, 1)
    with pytest.raises(ValueError, match="window_days > 0"):
        RecentPopularity(window_days=0)


# --------------------------------------------------------------------------- fold-in


@pytest.mark.parametrize(
    "make", [lambda: EASE(lam=1.0), lambda: ImplicitALS(factors=3, seed=0)], ids=["ease", "ials"]
)
def test_a_folded_in_history_scores_like_a_refit_persons_history(make) -> None:
    """with_history keeps the fitted parameters and reads the new history: the "both" rule's
    candidates shrink by the validation movie, and the original ranker is untouched."""
    rng = np.random.default_rng(0)
    x = rng.random((12, 8)) < 0.4
    x[0] = False
    x[0, :2] = True
    user, movie = np.nonzero(x)
    train = _ratings(user, movie, np.arange(user.size))
    model = _fit(make(), train, 12, 8)
    before = model.user_scores([0])
    history = _ratings(np.r_[user, 0], np.r_[movie, 5], np.r_[np.arange(user.size), 99])
    folded = model.with_history(
        history["user"], history["movie"], history["rating"], history["timestamp"]
    )
    assert not np.allclose(folded.user_scores([0]), before)
    np.testing.assert_array_equal(model.user_scores([0]), before)
    both = folded.pair_score_fn("both")(np.array([0]), np.array([1]))
    assert np.isneginf(both[0, 5])  # the validation movie is seen now
    if isinstance(model, EASE):
        np.testing.assert_allclose(
            folded.user_scores([0])[0], model.weights[[0, 1, 5]].sum(0), rtol=1e-5
        )


# --------------------------------------------------------------------------- SASRec


def _next_in_line(n_users: int = 150, n_movies: int = 30, seed: int = 0):
    """People watch runs of consecutive movies i, i+1, ...; the last of each run is held out.
    Popularity cannot know where a person is in the line; a sequence model can."""
    rng = np.random.default_rng(seed)
    user, movie, time = [], [], []
    for u in range(n_users):
        start, length = rng.integers(0, n_movies - 10), rng.integers(5, 10)
        user += [u] * length
        movie += list(range(start, start + length))
        time += list(range(length))
    user, movie, time = map(np.asarray, (user, movie, time))
    last = np.r_[user[1:] != user[:-1], True]
    train = _ratings(user[~last], movie[~last], time[~last])
    val = _ratings(user[last], movie[last], time[last])
    return train, val, n_users, n_movies


def test_sasrec_learns_what_comes_next_and_beats_popularity() -> None:
    train, val, n_users, n_movies = _next_in_line()
    small = {"max_len": 12, "hidden": 32, "epochs": 25, "batch_size": 32, "lr": 0.005}
    sasrec = _fit(SASRec(**small), train, n_users, n_movies)
    assert sasrec.losses[-1] < sasrec.losses[0] / 2
    popular = _fit(RecentPopularity(window_days=None), train, n_users, n_movies)
    assert individual_ndcg(sasrec, train, val, k=3) > 0.8
    assert individual_ndcg(popular, train, val, k=3) < 0.4
    # the next movie is first for almost everyone
    top = np.argmax(
        np.where(_seen(train, n_users, n_movies), -np.inf, sasrec.user_scores(np.arange(n_users))),
        axis=1,
    )
    assert np.mean(top == val["movie"]) > 0.8


def test_sasrec_is_seeded_and_reads_a_folded_in_sequence() -> None:
    train, val, n_users, n_movies = _next_in_line(n_users=40)
    small = {"max_len": 12, "hidden": 16, "epochs": 2, "batch_size": 16}
    a = _fit(SASRec(**small, seed=1), train, n_users, n_movies)
    b = _fit(SASRec(**small, seed=1), train, n_users, n_movies)
    np.testing.assert_array_equal(a.user_scores([0, 1]), b.user_scores([0, 1]))
    both = {k: np.concatenate([train[k], val[k]]) for k in train}
    folded = a.with_history(both["user"], both["movie"], both["rating"], both["timestamp"])
    assert not np.allclose(folded.user_scores([0]), a.user_scores([0]))  # one movie longer
    np.testing.assert_array_equal(a.user_scores([0]), b.user_scores([0]))  # a is unchanged
    assert folded.events.sequence(0)[-1] == val["movie"][0]


def test_sasrec_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="hidden divisible by heads"):
        SASRec(hidden=10, heads=3)


def _seen(part: dict[str, np.ndarray], n_users: int, n_movies: int) -> np.ndarray:
    seen = np.zeros((n_users, n_movies), dtype=bool)
    seen[part["user"], part["movie"]] = True
    return seen
