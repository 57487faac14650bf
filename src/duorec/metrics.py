"""Evaluation metrics for pair predictions: regression, per-pair ranking, paired bootstrap.

Pure numpy, so the same code scores the Lightning model, the baselines and anything read
back from disk, and every number in a results table comes from one implementation.

Protocol (DESIGN.md, "Evaluation protocol"):

* Regression: pair RMSE and MAE in stars, and scaled MSE = MSE / (r_max - r_min)^2, the
  scale-free number the original study quoted.
* Ranking, per test pair (a, b): the relevant movies are those both a and b rated
  >= threshold (4 stars) in TEST; the candidates are every movie neither a nor b rated in
  TRAIN; candidates are ranked by the model's score. NDCG@k uses binary relevance and the
  log2 discount, its ideal DCG puts min(k, |relevant|) hits on top; Recall@k = hits /
  |relevant| (the common definition, so it cannot reach 1 when |relevant| > k); HitRate@k = 1
  if any relevant movie is in the top k. Pairs without a relevant movie say nothing about a
  ranking and are left out of every average.
* Paired bootstrap over the same triples (or pairs) for the difference model - baseline, so
  "beats the baseline" comes with an interval rather than a bare point estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

PAIR_TARGETS = ("mean", "min", "max")

#: Scores for a batch of pairs: (user_a [B], user_b [B]) -> [B, n_movies], higher = better.
PairScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Train movies per user as CSR: (indptr [n_users + 1], indices [nnz]).
SeenCSR = tuple[np.ndarray, np.ndarray]


class TripleLike(Protocol):
    """Anything with the five columns of pair triples (e.g. `duorec.data.pairs.Triples`)."""

    user_a: np.ndarray
    user_b: np.ndarray
    movie: np.ndarray
    rating_a: np.ndarray
    rating_b: np.ndarray


# --------------------------------------------------------------------------- regression


def pair_target(rating_a: np.ndarray, rating_b: np.ndarray, how: str = "mean") -> np.ndarray:
    """The rating a pair gives a movie: `mean` (default), `min` (least misery) or `max`
    (most pleasure) of the two individual ratings, as float32."""
    a = np.asarray(rating_a, dtype=np.float32)
    b = np.asarray(rating_b, dtype=np.float32)
    if how == "mean":
        return ((a + b) * np.float32(0.5)).astype(np.float32)
    if how == "min":
        return np.minimum(a, b)
    if how == "max":
        return np.maximum(a, b)
    raise ValueError(f"unknown pair target {how!r}: use one of {PAIR_TARGETS}")


def regression_metrics(
    pred: np.ndarray, target: np.ndarray, rating_range: tuple[float, float]
) -> dict[str, float]:
    """Pair RMSE and MAE (stars), scaled MSE (MSE / (r_max - r_min)^2) and the triple count.

    Computed in float64 so that millions of float32 errors sum without drift.
    """
    pred = np.asarray(pred, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in length: {pred.size} vs {target.size}")
    if pred.size == 0:
        raise ValueError("no triples to evaluate")
    r_min, r_max = rating_range
    if not r_max > r_min:
        raise ValueError(f"rating_range must have r_max > r_min, got {rating_range}")
    err = pred - target
    mse = float(np.mean(err * err))
    return {
        "pair_rmse": float(np.sqrt(mse)),
        "pair_mae": float(np.mean(np.abs(err))),
        "scaled_mse": mse / float(r_max - r_min) ** 2,
        "n_triples": int(pred.size),
    }


# --------------------------------------------------------------------------- ranking inputs


def seen_csr(user: np.ndarray, movie: np.ndarray, n_users: int) -> SeenCSR:
    """Train movies per user as CSR (indptr, indices), each row sorted and without repeats.

    This is the mask of movies that can never be recommended to a pair containing the user.
    """
    user = np.asarray(user, dtype=np.int64)
    movie = np.asarray(movie, dtype=np.int64)
    if user.size and (user.min() < 0 or user.max() >= n_users):
        raise ValueError(f"user index out of range [0, {n_users})")
    order = np.lexsort((movie, user))
    u, m = user[order], movie[order]
    keep = np.ones(u.size, dtype=bool)
    keep[1:] = (u[1:] != u[:-1]) | (m[1:] != m[:-1])
    u, m = u[keep], m[keep]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
    return indptr, m


def relevant_by_pair(
    triples: TripleLike, threshold: float = 4.0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Group TEST triples into (pairs [P, 2] int64, relevant movies of each pair).

    A movie is relevant to (a, b) when both rated it >= `threshold`. Only pairs with at
    least one relevant movie are returned (the others are excluded from ranking metrics
    anyway). Pairs are put in canonical order a < b and sorted; movies sorted per pair.
    """
    ua = np.asarray(triples.user_a, dtype=np.int64)
    ub = np.asarray(triples.user_b, dtype=np.int64)
    mv = np.asarray(triples.movie, dtype=np.int64)
    good = (np.asarray(triples.rating_a) >= threshold) & (np.asarray(triples.rating_b) >= threshold)
    a, b, m = np.minimum(ua, ub)[good], np.maximum(ua, ub)[good], mv[good]
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64), []
    order = np.lexsort((m, b, a))
    a, b, m = a[order], b[order], m[order]
    new = np.ones(a.size, dtype=bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(new)
    pairs = np.stack([a[starts], b[starts]], axis=1)
    # Repeated (pair, movie) rows would count a hit twice: drop them.
    return pairs, [np.unique(g) for g in np.split(m, starts[1:])]


# --------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class RankingResult:
    """Per-pair ranking metrics (for bootstrap) and their averages (`summary`)."""

    pairs: np.ndarray  # [P, 2], only pairs with >= 1 relevant movie
    ndcg: np.ndarray  # [P] float64
    recall: np.ndarray  # [P]
    hit_rate: np.ndarray  # [P], 0 or 1
    k: int

    def summary(self) -> dict[str, float]:
        """Means over pairs; NaN when no pair had a relevant movie (nothing to rank)."""
        n = len(self.ndcg)
        mean = (lambda x: float(np.mean(x))) if n else (lambda x: float("nan"))
        return {
            "ndcg": mean(self.ndcg),
            "recall": mean(self.recall),
            "hit_rate": mean(self.hit_rate),
            "n_pairs": n,
            "k": self.k,
        }


def _csr_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray):
    """(position in `rows`, column) of every stored entry of the given CSR rows."""
    start, stop = indptr[rows], indptr[rows + 1]
    length = stop - start
    owner = np.repeat(np.arange(rows.size), length)
    offset = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    return owner, indices[np.repeat(start, length) + offset]


