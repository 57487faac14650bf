"""Evaluation of groups of 2..6 people: the pair protocol, one size at a time.

For each size k of `eval.group_sizes`, the test groups are every k people who all rated the
same movie in test (a fixed seeded sample of `eval.group_max` where there are more). Reported
beside the same baselines as pairs, aggregated over the members:

* RMSE of the group's mean, min (least misery) and max (most pleasure) rating: the model's
  group head answers the target it was trained for; other targets, and every baseline,
  aggregate the members' individual predictions (as `duorec.eval` does for pairs);
* NDCG / Recall / HitRate@k over the whole catalogue for a seeded sample of
  `eval.ranking_groups` test groups, a movie relevant when every member rated it >= the
  threshold in test, candidates unseen in train by every member, ranked by
  `duorec.topk.top_k_unseen_groups` (the path group recommendations take). Baselines
  score a group by the mean of the members' predicted ratings (popularity: its count), the
  ranking baselines by the sum of the members' scores (their `_sum` pair rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from duorec.aggregate import aggregate_members
from duorec.csr import csr_from_pairs
from duorec.data.datamodule import PairDataModule
from duorec.data.groups import Groups, check_eval_sizes, relevant_by_group
from duorec.metrics import ranking_metrics, regression_metrics
from duorec.model.base import PairRatingModule
from duorec.model.group_fusion import group_forward
from duorec.model.ranking_baselines import Ranker
from duorec.model.rating_baselines import RatingBaseline
from duorec.topk import GroupScoreFn, top_k_unseen_groups

log = logging.getLogger(__name__)

GROUP_BATCH = 16  # groups scored together against the catalogue (the head's [B, M, 7] input)


@torch.no_grad()
def predict_groups(
    model: PairRatingModule, groups: Groups, batch_size: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Star-scale (group rating [N], each member's [N, k]) for every group."""
    model.eval()
    outs, eaches = [], []
    for lo in range(0, len(groups), batch_size):
        members = torch.from_numpy(groups.members[lo : lo + batch_size]).to(model.device)
        movie = torch.from_numpy(groups.movie[lo : lo + batch_size]).to(model.device)
        group, each = group_forward(model, members, movie)
        outs.append(model.unscale(group).cpu())
        eaches.append(model.unscale(each).cpu())
    if not outs:
        return np.zeros(0, np.float32), np.zeros((0, groups.size), np.float32)
    return torch.cat(outs).numpy(), torch.cat(eaches).numpy()


def model_group_scorer(model: PairRatingModule, rank_by: str | None = None) -> GroupScoreFn:
    """members [B, k] -> [B, n_movies] ranking scores, the movie tower run once."""
    model.eval()
    movies, watch = model.encode_movies(), model.encode_watch()

    def score(members: np.ndarray) -> np.ndarray:
        m = torch.as_tensor(members, device=model.device)
        return model.rank_grid(m, movies, watch, rank_by).cpu().numpy()

    return score


def baseline_group_scorer(baseline: RatingBaseline) -> GroupScoreFn:
    """A rating baseline scores a group by the mean of its members' unclipped predictions."""

    def score(members: np.ndarray) -> np.ndarray:
        flat = baseline.score_all(members.reshape(-1), clip=False).astype(np.float64)
        return flat.reshape(*members.shape, -1).mean(1)

    return score


def ranker_group_scorer(ranker: Ranker) -> GroupScoreFn:
    """A ranking baseline scores a group by the sum of its members' scores (the `_sum` rule)."""

    def score(members: np.ndarray) -> np.ndarray:
        flat = ranker.user_scores(members.reshape(-1)).astype(np.float64)
        return flat.reshape(*members.shape, -1).sum(1)

    return score


def group_regression(
    model: PairRatingModule,
    groups: Groups,
    baselines: Mapping[str, RatingBaseline],
    targets: list[str],
    rating_range: tuple[float, float],
) -> dict[str, dict[str, dict[str, float]]]:
    """{target: {model | baseline: RMSE, MAE, ...}} on the fixed test groups of one size."""
    head, each = predict_groups(model, groups)
    n, k = groups.members.shape
    flat_users, flat_movies = groups.members.reshape(-1), np.repeat(groups.movie, k)
    guesses = {
        name: b.predict(flat_users, flat_movies).reshape(n, k) for name, b in baselines.items()
    }
    out: dict[str, dict[str, dict[str, float]]] = {}
    for how in targets:
        truth = aggregate_members(groups.ratings, how)
        prediction = head if how == model.target else aggregate_members(each, how)
        table = {"model": rename(regression_metrics(prediction, truth, rating_range))}
        for name, guess in guesses.items():
            guessed = aggregate_members(guess, how)
            table[name] = rename(regression_metrics(guessed, truth, rating_range))
        out[how] = table
    return out


