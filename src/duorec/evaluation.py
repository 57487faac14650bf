"""The evaluation protocol of docs/protocol.md: the model beside its baselines, on the same triples.

`evaluate` is the one code path behind both `python -m duorec.train` (which ends with it) and
`python -m duorec.evaluate`. It fits the baselines on the train split of the same prepared
dataset, scores the fixed test triples for each pair target, ranks unseen movies for a seeded
sample of test pairs, and puts a paired-bootstrap interval on the model's difference from the
best baseline. Every number in metrics.json comes from `duorec.metrics`.

Under a time-ordered split a person's history at test time is everything before their test
ratings, train + validation (`test_history`): the model's history bag and co-watch read it
(`model_history`), the ranking baselines fold it in (`Ranker.with_history`), and movies in it
are never candidates. Parameters stay as fitted on train and chosen on validation.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from duorec.coldstart import cold_start, reveal_settings
from duorec.csr import csr_from_pairs
from duorec.data.datamodule import PairDataModule
from duorec.data.pairs import Triples
from duorec.group_eval import group_section
from duorec.metrics import (
    RankingResult,
    bootstrap_diff_ci,
    pair_target,
    rank_pairs,
    regression_metrics,
)
from duorec.model.base import PairRatingModule
from duorec.model.baselines import BiasBaseline, BiasedMF, GlobalMean, Popularity, RatingBaseline
from duorec.model.rankers import (
    EASE,
    PAIR_RULES,
    ImplicitALS,
    ItemKNN,
    Ranker,
    RecentPopularity,
    period_start,
    tune,
)
from duorec.model.sequential import SASRec
from duorec.ranking import PairScoreFn, diversify
from duorec.scoring import memoized, model_pair_scorer, predict_triples, sampled_ranking_pairs

log = logging.getLogger(__name__)


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


def evaluate(
    model: PairRatingModule, datamodule: PairDataModule, opts: Mapping[str, Any]
) -> dict[str, Any]:
    """All test metrics of `model` and its baselines; the dictionary written to metrics.json.

    `opts` is the `eval` config group (conf/eval/default.yaml): targets, k, relevance
    threshold, ranking sample size, baselines, MF settings, bootstrap resamples, seed.
    """
    reveal_settings(opts)  # a bad eval.cold_start fails before minutes of evaluation
    ds = datamodule.dataset
    triples = datamodule.evaluation_triples("test")
    train = split_arrays(ds, ("train",))
    baselines = fit_baselines(
        list(opts["baselines"]), train, ds.n_users, ds.n_movies, ds.rating_range, opts["mf"]
    )
    with history_at_test(model, ds, opts) as (splits, history):
        result, rankers = _evaluate_test(
            model, datamodule, opts, triples, train, history, baselines
        )
    result["protocol"]["test_history"] = "+".join(splits)
    # groups of eval.group_sizes (none by default: then nothing is added) and cold start keep
    # their own protocols, on the train history
    result.update(group_section(model, datamodule, baselines, rankers, opts))
    result.update(cold_start(model, datamodule, opts, rankers.get("ease")))
    return result


def _evaluate_test(
    model: PairRatingModule,
    datamodule: PairDataModule,
    opts: Mapping[str, Any],
    triples: Triples,
    train: Mapping[str, np.ndarray],
    history: Mapping[str, np.ndarray],
    baselines: Mapping[str, RatingBaseline],
) -> tuple[dict[str, Any], dict[str, TunedRanker]]:
    """Pair RMSE and ranking of the model and every baseline, the model reading `history`;
    and the ranking baselines as tuned (on the train history)."""
    ds = datamodule.dataset
    regressors = {n: b for n, b in baselines.items() if n != "popularity"}
    pair, own_a, own_b = predict_triples(model, triples)

    result: dict[str, Any] = {
        "protocol": protocol(datamodule, len(triples)),
        # how the model's co-watch head was fitted (lambda on validation), when it has one
        **({"cowatch": model.hparams["cowatch_fit"]} if model.hparams.get("cowatch_fit") else {}),
        "test": {},
        "baselines": {},
        "targets": {},
        "ci": {},
    }
    for how in opts["targets"]:
        truth = pair_target(triples.rating_a, triples.rating_b, how)
        # the pair head answers the target it was trained for; other targets aggregate the
        # model's individual predictions, exactly as the baselines do
        prediction = pair if how == model.target else pair_target(own_a, own_b, how)
        errors = {"model": prediction - truth}
        table = {"model": regression_metrics(prediction, truth, ds.rating_range)}
        for name, baseline in regressors.items():
            guess = baseline.predict_pair(triples.user_a, triples.user_b, triples.movie, how)
            errors[name] = guess - truth
            table[name] = regression_metrics(guess, truth, ds.rating_range)
        result["targets"][how] = table
        if how == model.target:
            result["test"].update(table["model"])
            for name in regressors:
                result["baselines"][name] = dict(table[name])
            rmse = {name: metrics["pair_rmse"] for name, metrics in table.items()}
            result["ci"]["pair_rmse"] = best_difference(errors, rmse, opts, "rmse", False)

    oracle = best_achievable(ds.manifest, model.target, result["test"].get("pair_rmse"))
    if oracle:
        result["oracle"] = oracle
    val = split_arrays(ds, ("val",))
    rankers = fit_rankers(opts.get("rankers") or {}, train, val, ds.n_users, ds.n_movies, opts)
    result["ranker_settings"] = {name: tuned.describe() for name, tuned in rankers.items()}
    # the model's lists are ranked five times (plain, long tail, three diversities): its grids
    # are computed once
    scorers = {"model": memoized(model_pair_scorer(model))}
    scorers.update(
        {n: b.pair_score_fn("mean") for n, b in baselines.items() if n != "global_mean"}
    )  # a constant score ranks nothing
    asked = period_start(split_arrays(ds, ("test",)), ds.n_users)
    for name, tuned in rankers.items():
        ranker = at_test_time(tuned.model, train, history, asked)
        for rule in PAIR_RULES:
            scorers[f"{name}_{rule}"] = ranker.pair_score_fn(rule)
    ranking = rank_everyone(
        scorers, triples, history, ds.n_users, ds.n_movies, opts, movie_similarity_space(model)
    )
    if ranking:
        per_pair = ranking.pop("_per_pair")
        result["test"].update(ranking.pop("model"))
        for name, summary in ranking.items():
            result["baselines"].setdefault(name, {}).update(summary)
        ndcg = {name: float(values.mean()) for name, values in per_pair.items()}
        result["ci"][f"ndcg@{opts['k']}"] = best_difference(per_pair, ndcg, opts, "mean", True)
    return result, rankers


#: eval.test_history: what a person's history is when their test ratings are predicted
TEST_HISTORIES = {"train": ("train",), "train_val": ("train", "val")}


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
        method = (manifest.get("settings", {}).get("split") or {}).get("method", "random")
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


def movie_similarity_space(model: PairRatingModule) -> np.ndarray:
    """Movie vectors whose cosine says "alike": the watch factors when the model has them."""
    watch = model.encode_watch()
    vectors = watch[:, :-1] if watch is not None else model.encode_movies()[:, :-1]
    return vectors.cpu().numpy().astype(np.float64)


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
    the best individual NDCG@k on validation (`duorec.model.rankers.tune`) is kept.
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


def rank_everyone(
    scorers: Mapping[str, PairScoreFn],
    triples: Triples,
    history: Mapping[str, np.ndarray],
    n_users: int,
    n_movies: int,
    opts: Mapping[str, Any],
    diversity_vectors: np.ndarray | None = None,
) -> dict[str, Any]:
    """NDCG / Recall / HitRate@k of every scorer (model and baselines) on the same test pairs,
    beside coverage and the popularity concentration of their lists.

    `history` holds every rating known before the test (train, or train + validation): its
    movies are no person's candidates, and its counts say which movies are the most rated.
    """
    pairs, relevant = sampled_ranking_pairs(triples, opts)
    if len(pairs) == 0:
        return {}
    seen = csr_from_pairs(history["user"], history["movie"], n_users)
    k = int(opts["k"])
    # the long-tail view: the most-rated movies leave both the candidates and the relevant sets
    head = np.argsort(-np.bincount(history["movie"], minlength=n_movies), kind="stable")
    n_head = int(opts["long_tail_head"])
    tail = np.sort(head[n_head:])
    in_tail = np.zeros(n_movies, dtype=bool)
    in_tail[tail] = True
    tail_relevant = [r[in_tail[r]] for r in relevant]
    out: dict[str, Any] = {"_per_pair": {}}
    for name, scorer in scorers.items():
        ranked = rank_pairs(pairs, relevant, seen, scorer, k=k)
        summary = ranked.summary()
        longtail = rank_pairs(pairs, tail_relevant, seen, scorer, k=k, allowed=tail).summary()
        out[name] = {
            f"ndcg@{k}": summary["ndcg"],
            f"recall@{k}": summary["recall"],
            f"hit_rate@{k}": summary["hit_rate"],
            "n_ranked_pairs": summary["n_pairs"],
            f"coverage@{k}": ranked.coverage(n_movies),
            **concentration(ranked, head[:n_head], k),
            f"longtail_ndcg@{k}": longtail["ndcg"],
            "longtail_n_pairs": longtail["n_pairs"],
        }
        out["_per_pair"][name] = ranked.ndcg
    if diversity_vectors is not None:
        out["model"]["diversity"] = {
            str(d): diversity_cost(pairs, relevant, seen, scorers["model"], diversity_vectors, d, k)
            for d in opts["diversity"]
        }
    return out


def concentration(ranked: RankingResult, head: np.ndarray, k: int) -> dict[str, Any]:
    """Popularity concentration of the top-k lists: the share of lists holding the most
    frequent title (and which movie it is), and the share of picks among the `head` most-rated
    movies (`eval.long_tail_head`, 100 by default)."""
    movie, share = ranked.top_title()
    return {
        f"top_title_share@{k}": share,
        f"top_title@{k}": movie,
        f"head_share@{k}": ranked.head_share(head),
    }


def diversity_cost(
    pairs: np.ndarray,
    relevant: list[np.ndarray],
    seen: Any,
    scorer: PairScoreFn,
    vectors: np.ndarray,
    diversity: float,
    k: int,
) -> dict[str, float]:
    """NDCG, coverage and intra-list similarity of the model's lists re-ranked by MMR."""
    ranked = rank_pairs(
        pairs,
        relevant,
        seen,
        scorer,
        k=k,
        rerank=lambda top: diversify(top, vectors, k, diversity),
        depth=DIVERSITY_DEPTH,
    )
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = []
    for row in ranked.top:
        row = row[row >= 0]
        if row.size > 1:
            sim = unit[row] @ unit[row].T
            sims.append((sim.sum() - np.trace(sim)) / (row.size * (row.size - 1)))
    return {
        f"ndcg@{k}": float(ranked.ndcg.mean()) if len(ranked.ndcg) else float("nan"),
        f"coverage@{k}": ranked.coverage(len(vectors)),
        "intra_list_similarity": float(np.mean(sims)) if sims else float("nan"),
    }


DIVERSITY_DEPTH = 50  # candidates an MMR re-rank chooses the final k from


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
