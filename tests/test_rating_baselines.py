"""Baselines on small planted synthetic ratings: they must find what was planted."""

from __future__ import annotations

import numpy as np
import pytest

from duorec.csr import csr_from_pairs
from duorec.metrics import pair_target, rank_pairs
from duorec.model.rating_baselines import (
    BiasBaseline,
    BiasedMF,
    GlobalMean,
    Popularity,
    _Groups,
)

N_USERS, N_MOVIES = 150, 120


def _planted(seed: int = 0, rank: int = 0, density: float = 0.4, noise: float = 0.3):
    """Ratings = 3.5 + b_u + b_i (+ p_u . q_i) + noise on a random subset of cells."""
    rng = np.random.default_rng(seed)
    b_u = rng.normal(0, 0.5, N_USERS)
    b_i = rng.normal(0, 0.5, N_MOVIES)
    full = 3.5 + b_u[:, None] + b_i[None, :]
    if rank:
        p = rng.normal(0, 0.7, (N_USERS, rank))
        q = rng.normal(0, 0.7, (N_MOVIES, rank))
        full = full + p @ q.T
    user, movie = np.nonzero(rng.random((N_USERS, N_MOVIES)) < density)
    rating = (full[user, movie] + rng.normal(0, noise, user.size)).astype(np.float32)
    test = rng.random(user.size) < 0.2
    return (user, movie, rating), test, b_u, b_i


def _rmse(model, user, movie, rating) -> float:
    return float(np.sqrt(np.mean((model.predict(user, movie) - rating) ** 2)))


def _split(data, test):
    (u, m, r) = data
    return (u[~test], m[~test], r[~test]), (u[test], m[test], r[test])


def test_bias_baseline_recovers_planted_biases_and_beats_global_mean():
    data, test, b_u, b_i = _planted()
    train, held = _split(data, test)
    bias = BiasBaseline(n_iter=20).fit(*train, N_USERS, N_MOVIES)
    mean = GlobalMean().fit(*train, N_USERS, N_MOVIES)
    assert np.corrcoef(bias.user_bias, b_u)[0, 1] > 0.9
    assert np.corrcoef(bias.movie_bias, b_i)[0, 1] > 0.9
    assert _rmse(bias, *held) < 0.8 * _rmse(mean, *held)
    np.testing.assert_allclose(mean.predict(held[0], held[1]), np.mean(train[2]), rtol=1e-6)


def test_mf_beats_bias_baseline_on_low_rank_data():
    data, test, _, _ = _planted(seed=1, rank=3)
    train, held = _split(data, test)
    bias = BiasBaseline().fit(*train, N_USERS, N_MOVIES)
    mf = BiasedMF(k=3, n_iter=10).fit(*train, N_USERS, N_MOVIES)
    assert _rmse(mf, *held) < 0.6 * _rmse(bias, *held)
    assert _rmse(mf, *held) < 0.5  # noise is 0.3


def test_groups_solve_matches_direct_ridge():
    # Group sizes 0 (empty), 1, short and longer than a segment, all in one call.
    rng = np.random.default_rng(2)
    sizes = np.array([0, 1, 3, 7, 300, 40])
    group = rng.permutation(np.repeat(np.arange(sizes.size), sizes))
    n_other, d = 50, 4
    other = rng.integers(0, n_other, group.size)
    x = rng.normal(size=(n_other, d))
    y = rng.normal(size=group.size)
    penalty = rng.uniform(0.5, 2.0, (sizes.size, d))
    theta = _Groups(group, sizes.size, dim=d, max_slots=64).solve(x, other, y, penalty)
    for g in range(sizes.size):
        xg, yg = x[other[group == g]], y[group == g]
        expected = np.linalg.solve(xg.T @ xg + np.diag(penalty[g]), xg.T @ yg)
        np.testing.assert_allclose(theta[g], expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "model",
    [GlobalMean(), BiasBaseline(), BiasedMF(k=4, n_iter=3)],
    ids=lambda m: type(m).__name__,
)
def test_predict_pair_aggregates_individual_predictions(model):
    data, _, _, _ = _planted(seed=3)
    model.fit(*data, N_USERS, N_MOVIES)
    rng = np.random.default_rng(0)
    ua, ub, mv = (rng.integers(0, n, 40) for n in (N_USERS, N_USERS, N_MOVIES))
    pa, pb = model.predict(ua, mv), model.predict(ub, mv)
    assert pa.dtype == np.float32
    for how in ("mean", "min", "max"):
        np.testing.assert_array_equal(model.predict_pair(ua, ub, mv, how), pair_target(pa, pb, how))


