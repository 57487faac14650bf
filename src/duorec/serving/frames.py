"""The columns of a recommendation table and the one function that builds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from duorec.serving.index import ServingIndex

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
    "score",
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
    "score",
]
GROUP_COLUMNS = [
    "rank",
    "movieId",
    "title",
    "year",
    "genres",
    "imdb_rating",
    "group_rating",
    "score",
    "lowest",
]


def member_column(member: Any) -> str:
    """The column of one member's predicted rating in a group table."""
    return f"rating_{member}"


def result_frame(
    index: ServingIndex, movies: np.ndarray, columns: Sequence[str], values: Mapping[str, Any]
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
    # built in `columns` order (no reindexing by name) from fresh arrays (nothing to copy)
    return pd.DataFrame(data, copy=False)
