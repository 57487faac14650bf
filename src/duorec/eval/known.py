"""Known people apart from newcomers, under the `temporal` split (docs/protocol.md, "Time").

One date cut for everyone leaves most test pairs holding someone with no history at all, so
the test's headline numbers are mostly a cold-start test. This section reports the same
numbers twice: for `known` test pairs (both people have at least `eval.known_min_ratings`
ratings in their history before the test period, train + validation by default) and for
the rest, `newcomers`.

Newcomers are scored twice. First as the model and the baselines score every test pair:
from whatever history they have at test time (their validation ratings, if any). Then as the
cold-start protocol scores people who are not in the data (`newcomers_folded_in`, for each N
of `eval.newcomer_reveal`): each newcomer with more than N test ratings is folded in
(`duorec.model.foldin`) from everything they rated before the test period plus their N
earliest test ratings, and scored on their later test ratings, paired with each other and
with known people's test ratings, beside bias, EASE and popularity folded in the same way
(`duorec.eval.coldstart.score_reveal`, the same code as the cold-start numbers).

Pair RMSE is that of the `pairs` section (the model's own target, the rating baselines but
popularity); NDCG / Recall@k that of the `ranking` section (the same scorers, on each group's
own seeded sample of pairs); each beside the best baseline with a paired-bootstrap interval.
Other splits get nothing: under `chrono` every test person is known, under `random` time
plays no part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from duorec.data.datamodule import PairDataModule
from duorec.data.pairs import Triples
from duorec.eval.coldstart import FoldInBaselines, reveal_counts, reveal_earliest, score_reveal
from duorec.eval.history import split_method
from duorec.eval.ranking import rank_everyone
from duorec.eval.scoring import best_difference, memoized, pair_errors, predict_triples
from duorec.model.base import PairRatingModule
from duorec.model.rating_baselines import RatingBaseline
from duorec.topk import PairScoreFn

GROUPS = ("known", "newcomers")


def known_pairs(
    triples: Triples, history_users: np.ndarray, n_users: int, min_ratings: int
) -> np.ndarray:
    """Whether both people of each triple have >= `min_ratings` ratings in the history."""
    counts = np.bincount(np.asarray(history_users, dtype=np.int64), minlength=n_users)
    return (counts[triples.user_a] >= min_ratings) & (counts[triples.user_b] >= min_ratings)


def known_people(
    model: PairRatingModule,
    ds: Any,
    triples: Triples,
    history: Mapping[str, np.ndarray],
    baselines: Mapping[str, RatingBaseline],
    scorers: Mapping[str, PairScoreFn],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """{"known_people": ...} for a temporal split, {} for any other (metrics.json unchanged).

    `history` is each person's history at test time (what the model reads inside
    `history_at_test`), `scorers` the `ranking` section's (model and baselines; none: no
    ranking numbers).
    """
    if split_method(ds.manifest) != "temporal":
        return {}
    min_ratings = int(opts.get("known_min_ratings", 5))
    known = known_pairs(triples, history["user"], ds.n_users, min_ratings)
    section: dict[str, Any] = {"min_ratings": min_ratings}
    for name, mask in zip(GROUPS, (known, ~known), strict=True):
        group = triples.take(np.flatnonzero(mask))
        section[name] = group_metrics(model, ds, group, history, baselines, scorers, opts)
    return {"known_people": section}


def group_metrics(
    model: PairRatingModule,
    ds: Any,
    triples: Triples,
    history: Mapping[str, np.ndarray],
    baselines: Mapping[str, RatingBaseline],
    scorers: Mapping[str, PairScoreFn],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """Counts, pair RMSE and NDCG / Recall@k of the model and its baselines on `triples`."""
    ordered = triples.ordered()
    out: dict[str, Any] = {
        "n_triples": len(triples),
        "n_pairs": len(np.unique(np.stack([ordered.user_a, ordered.user_b], 1), axis=0)),
        "n_ranked_pairs": 0,
        "model": {},
        "baselines": {},
        "ci": {},
    }
    if len(triples) == 0:
        return out
    prediction = predict_triples(model, triples)[0]
    errors, table = pair_errors(prediction, triples, baselines, model.target, ds.rating_range)
    rmse = {name: metrics["pair_rmse"] for name, metrics in table.items()}
    for name, value in rmse.items():
        _row(out, name)["pair_rmse"] = value
    out["ci"]["pair_rmse"] = best_difference(errors, rmse, opts, "rmse", False)

    if "model" not in scorers:
        return out
    # the model's grids are computed once for its plain and long-tail lists
    scorers = {**scorers, "model": memoized(scorers["model"])}
    ranked = rank_everyone(scorers, triples, history, ds.n_users, ds.n_movies, opts)
    if not ranked:
        return out
    per_pair = ranked.pop("_per_pair")
    k = int(opts["k"])
    out["n_ranked_pairs"] = ranked["model"]["n_ranked_pairs"]
    for name, summary in ranked.items():
        row = _row(out, name)
        row[f"ndcg@{k}"] = summary[f"ndcg@{k}"]
        row[f"recall@{k}"] = summary[f"recall@{k}"]
    ndcg = {name: float(values.mean()) for name, values in per_pair.items()}
    out["ci"][f"ndcg@{k}"] = best_difference(per_pair, ndcg, opts, "mean", True)
    return out


def _row(out: dict[str, Any], name: str) -> dict[str, Any]:
    return out["model"] if name == "model" else out["baselines"].setdefault(name, {})


def newcomer_reveal(
    before: pd.DataFrame, test: pd.DataFrame, newcomers: np.ndarray, n: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(revealed, hidden) for the `newcomers` with more than `n` test ratings: revealed is
    everything they rated before the test period plus their `n` earliest test ratings (by
    time, ties by a seeded draw), hidden their later test ratings. Nothing hidden is older
    than what is revealed, so the fold-in never reads what it is scored on."""
    first, later = reveal_earliest(test[test["user"].isin(newcomers)], n, seed)
    folded = first["user"].unique()
    return pd.concat([before[before["user"].isin(folded)], first]), later