def rename(metrics: Mapping[str, float]) -> dict[str, float]:
    """regression_metrics speaks of pairs and triples; here they are groups."""
    names = {"pair_rmse": "rmse", "pair_mae": "mae", "n_triples": "n_groups"}
    return {names.get(key, key): value for key, value in metrics.items()}


def group_ranking(
    scorers: Mapping[str, GroupScoreFn],
    groups: Groups,
    seen: Any,
    opts: Mapping[str, Any],
) -> dict[str, dict[str, float]]:
    """NDCG / Recall / HitRate@k of every scorer on the same seeded sample of test groups."""
    members, relevant = relevant_by_group(groups, float(opts["relevance_threshold"]))
    limit = opts.get("ranking_groups")
    if limit and len(members) > limit:
        rng = np.random.default_rng([int(opts["seed"]), groups.size, 0xA11])
        keep = np.sort(rng.permutation(len(members))[: int(limit)])
        members, relevant = members[keep], [relevant[i] for i in keep]
    if len(members) == 0:
        return {}
    k = int(opts["k"])
    out = {}
    for name, scorer in scorers.items():
        top = top_k_unseen_groups(scorer, members, seen, k, batch_size=GROUP_BATCH).movie
        ndcg, recall, hit = ranking_metrics(top, relevant, k)
        out[name] = {
            f"ndcg@{k}": float(ndcg.mean()),
            f"recall@{k}": float(recall.mean()),
            f"hit_rate@{k}": float(hit.mean()),
            "n_ranked_groups": len(members),
        }
    return out


def evaluate_groups(
    model: PairRatingModule,
    datamodule: PairDataModule,
    baselines: Mapping[str, RatingBaseline],
    rankers: Mapping[str, Ranker],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """{size: {n_groups, sampled, targets: {how: {name: metrics}}, ranking: {name: ...}}}.

    `baselines` are the fitted rating baselines of `duorec.eval.protocol.evaluate` (the constant
    global mean ranks nothing and is left out of ranking), `rankers` its tuned ranking
    baselines; all are fitted on the same train split as the model.
    """
    sizes = check_eval_sizes(opts.get("group_sizes"))
    ds = datamodule.dataset
    train = ds.split("train")
    seen = csr_from_pairs(train["user"].to_numpy(), train["movie"].to_numpy(), ds.n_users)
    regressors = {n: b for n, b in baselines.items() if n != "popularity"}
    scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = {"model": model_group_scorer(model)}
    scorers.update(
        {n: baseline_group_scorer(b) for n, b in baselines.items() if n != "global_mean"}
    )
    scorers.update({f"{n}_sum": ranker_group_scorer(r) for n, r in rankers.items()})
    targets = list(opts.get("targets") or [model.target])
    result: dict[str, Any] = {}
    for k in sizes:
        groups = datamodule.evaluation_groups("test", k, opts.get("group_max"))
        if len(groups) == 0:
            log.warning("no test movie has %d raters: no groups of %d to evaluate", k, k)
            result[str(k)] = {"n_groups": 0}
            continue
        result[str(k)] = {
            "n_groups": len(groups),
            "targets": group_regression(model, groups, regressors, targets, ds.rating_range),
            "ranking": group_ranking(scorers, groups, seen, opts),
        }
        log.info("evaluated %d test groups of %d", len(groups), k)
    return result


def group_section(
    model: PairRatingModule,
    datamodule: PairDataModule,
    baselines: Mapping[str, RatingBaseline],
    rankers: Mapping[str, Any],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """{"groups": evaluate_groups(...)} when `eval.group_sizes` names any size, else {}:
    metrics.json gains the key only when groups are asked for. `rankers` may be tuned
    rankers (their `.model` is used)."""
    if not opts.get("group_sizes"):
        return {}
    fitted = {name: getattr(r, "model", r) for name, r in rankers.items()}
    return {"groups": evaluate_groups(model, datamodule, baselines, fitted, opts)}


def group_table(groups: Mapping[str, Any], k: int = 10) -> str:
    """The group results as a plain text table: RMSE per target and NDCG@k, per size."""
    lines = []
    for size, entry in groups.items():
        if not entry.get("n_groups"):
            continue
        targets = entry.get("targets", {})
        ranking = entry.get("ranking", {})
        names = list(dict.fromkeys([*next(iter(targets.values()), {}), *ranking]))
        lines.append(f"groups of {size}: {entry['n_groups']} test groups")
        header = f"  {'':<16}" + "".join(f"{'rmse ' + t:>11}" for t in targets)
        lines.append(header + f"{'ndcg@' + str(k):>10}")
        for name in names:
            row = f"  {name:<16}"
            for table in targets.values():
                value = table.get(name, {}).get("rmse")
                row += f"{value:>11.4f}" if value is not None else f"{'-':>11}"
            value = ranking.get(name, {}).get(f"ndcg@{k}")
            row += f"{value:>10.4f}" if value is not None else f"{'-':>10}"
            lines.append(row)
    return "\n".join(lines)
