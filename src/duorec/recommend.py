"""`python -m duorec.recommend users=[A,B] k=10`: the films two people should watch together.

Recommendations are the top-k movies that NEITHER person has rated, in any split: whoever
rated a film has seen it, whether that rating went to train, validation or test.

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
caller that recommends repeatedly); each batch of pairs is then scored against the catalogue
with the model's `score_grid` in movie chunks sized to stay in cache, and only the best k per
chunk are kept. `pairs_file=PATH` scores many pairs this way in batches.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from duorec.checkpoint import load_checkpoint, resolve_checkpoint
from duorec.cli import UsageError, friendly_errors
from duorec.data.errors import DataError
from duorec.data.prepared import PreparedDataset
from duorec.io import atomic_path
from duorec.model.base import PairRatingModule
from duorec.model.fusion import AGGREGATES, aggregate, individual_grid

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


# ---------------------------------------------------------------------------- data set index


class DatasetIndex:
    """What recommending needs from a prepared data set, derived once per data set.

    Cached (see `dataset_index`) because deriving it costs far more than scoring a pair.
    The seen-movies CSR (every person's rated movies) is built on the third request: a
    one-off command-line call scans the ratings for its two people instead (~50 ms at 32M
    ratings) rather than grouping every rating; the genre matrix is built on the first genre
    filter (string splitting over 87k movies takes ~0.2 s).
    """

    SCANS = 2  # single-pair requests answered by a scan before the CSR is built

    def __init__(self, dataset: PreparedDataset):
        ratings = dataset.ratings
        self.name = dataset.manifest.get("name")
        self.n_users = dataset.n_users
        self.n_movies = dataset.n_movies
        self._user = ratings["user"].to_numpy()
        self._movie = ratings["movie"].to_numpy()
        self._csr: tuple[np.ndarray, np.ndarray] | None = None
        self._scans = 0
        self.users = pd.Index(dataset.user_ids)
        self._dataset = weakref.ref(dataset)
        catalog = dataset.catalog.reset_index(drop=True)
        self._genres = catalog["genres"] if "genres" in catalog else pd.Series([""] * len(catalog))
        self._genre_matrix: tuple[list[str], np.ndarray] | None = None
        self.year = _floats(catalog, "year")
        self.runtime = _floats(catalog, "runtime")
        self.columns = {
            "movieId": catalog["movieId"].to_numpy(),
            "title": _strings(catalog, "title"),
            "genres": _strings(catalog, "genres"),
            "imdb_rating": _floats(catalog, "imdb_rating", np.float32),  # 7.6, not 7.5999
        }

    @property
    def genres(self) -> tuple[list[str], np.ndarray]:
        """(genre names, multi-hot bool matrix [n_movies, n_genres]) of the MovieLens genres."""
        if self._genre_matrix is None:
            dummies = self._genres.fillna("").astype(str).str.get_dummies(sep="|")
            names = [str(c) for c in dummies.columns]
            self._genre_matrix = names, dummies.to_numpy(dtype=bool)
        return self._genre_matrix

    def user_indices(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Indices of original user ids; UsageError naming the first unknown id and data set."""
        ids = np.asarray(user_ids)
        positions = self.users.get_indexer(ids)
        if (positions < 0).any():
            bad = ids[np.flatnonzero(positions < 0)[0]]
            dataset = self._dataset()
            if dataset is not None:
                try:
                    dataset.user_index(bad)
                except KeyError as err:  # its message names the id and the data set
                    raise UsageError(err.args[0]) from None
            raise UsageError(f"unknown user id {bad}: not in the data set {self.name!r}")
        return positions.astype(np.int64)

    def seen_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, movies): the movies of user u (any split) are movies[indptr[u]:indptr[u+1]].

        Repeats are harmless (they only mask a movie twice), so no per-user sort or dedup:
        ratings grouped by user, as every MovieLens file is, cost one pass.
        """
        if self._csr is None:
            user, movie = self._user, self._movie
            if len(user) and not (user[1:] >= user[:-1]).all():
                order = np.argsort(user, kind="stable")
                user, movie = user[order], movie[order]
            indptr = np.zeros(self.n_users + 1, dtype=np.int64)
            np.cumsum(np.bincount(user, minlength=self.n_users), out=indptr[1:])
            self._csr = indptr, movie.astype(np.int64)
        return self._csr

    def seen_by_pairs(
        self, user_a: np.ndarray, user_b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, movie) of every movie rated by user_a[row] or user_b[row], as flat arrays."""
        if self._csr is None and len(user_a) == 1 and self._scans < self.SCANS:
            self._scans += 1
            movies = self._movie[(self._user == user_a[0]) | (self._user == user_b[0])]
            return np.zeros(len(movies), dtype=np.int64), movies.astype(np.int64)
        indptr, seen = self.seen_csr()
        users = np.concatenate([user_a, user_b])
        starts = indptr[users]
        lengths = indptr[users + 1] - starts
        rows = np.repeat(np.tile(np.arange(len(user_a)), 2), lengths)
        offsets = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, seen[np.repeat(starts, lengths) + offsets]


