"""Co-watch: which unseen movies a person will watch, from the movies they watched (EASE).

The model's ranking score is "both would watch it" plus a weight times "and both would enjoy
it" (the towers' predicted pair rating). This module is the first half. It is EASE (Steck
2019), fitted in closed form on the train ratings when the model is built, its lambda chosen
on the validation split exactly as the EASE baseline's is (`duorec.model.ranking_baselines.tune`).

Why closed form inside a neural model: a learned watch head (a softmax over the catalogue on
the towers' watch factors, trained beside the rating losses, still available as
`model.watch_dim`) ranked below tuned EASE on both MovieLens releases (NDCG@10 0.373 vs 0.398
on ml-latest-small, 0.383 vs 0.422 on ml-100k, docs/results.md), at a cost in training time.
A full-rank item-item model is what wins this task on MovieLens-sized data; what the towers
add that EASE cannot know is how much each person would *like* a movie, and that is what
relevance (both rated >= 4) asks for. docs/results.md has the measured gain of the sum.

Storage: a dense n x n weight matrix would make a checkpoint of ml-latest-small 380 MB, so
each source movie keeps its `top_n` largest weights (by magnitude) as a sparse row; a
person's scores are the sum of the rows of the movies they rated (x_u B), read straight
from those sparse rows. Catalogues over `max_items` movies are fitted on their most-rated
`max_items` (as the baseline is); the rest carry no co-watch evidence and score 0.

What comes next (`next_weight`, `next_fraction`). EASE reconstructs a person's whole history
from itself, so it learns which movies go together, not which come *after* which; a pair asks
about its future, and a person's later ratings differ from their earlier ones in kind (on
both MovieLens releases the movies rated last are markedly less popular than the first).
`fit_next` learns the order: within each person's train ratings, sorted by time, the last
`next_fraction` are "late" and the rest "early", and B_next = argmin ||X_late - X_early B||^2
+ lam ||B||^2 (the transition half of SLIST, Choi et al. 2021, without its session weights).
The co-watch weights are then (1 - a) B_ease + a s B_next, s putting both on one scale, and a
is chosen from the `next_weight` grid on validation by the same individual NDCG as lambda
(0, in the grid, is EASE alone, so validation can refuse it). Serving, fold-in and the
checkpoint are unchanged: it is one weight matrix, read as x_u B, as before.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from duorec.csr import CSR, csr_rows, ragged_offsets
from duorec.model.ranking_baselines import (
    EASE,
    EASE_FLOAT64_MAX_ITEMS,
    individual_ndcg,
    spd_inverse,
    tune,
)

#: How two people's co-watch scores become the pair's (as the ranking baselines' rules).
COWATCH_RULES = ("sum", "both")


@dataclass(frozen=True)
class CoWatchFit:
    """The fitted weights as CSR arrays (source movie -> targets) and how lambda was chosen."""

    indptr: np.ndarray  # [n_movies + 1] int64
    target: np.ndarray  # [nnz] int64
    weight: np.ndarray  # [nnz] float32
    lam: float
    val_ndcg: list[tuple[float, float]]  # (lambda, individual validation NDCG@k)
    restricted_to: int | None  # movies EASE was fitted on, when the catalogue was cut
    next_weight: float = 0.0  # the chosen weight of what comes next (0: EASE alone)
    next_ndcg: list[tuple[float, float]] = field(default_factory=list)  # (weight, val NDCG@k)


def fit_cowatch(
    train: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    n_users: int,
    n_movies: int,
    lam: Sequence[float] | float,
    max_items: int,
    top_n: int,
    next_weight: Sequence[float] | float = 0.0,
    next_fraction: float = 0.2,
    seed: int = 0,
) -> CoWatchFit:
    """EASE on the binary train matrix, lambda tuned on `val`, mixed with what comes next
    (`fit_next`, its weight tuned on `val`), each row cut to `top_n`.

    `train` and `val` map "user", "movie", "rating" and, for what comes next, "timestamp".
    """
    grid = [float(v) for v in (lam if isinstance(lam, Sequence) else [lam])]
    shares = next_weight if isinstance(next_weight, Sequence) else [next_weight]
    weights = [float(v) for v in shares]
    if top_n < 1:
        raise ValueError(f"model.cowatch.top_n must be >= 1, got {top_n}")
    if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
        raise ValueError(f"model.cowatch.next_weight must be in [0, 1], got {weights}")
    if not 0.0 < next_fraction < 1.0:
        raise ValueError(f"model.cowatch.next_fraction must be in (0, 1), got {next_fraction}")
    if len(grid) == 1:  # nothing to choose: validation is not read
        ease = EASE(lam=grid[0], max_items=max_items)
        ease.fit(train["user"], train["movie"], train["rating"], n_users, n_movies)
        chosen, scores = grid[0], []
    else:
        maker = lambda v: EASE(lam=v, max_items=max_items)  # noqa: E731
        result = tune(maker, grid, train, val, n_users, n_movies, seed=seed)
        ease, chosen, scores = result.model, result.best, result.ndcg  # type: ignore[assignment]
    mixed, share, next_ndcg = ease.weights, 0.0, []
    if any(weights):
        mixed, share, next_ndcg = choose_next(ease, train, val, weights, next_fraction, seed)
    indptr, target, weight = sparse_rows(mixed, ease.kept_movies, n_movies, top_n)
    return CoWatchFit(
        indptr=indptr,
        target=target,
        weight=weight,
        lam=float(chosen),
        val_ndcg=[(float(v), float(s)) for v, s in scores],
        restricted_to=ease.restricted_to,
        next_weight=share,
        next_ndcg=next_ndcg,
    )


def sparse_rows(
    dense: np.ndarray, kept: np.ndarray, n_movies: int, top_n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row of the [K, K] weights over the `kept` movies cut to its `top_n` largest |w|,
    as CSR arrays (indptr, target, weight) over the whole catalogue."""
    n = min(top_n, dense.shape[1])
    # per row, the n largest |weights| (in ascending column order, which the scatter ignores)
    columns = np.sort(np.argpartition(-np.abs(dense), n - 1, axis=1)[:, :n], axis=1)
    values = np.take_along_axis(dense, columns, axis=1)
    indptr = np.zeros(n_movies + 1, dtype=np.int64)
    counts = np.zeros(n_movies, dtype=np.int64)
    counts[kept] = n
    np.cumsum(counts, out=indptr[1:])
    return indptr, kept[columns].ravel().astype(np.int64), values.ravel().astype(np.float32)


