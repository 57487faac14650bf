"""User and movie features, fitted on training ratings only.

Anything computed from ratings (means, counts, genre tastes) sees the TRAIN split alone:
a user mean that includes test ratings would leak the answer into the input. Metadata (genres,
year, runtime, IMDb rating and votes, people) carries no MovieLens rating and is used whole.
Everything is vectorised with `np.bincount` so MovieLens-32M fits in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from duorec.csr import csr_from_pairs, ragged_offsets
from duorec.data.split import TRAIN

SHRINK = 5.0  # pseudo-ratings pulling sparse means towards their prior


@dataclass
class Features:
    """Dense float32 feature matrices plus the people of each movie as a CSR bag."""

    user: np.ndarray  # [n_users, n_user_features]
    user_names: list[str]
    movie: np.ndarray  # [n_movies, n_movie_features]
    movie_names: list[str]
    people_offsets: np.ndarray  # int64 [n_movies + 1]; people of movie m: index[off[m]:off[m+1]]
    people_index: np.ndarray  # int32, ids into `people_vocab`
    people_vocab: list[str]  # "director:nm0000001", "writer:...", "cast:..."
    global_mean: float


def genre_matrix(genres: pd.Series, sep: str) -> tuple[np.ndarray, list[str]]:
    """Multi-hot bool matrix [n, G] of separator-joined genre strings, G sorted by name."""
    split = genres.fillna("").astype(str).str.split(sep)
    names = sorted({g for gs in split for g in gs if g and g != "(no genres listed)"})
    column = {g: i for i, g in enumerate(names)}
    matrix = np.zeros((len(genres), len(names)), dtype=bool)
    for row, gs in enumerate(split):
        for g in gs:
            if g in column:
                matrix[row, column[g]] = True
    return matrix, names


def fit_features(
    user: np.ndarray,
    movie: np.ndarray,
    rating: np.ndarray,
    split: np.ndarray,
    n_users: int,
    catalog: pd.DataFrame,
    people: Sequence[Sequence[str]] | None = None,
    min_person_count: int = 2,
) -> Features:
    """Build all features from the train split of the ratings and the movie catalog.

    `catalog` is indexed by movie index and has columns genres ("A|B"), imdb_genres ("A,B" or
    null), year, runtime, imdb_rating, imdb_votes (nullable numbers). `people[m]` lists role-
    tagged person tokens of movie m; those in fewer than `min_person_count` movies are dropped
    because a person seen once cannot be told apart from the movie's own id embedding.
    """
    train = split == TRAIN
    u, m, r = user[train], movie[train], rating[train].astype(np.float64)
    n_movies = len(catalog)
    mu = float(r.mean()) if len(r) else 0.0

    ml_genres, ml_names = genre_matrix(catalog["genres"], "|")
    user_block, user_names = _user_features(u, m, r, mu, n_users, ml_genres, ml_names)
    _without_ratings(user_block, user_names, np.bincount(u, minlength=n_users), ml_genres[m])

    movie_count = np.bincount(m, minlength=n_movies).astype(np.float64)
    movie_sum = np.bincount(m, weights=r, minlength=n_movies)
    movie_mean = (movie_sum + SHRINK * mu) / (movie_count + SHRINK) - mu
    imdb_genres, imdb_names = genre_matrix(catalog["imdb_genres"], ",")
    numeric, numeric_names = _movie_numeric(catalog)
    movie_block = np.hstack(
        [
            ml_genres,
            imdb_genres,
            numeric,
            movie_mean[:, None],
            _standardise(np.log1p(movie_count))[:, None],
        ]
    ).astype(np.float32)
    movie_names = (
        [f"genre:{g}" for g in ml_names]
        + [f"imdb_genre:{g}" for g in imdb_names]
        + numeric_names
        + ["train_mean", "log_train_count"]
    )

    offsets, index, vocab = people_bags(people or [[] for _ in range(n_movies)], min_person_count)
    return Features(user_block, user_names, movie_block, movie_names, offsets, index, vocab, mu)


def _user_features(
    u: np.ndarray,
    m: np.ndarray,
    r: np.ndarray,
    mu: float,
    n_users: int,
    movie_genres: np.ndarray,
    genre_names: list[str],
    count_reference: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    count = np.bincount(u, minlength=n_users).astype(np.float64)
    total = np.bincount(u, weights=r, minlength=n_users)
    mean = (total + SHRINK * mu) / (count + SHRINK)
    residual = r - mean[u]
    log_count = np.log1p(count)
    scale = None if count_reference is None else np.log1p(count_reference)
    columns = [mean - mu, _standardise(log_count, scale)]
    names = ["mean", "log_count"]
    share_cols, taste_cols = [], []
    for g in range(len(genre_names)):
        in_genre = movie_genres[m, g]
        g_count = np.bincount(u[in_genre], minlength=n_users)
        g_residual = np.bincount(u[in_genre], weights=residual[in_genre], minlength=n_users)
        share_cols.append(g_count / np.maximum(count, 1.0))
        taste_cols.append(g_residual / (g_count + SHRINK))
    names += [f"share:{g}" for g in genre_names] + [f"taste:{g}" for g in genre_names]
    block = np.column_stack(columns + share_cols + taste_cols).astype(np.float32)
    return block, names


def _without_ratings(
    block: np.ndarray, names: list[str], count: np.ndarray, rated_genres: np.ndarray
) -> None:
    """Rows of users with no ratings take each feature's prior, in place: the log count of
    the least active rated user, the genre shares of all the ratings (mean and tastes are
    already shrunk to theirs, 0).

    Why: left as computed, such a user has all-zero genre shares (every rated user's sum to
    at least one) and a count below everyone's, inputs no training triple ever has (a train
    pair's two people both have train ratings), and the towers extrapolate from there: on
    the temporal split, where 99% of the test pairs hold someone who joined after the split
    date, they predicted those people 0.8 stars low (docs/results.md). Users with ratings,
    and so every random-split feature, are unchanged; fold-in computes a new person's
    features from their own ratings (`user_features_for`) and does not come here.
    """
    empty, rated = count == 0, count > 0
    if not empty.any() or not rated.any():
        return
    log_count = names.index("log_count")
    block[empty, log_count] = block[rated, log_count].min()
    shares = [i for i, name in enumerate(names) if name.startswith("share:")]
    # `rated_genres`: the multi-hot genres of every train rating, one row per rating
    block[np.ix_(empty, shares)] = rated_genres.mean(0).astype(np.float32)


def user_features_for(
    user: np.ndarray,
    movie: np.ndarray,
    rating: np.ndarray,
    n_users: int,
    catalog: pd.DataFrame,
    global_mean: float,
    train_counts: np.ndarray,
) -> np.ndarray:
    """User features of people who were not in training (fold-in), from their own ratings.

    The same code as `fit_features`, so a new person's features mean what a training user's
    did: shrunk mean and genre tastes around the train global mean, and the log count
    standardised with the *training users'* counts (`train_counts`: train ratings per
    training user, zeros included), not over the new people alone (one person would
    always standardise to 0). For a training user's own train ratings it gives their row
    of `fit_features`.
    """
    genres, names = genre_matrix(catalog["genres"], "|")
    reference = np.asarray(train_counts, dtype=np.float64)
    block, _ = _user_features(
        user, movie, rating.astype(np.float64), global_mean, n_users, genres, names, reference
    )
    return block


def _movie_numeric(catalog: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Standardised numeric metadata with a missing flag per column (missing -> 0)."""
    transforms = {
        "year": lambda x: x,
        "runtime": np.log1p,
        "imdb_rating": lambda x: x,
        "imdb_votes": np.log1p,
    }
    columns, names = [], []
    for column, transform in transforms.items():
        values = pd.to_numeric(catalog[column], errors="coerce").astype("float64").to_numpy()
        missing = np.isnan(values)
        columns += [np.where(missing, 0.0, _standardise(transform(values))), missing]
        names += [column, f"{column}_missing"]
    return np.column_stack(columns).astype(np.float32), names


