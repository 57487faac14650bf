"""Scoring helpers every evaluation section shares: predictions for triples, a model's ranking
grid for pairs, the seeded sample of pairs that ranking is measured on, and the
paired-bootstrap difference from the best baseline.

They live apart from `duorec.eval.protocol` (which lists the sections) so that each section
(pairs, ranking, groups, cold start, the dashboards' breakdowns) imports them without
importing the protocol that calls it back: evaluation -> coldstart -> evaluation was a circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from duorec.data.datamodule import FixedTripleBatches
from duorec.data.pairs import Triples
from duorec.metrics import bootstrap_diff_ci, pair_target, regression_metrics, relevant_by_pair
from duorec.model.base import PairRatingModule
from duorec.model.rating_baselines import RatingBaseline
from duorec.topk import PairScoreFn


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


def best_difference(
    values: Mapping[str, np.ndarray],
    scores: Mapping[str, float],
    opts: Mapping[str, Any],
    stat: str,
    higher_is_better: bool,
) -> dict[str, Any]:
    """Model minus the best baseline, with a paired-bootstrap 95% interval.

    `values` are per-item errors (stat "rmse") or per-pair metric values (stat "mean") of the
    model and each baseline, aligned item by item; `scores` picks the best baseline.
    """
    rivals = [n for n in values if n != "model"]
    if not rivals:
        return {}
    pick = max if higher_is_better else min
    best = pick(rivals, key=lambda n: scores[n])
    diff, low, high = bootstrap_diff_ci(
        values["model"], values[best], n_boot=opts["bootstrap"], seed=opts["seed"], stat=stat
    )
    return {"baseline": best, "diff": diff, "low": low, "high": high, "n_boot": opts["bootstrap"]}


def pair_errors(
    prediction: np.ndarray,
    triples: Triples,
    baselines: Mapping[str, RatingBaseline],
    how: str,
    rating_range: tuple[float, float],
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Per-triple errors and regression metrics for pair target `how` of the model's
    `prediction` and of every rating baseline but popularity (which rates nothing), model
    first: what a pair RMSE table and its bootstrap interval are made of."""
    truth = pair_target(triples.rating_a, triples.rating_b, how)
    errors = {"model": prediction - truth}
    table = {"model": regression_metrics(prediction, truth, rating_range)}
    for name, baseline in baselines.items():
        if name == "popularity":
            continue
        guess = baseline.predict_pair(triples.user_a, triples.user_b, triples.movie, how)
        errors[name] = guess - truth
        table[name] = regression_metrics(guess, truth, rating_range)
    return errors, table
