"""The one ranking path: the k best movies a pair has not seen, by any scorer.

Evaluation (NDCG / Recall / HitRate in `duorec.metrics.rank_pairs`) and serving
(`duorec.serving`) both rank through `top_k_unseen`, so what is measured is what is served.

The scorer interface (`PairScoreFn`), which the model and every ranking baseline provide::

    pair_scores(user_a: np.ndarray, user_b: np.ndarray) -> np.ndarray

* `user_a`, `user_b`: int64 user indices [B] (indices of the prepared data set, not MovieLens
  ids), aligned: row i is the pair (user_a[i], user_b[i]).
* returns [B, n_movies] scores, any float dtype, one column per movie index; higher = better.
  Only the order within a row matters (ratings, counts, similarities all work); the values
  are compared in float64. -inf is allowed and means "never recommend" (a scorer may leave
  movies it did not score at -inf); NaN is not.
* it need not be symmetric, nor mask anything itself: seen movies and the allowed-movie
  restriction are applied here, after it is called.
* it is called on batches of `batch_size` pairs, so memory stays O(batch * n_movies).
* instead of the grid it may return a `Shortlist`: each pair's scores of a few movies, the
  rest -inf. Same ranking, read from [B, S] values instead of [B, n_movies].

Examples: `duorec.eval.scoring.model_pair_scorer(model)`, `RatingBaseline.pair_score_fn()`.
A precomputed [P, n_movies] matrix (or `Shortlist`) aligned with the pairs may be passed
instead of a callable.

Order: score descending, then movie index ascending among the k selected. Slots beyond a
pair's qualifying movies (fewer than k unseen, allowed movies) hold movie -1, score -inf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from duorec.csr import CSR, csr_rows


@dataclass(frozen=True, eq=False)  # (no field-wise ==: the fields are arrays)
class Shortlist:
    """A [B, n_movies] score grid held as each row's few finite scores; -inf everywhere else.

    What a scorer that shortlists produces (`DuoModule` over a large catalogue scores each
    pair's 1,000 best movies by a cheap bound): masking and selecting over [B, S] values
    instead of [B, n_movies] takes 0.25-0.4 ms of a recommendation at 87k movies instead of
    0.6 (benchmarks/README.md). Ranked exactly as the dense grid would be.
    """

    movie: np.ndarray  # [B, S] movie indices, distinct within a row
    score: np.ndarray  # [B, S]
    n_movies: int

    def __len__(self) -> int:
        return len(self.movie)

    def __getitem__(self, rows: slice) -> Shortlist:
        """The pairs `rows`, sliced as a grid's rows are."""
        return Shortlist(self.movie[rows], self.score[rows], self.n_movies)

    def dense(self) -> np.ndarray:
        """The [B, n_movies] float64 grid it stands for."""
        grid = np.full((len(self.movie), self.n_movies), -np.inf)
        np.put_along_axis(grid, np.asarray(self.movie, dtype=np.int64), self.score, axis=1)
        return grid


#: (user_a [B], user_b [B]) -> [B, n_movies] scores (or a `Shortlist`), higher = better (see
#: the module docstring).
PairScoreFn = Callable[[np.ndarray, np.ndarray], "np.ndarray | Shortlist"]


class TopK(NamedTuple):
    """Best k per pair, best first: movie indices (-1 = empty slot) and their scores."""

    movie: np.ndarray  # [B, k] int64
    score: np.ndarray  # [B, k] float64, -inf in empty slots


def top_k_unseen(
    pair_scores: PairScoreFn | np.ndarray,
    user_a: np.ndarray,
    user_b: np.ndarray,
    seen: CSR,
    k: int,
    allowed: np.ndarray | None = None,
    batch_size: int = 256,
) -> TopK:
    """The k highest-scoring movies for each pair that neither person has seen.

    `seen` is a CSR of movie indices per user (`duorec.csr.csr_from_pairs(user, movie,
    n_users)`: train ratings for evaluation, every split for serving). `allowed` (movie
    indices) restricts the candidates further, e.g. to movies passing a filter. The result
    has min(k, n_movies) columns.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    user_a = np.asarray(user_a, dtype=np.int64).ravel()
    user_b = np.asarray(user_b, dtype=np.int64).ravel()
    if user_a.shape != user_b.shape:
        raise ValueError(f"user_a and user_b differ in length: {user_a.size} vs {user_b.size}")
    matrix = _precomputed(pair_scores)
    if matrix is not None and len(matrix) != user_a.size:
        raise ValueError(f"score matrix has {len(matrix)} rows for {user_a.size} pairs")
    parts = []
    for lo in range(0, user_a.size, batch_size):
        ua, ub = user_a[lo : lo + batch_size], user_b[lo : lo + batch_size]
        s = matrix[lo : lo + batch_size] if matrix is not None else pair_scores(ua, ub)  # type: ignore[operator]
        parts.append(_select(s, (ua, ub), seen, k, allowed))
    if not parts:
        empty = np.zeros((0, k))
        return TopK(empty.astype(np.int64), empty)
    return TopK(*(np.concatenate(column) for column in zip(*parts, strict=True)))


#: members [B, k] -> [B, n_movies] scores: a `PairScoreFn` for groups of k people.
GroupScoreFn = Callable[[np.ndarray], np.ndarray]


def top_k_unseen_groups(
    group_scores: GroupScoreFn | np.ndarray,
    members: np.ndarray,
    seen: CSR,
    k: int,
    allowed: np.ndarray | None = None,
    batch_size: int = 256,
) -> TopK:
    """`top_k_unseen` for groups: the k best movies that no member [B, size] has seen.

    Same masking, selection and order as for pairs (the pair path is this one with two
    members); `group_scores` is called on batches of member rows, or is a [B, n_movies]
    matrix aligned with `members`.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    members = np.asarray(members, dtype=np.int64)
    if members.ndim != 2:
        raise ValueError(f"members must be [groups, size], got shape {members.shape}")
    matrix = _precomputed(group_scores)
    if matrix is not None and len(matrix) != len(members):
        raise ValueError(f"score matrix has {len(matrix)} rows for {len(members)} groups")
    parts = []
    for lo in range(0, len(members), batch_size):
        rows = members[lo : lo + batch_size]
        s = matrix[lo : lo + batch_size] if matrix is not None else group_scores(rows)  # type: ignore[operator]
        parts.append(_select(s, tuple(rows.T), seen, k, allowed))
    if not parts:
        empty = np.zeros((0, k))
        return TopK(empty.astype(np.int64), empty)
    return TopK(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _precomputed(scores: object) -> np.ndarray | Shortlist | None:
    """A precomputed grid as an array (or the `Shortlist` itself); None for a scorer."""
    if callable(scores):
        return None
    return scores if isinstance(scores, Shortlist) else np.asarray(scores)


def _select(
    scores: np.ndarray | Shortlist,
    people: tuple[np.ndarray, ...],
    seen: CSR,
    k: int,
    allowed: np.ndarray | None,
) -> TopK:
    """Mask every person's seen movies, then pick and order the best k of one batch."""
    s, movie, n_movies = _masked(scores, people, seen, allowed)
    kk = min(k, s.shape[1])
    if kk < s.shape[1]:
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    else:
        top = np.broadcast_to(np.arange(s.shape[1]), s.shape).copy()
    top_s = np.take_along_axis(s, top, axis=1)
    if movie is not None:  # a shortlist's positions -> movie indices
        top = np.take_along_axis(movie, top, axis=1)
    order = np.lexsort((top, -top_s), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    top_s = np.take_along_axis(top_s, order, axis=1)
    pad = min(k, n_movies) - kk  # a shortlist shorter than k: empty slots, as the grid has
    if pad:
        top = np.pad(top, ((0, 0), (0, pad)), constant_values=-1)
        top_s = np.pad(top_s, ((0, 0), (0, pad)), constant_values=-np.inf)
    return TopK(np.where(np.isfinite(top_s), top, -1), top_s)


def _masked(
    scores: np.ndarray | Shortlist,
    people: tuple[np.ndarray, ...],
    seen: CSR,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(float64 scores with every seen or disallowed movie at -inf, the movie of each column:
    None for a grid, where column j is movie j; n_movies)."""
    n_pairs = people[0].size
    if isinstance(scores, Shortlist):
        movie = np.asarray(scores.movie, dtype=np.int64)
        s = np.array(scores.score, dtype=np.float64, copy=True)  # we write -inf into it
        if s.ndim != 2 or s.shape != movie.shape or len(s) != n_pairs:
            raise ValueError(f"shortlist for {n_pairs} pairs has shapes {movie.shape}, {s.shape}")
        blocked = np.zeros((n_pairs, scores.n_movies), dtype=bool)
        for users in people:
            blocked[csr_rows(seen, users)] = True
        if allowed is not None:  # (a broadcast, not a boolean index: 100x faster)
            blocked |= _blocked(allowed, scores.n_movies)
        s[np.take_along_axis(blocked, movie, axis=1)] = -np.inf
        return s, movie, scores.n_movies
    s = np.array(scores, dtype=np.float64, copy=True)  # we write -inf into it
    if s.ndim != 2 or s.shape[0] != n_pairs:
        raise ValueError(f"scores for {n_pairs} pairs have shape {s.shape}")
    for users in people:
        s[csr_rows(seen, users)] = -np.inf
    if allowed is not None:
        np.copyto(s, -np.inf, where=_blocked(allowed, s.shape[1]))
    return s, None, s.shape[1]


def _blocked(allowed: np.ndarray, n_movies: int) -> np.ndarray:
    """[n_movies] bool: the movies outside `allowed` (movie indices)."""
    blocked = np.ones(n_movies, dtype=bool)
    blocked[np.asarray(allowed, dtype=np.int64)] = False
    return blocked


def diversify(top: TopK, vectors: np.ndarray, k: int, diversity: float) -> TopK:
    """Re-rank each row's candidates by maximal marginal relevance (Carbonell & Goldstein 1998).

    `top` holds more candidates than needed (say 5k), best first; `vectors` [n_movies, d] are
    the movies' vectors (cosine similarity between them says "alike"). Greedily, the next pick
    maximises (1 - diversity) * relevance - diversity * (max similarity to the picks so far),
    relevance being the score min-max scaled within the row. diversity = 0 keeps the order;
    1 picks the least alike. It breaks up lists of five films of one franchise at some cost
    in accuracy, which evaluation reports.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    if diversity == 0.0:
        return TopK(top.movie[:, :k], top.score[:, :k])
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    movies, scores = [], []
    for row_movies, row_scores in zip(top.movie, top.score, strict=True):
        valid = row_movies >= 0
        cand, s = row_movies[valid], row_scores[valid]
        if cand.size == 0:
            movies.append(np.full(k, -1)), scores.append(np.full(k, -np.inf))
            continue
        span = s.max() - s.min()
        relevance = (s - s.min()) / span if span > 0 else np.ones_like(s)
        sim = unit[cand] @ unit[cand].T
        picked: list[int] = []
        closest = np.full(cand.size, -np.inf)
        for _ in range(min(k, cand.size)):
            penalty = np.where(np.isfinite(closest), closest, 0.0)
            gain = (1 - diversity) * relevance - diversity * penalty
            gain[picked] = -np.inf
            best = int(np.argmax(gain))
            picked.append(best)
            closest = np.maximum(closest, sim[best])
        pad = k - len(picked)
        movies.append(np.concatenate([cand[picked], np.full(pad, -1)]))
        scores.append(np.concatenate([s[picked], np.full(pad, -np.inf)]))
    return TopK(np.stack(movies).astype(np.int64), np.stack(scores))
