"""Streaming, validating readers for the IMDb non-commercial dataset files.

The real files are large (title.basics ~12M rows, title.principals ~95M rows), so every reader
streams the file in chunks, parses only the columns it needs and keeps only the rows asked
for; the whole file is never in memory. Format (https://developer.imdb.com/non-commercial-
datasets/): tab-separated, one header row, ``\\N`` for null, no quoting at all (titles contain
bare ``"``), UTF-8, optionally gzip-compressed (``.tsv.gz``).

Every problem raises :class:`~duorec.data.errors.DataError` naming the file, the physical line
(1-based, the header is line 1) and what was wrong, because users fix files, not tracebacks.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pandas as pd

from duorec.data.errors import DataError
from duorec.data.titles import normalise_titles

#: The IMDb non-commercial dumps duorec reads, all required, by base name: each lies in the
#: IMDb folder as ``{name}.tsv`` or ``{name}.tsv.gz`` (see :func:`find_imdb_file`).
IMDB_FILES: tuple[str, ...] = (
    "title.basics",
    "title.ratings",
    "title.crew",
    "title.principals",
    "name.basics",
)
NULL = "\\N"
CHUNK_ROWS = 500_000
IMDB_SUFFIXES = (".tsv", ".tsv.gz")
_NO_FILTER_TYPES = ("tvEpisode",)  # never matched by title: see read_title_basics


@dataclass(frozen=True)
class _Columns:
    """What a reader needs from a file: column names, which must be non-null, their types."""

    names: tuple[str, ...]
    required: tuple[str, ...] = ()
    ints: dict[str, str] = field(default_factory=dict)  # column -> pandas integer dtype
    floats: dict[str, str] = field(default_factory=dict)  # column -> float dtype


def find_imdb_file(imdb_dir: str | Path, name: str) -> Path:
    """Locate ``name`` (e.g. ``"title.basics"``) in ``imdb_dir`` as ``.tsv`` or ``.tsv.gz``.

    IMDb publishes ``.tsv.gz``; people often unpack them. The uncompressed file wins when both
    exist because it reads faster. All of :data:`IMDB_FILES` are required, so when one of
    them is missing the error names every one that is: whoever fixes the folder should not
    find them out one run at a time.
    """
    found = _locate(Path(imdb_dir), name)
    if found is not None:
        return found
    required = IMDB_FILES if name in IMDB_FILES else (name,)
    raise _missing(Path(imdb_dir), [n for n in required if _locate(Path(imdb_dir), n) is None])


def find_imdb_files(imdb_dir: str | Path, names: Iterable[str] = IMDB_FILES) -> dict[str, Path]:
    """Locate every file of ``names`` (default: all required ones), or fail naming all missing."""
    directory = Path(imdb_dir)
    found = {name: _locate(directory, name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise _missing(directory, missing)
    return {name: path for name, path in found.items() if path is not None}


def _locate(directory: Path, name: str) -> Path | None:
    for suffix in IMDB_SUFFIXES:
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _missing(directory: Path, names: list[str]) -> DataError:
    if not directory.is_dir():
        return DataError(directory, "IMDb folder does not exist")
    expected = "; ".join(" or ".join(f"{n}{suffix}" for suffix in IMDB_SUFFIXES) for n in names)
    what = "IMDb file not found" if len(names) == 1 else f"{len(names)} IMDb files not found"
    return DataError(directory, f"{what}: expected {expected}")


RowFilter = Callable[[pd.DataFrame], pd.Series]


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def _read_header(path: Path) -> list[str]:
    """Column names from line 1, checked to be decodable so later errors are about data."""
    try:
        with _open_binary(path) as handle:
            raw = handle.readline()
    except (OSError, EOFError) as exc:
        raise DataError(path, f"cannot read file: {exc}") from exc
    if not raw.strip():
        raise DataError(path, "empty file: expected a tab-separated header row", line=1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"header is not valid UTF-8 ({exc.reason})", line=1) from exc
    return text.lstrip("\ufeff").rstrip("\r\n").split("\t")


def _first_bad_line(path: Path, n_fields: int) -> tuple[int, str] | None:
    """Scan the raw bytes for the first undecodable line or line with a wrong field count.

    pandas reports such errors with chunk-relative or approximate positions (and none at all
    for decoding errors); a byte-level scan gives the exact physical line. It only runs after
    an error or a suspicious chunk, and stops at the first bad line.
    """
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, f"invalid UTF-8 bytes {raw[exc.start : exc.end]!r} ({exc.reason})"
            found = raw.rstrip(b"\r\n").count(b"\t") + 1
            if found != n_fields:
                return number, f"expected {n_fields} tab-separated fields, found {found}"
    return None


def _parse_failure(path: Path, n_fields: int, exc: Exception) -> DataError:
    """Turn a pandas parser or decoding error into a DataError with the exact line."""
    located = _first_bad_line(path, n_fields)
    if located is None:
        return DataError(path, f"unreadable: {exc}")
    line, problem = located
    return DataError(path, problem, line=line)


def _check_columns(path: Path, header: list[str], names: tuple[str, ...]) -> None:
    missing = [name for name in names if name not in header]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {', '.join(repr(m) for m in missing)}; header has "
            f"{', '.join(header)}",
            line=1,
        )


def _iter_chunks(path: Path, columns: _Columns, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield chunks of the needed columns as strings, ``\\N`` turned into NA.

    The index of each chunk is the row number in the file (0 = first data row), so the
    physical line of a row is ``index + 2``: blank lines are not skipped (they are reported)
    and, without quoting, no field spans lines. All columns are parsed, not only the needed
    ones, because with ``usecols`` pandas silently ignores extra fields; parsing them costs
    about the same as parsing the last column, which short-line detection needs anyway.
    """
    header = _read_header(path)
    _check_columns(path, header, columns.names)
    suspect = True  # until a full scan has shown the file is well formed
    try:
        with _open_reader(path, chunk_rows) as reader:
            for chunk in reader:
                if suspect and _has_short_rows(chunk):
                    _raise_first_bad_line(path, len(header))
                    suspect = False
                chunk = chunk[list(columns.names)]
                yield chunk.mask(chunk == NULL)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _parse_failure(path, len(header), exc) from exc
    except (OSError, EOFError) as exc:  # e.g. a truncated .gz download
        raise DataError(path, f"cannot read file: {exc}") from exc


