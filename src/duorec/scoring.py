"""Scoring helpers every evaluation section shares: predictions for triples, a model's ranking
grid for pairs, and the seeded sample of pairs that ranking is measured on.

They live apart from `duorec.evaluation` (the protocol's sections) so that each section
(pairs, ranking, cold start, the dashboards' breakdowns) imports them without importing the
protocol that calls it back: evaluation -> coldstart -> evaluation was a circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from duorec.data.datamodule import FixedTripleBatches
from duorec.data.pairs import Triples
from duorec.metrics import relevant_by_pair
from duorec.model.base import PairRatingModule
from duorec.ranking import PairScoreFn


@torch.no_grad()
def predict_triples(
    model: PairRatingModule, triples: Triples, batch_size: int = 16384
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Star-scale predictions (pair, person a, person b) for every triple."""
    model.eval()
    if len(triples) == 0:
        return tuple(np.zeros(0, np.float32) for _ in range(3))  # type: ignore[return-value]
    parts: list[tuple[torch.Tensor, ...]] = []
    for batch in FixedTripleBatches(triples, batch_size):
        batch = {k: v.to(model.device) for k, v in batch.items()}
        outputs = model(batch["user_a"], batch["user_b"], batch["movie"])
        parts.append(tuple(model.unscale(x).cpu() for x in outputs))
    pair, ra, rb = (torch.cat(column).numpy() for column in zip(*parts, strict=True))
    return pair, ra, rb


def model_pair_scorer(model: PairRatingModule, rank_by: str | None = None) -> PairScoreFn:
    """(user_a [B], user_b [B]) -> ranking scores [B, n_movies], movie tower run once.

    `rank_by` (score | watch | rating) defaults to the model's own (`model.rank_by`).
    """
    movies, watch = model.encode_movies(), model.encode_watch()

    def score(user_a: np.ndarray, user_b: np.ndarray) -> np.ndarray:
        a = torch.as_tensor(user_a, device=model.device)
        b = torch.as_tensor(user_b, device=model.device)
        return model.rank_grid(torch.stack([a, b], 1), movies, watch, rank_by).cpu().numpy()

    return score


def memoized(score: PairScoreFn) -> PairScoreFn:
    """`score` computed once per batch of pairs (the rankers copy what they are given)."""
    cache: dict[bytes, np.ndarray] = {}

    def cached(user_a: np.ndarray, user_b: np.ndarray) -> np.ndarray:
        key = np.asarray(user_a).tobytes() + b"|" + np.asarray(user_b).tobytes()
        if key not in cache:
            cache[key] = score(user_a, user_b)
        return cache[key]

    return cached


def sampled_ranking_pairs(
    triples: Triples, opts: Mapping[str, Any]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pairs with a movie both rated >= the threshold, and those movies; a seeded sample."""
    pairs, relevant = relevant_by_pair(triples, opts["relevance_threshold"])
    limit = opts["ranking_pairs"]
    if limit and len(pairs) > limit:
        keep = np.sort(np.random.default_rng([opts["seed"], 0xA11]).permutation(len(pairs))[:limit])
        pairs, relevant = pairs[keep], [relevant[i] for i in keep]
    return pairs, relevant


