"""A pair's rating from two individual ones: mean, least misery (min) or most pleasure (max).

One definition for numpy arrays (metrics, baselines) and torch tensors (the model's heads and
loss), so the target a model is trained for and the one it is scored on cannot drift apart.
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
