"""Top-N ranking baselines fitted on TRAIN interactions: EASE, item-kNN, iALS, recent popularity.

The rating baselines (`duorec.model.rating_baselines`) predict stars; a pair recommender is judged
by NDCG@k of the movies both people liked, and the models that are strong at that task are
trained to rank, not to predict stars. These three are the standard ones (Steck 2019;
Deshpande & Karypis 2004; Hu, Koren & Volinsky 2008), so a pair model's NDCG can be read
against "what one good individual recommender per person, combined, already achieves".

All three see the train ratings as a binary users x movies matrix X: x_um = 1 when u rated
m (optionally only ratings >= `min_rating`). Having rated a movie is what they learn to
predict: a rating of any value says the person chose to watch it, which is what a
recommendation should anticipate; the stars decide relevance only at evaluation time.

Every ranker has `fit(user, movie, rating, n_users, n_movies, timestamp=None)`,
`user_scores(users)` -> [B, n_movies] float32 (higher = better; -inf for a movie the model
cannot score) and `pair_score_fn(rule)`, the callable `duorec.metrics.rank_pairs` takes. The
caller masks the movies either person has seen. `tune` picks a hyperparameter by individual
NDCG@k on the validation split, so the test pairs are never looked at.

At test time a person's history is everything before their test ratings (train + validation
under a time-ordered split, docs/protocol.md): `with_history` folds a longer history in
without refitting, as the pair model does (its parameters saw train only), and `at` says
when each person asks, for the rankers that read time (`RecentPopularity`,
`duorec.model.sequential.SASRec`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from scipy.stats import rankdata
from threadpoolctl import threadpool_limits

from duorec.csr import csr_from_pairs
from duorec.metrics import rank_pairs
from duorec.model.rating_baselines import check_fit_input
from duorec.topk import PairScoreFn

__all__ = [
    "PAIR_RULES",
    "Ranker",
    "EASE",
    "ItemKNN",
    "ImplicitALS",
    "RecentPopularity",
    "Events",
    "combine_pair",
    "period_start",
    "individual_ndcg",
    "TuneResult",
    "tune",
]

#: How two people's scores become a pair's: "sum" (utilitarian) or "both" (see combine_pair).
PAIR_RULES = ("sum", "both")

#: EASE inverts its Gram matrix in float64 up to this many movies (about 0.8 GB), float32 above.
EASE_FLOAT64_MAX_ITEMS = 10_000
#: EASE scores a batch with a dense matmul when its rows are denser than this (else sparse).
EASE_DENSE_SCORING = 0.04


# --------------------------------------------------------------------------- pair rules


def _candidate_percentile(scores: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Per row, the fraction of the person's candidate movies scored at or below each movie.

    Candidates are the movies not `excluded` (seen in train, or unscorable). Ties share their
    average rank; excluded movies get NaN. The best candidate gets 1, the worst 1 / n.
    """
    s = np.where(excluded, -np.inf, scores.astype(np.float64))
    ranks = rankdata(s, method="average", axis=1)  # excluded tie at the bottom
    n_excluded = excluded.sum(axis=1, keepdims=True)
    n_candidates = np.maximum(scores.shape[1] - n_excluded, 1)
    q = (ranks - n_excluded) / n_candidates
    return np.where(excluded, np.nan, q)


