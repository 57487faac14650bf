"""The evaluation protocol of docs/protocol.md: the model beside its baselines, on the same data.

`evaluate` is the one code path behind both `python -m duorec.train` (which ends with it) and
`python -m duorec.evaluate`. It is a list of sections (`SECTIONS`), each filling its part of
metrics.json from one shared `Evaluation` (the test triples, the train split, the fitted
baselines, each person's history at test time):

* pairs: RMSE of every pair target, the model beside the rating baselines, with a
  paired-bootstrap interval on its difference from the best one;
* ranking: NDCG / Recall / HitRate@k over unseen movies for a seeded sample of test pairs,
  beside the rating and ranking baselines (tuned on validation);
* known people: under the temporal split, pairs and ranking again for pairs of known people
  apart from newcomers (`duorec.eval.known`);
* groups: the same for groups of `eval.group_sizes` (`duorec.eval.groups`);
* cold start: people the model never saw, folded in from their first ratings
  (`duorec.eval.coldstart`).

Pairs, ranking and known people read each person's history before the test period
(`duorec.eval.history`); groups and cold start keep their own protocols, on the train history.
Every number in metrics.json comes from `duorec.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from duorec.data.datamodule import PairDataModule
from duorec.data.pairs import Triples
from duorec.eval.coldstart import cold_start, reveal_settings
from duorec.eval.fitting import TunedRanker, fit_baselines, fit_rankers
from duorec.eval.groups import group_section
from duorec.eval.history import at_test_time, history_at_test, split_arrays
from duorec.eval.known import known_people, newcomers_folded_in
from duorec.eval.ranking import movie_similarity_space, rank_everyone
from duorec.eval.scoring import (
    best_difference,
    memoized,
    model_pair_scorer,
    pair_errors,
    predict_triples,
)
from duorec.metrics import pair_target
from duorec.model.base import PairRatingModule
from duorec.model.ranking_baselines import PAIR_RULES, period_start
from duorec.model.rating_baselines import RatingBaseline
from duorec.topk import PairScoreFn


@dataclass
class Evaluation:
    """What every section reads: built once per `evaluate`."""

    model: PairRatingModule
    datamodule: PairDataModule
    opts: Mapping[str, Any]
    triples: Triples  # the fixed test triples
    train: dict[str, np.ndarray]  # the train split's user, movie, rating, timestamp
    baselines: dict[str, RatingBaseline]  # fitted on train
    history: dict[str, np.ndarray] = field(default_factory=dict)  # each person's, at test
    rankers: dict[str, TunedRanker] = field(default_factory=dict)  # tuned by `ranking`
    # the ranking scorers at test time (model, rating and ranking baselines), set by `ranking`
    scorers: dict[str, PairScoreFn] = field(default_factory=dict)


def pairs(ev: Evaluation, result: dict[str, Any]) -> None:
    """Pair RMSE (and MAE, ...) of every target: the pair head answers the target it was
    trained for; other targets aggregate the model's individual predictions, exactly as the
    baselines do."""
    model, ds, triples = ev.model, ev.datamodule.dataset, ev.triples
    pair, own_a, own_b = predict_triples(model, triples)
    for how in ev.opts["targets"]:
        prediction = pair if how == model.target else pair_target(own_a, own_b, how)
        errors, table = pair_errors(prediction, triples, ev.baselines, how, ds.rating_range)
        result["targets"][how] = table
        if how == model.target:
            result["test"].update(table["model"])
            for name in list(table)[1:]:
                result["baselines"][name] = dict(table[name])
            rmse = {name: metrics["pair_rmse"] for name, metrics in table.items()}
            result["ci"]["pair_rmse"] = best_difference(errors, rmse, ev.opts, "rmse", False)
    oracle = best_achievable(ds.manifest, model.target, result["test"].get("pair_rmse"))
    if oracle:
        result["oracle"] = oracle


def ranking(ev: Evaluation, result: dict[str, Any]) -> None:
    """Top-k of unseen movies for sampled test pairs: the model, the rating baselines (a
    constant ranks nothing) and the ranking baselines, tuned on validation, read at test
    time with each person's history and each of the pair rules."""
    model, ds, opts = ev.model, ev.datamodule.dataset, ev.opts
    val = split_arrays(ds, ("val",))
    ev.rankers = fit_rankers(
        opts.get("rankers") or {}, ev.train, val, ds.n_users, ds.n_movies, opts
    )
    result["ranker_settings"] = {name: tuned.describe() for name, tuned in ev.rankers.items()}
    scorers = {"model": model_pair_scorer(model)}
    scorers.update(
        {n: b.pair_score_fn("mean") for n, b in ev.baselines.items() if n != "global_mean"}
    )
    asked = period_start(split_arrays(ds, ("test",)), ds.n_users)
    for name, tuned in ev.rankers.items():
        ranker = at_test_time(tuned.model, ev.train, ev.history, asked)
        for rule in PAIR_RULES:
            scorers[f"{name}_{rule}"] = ranker.pair_score_fn(rule)
    ev.scorers = scorers
    # the model's lists are ranked five times (plain, long tail, three diversities): its grids
    # are computed once (and forgotten after this section)
    ranked = rank_everyone(
        {**scorers, "model": memoized(scorers["model"])},
        ev.triples,
        ev.history,
        ds.n_users,
        ds.n_movies,
        opts,
        movie_similarity_space(model),
    )
    if ranked:
        per_pair = ranked.pop("_per_pair")
        result["test"].update(ranked.pop("model"))
        for name, summary in ranked.items():
            result["baselines"].setdefault(name, {}).update(summary)
        ndcg = {name: float(values.mean()) for name, values in per_pair.items()}
        result["ci"][f"ndcg@{opts['k']}"] = best_difference(per_pair, ndcg, opts, "mean", True)