def _floats(catalog: pd.DataFrame, column: str, dtype: type = np.float64) -> np.ndarray:
    if column not in catalog:
        return np.full(len(catalog), np.nan, dtype=dtype)
    return pd.to_numeric(catalog[column], errors="coerce").to_numpy(dtype=dtype, na_value=np.nan)


def _strings(catalog: pd.DataFrame, column: str) -> np.ndarray:
    if column not in catalog:
        return np.full(len(catalog), None, dtype=object)
    return catalog[column].astype(object).where(catalog[column].notna(), None).to_numpy()


_INDEXES: dict[int, tuple[weakref.ref, DatasetIndex]] = {}


def dataset_index(dataset: PreparedDataset) -> DatasetIndex:
    """The cached `DatasetIndex` of `dataset` (dropped when the data set is garbage-collected)."""
    key = id(dataset)
    hit = _INDEXES.get(key)
    if hit is not None and hit[0]() is dataset:
        return hit[1]
    index = DatasetIndex(dataset)
    _INDEXES[key] = (weakref.ref(dataset, lambda _: _INDEXES.pop(key, None)), index)
    return index


# ---------------------------------------------------------------------------- requests


def check_aggregate(how: str) -> str:
    if how not in AGGREGATES:
        raise UsageError(f"unknown aggregate {how!r}: choose one of {', '.join(AGGREGATES)}")
    return how


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise UsageError(f"k must be a positive integer, got {k!r}")
    return int(k)


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