def late_ratings(
    user: np.ndarray, timestamp: np.ndarray, n_users: int, fraction: float
) -> np.ndarray:
    """[N] bool: each person's last ceil(`fraction` x their count) ratings by time.

    Ties in time are ordered by position in the input (a stable sort), so the answer is
    deterministic; a person with one rating has only a late part, which teaches nothing.
    """
    order = np.lexsort((np.arange(len(user)), timestamp, user))
    counts = np.bincount(user, minlength=n_users)
    first = np.concatenate([[0], np.cumsum(counts)])[user[order]]
    position = np.arange(len(order)) - first  # 0 = the person's oldest
    size = counts[user[order]]
    late = np.zeros(len(user), dtype=bool)
    late[order] = position >= size - np.ceil(size * fraction)
    return late


def fit_next(early: sp.csr_matrix, late: sp.csr_matrix, lam: float) -> np.ndarray:
    """B_next = (E'E + lam I)^-1 E'L [K, K] float32, E, L the binary early and late matrices
    [n_users, K]: which movies a person goes on to watch, given the ones they watched first.

    The product is formed through the thinner side: (E P)' L when there are fewer people
    than movies (two sparse-by-dense products), else P (E'L) densely.
    """
    n = early.shape[1]
    dtype = np.float64 if n <= EASE_FLOAT64_MAX_ITEMS else np.float32
    gram = (early.T @ early).astype(dtype).toarray()
    gram[np.diag_indices_from(gram)] += lam
    inverse = spd_inverse(gram)
    del gram
    if early.shape[0] < n:
        through = np.asarray(early.astype(dtype) @ inverse)  # [n_users, K]: E P (P symmetric)
        out = np.asarray(late.T.astype(dtype) @ through).T
    else:
        out = inverse @ (early.T @ late).astype(dtype).toarray()
    return np.ascontiguousarray(out, dtype=np.float32)


