"""Metrics checked against values computed by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from duorec.csr import csr_from_pairs
from duorec.metrics import (
    bootstrap_diff_ci,
    pair_target,
    rank_pairs,
    ranking_metrics,
    regression_metrics,
    relevant_by_pair,
)


def test_pair_target_mean_min_max():
    a = np.array([1.0, 4.5, 3.0], dtype=np.float32)
    b = np.array([2.0, 3.5, 3.0], dtype=np.float32)
    np.testing.assert_allclose(pair_target(a, b), [1.5, 4.0, 3.0])
    np.testing.assert_allclose(pair_target(a, b, "min"), [1.0, 3.5, 3.0])
    np.testing.assert_allclose(pair_target(a, b, "max"), [2.0, 4.5, 3.0])
    assert pair_target(a, b).dtype == np.float32
    with pytest.raises(ValueError, match="unknown aggregate"):
        pair_target(a, b, "median")


def test_regression_metrics_by_hand():
    # errors: +0.5, -1.0, +2.0 -> MSE = (0.25 + 1 + 4) / 3 = 1.75, MAE = 3.5 / 3
    pred = np.array([3.5, 2.0, 5.0])
    target = np.array([3.0, 3.0, 3.0])
    out = regression_metrics(pred, target, rating_range=(0.5, 5.0))
    assert out["pair_rmse"] == pytest.approx(math.sqrt(1.75))
    assert out["pair_mae"] == pytest.approx(3.5 / 3)
    assert out["scaled_mse"] == pytest.approx(1.75 / 4.5**2)
    assert out["n_triples"] == 3
    with pytest.raises(ValueError):
        regression_metrics(pred, target[:2], (0.5, 5.0))


def test_relevant_by_pair_groups_and_filters():
    triples = SimpleNamespace(
        user_a=np.array([0, 0, 0, 1, 2, 3]),
        user_b=np.array([1, 1, 1, 2, 0, 4]),
        movie=np.array([9, 4, 5, 4, 6, 1]),
        rating_a=np.array([4.0, 5.0, 3.5, 4.0, 4.5, 1.0]),
        rating_b=np.array([4.0, 4.5, 5.0, 3.0, 4.0, 5.0]),
    )
    pairs, rel = relevant_by_pair(triples)
    # (0,1): movies 9 and 4 qualify, 5 does not (3.5); (1,2): no; (2,0) -> (0,2): movie 6;
    # (3,4): no. Pairs without a relevant movie are dropped.
    assert pairs.tolist() == [[0, 1], [0, 2]]
    assert [r.tolist() for r in rel] == [[4, 9], [6]]


def _toy():
    # 6 movies. Train: user 0 saw movie 0, user 1 saw movie 5, user 2 saw nothing.
    seen = csr_from_pairs(np.array([0, 1]), np.array([0, 5]), n_rows=3)
    pairs = np.array([[0, 1], [1, 2], [0, 2]])
    relevant = [np.array([1, 3]), np.array([0]), np.array([], dtype=np.int64)]
    scores = np.array(
        [
            [9.0, 5.0, 8.0, 1.0, 7.0, 10.0],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    return pairs, relevant, seen, scores


def test_rank_pairs_ndcg_by_hand():
    pairs, relevant, seen, scores = _toy()
    res = rank_pairs(pairs, relevant, seen, scores, k=3)
    # Pair (0,1): movies 0 (seen by 0) and 5 (seen by 1) are masked although they score
    # highest. Remaining order: 2 (8), 4 (7), 1 (5), 3 (1) -> top 3 = [2, 4, 1].
    # Relevant {1, 3}: one hit, at rank 3 -> DCG = 1/log2(3+1) = 0.5.
    # Ideal: min(3, 2) = 2 hits on top -> IDCG = 1/log2(2) + 1/log2(3) = 1 + 0.6309 = 1.6309.
    # NDCG = 0.5 / 1.6309 = 0.3066; recall = 1/2; hit = 1.
    # Pair (1,2): movie 5 masked; top 3 = [4, 3, 2]; relevant {0} missed -> 0, 0, 0.
    # Pair (0,2): no relevant movie -> excluded.
    expected = 0.5 / (1.0 + 1.0 / math.log2(3.0))
    assert res.pairs.tolist() == [[0, 1], [1, 2]]
    np.testing.assert_allclose(res.ndcg, [expected, 0.0])
    np.testing.assert_allclose(res.recall, [0.5, 0.0])
    np.testing.assert_allclose(res.hit_rate, [1.0, 0.0])
    s = res.summary()
    assert s["n_pairs"] == 2
    assert s["ndcg"] == pytest.approx(expected / 2)
    assert s["recall"] == pytest.approx(0.25)
    assert s["hit_rate"] == pytest.approx(0.5)


def test_callable_and_matrix_agree_across_batches():
    pairs, relevant, seen, scores = _toy()
    row = {tuple(p): i for i, p in enumerate(pairs.tolist())}

    def score_fn(ua: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return scores[[row[(a, b)] for a, b in zip(ua.tolist(), ub.tolist(), strict=True)]]

    a = rank_pairs(pairs, relevant, seen, scores, k=3).summary()
    b = rank_pairs(pairs, relevant, seen, score_fn, k=3, batch_size=1).summary()
    assert a == b


def test_ranking_metrics_of_ranked_lists_by_hand():
    # Pair 0: list [7, 2, 9], relevant {2, 9, 4}: hits at ranks 2 and 3.
    #   DCG = 1/log2(3) + 1/log2(4) = 0.6309 + 0.5; IDCG (3 relevant, k=3) = 1 + 0.6309 + 0.5.
    # Pair 1: list [5, -1, -1] (one candidate only), relevant {5}: hit at rank 1 -> NDCG 1.
    #   The empty slots (-1) never count, even against a relevant movie -1 cannot be.
    # Pair 2: list [1, 3, 8], relevant {0}: no hit.
    top = np.array([[7, 2, 9], [5, -1, -1], [1, 3, 8]])
    relevant = [np.array([2, 4, 9]), np.array([5]), np.array([0])]
    ndcg, recall, hit = ranking_metrics(top, relevant, k=3)
    d2, d3 = 1 / math.log2(3), 1 / math.log2(4)
    np.testing.assert_allclose(ndcg, [(d2 + d3) / (1 + d2 + d3), 1.0, 0.0])
    np.testing.assert_allclose(recall, [2 / 3, 1.0, 0.0])
    assert hit.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="2 ranked lists but 3 relevant sets"):
        ranking_metrics(top[:2], relevant, k=3)


def test_seen_movies_never_ranked():
    rng = np.random.default_rng(0)
    n_users, n_movies = 5, 30
    user = rng.integers(0, n_users, 60)
    movie = rng.integers(0, n_movies, 60)
    seen = csr_from_pairs(user, movie, n_users)
    pairs = np.array([[0, 1], [2, 3], [1, 4]])
    seen_sets = [set(movie[user == u].tolist()) for u in range(n_users)]
    # Every movie is relevant, seen movies get the highest scores: a perfect recall of seen
    # movies would show a leak. Hits can only come from unseen movies.
    relevant = [np.arange(n_movies)] * 3
    scores = np.zeros((3, n_movies))
    for i, (a, b) in enumerate(pairs):
        scores[i, list(seen_sets[a] | seen_sets[b])] = 100.0
    res = rank_pairs(pairs, relevant, seen, scores, k=10)
    for i, (a, b) in enumerate(pairs):
        n_unseen = n_movies - len(seen_sets[a] | seen_sets[b])
        assert res.recall[i] == pytest.approx(min(10, n_unseen) / n_movies)


def test_few_candidates_and_perfect_ranking():
    # 4 movies, pair (0,1) has seen 0, 1, 2: one candidate left, which is relevant.
    seen = csr_from_pairs(np.array([0, 0, 1]), np.array([0, 1, 2]), n_rows=2)
    res = rank_pairs(np.array([[0, 1]]), [np.array([3])], seen, np.ones((1, 4)), k=10)
    assert res.ndcg.tolist() == [1.0] and res.recall.tolist() == [1.0]


def test_ties_break_towards_lower_index():
    seen = csr_from_pairs(np.array([], dtype=np.int64), np.array([], dtype=np.int64), n_rows=2)
    res = rank_pairs(np.array([[0, 1]]), [np.array([0])], seen, np.zeros((1, 50)), k=1)
    assert res.hit_rate.tolist() == [1.0]


def test_no_relevant_pairs_gives_nan_summary():
    seen = csr_from_pairs(np.array([0]), np.array([0]), n_rows=2)
    s = rank_pairs(np.array([[0, 1]]), [np.array([], dtype=np.int64)], seen, np.ones((1, 3)))
    out = s.summary()
    assert out["n_pairs"] == 0 and math.isnan(out["ndcg"])


def test_bootstrap_contains_true_difference_and_is_seeded():
    rng = np.random.default_rng(1)
    n = 4000
    model = rng.normal(0.0, 1.0, n)
    baseline = rng.normal(0.0, 1.5, n)
    diff, low, high = bootstrap_diff_ci(model, baseline, n_boot=500, seed=3)
    assert low < diff < high
    assert low < -0.5 < high  # true RMSE difference 1.0 - 1.5
    assert high < 0  # clearly better
    again = bootstrap_diff_ci(model, baseline, n_boot=500, seed=3)
    assert again == (diff, low, high)
    assert bootstrap_diff_ci(model, baseline, n_boot=500, seed=4) != again
    # Chunking does not change the answer.
    chunked = bootstrap_diff_ci(model, baseline, n_boot=500, seed=3, max_chunk_elems=n * 7)
    assert chunked == again


def test_bootstrap_mean_and_degenerate():
    x = np.array([0.1, 0.5, 0.2, 0.9, 0.3])
    assert bootstrap_diff_ci(x, x, n_boot=200) == (0.0, 0.0, 0.0)
    assert bootstrap_diff_ci(x, x, n_boot=200, stat="mean") == (0.0, 0.0, 0.0)
    diff, low, high = bootstrap_diff_ci(x + 0.25, x, n_boot=200, stat="mean")
    assert diff == pytest.approx(0.25)
    assert low == pytest.approx(0.25) and high == pytest.approx(0.25)
    with pytest.raises(ValueError, match="unknown stat"):
        bootstrap_diff_ci(x, x, stat="median")
