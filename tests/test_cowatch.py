"""The co-watch head: EASE inside the model, stored sparse, scoring any history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from duorec.model.cowatch import CoWatch, candidate_percentile, fit_cowatch
from duorec.model.fusion import with_rows
from duorec.model.ranking_baselines import EASE, combine_pair


def interactions(n_users: int = 30, n_movies: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    seen = rng.random((n_users, n_movies)) < 0.35
    seen[np.arange(n_users), rng.integers(0, n_movies, n_users)] = True  # nobody empty
    user, movie = np.nonzero(seen)
    rating = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=user.size)
    return {"user": user, "movie": movie, "rating": rating}


def fitted(
    train: dict[str, np.ndarray], n_users: int, n_movies: int, top_n: int, max_items: int = 20000
) -> CoWatch:
    fit = fit_cowatch(train, train, n_users, n_movies, [30.0], max_items, top_n)
    module = CoWatch(n_users, n_movies, len(train["user"]), len(fit.weight))
    module.set(fit, train["user"], train["movie"])
    return module


def test_scores_equal_ease_closed_form() -> None:
    """Kept whole (top_n >= movies), x_u B is the EASE baseline's score, and B itself is
    -P_ij / P_jj with a zero diagonal, P = (X'X + lam I)^-1 computed here by hand."""
    train = interactions()
    module = fitted(train, 30, 12, top_n=12)
    users = np.arange(30)
    ease = EASE(lam=30.0).fit(train["user"], train["movie"], train["rating"], 30, 12)
    ours = module.user_scores(torch.as_tensor(users)).numpy()
    np.testing.assert_allclose(ours, ease.user_scores(users), rtol=1e-5, atol=1e-6)
    x = np.zeros((30, 12))
    x[train["user"], train["movie"]] = 1.0
    p = np.linalg.inv(x.T @ x + 30.0 * np.eye(12))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(ours, x @ b, rtol=1e-4, atol=1e-5)


def test_sparse_rows_keep_the_largest_weights() -> None:
    train = interactions()
    whole, cut = fitted(train, 30, 12, top_n=12), fitted(train, 30, 12, top_n=3)
    dense = whole.weights().toarray()
    kept = cut.weights().toarray()
    assert ((kept != 0).sum(axis=1) <= 3).all()
    for row in range(12):
        threshold = np.sort(np.abs(dense[row]))[-3]
        np.testing.assert_array_equal(kept[row] != 0, np.abs(dense[row]) >= threshold)


def test_the_movie_scored_never_reaches_its_own_input() -> None:
    """A movie's score is the same whether or not the history holds it (zero diagonal):
    at ranking time the movie asked about is unseen, in training it is never an input."""
    train = interactions()
    module = fitted(train, 30, 12, top_n=12)
    history = torch.tensor([1, 4, 6])
    for m in (0, 5, 9):
        with_m = torch.cat([history, torch.tensor([m])])
        a = module.history_scores(torch.tensor([0]), torch.tensor([3]), history)
        b = module.history_scores(torch.tensor([0]), torch.tensor([4]), with_m)
        assert a[0, m] == b[0, m]
        others = torch.arange(12) != m
        assert not torch.equal(a[0, others], b[0, others])  # the history does matter


def test_loaded_weights_replace_the_ones_scored_before() -> None:
    """The scipy form of the weights is derived and cached: a state dict loaded after a first
    score (as a checkpoint loads into a built model) must be what later scores read."""
    train = interactions()
    module = fitted(train, 30, 12, top_n=5)
    fit = fit_cowatch(train, train, 30, 12, [3.0], 20000, 5)  # another lambda, same shapes
    other = CoWatch(30, 12, len(train["user"]), len(fit.weight))
    other.set(fit, train["user"], train["movie"])
    users = torch.arange(30)
    before = module.user_scores(users)
    assert not torch.allclose(before, other.user_scores(users))
    module.load_state_dict(other.state_dict())
    torch.testing.assert_close(module.user_scores(users), other.user_scores(users))


def test_a_history_from_outside_scores_like_a_stored_one() -> None:
    train = interactions()
    module = fitted(train, 30, 12, top_n=5)
    own = train["movie"][train["user"] == 7]
    outside = module.history_scores(
        torch.tensor([0]), torch.tensor([len(own)]), torch.as_tensor(own)
    )
    torch.testing.assert_close(outside, module.user_scores(torch.tensor([7])))


def test_both_rule_equals_the_ranking_baselines() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(4, 20)).astype(np.float32)
    scores[:, 5] = scores[:, 6]  # a tie
    seen = rng.random((4, 20)) < 0.3
    q = candidate_percentile(torch.as_tensor(scores), torch.as_tensor(seen)).numpy()
    ours = q[:2] * q[2:]
    theirs = combine_pair(scores[:2], scores[2:], "both", seen[:2], seen[2:])
    unseen = ~(seen[:2] | seen[2:])
    np.testing.assert_allclose(ours[unseen], theirs[unseen], rtol=1e-6)
    assert (ours[~unseen] == 0).all()


