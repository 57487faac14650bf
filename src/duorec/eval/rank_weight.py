"""The weight of the predicted rating in the model's ranking score, chosen on validation after
training (`choose_rank_rating_weight`): each grid weight re-weights two grids computed once
(`GridCache`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from duorec.csr import csr_from_pairs
from duorec.data.datamodule import PairDataModule
from duorec.eval.scoring import memoized, sampled_ranking_pairs
from duorec.metrics import rank_pairs
from duorec.model.base import PairRatingModule
from duorec.topk import PairScoreFn

log = logging.getLogger("duorec.eval")


def choose_rank_rating_weight(
    model: PairRatingModule, datamodule: PairDataModule, opts: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Pick how the ranking score is formed, on validation: the weight of the predicted pair
    rating beside "both would watch" and, for a co-watch head, the pair rule (sum | both).

    For each combination of `eval.rank_rating_weights` and `eval.rank_pair_rules`, NDCG@k of
    the model's score on a seeded sample of validation pairs (relevant: both rated >= the
    threshold in validation; candidates: unseen in train), the protocol the test numbers
    follow. The best is set on the model; the caller saves it with the checkpoint, so
    recommend ranks the same way. None for a model without a watch head.
    """
    weights = [float(w) for w in opts.get("rank_rating_weights") or []]
    if not weights or not model.ranks_by_watch:
        return None
    cowatch = getattr(model, "cowatch", None) is not None
    rules = list(opts.get("rank_pair_rules") or ["sum"]) if cowatch else ["-"]
    ds = datamodule.dataset
    train_frame = ds.split("train")
    seen = csr_from_pairs(
        train_frame["user"].to_numpy(), train_frame["movie"].to_numpy(), ds.n_users
    )
    pairs, relevant = sampled_ranking_pairs(datamodule.evaluation_triples("val"), opts)
    scores: dict[str, list[float]] = {}
    grids = GridCache(model)
    for rule in rules:
        if rule != "-":
            model.rank_pair_rule = rule
        scores[rule] = [
            float(
                rank_pairs(pairs, relevant, seen, grids.weighted(w), k=int(opts["k"])).ndcg.mean()
            )
            for w in weights
        ]
    rule, at = max(
        ((r, i) for r in rules for i in range(len(weights))), key=lambda ri: scores[ri[0]][ri[1]]
    )
    best = weights[at]
    model.rank_rating_weight = best
    model.hparams["rank_rating_weight"] = best
    if rule != "-":
        model.rank_pair_rule = rule
        model.hparams["rank_pair_rule"] = rule
    log.info("rank score chosen on validation: weight %s, rule %s; NDCG %s", best, rule, scores)
    return {
        "best": best,
        "rule": rule if rule != "-" else None,
        "grid": weights,
        f"val_ndcg@{opts['k']}": scores if rule != "-" else scores["-"],
    }


class GridCache:
    """The model's two ranking grids ("watch", "rating") per batch of pairs, computed once and
    re-weighted for every weight of a grid search (the movie tower also runs once). The
    rating grid does not depend on the co-watch pair rule, so it is kept across rules."""

    def __init__(self, model: PairRatingModule):
        self.model = model
        self.movies, self.watch_vectors = model.encode_movies(), model.encode_watch()
        self.rating = self._grid("rating")
        self.watch: dict[str, PairScoreFn] = {}  # per co-watch pair rule

    def _grid(self, how: str) -> PairScoreFn:
        def grid(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
            pairs = torch.stack([torch.as_tensor(a), torch.as_tensor(b)], 1)
            return self.model.rank_grid(pairs, self.movies, self.watch_vectors, how)

        return memoized(grid)  # type: ignore[arg-type]

    def weighted(self, weight: float) -> PairScoreFn:
        rule = getattr(self.model, "rank_pair_rule", "")
        if rule not in self.watch:
            self.watch[rule] = self._grid("watch")
        watch_grid = self.watch[rule]

        def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            watch = watch_grid(a, b)
            return (watch + weight * self.rating(a, b) if weight else watch).numpy()  # type: ignore[operator]

        return score