def combine_pair(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    rule: str = "sum",
    seen_a: np.ndarray | None = None,
    seen_b: np.ndarray | None = None,
) -> np.ndarray:
    """[B, n_movies] pair scores from each person's [B, n_movies] scores, float32.

    * "sum": s_a + s_b. The utilitarian choice, and what averaging two predicted ratings
      does; one person's enthusiasm can carry a movie the other is lukewarm about.
    * "both": q_a * q_b, where q is the movie's percentile within that person's own
      candidates (movies they have not seen, `seen_*` boolean [B, n_movies]). Read q as
      the chance the person prefers the movie to one of their candidates drawn at random;
      the product is then the chance both do, so a movie must be high on BOTH lists. It is
      rank-based on purpose: EASE, kNN and ALS scores have no common scale, differ in
      spread from person to person (heavy raters get larger kNN sums) and may be negative,
      so neither a product of raw scores nor of their positive parts would mean the same
      thing for every model and person. Percentiles do, and they are not tied at zero for
      the many movies where one person has no evidence. Movies seen by either person, or
      unscorable (-inf) for either, get -inf.
    """
    a = np.asarray(scores_a)
    b = np.asarray(scores_b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"pair scores need two equal [B, n_movies] arrays, got {a.shape}, {b.shape}"
        )
    if rule == "sum":
        return (a.astype(np.float32) + b.astype(np.float32)).astype(np.float32)
    if rule != "both":
        raise ValueError(f"unknown pair rule {rule!r}: use one of {PAIR_RULES}")
    ex_a = ~np.isfinite(a) if seen_a is None else (np.asarray(seen_a, bool) | ~np.isfinite(a))
    ex_b = ~np.isfinite(b) if seen_b is None else (np.asarray(seen_b, bool) | ~np.isfinite(b))
    both = _candidate_percentile(a, ex_a) * _candidate_percentile(b, ex_b)
    return np.where(ex_a | ex_b, -np.inf, both).astype(np.float32)


# --------------------------------------------------------------------------- base class


