"""Every check of a recommendation request, before any model is touched: k, the aggregate,
rank_by, user ids, pairs, group members, the output path. One line naming the bad value, so a
typo on the command line or in a JSON body costs nothing and says what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from duorec.aggregate import AGGREGATES
from duorec.data.groups import MAX_GROUP
from duorec.errors import UsageError
from duorec.model.module import RANK_BY

OUTPUT_EXTENSIONS = (".csv", ".parquet")


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


def check_members(users: Sequence[Any]) -> list[int]:
    """2..6 distinct user ids; UsageError naming the problem otherwise."""
    ids = [as_user_id(u) for u in users]
    if not 2 <= len(ids) <= MAX_GROUP:
        raise UsageError(f"users must be 2 to {MAX_GROUP} user ids, got {len(ids)}: {ids}")
    repeated = sorted({u for u in ids if ids.count(u) > 1})
    if repeated:
        raise UsageError(f"user {repeated[0]} is named twice: a group needs distinct people")
    return ids
