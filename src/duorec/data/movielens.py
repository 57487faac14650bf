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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from duorec.data.errors import DataError

RATING_COLUMNS = ["userId", "movieId", "rating", "timestamp"]
MOVIE_COLUMNS = ["movieId", "title", "genres"]
RATING_FIELDS = dict(enumerate(RATING_COLUMNS))
NO_ROWS = "the file has no data rows"
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
    ratings_path, ratings, movies, links = _READERS[layout](root)
    if ratings.empty:  # else an empty data set (0 users) would be built and cached
        raise DataError(ratings_path, f"no ratings: {NO_ROWS}")
    if layout == "dat":
        rating_range = (0.5, 5.0) if (ratings["rating"] % 1 != 0).any() else (1.0, 5.0)
    else:
        rating_range = (0.5, 5.0) if layout == "csv" else (1.0, 5.0)
    line_of = _row_lines(ratings_path, header_lines=1 if layout == "csv" else 0, sep=_SEPS[layout])
    _validate_ratings(ratings, ratings_path, line_of, rating_range=rating_range)
    _check_movies_known(ratings, movies, ratings_path, line_of)
    return MovieLensData(ratings, movies, links, layout, root, ratings_path, rating_range)


# (ratings path, ratings, movies, links or None), read in that order
_Release = tuple[Path, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]


def _read_csv_release(root: Path) -> _Release:
    ratings = _read_ratings_csv(root / "ratings.csv")
    movies = _read_movies_csv(_require(root / "movies.csv"))
    links = _read_links_csv(root / "links.csv") if (root / "links.csv").exists() else None
    return root / "ratings.csv", ratings, movies, links


def _read_dat_release(root: Path) -> _Release:
    ratings = _read_ratings_dat(root / "ratings.dat")
    return root / "ratings.dat", ratings, _read_movies_dat(_require(root / "movies.dat")), None


def _read_100k_release(root: Path) -> _Release:
    ratings = _read_ratings_100k(root / "u.data")
    return root / "u.data", ratings, _read_movies_100k(_require(root / "u.item")), None


_READERS = {"csv": _read_csv_release, "dat": _read_dat_release, "100k": _read_100k_release}
_SEPS = {"csv": ",", "dat": ":", "100k": "\t"}


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
    except Exception:  # any fast-path failure is re-diagnosed line by line
        _diagnose_lines(
            path, sep=",", n_fields=4, numeric=RATING_FIELDS, header=True, whitespace_lines_ok=False
        )
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
    except Exception:
        _diagnose_lines(path, sep=",", n_fields=3, numeric={0: "movieId"}, header=True, quoted=True)
        raise
    _check_unique(frame, "movieId", path, _row_lines(path, header_lines=1, sep=",", quoted=True))
    return frame[MOVIE_COLUMNS]


def _read_links_csv(path: Path) -> pd.DataFrame:
    _check_header(path, ["movieId", "imdbId"])
    try:
        frame = pd.read_csv(path, dtype={"movieId": "int64", "imdbId": "Int64"}, usecols=[0, 1])
    except Exception:
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
    except Exception:
        _diagnose_lines(path, sep="::", n_fields=4, numeric=RATING_FIELDS, header=False)
        raise
    frame.columns = RATING_COLUMNS
    return frame


def _read_movies_dat(path: Path) -> pd.DataFrame:
    rows, numbers = [], []
    for number, line in _text_lines(path, encodings=("utf-8", "latin-1")):
        parts = line.split("::")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            raise DataError(path, f"expected 'movieId::title::genres', got {line[:80]!r}", number)
        rows.append((int(parts[0]), parts[1], parts[2]))
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=MOVIE_COLUMNS).astype({"movieId": "int64"})
    _check_unique(frame, "movieId", path, numbers.__getitem__)
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
    except Exception:
        _diagnose_lines(path, sep="\t", n_fields=4, numeric=RATING_FIELDS, header=False)
        raise
    return frame


def _read_movies_100k(path: Path) -> pd.DataFrame:
    rows, numbers = [], []
    for number, line in _text_lines(path, encodings=("latin-1",)):
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
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=MOVIE_COLUMNS).astype({"movieId": "int64"})
    _check_unique(frame, "movieId", path, numbers.__getitem__)
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


