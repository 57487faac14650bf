"""Readers for every MovieLens release layout, returning the same typed, validated frames.

The layout is detected from the folder, so `data.movielens_dir` can point at any release:

* CSV releases (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m): ratings.csv, movies.csv,
  optional links.csv and tags.csv, UTF-8.
* `::` releases (ml-1m, ml-10m): ratings.dat and movies.dat, no header, latin-1 in ml-1m.
* ml-100k: u.data (tab-separated) and u.item (`|`-separated, 19 genre flags), latin-1.

Fast paths read whole columns at once; when they fail, a slow line-by-line diagnosis finds the
first offending line so the error names it (32M ratings must not pay for per-line checks).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from duorec.data.errors import DataError

RATING_COLUMNS = ["userId", "movieId", "rating", "timestamp"]
MOVIE_COLUMNS = ["movieId", "title", "genres"]
RATING_FIELDS = dict(enumerate(RATING_COLUMNS))
ML100K_GENRES = [
    "(no genres listed)", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


@dataclass
class MovieLensData:
    """One MovieLens release as typed frames; `links` is None where the release has none."""

    ratings: pd.DataFrame  # userId int64, movieId int64, rating float32, timestamp int64
    movies: pd.DataFrame  # movieId int64, title str, genres str ("A|B" or "(no genres listed)")
    links: pd.DataFrame | None  # movieId int64, imdbId Int64 (nullable)
    layout: str  # "csv" | "dat" | "100k"
    root: Path
    ratings_path: Path
    rating_range: tuple[float, float]


def detect_layout(root: str | Path) -> str:
    """Name the release layout found in `root`, or fail saying which files were looked for."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "MovieLens folder does not exist")
    if (root / "ratings.csv").exists():
        return "csv"
    if (root / "ratings.dat").exists():
        return "dat"
    if (root / "u.data").exists():
        return "100k"
    raise DataError(root, "no MovieLens ratings found: expected ratings.csv, ratings.dat or u.data")


def read_movielens(root: str | Path) -> MovieLensData:
    """Read and validate a MovieLens release folder of any supported layout."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == "csv":
        ratings_path = root / "ratings.csv"
        ratings = _read_ratings_csv(ratings_path)
        movies = _read_movies_csv(_require(root / "movies.csv"))
        links = _read_links_csv(root / "links.csv") if (root / "links.csv").exists() else None
        rating_range = (0.5, 5.0)
    elif layout == "dat":
        ratings_path = root / "ratings.dat"
        ratings = _read_ratings_dat(ratings_path)
        movies = _read_movies_dat(_require(root / "movies.dat"))
        links = None
        rating_range = (0.5, 5.0) if (ratings["rating"] % 1 != 0).any() else (1.0, 5.0)
    else:
        ratings_path = root / "u.data"
        ratings = _read_ratings_100k(ratings_path)
        movies = _read_movies_100k(_require(root / "u.item"))
        links = None
        rating_range = (1.0, 5.0)
    header = 1 if layout == "csv" else 0
    _validate_ratings(ratings, ratings_path, header_lines=header, rating_range=rating_range)
    _check_movies_known(ratings, movies, ratings_path, header)
    return MovieLensData(ratings, movies, links, layout, root, ratings_path, rating_range)


def _require(path: Path) -> Path:
    if not path.exists():
        raise DataError(path, "required MovieLens file is missing")
    return path


# --------------------------------------------------------------------------- CSV releases


def _read_ratings_csv(path: Path) -> pd.DataFrame:
    _check_header(path, RATING_COLUMNS)
    dtypes = {"userId": "int64", "movieId": "int64", "rating": "float32", "timestamp": "int64"}
    try:
        frame = pd.read_csv(path, engine="pyarrow", usecols=RATING_COLUMNS, dtype=dtypes)
    except Exception:  # noqa: BLE001 - any fast-path failure is re-diagnosed line by line
        _diagnose_lines(path, sep=",", n_fields=4, numeric=RATING_FIELDS, header=True)
        raise
    return frame[RATING_COLUMNS]


def _read_movies_csv(path: Path) -> pd.DataFrame:
    _check_header(path, MOVIE_COLUMNS)
    try:
        frame = pd.read_csv(
            path,
            dtype={"movieId": "int64", "title": str, "genres": str},
            keep_default_na=False,
            encoding="utf-8",
        )
    except Exception:  # noqa: BLE001
        _diagnose_lines(path, sep=",", n_fields=3, numeric={0: "movieId"}, header=True, quoted=True)
        raise
    _check_unique(frame, "movieId", path, header_lines=1)
    return frame[MOVIE_COLUMNS]


def _read_links_csv(path: Path) -> pd.DataFrame:
    _check_header(path, ["movieId", "imdbId"])
    try:
        frame = pd.read_csv(path, dtype={"movieId": "int64", "imdbId": "Int64"}, usecols=[0, 1])
    except Exception:  # noqa: BLE001
        _diagnose_lines(
            path,
            sep=",",
            n_fields=3,
            numeric={0: "movieId", 1: "imdbId"},
            header=True,
            allow_empty=True,
        )
        raise
    return frame[["movieId", "imdbId"]]


def _check_header(path: Path, required: list[str]) -> None:
    """Fail on a missing column by name, before any parsing error can hide the real cause."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        header = next(csv.reader([first.decode("utf-8")]), [])
    except UnicodeDecodeError:
        raise DataError(path, "header is not valid UTF-8", line=1) from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; header is {header}", line=1)


