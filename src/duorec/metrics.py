"""Evaluation metrics for pair predictions: regression, per-pair ranking, paired bootstrap.

Pure numpy, so the same code scores the Lightning model, the baselines and anything read
back from disk, and every number in a results table comes from one implementation.

Protocol:

* Regression: pair RMSE and MAE in stars, and scaled MSE = MSE / (r_max - r_min)^2, the
  scale-free number the original study quoted.
* Ranking, per test pair (a, b): the relevant movies are those both a and b rated
  >= threshold (4 stars) in TEST; the candidates are every movie neither a nor b rated in
  their history before test (TRAIN, or train + validation under a time-ordered split:
  `duorec.eval.history.history_splits`); candidates are ranked by the model's score
  (`duorec.topk`, the path recommendations take). NDCG@k uses binary relevance and the
  log2 discount, its ideal DCG puts min(k, |relevant|) hits on top; Recall@k = hits /
  |relevant| (the common definition, so it cannot reach 1 when |relevant| > k); HitRate@k = 1
  if any relevant movie is in the top k. Pairs without a relevant movie say nothing about a
  ranking and are left out of every average.
* Popularity concentration of the lists: the share of pairs whose top k holds the most
  frequent title, and the share of picks among the most-rated movies.
* Paired bootstrap over the same triples (or pairs) for the difference model - baseline, so
  "beats the baseline" comes with an interval rather than a bare point estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from duorec.aggregate import AGGREGATES, aggregate
from duorec.csr import CSR
from duorec.topk import PairScoreFn, TopK, top_k_unseen

PAIR_TARGETS = AGGREGATES


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
    (most pleasure) of the two individual ratings, as float32 (`duorec.aggregate`)."""
    a = np.asarray(rating_a, dtype=np.float32)
    b = np.asarray(rating_b, dtype=np.float32)
    return aggregate(a, b, how)


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
    top: np.ndarray  # [P, k] the ranked lists (-1 in empty slots)

    def coverage(self, n_movies: int) -> float:
        """Share of the catalogue appearing in at least one pair's top k."""
        shown = np.unique(self.top[self.top >= 0])
        return shown.size / n_movies if n_movies else float("nan")

    def top_title(self) -> tuple[int, float]:
        """(the movie in the most lists, the share of lists holding it); (-1, NaN) when none.

        Popularity concentration: a recommender that shows one film to a third of all pairs
        says little about any of them, whatever its NDCG.
        """
        shown = self.top[self.top >= 0]
        if len(self.top) == 0 or shown.size == 0:
            return -1, float("nan")
        # a movie appears at most once per list (top_k_unseen), so its count is its lists
        counts = np.bincount(shown)
        best = int(np.argmax(counts))
        return best, float(counts[best] / len(self.top))

    def head_share(self, head: np.ndarray) -> float:
        """Share of the recommended slots (filled ones) taken by movies in `head`, e.g. the
        100 most-rated films: how much of the lists the blockbusters fill."""
        shown = self.top[self.top >= 0]
        if shown.size == 0:
            return float("nan")
        return float(np.isin(shown, np.asarray(head, dtype=np.int64)).mean())

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


def ranking_metrics(
    top: np.ndarray, relevant: Sequence[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pair (NDCG@k, Recall@k, HitRate@k) of ranked lists against relevant sets.

    `top` [P, <= k] holds each pair's movies best first, -1 in empty slots (never a hit);
    `relevant[p]` holds pair p's relevant movies, without repeats, at least one. Binary
    relevance, log2 discount; the ideal DCG puts min(k, |relevant|) hits on top.
    """
    top = np.asarray(top, dtype=np.int64)
    n_rel = np.array([r.size for r in relevant], dtype=np.int64)
    if top.shape[0] != n_rel.size:
        raise ValueError(f"{top.shape[0]} ranked lists but {n_rel.size} relevant sets")
    kk = top.shape[1]
    # discount[j] = 1 / log2(j + 2) for rank j = 0..k-1; idcg[n] = sum of the first n.
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    idcg = np.concatenate([[0.0], np.cumsum(discount)])
    # Hits: membership of (row, movie) keys in the relevant (row, movie) keys.
    flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in relevant] + [top.ravel()])
    width = int(flat.max(initial=0)) + 1
    rel_keys = np.repeat(np.arange(n_rel.size), n_rel) * width + flat[: n_rel.sum()]
    top_keys = np.arange(top.shape[0])[:, None] * width + top
    hits = np.isin(top_keys, rel_keys) & (top >= 0)
    n_hit = hits.sum(axis=1)
    return (hits @ discount[:kk]) / idcg[np.minimum(n_rel, k)], n_hit / n_rel, n_hit > 0


def rank_pairs(
    pairs: np.ndarray,
    relevant: Sequence[np.ndarray],
    seen: CSR,
    scores: PairScoreFn | np.ndarray,
    k: int = 10,
    batch_size: int = 256,
    allowed: np.ndarray | None = None,
    rerank: Callable[[TopK], TopK] | None = None,
    depth: int | None = None,
) -> RankingResult:
    """Rank every unseen movie for each pair and score the top k against its relevant set.

    The ranking is `duorec.topk.top_k_unseen` (the path recommendations take), with
    `seen` the train movies per user; `scores` is a `PairScoreFn` called on batches of
    `batch_size` pairs, or a precomputed [P, n_movies] matrix aligned with `pairs`. A pair
    with fewer than k candidates gets fewer than k recommendations. Pairs without a relevant
    movie are left out. `allowed` restricts the candidates (the long-tail view); `rerank`
    re-orders the best `depth` candidates into the final k (a diversity re-rank).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(relevant) != len(pairs):
        raise ValueError(f"{len(pairs)} pairs but {len(relevant)} relevant sets")
    rel = [np.unique(np.asarray(r, dtype=np.int64)) for r in relevant]
    keep = np.flatnonzero([r.size > 0 for r in rel])
    matrix = None if callable(scores) else np.asarray(scores)
    if matrix is not None and matrix.shape[0] != len(pairs):
        raise ValueError(f"score matrix has {matrix.shape[0]} rows for {len(pairs)} pairs")
    ndcg, recall, hit = (np.zeros(keep.size) for _ in range(3))
    tops = []
    for lo in range(0, keep.size, batch_size):
        sel = keep[lo : lo + batch_size]
        batch = scores if matrix is None else matrix[sel]
        ua, ub = pairs[sel, 0], pairs[sel, 1]
        if rerank is None:
            ranked = top_k_unseen(batch, ua, ub, seen, k, allowed, batch_size=sel.size)
        else:
            deep = top_k_unseen(batch, ua, ub, seen, depth or k, allowed, batch_size=sel.size)
            ranked = rerank(deep)
        values = ranking_metrics(ranked.movie, [rel[i] for i in sel], k)
        for out, value in zip((ndcg, recall, hit), values, strict=True):
            out[lo : lo + sel.size] = value
        tops.append(ranked.movie)
    top = np.concatenate(tops) if tops else np.zeros((0, k), dtype=np.int64)
    return RankingResult(pairs=pairs[keep], ndcg=ndcg, recall=recall, hit_rate=hit, k=k, top=top)


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
