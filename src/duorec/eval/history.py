"""A person's history at test time: everything before their test ratings, for every model.

Under a time-ordered split a person's history at test time is everything before their test
ratings, train + validation (`eval.test_history`): the model's history bag and co-watch read
it (`model_history`), the ranking baselines fold it in (`Ranker.with_history`), and movies in
it are never candidates. Parameters stay as fitted on train and chosen on validation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from duorec.model.base import PairRatingModule
from duorec.model.ranking_baselines import Ranker

#: eval.test_history: what a person's history is when their test ratings are predicted
TEST_HISTORIES = {"train": ("train",), "train_val": ("train", "val")}


def split_method(manifest: Mapping[str, Any]) -> str | None:
    """The prepared data's split method (random, chrono, temporal), None if not recorded."""
    return (manifest.get("settings", {}).get("split") or {}).get("method")


def history_splits(manifest: Mapping[str, Any], opts: Mapping[str, Any]) -> tuple[str, ...]:
    """The splits a person's test-time history is made of (`eval.test_history`).

    `auto` (the default): train + validation for a time-ordered split (chrono, temporal),
    where validation is exactly the period between train and test, so leaving it out would
    blind every model to a person's most recent ratings and let them recommend a movie the
    person rated last week; train alone for `random`, as before this setting existed, so
    random-split numbers stay comparable with the ones already recorded.
    """
    choice = opts.get("test_history") or "auto"
    if choice == "auto":
        method = split_method(manifest) or "random"
        choice = "train_val" if method in ("chrono", "temporal") else "train"
    if choice not in TEST_HISTORIES:
        raise ValueError(f"unknown eval.test_history {choice!r}: use auto, train or train_val")
    return TEST_HISTORIES[choice]


def split_arrays(ds: Any, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
    """user, movie, rating, timestamp arrays of the ratings in `splits` (a prepared dataset)."""
    frames = [ds.split(name) for name in splits]
    columns = ("user", "movie", "rating", "timestamp")
    return {c: np.concatenate([f[c].to_numpy() for f in frames]) for c in columns}


def at_test_time(
    ranker: Ranker,
    train: Mapping[str, np.ndarray],
    history: Mapping[str, np.ndarray],
    asked: np.ndarray,
) -> Ranker:
    """The tuned ranker as the test asks it: reading `history` when that is more than train
    (fold-in, its parameters kept), and asked at each person's first test rating."""
    if len(history["user"]) != len(train["user"]):
        ranker = ranker.with_history(
            history["user"], history["movie"], history["rating"], history["timestamp"]
        )
    return ranker.at(asked)


@contextmanager
def history_at_test(
    model: PairRatingModule, ds: Any, opts: Mapping[str, Any]
) -> Iterator[tuple[tuple[str, ...], dict[str, np.ndarray]]]:
    """Inside, the model reads each person's history before the test period, as the protocol
    asks (`eval.test_history`); yields the splits it is made of and its (user, movie, rating,
    timestamp) arrays. The one place evaluation and the dashboards' breakdowns get it from."""
    splits = history_splits(ds.manifest, opts)
    history = split_arrays(ds, splits)
    with model_history(model, history if splits != ("train",) else None):
        yield splits, history


@contextmanager
def model_history(
    model: PairRatingModule, history: Mapping[str, np.ndarray] | None
) -> Iterator[None]:
    """Inside, the model reads `history` (every person's ratings before the test period)
    wherever it reads a person's train ratings: the history bag of its user tower and the
    co-watch histories. Outside, its own train histories again. None: nothing changes.

    The bag keeps each person's most recent ratings up to the longest training bag (training
    capped it at `model.history_max`, which the checkpoint does not record; fold-in caps the
    same way). The learned weights, features and co-watch item weights are untouched: this
    is a fold-in, not a refit.
    """
    bag = getattr(model, "history", None)
    cowatch = getattr(model, "cowatch", None)
    if history is None or (bag is None and cowatch is None):
        yield
        return
    user = np.asarray(history["user"], dtype=np.int64)
    movie = np.asarray(history["movie"], dtype=np.int64)
    saved = []
    if bag is not None:
        saved += [(bag, name, getattr(bag, name)) for name in ("indptr", "movies", "centred")]
        device = bag.indptr.device
        n_users = len(bag.indptr) - 1
        cap = int(torch.diff(bag.indptr).max()) if n_users else 0
        kept = int(np.minimum(np.bincount(user, minlength=n_users), cap).sum())
        bag.movies = torch.zeros(kept, dtype=torch.long)  # the size set_history checks
        bag.set_history(
            user, movie, np.asarray(history["rating"]), np.asarray(history["timestamp"]), cap
        )
        for name in ("indptr", "movies", "centred"):
            setattr(bag, name, getattr(bag, name).to(device))
    if cowatch is not None:
        saved += [(cowatch, n, getattr(cowatch, n)) for n in ("history_indptr", "history_movies")]
        cowatch.set_history(user, movie)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
