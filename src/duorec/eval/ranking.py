"""Ranking of unseen movies for a seeded sample of test pairs: NDCG, Recall and HitRate@k of
the model and every baseline on the same pairs, with long tail, coverage, popularity
concentration and the cost of diversity (`rank_everyone`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from duorec.csr import csr_from_pairs
from duorec.data.pairs import Triples
from duorec.eval.scoring import sampled_ranking_pairs
from duorec.metrics import RankingResult, rank_pairs
from duorec.model.base import PairRatingModule
from duorec.topk import PairScoreFn, diversify

DIVERSITY_DEPTH = 50  # candidates an MMR re-rank chooses the final k from


def movie_similarity_space(model: PairRatingModule) -> np.ndarray:
    """Movie vectors whose cosine says "alike": the watch factors when the model has them."""
    watch = model.encode_watch()
    vectors = watch[:, :-1] if watch is not None else model.encode_movies()[:, :-1]
    return vectors.cpu().numpy().astype(np.float64)


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
