"""A real person's ratings from the files they can export: IMDb, Letterboxd or a plain CSV.

People who are not in the data set still have their taste written down somewhere. The format
is recognised from the header alone (no flag to get wrong):

* IMDb "Your ratings" export: ``Const,Your Rating,Date Rated,Title,[Original Title,]URL,
  Title Type,...``. ``Const`` is the tconst, matched to the catalogue's ``tconst`` first and
  by title + year when the data set has no IMDb link for it. Ratings 1-10. TV series, mini
  series, episodes (and games, podcasts) are skipped and counted: the catalogue holds films.
* Letterboxd ``ratings.csv``: ``Date,Name,Year,Letterboxd URI,Rating`` (0.5-5 stars), matched
  by title + year. Letterboxd ``watched.csv`` (the same without Rating): seen, no rating.
  The whole export (the zip Letterboxd sends, or the folder it unzips to) is one person: its
  ``ratings.csv`` and ``watched.csv`` are read together, so a film watched and never rated is
  still excluded from the recommendations.
* A plain CSV: ``movieId`` or ``tconst`` or ``title`` + ``year``, and ``rating`` (already on
  the data set's scale).

Titles are matched with the project's one title key (`duorec.data.titles`), the same key the
MovieLens <-> IMDb merge uses, against every name of a catalogue title (main and alternates):
the exact year first (``title_year``), then one year off (``title_year_pm1``: release vs.
festival year), a main title over an alternate, then the most rated movie.

Ratings are mapped linearly from the source scale onto the data set's (1-10 -> 0.5-5 for
MovieLens: 1 -> 0.5, 10 -> 5, so a 7 is 3.5), which keeps the ends and the spacing.

The files come from anyone, so reading them is bounded (`ReadLimits`): a file larger than
``max_file_mb`` is refused from its size before a byte is read, and a zip's members are
unzipped in chunks that stop at ``max_unzipped_mb`` (each, and the export's files together),
whatever the zip's headers claim: a few MB of zip that unzips to GBs costs at most the limit.
A zip member named with an absolute path or ``..`` is refused, and a folder export's links
are not followed out of the folder. Text is UTF-8 (with or without a byte order mark),
UTF-16 or UTF-32 with one, or else Windows-1252 / Latin-1, what spreadsheets on Windows write.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from duorec.data.errors import DataError
from duorec.data.prepared import PreparedDataset
from duorec.data.titles import normalise_titles, title_keys_frame

FORMATS = ("imdb", "letterboxd_ratings", "letterboxd_watched", "letterboxd_export", "plain")
# the files of a Letterboxd export that describe a person's taste (its other files, diary,
# reviews, likes, watchlist, repeat these films or name films not seen)
LETTERBOXD_FILES = ("ratings.csv", "watched.csv")
RULES = ("tconst", "movieId", "title_year", "title_year_pm1")
# IMDb "Title Type" values that are not films, lower case without spaces or hyphens (exports
# write "TV Series", "TV Mini Series"; older ones "tvSeries", "tvEpisode"): skipped, counted
NOT_FILMS = {
    "tvseries",
    "tvminiseries",
    "tvepisode",
    "videogame",
    "podcastseries",
    "podcastepisode",
}
SOURCE_SCALE = {"imdb": (1.0, 10.0), "letterboxd_ratings": (0.5, 5.0)}
EXPECTED = (
    "expected an IMDb ratings export (Const,Your Rating,...), a Letterboxd ratings.csv or "
    "watched.csv (Date,Name,Year,Letterboxd URI[,Rating]) or a CSV with movieId, tconst or "
    "title+year and rating"
)


MB = 2**20
# the config block the limits are set in (conf/recommend.yaml), named in every refusal so the
# message says what to change
LIMITS_KEY = "people_limits"


@dataclass(frozen=True)
class ReadLimits:
    """How much of a person's files is read (MB: 2**20 bytes).

    A heavy IMDb or Letterboxd user's export is 10-20k rows, 1-2 MB, and a Letterboxd zip a
    few dozen files; the defaults are far above that and far below what would exhaust memory
    (a CSV at the limit costs ~10x its size once parsed). `max_file_mb` bounds every file read
    from disk (a CSV, a zip, a folder export's files), `max_unzipped_mb` what a zip's members
    unzip to, each and together, and `max_zip_members` the files a zip may list (its whole
    directory is parsed: 50 MB of empty members costs ~400 MB and seconds).
    """

    max_file_mb: float = 50.0
    max_unzipped_mb: float = 50.0
    max_zip_members: int = 10_000

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            whole = item.name.endswith("_members")
            number = int if whole else int | float
            if isinstance(value, bool) or not isinstance(value, number) or not value > 0:
                expected = "an integer >= 1" if whole else "a number > 0 (MB)"
                raise ValueError(
                    f"{LIMITS_KEY}.{item.name}={value!r} is not allowed: expected {expected}"
                )

    @classmethod
    def from_config(cls, block: Any) -> ReadLimits:
        """The limits of a config block ({max_file_mb: 50, ...}; None: the defaults); a
        ValueError naming the key for an unknown key or a value out of range."""
        values = dict(block or {})
        unknown = sorted(set(values) - {item.name for item in fields(cls)})
        if unknown:
            known = ", ".join(item.name for item in fields(cls))
            raise ValueError(f"{LIMITS_KEY}.{unknown[0]} is not a setting: expected {known}")
        return cls(**values)

    def refusal(self, name: str, what: str) -> str:
        """'... more than 50 MB (people_limits.max_file_mb=50): refused', one line."""
        value = getattr(self, name)
        unit = " MB" if name.endswith("_mb") else " files"
        return f"{what} more than {value:g}{unit} ({LIMITS_KEY}.{name}={value:g}): refused"


# what library callers get (`read_person`, `read_people`); the CLI passes the config's
LIMITS = ReadLimits()
CHUNK = MB  # a zip member is unzipped this much at a time


@dataclass
class PersonRatings:
    """One person's file matched to the catalogue: what they rated and everything they saw.

    `movies`/`ratings`: movie indices and ratings on the data set's scale (one per movie, the
    file's last row wins); `watched`: movies seen without a rating; `timestamps` (seconds,
    0 when the file has no date) order the history bag newest first, as in training.
    """

    label: str
    path: Path
    format: str
    movies: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    watched: np.ndarray
    rows: int
    matched: Counter = field(default_factory=Counter)  # rule -> movies
    unmatched: list[str] = field(default_factory=list)
    skipped: int = 0  # TV series / episodes
    parts: list[PersonRatings] = field(default_factory=list)  # an export's files, each matched

    @property
    def seen(self) -> np.ndarray:
        """Every matched movie, rated or only watched: never recommended to this person."""
        return np.union1d(self.movies, self.watched)

    def report(self, limit: int = 10) -> str:
        """'alice (IMDb ratings, alice.csv): 28 of 30 films matched (tconst 27, ...)'."""
        if self.parts:
            head = (
                f"{self.label} ({FORMAT_NAMES[self.format]}, {self.path.name}): "
                f"{len(self.seen)} films seen, {len(self.movies)} of them rated"
            )
            return "\n".join([head] + ["  " + p.report(limit) for p in self.parts])
        films = self.rows - self.skipped
        rules = ", ".join(f"{rule} {n}" for rule in RULES if (n := self.matched.get(rule)))
        n_matched = sum(self.matched.values())
        line = (
            f"{self.label} ({FORMAT_NAMES[self.format]}, {self.path.name}): {n_matched} of "
            f"{films} films matched" + (f" ({rules})" if rules else "")
        )
        if self.skipped:
            line += f"; {self.skipped} TV series/episodes skipped"
        if self.unmatched:
            shown = "; ".join(self.unmatched[:limit])
            more = f" and {len(self.unmatched) - limit} more" if len(self.unmatched) > limit else ""
            line += f"\n  not in the data set: {shown}{more}"
        return line


FORMAT_NAMES = {
    "imdb": "IMDb ratings",
    "letterboxd_ratings": "Letterboxd ratings",
    "letterboxd_watched": "Letterboxd watched",
    "letterboxd_export": "Letterboxd export",
    "plain": "CSV",
}


# ---------------------------------------------------------------------------- the catalogue


class CatalogMatcher:
    """The catalogue's title keys, tconsts and movieIds, built once per data set."""

    def __init__(self, dataset: PreparedDataset):
        catalog = dataset.catalog.reset_index(drop=True)
        self.name = dataset.manifest.get("name")
        self.rating_range = dataset.rating_range
        self.n_movies = len(catalog)
        self.movie_ids = pd.Index(catalog["movieId"].to_numpy())
        tconst = catalog["tconst"] if "tconst" in catalog else pd.Series([None] * len(catalog))
        known = tconst.notna().to_numpy()
        self.tconsts = pd.Series(np.flatnonzero(known), index=tconst[known].astype(str).to_numpy())
        self.tconsts = self.tconsts[~self.tconsts.index.duplicated()]
        keys = title_keys_frame(catalog["title"].astype(object))
        popularity = np.bincount(dataset.ratings["movie"].to_numpy(), minlength=len(catalog))
        keys["movie"] = keys["row"].astype(np.int64)
        keys["year"] = pd.to_numeric(catalog["year"], errors="coerce").to_numpy()[keys["movie"]]
        keys["votes"] = popularity[keys["movie"]]
        self.keys = keys[["key", "movie", "year", "alternate", "votes"]]

    def by_title(self, titles: pd.Series, years: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """(movie index or -1, rule or None) per row, by title key + year (exact, then +-1).

        `titles` may hold several names per row (a Series with a repeated index: IMDb's Title
        and Original Title); a row's best candidate over all its names wins.
        """
        n = int(titles.index.max()) + 1 if len(titles) else 0
        movie, rule = np.full(n, -1, dtype=np.int64), np.full(n, None, dtype=object)
        if not n:
            return movie, rule
        asked = pd.DataFrame(
            {
                "row": titles.index.to_numpy(),
                "key": normalise_titles(titles.astype("str")).to_numpy(),
                "want": pd.to_numeric(years, errors="coerce").to_numpy(dtype=float),
            }
        ).dropna(subset=["key"])
        cand = asked.merge(self.keys, on="key")
        cand["off"] = (cand["year"] - cand["want"]).abs()
        cand = cand[cand["off"] <= 1]
        if cand.empty:
            return movie, rule
        cand = cand.sort_values(
            ["row", "off", "alternate", "votes", "movie"], ascending=[True, True, True, False, True]
        ).drop_duplicates("row")
        rows = cand["row"].to_numpy(dtype=np.int64)
        movie[rows] = cand["movie"].to_numpy()
        rule[rows] = np.where(cand["off"].to_numpy() == 0, "title_year", "title_year_pm1")
        return movie, rule

    def by_tconst(self, values: pd.Series) -> np.ndarray:
        found = self.tconsts.reindex(values.astype(str).str.strip().to_numpy())
        return found.fillna(-1).to_numpy(dtype=np.int64)

    def by_movie_id(self, values: np.ndarray) -> np.ndarray:
        return self.movie_ids.get_indexer(values).astype(np.int64)


# ---------------------------------------------------------------------------- reading


def detect_format(columns: list[str]) -> str | None:
    """The export format a header says, or None: see the module docstring."""
    have = {c.strip().lower() for c in columns}
    if {"const", "your rating"} <= have:
        return "imdb"
    if {"name", "year", "letterboxd uri"} <= have:
        return "letterboxd_ratings" if "rating" in have else "letterboxd_watched"
    if "rating" in have and ({"movieid", "tconst"} & have or {"title", "year"} <= have):
        return "plain"
    return None


def read_person(
    path: str | Path,
    matcher: CatalogMatcher,
    label: str | None = None,
    limits: ReadLimits = LIMITS,
) -> PersonRatings:
    """Read one person's export (a CSV, or a Letterboxd export as a zip or folder) and match it
    to the catalogue; a one-line DataError otherwise.

    Errors name the file (and the line of a bad rating): missing, empty, an unknown header,
    a rating outside the format's scale, no rows, or not one movie found in the data set; a
    file or zip member beyond `limits`, or a zip member named outside the export.
    """
    path = Path(str(path)).expanduser()
    label = label or path.stem
    if path.is_dir():
        person = _read_export(path, matcher, limits)
    elif path.is_file():  # before is_zipfile, which would open (and wait on) a pipe
        content = _read_file(path, limits)
        if zipfile.is_zipfile(io.BytesIO(content)):
            person = _read_export(path, matcher, limits, content)
        else:
            person = _read_csv(path, content, matcher)
    elif path.exists():
        raise DataError(path, "not a file or folder (a pipe or device is not read)")
    else:
        raise DataError(path, "file not found")
    person.label = label
    if not sum(person.matched.values()):
        shown = "; ".join(person.unmatched[:3]) or "none"
        raise DataError(
            path,
            f"none of its {person.rows - person.skipped} films is in the data set "
            f"{matcher.name!r} (e.g. {shown})",
        )
    return person


def _read_file(path: Path, limits: ReadLimits) -> bytes:
    """A file's bytes: refused from its size before it is read when over max_file_mb, and
    never more than that read (a file growing meanwhile, or a size the system cannot tell)."""
    cap = int(limits.max_file_mb * MB)
    size = path.stat().st_size
    if size > cap:
        raise DataError(path, limits.refusal("max_file_mb", f"the file is {size / MB:,.1f} MB,"))
    with path.open("rb") as file:
        content = file.read(cap + 1)
    if len(content) > cap:
        raise DataError(path, limits.refusal("max_file_mb", "the file holds"))
    return content


def _decode(path: Path, content: bytes) -> str:
    """The file's text: by its byte order mark, else UTF-8, else Windows-1252 or Latin-1.

    Excel and Notepad on Windows save "Unicode" as UTF-16 with a mark and "ANSI" as
    Windows-1252 (Latin-1 with curly quotes and dashes where Latin-1 has control codes);
    bytes that are not valid UTF-8 are almost never meant as UTF-8, so the fallback is safe.
    """
    marks = (
        (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: FF FE 00 00 starts with FF FE
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    )
    for mark, encoding in marks:
        if content.startswith(mark):
            try:
                return content.decode(encoding)
            except UnicodeDecodeError as err:
                name = encoding.removesuffix("-sig").upper()
                raise DataError(path, f"not valid {name} text ({err.reason})") from None
    for encoding in ("utf-8", "cp1252"):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:  # UTF-16 without its mark reads as text full of NULs
            raise DataError(
                path,
                "not a text CSV (it holds NUL bytes; UTF-16 text needs its byte order mark)",
            )
        return text
    return content.decode("latin-1")  # every byte is a Latin-1 character


def _read_csv(path: Path, content: bytes, matcher: CatalogMatcher) -> PersonRatings:
    """One export file's bytes, recognised by its header and matched (`path` names it)."""
    text = _decode(path, content)
    del content  # the caller's copy may still be held; this one is not needed again
    if not text.strip():
        raise DataError(path, f"empty file: {EXPECTED}")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_MINIMAL,
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise DataError(path, f"cannot read it as CSV: {err}".splitlines()[0]) from None
    del text
    frame.columns = [str(c).strip() for c in frame.columns]
    kind = detect_format(list(frame.columns))
    if kind is None:
        raise DataError(path, f"unrecognised header {','.join(frame.columns)!r}: {EXPECTED}")
    if frame.empty:
        raise DataError(path, "no movies (the file has a header and no rows)")
    column = {c.lower(): c for c in frame.columns}
    return _match(frame, column, kind, matcher, path)


def _read_export(
    path: Path, matcher: CatalogMatcher, limits: ReadLimits, zipped: bytes | None = None
) -> PersonRatings:
    """A Letterboxd export, zipped (`zipped`: the zip's bytes) or unzipped: its ratings.csv
    and watched.csv as one person.

    Each file is matched on its own (and reported so); the person rated what ratings.csv
    rates and saw everything either file names. Files are looked for at the export's top
    level first, then one folder down (a zip unpacked into a folder of its own name): a
    folder such as a home directory is not searched through.
    """
    contents = _folder_files(path, limits) if zipped is None else _zip_files(path, zipped, limits)
    if not contents:
        raise DataError(
            path,
            f"a folder or zip needs a Letterboxd {' or '.join(LETTERBOXD_FILES)} in it (at its "
            "top or one folder down)",
        )
    parts = [_read_csv(path / name, data, matcher) for name, data in contents.items()]
    del contents
    rated = [p for p in parts if len(p.movies)]
    movies = np.concatenate([p.movies for p in rated]) if rated else np.zeros(0, np.int64)
    keep = np.unique(movies[::-1], return_index=True)[1]  # a movie rated twice: the last file
    keep = len(movies) - 1 - keep
    movies = movies[keep]
    ratings = np.concatenate([p.ratings for p in rated])[keep] if rated else np.zeros(0)
    stamps = np.concatenate([p.timestamps for p in rated])[keep] if rated else np.zeros(0)
    watched = np.setdiff1d(np.concatenate([p.seen for p in parts]), movies)
    return PersonRatings(
        label="",
        path=path,
        format="letterboxd_export",
        movies=movies.astype(np.int64),
        ratings=ratings.astype(np.float32),
        timestamps=stamps.astype(np.int64),
        watched=watched.astype(np.int64),
        rows=sum(p.rows for p in parts),
        matched=sum((p.matched for p in parts), Counter()),
        unmatched=[u for p in parts for u in p.unmatched],
        skipped=sum(p.skipped for p in parts),
        parts=parts,
    )


def _shallowest(candidates: list[tuple[int, str, Any]]) -> dict[str, Any]:
    """{file name: the (depth, path, item) found nearest the top}, ties by path: one rule
    for folders and zips, and the same choice on every machine."""
    found: dict[str, Any] = {}
    for depth, where, item in sorted(candidates, key=lambda c: c[:2]):
        name = re.split(r"[\\/]", where)[-1]
        if name in LETTERBOXD_FILES and depth <= 1:
            found.setdefault(name, item)
    return {name: found[name] for name in LETTERBOXD_FILES if name in found}


def _folder_files(folder: Path, limits: ReadLimits) -> dict[str, bytes]:
    """{file name: bytes} of a folder export's LETTERBOXD_FILES, at its top or one folder
    down; links to folders are not entered and a file linking out of the folder is refused
    (an export's files are its own: a link to ~/.ssh/... is not taste)."""
    root = folder.resolve()  # the folder named may itself be a link: where it points is it
    candidates: list[tuple[int, str, Any]] = []
    for entry in _entries(folder):
        if entry.is_dir(follow_symlinks=False):
            candidates += [(1, f"{entry.name}/{e.name}", Path(e.path)) for e in _entries(entry)]
        else:
            candidates.append((0, entry.name, Path(entry.path)))
    out = {}
    for name, file in _shallowest(candidates).items():
        real = file.resolve()
        if not real.is_relative_to(root):
            raise DataError(file, f"links to {real}, outside the export folder: refused")
        if real.is_file():
            out[name] = _read_file(file, limits)
    return out


def _entries(folder: os.DirEntry | Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as err:
        where = folder.path if isinstance(folder, os.DirEntry) else folder
        raise DataError(where, f"cannot list the folder: {err.strerror or err}") from None


def _zip_files(path: Path, content: bytes, limits: ReadLimits) -> dict[str, bytes]:
    """{file name: bytes} of a zipped export's LETTERBOXD_FILES, each unzipped in chunks up to
    max_unzipped_mb (the members together too): the sizes a zip declares are checked first
    but not trusted, as a crafted zip can declare anything; a zip listing more than
    max_zip_members files is refused before its directory is parsed."""
    # every entry of the directory zipfile parses starts with this mark: counted before it
    # is parsed (an upper bound: a stored member may hold the mark too, then it counts twice)
    if content.count(b"PK\x01\x02") > limits.max_zip_members:
        raise DataError(path, limits.refusal("max_zip_members", "the zip holds"))
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            for info in infos:
                if _outside(info.filename):
                    raise DataError(
                        path,
                        f"member {info.filename!r} is named outside the export (an absolute "
                        "path or '..', which no export has): refused",
                    )
            chosen = _shallowest([(_depth(i.filename), i.filename, i) for i in infos])
            cap = int(limits.max_unzipped_mb * MB)
            together = " and ".join(i.filename for i in chosen.values())
            if sum(i.file_size for i in chosen.values()) > cap:
                what = f"{together} unzip to" if len(chosen) > 1 else f"{together} unzips to"
                raise DataError(path, limits.refusal("max_unzipped_mb", what))
            out, total = {}, 0
            for name, info in chosen.items():
                data = bytearray()
                with archive.open(info) as member:
                    while chunk := member.read(min(CHUNK, cap + 1 - total - len(data))):
                        data += chunk
                        if total + len(data) > cap:
                            alone = len(data) > cap
                            what = f"{info.filename} unzips to" if alone else f"{together} unzip to"
                            raise DataError(path, limits.refusal("max_unzipped_mb", what))
                total += len(data)
                out[name] = bytes(data)
                del data
            return out
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise DataError(path, f"cannot read the zip: {err}") from None
    except (NotImplementedError, RuntimeError) as err:  # a compression method, a password
        raise DataError(path, f"cannot unzip it: {err}") from None


def _depth(name: str) -> int:
    return len([p for p in re.split(r"[\\/]", name) if p not in ("", ".")]) - 1


def _outside(name: str) -> bool:
    """Whether a zip member's name points outside the folder it would unzip to: absolute
    (/x, \\x, C:x) or climbing out with '..', with either slash."""
    return bool(re.match(r"[\\/]|[A-Za-z]:", name)) or ".." in re.split(r"[\\/]", name)


def _match(
    frame: pd.DataFrame, column: dict[str, str], kind: str, matcher: CatalogMatcher, path: Path
) -> PersonRatings:
    n = len(frame)

    def get(name: str) -> pd.Series:
        return frame[column[name]] if name in column else pd.Series([""] * n)

    skipped = np.zeros(n, dtype=bool)
    if kind == "imdb" and "title type" in column:
        kind_of = get("title type").str.lower().str.replace(r"[\s-]+", "", regex=True)
        skipped = kind_of.isin(NOT_FILMS).to_numpy()
    movie = np.full(n, -1, dtype=np.int64)
    rule = np.full(n, None, dtype=object)
    # identifiers first: an exact id beats a title
    if kind == "imdb" or (kind == "plain" and "tconst" in column):
        found = matcher.by_tconst(get("const" if kind == "imdb" else "tconst"))
        movie, rule = found, np.where(found >= 0, "tconst", None)
    elif kind == "plain" and "movieid" in column:
        ids = pd.to_numeric(get("movieid"), errors="coerce")
        bad = ids.isna() | (ids != ids.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                path, f"movieId {get('movieid').iloc[row]!r} is not an integer", line=row + 2
            )
        movie = matcher.by_movie_id(ids.to_numpy(dtype=np.int64))
        rule = np.where(movie >= 0, "movieId", None)
    title_col = {"imdb": "title", "plain": "title"}.get(kind, "name")
    if title_col in column and "year" in column:
        todo = (movie < 0) & ~skipped
        names = [get(title_col)]
        if kind == "imdb" and "original title" in column:
            names.append(get("original title"))
        titles = pd.concat([s[todo] for s in names])
        titles = titles[titles.str.strip() != ""]
        years = get("year").reindex(titles.index)
        found, how = matcher.by_title(titles, years)
        found = np.pad(found, (0, n - len(found)), constant_values=-1)
        how = np.pad(how, (0, n - len(how)), constant_values=None)
        movie = np.where(todo & (found >= 0), found, movie)
        rule = np.where(todo & (found >= 0), how, rule)
    movie[skipped] = -1

    rated = kind != "letterboxd_watched"
    ratings = np.full(n, np.nan)
    if rated:
        ratings = _ratings(get("your rating" if kind == "imdb" else "rating"), kind, matcher, path)
    dates = get("date rated" if kind == "imdb" else "date")
    when = pd.to_datetime(dates, errors="coerce", format="mixed")
    seconds = (when.astype("int64") // 10**9).where(when.notna(), 0).to_numpy(dtype=np.int64)

    ok = movie >= 0
    has_rating = ok & ~np.isnan(ratings)
    # one rating per movie, the file's last
    order = np.flatnonzero(has_rating)
    last = pd.Series(order, index=movie[order]).groupby(level=0).last().to_numpy(dtype=np.int64)
    watched = np.setdiff1d(movie[ok & np.isnan(ratings)], movie[last])
    unmatched = _describe(frame, column, np.flatnonzero(~ok & ~skipped))
    matched = Counter(rule[np.flatnonzero(ok)][_first_of_each(movie[ok])].tolist())
    return PersonRatings(
        label="",
        path=path,
        format=kind,
        movies=movie[last],
        ratings=ratings[last].astype(np.float32),
        timestamps=seconds[last],
        watched=watched.astype(np.int64),
        rows=n,
        matched=matched,
        unmatched=unmatched,
        skipped=int(skipped.sum()),
    )


def _first_of_each(values: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each value (a movie listed twice counts once)."""
    return np.sort(np.unique(values, return_index=True)[1])


def _ratings(values: pd.Series, kind: str, matcher: CatalogMatcher, path: Path) -> np.ndarray:
    """Ratings on the data set's scale; a DataError naming the line of the first bad one.

    An empty rating cell (a Letterboxd film logged without stars) is NaN: seen, not rated.
    """
    text = values.str.strip()
    number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    low, high = SOURCE_SCALE.get(kind, matcher.rating_range)
    bad = (text != "") & (np.isnan(number) | (number < low) | (number > high))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            path,
            f"rating {values.iloc[row]!r} out of range: this file's ratings go from "
            f"{low:g} to {high:g}",
            line=row + 2,
        )
    lo, hi = matcher.rating_range
    return lo + (number - low) * (hi - lo) / (high - low)


def _describe(frame: pd.DataFrame, column: dict[str, str], rows: np.ndarray) -> list[str]:
    """How unmatched rows are listed: 'Title (Year)', else their id; column-wise, as a file
    of a million rows none of which matches costs seconds, not the minutes row by row took."""
    part = frame.iloc[rows]
    empty = pd.Series("", index=part.index, dtype=object)

    def get(name: str) -> pd.Series:
        return part[column[name]].astype(str).str.strip() if name in column else empty

    title = get("name").mask(get("name") == "", get("title"))
    titled = title.mask(get("year") != "", title + " (" + get("year") + ")")
    ident = get("const").mask(get("const") == "", get("tconst"))
    movie_id = get("movieid") if "movieid" in column else "None"
    ident = ident.mask(ident == "", "movieId " + movie_id)
    return titled.mask(title == "", ident).astype(object).tolist()


def read_people(
    paths: list[str | Path], dataset: PreparedDataset, limits: ReadLimits = LIMITS
) -> tuple[list[PersonRatings | None], list[DataError]]:
    """Every file read, even after one fails: (a person or None per path, the errors).

    A caller reports the people it could read before refusing the request, so fixing one
    file does not reveal a problem with the other only on the next run.
    """
    matcher = CatalogMatcher(dataset)
    people: list[PersonRatings | None] = []
    errors: list[DataError] = []
    labels = _labels([Path(str(p)).expanduser() for p in paths])
    for path, label in zip(paths, labels, strict=True):
        try:
            people.append(read_person(path, matcher, label, limits))
        except DataError as err:
            people.append(None)
            errors.append(err)
    return people, errors


def _labels(paths: list[Path]) -> list[str]:
    """File stems, or the whole name (then the parent folder) where two stems are the same."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{p.parent.name}/{p.name}" for p in paths]
