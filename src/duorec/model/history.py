"""A person as the movies they rated: a bag of learned movie embeddings, target masked out.

Which movies a person chose to rate says as much about them as the ratings do (SVD++'s
implicit feedback), and it is the signal a recommender needs to learn what a person will
*watch*. Reading the history, rather than a per-user id, also serves people who are not in
the training data: give the bag their ratings and the same tower encodes them (fold-in).

Two bags share one embedding table: "watched" (every rated movie, weight 1/sqrt(n)) and
"liked" (weight = the rating minus the person's mean, over sqrt(n)). The movie a triple asks
about is removed from both bags by zeroing its weight, so the prediction never sees its own
target; counts drop by one accordingly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from duorec.csr import ragged_offsets

#: The share of a person's newest ratings that says how they rate lately (`recent_level`).
RECENT_SHARE = 0.2


def ragged_positions(start: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Row number and flat position of every element of rows `start[i] : start[i] + len[i]`."""
    row, offset = ragged_offsets(lengths)
    return row, start[row] + offset


class HistoryBag(nn.Module):
    """[N] users (+ an optional movie to leave out per row) -> [N, 2 * dim] history vectors."""

    def __init__(self, n_users: int, n_movies: int, n_ratings: int, dim: int):
        super().__init__()
        self.n_movies = n_movies
        self.embedding = nn.EmbeddingBag(n_movies, dim, mode="sum")
        nn.init.normal_(self.embedding.weight, std=0.05)
        # CSR of each user's train ratings; filled by `set_history`
        self.register_buffer("indptr", torch.zeros(n_users + 1, dtype=torch.long))
        self.register_buffer("movies", torch.zeros(n_ratings, dtype=torch.long))
        self.register_buffer("centred", torch.zeros(n_ratings))
        # people whose ratings carry no order (folded in without dates): no recent level
        self.undated: torch.Tensor | None = None

    @property
    def out_dim(self) -> int:
        return 2 * self.embedding.embedding_dim

    def set_history(
        self,
        user: np.ndarray,
        movie: np.ndarray,
        rating: np.ndarray,
        timestamp: np.ndarray | None = None,
        max_len: int | None = None,
    ) -> None:
        """Store the train ratings as a CSR (user -> movies, rating minus the user's mean).

        With `max_len`, a person's bag keeps their `max_len` most recent ratings (by
        `timestamp`): a bag's cost grows with its length and the heaviest raters, sampled
        most often into pairs, have thousands. The mean is over all their ratings.
        """
        n_users = len(self.indptr) - 1
        rating = rating.astype(np.float64)
        counts = np.bincount(user, minlength=n_users)
        means = np.bincount(user, weights=rating, minlength=n_users) / np.maximum(counts, 1)
        when = np.zeros(len(user)) if timestamp is None else timestamp
        order = np.lexsort((movie, -when, user))  # newest first within a user
        user, movie, rating = user[order], movie[order], rating[order]
        if max_len is not None:
            first = np.repeat(np.cumsum(counts) - counts, counts)
            keep = np.arange(len(user)) - first < max_len
            user, movie, rating = user[keep], movie[keep], rating[keep]
            counts = np.bincount(user, minlength=n_users)
        if len(user) != len(self.movies):
            raise ValueError(f"history sized for {len(self.movies)} ratings, got {len(user)}")
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        self.indptr = torch.from_numpy(indptr)
        self.movies = torch.from_numpy(movie.astype(np.int64))
        self.centred = torch.from_numpy((rating - means[user]).astype(np.float32))

    def recent_level(self, users: torch.Tensor, share: float = RECENT_SHARE) -> torch.Tensor:
        """[N] stars: how a person rates lately, against their usual. The mean centred rating
        of the newest ceil(`share` x n) entries of their bag minus the mean over the bag
        (0 for an empty bag).

        The bag is newest first, so this is a slice. It follows whatever history the bag holds:
        train when validating, train + validation at test time, a newcomer's export after
        fold-in; the ratings it is asked to predict are never in it. A person's later ratings
        drift from their earlier ones (on both MovieLens releases the ratings after a
        person's train period are lower than their train mean), and how they rated their most
        recent movies says which way (docs/time_features.md, "(d)"). People folded in
        without dates (`undated`) have none: 0.
        """
        start = self.indptr[users]
        lengths = self.indptr[users + 1] - start
        recent = torch.ceil(lengths.double() * share).long()
        row, flat = ragged_positions(start, lengths)
        values = self.centred[flat].double()
        is_recent = (flat - start[row]) < recent[row]
        n = len(users)
        total = torch.zeros(n, dtype=torch.float64, device=users.device).index_add_(0, row, values)
        newest = torch.zeros_like(total).index_add_(0, row, values * is_recent)
        level = newest / recent.clamp(min=1) - total / lengths.clamp(min=1)
        if self.undated is not None:  # their "newest" would be an arbitrary slice
            level = level.masked_fill(self.undated[users], 0.0)
        return level.float()

    def forward(
        self, users: torch.Tensor, exclude: torch.Tensor | None = None, watched_only: bool = False
    ) -> torch.Tensor:
        """[N, 2 * dim] (watched, liked); `watched_only`: [N, dim], the first half alone, for
        readers of which movies were rated but not how (the rating head's implicit term)."""
        start, stop = self.indptr[users], self.indptr[users + 1]
        lengths = stop - start
        row, flat = ragged_positions(start, lengths)
        movies = self.movies[flat]
        keep = torch.ones_like(movies, dtype=torch.float32)
        if exclude is not None:
            keep = (movies != exclude[row]).float()
        count = torch.zeros(len(users), device=users.device).index_add_(0, row, keep)
        norm = count.clamp(min=1.0).rsqrt()[row]
        if watched_only:
            return self.embedding(movies, torch.cumsum(lengths, 0) - lengths, keep * norm)
        # both bags in one EmbeddingBag call (one backward pass over the table): rows 0..N-1
        # are "watched", N..2N-1 "liked"
        lengths2 = torch.cat([lengths, lengths])
        offsets = torch.cumsum(lengths2, 0) - lengths2
        weights = torch.cat([keep * norm, keep * norm * self.centred[flat]])
        bags = self.embedding(torch.cat([movies, movies]), offsets, per_sample_weights=weights)
        return torch.cat([bags[: len(users)], bags[len(users) :]], dim=-1)
