"""Writers for the real file formats: MovieLens CSV (quoted only where needed) and IMDb TSV
(tab separated, ``\\N`` nulls, never quoted), vectorised in Arrow so ml32m scale stays fast.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duorec.data.synthetic.catalog import Catalog
from duorec.data.synthetic.model import Ratings
from duorec.data.synthetic.vocab import CHUNK, ML_GENRES, NO_GENRES

_RATING_STRINGS = pa.array([f"{h / 2:.1f}" for h in range(0, 11)])  # index = stars * 2
_NULL = "\\N"


def _str_col(values: np.ndarray | pa.Array | list[Any], null: str) -> pa.Array:
    """Any column as strings, nulls rendered the way the target format spells them."""
    arr = values if isinstance(values, pa.Array) else pa.array(values)
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr.fill_null(null) if arr.null_count else arr


def _write_rows(fh: BinaryIO, columns: Sequence[Any], sep: str, null: str) -> None:
    """Write columns as delimited rows, no quoting, vectorised in Arrow (no Python per row).

    Arrow's own CSV writer either quotes every string or refuses quote characters, and the
    real files do neither (IMDb TSVs carry raw quotes), so rows are joined with Arrow string
    kernels and the joined string buffer is written as is.
    """
    cols = [_str_col(c, null) for c in columns]
    rows = pc.binary_join_element_wise(*cols, sep)
    rows = pc.binary_join_element_wise(rows, pa.scalar("\n"), "")
    rows = rows.combine_chunks() if isinstance(rows, pa.ChunkedArray) else rows
    if len(rows) == 0:
        return
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset :]
    data = rows.buffers()[2]
    fh.write(memoryview(data)[int(offsets[0]) : int(offsets[len(rows)])])


def write_tsv(path: Path, header: Sequence[str], columns: Sequence[Any], n: int) -> None:
    """IMDb-style TSV: tab separated, ``\\N`` for null, never quoted; chunked."""
    with path.open("wb") as fh:
        fh.write(("\t".join(header) + "\n").encode())
        for lo in range(0, n, CHUNK):
            _write_rows(fh, [_slice(c, lo, lo + CHUNK) for c in columns], "\t", _NULL)


def _slice(col: Any, lo: int, hi: int) -> Any:
    return col.slice(lo, hi - lo) if isinstance(col, pa.Array) else col[lo:hi]


def write_csv_module(path: Path, header: Sequence[str], rows: Any) -> None:
    """MovieLens CSV via the csv module: quotes only fields that need it, as MovieLens does."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def write_ratings(path: Path, r: Ratings, movie_id: np.ndarray) -> None:
    """ratings.csv, ``userId,movieId,rating,timestamp`` with ratings like ``4.0``; chunked."""
    with path.open("wb") as fh:
        fh.write(b"userId,movieId,rating,timestamp\n")
        for lo in range(0, r.user.size, CHUNK):
            hi = lo + CHUNK
            cols = [
                r.user[lo:hi].astype(np.int64) + 1,
                movie_id[r.movie[lo:hi]],
                _RATING_STRINGS.take(pa.array(r.half_stars[lo:hi])),
                r.timestamp[lo:hi],
            ]
            _write_rows(fh, cols, ",", "")


def pad7(n: np.ndarray, prefix: str) -> pa.Array:
    """IMDb ids: prefix + number zero-padded to 7 digits (``tt0114709``, ``nm0000123``)."""
    s = pc.utf8_lpad(pa.array(n).cast(pa.string()), 7, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), s, "") if prefix else s


def join_slots(values: pa.Array, group: np.ndarray, n_groups: int, max_slots: int) -> pa.Array:
    """Comma-join up to ``max_slots`` values per group (rows sorted by group), null if none."""
    starts = np.searchsorted(group, np.arange(n_groups))
    rank = np.arange(group.size) - starts[group]
    joined: pa.Array | None = None
    for s in range(max_slots):
        idx = np.full(n_groups, -1, dtype=np.int64)
        sel = rank == s
        idx[group[sel]] = np.flatnonzero(sel)
        slot = values.take(pa.array(idx, mask=idx < 0))
        joined = (
            slot
            if joined is None
            else pc.coalesce(pc.binary_join_element_wise(joined, slot, ","), joined)
        )
    assert joined is not None
    return joined


def write_movies(path: Path, cat: Catalog) -> None:
    """movies.csv, ``movieId,title,genres`` with genres ``A|B`` or ``(no genres listed)``."""
    genre_names = np.array(ML_GENRES)
    write_csv_module(
        path,
        ("movieId", "title", "genres"),
        (
            (mid, title, "|".join(genre_names[g]) if g.any() else NO_GENRES)
            for mid, title, g in zip(cat.movie_id.tolist(), cat.ml_title, cat.genres, strict=True)
        ),
    )
