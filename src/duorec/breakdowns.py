"""Where the model wins and loses: test error by how much the two people have rated.

metrics.json holds averages; a reader deciding whether the model helps *new* pairs needs them
split by history. These are recomputed here from the model and the data module after
evaluation instead of threading more arrays out of `duorec.eval`, on the evaluation's own
items and view: its test triples, its ranking sample, and each person's history at test time
(train, or train + validation under a time-ordered split;
`duorec.eval.history.history_at_test`), so each breakdown's
overall value is metrics.json's. The bias baseline (for RMSE) and popularity (for NDCG) are
refitted beside the model: both take milliseconds, and neither needs a long history, the
natural reference here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from duorec.csr import csr_from_pairs
from duorec.data.datamodule import PairDataModule
from duorec.eval.history import history_at_test, split_arrays
from duorec.eval.scoring import model_pair_scorer, predict_triples, sampled_ranking_pairs
from duorec.metrics import pair_target, rank_pairs
from duorec.model.rating_baselines import BiasBaseline, Popularity

# bins of the less-rated person's history: that person limits what is known of the pair
EDGES = (0, 10, 20, 50, 100, 200, 500, 1000, 2000)


def history_bins(counts: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The bin of each count and the bins' labels ("20-49", "2000+")."""
    edges = np.asarray(EDGES)
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True)]
    labels.append(f"{EDGES[-1]}+")
    return np.searchsorted(edges, counts, side="right") - 1, labels


def rmse_by_history(
    model: Any, datamodule: PairDataModule, opts: Mapping[str, Any]
) -> dict[str, Any]:
    """Pair RMSE of the model's own target, by the shorter history of the two people."""
    ds = datamodule.dataset
    triples = datamodule.evaluation_triples("test")
    truth = pair_target(triples.rating_a, triples.rating_b, model.target)
    with history_at_test(model, ds, opts) as (_, history):
        prediction, _, _ = predict_triples(model, triples)
    train = split_arrays(ds, ("train",))
    bias = BiasBaseline(rating_range=ds.rating_range).fit(
        train["user"], train["movie"], train["rating"], ds.n_users, ds.n_movies
    )
    guess = bias.predict_pair(triples.user_a, triples.user_b, triples.movie, model.target)
    counts = np.bincount(history["user"], minlength=ds.n_users)
    fewer = np.minimum(counts[triples.user_a], counts[triples.user_b])
    errors = {"model": prediction - truth, "bias": guess - truth}
    return _by_bin(fewer, {k: v.astype(np.float64) ** 2 for k, v in errors.items()}, np.sqrt)


def ndcg_by_history(
    model: Any, datamodule: PairDataModule, opts: Mapping[str, Any]
) -> dict[str, Any]:
    """NDCG@k of the evaluation's ranked test pairs, by the shorter history of the two."""
    ds = datamodule.dataset
    pairs, relevant = sampled_ranking_pairs(datamodule.evaluation_triples("test"), opts)
    if len(pairs) == 0:
        return {}
    k = int(opts["k"])
    train = split_arrays(ds, ("train",))
    popularity = Popularity(rating_range=ds.rating_range).fit(
        train["user"], train["movie"], train["rating"], ds.n_users, ds.n_movies
    )
    values, ranked_pairs = {}, None
    with history_at_test(model, ds, opts) as (_, history):
        seen = csr_from_pairs(history["user"], history["movie"], ds.n_users)
        scorers = {"model": model_pair_scorer(model), "popularity": popularity.pair_score_fn()}
        for name, scorer in scorers.items():
            ranked = rank_pairs(pairs, relevant, seen, scorer, k=k)
            values[name], ranked_pairs = ranked.ndcg, ranked.pairs
    counts = np.bincount(history["user"], minlength=ds.n_users)
    fewer = np.minimum(counts[ranked_pairs[:, 0]], counts[ranked_pairs[:, 1]])
    out = _by_bin(fewer, values, lambda x: x)
    out["k"] = k
    return out


def _by_bin(counts: np.ndarray, values: Mapping[str, np.ndarray], finish: Any) -> dict[str, Any]:
    """Per non-empty bin: its label, how many items, and finish(mean) of each series."""
    bins, labels = history_bins(counts)
    out: dict[str, Any] = {"bin": [], "n": [], **{name: [] for name in values}}
    for b, label in enumerate(labels):
        mask = bins == b
        if not mask.any():
            continue
        out["bin"].append(label)
        out["n"].append(int(mask.sum()))
        for name, series in values.items():
            out[name].append(float(finish(series[mask].mean())))
    out["overall"] = {name: float(finish(series.mean())) for name, series in values.items()}
    return out