def _standardise(x: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """z-score ignoring NaN; a constant column becomes zeros rather than NaN.

    `reference`: take the mean and spread from these values instead of `x` (new users are
    scaled as the training users were).
    """
    finite = x[np.isfinite(x)] if reference is None else reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.zeros_like(x, dtype=np.float64)
    std = finite.std()
    return (x - finite.mean()) / (std if std > 0 else 1.0)


def people_bags(
    people: Sequence[Sequence[str]], min_count: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CSR bags of person ids over a min-count vocabulary, for an EmbeddingBag.

    150k+ people cannot be one-hot columns; a bag of learned embeddings costs O(people).
    """
    lengths = np.fromiter((len(p) for p in people), dtype=np.int64, count=len(people))
    flat = pd.Series([t for p in people for t in p], dtype=object)
    counts = flat.value_counts()
    vocab = sorted(counts.index[counts >= min_count])
    ids = pd.Series(np.arange(len(vocab), dtype=np.int32), index=vocab)
    mapped = flat.map(ids).to_numpy(dtype=np.float64) if len(flat) else np.zeros(0)
    keep = ~np.isnan(mapped)
    owner, _ = ragged_offsets(lengths)
    bags = csr_from_pairs(owner[keep], mapped[keep].astype(np.int32), len(people))
    return bags.indptr, bags.indices, list(vocab)