def test_a_cut_catalogue_scores_its_rest_zero() -> None:
    train = interactions()
    module = fitted(train, 30, 12, top_n=12, max_items=8)
    counts = np.bincount(train["movie"], minlength=12)
    rest = np.sort(np.argsort(-counts, kind="stable")[8:])
    scores = module.user_scores(torch.arange(30)).numpy()
    assert (scores[:, rest] == 0).all()
    ease = EASE(lam=30.0, max_items=8).fit(train["user"], train["movie"], train["rating"], 30, 12)
    kept = np.setdiff1d(np.arange(12), rest)
    np.testing.assert_allclose(
        scores[:, kept], ease.user_scores(np.arange(30))[:, kept], rtol=1e-5, atol=1e-6
    )


def test_bad_top_n_is_refused() -> None:
    train = interactions()
    with pytest.raises(ValueError, match="top_n"):
        fit_cowatch(train, train, 30, 12, [30.0], 100, 0)


@pytest.mark.parametrize("target", ["mean", "min"])
def test_the_shortlist_scores_the_same_top_movies_exactly(target: str) -> None:
    """With a shortlist the pair MLP runs on each pair's best movies by the cheap bound; the
    movies it keeps get exactly the full score, and the top of the ranking is the same.
    (The mean's bound is one product with the mean user vector, min's the min of two.)"""
    from conftest import model_kwargs

    from duorec.model.module import DuoModule

    train = interactions(n_users=30, n_movies=40, seed=1)
    fit = fit_cowatch(train, train, 30, 40, [30.0], 20000, 40)
    kwargs = {"rating_range": (0.5, 5.0), **model_kwargs(rank_rating_weight=1.0, target=target)}
    kwargs.pop("max_people_per_movie"), kwargs.pop("history_max")
    torch.manual_seed(0)
    model = DuoModule(
        n_users=30,
        n_movies=40,
        n_user_features=3,
        n_movie_features=3,
        n_people=0,
        max_people=0,
        n_cowatch=(len(train["user"]), len(fit.weight)),
        **kwargs,
    ).eval()
    model.cowatch.set(fit, train["user"], train["movie"])
    a, b = torch.arange(0, 10), torch.arange(10, 20)
    movies = model.encode_movies()
    full = model.rank_grid(torch.stack([a, b], 1), movies, None)
    model.rank_shortlist = 8
    short = model.rank_grid(torch.stack([a, b], 1), movies, None)
    kept = torch.isfinite(short)
    assert (kept.sum(1) == 8).all()
    torch.testing.assert_close(short[kept], full[kept])
    seen = model.cowatch.seen(a) | model.cowatch.seen(b)
    best_full = full.masked_fill(seen, float("-inf")).argmax(1)
    assert torch.equal(short.argmax(1), best_full)
    # the shortlist's vectors are read from any layout alike: column-major (the product's),
    # and column-major with the row-major original attached (what serving.movie_matrix holds)
    columns = movies.T.contiguous().T
    for layout in (columns, with_rows(movies)):
        assert torch.equal(model.rank_grid(torch.stack([a, b], 1), layout, None), short)
    # restricted to candidate movies (a filter), the shortlist is taken among them
    candidates = torch.arange(0, 40, 2)
    within = model.rank_grid(
        torch.stack([a, b], 1), movies[candidates], None, candidates=candidates
    )
    assert within.shape == (10, 20)
    kept, unseen = torch.isfinite(within), ~seen[:, candidates]
    assert ((kept & unseen).sum(1) == unseen.sum(1).clamp(max=8)).all()  # unseen ones first
    torch.testing.assert_close(within[kept], full[:, candidates][kept])


def test_candidate_percentile_is_the_average_rank_among_unseen_movies() -> None:
    """Hand-computed: unseen scores [3, 1, 1, 5] (one seen movie) rank 3, 1.5, 1.5, 4 of 4;
    and on random rows with many ties it equals the rank a full sort by searching gives."""
    from duorec.model.cowatch import candidate_percentile

    scores = torch.tensor([[3.0, 1.0, 9.0, 1.0, 5.0]])
    seen = torch.tensor([[False, False, True, False, False]])
    got = candidate_percentile(scores, seen)
    torch.testing.assert_close(got, torch.tensor([[0.75, 0.375, 0.0, 0.375, 1.0]]))
    torch.manual_seed(0)
    scores = torch.randn(3, 500)
    scores[:, :200] = 0.0  # ties, as movies no history points at
    seen = torch.rand(3, 500) < 0.1
    masked = scores.masked_fill(seen, float("-inf"))
    ordered = masked.sort(dim=1).values.contiguous()
    below = torch.searchsorted(ordered, masked.contiguous(), right=False)
    at_or_below = torch.searchsorted(ordered, masked.contiguous(), right=True)
    n_seen = seen.sum(dim=1, keepdim=True)
    rank = (below + at_or_below + 1).double() / 2 - n_seen
    want = torch.where(seen, 0.0, rank / (500 - n_seen)).float()
    assert torch.equal(candidate_percentile(scores, seen), want)
