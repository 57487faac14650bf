"""The baselines every number is compared with, fitted on the same train split as the model:
rating baselines (`fit_baselines`) and ranking baselines tuned on validation (`fit_rankers`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from duorec.model.ranking_baselines import (
    EASE,
    ImplicitALS,
    ItemKNN,
    Ranker,
    RecentPopularity,
    tune,
)
from duorec.model.rating_baselines import (
    BiasBaseline,
    BiasedMF,
    GlobalMean,
    Popularity,
    RatingBaseline,
)
from duorec.model.sequential import SASRec

log = logging.getLogger("duorec.eval")


def fit_baselines(
    names: list[str],
    train: Mapping[str, np.ndarray],
    n_users: int,
    n_movies: int,
    rating_range: tuple[float, float],
    mf: Mapping[str, Any],
) -> dict[str, RatingBaseline]:
    """Fit each named baseline on the train ratings of the same prepared dataset."""
    makers = {
        "global_mean": lambda: GlobalMean(rating_range=rating_range),
        "bias": lambda: BiasBaseline(rating_range=rating_range),
        "mf": lambda: BiasedMF(rating_range=rating_range, **mf),
        "popularity": lambda: Popularity(rating_range=rating_range),
    }
    unknown = sorted(set(names) - set(makers))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}: choose from {sorted(makers)}")
    fitted = {}
    for name in names:
        start = time.perf_counter()
        fitted[name] = makers[name]().fit(
            train["user"], train["movie"], train["rating"], n_users, n_movies
        )
        log.info("fitted baseline %s in %.1f s", name, time.perf_counter() - start)
    return fitted


RANKERS = {
    "ease": EASE,
    "itemknn": ItemKNN,
    "ials": ImplicitALS,
    "recent_popularity": RecentPopularity,
    "sasrec": SASRec,
}


@dataclass
class TunedRanker:
    """A ranking baseline fitted on train with the grid value best on validation."""

    model: Ranker
    grid: list[dict[str, Any]]
    val_ndcg: list[float]
    best: dict[str, Any]
    seconds: float

    def describe(self) -> dict[str, Any]:
        restricted = getattr(self.model, "restricted_to", None)
        return {
            "best": self.best,
            "grid": [dict(g, val_ndcg=v) for g, v in zip(self.grid, self.val_ndcg, strict=True)],
            "restricted_to_most_rated": restricted,
            "seconds": self.seconds,
            # a trained ranker's loss per epoch (SASRec): did it converge?
            **({"train_loss": self.model.losses} if getattr(self.model, "losses", None) else {}),
        }


def fit_rankers(
    settings: Mapping[str, Mapping[str, Any]],
    train: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    n_users: int,
    n_movies: int,
    opts: Mapping[str, Any],
) -> dict[str, TunedRanker]:
    """Fit each ranking baseline of `eval.rankers`, tuned on the validation split.

    A setting given as a list is a grid: every combination is fitted on train and the one with
    the best individual NDCG@k on validation (`duorec.model.ranking_baselines.tune`) is kept.
    """
    unknown = sorted(set(settings) - set(RANKERS))
    if unknown:
        raise ValueError(f"unknown ranker(s) {unknown}: choose from {sorted(RANKERS)}")
    fitted = {}
    for name, params in settings.items():
        start = time.perf_counter()
        grid = expand_grid(params)
        result = tune(
            lambda p, name=name: RANKERS[name](**p),
            grid,
            train,
            val,
            n_users,
            n_movies,
            k=int(opts["k"]),
            threshold=float(opts["relevance_threshold"]),
            seed=int(opts["seed"]),
        )
        seconds = time.perf_counter() - start
        fitted[name] = TunedRanker(
            result.model, grid, [v for _, v in result.ndcg], result.best, seconds
        )
        log.info("tuned ranker %s in %.1f s: %s", name, seconds, result.best)
    return fitted


def expand_grid(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """{"lam": [50, 200], "max_items": 20000} -> [{"lam": 50, ...}, {"lam": 200, ...}]."""
    keys = list(params)
    values = [v if isinstance(v, list | tuple) else [v] for v in params.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
