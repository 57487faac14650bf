"""Group examples (k people who all rated movie m, m) for k = 2..6: sampled lazily, or fixed.

A family or a group of friends is the next audience after a pair. The groups of a movie's
raters grow as C(raters, k), far beyond what can be listed, so training draws them the way
`duorec.data.pairs` draws pairs: a movie with probability proportional to C(c, k) (its
number of k-groups), then k distinct raters uniformly. Every (group, movie) of size k is then
equally likely, exactly what enumerating them all and sampling uniformly would give
(`pair_weighting=pairs` is the k = 2 case). Cost O(batch * k^2) per draw, memory O(ratings):
one alias table per size over the same `RaterIndex`.

A training batch holds groups of one size (tensors stay rectangular); the size of each batch
is drawn from `data.group_sizes`, e.g. {2: 0.6, 3: 0.25, 4: 0.15}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Any

import numpy as np
from scipy.special import gammaln

from duorec.data.pairs import RaterIndex, alias_table

MIN_GROUP, MAX_GROUP = 2, 6


def check_group_sizes(sizes: Any, key: str = "data.group_sizes") -> dict[int, float] | None:
    """{size: probability} with sizes in 2..6 and probabilities summing to 1; None stays None.

    A ValueError naming `key` otherwise: the settings are read from the command line, where a
    group of 1 or 7 or probabilities summing to 0.9 are easy typos.
    """
    if sizes is None:
        return None
    if not isinstance(sizes, Mapping) or not sizes:
        raise ValueError(f"{key} must map group sizes to probabilities, e.g. {{2: 0.6, 3: 0.4}}")
    out: dict[int, float] = {}
    for size, p in sizes.items():
        try:
            k = int(size)
            prob = float(p)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: {size!r}: {p!r} is not a size: probability") from None
        if k != float(size) or not MIN_GROUP <= k <= MAX_GROUP:
            raise ValueError(f"{key}: group size {size!r} is outside {MIN_GROUP}..{MAX_GROUP}")
        if not prob > 0:
            raise ValueError(f"{key}: probability of size {k} must be > 0, got {p!r}")
        out[k] = prob
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{key}: probabilities must sum to 1, they sum to {total:g}")
    return dict(sorted(out.items()))


def check_eval_sizes(sizes: Any, key: str = "eval.group_sizes") -> list[int]:
    """The group sizes evaluated, each in 2..6; [] when none."""
    if not sizes:
        return []
    out = []
    for size in sizes:
        if isinstance(size, bool) or int(size) != size or not MIN_GROUP <= int(size) <= MAX_GROUP:
            raise ValueError(f"{key}: group size {size!r} is outside {MIN_GROUP}..{MAX_GROUP}")
        out.append(int(size))
    return sorted(set(out))


@dataclass
class Groups:
    """Groups of one size: members [N, k] (sorted within a row when canonical), the movie
    [N] and each member's own rating [N, k]."""

    members: np.ndarray
    movie: np.ndarray
    ratings: np.ndarray

    def __len__(self) -> int:
        return len(self.movie)

    @property
    def size(self) -> int:
        return int(self.members.shape[1])

    def take(self, index: np.ndarray) -> Groups:
        return Groups(self.members[index], self.movie[index], self.ratings[index])

    def ordered(self) -> Groups:
        """Members sorted within each group: the canonical form of an unordered group."""
        order = np.argsort(self.members, axis=1, kind="stable")
        return Groups(
            np.take_along_axis(self.members, order, axis=1),
            self.movie,
            np.take_along_axis(self.ratings, order, axis=1),
        )


def n_groups(index: RaterIndex, k: int) -> int:
    """Number of (group of k, movie) examples: what enumeration would produce."""
    counts = np.unique(index.counts, return_counts=True)
    return sum(comb(int(c), k) * int(n) for c, n in zip(*counts, strict=True))