def known(ev: Evaluation, result: dict[str, Any]) -> None:
    """Under the temporal split, pairs and ranking for known people apart from newcomers, and
    newcomers again folded in (`duorec.eval.known`); nothing under the other splits."""
    model, ds = ev.model, ev.datamodule.dataset
    result.update(
        known_people(model, ds, ev.triples, ev.history, ev.baselines, ev.scorers, ev.opts)
    )
    ease = ev.rankers.get("ease")
    folded = newcomers_folded_in(
        model, ev.datamodule, ev.history, ease.model if ease else None, ev.opts
    )
    if folded:
        result["known_people"].update(folded)


def groups(ev: Evaluation, result: dict[str, Any]) -> None:
    """Groups of `eval.group_sizes` (none by default: then nothing is added)."""
    result.update(group_section(ev.model, ev.datamodule, ev.baselines, ev.rankers, ev.opts))


def cold(ev: Evaluation, result: dict[str, Any]) -> None:
    """People the model never saw, folded in from their first ratings."""
    result.update(cold_start(ev.model, ev.datamodule, ev.opts, ev.rankers.get("ease")))


Section = Callable[[Evaluation, dict[str, Any]], None]
#: (section, whether it reads each person's history at test time), in metrics.json's order
SECTIONS: tuple[tuple[Section, bool], ...] = (
    (pairs, True),
    (ranking, True),
    (known, True),
    (groups, False),
    (cold, False),
)


def evaluate(
    model: PairRatingModule, datamodule: PairDataModule, opts: Mapping[str, Any]
) -> dict[str, Any]:
    """All test metrics of `model` and its baselines; the dictionary written to metrics.json.

    `opts` is the `eval` config group (conf/eval/default.yaml): targets, k, relevance
    threshold, ranking sample size, baselines, MF settings, bootstrap resamples, seed.
    """
    reveal_settings(opts)  # a bad eval.cold_start fails before minutes of evaluation
    ds = datamodule.dataset
    train = split_arrays(ds, ("train",))
    baselines = fit_baselines(
        list(opts["baselines"]), train, ds.n_users, ds.n_movies, ds.rating_range, opts["mf"]
    )
    ev = Evaluation(
        model, datamodule, opts, datamodule.evaluation_triples("test"), train, baselines
    )
    result: dict[str, Any] = {
        "protocol": protocol(datamodule, len(ev.triples)),
        # how the model's co-watch head was fitted (lambda on validation), when it has one
        **({"cowatch": model.hparams["cowatch_fit"]} if model.hparams.get("cowatch_fit") else {}),
        "test": {},
        "baselines": {},
        "targets": {},
        "ci": {},
    }
    with history_at_test(model, ds, opts) as (splits, history):
        ev.history = history
        for section, at_test in SECTIONS:
            if at_test:
                section(ev, result)
    result["protocol"]["test_history"] = "+".join(splits)
    for section, at_test in SECTIONS:
        if not at_test:
            section(ev, result)
    return result


def best_achievable(
    manifest: Mapping[str, Any], target: str, model_rmse: float | None
) -> dict[str, float] | None:
    """On synthetic data the generator knows the noise: how close to the floor is the model?"""
    synthetic = manifest.get("synthetic") or {}
    key = "oracle_pair_rmse" if target == "mean" else f"oracle_pair_rmse_{target}"
    if key not in synthetic or model_rmse is None:
        return None
    floor = float(synthetic[key])
    return {"pair_rmse": floor, "model_ratio": model_rmse / floor}


def protocol(datamodule: PairDataModule, n_triples: int) -> dict[str, Any]:
    """What the numbers were measured on, so a table can say so."""
    manifest = datamodule.dataset.manifest
    settings = manifest.get("settings", {})
    return {
        "data": manifest.get("name"),
        "split": settings.get("split"),
        "seed": settings.get("seed"),
        "test_triples": n_triples,
        "test_triples_sampled": datamodule.rater_index("test").n_pairs > n_triples,
        "rating_range": list(datamodule.dataset.rating_range),
    }
