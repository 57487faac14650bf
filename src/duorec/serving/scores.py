"""The model's scores for serving: ranking keys and the star ratings shown beside them.

`Recommender` (duorec.serving.recommender) is the door; this is what it runs:

* `movie_matrix` / `user_matrix`: the towers over the catalogue / everyone, once;
* `ModelScores` + `best_unseen`: the k best unseen movies of pairs and the pair's and each
  person's predicted rating, read off the same grids;
* `best_for_group`: the same for one group of 3..6.

Recommendations are the top-k movies that NO member has rated, in any split: whoever rated a
film has seen it, whether that rating went to train, validation or test. The selection is
`duorec.topk.top_k_unseen`, the path evaluation measures; what orders it is the model's
`rank_and_rate` (rank_by and aggregate decided there, for every group size).

How the shown rating is formed (`aggregate=mean|min|max`):

* the aggregate the model was trained for (its `target`, usually mean): the model's own pair
  (group) rating, i.e. DuoModule's pair head (group head), which learned how real pairs
  depart from the plain aggregate (for the factorisation baselines, `model=mf|bias`, it is
  that aggregate of the unclamped predictions);
* any other aggregate: that aggregate of the individual predictions in stars (each clamped
  to the rating range), the same rule `duorec.eval` scores for the targets the model was not
  trained on. So with a mean-trained model, `aggregate=min` ("least misery") shows exactly
  min(rating_a, rating_b), and ranks by the least happy member too.

Ranked by rating, movies are ordered by the rating shown (ties, e.g. several films clamped at
5 stars, go to the higher unclamped score, then the lower movie index).

Cost: each group of pairs is scored against the candidate movies: `rank_and_rate` (co-watch
scores, one rating product, the pair MLP on a shortlist) or the model's `score_grid` in movie
chunks sized to stay in cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from duorec.aggregate import aggregate, aggregate_members
from duorec.errors import UsageError
from duorec.model.base import PairRatingModule, Rated
from duorec.model.fusion import gather_movies, individual_grid, with_rows
from duorec.serving.index import ServingIndex
from duorec.topk import Shortlist, top_k_unseen, top_k_unseen_groups

# pairs x movies scored per score_grid call: small enough that the fusion MLP's [B, M, 32]
# activations stay in cache (benchmarks/recommend_latency.py, 87k movies, 1 thread: one
# pair in one piece ~30% slower than 16k-movie chunks; 256 pairs x 2048 movies ~3x slower
# than groups of 32 pairs x 512 movies)
CHUNK_ELEMENTS = 1 << 14
MIN_CHUNK = 512
PAIR_GROUP = 32
# tie-break of shown means: |TIE_WEIGHT * TIE_RANGE| = 1e-9 is below half the float32 spacing
# of ratings >= 0.5 (3e-8), so it never reorders two different shown ratings, only equal ones
TIE_WEIGHT = 1e-11
TIE_RANGE = 100.0


def movie_matrix(model: PairRatingModule) -> torch.Tensor:
    """`model.encode_movies()` (the movie tower over the catalogue, once), column-major,
    carrying the row-major original (`fusion.with_rows`).

    Same values, two memory layouts: `score_grid` multiplies by `movie_vectors[:, :-1].T`,
    which is then a contiguous [dim, movies] matrix (~8% faster per pair on one CPU thread),
    and a shortlist gathers whole rows of the other (the price: 22 MB more at 87k movies).
    A `Recommender` holds it, so the tower runs once, not once per recommendation.
    """
    if model.training:  # dropout off; skipped when already so (it walks every submodule)
        model.eval()
    return with_rows(model.encode_movies())


def user_matrix(
    model: PairRatingModule, index: ServingIndex, batch_size: int = 65536
) -> torch.Tensor:
    """Every person's rating vector [index.n_users, dim + 1]: the user tower (history bag
    included) run once over everyone, as `movie_matrix` runs the movie tower.

    What `Recommender(..., hold_users=True)` holds, so the tower does not run per call (a
    tenth of a recommendation over 87k movies, benchmarks/README.md). Rows follow `index`
    (people folded in with `with_people` come after the data set's users), so build it from
    the index the calls use.
    """
    if model.training:
        model.eval()
    ids = torch.arange(index.n_users, device=model.device)
    with torch.inference_mode():
        parts = [
            model.user_vectors(ids[s : s + batch_size]) for s in range(0, len(ids), batch_size)
        ]
    return torch.cat(parts)


class ModelScores:
    """The model as a `duorec.topk.PairScoreFn` over the candidate movies, plus the
    ratings a result shows (pair, a, b in stars) for the same grid.

    The shown ratings are clamped to the rating range, so several movies can show the same
    5.0; the ranking score orders them by the model's unclamped opinion without ever
    reordering two different shown values. Pair head, min and max: the unclamped score itself
    (the clamp is monotone and commutes with min / max, so the shown column stays sorted).
    Mean of two clamped predictions: that shown mean, plus TIE_WEIGHT * the unclamped mean
    (bounded) in float64.
    """

    def __init__(
        self,
        model: PairRatingModule,
        how: str,
        candidates: np.ndarray | None = None,
        movie_vectors: torch.Tensor | None = None,
        rank_by: str | None = None,
        watch_vectors: torch.Tensor | None = None,
        user_vectors: torch.Tensor | None = None,
    ):
        if model.training:
            model.eval()
        self.users = user_vectors  # user_matrix(model, index), or None: the tower per call
        # ranking by a learned watch head (not co-watch) needs its movie factors:
        # `watch_vectors` (model.encode_watch(), computed once) spares the movie tower per call
        self.rank_by = rank_by or model.rank_by
        self.by_watch = self.rank_by != "rating" and model.ranks_by_watch
        watch = None
        if self.by_watch and model.needs_watch_vectors:
            watch = model.encode_watch() if watch_vectors is None else watch_vectors
        at = None if candidates is None else torch.as_tensor(candidates, dtype=torch.long)
        if watch is not None and at is not None:
            watch = watch[at.to(watch.device)]
        self.watch, self.candidate_tensor = watch, at
        vectors = movie_matrix(model) if movie_vectors is None else movie_vectors
        if len(vectors) != model.n_movies:
            raise UsageError(
                f"movie_vectors has {len(vectors)} rows but the model has {model.n_movies} "
                "movies: pass model.encode_movies() of this model"
            )
        if candidates is not None:  # both layouts again, as movie_matrix makes them
            at = torch.as_tensor(candidates, dtype=torch.long, device=vectors.device)
            vectors = with_rows(gather_movies(vectors, at))
        self.model, self.how, self.vectors = model, how, vectors
        self.candidates = candidates
        self.n_movies = model.n_movies
        self._all = candidates is None  # write whole slices, not gathered columns
        self._position = None  # movie index -> row of `vectors`, when they are candidates
        if candidates is not None:
            self._position = np.zeros(model.n_movies, dtype=np.int64)
            self._position[candidates] = np.arange(len(candidates))

    def rows(self, movies: np.ndarray) -> np.ndarray:
        """The rows of the candidate grids (and of `vectors`) holding `movies` (-1: row 0)."""
        movies = np.maximum(movies, 0)
        return movies if self._position is None else self._position[movies]

    def __call__(self, user_a: np.ndarray, user_b: np.ndarray) -> np.ndarray | Shortlist:
        """[B, n_movies] ranking scores (or their `Shortlist`), -inf outside the candidates."""
        return self.ranked(user_a, user_b)[0] if self.by_watch else self.grids(user_a, user_b)[0]

    @torch.inference_mode()
    def user_vectors(
        self, user_a: np.ndarray, user_b: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both sides' rating vectors, for `ranked` and `shown` to share: rows of the
        precomputed `user_vectors`, or `pair_user_vectors` (a person's vector reads their
        history bag, a tenth of a recommendation's time)."""
        device = self.vectors.device
        a = torch.as_tensor(user_a, dtype=torch.long, device=device)
        b = torch.as_tensor(user_b, dtype=torch.long, device=device)
        if self.users is not None:
            return self.users[a], self.users[b]
        return self.model.pair_user_vectors(a, b)

    @torch.inference_mode()
    def ranked(
        self,
        user_a: np.ndarray,
        user_b: np.ndarray,
        vectors: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[np.ndarray | Shortlist, Rated | None]:
        """[B, n_movies] float64 scores of a model ranking by its watch head (`rank_grid`, the
        path evaluation takes; a `Shortlist` of the same scores when the model shortlisted),
        and the ratings it predicted on the way for its shortlist, if any, for `shown`
        (`vectors`: `user_vectors(user_a, user_b)`, computed once for both)."""
        device = self.vectors.device
        a = torch.as_tensor(user_a, dtype=torch.long, device=device)
        b = torch.as_tensor(user_b, dtype=torch.long, device=device)
        at = None if self.candidate_tensor is None else self.candidate_tensor.to(device)
        key, rated = self.model.rank_and_rate(
            torch.stack([a, b], 1), self.vectors, self.watch, self.rank_by, at, vectors, self.how
        )
        if rated is not None and rated.score is not None:  # ranked from the shortlist alone
            movie = rated.column.cpu().numpy()
            movie = movie if self._all else self.candidates[movie]
            return Shortlist(movie, rated.score.cpu().numpy(), self.n_movies), rated
        score = np.full((len(user_a), self.n_movies), -np.inf)
        columns = slice(None) if self._all else self.candidates  # a slice copies 4x faster
        score[:, columns] = key.cpu().numpy()
        return score, rated

    @torch.inference_mode()
    def shown(
        self,
        user_a: np.ndarray,
        user_b: np.ndarray,
        movies: np.ndarray,
        vectors: tuple[torch.Tensor, torch.Tensor] | None = None,
        rated: Rated | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pair, a, b) stars of each pair's chosen candidate `movies` [B, k] (-1: none):
        read from `rated` (`ranked`'s shortlist, which holds every chosen movie), else the
        heads run on those movies (`vectors`: as `ranked`)."""
        model, (n, k) = self.model, movies.shape
        rows = torch.as_tensor(self.rows(movies), device=self.vectors.device)
        if rated is not None:  # each chosen movie's place in its pair's shortlist
            place = (rated.column[:, None, :] == rows[:, :, None]).int().argmax(-1)
            chosen = (rated.pair, rated.rating_a, rated.rating_b)
            pair, ra, rb = (x.gather(1, place).ravel() for x in chosen)
        else:
            va, vb = vectors or self.user_vectors(user_a, user_b)
            stacked = torch.cat([va.repeat_interleave(k, 0), vb.repeat_interleave(k, 0)])
            pair, ra, rb = model.predict_vectors(stacked, gather_movies(self.vectors, rows.ravel()))
        ra, rb = model.unscale(ra), model.unscale(rb)
        pair = model.unscale(pair) if self.how == model.target else aggregate(ra, rb, self.how)
        return tuple(x.reshape(n, k).cpu().numpy() for x in (pair, ra, rb))  # type: ignore[return-value]

    @torch.inference_mode()
    def grids(self, user_a: np.ndarray, user_b: np.ndarray) -> tuple[np.ndarray, ...]:
        """(ranking score [B, n_movies] float64, pair, a, b [B, n_candidates] stars) of a
        model ranking by its predicted rating: the key must order exactly as shown."""
        movie_vectors = self.vectors
        n_pairs, n_candidates = len(user_a), len(movie_vectors)
        device = movie_vectors.device
        a = torch.as_tensor(user_a, dtype=torch.long, device=device)
        b = torch.as_tensor(user_b, dtype=torch.long, device=device)
        towers = self.user_vectors(user_a, user_b)  # once, not once per chunk
        score = np.full((n_pairs, self.n_movies), -np.inf)
        shown = [np.zeros((n_pairs, n_candidates), dtype=np.float32) for _ in range(3)]
        chunk = max(MIN_CHUNK, CHUNK_ELEMENTS // max(n_pairs, 1))
        for start in range(0, n_candidates, chunk):
            stop = min(start + chunk, n_candidates)
            key, *values = self._chunk(a, b, towers, movie_vectors[start:stop])
            columns = slice(start, stop) if self._all else self.candidates[start:stop]
            score[:, columns] = key.double().cpu().numpy()
            for out, value in zip(shown, values, strict=True):
                out[:, start:stop] = value.cpu().numpy()
        return score, *shown

    def _chunk(
        self,
        user_a: torch.Tensor,
        user_b: torch.Tensor,
        towers: tuple[torch.Tensor, torch.Tensor],
        vectors: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """(ranking score, pair, a, b) of a movie chunk; the three ratings in stars."""
        model, how = self.model, self.how
        if how == model.target:
            key, ra, rb = model.score_grid(user_a, user_b, vectors, towers)
            return key, model.unscale(key), model.unscale(ra), model.unscale(rb)
        raw_a, raw_b = individual_grid(towers[0], vectors), individual_grid(towers[1], vectors)
        ra, rb = model.unscale(raw_a), model.unscale(raw_b)
        pair, raw = aggregate(ra, rb, how), aggregate(raw_a, raw_b, how)
        if how != "mean":
            return raw, pair, ra, rb
        key = pair.double() + TIE_WEIGHT * raw.clamp(-TIE_RANGE, TIE_RANGE).double()
        return key, pair, ra, rb


@dataclass
class Best:
    """Best k per pair: movie indices (-1 where fewer than k qualify) and star ratings."""

    movie: np.ndarray  # [P, k] int64
    pair: np.ndarray  # [P, k] float32
    rating_a: np.ndarray
    rating_b: np.ndarray
    score: np.ndarray  # [P, k] float64: the ranking key (`rank_and_rate`), -inf in empty slots


def best_unseen(scores: ModelScores, index: ServingIndex, users: np.ndarray, k: int) -> Best:
    """The k best unseen candidate movies of each pair of user indices [P, 2].

    Pairs are scored PAIR_GROUP at a time (cache, as above); the ranking is
    `duorec.topk.top_k_unseen`, and the shown ratings are read off the same grids.
    Pass `user_vectors` to `ModelScores` for the people's vectors of `index`.
    """
    parts = []
    for start in range(0, len(users), PAIR_GROUP):
        ua, ub = users[start : start + PAIR_GROUP, 0], users[start : start + PAIR_GROUP, 1]
        if scores.by_watch:  # ratings: the shortlist's, or computed for the k chosen alone
            vectors = scores.user_vectors(ua, ub)
            score, rated = scores.ranked(ua, ub, vectors)
            ranked = top_k_unseen(score, ua, ub, index.seen, k, scores.candidates)
            shown = scores.shown(ua, ub, ranked.movie, vectors, rated)
            parts.append([ranked.movie, *shown, ranked.score])
            continue
        score, *grids = scores.grids(ua, ub)
        ranked = top_k_unseen(score, ua, ub, index.seen, k, scores.candidates, len(ua))
        at = scores.rows(ranked.movie)
        shown = [np.take_along_axis(grid, at, axis=1) for grid in grids]
        parts.append([ranked.movie, *shown, ranked.score])
    return Best(*(np.concatenate(column) for column in zip(*parts, strict=True)))


@dataclass
class GroupBest:
    """Best k for one group: movie indices, the group's shown rating, the ranking key and
    every member's predicted rating [k, size], all in stars but the key."""

    movie: np.ndarray
    rating: np.ndarray
    score: np.ndarray
    each: np.ndarray
    own_head: bool  # the rating is the model's group head (its target, trained on groups)


@torch.inference_mode()
def best_for_group(
    model: PairRatingModule,
    index: ServingIndex,
    members: Sequence[int] | np.ndarray,
    k: int,
    how: str,
    rank_by: str | None,
    allowed: np.ndarray | None,
    movie_vectors: torch.Tensor,
    watch_vectors: torch.Tensor | None,
) -> GroupBest:
    """The k best movies no member [size] has seen, by the model's `rank_and_rate` for
    groups; with rank_by=rating the shown group rating orders the list (its unclamped value
    only breaks ties), as for pairs."""
    group = torch.as_tensor(np.asarray(members, dtype=np.int64)[None])  # [1, size]
    head, raw = model.group_grid(group, movie_vectors)
    each = model.unscale(raw[0]).cpu().numpy()  # [M, size] stars
    own_head = how == model.target
    shown = model.unscale(head[0]).cpu().numpy() if own_head else aggregate_members(each, how)
    rank_by = rank_by or model.rank_by
    if rank_by == "rating":
        unclamped = head[0] if own_head else aggregate_members(raw[0].double(), how)
        key = shown.astype(np.float64) + 1e-9 * np.tanh(unclamped.double().cpu().numpy())
    else:  # the rating part of the key is the grid just computed, not a second one
        rating = head if own_head else aggregate_members(raw, how)
        grid, _ = model.rank_and_rate(
            group, movie_vectors, watch_vectors, rank_by, aggregate=how, rating=rating
        )
        key = grid[0].double().cpu().numpy()
    top = top_k_unseen_groups(key[None], group.numpy(), index.seen, k, allowed)
    found = top.movie[0] >= 0
    movies = top.movie[0][found]
    return GroupBest(movies, shown[movies], top.score[0][found], each[movies], own_head)
