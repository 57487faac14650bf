"""The cold-start protocol (`eval.cold_start`): people the model never trained on.

`data.cold_users` holds a seeded share of users out of every split (their ratings carry the
split code COLD), so the features, the baselines and the model never see them. For each N of
`eval.cold_start.reveal`, each held-out user with more than N ratings reveals their N
*earliest* ratings (by timestamp, ties broken by a seeded draw) and is folded in
(`duorec.model.foldin`); the rest of their ratings are scored. Earliest rather than random: a new
person tells us what they have already seen, and what they will rate next is what a
recommender is for, so scoring later ratings from earlier ones never lets the future leak
into the fold-in (random reveals would, and would make the task easier than serving is).

Scored pair triples (every pair with at least one held-out user who rated the same movie):
held-out x held-out, both from their unrevealed ratings, and held-out x known, the known
user's rating from the test split (a rating the model was not trained on either). On them:

* pair RMSE of the model's pair head against the bias baseline folded in the same way (the
  held-out user's bias from the revealed ratings with the trained movie biases and global
  mean, shrunk by `reg_user` pseudo-ratings, exactly the bias baseline's user step);
* NDCG@k over the whole catalogue (relevant: both rated >= the threshold in the scored
  part; candidates: unseen by both, where a held-out user's seen movies are the revealed
  ones and a known user's their train movies) of the model's ranking score beside bias,
  EASE (which folds in by construction: a new row x_u B from the revealed movies; sum and
  both rules) and popularity;
* paired-bootstrap 95% intervals of model minus the best baseline for both.

New movies (`data.cold_movies`): a seeded share of movies keeps its metadata but loses every
rating to the split code COLD_MOVIE; pair RMSE on all pairs of users who rated one of them,
against global mean + user bias (`new_movie_errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from duorec.csr import CSR, csr_from_pairs
from duorec.data.datamodule import PairDataModule
from duorec.data.pairs import RaterIndex, Triples, enumerate_triples, evaluation_triples
from duorec.data.prepared import PreparedDataset
from duorec.errors import UsageError
from duorec.eval.scoring import model_pair_scorer, predict_triples, sampled_ranking_pairs
from duorec.metrics import bootstrap_diff_ci, pair_target, rank_pairs, regression_metrics
from duorec.model.base import PairRatingModule
from duorec.model.foldin import Person
from duorec.model.ranking_baselines import EASE, combine_pair
from duorec.model.rating_baselines import BiasBaseline
from duorec.topk import PairScoreFn

log = logging.getLogger(__name__)


def reveal_settings(opts: Mapping[str, Any]) -> list[int]:
    """`eval.cold_start.reveal` as a list of positive ints ([] = protocol off)."""
    settings = opts.get("cold_start") or {}
    return reveal_counts(settings.get("reveal"), "eval.cold_start.reveal")


def reveal_counts(reveal: Any, key: str) -> list[int]:
    """A setting of how many ratings to reveal (one number or a list) as positive ints."""
    reveal = reveal or []
    if isinstance(reveal, int | float | str):
        reveal = [reveal]
    out = []
    for n in reveal:
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise UsageError(
                f"{key} must be a list of positive numbers of ratings, got {n!r} in {list(reveal)}"
            )
        out.append(int(n))
    return out


def reveal_earliest(cold: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(revealed, hidden) ratings: each user's n earliest, and the rest, for users with > n.

    Ties in time are broken by a seeded draw so the reveal does not depend on file order.
    """
    tie = np.random.default_rng([seed, 0x5EE, n]).random(len(cold))
    order = np.lexsort((tie, cold["timestamp"].to_numpy(), cold["user"].to_numpy()))
    frame = cold.iloc[order]
    position = frame.groupby("user", sort=False).cumcount().to_numpy()
    count = frame.groupby("user", sort=False)["user"].transform("size").to_numpy()
    enough = count > n
    return frame[enough & (position < n)], frame[enough & (position >= n)]


