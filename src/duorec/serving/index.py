"""What recommending needs from a prepared data set, built once: who has seen what, the
user-id lookup, the catalogue columns a result shows, the filters and a title search.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from duorec.csr import CSR, csr_from_pairs
from duorec.data.prepared import PreparedDataset
from duorec.data.titles import normalise_title, normalise_titles
from duorec.errors import UsageError

FILTER_KEYS = ("genres", "min_year", "max_runtime", "exclude")


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
        (`duorec.model.foldin.FoldIn.seen`): their seen movies at indices n_users, n_users + 1, ...

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
    def movie_lookup(self) -> dict[int, int]:
        """movieId -> movie index."""
        return {int(m): i for i, m in enumerate(self.columns["movieId"])}

    def movie_lookup_array(self, movie_ids: np.ndarray) -> np.ndarray:
        """Movie indices of movieIds (all known: they come from this catalogue)."""
        return pd.Index(self.columns["movieId"]).get_indexer(movie_ids)

    @cached_property
    def title_keys(self) -> np.ndarray:
        """Each movie's normalised title without its year (`search_titles`), built on the
        first search."""
        titles = pd.Series(self.columns["title"]).fillna("").astype(str)
        stripped = titles.str.replace(r"\s*\(\d{4}(?:[-–]\d{0,4})?\)\s*$", "", regex=True)
        return normalise_titles(stripped).fillna("").to_numpy(dtype=str)

    @cached_property
    def rating_counts(self) -> np.ndarray:
        """How many ratings each movie has in the data set: a search lists known films first."""
        return np.bincount(self.dataset.ratings["movie"].to_numpy(), minlength=self.n_movies)

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


def allowed_movies(index: ServingIndex, filters: Mapping[str, Any] | None) -> np.ndarray | None:
    """Movie indices passing `filters` (None: no filter, every movie).

    exclude: movieIds never to recommend (a pick the people turned down).
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
        keep &= _in_genres(index, filters["genres"])
    if "exclude" in filters:  # movieIds the people turned down ("not for us")
        keep[_excluded(index, filters["exclude"])] = False
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


def _in_genres(index: ServingIndex, wanted: Any) -> np.ndarray:
    """[n_movies] bool: in any of the `wanted` genres (an empty list: every movie)."""
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    names, matrix = index.genres
    lookup = {g.lower(): i for i, g in enumerate(names)}
    missing = [g for g in wanted if str(g).lower() not in lookup]
    if missing:
        raise UsageError(
            f"unknown genre(s) {missing} in {index.name!r}: choose from "
            f"{', '.join(g for g in names if g)}"
        )
    if not wanted:
        return np.ones(index.n_movies, dtype=bool)
    return matrix[:, [lookup[str(g).lower()] for g in wanted]].any(axis=1)


def _excluded(index: ServingIndex, movie_ids: Any) -> np.ndarray:
    """Movie indices of the movieIds in `filters.exclude`; UsageError naming an unknown one."""
    movie_ids = [movie_ids] if isinstance(movie_ids, int | str) else list(movie_ids)
    out = []
    for movie_id in movie_ids:
        try:
            out.append(index.movie_lookup[int(movie_id)])
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"filters.exclude: unknown movieId {movie_id!r}") from None
    return np.array(out, dtype=np.int64)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise UsageError(f"filters.{name} must be a number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------- title search

SEARCH_LIMIT = 50  # the most titles one search returns


def search_titles(index: ServingIndex, query: Any, limit: int = 10) -> np.ndarray:
    """Movie indices whose title contains `query`, best first: titles that start with it,
    then the most rated (what a person is likeliest to have seen), then by title.

    Matched on the title key matching uses for exports (`duorec.data.titles`: accents,
    case, punctuation, "The" and roman numerals do not matter), so "amelie" finds
    "Amélie (2001)" and "matrix" finds "Matrix, The (1999)".
    """
    if not isinstance(query, str) or not query.strip():
        raise UsageError("the search needs part of a title, got nothing")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SEARCH_LIMIT:
        raise UsageError(f"limit must be an integer from 1 to {SEARCH_LIMIT}, got {limit!r}")
    key = normalise_title(query[:200])
    if not key:
        return np.zeros(0, dtype=np.int64)
    keys, counts = index.title_keys, index.rating_counts
    hit = np.flatnonzero(np.char.find(keys, key) >= 0)
    starts = np.char.startswith(keys[hit], key)
    order = np.lexsort((keys[hit], -counts[hit], ~starts))
    return hit[order][:limit]