def allowed_movies(index: DatasetIndex, filters: Mapping[str, Any] | None) -> np.ndarray | None:
    """Movie indices passing `filters` (None: no filter, every movie).

    genres: any-of, matched case-insensitively against the MovieLens genres. min_year and
    max_runtime (minutes, from IMDb) drop movies whose year / runtime is unknown, since they
    cannot be shown to qualify.
    """
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
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
    return np.flatnonzero(keep)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise UsageError(f"filters.{name} must be a number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------- scoring


@dataclass
class TopK:
    """Best k per pair: movie indices (-1 where fewer than k qualify) and star ratings."""

    movie: np.ndarray  # [B, k] int64
    pair: np.ndarray  # [B, k] float32
    rating_a: np.ndarray
    rating_b: np.ndarray


def _score_chunk(
    model: PairRatingModule,
    user_a: torch.Tensor,
    user_b: torch.Tensor,
    towers: tuple[torch.Tensor, torch.Tensor] | None,
    vectors: torch.Tensor,
    how: str,
) -> tuple[torch.Tensor, ...]:
    """(ranking key, pair, a, b) for a movie chunk; the three ratings in stars.

    The shown ratings are clamped to the rating range, so several movies can show the same
    5.0; the key orders them by the model's unclamped opinion without ever reordering two
    different shown values. Pair head, min and max: the unclamped score itself (the clamp is
    monotone and commutes with min / max, so the shown column stays sorted). Mean of two
    clamped predictions: that shown mean, plus TIE_WEIGHT * the unclamped mean (bounded) in
    float64.
    """
    if towers is None:
        key, ra, rb = model.score_grid(user_a, user_b, vectors)
        return key, model.unscale(key), model.unscale(ra), model.unscale(rb)
    raw_a, raw_b = individual_grid(towers[0], vectors), individual_grid(towers[1], vectors)
    ra, rb = model.unscale(raw_a), model.unscale(raw_b)
    pair, raw = aggregate(ra, rb, how), aggregate(raw_a, raw_b, how)
    if how != "mean":
        return raw, pair, ra, rb
    key = pair.double() + TIE_WEIGHT * raw.clamp(-TIE_RANGE, TIE_RANGE).double()
    return key, pair, ra, rb


@torch.inference_mode()
def top_k(
    model: PairRatingModule,
    index: DatasetIndex,
    user_a: np.ndarray,
    user_b: np.ndarray,
    k: int,
    how: str,
    movie_vectors: torch.Tensor,
    candidates: np.ndarray | None = None,
) -> TopK:
    """The k best unseen movies for each pair (user indices), streamed over movie chunks.

    `movie_vectors` must already be restricted to `candidates` (movie indices, None = all).
    Per chunk only the best k survive, so memory stays O(B * k * chunks) whatever the size of
    the catalogue; the survivors are merged and sorted by (key desc, movie index asc).
    Large batches are scored PAIR_GROUP pairs at a time, for the same cache reason.
    """
    if len(user_a) > PAIR_GROUP:
        groups = [
            top_k(
                model,
                index,
                user_a[s : s + PAIR_GROUP],
                user_b[s : s + PAIR_GROUP],
                k,
                how,
                movie_vectors,
                candidates,
            )
            for s in range(0, len(user_a), PAIR_GROUP)
        ]
        return TopK(*(np.concatenate([getattr(g, f.name) for g in groups]) for f in fields(TopK)))
    n_pairs, n_candidates = len(user_a), len(movie_vectors)
    # movies either person has seen, as (row, candidate position), sorted by position
    rows, cols = index.seen_by_pairs(user_a, user_b)
    if candidates is not None:
        position = np.full(index.n_movies, -1, dtype=np.int64)
        position[candidates] = np.arange(len(candidates))
        cols = position[cols]
        rows, cols = rows[cols >= 0], cols[cols >= 0]
    order = np.argsort(cols, kind="stable")
    rows, cols = torch.from_numpy(rows[order]), torch.from_numpy(cols[order])
    bounds = cols.numpy()

    device = movie_vectors.device
    a = torch.as_tensor(user_a, dtype=torch.long, device=device)
    b = torch.as_tensor(user_b, dtype=torch.long, device=device)
    use_head = how == model.target
    towers = None if use_head else (model.user_vectors(a), model.user_vectors(b))
    chunk = max(MIN_CHUNK, CHUNK_ELEMENTS // max(n_pairs, 1))
    kept: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, n_candidates, chunk):
        vectors = movie_vectors[start : start + chunk]
        key, pair, ra, rb = _score_chunk(model, a, b, towers, vectors, how)
        lo, hi = np.searchsorted(bounds, [start, start + len(vectors)])
        if hi > lo:
            key[rows[lo:hi].to(device), (cols[lo:hi] - start).to(device)] = -math.inf
        best, at = torch.topk(key, min(k, len(vectors)), dim=1)
        kept.append(
            (best.double(), pair.gather(1, at), ra.gather(1, at), rb.gather(1, at), at + start)
        )
    if not kept:
        empty = np.zeros((n_pairs, 0))
        return TopK(empty.astype(np.int64), *(empty.astype(np.float32) for _ in range(3)))
    key, pair, ra, rb, position = (
        torch.cat(c, dim=1).cpu().numpy() for c in zip(*kept, strict=True)
    )
    movie = position if candidates is None else candidates[position]
    order = np.lexsort((movie, -key), axis=1)[:, :k]
    pick = lambda x: np.take_along_axis(x, order, axis=1)  # noqa: E731
    movie = np.where(np.isfinite(pick(key)), pick(movie), -1)
    return TopK(movie, pick(pair), pick(ra), pick(rb))


def movie_matrix(model: PairRatingModule) -> torch.Tensor:
    """`model.encode_movies()` (the movie tower over the catalogue, once), column-major.

    Same values, another memory layout: `score_grid` multiplies by `movie_vectors[:, :-1].T`,
    which is then a contiguous [dim, movies] matrix, ~8% faster per pair on one CPU thread.
    Pass it as `movie_vectors` to recommend repeatedly without running the tower again.
    """
    if model.training:  # dropout off; skipped when already so (it walks every submodule)
        model.eval()
    return model.encode_movies().T.contiguous().T


def _candidate_vectors(
    model: PairRatingModule,
    candidates: np.ndarray | None = None,
    movie_vectors: torch.Tensor | None = None,
) -> torch.Tensor:
    """The movie vectors of the candidate movies, computed once per call or reused."""
    if model.training:
        model.eval()
    vectors = movie_matrix(model) if movie_vectors is None else movie_vectors
    if len(vectors) != model.n_movies:
        raise UsageError(
            f"movie_vectors has {len(vectors)} rows but the model has {model.n_movies} "
            "movies: pass model.encode_movies() of this model"
        )
    if candidates is None:
        return vectors
    # gather columns of the transposed view: the result is column-major, like movie_matrix
    index = torch.as_tensor(candidates, dtype=torch.long, device=vectors.device)
    return vectors.T.index_select(1, index).T


def _frame(
    index: DatasetIndex, movies: np.ndarray, columns: Sequence[str], values: Mapping[str, Any]
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
    return pd.DataFrame(data, columns=list(columns))


# ---------------------------------------------------------------------------- public API


def recommend(
    model: PairRatingModule,
    dataset: PreparedDataset,
    user_a_id: int,
    user_b_id: int,
    k: int = 10,
    aggregate: str = "mean",
    filters: Mapping[str, Any] | None = None,
    movie_vectors: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Top-k unseen movies for one pair, best first (columns: SINGLE_COLUMNS).

    Symmetric: recommend(a, b) lists the same movies with the same pair ratings as
    recommend(b, a), with rating_a and rating_b swapped. Pass `movie_vectors`
    (`movie_matrix(model)`, or model.encode_movies()) to skip the movie tower when
    recommending repeatedly.
    """
    k, how = check_k(k), check_aggregate(aggregate)
    ids = [as_user_id(user_a_id), as_user_id(user_b_id)]
    if ids[0] == ids[1]:
        raise UsageError(f"the two users are the same ({ids[0]}): a pair needs two people")
    index = dataset_index(dataset)
    users = index.user_indices(ids)
    candidates = allowed_movies(index, filters)
    if candidates is not None and len(candidates) == 0:
        raise UsageError(f"no movie in {index.name!r} passes the filters {dict(filters or {})}")
    vectors = _candidate_vectors(model, candidates, movie_vectors)
    best = top_k(model, index, users[:1], users[1:], k, how, vectors, candidates)
    found = best.movie[0] >= 0
    movies = best.movie[0][found]
    if len(movies) < k:
        log.warning("only %d unseen movies qualify for users %s (k=%d)", len(movies), ids, k)
    values = {
        "rank": np.arange(1, len(movies) + 1),
        "pair_rating": best.pair[0][found],
        "rating_a": best.rating_a[0][found],
        "rating_b": best.rating_b[0][found],
    }
    frame = _frame(index, movies, SINGLE_COLUMNS, values)
    frame.attrs.update(user_a=ids[0], user_b=ids[1], aggregate=how, pair_head=how == model.target)
    return frame


def recommend_many(
    model: PairRatingModule,
    dataset: PreparedDataset,
    pairs: pd.DataFrame | Sequence[tuple[int, int]] | np.ndarray,
    k: int = 10,
    aggregate: str = "mean",
    filters: Mapping[str, Any] | None = None,
    movie_vectors: torch.Tensor | None = None,
    batch_size: int = 256,
) -> pd.DataFrame:
    """Top-k for many pairs (a frame with user_a, user_b, or [(a, b), ...]), BATCH_COLUMNS.

    The movie tower and the filters are computed once; pairs are scored `batch_size` at a
    time. Each pair's rows equal what `recommend` returns for it, in the same order.
    """
    k, how = check_k(k), check_aggregate(aggregate)
    if batch_size <= 0:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size}")
    if isinstance(pairs, pd.DataFrame):
        raw = pairs[["user_a", "user_b"]].to_numpy()
    else:
        raw = np.asarray(pairs, dtype=object).reshape(-1, 2) if len(pairs) else np.zeros((0, 2))
    if np.issubdtype(raw.dtype, np.integer):
        ids = raw.astype(np.int64)
    else:
        ids = np.array([[as_user_id(v) for v in row] for row in raw], dtype=np.int64)
    ids = ids.reshape(-1, 2)
    if len(ids) == 0:
        raise UsageError("no pairs to recommend for")
    same = np.flatnonzero(ids[:, 0] == ids[:, 1])
    if len(same):
        raise UsageError(
            f"pair #{same[0] + 1} names user {ids[same[0], 0]} twice: a pair needs two people"
        )
    index = dataset_index(dataset)
    flat = ids.ravel()
    positions = index.users.get_indexer(flat)
    if (positions < 0).any():
        bad = int(np.flatnonzero(positions < 0)[0])
        try:
            index.user_indices(flat[bad : bad + 1])
        except UsageError as err:
            raise UsageError(f"pair #{bad // 2 + 1}: {err}") from None
    users = positions.reshape(-1, 2).astype(np.int64)
    candidates = allowed_movies(index, filters)
    if candidates is not None and len(candidates) == 0:
        raise UsageError(f"no movie in {index.name!r} passes the filters {dict(filters or {})}")
    vectors = _candidate_vectors(model, candidates, movie_vectors)
    parts = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        best = top_k(model, index, batch[:, 0], batch[:, 1], k, how, vectors, candidates)
        row, col = np.nonzero(best.movie >= 0)
        movies = best.movie[row, col]
        values = {
            "user_a": ids[start + row, 0],
            "user_b": ids[start + row, 1],
            "rank": col + 1,
            "pair_rating": best.pair[row, col],
            "rating_a": best.rating_a[row, col],
            "rating_b": best.rating_b[row, col],
        }
        parts.append(_frame(index, movies, BATCH_COLUMNS, values))
    result = pd.concat(parts, ignore_index=True)
    result.attrs.update(aggregate=how, pair_head=how == model.target)
    return result


# ---------------------------------------------------------------------------- files


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


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or parquet by extension, whole or not at all."""
    path = check_output(path)
    assert path is not None
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path


def read_pairs(path: str | Path) -> pd.DataFrame:
    """user_a, user_b pairs from a CSV or parquet file; DataError naming the file otherwise."""
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise DataError(path, "pairs file not found")
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_EXTENSIONS:
        raise DataError(path, f"unknown file type {suffix or '(none)'!r}: use .csv or .parquet")
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(path, f"cannot read the pairs: {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in ("user_a", "user_b") if c not in frame]
    if missing:
        raise DataError(
            path,
            f"missing column {', '.join(missing)} (a pairs file needs columns user_a,user_b; "
            f"it has {', '.join(map(str, frame.columns)) or 'none'})",
        )
    for column in ("user_a", "user_b"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                path,
                f"column {column} must hold integer user ids, got {frame[column].iloc[row]!r}",
                line=row + 2 if suffix == ".csv" else None,
            )
        frame[column] = values.astype(np.int64)
    if frame.empty:
        raise DataError(path, "no pairs (the file has a header and no rows)")
    return frame[["user_a", "user_b"]]


# ---------------------------------------------------------------------------- printing


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float | np.floating) else str(value)


def recommendations_table(frame: pd.DataFrame) -> Table:
    """The single-pair table: what to watch, with each person's predicted rating."""
    a, b = frame.attrs.get("user_a", "a"), frame.attrs.get("user_b", "b")
    how = frame.attrs.get("aggregate", "mean")
    source = "pair head" if frame.attrs.get("pair_head") else f"{how} of the two predictions"
    table = Table(title=f"top {len(frame)} for users {a} and {b} (pair rating: {source})")
    for name, justify in (
        ("#", "right"),
        ("title", "left"),
        ("year", "right"),
        ("genres", "left"),
        ("IMDb", "right"),
        ("pair", "right"),
        (f"user {a}", "right"),
        (f"user {b}", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in frame.itertuples(index=False):
        table.add_row(
            str(row.rank),
            str(row.title),
            _fmt(row.year),
            str(row.genres).replace("|", ", "),
            _fmt(row.imdb_rating, 1),
            _fmt(row.pair_rating),
            _fmt(row.rating_a),
            _fmt(row.rating_b),
        )
    return table


# ---------------------------------------------------------------------------- entry point


@dataclass
class Request:
    """The validated command line: everything checked before a model is loaded."""

    users: list[int] | None
    pairs_file: Path | None
    k: int
    aggregate: str
    filters: dict[str, Any]
    output: Path | None
    batch_size: int


def parse_request(cfg: DictConfig) -> Request:
    """Check the arguments up front, so a typo costs no model loading."""
    k, how = check_k(cfg.get("k")), check_aggregate(str(cfg.get("aggregate")))
    output = check_output(cfg.get("output"))
    filters = OmegaConf.to_container(cfg.get("filters") or {}, resolve=True)
    pairs_file = cfg.get("pairs_file")
    has_users = not OmegaConf.is_missing(cfg, "users") and cfg.get("users") is not None
    batch_size = check_k(cfg.get("batch_size", 256))
    if pairs_file:
        if has_users:
            raise UsageError("pass either users=[A,B] or pairs_file=PATH, not both")
        if output is None:
            raise UsageError("pairs_file needs output=PATH.csv or output=PATH.parquet")
        path = Path(str(pairs_file)).expanduser()
        if not path.is_file():
            raise DataError(path, "pairs file not found")
        return Request(None, path, k, how, filters, output, batch_size)  # type: ignore[arg-type]
    if not has_users:
        raise UsageError("pass two user ids, users=[A,B] (or pairs_file=PATH with output=PATH)")
    users = cfg.users
    if not OmegaConf.is_list(users) or len(users) != 2:
        raise UsageError(f"users must be exactly two user ids, users=[A,B]; got {users}")
    ids = [as_user_id(u) for u in users]
    if ids[0] == ids[1]:
        raise UsageError(f"the two users are the same ({ids[0]}): a pair needs two people")
    return Request(ids, None, k, how, filters, output, batch_size)  # type: ignore[arg-type]


def run(cfg: DictConfig) -> pd.DataFrame:
    """Recommend as configured; print the table (one pair) or write the file (many pairs)."""
    request = parse_request(cfg)
    ckpt = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir)
    model, dataset = load_checkpoint(ckpt, cfg.paths.cache_dir)
    if request.pairs_file is not None:
        pairs = read_pairs(request.pairs_file)
        try:
            frame = recommend_many(
                model,
                dataset,
                pairs,
                request.k,
                request.aggregate,
                request.filters,
                batch_size=request.batch_size,
            )
        except UsageError as err:
            raise UsageError(f"{request.pairs_file}: {err}") from None
        assert request.output is not None
        write_table(frame, request.output)
        print(f"{len(pairs)} pairs, {len(frame)} recommendations: {request.output}")
        return frame
    assert request.users is not None
    frame = recommend(
        model,
        dataset,
        *request.users,
        k=request.k,
        aggregate=request.aggregate,
        filters=request.filters,
    )
    console = Console(width=None if Console().is_terminal else 120)
    console.print(recommendations_table(frame))
    if request.output is not None:
        write_table(frame, request.output)
        print(f"written: {request.output}")
    return frame


@hydra.main(version_base="1.3", config_path="../../conf", config_name="recommend")
@friendly_errors("duorec.recommend")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