def _open_reader(path: Path, chunk_rows: int) -> pd.io.parsers.TextFileReader:
    """pandas chunked reader for IMDb's dialect: tabs, no quoting, every value a string."""
    return pd.read_csv(
        path,
        sep="\t",
        quoting=csv.QUOTE_NONE,
        dtype=str,
        na_filter=False,
        skip_blank_lines=False,
        encoding="utf-8",
        encoding_errors="strict",
        engine="c",
        chunksize=chunk_rows,
    )


def _has_short_rows(chunk: pd.DataFrame) -> bool:
    """Whether some row may lack fields.

    pandas pads a short line with empty strings and raises no error. IMDb writes ``\\N``,
    never an empty field, so an empty last field almost always means a short line; the
    caller confirms it with an exact scan (once per file) before reporting it.
    """
    return bool((chunk.iloc[:, -1] == "").any())


def _raise_first_bad_line(path: Path, n_fields: int) -> None:
    located = _first_bad_line(path, n_fields)
    if located is not None:
        line, problem = located
        raise DataError(path, problem, line=line)


def _check_required(path: Path, chunk: pd.DataFrame, required: tuple[str, ...]) -> None:
    for column in required:
        missing = chunk[column].isna()
        if missing.any():
            row = int(missing.idxmax())
            raise DataError(path, f"column {column!r} is empty ({NULL})", line=row + 2)


