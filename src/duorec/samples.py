"""A few test pairs shown in full: what each person loved, what the model picked, what hit.

NDCG 0.31 means little to a reader until they see a pair's lists. Ten pairs of the evaluation's
own ranking sample (seeded, so runs of one data set show the same pairs and can be compared by
eye), each with both people's favourite movies of their history, the model's top k over the
movies neither has seen (the protocol's candidates; the history is the evaluation's, see
`duorec.eval.history.history_at_test`), and which of those both rated >= the threshold in test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from duorec.csr import csr_from_pairs
from duorec.data.datamodule import PairDataModule
from duorec.eval.history import history_at_test
from duorec.eval.scoring import model_pair_scorer, sampled_ranking_pairs
from duorec.reasons import display_title
from duorec.topk import top_k_unseen

COLUMNS = ("pair", "favourites_a", "favourites_b", "top", "hits", "relevant")
FAVOURITES = 3  # highest-rated movies of the history shown per person


def recommendation_sample(
    model: Any, datamodule: PairDataModule, opts: Mapping[str, Any], n: int = 10
) -> list[dict[str, Any]]:
    """Rows of COLUMNS for up to `n` seeded test pairs; a hit is marked "*" in the top list."""
    ds = datamodule.dataset
    pairs, relevant = sampled_ranking_pairs(datamodule.evaluation_triples("test"), opts)
    if len(pairs) == 0:
        return []
    pick = np.sort(
        np.random.default_rng([int(opts["seed"]), 0x5A3]).permutation(len(pairs))[:n]
    )
    k = int(opts["k"])
    with history_at_test(model, datamodule.dataset, opts) as (_, history):
        users, movies, ratings = history["user"], history["movie"], history["rating"]
        seen = csr_from_pairs(users, movies, ds.n_users)
        scorer = model_pair_scorer(model)
        top = top_k_unseen(scorer, pairs[pick, 0], pairs[pick, 1], seen, k).movie
    titles = [display_title(t) for t in ds.catalog["title"].astype(str)]
    by_user = _favourites(users, movies, ratings, pairs[pick].ravel())
    rows = []
    for row, i in enumerate(pick):
        a, b = (int(u) for u in pairs[i])
        hits = set(relevant[i].tolist())
        listed = [m for m in top[row].tolist() if m >= 0]
        rows.append(
            {
                "pair": f"{ds.user_ids[a]} & {ds.user_ids[b]}",
                "favourites_a": "; ".join(titles[m] for m in by_user.get(a, [])),
                "favourites_b": "; ".join(titles[m] for m in by_user.get(b, [])),
                "top": "; ".join(titles[m] + (" *" if m in hits else "") for m in listed),
                "hits": sum(m in hits for m in listed),
                "relevant": len(hits),
            }
        )
    return rows


def _favourites(
    users: np.ndarray, movies: np.ndarray, ratings: np.ndarray, wanted: np.ndarray
) -> dict[int, list[int]]:
    """The FAVOURITES highest-rated movies of each wanted user (ties: lower index)."""
    keep = np.isin(users, wanted)
    users, movies, ratings = users[keep], movies[keep], ratings[keep]
    order = np.lexsort((movies, -ratings, users))
    out: dict[int, list[int]] = {}
    for u, m in zip(users[order].tolist(), movies[order].tolist(), strict=True):
        picked = out.setdefault(u, [])
        if len(picked) < FAVOURITES:
            picked.append(m)
    return out