def choose_next(
    ease: EASE,
    train: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    weights: Sequence[float],
    fraction: float,
    seed: int = 0,
) -> tuple[np.ndarray, float, list[tuple[float, float]]]:
    """The co-watch weights `mix_next` with the best individual validation NDCG over the
    shares in `weights` (ties to the earlier), that share, and (share, NDCG) for each."""
    after, scale = next_weights(ease, train, fraction, seed)
    best: tuple[float, float, np.ndarray] | None = None
    scores: list[tuple[float, float]] = []
    for a in weights:
        trial = copy.copy(ease)
        trial.weights = mix_next(ease.weights, after, scale, a)
        ndcg = individual_ndcg(trial, train, val, seed=seed)
        scores.append((float(a), float(ndcg)))
        if best is None or ndcg > best[0]:
            best = (ndcg, float(a), trial.weights)
    assert best is not None
    return best[2], best[1], scores


def mix_next(ease: np.ndarray, after: np.ndarray, scale: float, share: float) -> np.ndarray:
    """(1 - a) B_ease + a s B_next as float32; a = 0 is B_ease itself."""
    if share == 0:
        return ease
    return ((1 - share) * ease + (share * scale) * after).astype(np.float32, copy=False)


def next_weights(
    ease: EASE,
    train: Mapping[str, np.ndarray],
    fraction: float,
    seed: int = 0,
    sample: int = 1000,
) -> tuple[np.ndarray, float]:
    """(B_next, s): `fit_next` on the movies EASE kept, with EASE's lambda, and the scale s =
    mean |x_u B_ease| / mean |x_u B_next| over a seeded sample of at most `sample` train
    users: the two matrices answer different questions and come out on different scales,
    and the share a of `mix_next` is meant as a share."""
    if "timestamp" not in train:
        raise ValueError("model.cowatch.next_weight > 0 needs a timestamp per train rating")
    user, movie = np.asarray(train["user"], np.int64), np.asarray(train["movie"], np.int64)
    kept = ease.kept_movies
    column = np.full(ease.n_movies, -1, dtype=np.int64)
    column[kept] = np.arange(len(kept))
    inside = column[movie] >= 0
    late = late_ratings(user, np.asarray(train["timestamp"]), ease.n_users, fraction)

    def binary(rows: np.ndarray) -> sp.csr_matrix:
        x = sp.csr_matrix(
            (np.ones(int(rows.sum()), np.float32), (user[rows], column[movie[rows]])),
            shape=(ease.n_users, len(kept)),
        )
        x.sum_duplicates()
        x.data[:] = 1.0
        return x

    after = fit_next(binary(inside & ~late), binary(inside & late), ease.lam)
    everyone = binary(inside)
    people = np.flatnonzero(np.diff(everyone.indptr))
    if len(people) > sample:
        people = np.sort(np.random.default_rng([seed, 0x4E58]).choice(people, sample, False))
    scale = np.abs(everyone[people] @ ease.weights).mean() / max(
        float(np.abs(everyone[people] @ after).mean()), 1e-12
    )
    return after, float(scale)


