"""Pair sampling: `pairs` weighting equals enumeration; streams are seeded and reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from duorec.data.pairs import (
    PairSampler,
    RaterIndex,
    alias_table,
    enumerate_triples,
    evaluation_triples,
)


def small_index() -> RaterIndex:
    # movie 0: users 0,1,2 (3 pairs); movie 1: users 1,3 (1 pair); movie 2: user 4 (no pair);
    # movie 3: users 0,2,3,4 (6 pairs)  -> 10 triples in all
    user = np.array([0, 1, 2, 1, 3, 4, 0, 2, 3, 4])
    movie = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    rating = np.arange(10, dtype=np.float32) / 2 + 0.5
    return RaterIndex(user, movie, rating, n_movies=4)


def test_enumeration_lists_every_pair_once_with_both_ratings() -> None:
    index = small_index()
    triples = enumerate_triples(index)
    assert index.n_pairs == len(triples) == 10
    keys = set(
        zip(triples.user_a.tolist(), triples.user_b.tolist(), triples.movie.tolist(), strict=True)
    )
    expected = {
        (0, 1, 0),
        (0, 2, 0),
        (1, 2, 0),
        (1, 3, 1),
        (0, 2, 3),
        (0, 3, 3),
        (0, 4, 3),
        (2, 3, 3),
        (2, 4, 3),
        (3, 4, 3),
    }
    assert keys == expected
    assert (triples.user_a < triples.user_b).all()
    # rating of user 3 on movie 3 is the 9th rating (index 8): 4.5
    row = np.flatnonzero((triples.user_a == 2) & (triples.user_b == 3) & (triples.movie == 3))[0]
    assert (triples.rating_a[row], triples.rating_b[row]) == (4.0, 4.5)


def test_pairs_weighting_matches_uniform_over_enumerated_triples() -> None:
    index = small_index()
    draws = PairSampler(index, "pairs").draw(200_000, np.random.default_rng(0)).ordered()
    keys, counts = np.unique(
        np.stack([draws.user_a, draws.user_b, draws.movie], 1), axis=0, return_counts=True
    )
    assert len(keys) == 10  # every enumerated triple is reachable, nothing else is
    freq = counts / counts.sum()
    # each of the 10 triples should have probability 0.1; 5 sigma of a binomial at n=200k
    assert np.abs(freq - 0.1).max() < 5 * np.sqrt(0.1 * 0.9 / 200_000)


def test_other_weightings_change_movie_frequencies() -> None:
    index = small_index()
    rng = np.random.default_rng(1)
    movies = PairSampler(index, "uniform").draw(90_000, rng).movie
    share = np.bincount(movies, minlength=4) / len(movies)
    assert share[2] == 0  # a movie with one rater has no pair
    np.testing.assert_allclose(share[[0, 1, 3]], 1 / 3, atol=0.01)
    movies = PairSampler(index, "ratings").draw(90_000, rng).movie
    share = np.bincount(movies, minlength=4) / len(movies)
    np.testing.assert_allclose(share[[0, 1, 3]], [3 / 9, 2 / 9, 4 / 9], atol=0.01)


def test_two_raters_are_always_distinct_and_rated_the_movie() -> None:
    index = small_index()
    t = PairSampler(index, "pairs").draw(10_000, np.random.default_rng(2))
    assert (t.user_a != t.user_b).all()
    raters = {
        m: set(index.raters[index.indptr[m] : index.indptr[m + 1]].tolist()) for m in range(4)
    }
    assert all(
        a in raters[m] and b in raters[m]
        for a, b, m in zip(t.user_a, t.user_b, t.movie, strict=True)
    )


def test_same_seed_same_stream() -> None:
    sampler = PairSampler(small_index())
    a = sampler.draw(100, np.random.default_rng([0, 1, 0, 5]))
    b = sampler.draw(100, np.random.default_rng([0, 1, 0, 5]))
    c = sampler.draw(100, np.random.default_rng([0, 1, 1, 5]))
    assert np.array_equal(a.user_a, b.user_a) and np.array_equal(a.movie, b.movie)
    assert not np.array_equal(a.user_a, c.user_a)


def test_evaluation_sample_is_distinct_seeded_and_bounded() -> None:
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(200), 5)
    movie = rng.integers(0, 10, size=len(user))
    keep = np.unique(np.stack([user, movie], 1), axis=0)
    index = RaterIndex(keep[:, 0], keep[:, 1], np.ones(len(keep), np.float32), 10)
    assert index.n_pairs > 1000
    sample = evaluation_triples(index, 1000, seed=3)
    again = evaluation_triples(index, 1000, seed=3)
    assert len(sample) == 1000
    assert np.array_equal(sample.user_a, again.user_a)
    keys = np.stack([sample.user_a, sample.user_b, sample.movie], 1)
    assert len(np.unique(keys, axis=0)) == 1000
    assert len(evaluation_triples(index, None, seed=3)) == index.n_pairs
    # a sample close to the full set is still exactly the size asked for, and distinct
    near = evaluation_triples(index, index.n_pairs - 5, seed=3)
    assert len(near) == index.n_pairs - 5
    assert len(np.unique(np.stack([near.user_a, near.user_b, near.movie], 1), axis=0)) == len(near)


def test_no_pairs_is_a_clear_error() -> None:
    index = RaterIndex(np.array([0, 1]), np.array([0, 1]), np.ones(2, np.float32), 2)
    with pytest.raises(ValueError, match="no movie has two raters"):
        PairSampler(index)


def test_alias_table_reproduces_the_weights_exactly() -> None:
    """P(k) = (prob[k] + sum of (1 - prob[j]) over j aliased to k) / n, for every k."""
    weights = np.random.default_rng(4).pareto(1.2, 5000)
    weights[::7] = 0.0  # movies with fewer than two raters
    prob, alias = alias_table(weights)
    n = len(weights)
    implied = (prob + np.bincount(alias, weights=1.0 - prob, minlength=n)) / n
    np.testing.assert_allclose(implied, weights / weights.sum(), atol=1e-12)
    assert (implied[weights == 0] == 0).all()