class Ranker:
    """Fit on train interactions; score every movie for a user, and for a pair of users.

    Subclasses implement `_fit(x)` on the binary CSR matrix x [n_users, n_movies] (float32)
    and `_scores(users)` -> [B, n_movies]; one whose scores depend on a person's history
    other than through x (per-person factors, a sequence) also implements `_fold_in()`. A
    ranker that reads time sets `uses_time`: it keeps the history's (user, movie, timestamp)
    as `events` and honours `now`, the time each person asks (None: just after their latest
    history rating).
    """

    uses_time = False

    def __init__(self, min_rating: float | None = None) -> None:
        self.min_rating = min_rating
        self.n_users = 0
        self.n_movies = 0
        self._x: sp.csr_matrix | None = None
        self.events: Events | None = None
        self.now: np.ndarray | None = None

    def fit(
        self,
        user: np.ndarray,
        movie: np.ndarray,
        rating: np.ndarray,
        n_users: int,
        n_movies: int,
        timestamp: np.ndarray | None = None,
    ) -> Self:
        """Fit on train ratings; users and movies are contiguous indices < n_users, n_movies.

        `timestamp` (seconds, one per rating) is read only by rankers that use time.
        """
        self.n_users, self.n_movies = int(n_users), int(n_movies)
        self._set_history(user, movie, rating, timestamp)
        self._fit(self._x)
        return self

    def with_history(
        self,
        user: np.ndarray,
        movie: np.ndarray,
        rating: np.ndarray,
        timestamp: np.ndarray | None = None,
    ) -> Self:
        """A copy that scores from this history instead, the fitted parameters unchanged.

        The fold-in of docs/protocol.md: tuned and fitted on train, a ranker reads each
        person's train + validation ratings at test time, as the pair model does. Seen
        movies (the "both" rule's candidates) follow the new history too.
        """
        clone = copy.copy(self)
        clone._set_history(user, movie, rating, timestamp)
        clone._fold_in()
        return clone

    def at(self, now: np.ndarray | None) -> Self:
        """A copy asked at `now` [n_users] (seconds; NaN: just after the person's latest
        history rating). Only rankers that use time read it."""
        clone = copy.copy(self)
        clone.now = None if now is None else np.asarray(now, dtype=np.float64)
        return clone

    def _set_history(
        self,
        user: np.ndarray,
        movie: np.ndarray,
        rating: np.ndarray,
        timestamp: np.ndarray | None,
    ) -> None:
        user, movie, rating = check_fit_input(user, movie, rating, self.n_users, self.n_movies)
        keep = np.ones(user.size, bool) if self.min_rating is None else rating >= self.min_rating
        if not keep.any():
            raise ValueError(f"no train rating is >= min_rating={self.min_rating}")
        x = sp.csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (user[keep], movie[keep])),
            shape=(self.n_users, self.n_movies),
        )
        x.sum_duplicates()
        x.data[:] = 1.0  # a repeated (user, movie) is still one interaction
        self._x = x
        if self.uses_time:
            if timestamp is None:
                raise ValueError(f"{type(self).__name__} needs a timestamp per rating")
            when = np.asarray(timestamp, dtype=np.float64).ravel()
            if when.size != keep.size:
                raise ValueError(f"{when.size} timestamps for {keep.size} ratings")
            self.events = Events.of(user[keep], movie[keep], when[keep], self.n_users)

    def _now(self, users: np.ndarray) -> np.ndarray:
        """[B] seconds at which each user asks: `now`, or after their latest history rating."""
        assert self.events is not None
        latest = self.events.latest[users] + 1.0
        if self.now is None:
            return latest
        asked = self.now[users]
        return np.where(np.isfinite(asked), asked, latest)

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        """[len(users), n_movies] float32 scores, higher = better; seen movies NOT masked."""
        users = self._check_users(users)
        return np.asarray(self._scores(users), dtype=np.float32)

    def pair_score_fn(self, rule: str = "sum") -> PairScoreFn:
        """(user_a [B], user_b [B]) -> [B, n_movies] pair scores (`combine_pair`'s rules)."""
        if rule not in PAIR_RULES:
            raise ValueError(f"unknown pair rule {rule!r}: use one of {PAIR_RULES}")

        def score(user_a: np.ndarray, user_b: np.ndarray) -> np.ndarray:
            ua, ub = self._check_users(user_a), self._check_users(user_b)
            sa, sb = self.user_scores(ua), self.user_scores(ub)
            if rule == "sum":
                return combine_pair(sa, sb, "sum")
            return combine_pair(sa, sb, "both", self._seen_dense(ua), self._seen_dense(ub))

        return score

    # -- helpers
    def _check_users(self, users: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        users = np.asarray(users, dtype=np.int64).ravel()
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"user index out of range [0, {self.n_users})")
        return users

    def _seen_dense(self, users: np.ndarray) -> np.ndarray:
        return self._x[users].toarray() > 0  # type: ignore[index]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._params())
        return f"{type(self).__name__}({params})"

    # -- for subclasses
    def _params(self) -> tuple[str, ...]:
        return ("min_rating",)

    def _fit(self, x: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _fold_in(self) -> None:
        """Refresh what depends on the (new) history; item-item models read x and need not."""

    def _scores(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class Events:
    """A history's interactions ordered by person, then time (ties by movie): `indptr` [n_users
    + 1] into `movie` and `time`, and each person's `latest` time (-inf without history)."""

    indptr: np.ndarray
    movie: np.ndarray
    time: np.ndarray
    latest: np.ndarray

    @classmethod
    def of(cls, user: np.ndarray, movie: np.ndarray, time: np.ndarray, n_users: int) -> Events:
        order = np.lexsort((movie, time, user))
        counts = np.bincount(user, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        time = time[order]
        latest = np.full(n_users, -np.inf)
        has = counts > 0
        latest[has] = time[indptr[1:][has] - 1]
        return cls(indptr, movie[order], time, latest)

    def sequence(self, user: int) -> np.ndarray:
        """The person's movies, oldest first."""
        return self.movie[self.indptr[user] : self.indptr[user + 1]]


def period_start(part: Mapping[str, np.ndarray], n_users: int) -> np.ndarray:
    """[n_users] each person's first timestamp in `part` (a split's ratings), NaN if none:
    when they ask for what comes next, so a time-aware ranker looks only before it."""
    start = np.full(n_users, np.inf)
    np.minimum.at(start, np.asarray(part["user"], np.int64), np.asarray(part["timestamp"], float))
    return np.where(np.isfinite(start), start, np.nan)


# --------------------------------------------------------------------------- EASE


def spd_inverse(g: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix, overwriting `g` where it can.

    Cholesky (potrf + potri) costs n^3 flops against 2n^3 for LU-based `inv`, and works in
    place; the symmetric result is filled in from its upper triangle block by block so no
    second n x n temporary is needed.
    """
    n = g.shape[0]
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (g,))
    # g is symmetric, so its C-ordered buffer read as Fortran order is g itself.
    c, info = potrf(g.T, lower=0, overwrite_a=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix is not positive definite (potrf {info})")
    p, info = potri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix is singular (potri {info})")
    block = 2048
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        p[lo:hi, :lo] = p[:lo, lo:hi].T
        d = p[lo:hi, lo:hi]
        d[...] = np.triu(d) + np.triu(d, 1).T
    return p


class EASE(Ranker):
    """Embarrassingly shallow autoencoder (Steck 2019): item-item weights in closed form.

    B = argmin ||X - X B||^2 + lam ||B||^2 subject to diag(B) = 0 is, with P = (X'X +
    lam I)^-1, B_ij = -P_ij / P_jj (i != j), B_jj = 0; a user's scores are x_u B. The
    zero diagonal stops a movie from predicting itself, and lam is the one knob (tune it on
    validation: the default 200 was best of 50..2000 on a validation split of
    ml-latest-small). The inverse is n^2 memory and n^3 time, so a
    catalogue larger than `max_items` is cut to its `max_items` most-interacted movies (ties
    to the lower index); the rest score -inf, and `restricted_to` says how many were kept
    (None when none were cut). The inverse is float64 up to EASE_FLOAT64_MAX_ITEMS movies,
    float32 above; the weights are kept as float32 (half the memory, ample for ranking).
    """

    def __init__(
        self, lam: float = 200.0, max_items: int = 20_000, min_rating: float | None = None
    ) -> None:
        super().__init__(min_rating)
        if lam <= 0 or max_items < 1:
            raise ValueError(f"EASE needs lam > 0 and max_items >= 1, got {lam}, {max_items}")
        self.lam = float(lam)
        self.max_items = int(max_items)
        self.restricted_to: int | None = None

    def _params(self) -> tuple[str, ...]:
        return ("lam", "max_items", "min_rating")

    def _fit(self, x: sp.csr_matrix) -> None:
        n = x.shape[1]
        if n > self.max_items:
            counts = np.asarray(x.sum(axis=0)).ravel()
            kept = np.sort(np.argsort(-counts, kind="stable")[: self.max_items])
            self.restricted_to = int(kept.size)
        else:
            kept = np.arange(n)
            self.restricted_to = None
        self.kept_movies = kept
        xk = x[:, kept].tocsc() if self.restricted_to is not None else x.tocsc()
        dtype = np.float64 if kept.size <= EASE_FLOAT64_MAX_ITEMS else np.float32
        g = (xk.T @ xk).astype(dtype).toarray()
        g[np.diag_indices_from(g)] += self.lam
        p = spd_inverse(g)
        del g
        p /= -np.diag(p)[None, :].copy()
        np.fill_diagonal(p, 0.0)
        self.weights = p.astype(np.float32)

    def _scores(self, users: np.ndarray) -> np.ndarray:
        xu = self._x[users]  # type: ignore[index]
        if self.restricted_to is not None:
            xu = xu[:, self.kept_movies]
        # scipy's sparse @ dense is a scalar loop: past a few % density (heavy raters) a dense
        # BLAS product is faster, and it alone uses more than one thread.
        dense = xu.nnz > EASE_DENSE_SCORING * xu.shape[0] * xu.shape[1]
        s = (xu.toarray() if dense else xu) @ self.weights
        if self.restricted_to is None:
            return np.asarray(s)
        out = np.full((users.size, self.n_movies), -np.inf, dtype=np.float32)
        out[:, self.kept_movies] = s
        return out

    def fold_in(
        self, person: np.ndarray, movie: np.ndarray, n_people: int
    ) -> Callable[[np.ndarray], np.ndarray]:
        """users -> [B, n_movies] scores, users >= n_users being `n_people` new people
        (`person` 0..n_people-1 per interaction): a new person's row is x_u B of their movies
        (EASE needs no fitting for a new user, only their interactions)."""
        n_users = self.n_users
        x = np.zeros((n_people, self.n_movies), dtype=np.float32)
        x[person, movie] = 1.0  # EASE reads interactions: binary, as in its fit
        kept = self.kept_movies
        new_rows = x[:, kept] @ self.weights
        if self.restricted_to is not None:
            full = np.full((n_people, self.n_movies), -np.inf, dtype=np.float32)
            full[:, kept] = new_rows
            new_rows = full

        def rows(users: np.ndarray) -> np.ndarray:
            users = np.asarray(users, dtype=np.int64)
            out = np.empty((users.size, self.n_movies), dtype=np.float32)
            known = users < n_users
            if known.any():
                out[known] = self.user_scores(users[known])
            if (~known).any():
                out[~known] = new_rows[users[~known] - n_users]
            return out

        return rows


# --------------------------------------------------------------------------- item-kNN


def _topk_cosine(x: sp.csr_matrix, k: int, block: int = 1024) -> sp.csr_matrix:
    """Row i: the k movies most cosine-similar to movie i (itself excluded), as CSR.

    Rows of the item-item similarity are computed a block at a time (block x n dense), so
    memory is O(block * n) rather than the full n^2. Only positive similarities count as
    neighbours; ties at the k-th place are broken by `argpartition` (deterministic).
    """
    xc = x.tocsc().astype(np.float32)
    norms = np.sqrt(np.asarray(xc.multiply(xc).sum(axis=0)).ravel())
    xn = (xc @ sp.diags(np.where(norms > 0, 1.0 / np.maximum(norms, 1e-30), 0.0))).tocsc()
    xt = xn.T.tocsr()
    n = x.shape[1]
    rows, cols, vals = [], [], []
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        s = (xt[lo:hi] @ xn).toarray()  # [hi - lo, n]
        s[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        kk = min(k, n - 1)
        if kk <= 0:
            break
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        v = np.take_along_axis(s, top, axis=1)
        r = np.broadcast_to(np.arange(lo, hi)[:, None], top.shape)
        pos = v > 0
        rows.append(r[pos])
        cols.append(top[pos])
        vals.append(v[pos])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


class ItemKNN(Ranker):
    """Item-based top-N (Deshpande & Karypis 2004): sum of similarities to what you watched.

    Movie similarity is the cosine between their columns of X; each movie keeps its `k`
    nearest neighbours (itself excluded, positive similarity only) in `similarity` [n, n]
    CSR, row i = the neighbours of movie i. A user's score for movie j is the sum of
    similarity[i, j] over the movies i they watched, i.e. x_u @ similarity. Built with
    scipy rather than `implicit.CosineRecommender`, whose K counts the movie itself and whose
    fit warns about its own COO input; the computation is the same. Tune `k`: on a
    validation split of ml-latest-small k = 5..20 beat the customary 100 (NDCG@10 0.14-0.15
    against 0.12).
    """

    def __init__(self, k: int = 100, min_rating: float | None = None) -> None:
        super().__init__(min_rating)
        if k < 1:
            raise ValueError(f"ItemKNN needs k >= 1, got {k}")
        self.k = int(k)

    def _params(self) -> tuple[str, ...]:
        return ("k", "min_rating")

    def _fit(self, x: sp.csr_matrix) -> None:
        self.similarity = _topk_cosine(x, self.k)

    def _scores(self, users: np.ndarray) -> np.ndarray:
        return (self._x[users] @ self.similarity).toarray()  # type: ignore[index]


# --------------------------------------------------------------------------- iALS


class ImplicitALS(Ranker):
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via `implicit`.

    Fits p_u . q_i to 1 for watched and 0 for unwatched movies, a watched cell weighted by
    confidence `alpha` (implicit 0.7 uses alpha * x, not 1 + alpha * x) and every other by
    1, with L2 `regularization`; scores = user_factors[users] @ item_factors.T. Runs the CPU
    implementation (deterministic given `seed`) with BLAS held to one thread during fit, as
    implicit asks (its own `num_threads` parallelises the per-user solves instead). Defaults
    (64 factors, regularization 20, alpha 5) were the best of a small grid on a validation
    split of ml-latest-small; implicit's own (0.01, 1) were worse there.
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 20.0,
        alpha: float = 5.0,
        iterations: int = 15,
        seed: int = 0,
        num_threads: int = 1,
        min_rating: float | None = None,
    ) -> None:
        super().__init__(min_rating)
        if factors < 1 or iterations < 1 or regularization < 0 or alpha <= 0:
            raise ValueError(
                "ImplicitALS needs factors >= 1, iterations >= 1, regularization >= 0, alpha > 0"
            )
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.seed = int(seed)
        self.num_threads = int(num_threads)

    def _params(self) -> tuple[str, ...]:
        return ("factors", "regularization", "alpha", "iterations", "seed", "min_rating")

    def _fit(self, x: sp.csr_matrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            als.fit(x, show_progress=False)
        self._als = als
        self.user_factors = np.asarray(als.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(als.item_factors, dtype=np.float32)

    def _fold_in(self) -> None:
        """Each person's factors solved again from the new history, the movie factors kept
        (implicit's `recalculate_user`: exact least squares for every person)."""
        assert self._x is not None
        with threadpool_limits(1, "blas"):
            factors = self._als.recalculate_user(np.arange(self.n_users), self._x)
        self.user_factors = np.asarray(factors, dtype=np.float32)

    def _scores(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T


# --------------------------------------------------------------------------- recent popularity


DAY = 86_400.0


class RecentPopularity(Ranker):
    """The movies most rated in the `window_days` before the person asks (None: all time).

    Ji et al. (2020) report it far above plain popularity on MovieLens with a global timeline.
    Each person asks at `now` (the start of the period being predicted: their first
    validation rating when tuning, their first test rating at test time), and only history
    ratings before that moment count, from everyone: ratings from a person's future never
    rank their present, which a per-person chronological split would otherwise allow, since
    other people's train ratings can be years later. A window with few ratings is broken by
    the all-time counts before `now`; scores are each person's counts over their window's
    total, so the "sum" rule gives both people an equal say whatever their windows hold.
    """

    uses_time = True

    def __init__(self, window_days: float | None = None, min_rating: float | None = None):
        super().__init__(min_rating)
        if window_days is not None and window_days <= 0:
            raise ValueError(f"RecentPopularity needs window_days > 0 or None, got {window_days}")
        self.window_days = None if window_days is None else float(window_days)

    def _params(self) -> tuple[str, ...]:
        return ("window_days", "min_rating")

    def _fit(self, x: sp.csr_matrix) -> None:
        self._fold_in()

    def _fold_in(self) -> None:
        assert self.events is not None
        order = np.argsort(self.events.time, kind="stable")
        self._time = self.events.time[order]
        self._movie = self.events.movie[order]

    def _scores(self, users: np.ndarray) -> np.ndarray:
        now = self._now(users)
        out = np.empty((users.size, self.n_movies), dtype=np.float64)
        ends = np.searchsorted(self._time, now, side="left")  # strictly before now
        if self.window_days is None:
            starts = np.zeros_like(ends)
        else:
            starts = np.searchsorted(self._time, now - self.window_days * DAY, side="left")
        for row, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
            every = np.bincount(self._movie[:hi], minlength=self.n_movies).astype(np.float64)
            recent = np.bincount(self._movie[lo:hi], minlength=self.n_movies)
            # the all-time share is < 1, so it orders only movies tied in the window
            out[row] = (recent + every / (every.sum() + 1.0)) / (recent.sum() + 1.0)
        return out


# --------------------------------------------------------------------------- tuning


def individual_ndcg(
    ranker: Ranker,
    train: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    k: int = 10,
    threshold: float = 4.0,
    max_users: int = 1000,
    seed: int = 0,
) -> float:
    """Mean NDCG@k over individual users on `val`: the pair protocol with a = b.

    A user's relevant movies are those they rated >= `threshold` in val and not in train;
    candidates are the movies they did not rate in train. At most `max_users` users with a
    relevant movie are scored (a seeded sample) to keep a grid search cheap. Ranking the pair
    (u, u) with `rank_pairs` is exactly ranking u alone, so the metric is the same code as
    the test numbers. A ranker that uses time is asked at each user's first validation
    rating (when `val` has timestamps), as it is asked at their first test rating later.
    """
    n_users, n_movies = ranker.n_users, ranker.n_movies
    if ranker.uses_time and "timestamp" in val:
        ranker = ranker.at(period_start(val, n_users))
    t_user = np.asarray(train["user"], dtype=np.int64)
    t_movie = np.asarray(train["movie"], dtype=np.int64)
    v_user = np.asarray(val["user"], dtype=np.int64)
    v_movie = np.asarray(val["movie"], dtype=np.int64)
    good = np.asarray(val["rating"]) >= threshold
    keys = v_user[good] * n_movies + v_movie[good]
    keys = np.setdiff1d(keys, t_user * n_movies + t_movie)  # sorted, unique
    if keys.size == 0:
        raise ValueError(f"no validation rating >= {threshold} outside train: nothing to rank")
    users, starts = np.unique(keys // n_movies, return_index=True)
    relevant = np.split(keys % n_movies, starts[1:])
    if users.size > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(users.size, max_users, replace=False))
        users, relevant = users[pick], [relevant[i] for i in pick]
    seen = csr_from_pairs(t_user, t_movie, n_users)
    pairs = np.stack([users, users], axis=1)
    result = rank_pairs(pairs, relevant, seen, lambda a, b: ranker.user_scores(a), k=k)
    return float(result.summary()["ndcg"])


@dataclass
class TuneResult:
    """The grid value with the best validation NDCG, its model (fitted on train), all scores."""

    best: Any
    best_ndcg: float
    model: Ranker
    ndcg: list[tuple[Any, float]] = field(default_factory=list)  # (grid value, NDCG), in order


def tune(
    maker: Callable[[Any], Ranker],
    grid: Sequence[Any],
    train: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    n_users: int,
    n_movies: int,
    k: int = 10,
    threshold: float = 4.0,
    max_users: int = 1000,
    seed: int = 0,
) -> TuneResult:
    """Fit `maker(value)` on train for each grid value; keep the best individual val NDCG@k.

    e.g. `tune(lambda lam: EASE(lam=lam), [50, 100, 200, 500, 1000, 2000], ...)`. Users
    are the same sample for every value, so the comparison is paired; ties go to the earlier
    grid value. Individual rather than pair NDCG because every validation rating is usable
    and the test pairs stay unseen. `train` and `val` map "user", "movie", "rating" (and,
    for rankers that use time, "timestamp") to arrays.
    """
    if len(grid) == 0:
        raise ValueError("tune needs a non-empty grid")
    best: tuple[float, Any, Ranker] | None = None
    scores: list[tuple[Any, float]] = []
    for value in grid:
        model = maker(value).fit(
            train["user"],
            train["movie"],
            train["rating"],
            n_users,
            n_movies,
            timestamp=train.get("timestamp"),
        )
        ndcg = individual_ndcg(model, train, val, k, threshold, max_users, seed)
        scores.append((value, ndcg))
        if best is None or ndcg > best[0]:
            best = (ndcg, value, model)
        else:
            del model
    assert best is not None
    return TuneResult(best=best[1], best_ndcg=best[0], model=best[2], ndcg=scores)