class CoWatch(nn.Module):
    """Sparse EASE weights and each person's train history, as buffers of the checkpoint."""

    def __init__(self, n_users: int, n_movies: int, n_history: int, n_weights: int):
        super().__init__()
        self.n_movies = n_movies
        self.register_buffer("history_indptr", torch.zeros(n_users + 1, dtype=torch.long))
        self.register_buffer("history_movies", torch.zeros(n_history, dtype=torch.long))
        self.register_buffer("weight_indptr", torch.zeros(n_movies + 1, dtype=torch.long))
        self.register_buffer("weight_target", torch.zeros(n_weights, dtype=torch.long))
        self.register_buffer("weight_value", torch.zeros(n_weights))
        self._weights: tuple[tuple[int, ...], sp.csr_matrix] | None = None

    def set_history(self, user: np.ndarray, movie: np.ndarray) -> None:
        """The (user, movie) history co-watch reads, as rows by user (movies sorted): the train
        ratings when the model is built, every rating before the test period when evaluation
        asks (`duorec.eval.history.model_history`). The buffers take the history's size."""
        order = np.lexsort((movie, user))
        counts = np.bincount(user, minlength=len(self.history_indptr) - 1)
        device = self.history_indptr.device
        indptr = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.history_indptr = indptr.to(device)
        self.history_movies = torch.from_numpy(movie[order].astype(np.int64)).to(device)

    def set(self, fit: CoWatchFit, user: np.ndarray, movie: np.ndarray) -> None:
        """Fill the buffers: the fitted weights and the train (user, movie) history."""
        self.set_history(user, movie)
        self.weight_indptr.copy_(torch.from_numpy(fit.indptr))
        self.weight_target.copy_(torch.from_numpy(fit.target))
        self.weight_value.copy_(torch.from_numpy(fit.weight))

    def user_scores(self, users: torch.Tensor) -> torch.Tensor:
        """[N, n_movies] x_u B of each user's train history."""
        start = self.history_indptr[users]
        return self.history_scores(start, self.history_indptr[users + 1] - start)

    def history_scores(
        self, start: torch.Tensor, lengths: torch.Tensor, movies: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[N, n_movies] scores of N histories: rows `movies[start[i] : start[i] + len[i]]`.

        `movies` defaults to the stored train histories; a person who is not in the data
        passes their own (fold-in needs nothing else: EASE scores any set of movies).
        Each history's score is the sum of its movies' sparse weight rows, h x top_n values
        (scipy's row gather and column sum). Expanding the rows to a dense [K, K] matrix first,
        as this did before, reads h x K values: 20x more at K = 20,000 kept movies and
        top_n = 1,000, and a 1.6 GB matrix in memory (benchmarks/README.md, "co-watch scores
        from the sparse rows").
        """
        rated = (self.history_movies if movies is None else movies).cpu().numpy()
        slices = zip(start.tolist(), lengths.tolist(), strict=True)
        return self._summed([rated[first : first + size] for first, size in slices], start.device)

    def _summed(self, histories: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
        """[N, n_movies]: per history (movie indices), the sum of its movies' weight rows."""
        weights = self.weights()
        out = np.zeros((len(histories), self.n_movies), dtype=np.float32)
        for i, rated in enumerate(histories):
            if len(rated):
                out[i] = weights[rated].sum(axis=0)
        return torch.from_numpy(out).to(device)

    def weights(self) -> sp.csr_matrix:
        """The weights as a scipy CSR matrix [n_movies, n_movies] (source -> target), on the CPU.

        Built on first use and again whenever a buffer changes (`set`, a loaded state dict):
        not a buffer itself, it is the same numbers in the form scipy reads.
        """
        buffers = (self.weight_indptr, self.weight_target, self.weight_value)
        key = tuple(x for t in buffers for x in (t.data_ptr(), t._version))
        if self._weights is None or self._weights[0] != key:
            indptr, target, value = (t.cpu().numpy() for t in buffers)
            matrix = sp.csr_matrix((value, target, indptr), shape=(self.n_movies,) * 2)
            self._weights = (key, matrix)
        return self._weights[1]

    def seen(self, users: torch.Tensor) -> torch.Tensor:
        """[N, n_movies] bool: the movies each user rated in train."""
        row, movie = self.seen_entries(users)
        mask = torch.zeros(len(users), self.n_movies, dtype=torch.bool, device=users.device)
        mask[row, movie] = True
        return mask

    def seen_entries(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(position in `users`, movie) of every train rating of the users: `seen` as a list,
        for masking a score grid in place without building an [N, n_movies] mask."""
        if users.device.type == "cpu":  # numpy's ragged gather: a third of torch's time here
            row, movie = csr_rows(self._history(), users.numpy())
            return torch.from_numpy(row), torch.from_numpy(movie)
        start = self.history_indptr[users]
        row, offset = ragged_offsets(self.history_indptr[users + 1] - start)
        return row, self.history_movies[start[row] + offset]

    def _history(self) -> CSR:
        """The train histories (user -> movies) as a numpy CSR view of the buffers."""
        return CSR(self.history_indptr.cpu().numpy(), self.history_movies.cpu().numpy())

    def _group_history(self, members: torch.Tensor) -> np.ndarray:
        """The members' train movies together, sorted: the same sum, in the same order, for
        any order of the members (so a pair's score is exactly symmetric)."""
        return np.sort(csr_rows(self._history(), members.cpu().numpy())[1])

    def pair_scores(self, user_a: torch.Tensor, user_b: torch.Tensor, rule: str) -> torch.Tensor:
        """[B, n_movies]: "sum" of the two people's scores, or "both", the product of each
        movie's percentile among the person's unseen movies (`ranking_baselines.combine_pair`)."""
        return self.group_scores(torch.stack([user_a, user_b], dim=1), rule)

    def group_scores(self, members: torch.Tensor, rule: str) -> torch.Tensor:
        """[B, n_movies] of groups [B, k]: the members' scores summed, or ("both") the
        product of their percentiles: every member must rank the movie high."""
        if rule not in COWATCH_RULES:
            raise ValueError(f"unknown co-watch pair rule {rule!r}: use one of {COWATCH_RULES}")
        if rule == "sum":  # sum_u x_u B = (sum_u x_u) B: one gather and sum per group
            return self._summed([self._group_history(group) for group in members], members.device)
        parts = self.member_percentiles(members)
        out = parts[0]
        for part in parts[1:]:
            out = out * part
        return out

    def member_percentiles(self, members: torch.Tensor) -> torch.Tensor:
        """[k, B, n_movies]: each member's percentile of every movie among their unseen ones
        (`candidate_percentile`), on one scale for everyone, so members can be combined by
        product ("both"), or by min / max (least misery / most pleasure)."""
        users = members.T.reshape(-1)  # member 0 of every group, then member 1, ...
        scores = candidate_percentile(self.user_scores(users), self.seen(users))
        return scores.reshape(members.shape[1], len(members), -1)


def candidate_percentile(scores: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Per row, the share of the person's unseen movies scored at or below each movie (ties
    at their average rank; the best unseen movie gets 1). Seen movies get 0.

    One sort per row; each value's tie run (how many are below it, how many at or below) is
    read off the sorted row by a running max / min, then scattered back: half the time of
    searching the sorted row for every value twice, with the same integers, so the same
    bits (a service ranks a group through this for every member).
    """
    masked = scores.masked_fill(seen, float("-inf"))
    ordered, order = masked.sort(dim=1)
    n = ordered.shape[1]
    position = torch.arange(n, device=scores.device).expand_as(ordered)
    starts = torch.ones_like(ordered, dtype=torch.bool)  # first of its tie run
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = torch.ones_like(starts)  # last of its tie run
    ends[:, :-1] = starts[:, 1:]
    below = torch.where(starts, position, 0).cummax(dim=1).values
    at_or_below = torch.where(ends, position + 1, n).flip(1).cummin(dim=1).values.flip(1)
    n_seen = seen.sum(dim=1, keepdim=True)
    n_unseen = (scores.shape[1] - n_seen).clamp(min=1)
    average = (below + at_or_below + 1).double() / 2  # 1-based rank among everything
    rank = torch.empty_like(average).scatter_(1, order, average) - n_seen  # among unseen
    return torch.where(seen, 0.0, rank / n_unseen).float()


def describe(fit: CoWatchFit) -> dict[str, Any]:
    """What metrics.json records of the fit."""
    return {
        "lam": fit.lam,
        "grid": [{"lam": v, "val_ndcg": s} for v, s in fit.val_ndcg],
        "restricted_to": fit.restricted_to,
        "weights": len(fit.weight),
        "next_weight": fit.next_weight,
        "next_grid": [{"weight": a, "val_ndcg": s} for a, s in fit.next_ndcg],
    }