def _text_lines(path: Path, encodings: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(physical line number, text) of each non-blank line of a small text file."""
    # split on "\n" alone: str.splitlines also splits on \x0b, \x1c, \x85..., which
    # latin-1 titles may hold, and would then miscount the lines after them
    for number, line in enumerate(_decode(path, encodings).split("\n"), start=1):
        if line.strip():
            yield number, line.rstrip("\r")


#: data row (0-based, as the parser counts them) -> physical line (1-based) in the file
RowLines = Callable[[int], int]


def _row_lines(path: Path, header_lines: int, sep: str, quoted: bool = False) -> RowLines:
    """Where each parsed row sits in the file, for error messages.

    The parsers skip blank lines, so row + header + 1 is off by the blank lines above the
    row. Counting them takes a pass over the file, paid only when an error is reported.
    """

    def line_of(row: int) -> int:
        if quoted:
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                return _quoted_row_line(csv.reader(f), row, header_lines)
        with open(path, "rb") as f:
            return _plain_row_line(f, row, header_lines, sep.encode())

    return line_of


def _plain_row_line(lines: Iterable[bytes], row: int, header_lines: int, sep: bytes) -> int:
    """One record per line; like pandas, skip lines of only whitespace without a separator."""
    seen = -1
    for number, line in enumerate(lines, start=1):
        if number <= header_lines or (not line.strip() and sep not in line):
            continue
        seen += 1
        if seen == row:
            return number
    return row + 1 + header_lines  # unreachable for a row the parser read


def _quoted_row_line(reader: Any, row: int, header_lines: int) -> int:
    """Quoted fields may span lines: the csv module counts the physical lines of a record."""
    seen = -1
    start = 1
    for record in reader:
        begin, start = start, reader.line_num + 1
        if begin <= header_lines or (len(record) <= 1 and not "".join(record).strip()):
            continue
        seen += 1
        if seen == row:
            return begin
    return row + 1 + header_lines  # unreachable for a row the parser read


def _diagnose_lines(
    path: Path,
    sep: str,
    n_fields: int,
    numeric: dict[int, str],
    header: bool,
    quoted: bool = False,
    allow_empty: bool = False,
    whitespace_lines_ok: bool = True,
) -> None:
    """Scan the file line by line and raise DataError at the first line that is malformed.

    Only called after the fast reader failed, so its cost is paid on broken files alone. If
    no line is found at fault the caller re-raises the original error. Blank lines are
    skipped as the fast readers skip them: pandas' C parser skips lines of only whitespace,
    pyarrow (``whitespace_lines_ok=False``) only empty ones and fails on the others.
    """
    seen_data = False
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(path, f"text is not valid UTF-8 ({err.reason})", number) from None
            if number == 1 and header or not line:
                continue
            if not line.strip() and sep not in line:
                if whitespace_lines_ok:
                    continue
                raise DataError(path, "line of only whitespace: delete it or make it empty", number)
            seen_data = True
            problem = _line_problem(line, sep, n_fields, numeric, quoted, allow_empty)
            if problem is not None:
                raise DataError(path, problem, number)
    if not seen_data:  # pandas fails on some empty files instead of returning no rows
        raise DataError(path, NO_ROWS)


def _line_problem(
    line: str, sep: str, n_fields: int, numeric: dict[int, str], quoted: bool, allow_empty: bool
) -> str | None:
    """What is wrong with one data line (wrong field count, a non-number), or None."""
    fields = next(csv.reader([line])) if quoted else line.split(sep)
    if len(fields) != n_fields:
        return f"expected {n_fields} fields, found {len(fields)}: {line[:80]!r}"
    for i, column in numeric.items():
        value = fields[i].strip()
        if allow_empty and value == "":
            continue
        try:
            float(value)
        except ValueError:
            return f"{column} is not a number: {value!r}"
    return None


def _validate_ratings(
    ratings: pd.DataFrame, path: Path, line_of: RowLines, rating_range: tuple[float, float]
) -> None:
    def fail(mask: np.ndarray, problem: str) -> None:
        row = int(np.flatnonzero(mask)[0])
        raise DataError(path, problem.format(**ratings.iloc[row].to_dict()), line_of(row))

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


def _check_unique(frame: pd.DataFrame, column: str, path: Path, line_of: RowLines) -> None:
    duplicated = frame[column].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        value = frame[column].iloc[row]
        raise DataError(path, f"duplicate {column} {value}", line_of(row))


def _check_movies_known(
    ratings: pd.DataFrame, movies: pd.DataFrame, path: Path, line_of: RowLines
) -> None:
    unknown = ~ratings["movieId"].isin(movies["movieId"]).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        movie = int(ratings["movieId"].iloc[row])
        raise DataError(
            path,
            f"rating of movie {movie}, which is not in the movies file",
            line_of(row),
        )