# --------------------------------------------------------------------------- `::` releases


def _read_ratings_dat(path: Path) -> pd.DataFrame:
    # "1::122::5::838985046" split on ':' puts empty fields between the values: the C parser
    # handles that at full speed, where sep="::" would need the slow Python engine.
    try:
        frame = pd.read_csv(
            path,
            sep=":",
            header=None,
            usecols=[0, 2, 4, 6],
            names=list(range(7)),
            dtype={0: "int64", 2: "int64", 4: "float32", 6: "int64"},
        )
    except Exception:  # noqa: BLE001
        _diagnose_lines(path, sep="::", n_fields=4, numeric=RATING_FIELDS, header=False)
        raise
    frame.columns = RATING_COLUMNS
    return frame


def _read_movies_dat(path: Path) -> pd.DataFrame:
    text = _decode(path, encodings=("utf-8", "latin-1"))
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            raise DataError(path, f"expected 'movieId::title::genres', got {line[:80]!r}", number)
        rows.append((int(parts[0]), parts[1], parts[2]))
    frame = pd.DataFrame(rows, columns=MOVIE_COLUMNS).astype({"movieId": "int64"})
    _check_unique(frame, "movieId", path, header_lines=0)
    return frame


# --------------------------------------------------------------------------- ml-100k


def _read_ratings_100k(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            header=None,
            names=RATING_COLUMNS,
            dtype={
                "userId": "int64",
                "movieId": "int64",
                "rating": "float32",
                "timestamp": "int64",
            },
        )
    except Exception:  # noqa: BLE001
        _diagnose_lines(path, sep="\t", n_fields=4, numeric=RATING_FIELDS, header=False)
        raise
    return frame


def _read_movies_100k(path: Path) -> pd.DataFrame:
    text = _decode(path, encodings=("latin-1",))
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 5 + len(ML100K_GENRES) or not parts[0].isdigit():
            raise DataError(
                path,
                f"expected {5 + len(ML100K_GENRES)} '|'-separated fields, got {len(parts)}",
                number,
            )
        flags = parts[5:]
        genres = [g for g, flag in zip(ML100K_GENRES, flags, strict=True) if flag.strip() == "1"]
        genres = [g for g in genres if g != "(no genres listed)"] or ["(no genres listed)"]
        rows.append((int(parts[0]), parts[1], "|".join(genres)))
    frame = pd.DataFrame(rows, columns=MOVIE_COLUMNS).astype({"movieId": "int64"})
    _check_unique(frame, "movieId", path, header_lines=0)
    return frame