def _to_number(path: Path, values: pd.Series, dtype: str, integer: bool) -> pd.Series:
    """Convert a string column, naming the first value that is not a number of that kind."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if integer:
        bad |= numbers.notna() & (numbers % 1 != 0)
    if bad.any():
        row = int(bad.idxmax())
        kind = "an integer" if integer else "a number"
        raise DataError(
            path, f"column {values.name!r}: {values[row]!r} is not {kind}", line=row + 2
        )
    return numbers.astype(dtype)


def _typed(path: Path, chunk: pd.DataFrame, columns: _Columns) -> pd.DataFrame:
    _check_required(path, chunk, columns.required)
    for column, dtype in columns.ints.items():
        chunk[column] = _to_number(path, chunk[column], dtype, integer=True)
    for column, dtype in columns.floats.items():
        chunk[column] = _to_number(path, chunk[column], dtype, integer=False)
    return chunk


def _empty(columns: _Columns) -> pd.DataFrame:
    dtypes = {**{c: "str" for c in columns.names}, **columns.ints, **columns.floats}
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in columns.names})


def _read(
    path: str | Path,
    columns: _Columns,
    keep: RowFilter | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Stream ``path``, filter each chunk with ``keep`` first, then validate and type it.

    Filtering before typing keeps the work proportional to the rows kept; validation of the
    rows that are dropped is limited to the structural checks (fields, encoding).
    """
    path = Path(path)
    kept = []
    for chunk in _iter_chunks(path, columns, chunk_rows):
        if keep is not None:
            chunk = chunk[keep(chunk)]
        if len(chunk):
            kept.append(_typed(path, chunk.copy(), columns))
    if not kept:
        return _empty(columns)
    return pd.concat(kept, ignore_index=True)


BASICS = _Columns(
    names=("tconst", "titleType", "primaryTitle", "originalTitle", "startYear",
           "runtimeMinutes", "genres"),
    required=("tconst",),
    ints={"startYear": "Int32", "runtimeMinutes": "Int32"},
)  # fmt: skip