@pytest.mark.parametrize(
    "model", [GlobalMean(), BiasBaseline(), BiasedMF(k=4, n_iter=3)], ids=lambda m: type(m).__name__
)
def test_score_all_rows_equal_predict(model):
    data, _, _, _ = _planted(seed=4, rank=2)
    model.fit(*data, N_USERS, N_MOVIES)
    users = np.array([0, 17, 149])
    scores = model.score_all(users)
    assert scores.shape == (3, N_MOVIES) and scores.dtype == np.float32
    for row, u in zip(scores, users, strict=True):
        np.testing.assert_allclose(
            row, model.predict(np.full(N_MOVIES, u), np.arange(N_MOVIES)), rtol=1e-6
        )


def test_predictions_clipped_to_rating_range():
    data, _, _, _ = _planted(seed=5, rank=3, noise=0.1)
    mf = BiasedMF(k=3, n_iter=5, rating_range=(2.0, 5.0)).fit(*data, N_USERS, N_MOVIES)
    users = np.arange(N_USERS)
    raw = mf.score_all(users, clip=False)
    assert raw.min() < 2.0 and raw.max() > 5.0  # the planted scale overflows the range
    clipped = mf.score_all(users)
    assert clipped.min() == 2.0 and clipped.max() == 5.0
    u, m = np.meshgrid(users, np.arange(N_MOVIES), indexing="ij")
    pred = mf.predict(u.ravel(), m.ravel())
    assert pred.min() == 2.0 and pred.max() == 5.0
    # Without an explicit range, the train ratings' own min and max are used.
    bias = BiasBaseline().fit(*data, N_USERS, N_MOVIES)
    assert bias.rating_range == (float(data[2].min()), float(data[2].max()))


def test_mf_fit_is_deterministic_by_seed():
    data, _, _, _ = _planted(seed=6, rank=2)
    users = np.arange(N_USERS)
    a = BiasedMF(k=4, n_iter=3, seed=0).fit(*data, N_USERS, N_MOVIES).score_all(users)
    b = BiasedMF(k=4, n_iter=3, seed=0).fit(*data, N_USERS, N_MOVIES).score_all(users)
    c = BiasedMF(k=4, n_iter=3, seed=1).fit(*data, N_USERS, N_MOVIES).score_all(users)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_popularity_ranks_by_train_count_and_predicts_no_rating():
    user = np.array([0, 1, 2, 0, 1, 0])
    movie = np.array([2, 2, 2, 1, 1, 3])
    rating = np.array([5.0, 4.0, 3.0, 2.0, 2.0, 5.0], dtype=np.float32)
    pop = Popularity().fit(user, movie, rating, n_users=4, n_movies=5)
    np.testing.assert_array_equal(pop.score_all(np.array([3, 0]))[0], [0, 2, 3, 1, 0])
    with pytest.raises(TypeError, match="predicts no rating"):
        pop.predict(np.array([3]), np.array([2]))
    # Pair (0, 3): user 0 saw movies 1, 2, 3, so only 0 and 4 are candidates; both have
    # count 0 and the tie goes to the lower index, movie 0.
    seen = csr_from_pairs(user, movie, 4)
    res = rank_pairs(np.array([[0, 3]]), [np.array([0])], seen, pop.pair_score_fn(), k=1)
    assert res.hit_rate.tolist() == [1.0]


def test_invalid_use_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        BiasBaseline().predict(np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="movie index"):
        GlobalMean().fit(np.array([0]), np.array([5]), np.array([3.0]), 1, 5)
    with pytest.raises(ValueError, match="differ in length"):
        GlobalMean().fit(np.array([0, 1]), np.array([0]), np.array([3.0]), 2, 1)
