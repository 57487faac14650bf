"""Recommending for pairs, as a library: the films two people should watch together.

`python -m duorec.recommend` is a thin command line over this module; a service or a notebook
calls it directly:

    index = ServingIndex(dataset)            # once per data set: seen movies, catalogue
    vectors = movie_matrix(model)            # once per model: the movie tower
    people = user_matrix(model, index)       # and the user tower, over everyone
    recommend(model, index, 1, 42, k=10, movie_vectors=vectors, user_vectors=people)

Recommendations are the top-k movies that NEITHER person has rated, in any split: whoever
rated a film has seen it, whether that rating went to train, validation or test. The ranking
itself is `duorec.ranking.top_k_unseen`, the path evaluation measures.

How the pair's rating is formed (`aggregate=mean|min|max`):

* the aggregate the model was trained for (its `target`, usually mean): the model's own pair
  rating, i.e. DuoModule's pair head, which learned how real pairs depart from the plain
  aggregate (for the factorisation baselines, `model=mf|bias`, it is that aggregate of the two
  unclamped predictions);
* any other aggregate: that aggregate of the two individual predictions in stars (each
  clamped to the rating range), the same rule `duorec.evaluation` scores for the targets the
  model was not trained on. So with a mean-trained model, `aggregate=min` ("least misery")
  gives pair_rating == min(rating_a, rating_b) exactly.

Movies are ranked by the pair rating shown (ties, e.g. several films clamped at 5 stars, go to
the higher unclamped score, then the lower movie index), so the table is always sorted by it.

Cost: the movie tower runs once per call (`encode_movies`, or `movie_vectors` passed in by a
caller that recommends repeatedly; `user_vectors` likewise spares the user tower); each group
of pairs is then scored against the candidate movies: `rank_grid` (co-watch scores, one
rating product, the pair MLP on a shortlist) or the model's `score_grid` in movie chunks
sized to stay in cache.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from duorec.aggregate import AGGREGATES, aggregate
from duorec.csr import CSR, csr_from_pairs
from duorec.data.prepared import PreparedDataset
from duorec.errors import UsageError
from duorec.model.base import PairRatingModule, Rated
from duorec.model.fusion import gather_movies, individual_grid, with_rows
from duorec.model.module import RANK_BY
from duorec.ranking import Shortlist, top_k_unseen

log = logging.getLogger("duorec.recommend")

FILTER_KEYS = ("genres", "min_year", "max_runtime")
OUTPUT_EXTENSIONS = (".csv", ".parquet")
SINGLE_COLUMNS = [
    "rank",
    "movieId",
    "title",
    "year",
    "genres",
    "imdb_rating",
    "pair_rating",
    "rating_a",
    "rating_b",
]
BATCH_COLUMNS = [
    "user_a",
    "user_b",
    "rank",
    "movieId",
    "title",
    "year",
    "pair_rating",
    "rating_a",
    "rating_b",
]
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


# ---------------------------------------------------------------------------- requests


def check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise UsageError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def check_aggregate(how: Any) -> str:
    if how not in AGGREGATES:
        raise UsageError(f"unknown aggregate {how!r}: choose one of {', '.join(AGGREGATES)}")
    return str(how)


def as_user_id(value: Any) -> int:
    """A user id as an int: ids are integers in every MovieLens layout."""
    if isinstance(value, bool):
        raise UsageError(f"user ids are integers, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise UsageError(f"user ids are integers, got {value!r}")


def check_pairs(
    pairs: pd.DataFrame | Sequence[Sequence[Any]] | np.ndarray, single: bool = False
) -> np.ndarray:
    """[P, 2] int64 user ids of two different people each; `single`: messages for one pair."""
    if isinstance(pairs, pd.DataFrame):
        raw = pairs[["user_a", "user_b"]].to_numpy()
    else:
        raw = np.asarray(pairs, dtype=object).reshape(-1, 2) if len(pairs) else np.zeros((0, 2))
    if np.issubdtype(raw.dtype, np.integer):
        ids = raw.astype(np.int64).reshape(-1, 2)
    else:
        ids = np.array([[as_user_id(v) for v in row] for row in raw], dtype=np.int64)
        ids = ids.reshape(-1, 2)
    if len(ids) == 0:
        raise UsageError("no pairs to recommend for")
    same = np.flatnonzero(ids[:, 0] == ids[:, 1])
    if len(same) and single:
        raise UsageError(f"the two users are the same ({ids[0, 0]}): a pair needs two people")
    if len(same):
        raise UsageError(
            f"pair #{same[0] + 1} names user {ids[same[0], 0]} twice: a pair needs two people"
        )
    return ids


def check_output(path: str | Path | None) -> Path | None:
    """The output path, refused early (before any model is loaded) if its type is unknown."""
    if path is None or str(path) == "":
        return None
    path = Path(str(path)).expanduser()
    if path.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise UsageError(
            f"output {path}: unknown file type {path.suffix or '(none)'!r}, "
            f"use {' or '.join(OUTPUT_EXTENSIONS)}"
        )
    return path


@dataclass(frozen=True)
class Request:
    """A checked request: k, aggregate, batch size, output path and (when known) the pairs."""

    k: int
    aggregate: str
    pairs: np.ndarray | None  # [P, 2] user ids
    batch_size: int = 256
    output: Path | None = None
    rank_by: str | None = None


def check_rank_by(rank_by: Any) -> str | None:
    """None (the model's own), or one of RANK_BY."""
    if rank_by is None or rank_by in RANK_BY:
        return rank_by
    raise UsageError(f"rank_by={rank_by!r}: choose one of {', '.join(RANK_BY)}")


def check_request(
    k: Any,
    aggregate: Any,
    pairs: pd.DataFrame | Sequence[Sequence[Any]] | np.ndarray | None = None,
    single: bool = False,
    batch_size: Any = 256,
    output: str | Path | None = None,
    rank_by: Any = None,
) -> Request:
    """Every check of a recommendation request, in one place, before any model is touched."""
    return Request(
        k=check_k(k),
        aggregate=check_aggregate(aggregate),
        pairs=None if pairs is None else check_pairs(pairs, single),
        batch_size=check_k(batch_size, "batch_size"),
        output=check_output(output),
        rank_by=check_rank_by(rank_by),
    )


# ---------------------------------------------------------------------------- data set index


class ServingIndex:
    """What recommending needs from a prepared data set: build it once, pass it to every call.

    Holds the movies each person has seen (every split) as a CSR, the user-id lookup and the
    catalogue columns a result shows; the genre matrix is built on the first genre filter
    (string splitting over 87k movies takes ~0.2 s).
    """

    def __init__(self, dataset: PreparedDataset):
        ratings = dataset.ratings
        self.dataset = dataset
        self.name = dataset.manifest.get("name")
        self.n_users = dataset.n_users
        self.n_movies = dataset.n_movies
        # user id -> index by binary search over the sorted ids (pd.Index.get_indexer took
        # 0.15 ms of each recommendation)
        self._id_order = np.argsort(dataset.user_ids, kind="stable")
        self._sorted_ids = np.asarray(dataset.user_ids, dtype=np.int64)[self._id_order]
        self.seen = csr_from_pairs(
            ratings["user"].to_numpy(), ratings["movie"].to_numpy().astype(np.int64), self.n_users
        )
        catalog = dataset.catalog.reset_index(drop=True)
        self._genres = catalog["genres"] if "genres" in catalog else pd.Series([""] * len(catalog))
        self.year = _floats(catalog, "year")
        self.runtime = _floats(catalog, "runtime")
        self.columns = {
            "movieId": catalog["movieId"].to_numpy(),
            "title": _strings(catalog, "title"),
            "genres": _strings(catalog, "genres"),
            "imdb_rating": _floats(catalog, "imdb_rating", np.float32),  # 7.6, not 7.5999
        }

    def with_people(self, seen: Sequence[np.ndarray]) -> ServingIndex:
        """A copy that also knows people folded in after the data set's users
        (`duorec.foldin.FoldIn.seen`): their seen movies at indices n_users, n_users + 1, ...

        They have no user id: recommend for them by index (`recommend_indices`).
        """
        other = copy.copy(self)
        rows = [np.asarray(s, dtype=np.int64) for s in seen]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        indptr = np.concatenate([self.seen.indptr, self.seen.indptr[-1] + np.cumsum(lengths)])
        indices = np.concatenate([self.seen.indices.astype(np.int64), *rows])
        other.seen = CSR(indptr, indices)
        other.n_users = self.n_users + len(rows)
        return other

    @cached_property
    def genres(self) -> tuple[list[str], np.ndarray]:
        """(genre names, multi-hot bool matrix [n_movies, n_genres]) of the MovieLens genres."""
        dummies = self._genres.fillna("").astype(str).str.get_dummies(sep="|")
        return [str(c) for c in dummies.columns], dummies.to_numpy(dtype=bool)

    def user_indices(self, ids: np.ndarray, numbered: bool = False) -> np.ndarray:
        """Indices of user ids (any shape); UsageError naming the first unknown id and the
        data set, prefixed by its pair number (ids [P, 2]) when `numbered`."""
        ids = np.asarray(ids, dtype=np.int64)
        at = np.searchsorted(self._sorted_ids, ids.ravel()).clip(max=len(self._sorted_ids) - 1)
        positions = np.where(self._sorted_ids[at] == ids.ravel(), self._id_order[at], -1)
        if (positions < 0).any():
            first = int(np.flatnonzero(positions < 0)[0])
            try:
                self.dataset.user_index(ids.ravel()[first])
                message = f"unknown user id {ids.ravel()[first]}"
            except KeyError as err:  # its message names the id and the data set
                message = err.args[0]
            raise UsageError(f"pair #{first // 2 + 1}: {message}" if numbered else message)
        return positions.reshape(ids.shape).astype(np.int64)


def _floats(catalog: pd.DataFrame, column: str, dtype: type = np.float64) -> np.ndarray:
    if column not in catalog:
        return np.full(len(catalog), np.nan, dtype=dtype)
    return pd.to_numeric(catalog[column], errors="coerce").to_numpy(dtype=dtype, na_value=np.nan)


def _strings(catalog: pd.DataFrame, column: str) -> np.ndarray:
    if column not in catalog:
        return np.full(len(catalog), None, dtype=object)
    return catalog[column].astype(object).where(catalog[column].notna(), None).to_numpy()


# ---------------------------------------------------------------------------- filters


def allowed_movies(index: ServingIndex, filters: Mapping[str, Any] | None) -> np.ndarray | None:
    """Movie indices passing `filters` (None: no filter, every movie).

    genres: any-of, matched case-insensitively against the MovieLens genres. min_year and
    max_runtime (minutes, from IMDb) drop movies whose year / runtime is unknown, since they
    cannot be shown to qualify. UsageError when nothing passes.
    """
    given = dict(filters or {})
    filters = {k: v for k, v in given.items() if v is not None}
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise UsageError(f"unknown filter(s) {unknown}: use {', '.join(FILTER_KEYS)}")
    if not filters:
        return None
    keep = np.ones(index.n_movies, dtype=bool)
    if "genres" in filters:
        wanted = filters["genres"]
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        names, matrix = index.genres
        lookup = {g.lower(): i for i, g in enumerate(names)}
        missing = [g for g in wanted if str(g).lower() not in lookup]
        if missing:
            raise UsageError(
                f"unknown genre(s) {missing} in {index.name!r}: choose from "
                f"{', '.join(g for g in names if g)}"
            )
        if wanted:
            columns = [lookup[str(g).lower()] for g in wanted]
            keep &= matrix[:, columns].any(axis=1)
    if "min_year" in filters:
        keep &= index.year >= _number(filters["min_year"], "min_year")
    if "max_runtime" in filters:
        limit = _number(filters["max_runtime"], "max_runtime")
        if np.isnan(index.runtime).all():
            raise UsageError(
                f"max_runtime needs IMDb runtimes and the data set {index.name!r} has none "
                "(it was prepared without data.imdb_dir)"
            )
        keep &= index.runtime <= limit
    if not keep.any():
        raise UsageError(f"no movie in {index.name!r} passes the filters {given}")
    return np.flatnonzero(keep)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise UsageError(f"filters.{name} must be a number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------- scoring


def movie_matrix(model: PairRatingModule) -> torch.Tensor:
    """`model.encode_movies()` (the movie tower over the catalogue, once), column-major,
    carrying the row-major original (`fusion.with_rows`).

    Same values, two memory layouts: `score_grid` multiplies by `movie_vectors[:, :-1].T`,
    which is then a contiguous [dim, movies] matrix (~8% faster per pair on one CPU thread),
    and a shortlist gathers whole rows of the other (the price: 22 MB more at 87k movies).
    Pass it as `movie_vectors` to recommend repeatedly without running the tower again.
    """
    if model.training:  # dropout off; skipped when already so (it walks every submodule)
        model.eval()
    return with_rows(model.encode_movies())


def user_matrix(
    model: PairRatingModule, index: ServingIndex, batch_size: int = 65536
) -> torch.Tensor:
    """Every person's rating vector [index.n_users, dim + 1]: the user tower (history bag
    included) run once over everyone, as `movie_matrix` runs the movie tower.

    Pass it as `user_vectors` to recommend repeatedly without running the tower per call, the
    way a service holds both towers' outputs: a tenth of a recommendation over 87k movies
    (benchmarks/README.md). Rows follow `index` (people folded in with `with_people` come
    after the data set's users), so build it from the index the calls use.
    """
    if model.training:
        model.eval()
    ids = torch.arange(index.n_users, device=model.device)
    with torch.inference_mode():
        parts = [
            model.user_vectors(ids[s : s + batch_size]) for s in range(0, len(ids), batch_size)
        ]
    return torch.cat(parts)


def check_user_vectors(user_vectors: torch.Tensor | None, index: ServingIndex) -> None:
    if user_vectors is not None and len(user_vectors) != index.n_users:
        raise UsageError(
            f"user_vectors has {len(user_vectors)} rows but the index has {index.n_users} "
            "people: pass user_matrix(model, index) of this model and index"
        )


class ModelScores:
    """The model as a `duorec.ranking.PairScoreFn` over the candidate movies, plus the
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
        self.rank_by = rank_by or getattr(model, "rank_by", "rating")
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
            a, b, self.vectors, self.watch, self.rank_by, at, vectors
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


def best_unseen(scores: ModelScores, index: ServingIndex, users: np.ndarray, k: int) -> Best:
    """The k best unseen candidate movies of each pair of user indices [P, 2].

    Pairs are scored PAIR_GROUP at a time (cache, as above); the ranking is
    `duorec.ranking.top_k_unseen`, and the shown ratings are read off the same grids.
    """
    parts = []
    for start in range(0, len(users), PAIR_GROUP):
        ua, ub = users[start : start + PAIR_GROUP, 0], users[start : start + PAIR_GROUP, 1]
        if scores.by_watch:  # ratings: the shortlist's, or computed for the k chosen alone
            vectors = scores.user_vectors(ua, ub)
            score, rated = scores.ranked(ua, ub, vectors)
            ranked = top_k_unseen(score, ua, ub, index.seen, k, scores.candidates)
            parts.append([ranked.movie, *scores.shown(ua, ub, ranked.movie, vectors, rated)])
            continue
        score, *shown = scores.grids(ua, ub)
        ranked = top_k_unseen(score, ua, ub, index.seen, k, scores.candidates, len(ua))
        at = scores.rows(ranked.movie)
        parts.append([ranked.movie, *(np.take_along_axis(s, at, axis=1) for s in shown)])
    return Best(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _frame(
    index: ServingIndex, movies: np.ndarray, columns: Sequence[str], values: Mapping[str, Any]
) -> pd.DataFrame:
    """One result frame built in a single constructor: catalogue columns of `movies` + values.

    Plain numpy gathers, not `catalog.iloc`: this runs once per recommendation and pandas
    indexing would cost more than a millisecond of the ~10 ms budget.
    """
    data: dict[str, Any] = {}
    for column in columns:
        if column in values:
            data[column] = values[column]
        elif column == "year":
            year = index.year[movies]
            missing = np.isnan(year)
            data[column] = pd.arrays.IntegerArray(
                np.where(missing, 0, year).astype(np.int32), missing
            )
        else:
            data[column] = index.columns[column][movies]
    # built in `columns` order (no reindexing by name) from fresh arrays (nothing to copy)
    return pd.DataFrame(data, copy=False)


# ---------------------------------------------------------------------------- public API


def recommend(
    model: PairRatingModule,
    index: ServingIndex,
    user_a_id: int,
    user_b_id: int,
    k: int = 10,
    aggregate: str = "mean",
    filters: Mapping[str, Any] | None = None,
    movie_vectors: torch.Tensor | None = None,
    rank_by: str | None = None,
    watch_vectors: torch.Tensor | None = None,
    user_vectors: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Top-k unseen movies for one pair, best first (columns: SINGLE_COLUMNS).

    Ranked by `rank_by` (None: the model's own, "score" for the three-tower model: both
    would watch it and like it); the pair's and each person's predicted ratings are shown.

    Symmetric: recommend(a, b) lists the same movies with the same pair ratings as
    recommend(b, a), with rating_a and rating_b swapped. Pass `movie_vectors`
    (`movie_matrix(model)`, or model.encode_movies()) to skip the movie tower when
    recommending repeatedly, `watch_vectors` (model.encode_watch()) and `user_vectors`
    (`user_matrix(model, index)`, the user tower) likewise.
    """
    request = check_request(k, aggregate, [(user_a_id, user_b_id)], single=True, rank_by=rank_by)
    ids = request.pairs[0].tolist()  # type: ignore[index]
    users = index.user_indices(request.pairs)[0]  # type: ignore[arg-type]
    return recommend_indices(
        model,
        index,
        users,
        ids,
        k=request.k,
        aggregate=request.aggregate,
        filters=filters,
        movie_vectors=movie_vectors,
        rank_by=request.rank_by,
        watch_vectors=watch_vectors,
        user_vectors=user_vectors,
    )


def recommend_indices(
    model: PairRatingModule,
    index: ServingIndex,
    users: Sequence[int] | np.ndarray,
    labels: Sequence[Any],
    k: int = 10,
    aggregate: str = "mean",
    filters: Mapping[str, Any] | None = None,
    movie_vectors: torch.Tensor | None = None,
    rank_by: str | None = None,
    watch_vectors: torch.Tensor | None = None,
    user_vectors: torch.Tensor | None = None,
) -> pd.DataFrame:
    """`recommend` for two user *indices* of `model` and `index`, shown as `labels`.

    The way to serve people folded in (`duorec.foldin`), who have an index in the extended
    model and index (`ServingIndex.with_people`) but no data set user id.
    """
    request = check_request(k, aggregate, rank_by=rank_by)
    users = np.asarray(users, dtype=np.int64).reshape(1, 2)
    if users[0, 0] == users[0, 1]:
        raise UsageError(f"the two people are the same ({labels[0]}): a pair needs two people")
    check_user_vectors(user_vectors, index)
    scores = ModelScores(
        model,
        request.aggregate,
        allowed_movies(index, filters),
        movie_vectors,
        request.rank_by,
        watch_vectors,
        user_vectors,
    )
    best = best_unseen(scores, index, users, request.k)
    found = best.movie[0] >= 0
    movies = best.movie[0][found]
    if len(movies) < request.k:
        log.warning("only %d unseen movies qualify for %s (k=%d)", len(movies), list(labels), k)
    values = {
        "rank": np.arange(1, len(movies) + 1),
        "pair_rating": best.pair[0][found],
        "rating_a": best.rating_a[0][found],
        "rating_b": best.rating_b[0][found],
    }
    frame = _frame(index, movies, SINGLE_COLUMNS, values)
    how = request.aggregate
    frame.attrs.update(
        user_a=labels[0], user_b=labels[1], aggregate=how, pair_head=how == model.target
    )
    return frame


def recommend_many(
    model: PairRatingModule,
    index: ServingIndex,
    pairs: pd.DataFrame | Sequence[tuple[int, int]] | np.ndarray,
    k: int = 10,
    aggregate: str = "mean",
    filters: Mapping[str, Any] | None = None,
    movie_vectors: torch.Tensor | None = None,
    batch_size: int = 256,
    rank_by: str | None = None,
    watch_vectors: torch.Tensor | None = None,
    user_vectors: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Top-k for many pairs (a frame with user_a, user_b, or [(a, b), ...]), BATCH_COLUMNS.

    The movie tower and the filters are computed once (`movie_vectors`, `watch_vectors`,
    `user_vectors`: as `recommend`); pairs are scored `batch_size` at a time. Each pair's rows
    equal what `recommend` returns for it, in the same order.
    """
    request = check_request(k, aggregate, pairs, batch_size=batch_size, rank_by=rank_by)
    ids = request.pairs
    assert ids is not None
    users = index.user_indices(ids, numbered=True)
    check_user_vectors(user_vectors, index)
    scores = ModelScores(
        model,
        request.aggregate,
        allowed_movies(index, filters),
        movie_vectors,
        request.rank_by,
        watch_vectors,
        user_vectors,
    )
    parts = []
    for start in range(0, len(users), request.batch_size):
        best = best_unseen(scores, index, users[start : start + request.batch_size], request.k)
        row, col = np.nonzero(best.movie >= 0)
        values = {
            "user_a": ids[start + row, 0],
            "user_b": ids[start + row, 1],
            "rank": col + 1,
            "pair_rating": best.pair[row, col],
            "rating_a": best.rating_a[row, col],
            "rating_b": best.rating_b[row, col],
        }
        parts.append(_frame(index, best.movie[row, col], BATCH_COLUMNS, values))
    result = pd.concat(parts, ignore_index=True)
    result.attrs.update(aggregate=request.aggregate, pair_head=request.aggregate == model.target)
    return result