def read_title_basics(
    path: str | Path,
    tconsts: Collection[str] | None = None,
    title_keys: Collection[str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Read title.basics, keeping the titles the merge can use.

    A row is kept when its tconst is in ``tconsts`` (titles linked from MovieLens links.csv)
    or the normalised key of its primaryTitle or originalTitle is in ``title_keys`` (the
    title fallback, see :func:`duorec.data.merge.fallback_title_keys`); with both ``None``
    every row is kept. TV episodes (~70% of IMDb) are never kept by title: MovieLens lists
    films and series, not episodes, and skipping them makes the key computation 3x cheaper.

    Columns: tconst, titleType, primaryTitle, originalTitle (str, NA where ``\\N``),
    startYear, runtimeMinutes (Int32), genres (IMDb's comma-separated string, or NA).
    """
    keep: RowFilter | None = None
    if tconsts is not None or title_keys is not None:
        id_set = list(tconsts or ())
        key_set = list(title_keys or ())

        def keep(chunk: pd.DataFrame) -> pd.Series:
            mask = chunk["tconst"].isin(id_set)
            if key_set:
                todo = ~mask & ~chunk["titleType"].isin(_NO_FILTER_TYPES)
                for column in ("primaryTitle", "originalTitle"):
                    keys = normalise_titles(chunk.loc[todo, column])
                    mask.loc[todo] |= keys.isin(key_set).to_numpy()
            return mask

    return _read(path, BASICS, keep, chunk_rows)


RATINGS = _Columns(
    names=("tconst", "averageRating", "numVotes"),
    required=("tconst", "averageRating", "numVotes"),
    ints={"numVotes": "int64"},
    floats={"averageRating": "float32"},
)


def _tconst_filter(tconsts: Collection[str] | None) -> RowFilter | None:
    if tconsts is None:
        return None
    wanted = list(tconsts)
    return lambda chunk: chunk["tconst"].isin(wanted)


def read_title_ratings(
    path: str | Path, tconsts: Collection[str] | None = None, chunk_rows: int = CHUNK_ROWS
) -> pd.DataFrame:
    """Read title.ratings: tconst, averageRating (float32), numVotes (int64).

    numVotes breaks ties in the title fallback and both become movie features.
    """
    return _read(path, RATINGS, _tconst_filter(tconsts), chunk_rows)


CREW = _Columns(names=("tconst", "directors", "writers"), required=("tconst",))


def read_title_crew(
    path: str | Path, tconsts: Collection[str] | None = None, chunk_rows: int = CHUNK_ROWS
) -> pd.DataFrame:
    """Read title.crew: tconst, directors, writers.

    directors/writers stay IMDb's comma-separated nconst strings (NA when unknown): cheaper
    than lists, and :func:`split_people` turns them into lists where needed.
    """
    return _read(path, CREW, _tconst_filter(tconsts), chunk_rows)


def split_people(values: pd.Series) -> pd.Series:
    """Comma-separated nconsts -> lists (empty list for NA)."""
    return values.fillna("").map(lambda text: [p for p in text.split(",") if p])


PRINCIPALS = _Columns(
    names=("tconst", "ordering", "nconst", "category"),
    required=("tconst", "ordering", "nconst"),
    ints={"ordering": "int32"},
)
CAST_CATEGORIES = ("actor", "actress", "self")


def read_title_principals(
    path: str | Path,
    tconsts: Collection[str] | None = None,
    categories: Collection[str] | None = CAST_CATEGORIES,
    max_ordering: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Read title.principals: tconst, ordering (int32), nconst, category.

    The cast (``categories``, default actors, actresses and "self" for documentaries) feeds
    the movie tower's people bag; directors and writers come from title.crew instead.
    ``max_ordering`` keeps only the top-billed people. Filtering happens per chunk: the full
    file has ~95M rows. Pass ``categories=None`` for every category.
    """
    wanted_ids = None if tconsts is None else list(tconsts)
    wanted_categories = None if categories is None else list(categories)

    def keep(chunk: pd.DataFrame) -> pd.Series:
        mask = pd.Series(True, index=chunk.index)
        if wanted_ids is not None:
            mask &= chunk["tconst"].isin(wanted_ids)
        if wanted_categories is not None:
            mask &= chunk["category"].isin(wanted_categories)
        if max_ordering is not None:
            ordering = pd.to_numeric(chunk["ordering"], errors="coerce")
            mask &= ~(ordering > max_ordering)  # non-numbers are kept, to be reported
        return mask

    return _read(path, PRINCIPALS, keep, chunk_rows)


NAMES = _Columns(names=("nconst", "primaryName"), required=("nconst",))


def read_name_basics(
    path: str | Path, nconsts: Collection[str] | None = None, chunk_rows: int = CHUNK_ROWS
) -> pd.DataFrame:
    """Read name.basics: nconst, primaryName (NA when unknown), for the people vocabulary."""
    keep: RowFilter | None = None
    if nconsts is not None:
        wanted = list(nconsts)

        def keep(chunk: pd.DataFrame) -> pd.Series:
            return chunk["nconst"].isin(wanted)

    return _read(path, NAMES, keep, chunk_rows)


def read_person_names(imdb_dir: str | Path, nconsts: Collection[str]) -> dict[str, str]:
    """nconst -> primaryName for the people in ``nconsts`` (e.g. the people vocabulary).

    For explaining a recommendation with the names of its director and cast. People IMDb
    lists without a name, or not at all, are left out rather than guessed: callers fall back
    to the nconst. name.basics has ~14M rows; it is streamed and only ``nconsts`` are kept.
    """
    names = read_name_basics(find_imdb_file(imdb_dir, "name.basics"), nconsts=nconsts)
    names = names.dropna(subset=["primaryName"])
    return dict(zip(names["nconst"], names["primaryName"], strict=True))
