"""What the planted model says is achievable: oracle and global-mean RMSEs, individual and
over co-rater pairs, and the variance each planted component contributes.

Recorded in ``manifest.json`` so training can report how close a model gets to the noise floor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from duorec.data.synthetic.catalog import Catalog
from duorec.data.synthetic.model import Ratings, Users, genre_weights, score_components
from duorec.data.synthetic.spec import SyntheticSpec


def oracle_stats(spec: SyntheticSpec, r: Ratings, rng: np.random.Generator) -> dict[str, Any]:
    """Best-achievable and global-mean RMSEs, individual and over sampled co-rater pairs.

    Pairs are drawn like "all pairs": a movie with weight C(n_raters, 2), then two distinct
    raters of it. The oracle predicts the pair target from the two clipped noise-free
    scores (mean / min / max of them). Honest caveat: this is a strong but not strictly
    Bayes-optimal predictor. Rounding to half stars and clipping at 0.5 and 5 make
    E[rating | score] differ slightly from clip(score), and E[min(a, b)] != min(E[a], E[b]),
    so a model could in principle beat these figures by a hair, mostly near the scale ends
    and for min/max targets. Treat them as a floor to approach, not a proof of optimality.
    """
    stars = r.half_stars.astype(np.float64) / 2.0
    mu = float(stars.mean())
    err = stars - r.oracle
    out: dict[str, Any] = {
        "global_mean": mu,
        "global_mean_rmse": float(np.sqrt(np.mean((stars - mu) ** 2))),
        "oracle_rating_rmse": float(np.sqrt(np.mean(err * err))),
    }
    del err
    order = np.argsort(r.movie, kind="stable")
    cnt = np.bincount(r.movie, minlength=spec.n_movies).astype(np.float64)
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]]).astype(np.int64)
    w = cnt * (cnt - 1) / 2
    if w.sum() == 0:
        return out
    k = spec.n_oracle_pairs
    mv = rng.choice(spec.n_movies, size=k, p=w / w.sum())
    nm = cnt[mv].astype(np.int64)
    a = np.floor(rng.random(k) * nm).astype(np.int64)
    b = np.floor(rng.random(k) * (nm - 1)).astype(np.int64)
    b += b >= a
    ia, ib = order[start[mv] + a], order[start[mv] + b]
    sa, sb = stars[ia], stars[ib]
    oa, ob = r.oracle[ia].astype(np.float64), r.oracle[ib].astype(np.float64)

    def rmse(x: np.ndarray, y: np.ndarray | float) -> float:
        return float(np.sqrt(np.mean((x - y) ** 2)))

    pair_mean = (sa + sb) / 2
    out |= {
        "n_oracle_pairs": int(k),
        "oracle_pair_rmse": rmse(pair_mean, (oa + ob) / 2),
        "oracle_pair_rmse_min": rmse(np.minimum(sa, sb), np.minimum(oa, ob)),
        "oracle_pair_rmse_max": rmse(np.maximum(sa, sb), np.maximum(oa, ob)),
        "global_mean_pair_rmse": rmse(pair_mean, float(pair_mean.mean())),
    }
    return out


def variance_parts(
    spec: SyntheticSpec, cat: Catalog, users: Users, movie_f: np.ndarray, r: Ratings
) -> dict[str, float]:
    """Variance of each planted component over (a prefix sample of) the written ratings.

    Recorded so a reader of the manifest sees how much each signal is worth: e.g. whether
    people features can matter (movie part) or only collaborative filtering can (latent).
    """
    idx = np.linspace(0, r.user.size - 1, min(r.user.size, 200_000)).astype(np.int64)
    parts = score_components(
        users, movie_f, genre_weights(cat), cat.quality, r.user[idx], r.movie[idx]
    )
    names = ("user_bias", "movie_bias", "latent", "genre")
    out = {k: float(np.var(v)) for k, v in zip(names, parts, strict=True)}
    out["noise"] = spec.noise_sd**2
    return out