def distinct_positions(count: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """[N, k] distinct positions in [0, count) per row, a uniform k-subset in random order.

    Draw j picks uniformly among the count - j positions not taken yet: a uniform index into
    them, shifted past the taken ones in ascending order. O(N k^2), no rejection.
    """
    n = len(count)
    out = np.empty((n, k), dtype=np.int64)
    taken = np.empty((n, 0), dtype=np.int64)
    for j in range(k):
        x = (rng.random(n) * (count - j)).astype(np.int64)
        for i in range(j):  # `taken` is sorted per row: skip each taken slot at or below x
            x += x >= taken[:, i]
        out[:, j] = x
        taken = np.sort(np.concatenate([taken, x[:, None]], axis=1), axis=1)
    return out


class GroupSampler:
    """Vectorised draws of training groups from a `RaterIndex`, one size per batch."""

    def __init__(self, index: RaterIndex, sizes: Mapping[int, float]):
        self.index = index
        self.sizes = np.array(sorted(sizes), dtype=np.int64)
        self.probs = np.array([sizes[int(k)] for k in self.sizes], dtype=np.float64)
        self.probs /= self.probs.sum()
        self.tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        c = index.counts.astype(np.float64)
        for k in self.sizes.tolist():
            # C(c, k) in float64: exact enough for weights, and no overflow at any audience
            weights = np.where(c >= k, np.exp(_log_comb(c, k)), 0.0)
            if weights.sum() == 0:
                raise ValueError(f"data.group_sizes: no movie has {k} raters in the training split")
            self.tables[k] = alias_table(weights)

    def draw_size(self, n: int, k: int, rng: np.random.Generator) -> Groups:
        """`n` groups of size `k`: movies by C(raters, k), then k distinct raters of each."""
        idx = self.index
        prob, alias = self.tables[k]
        pick = rng.integers(0, len(prob), n)
        movie = np.where(rng.random(n) < prob[pick], pick, alias[pick])
        at = idx.indptr[movie][:, None] + distinct_positions(idx.counts[movie], k, rng)
        return Groups(idx.raters[at], movie, idx.ratings[at])

    def draw(self, n: int, rng: np.random.Generator) -> Groups:
        """A batch of `n` groups, its size drawn from the configured distribution."""
        k = int(self.sizes[rng.choice(len(self.sizes), p=self.probs)])
        return self.draw_size(n, k, rng)


def _log_comb(c: np.ndarray, k: int) -> np.ndarray:
    """log C(c, k) elementwise for c >= k (other entries are masked by the caller)."""
    safe = np.maximum(c, k)
    return gammaln(safe + 1) - gammaln(k + 1) - gammaln(safe - k + 1)


def enumerate_groups(index: RaterIndex, k: int) -> Groups:
    """Every (group of k, movie) of the index, members sorted: evaluation splits and tests."""
    members, movies = [], []
    for size in np.unique(index.counts):
        if size < k:
            continue
        chosen = np.flatnonzero(index.counts == size)
        combos = np.array(list(combinations(range(int(size)), k)), dtype=np.int64)
        members.append((index.indptr[chosen][:, None, None] + combos[None]).reshape(-1, k))
        movies.append(np.repeat(chosen, len(combos)))
    if not members:
        return Groups(
            np.zeros((0, k), np.int64), np.zeros(0, np.int64), np.zeros((0, k), np.float32)
        )
    at = np.concatenate(members)
    groups = Groups(index.raters[at], np.concatenate(movies), index.ratings[at])
    return groups.ordered()


def evaluation_groups(index: RaterIndex, k: int, max_groups: int | None, seed: int) -> Groups:
    """The fixed groups of size `k` of an evaluation split: all, or a seeded distinct sample.

    As `pairs.evaluation_triples`: enumerated when there are few enough (or subsampled when
    the sample is a large share), otherwise drawn lazily with duplicates dropped, so the cost
    stays O(max_groups) on any data size.
    """
    total = n_groups(index, k)
    if max_groups is None or total <= max_groups:
        return enumerate_groups(index, k)
    rng = np.random.default_rng([seed, k, 0x6E0])
    if total <= 4 * max_groups:
        keep = np.sort(rng.choice(total, size=max_groups, replace=False))
        return enumerate_groups(index, k).take(keep)
    sampler = GroupSampler(index, {k: 1.0})
    n_draw = int(max_groups * 1.25) + 16
    while True:
        chosen = sampler.draw_size(n_draw, k, rng).ordered()
        key = np.concatenate([chosen.movie[:, None], chosen.members], axis=1)
        _, first = np.unique(key, axis=0, return_index=True)
        if len(first) >= max_groups:
            break
        n_draw *= 2
    keep = np.sort(rng.permutation(first)[:max_groups])
    return chosen.take(keep)


def relevant_by_group(groups: Groups, threshold: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """(groups [G, k] sorted members, relevant movies of each): a movie is relevant to a
    group when every member rated it >= `threshold`. Groups without one are left out."""
    ordered = groups.ordered()
    good = (ordered.ratings >= threshold).all(axis=1)
    members, movie = ordered.members[good], ordered.movie[good]
    k = groups.size
    if len(movie) == 0:
        return np.zeros((0, k), dtype=np.int64), []
    order = np.lexsort((movie, *members.T[::-1]))
    members, movie = members[order], movie[order]
    new = np.ones(len(movie), dtype=bool)
    new[1:] = (members[1:] != members[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    return members[starts], [np.unique(m) for m in np.split(movie, starts[1:])]