def rank_pairs(
    pairs: np.ndarray,
    relevant: Sequence[np.ndarray],
    seen: SeenCSR,
    scores: PairScoreFn | np.ndarray,
    k: int = 10,
    batch_size: int = 256,
) -> RankingResult:
    """Rank every unseen movie for each pair and score the top k against its relevant set.

    `scores` is either a function (user_a [B], user_b [B]) -> [B, n_movies], called on
    batches of `batch_size` pairs so memory stays O(batch * n_movies), or a precomputed
    [P, n_movies] matrix aligned with `pairs`. Movies either person rated in train get -inf
    and so are never recommended (a pair with fewer than k candidates gets fewer than k
    recommendations; -inf slots never count as hits). Ties in score are broken towards the
    lower movie index, so results are deterministic.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(relevant) != len(pairs):
        raise ValueError(f"{len(pairs)} pairs but {len(relevant)} relevant sets")
    rel = [np.unique(np.asarray(r, dtype=np.int64)) for r in relevant]
    n_rel_all = np.array([r.size for r in rel], dtype=np.int64)
    keep = np.flatnonzero(n_rel_all > 0)
    matrix = None if callable(scores) else np.asarray(scores)
    if matrix is not None and matrix.shape[0] != len(pairs):
        raise ValueError(f"score matrix has {matrix.shape[0]} rows for {len(pairs)} pairs")
    indptr, indices = seen

    # discount[j] = 1 / log2(j + 2) for rank j = 0..k-1; idcg[n] = sum of the first n.
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    idcg = np.concatenate([[0.0], np.cumsum(discount)])

    ndcg = np.zeros(keep.size)
    recall = np.zeros(keep.size)
    hit = np.zeros(keep.size)
    for lo in range(0, keep.size, batch_size):
        sel = keep[lo : lo + batch_size]
        ua, ub = pairs[sel, 0], pairs[sel, 1]
        s = matrix[sel] if matrix is not None else scores(ua, ub)
        s = np.array(s, dtype=np.float64, copy=True)  # we write -inf into it
        if s.ndim != 2 or s.shape[0] != sel.size:
            raise ValueError(f"scores for {sel.size} pairs have shape {s.shape}")
        n_movies = s.shape[1]
        for users in (ua, ub):
            row, col = _csr_rows(indptr, indices, users)
            s[row, col] = -np.inf
        kk = min(k, n_movies)
        if kk < n_movies:
            top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        else:
            top = np.broadcast_to(np.arange(n_movies), s.shape).copy()
        top_s = np.take_along_axis(s, top, axis=1)
        # Sort the k winners by score descending, then movie index ascending.
        order = np.lexsort((top, -top_s), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        top_s = np.take_along_axis(top_s, order, axis=1)
        # Hits: membership of (row, movie) keys in the batch's relevant (row, movie) keys.
        rel_rows = np.repeat(np.arange(sel.size), n_rel_all[sel])
        rel_keys = rel_rows * n_movies + np.concatenate([rel[i] for i in sel])
        top_keys = np.arange(sel.size)[:, None] * n_movies + top
        hits = np.isin(top_keys, rel_keys) & np.isfinite(top_s)
        n_rel = n_rel_all[sel]
        dcg = hits @ discount[:kk]
        ndcg[lo : lo + sel.size] = dcg / idcg[np.minimum(n_rel, k)]
        n_hit = hits.sum(axis=1)
        recall[lo : lo + sel.size] = n_hit / n_rel
        hit[lo : lo + sel.size] = n_hit > 0
    return RankingResult(pairs=pairs[keep], ndcg=ndcg, recall=recall, hit_rate=hit, k=k)


def ranking_metrics(
    scores: PairScoreFn | np.ndarray,
    pairs: np.ndarray,
    relevant: Sequence[np.ndarray],
    seen: SeenCSR,
    k: int = 10,
    batch_size: int = 256,
) -> dict[str, float]:
    """NDCG@k, Recall@k, HitRate@k averaged over pairs with a relevant movie, and n_pairs.

    Shorthand for `rank_pairs(...).summary()`; use `rank_pairs` for per-pair values.
    """
    return rank_pairs(pairs, relevant, seen, scores, k=k, batch_size=batch_size).summary()


# --------------------------------------------------------------------------- bootstrap


def bootstrap_diff_ci(
    errors_model: np.ndarray,
    errors_baseline: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    stat: str = "rmse",
    alpha: float = 0.05,
    max_chunk_elems: int = 1 << 22,
) -> tuple[float, float, float]:
    """Paired bootstrap of stat(model) - stat(baseline): (point difference, low, high).

    Both arrays are aligned item by item (the same triples, or the same pairs for ranking)
    and each resample draws the same items for both, so the interval reflects the
    difference between models rather than the spread of the test set. `stat="rmse"` takes
    signed or absolute errors and compares sqrt(mean(e^2)); `stat="mean"` compares plain
    means (absolute errors for MAE, per-pair NDCG or recall). The interval is the
    percentile interval at level 1 - alpha. Resamples are drawn in chunks of at most
    `max_chunk_elems` indices to bound memory; results depend only on `seed`.
    """
    m = np.asarray(errors_model, dtype=np.float64).ravel()
    b = np.asarray(errors_baseline, dtype=np.float64).ravel()
    if m.shape != b.shape:
        raise ValueError(f"model and baseline arrays differ in length: {m.size} vs {b.size}")
    if m.size == 0:
        raise ValueError("nothing to bootstrap")
    if stat == "rmse":
        m, b = m * m, b * b

        def finish(x: np.ndarray) -> np.ndarray:
            return np.sqrt(x)
    elif stat == "mean":

        def finish(x: np.ndarray) -> np.ndarray:
            return x
    else:
        raise ValueError(f"unknown stat {stat!r}: use 'rmse' or 'mean'")
    n = m.size
    diff = float(finish(np.mean(m)) - finish(np.mean(b)))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, max_chunk_elems // n))
    diffs = np.empty(n_boot)
    for lo in range(0, n_boot, chunk):
        c = min(chunk, n_boot - lo)
        idx = rng.integers(0, n, size=(c, n))
        diffs[lo : lo + c] = finish(m[idx].mean(axis=1)) - finish(b[idx].mean(axis=1))
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return diff, float(low), float(high)
