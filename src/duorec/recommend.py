"""`python -m duorec.recommend users=[A,B] k=10`: the films two people should watch together.

`people=[alice.csv,bob.csv]` (or `users=[42] people=[me.csv]`) serves people who are not in
the data from their ratings exports (`duorec.data.exports`): each file's match report is
printed, then they are folded into a copy of the model (`duorec.model.foldin`). Every pick comes
with a one-line reason (`duorec.reasons`), shown and written to the output file.

`users=[A,B,C,D]` (3 to 6 people) recommends for a group: each member's predicted rating is
shown, with the lowest of them (the fairness view).

The command line only: it checks the request (before any model is loaded, so a typo costs
nothing), loads the checkpoint with its data into a `duorec.serving.Recommender` (where what
is recommended and why is documented) and prints the table or writes the file.
`pairs_file=PATH` with `output=PATH` recommends for many pairs in batches, each pick with its
reason too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from duorec.cli import friendly_errors
from duorec.data.errors import DataError
from duorec.data.exports import LIMITS, PersonRatings, ReadLimits, read_people
from duorec.data.groups import MAX_GROUP
from duorec.errors import UsageError
from duorec.io import atomic_path
from duorec.report import UNWRAPPED_WIDTH
from duorec.serving.frames import BATCH_COLUMNS, SINGLE_COLUMNS, member_column
from duorec.serving.recommender import Recommender
from duorec.serving.requests import (
    OUTPUT_EXTENSIONS,
    as_user_id,
    check_members,
    check_output,
    check_pairs,
    check_request,
)

__all__ = ["BATCH_COLUMNS", "SINGLE_COLUMNS", "parse_request", "read_pairs", "run", "write_table"]


# ---------------------------------------------------------------------------- files


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
    whom = f"users {a} and {b}" if all(isinstance(x, int) for x in (a, b)) else f"{a} and {b}"
    table = Table(title=f"top {len(frame)} for {whom} (pair rating: {source})")
    for name, justify in (
        ("#", "right"),
        ("title", "left"),
        ("year", "right"),
        ("genres", "left"),
        ("IMDb", "right"),
        ("pair", "right"),
        (_who(a), "right"),
        (_who(b), "right"),
        ("score", "right"),
        *((("why", "left"),) if "reason" in frame else ()),
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
            _fmt(row.score, 3),
            *((str(row.reason),) if "reason" in frame else ()),
        )
    return table


def _who(label: Any) -> str:
    return f"user {label}" if isinstance(label, int) else str(label)


def group_table(frame: pd.DataFrame) -> Table:
    """The group table: the group's rating, its least happy member's, and every member's."""
    users = frame.attrs.get("users", [])
    how = frame.attrs.get("aggregate", "mean")
    source = "group head" if frame.attrs.get("group_head") else f"{how} of the members"
    table = Table(
        title=f"top {len(frame)} for {', '.join(map(_who, users))} (group rating: {source})"
    )
    for name in ("#", "title", "year", "genres", "IMDb", "group", "score", "lowest"):
        table.add_column(name, justify="left" if name in ("title", "genres") else "right")
    for user in users:
        table.add_column(_who(user), justify="right")
    if "reason" in frame:
        table.add_column("why", justify="left")
    for _, row in frame.iterrows():
        table.add_row(
            str(row["rank"]),
            str(row["title"]),
            _fmt(row["year"]),
            str(row["genres"]).replace("|", ", "),
            _fmt(row["imdb_rating"], 1),
            _fmt(row["group_rating"]),
            _fmt(row["score"], 3),
            _fmt(row["lowest"]),
            *(_fmt(row[member_column(u)]) for u in users),
            *((str(row["reason"]),) if "reason" in frame else ()),
        )
    lowest = frame.attrs.get("lowest")
    if lowest:
        table.caption = (
            f"fairness: the least happy member is {_who(lowest['user'])}, "
            f"{lowest['rating']:.2f} for {lowest['title']}"
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
    rank_by: str | None
    people: list[Path] | None = None
    people_limits: ReadLimits = LIMITS


def parse_request(cfg: DictConfig) -> Request:
    """Check the arguments up front (`serving.check_request`), so a typo costs no loading."""
    checked = check_request(
        cfg.get("k"),
        str(cfg.get("aggregate")),
        batch_size=cfg.get("batch_size", 256),
        output=cfg.get("output"),
        rank_by=cfg.get("rank_by"),
    )
    filters = OmegaConf.to_container(cfg.get("filters") or {}, resolve=True)
    common = (
        checked.k,
        checked.aggregate,
        filters,
        checked.output,
        checked.batch_size,
        checked.rank_by,
    )
    pairs_file = cfg.get("pairs_file")
    has_users = not OmegaConf.is_missing(cfg, "users") and cfg.get("users") is not None
    people = cfg.get("people")
    if people is not None:
        if pairs_file:
            raise UsageError("pass either people=[FILE,...] or pairs_file=PATH, not both")
        users = cfg.users if has_users else []
        return _people_request(people, users, common, cfg.get("people_limits"))
    if pairs_file:
        if has_users:
            raise UsageError("pass either users=[A,B] or pairs_file=PATH, not both")
        if checked.output is None:
            raise UsageError("pairs_file needs output=PATH.csv or output=PATH.parquet")
        path = Path(str(pairs_file)).expanduser()
        if not path.is_file():
            raise DataError(path, "pairs file not found")
        return Request(None, path, *common)  # type: ignore[arg-type]
    if not has_users:
        raise UsageError(
            "pass two to six user ids, users=[A,B] (or pairs_file=PATH with output=PATH)"
        )
    users = cfg.users
    if not OmegaConf.is_list(users):
        raise UsageError(f"users must be a list of two to six user ids, users=[A,B]; got {users}")
    if len(users) != 2:
        return Request(check_members(list(users)), None, *common)  # type: ignore[arg-type]
    ids = check_pairs([list(users)], single=True)[0].tolist()
    return Request(ids, None, *common)  # type: ignore[arg-type]


def _people_request(people: Any, users: Any, common: tuple, limits: Any = None) -> Request:
    """users=[...] people=[...]: two people in all, the files (or export folders) present and
    the reading limits valid (the files are read after loading)."""
    people = list(people) if isinstance(people, list | ListConfig) else [people]
    users = list(users) if isinstance(users, list | ListConfig) else [users]
    if not 2 <= len(people) + len(users) <= MAX_GROUP:
        raise UsageError(
            f"a pair or group is 2 to {MAX_GROUP} people: got {len(users)} user id(s) and "
            f"{len(people)} file(s) (users=[A] people=[FILE] or people=[FILE_A,FILE_B])"
        )
    paths = [Path(str(p)).expanduser() for p in people]
    for path in paths:
        if not (path.is_file() or path.is_dir()):  # a folder: an unzipped Letterboxd export
            raise DataError(path, "file not found")
    try:
        read_limits = ReadLimits.from_config(limits)
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    ids = [as_user_id(u) for u in users]
    if len(ids) == 2 and ids[0] == ids[1]:
        raise UsageError(f"the two users are the same ({ids[0]}): a pair needs two people")
    request = Request(ids, None, *common, people=paths)  # type: ignore[arg-type]
    request.people_limits = read_limits
    return request


def read_or_report(
    paths: list[Path], dataset: Any, limits: ReadLimits = LIMITS
) -> list[PersonRatings]:
    """Each file's match report printed, even when another file fails; then one error line."""
    people, errors = read_people(paths, dataset, limits)
    for person in people:
        if person is not None:
            print(person.report(), flush=True)
    if errors:
        first, *rest = errors
        also = "".join(f"; also {err}" for err in rest)
        raise DataError(first.path, f"{first.problem}{also}", line=first.line)
    return [p for p in people if p is not None]


def run_people(request: Request, recommender: Recommender) -> pd.DataFrame:
    """users + people: read and report the files, fold the people in, recommend, explain."""
    assert request.people is not None and request.users is not None
    people = read_or_report(request.people, recommender.dataset, request.people_limits)
    start = time.perf_counter()
    frame = recommender.people(
        people,
        request.users,
        k=request.k,
        aggregate=request.aggregate,
        rank_by=request.rank_by,
        filters=request.filters,
    )
    seconds = time.perf_counter() - start
    print(
        f"folded in {len(people)} people and ranked in {seconds:.2f} s (checkpoint unchanged)"
    )
    return frame


def run(cfg: DictConfig) -> pd.DataFrame:
    """Recommend as configured; print the table (one pair) or write the file (many pairs)."""
    request = parse_request(cfg)
    recommender = Recommender.load(
        cfg.get("ckpt_path"),
        cfg.paths.log_dir,
        cfg.paths.cache_dir,
        cfg.get("data"),
        announce=lambda line: print(line, flush=True),
    )
    options = dict(
        k=request.k, aggregate=request.aggregate, rank_by=request.rank_by, filters=request.filters
    )
    if request.pairs_file is not None:
        pairs = read_pairs(request.pairs_file)
        try:
            frame = recommender.pairs(pairs, batch_size=request.batch_size, **options)
        except UsageError as err:
            raise UsageError(f"{request.pairs_file}: {err}") from None
        assert request.output is not None
        write_table(frame, request.output)
        print(f"{len(pairs)} pairs, {len(frame)} recommendations: {request.output}")
        return frame
    assert request.users is not None
    if request.people is not None:
        frame = run_people(request, recommender)
        group = "group_rating" in frame
        return show(frame, group_table if group else recommendations_table, request.output)
    if len(request.users) > 2:
        return show(recommender.group(request.users, **options), group_table, request.output)
    frame = recommender.pair(*request.users, **options)
    return show(frame, recommendations_table, request.output)


def show(frame: pd.DataFrame, table: Any, output: Path | None) -> pd.DataFrame:
    """Print one recommendation table (and write it to `output` when given)."""
    console = Console(width=None if Console().is_terminal else UNWRAPPED_WIDTH)
    console.print(table(frame))
    if output is not None:
        write_table(frame, output)
        print(f"written: {output}")
    return frame


@hydra.main(version_base="1.3", config_path="../../conf", config_name="recommend")
@friendly_errors("duorec.recommend")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    from duorec.overrides import run_checked

    run_checked(main, "recommend", "duorec.recommend")
