"""Ranking baselines on tiny hand-built matrices: closed forms, hand cosines, planted blocks."""

from __future__ import annotations

import numpy as np
import pytest

from duorec.model import ranking_baselines as rankers
from duorec.model.ranking_baselines import (
    EASE,
    ImplicitALS,
    ItemKNN,
    Ranker,
    combine_pair,
    individual_ndcg,
    tune,
)


def _cells(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, movie, rating=4) of the nonzero cells of a dense 0/1 matrix."""
    user, movie = np.nonzero(x)
    return user, movie, np.full(user.size, 4.0)


def _fit(model: Ranker, x: np.ndarray) -> Ranker:
    return model.fit(*_cells(x), *x.shape)


def _ease_closed_form(x: np.ndarray, lam: float) -> np.ndarray:
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


X5 = np.array(
    [
        [1, 1, 0, 0, 1],
        [1, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 1, 1, 1],
        [1, 0, 0, 1, 0],
    ],
    dtype=np.float64,
)


# --------------------------------------------------------------------------- EASE


@pytest.mark.parametrize("float64_max", [100, 1])  # float64 and float32 inverse paths
def test_ease_weights_equal_the_closed_form(monkeypatch, float64_max):
    monkeypatch.setattr(rankers, "EASE_FLOAT64_MAX_ITEMS", float64_max)
    model = _fit(EASE(lam=2.0), X5)
    expected = _ease_closed_form(X5, 2.0)
    np.testing.assert_allclose(model.weights, expected, rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(model.weights) == 0)
    assert model.restricted_to is None
    np.testing.assert_allclose(model.user_scores([2, 0]), X5[[2, 0]] @ expected, atol=1e-5)


@pytest.mark.parametrize("max_items", [20_000, 4])
def test_ease_sparse_and_dense_scoring_agree(monkeypatch, max_items):
    model = _fit(EASE(lam=2.0, max_items=max_items), X5)
    monkeypatch.setattr(rankers, "EASE_DENSE_SCORING", 1.0)  # never dense
    sparse = model.user_scores(np.arange(6))
    monkeypatch.setattr(rankers, "EASE_DENSE_SCORING", 0.0)  # always dense
    np.testing.assert_allclose(model.user_scores(np.arange(6)), sparse, rtol=1e-6)


def test_ease_with_huge_lambda_scores_by_co_occurrence():
    # B = -P / diag(P) -> (X'X off the diagonal) / lam as lam grows: EASE turns into counting
    # how often a movie was watched together with the user's movies.
    lam = 1e7
    model = _fit(EASE(lam=lam), X5)
    gram = X5.T @ X5
    np.fill_diagonal(gram, 0.0)
    np.testing.assert_allclose(model.weights * lam, gram, rtol=1e-3, atol=1e-3)
    scores = model.user_scores([1])[0]
    co = X5[1] @ gram
    assert np.argsort(-scores, kind="stable").tolist() == np.argsort(-co, kind="stable").tolist()


def test_ease_restricts_a_large_catalogue_to_the_most_watched_movies():
    # Column counts: 4, 3, 4, 3, 2 -> the 3 most watched are movies 0, 2 and (tie) 1.
    model = _fit(EASE(lam=2.0, max_items=3), X5)
    assert model.restricted_to == 3
    assert model.kept_movies.tolist() == [0, 1, 2]
    np.testing.assert_allclose(model.weights, _ease_closed_form(X5[:, :3], 2.0), atol=1e-5)
    scores = model.user_scores([0, 4])
    assert np.all(np.isneginf(scores[:, 3:])) and np.all(np.isfinite(scores[:, :3]))


# --------------------------------------------------------------------------- item-kNN

X43 = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 0]], dtype=np.float64)
# Columns: movie 0 = users {0,1,3}, movie 1 = {0,2,3}, movie 2 = {0,1}.
COS = {(0, 1): 2 / 3, (0, 2): 2 / np.sqrt(6), (1, 2): 1 / np.sqrt(6)}


def _cos(i: int, j: int) -> float:
    return COS[(min(i, j), max(i, j))]


def test_item_knn_keeps_the_k_most_similar_movies_with_their_cosines():
    one = _fit(ItemKNN(k=1), X43).similarity.toarray()
    expected = np.zeros((3, 3))
    expected[0, 2] = _cos(0, 2)  # movie 0: 0.816 (movie 2) beats 0.667 (movie 1)
    expected[1, 0] = _cos(0, 1)  # movie 1: 0.667 beats 0.408
    expected[2, 0] = _cos(0, 2)
    np.testing.assert_allclose(one, expected, rtol=1e-6)

    two = _fit(ItemKNN(k=2), X43).similarity.toarray()
    full = np.array(
        [[0, _cos(0, 1), _cos(0, 2)], [_cos(0, 1), 0, _cos(1, 2)], [_cos(0, 2), _cos(1, 2), 0]]
    )
    np.testing.assert_allclose(two, full, rtol=1e-6)
    assert (two > 0).sum(axis=1).tolist() == [2, 2, 2]  # itself never counts as a neighbour


def test_item_knn_scores_sum_similarities_of_watched_movies():
    model = _fit(ItemKNN(k=2), X43)
    # User 2 watched movie 1 only: score of j = similarity[1, j].
    np.testing.assert_allclose(model.user_scores([2])[0], [_cos(0, 1), 0, _cos(1, 2)], rtol=1e-6)
    # User 1 watched 0 and 2: movie 1 gets cos(0,1) + cos(2,1).
    assert model.user_scores([1])[0, 1] == pytest.approx(_cos(0, 1) + _cos(1, 2), rel=1e-6)


def test_item_knn_drops_movies_without_overlap():
    x = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float64)  # movie 2 shares no user
    sim = _fit(ItemKNN(k=5), x).similarity.toarray()
    assert (sim > 0).sum(axis=1).tolist() == [1, 1, 0]


# --------------------------------------------------------------------------- iALS


def _blocks(seed: int = 0, n_users: int = 40, n_movies: int = 30, density: float = 0.6):
    """Users 0..19 watch only movies 0..14, users 20..39 only 15..29, each cell w.p. density."""
    rng = np.random.default_rng(seed)
    group_u = np.arange(n_users) >= n_users // 2
    group_m = np.arange(n_movies) >= n_movies // 2
    same = group_u[:, None] == group_m[None, :]
    x = (same & (rng.random((n_users, n_movies)) < density)).astype(np.float64)
    return x, same


@pytest.mark.parametrize(
    "make",
    [lambda: ImplicitALS(factors=2, regularization=1.0, seed=3), lambda: EASE(lam=50.0), ItemKNN],
    ids=["ials", "ease", "knn"],
)
def test_rankers_put_unseen_own_group_movies_first_on_planted_blocks(make):
    x, same = _blocks()
    model = _fit(make(), x)
    scores = model.user_scores(np.arange(x.shape[0]))
    for u in range(x.shape[0]):
        unseen_own = same[u] & (x[u] == 0)
        assert unseen_own.any()
        assert scores[u, unseen_own].min() > scores[u, ~same[u]].max(), u


def test_ials_is_deterministic_given_the_seed():
    x, _ = _blocks()
    a = _fit(ImplicitALS(factors=4, seed=1), x).user_scores([0, 25])
    b = _fit(ImplicitALS(factors=4, seed=1), x).user_scores([0, 25])
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- pair rules


def test_both_rule_prefers_a_movie_both_like_over_one_only_one_loves():
    # Movie 0: both like it (0.5, 0.5); movie 1: a loves it (2.0), b is cold (0.1).
    a = np.array([[0.5, 2.0, 0.1, 0.0]])
    b = np.array([[0.5, 0.1, 0.0, 0.2]])
    assert np.argmax(combine_pair(a, b, "sum")) == 1  # 2.1 > 1.0
    both = combine_pair(a, b, "both")
    # Percentiles: a -> [3/4, 1, 2/4, 1/4], b -> [1, 2/4, 1/4, 3/4].
    np.testing.assert_allclose(both[0], [0.75, 0.5, 0.125, 0.1875])
    assert np.argmax(both) == 0


def test_both_rule_ranks_within_each_persons_candidates():
    # a has seen movie 3 (which it scores highest); percentiles are over the other three.
    a = np.array([[1.0, 2.0, 3.0, 9.0]])
    b = np.array([[3.0, 2.0, 1.0, 0.0]])
    seen_a = np.array([[False, False, False, True]])
    out = combine_pair(a, b, "both", seen_a, np.zeros_like(seen_a))
    np.testing.assert_allclose(out[0, :3], [1 / 3 * 1.0, 2 / 3 * 3 / 4, 1.0 * 2 / 4])
    assert np.isneginf(out[0, 3])


def test_pair_score_fn_masks_seen_movies_only_in_the_both_rule_and_rejects_unknown_rules():
    x, _ = _blocks()
    model = _fit(EASE(lam=5.0), x)
    ua, ub = np.array([0, 1]), np.array([2, 25])
    s = model.pair_score_fn("sum")(ua, ub)
    np.testing.assert_allclose(s, model.user_scores(ua) + model.user_scores(ub), rtol=1e-6)
    both = model.pair_score_fn("both")(ua, ub)
    seen = (x[ua] + x[ub]) > 0
    assert np.all(np.isneginf(both[seen])) and np.all(np.isfinite(both[~seen]))
    with pytest.raises(ValueError, match="unknown pair rule"):
        model.pair_score_fn("mean")


def test_bad_input_is_refused_in_one_line():
    with pytest.raises(ValueError, match="movie index out of range"):
        EASE().fit(np.array([0]), np.array([5]), np.array([4.0]), 1, 5)
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemKNN().user_scores([0])
    model = _fit(ItemKNN(k=2), X43)
    with pytest.raises(ValueError, match="user index out of range"):
        model.user_scores([4])


# --------------------------------------------------------------------------- tuning


class _Fixed(Ranker):
    """Scores every user with one fixed movie order (the grid value)."""

    def __init__(self, order: tuple[int, ...]) -> None:
        super().__init__()
        self.order = order

    def _fit(self, x) -> None:
        pass

    def _scores(self, users: np.ndarray) -> np.ndarray:
        s = np.empty(self.n_movies)
        s[list(self.order)] = -np.arange(self.n_movies, dtype=np.float64)
        return np.tile(s, (users.size, 1))


def _split_ratings():
    # Two users, 4 movies. Train: user 0 saw movie 0, user 1 saw movie 1.
    # Val: both loved movie 3, user 0 disliked movie 2 (not relevant).
    train = {"user": np.array([0, 1]), "movie": np.array([0, 1]), "rating": np.array([5.0, 5.0])}
    val = {
        "user": np.array([0, 1, 0]),
        "movie": np.array([3, 3, 2]),
        "rating": np.array([4.0, 4.5, 2.0]),
    }
    return train, val


def test_individual_ndcg_matches_hand_values():
    train, val = _split_ratings()
    model = _Fixed((2, 0, 1, 3)).fit(train["user"], train["movie"], train["rating"], 2, 4)
    # User 0 candidates 2, 1, 3 -> movie 3 at rank 3; user 1 candidates 2, 0, 3 -> rank 3.
    assert individual_ndcg(model, train, val, k=10) == pytest.approx(1 / np.log2(4))
    # With k=2 the relevant movie falls outside the top 2 for both users.
    assert individual_ndcg(model, train, val, k=2) == 0.0


def test_tune_picks_the_grid_value_with_the_best_validation_ndcg():
    train, val = _split_ratings()
    grid = [(2, 0, 1, 3), (3, 2, 1, 0), (2, 3, 0, 1)]  # movie 3 at candidate rank 3, 1, 2
    result = tune(_Fixed, grid, train, val, n_users=2, n_movies=4)
    assert result.best == (3, 2, 1, 0)
    assert result.best_ndcg == pytest.approx(1.0)
    assert [v for _, v in result.ndcg] == pytest.approx([1 / np.log2(4), 1.0, 1 / np.log2(3)])
    assert isinstance(result.model, _Fixed) and result.model.order == (3, 2, 1, 0)


def test_tune_ease_lambda_on_planted_blocks_returns_the_argmax():
    # Every lambda finds the planted blocks (NDCG far above chance); tune returns the best.
    x, same = _blocks(seed=2, density=0.5)
    rng = np.random.default_rng(0)
    user, movie = np.nonzero(x)
    held = rng.random(user.size) < 0.25
    rating = np.full(user.size, 4.0)
    train = {"user": user[~held], "movie": movie[~held], "rating": rating[~held]}
    val = {"user": user[held], "movie": movie[held], "rating": rating[held]}
    result = tune(lambda lam: EASE(lam=lam), [1.0, 10.0, 100.0], train, val, *x.shape)
    scores = dict(result.ndcg)
    assert result.best == max(scores, key=scores.get)
    assert result.best_ndcg == scores[result.best]
    orders = [tuple(np.random.default_rng(i).permutation(x.shape[1])) for i in range(5)]
    chance = np.mean([v for _, v in tune(_Fixed, orders, train, val, *x.shape).ndcg])
    assert min(scores.values()) > chance + 0.15  # about 0.5 against 0.2