@dataclass
class FoldInBaselines:
    """What the fold-in protocols score beside the model, each fitted on train on first use:
    the bias model, EASE (`ease`, the run's tuned one, else lambda 200) and popularity.
    Shared by the cold-start protocol and the temporal split's newcomers
    (`duorec.eval.known.newcomers_folded_in`)."""

    ds: PreparedDataset
    tuned_ease: Any = None  # an EASE fitted by the run (lambda from validation), or None

    @cached_property
    def train(self) -> dict[str, np.ndarray]:
        frame = self.ds.split("train")
        return {c: frame[c].to_numpy() for c in ("user", "movie", "rating")}

    @cached_property
    def bias(self) -> BiasBaseline:
        tr, ds = self.train, self.ds
        return BiasBaseline(rating_range=ds.rating_range).fit(
            tr["user"], tr["movie"], tr["rating"], ds.n_users, ds.n_movies
        )

    @cached_property
    def ease(self) -> EASE:
        if isinstance(self.tuned_ease, EASE):
            return self.tuned_ease
        tr, ds = self.train, self.ds
        return EASE().fit(tr["user"], tr["movie"], tr["rating"], ds.n_users, ds.n_movies)

    @cached_property
    def popularity(self) -> np.ndarray:
        return np.bincount(self.train["movie"], minlength=self.ds.n_movies).astype(np.float32)


def cold_start(
    model: PairRatingModule,
    datamodule: PairDataModule,
    opts: Mapping[str, Any],
    tuned_ease: Any = None,
) -> dict[str, Any]:
    """{"cold_start": held-out users by N, and "new_movies"}; {} when there is nothing to do.

    Held-out users are scored when `eval.cold_start.reveal` is set (it needs
    `data.cold_users`); new movies whenever the data holds some out (`data.cold_movies`).
    `tuned_ease` is the main evaluation's tuned EASE (`evaluation.TunedRanker`), so the
    cold-start EASE has the lam chosen on validation; without one, lam 200 is fitted on train.
    """
    reveal = reveal_settings(opts)
    ds = datamodule.dataset
    cold = ds.split("cold")
    if reveal and cold.empty:
        raise UsageError(
            "eval.cold_start.reveal needs users held out of training: set data.cold_users "
            "(e.g. data.cold_users=0.1)"
        )
    new_movies = ds.split("cold_movies")
    if not reveal and new_movies.empty:
        return {}
    base = FoldInBaselines(ds, tuned_ease.model if tuned_ease is not None else None)
    out: dict[str, Any] = {}
    if reveal:
        out.update(_held_out_users(model, datamodule, opts, reveal, base))
    if not new_movies.empty:
        out["new_movies"] = new_movie_errors(model, datamodule, new_movies, base.bias, opts)
        log.info("cold start, new movies: %s", out["new_movies"])
    return {"cold_start": out}


def _held_out_users(
    model: PairRatingModule,
    datamodule: PairDataModule,
    opts: Mapping[str, Any],
    reveal: list[int],
    base: FoldInBaselines,
) -> dict[str, Any]:
    ds = datamodule.dataset
    cold = ds.split("cold")
    seed = int(opts["seed"])
    out: dict[str, Any] = {
        "protocol": {
            "held_out_users": int(cold["user"].nunique()),
            "held_out_ratings": len(cold),
            "reveal": "earliest N by timestamp",
            "known_side": "test split ratings",
            "foldin_prior": getattr(model, "foldin_prior", None),
        }
    }
    for n in reveal:
        revealed, hidden = reveal_earliest(cold, n, seed)
        if revealed.empty:
            out[str(n)] = {"n_users": 0}
            log.warning("cold start N=%d: no held-out user has more than %d ratings", n, n)
            continue
        out[str(n)] = score_reveal(model, ds, datamodule, revealed, hidden, base.train, base, opts)
        log.info("cold start N=%d: %s", n, out[str(n)])
    return out