# --------------------------------------------------------------------------- validation


def _decode(path: Path, encodings: tuple[str, ...]) -> str:
    data = path.read_bytes()
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as err:
            last = err
    line = data[: last.start].count(b"\n") + 1
    raise DataError(path, f"text is not valid {'/'.join(encodings)} ({last.reason})", line)


def _diagnose_lines(
    path: Path,
    sep: str,
    n_fields: int,
    numeric: dict[int, str],
    header: bool,
    quoted: bool = False,
    allow_empty: bool = False,
) -> None:
    """Scan the file line by line and raise DataError at the first line that is malformed.

    Only called after the fast reader failed, so its cost is paid on broken files alone. If
    no line is found at fault the caller re-raises the original error.
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(path, f"text is not valid UTF-8 ({err.reason})", number) from None
            if number == 1 and header or not line.strip():
                continue
            fields = next(csv.reader([line])) if quoted else line.split(sep)
            if len(fields) != n_fields:
                raise DataError(
                    path, f"expected {n_fields} fields, found {len(fields)}: {line[:80]!r}", number
                )
            for i, column in numeric.items():
                value = fields[i].strip()
                if allow_empty and value == "":
                    continue
                try:
                    float(value)
                except ValueError:
                    problem = f"{column} is not a number: {value!r}"
                    raise DataError(path, problem, number) from None


def _validate_ratings(
    ratings: pd.DataFrame, path: Path, header_lines: int, rating_range: tuple[float, float]
) -> None:
    def fail(mask: np.ndarray, problem: str) -> None:
        row = int(np.flatnonzero(mask)[0])
        raise DataError(path, problem.format(**ratings.iloc[row].to_dict()), row + 1 + header_lines)

    if ratings.isna().to_numpy().any():
        fail(ratings.isna().any(axis=1).to_numpy(), "empty field in a rating")
    low, high = rating_range
    rating = ratings["rating"].to_numpy()
    bad = (rating < low) | (rating > high) | (rating * 2 != np.round(rating * 2))
    if bad.any():
        fail(bad, f"rating {{rating:g}} is outside {low}-{high} in half stars")
    duplicated = _later_duplicates(ratings["userId"].to_numpy(), ratings["movieId"].to_numpy())
    if duplicated.any():
        fail(duplicated, "duplicate rating: user {userId:.0f} already rated movie {movieId:.0f}")


def _later_duplicates(user: np.ndarray, movie: np.ndarray) -> np.ndarray:
    """Mask of rows repeating an earlier (user, movie), like `DataFrame.duplicated`.

    MovieLens files are sorted by user, then movie: there, neighbours in one int64 key answer
    in a fraction of a second (pandas' hashing takes ~7 s and 0.75 GB on 32M rows). Unsorted
    files take the general path.
    """
    key = user.astype(np.int64) * (int(movie.max(initial=0)) + 1) + movie
    if len(key) < 2 or not (key[1:] >= key[:-1]).all():
        return pd.Series(key).duplicated().to_numpy()
    repeat = np.zeros(len(key), dtype=bool)
    repeat[1:] = key[1:] == key[:-1]
    return repeat


def _check_unique(frame: pd.DataFrame, column: str, path: Path, header_lines: int) -> None:
    duplicated = frame[column].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        value = frame[column].iloc[row]
        raise DataError(path, f"duplicate {column} {value}", row + 1 + header_lines)


def _check_movies_known(
    ratings: pd.DataFrame, movies: pd.DataFrame, path: Path, header_lines: int
) -> None:
    unknown = ~ratings["movieId"].isin(movies["movieId"]).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        movie = int(ratings["movieId"].iloc[row])
        raise DataError(
            path,
            f"rating of movie {movie}, which is not in the movies file",
            row + 1 + header_lines,
        )
