"""Recommending for a group of 3..6 people (a pair goes through `duorec.serving.recommend`).

    recommend_group(model, index, [1, 2, 3, 4], k=10, aggregate="min")

The list holds the k best movies that NO member has rated in any split, ranked by the same
rule as for pairs, member by member: `rating` orders by the group's predicted rating, `watch`
by the sum of the members' watch logits (every one must want it), `score` (the three-tower
model's default) by watch + rank_rating_weight * rating (`group_eval.group_rank_grid`, the
rule evaluation measures). Each member's own predicted rating is shown beside the group's.

The group rating (`aggregate=mean|min|max`): with the model's training target and a model
trained on groups (data.group_sizes), its group head; otherwise that aggregate of the members'
predictions in stars, so `aggregate=min` ("least misery") shows exactly the lowest member
rating. With `rank_by=rating` the list is ordered by the rating shown.

Fairness view: the `lowest` column is the least happy member's predicted rating for each
movie, and `frame.attrs["lowest"]` the lowest of them in the whole list (who, and for which
movie): how badly the list treats its least happy member.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from duorec.data.groups import MAX_GROUP
from duorec.errors import UsageError
from duorec.group_eval import aggregate_np, group_rank_grid
from duorec.model.base import PairRatingModule
from duorec.model.group_fusion import group_grid
from duorec.ranking import top_k_unseen_groups
from duorec.serving import (
    ServingIndex,
    _frame,
    allowed_movies,
    as_user_id,
    check_aggregate,
    check_k,
    check_rank_by,
)

GROUP_COLUMNS = ["rank", "movieId", "title", "year", "genres", "imdb_rating", "group_rating"]


def check_members(users: Sequence[Any]) -> list[int]:
    """2..6 distinct user ids; UsageError naming the problem otherwise."""
    ids = [as_user_id(u) for u in users]
    if not 2 <= len(ids) <= MAX_GROUP:
        raise UsageError(f"users must be 2 to {MAX_GROUP} user ids, got {len(ids)}: {ids}")
    repeated = sorted({u for u in ids if ids.count(u) > 1})
    if repeated:
        raise UsageError(f"user {repeated[0]} is named twice: a group needs distinct people")
    return ids


def member_column(user_id: int) -> str:
    return f"rating_{user_id}"


@torch.inference_mode()
def recommend_group(
    model: PairRatingModule,
    index: ServingIndex,
    users: Sequence[Any],
    k: int = 10,
    aggregate: str = "mean",
    filters: Mapping[str, Any] | None = None,
    rank_by: str | None = None,
) -> pd.DataFrame:
    """Top-k unseen movies for one group, best first: GROUP_COLUMNS, `lowest`, then one
    `rating_<id>` column per member in the order given (the ranking ignores that order)."""
    ids = check_members(users)
    members = index.user_indices(np.array(ids))
    return recommend_group_indices(model, index, members, ids, k, aggregate, filters, rank_by)


@torch.inference_mode()
def recommend_group_indices(
    model: PairRatingModule,
    index: ServingIndex,
    members: Sequence[int] | np.ndarray,
    ids: Sequence[Any],
    k: int = 10,
    aggregate: str = "mean",
    filters: Mapping[str, Any] | None = None,
    rank_by: str | None = None,
) -> pd.DataFrame:
    """`recommend_group` for member *indices* (folded-in people included, see
    `duorec.foldin`), each named by `ids` (a user id or a person's label)."""
    k, how, rank_by = check_k(k), check_aggregate(aggregate), check_rank_by(rank_by)
    members = np.asarray(members, dtype=np.int64)[None]  # [1, size]
    allowed = allowed_movies(index, filters)
    model.eval()
    movie_vectors = model.encode_movies()
    head, raw = group_grid(model, torch.as_tensor(members), movie_vectors)
    each = model.unscale(raw[0]).cpu().numpy()  # [M, size] stars
    own_head = how == model.target
    shown = model.unscale(head[0]).cpu().numpy() if own_head else aggregate_np(each, how)
    rank_by = rank_by or getattr(model, "rank_by", "rating")
    if rank_by == "rating":
        # the shown rating orders the list; the unclamped one only breaks its ties
        key = shown.astype(np.float64) + 1e-9 * np.tanh(raw_key(head[0], raw[0], how, own_head))
    else:
        watch = model.encode_watch()
        key = group_rank_grid(
            model, torch.as_tensor(members), movie_vectors, watch, rank_by, aggregate=how
        )
        key = key[0].double().cpu().numpy()
    top = top_k_unseen_groups(key[None], members, index.seen, k, allowed).movie[0]
    movies = top[top >= 0]
    member_ratings = each[movies]
    values: dict[str, Any] = {
        "rank": np.arange(1, len(movies) + 1),
        "group_rating": shown[movies],
        "lowest": member_ratings.min(axis=1) if len(movies) else np.zeros(0, np.float32),
    }
    for j, user in enumerate(ids):
        values[member_column(user)] = member_ratings[:, j]
    columns = [*GROUP_COLUMNS, "lowest", *(member_column(u) for u in ids)]
    frame = _frame(index, movies, columns, values)
    lowest = None
    if len(movies):
        row, col = np.unravel_index(int(np.argmin(member_ratings)), member_ratings.shape)
        lowest = {
            "rating": float(member_ratings[row, col]),
            "user": ids[col],
            "title": str(frame["title"].iloc[row]),
        }
    frame.attrs.update(
        users=ids,
        aggregate=how,
        group_head=own_head and model_has_group_head(model),
        rank_by=rank_by,
        lowest=lowest,
    )
    return frame


def raw_key(head: torch.Tensor, raw: torch.Tensor, how: str, own_head: bool) -> np.ndarray:
    """The unclamped group score behind the shown rating, for tie-breaking only."""
    if own_head:
        return head.double().cpu().numpy()
    return aggregate_np(raw.double().cpu().numpy(), how)


def model_has_group_head(model: PairRatingModule) -> bool:
    return getattr(model, "group_head", None) is not None
