"""A pair's or group's rating from its members': mean, least misery (min), most pleasure (max).

The one home of aggregation: for numpy arrays (metrics, baselines) and torch tensors (the
model's heads and loss, ranking, serving), of two people (`aggregate`) or of a member axis
(`aggregate_members`), so the target a model is trained for, the one it is scored on and the
one a group is served by cannot drift apart.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

import numpy as np

AGGREGATES = ("mean", "min", "max")

Array = TypeVar("Array")


def _library(x: Any) -> Any:
    """torch for tensors (already imported if one exists), numpy for everything else."""
    return sys.modules["torch"] if type(x).__module__.startswith("torch") else np


def aggregate(a: Array, b: Array, how: str) -> Array:
    """`how` of two aligned arrays of ratings, in their own type and dtype.

    The mean halves the sum (exact in floating point, so float32 stays float32 bit for bit).
    """
    if how == "mean":
        return (a + b) / 2  # type: ignore[operator,return-value]
    if how == "min":
        return _library(a).minimum(a, b)
    if how == "max":
        return _library(a).maximum(a, b)
    raise ValueError(f"unknown aggregate {how!r}: choose one of {AGGREGATES}")


def aggregate_members(ratings: Array, how: str) -> Array:
    """`how` over the last (member) axis of [..., k] ratings, exact under any member order.

    The members are sorted first and reduced in that fixed order, so the same group in any
    order gives bit-identical results (plain float sums depend on the order). numpy input is
    reduced by torch and returned as numpy: one implementation, the same bits either way.
    """
    if _library(ratings) is np:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(ratings))
        return aggregate_members(tensor, how).numpy()  # type: ignore[attr-defined,return-value]
    ordered = ratings.sort(dim=-1).values  # type: ignore[attr-defined]
    if how == "mean":
        return ordered.sum(-1) / ordered.shape[-1]
    if how == "min":
        return ordered[..., 0]
    if how == "max":
        return ordered[..., -1]
    raise ValueError(f"unknown aggregate {how!r}: choose one of {AGGREGATES}")