def newcomers_folded_in(
    model: PairRatingModule,
    datamodule: PairDataModule,
    history: Mapping[str, np.ndarray],
    ease: Any,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """For each N of `eval.newcomer_reveal`, the temporal split's newcomers folded in from
    their ratings before the test period and their N earliest test ratings, scored on the
    rest (`score_reveal`); {} under other splits or with no N.

    `history` is every person's history at test time (train + validation), which decides
    who is a newcomer and is what known people's candidates exclude; `ease` the tuned EASE
    ranker of the run (lambda from validation), else one with lambda 200 on train.
    """
    ds = datamodule.dataset
    reveal = reveal_counts(opts.get("newcomer_reveal"), "eval.newcomer_reveal")
    if split_method(ds.manifest) != "temporal" or not reveal:
        return {}
    min_ratings = int(opts.get("known_min_ratings", 5))
    counts = np.bincount(np.asarray(history["user"], np.int64), minlength=ds.n_users)
    test = ds.split("test")
    newcomers = np.flatnonzero(counts < min_ratings)
    before = ds.ratings[ds.ratings["split"].isin([0, 1])]  # train + validation
    known = test[~test["user"].isin(newcomers)]
    base = FoldInBaselines(ds, ease)
    seen = {c: np.asarray(history[c]) for c in ("user", "movie")}
    out: dict[str, Any] = {
        "protocol": {
            "newcomers": int(np.isin(newcomers, test["user"].unique()).sum()),
            "revealed": "ratings before the test period + the N earliest test ratings",
            "known_side": "known people's test ratings",
        }
    }
    seed = int(opts["seed"])
    for n in reveal:
        revealed, hidden = newcomer_reveal(before, test, newcomers, n, seed)
        if hidden.empty:
            out[str(n)] = {"n_users": 0}
            continue
        out[str(n)] = score_reveal(model, ds, datamodule, revealed, hidden, seen, base, opts, known)
    return {"newcomers_folded_in": out}