def new_movie_errors(
    model: PairRatingModule,
    datamodule: PairDataModule,
    ratings: pd.DataFrame,
    bias: BiasBaseline,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """Pair RMSE on the held-out movies (no train rating; their metadata kept), the model
    beside the fallback a bias model has for a movie it never saw: global mean + user bias.

    Every pair of (known) users who rated the same held-out movie is a triple (a seeded
    sample past `data.eval_max_triples`): none of these ratings was trained on.
    """
    ds = datamodule.dataset
    index = RaterIndex(
        ratings["user"].to_numpy(),
        ratings["movie"].to_numpy(),
        ratings["rating"].to_numpy(),
        ds.n_movies,
    )
    triples = evaluation_triples(index, datamodule.eval_max_triples, int(opts["seed"]))
    result: dict[str, Any] = {
        "n_movies": int(ratings["movie"].nunique()),
        "n_ratings": len(ratings),
        "n_triples": len(triples),
    }
    if len(triples) == 0:
        return result
    truth = pair_target(triples.rating_a, triples.rating_b, model.target)
    pair, _, _ = predict_triples(model, triples)
    low, high = ds.rating_range
    own = [
        np.clip(bias.mu + bias.user_bias[u], low, high) for u in (triples.user_a, triples.user_b)
    ]
    fallback = pair_target(own[0], own[1], model.target)
    result["model"] = regression_metrics(pair, truth, ds.rating_range)
    result["mean_plus_user_bias"] = regression_metrics(fallback, truth, ds.rating_range)
    diff, low_ci, high_ci = bootstrap_diff_ci(
        pair - truth,
        fallback - truth,
        n_boot=int(opts["bootstrap"]),
        seed=int(opts["seed"]),
        stat="rmse",
    )
    result["ci"] = {
        "pair_rmse": {
            "baseline": "mean_plus_user_bias",
            "diff": diff,
            "low": low_ci,
            "high": high_ci,
        }
    }
    return result


def score_reveal(
    model: PairRatingModule,
    ds: PreparedDataset,
    datamodule: PairDataModule,
    revealed: pd.DataFrame,
    hidden: pd.DataFrame,
    train: Mapping[str, np.ndarray],
    base: FoldInBaselines,
    opts: Mapping[str, Any],
    known: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """New people folded in from their `revealed` ratings, scored on their `hidden` ones
    (pairs among them and with `known` people's ratings, the test split by default), beside
    `base`'s baselines folded in the same way.

    `train` is the known people's history: their seen movies, the candidates' complement.
    """
    n_users, n_movies = ds.n_users, ds.n_movies
    bias, ease, popularity = base.bias, base.ease, base.popularity
    people_ids = np.unique(revealed["user"].to_numpy())
    # held-out user i of `people_ids` is user n_users + i in the folded-in model
    new_index = dict(
        zip(people_ids.tolist(), range(n_users, n_users + len(people_ids)), strict=True)
    )
    r_user = revealed["user"].map(new_index).to_numpy(np.int64)
    r_movie = revealed["movie"].to_numpy(np.int64)
    r_rating = revealed["rating"].to_numpy(np.float64)
    r_time = revealed["timestamp"].to_numpy(np.int64)
    people = []
    for i in range(len(people_ids)):
        mine = r_user == n_users + i
        people.append(Person(r_movie[mine], r_rating[mine], timestamps=r_time[mine]))
    folded = model.fold_in(ds, people)

    triples = scored_triples(ds, datamodule, hidden, new_index, opts, known)
    result: dict[str, Any] = {
        "n_users": len(people_ids),
        "n_revealed": len(revealed),
        "n_hidden": len(hidden),
        "n_triples": len(triples),
        "n_cold_cold": int((triples.user_a >= n_users).sum()),
    }
    if len(triples) == 0:
        return result
    target = model.target
    truth = pair_target(triples.rating_a, triples.rating_b, target)
    pair, _, _ = predict_triples(folded.model, triples)
    user_bias = bias.fold_in(r_user - n_users, r_movie, r_rating, len(people_ids))
    guess = bias.pair_prediction(user_bias, triples.user_a, triples.user_b, triples.movie, target)
    errors = {"model": pair - truth, "bias": guess - truth}
    both_cold = triples.user_a >= n_users
    for name, err in errors.items():
        metrics = regression_metrics(err + truth, truth, ds.rating_range)
        for part, mask in (("cold_cold", both_cold), ("cold_known", ~both_cold)):
            if mask.any():
                metrics[f"pair_rmse_{part}"] = float(np.sqrt(np.mean(err[mask] ** 2)))
        result[name] = metrics
    n_boot = int(opts["bootstrap"])
    diff, low, high = bootstrap_diff_ci(
        errors["model"], errors["bias"], n_boot=n_boot, seed=int(opts["seed"]), stat="rmse"
    )
    result["ci"] = {"pair_rmse": {"baseline": "bias", "diff": diff, "low": low, "high": high}}

    pairs, relevant = sampled_ranking_pairs(triples, opts)
    if len(pairs) == 0:
        return result
    seen = csr_from_pairs(
        np.concatenate([train["user"], r_user]),
        np.concatenate([train["movie"], r_movie]),
        n_users + len(people_ids),
    )
    liked = np.ones(r_rating.size, bool) if ease.min_rating is None else r_rating >= ease.min_rating
    ease_rows = ease.fold_in(r_user[liked] - n_users, r_movie[liked], len(people_ids))
    seen_dense = _dense_seen(seen, n_movies)
    scorers: dict[str, PairScoreFn] = {
        "model": model_pair_scorer(folded.model),
        "bias": lambda a, b: (
            2 * bias.mu + user_bias[a][:, None] + user_bias[b][:, None] + 2 * bias.movie_bias
        ).astype(np.float32),
        "popularity": lambda a, b: np.broadcast_to(popularity, (len(a), n_movies)).copy(),
        "ease_sum": lambda a, b: combine_pair(ease_rows(a), ease_rows(b), "sum"),
        "ease_both": lambda a, b: combine_pair(
            ease_rows(a), ease_rows(b), "both", seen_dense(a), seen_dense(b)
        ),
    }
    k = int(opts["k"])
    per_pair = {}
    for name, scorer in scorers.items():
        ranked = rank_pairs(pairs, relevant, seen, scorer, k=k)
        summary = ranked.summary()
        result.setdefault(name, {}).update(
            {
                f"ndcg@{k}": summary["ndcg"],
                f"recall@{k}": summary["recall"],
                "n_ranked_pairs": summary["n_pairs"],
            }
        )
        per_pair[name] = ranked.ndcg
    best = max((n for n in per_pair if n != "model"), key=lambda n: per_pair[n].mean())
    diff, low, high = bootstrap_diff_ci(
        per_pair["model"], per_pair[best], n_boot=n_boot, seed=int(opts["seed"]), stat="mean"
    )
    result["ci"][f"ndcg@{k}"] = {"baseline": best, "diff": diff, "low": low, "high": high}
    return result


def scored_triples(
    ds: PreparedDataset,
    datamodule: PairDataModule,
    hidden: pd.DataFrame,
    new_index: Mapping[int, int],
    opts: Mapping[str, Any],
    known: pd.DataFrame | None = None,
) -> Triples:
    """Pair triples with at least one held-out user: their hidden ratings x (hidden ratings
    of other held-out users + `known` users' ratings, the test split by default); a seeded
    sample past `data.eval_max_triples`."""
    test = ds.split("test") if known is None else known
    user = np.concatenate(
        [hidden["user"].map(new_index).to_numpy(np.int64), test["user"].to_numpy(np.int64)]
    )
    movie = np.concatenate([hidden["movie"].to_numpy(), test["movie"].to_numpy()])
    rating = np.concatenate([hidden["rating"].to_numpy(), test["rating"].to_numpy()])
    # only movies a held-out user rated can give a triple with one
    wanted = np.isin(movie, hidden["movie"].to_numpy())
    index = RaterIndex(user[wanted], movie[wanted], rating[wanted], ds.n_movies)
    triples = enumerate_triples(index)  # ordered: user_a < user_b
    triples = triples.take(np.flatnonzero(triples.user_b >= ds.n_users))
    limit = datamodule.eval_max_triples
    if limit and len(triples) > limit:
        rng = np.random.default_rng([int(opts["seed"]), 0xC01D])
        triples = triples.take(np.sort(rng.permutation(len(triples))[:limit]))
    return triples


def _dense_seen(seen: CSR, n_movies: int) -> Callable[[np.ndarray], np.ndarray]:
    """users -> boolean [B, n_movies] of their seen movies (the "both" rule's candidates)."""

    def dense(users: np.ndarray) -> np.ndarray:
        out = np.zeros((len(users), n_movies), dtype=bool)
        for row, u in enumerate(np.asarray(users, dtype=np.int64)):
            out[row, seen.indices[seen.indptr[u] : seen.indptr[u + 1]]] = True
        return out

    return dense
