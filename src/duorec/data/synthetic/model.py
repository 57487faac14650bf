"""The planted rating model: movie quality and popularity, users, who rates what, and the
ratings themselves (noise-free score, noise, star rounding, timestamps).

Model (all vectorised numpy)::

    score(u, m) = mu + b_u + b_m + <p_u, q_m> + mean_{g in genres(m)} taste_u[g]
    b_m         = base_m + mean(effect of m's directors) + mean(effect of m's cast)
    rating      = clip(round_to_half_star(score + N(0, noise_sd)), 0.5, 5.0)
                  (whole stars, 1..5, for the users who only use whole stars)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from duorec.data.synthetic.catalog import Catalog, People, mean_effect
from duorec.data.synthetic.draws import sorted_contains, sorted_unique
from duorec.data.synthetic.spec import SyntheticSpec
from duorec.data.synthetic.vocab import (
    ACTOR,
    ACTRESS,
    CHUNK,
    DIRECTOR,
    ML_GENRE_MEAN_EFFECT,
    RATING_MAX,
    RATING_MIN,
    TS_END,
    TS_START,
    YEAR_SECONDS,
)


def plant_movies(
    spec: SyntheticSpec, cat: Catalog, people: People, rng: np.random.Generator
) -> np.ndarray:
    """Set each movie's quality (b_m) and popularity on ``cat``; return its latent factors.

    Quality sums a movie's own bias and its directors' and cast's mean effects, so people
    features carry real signal; popularity is Zipf by a rank that follows quality only partly.
    """
    n_m = spec.n_movies
    cast = (people.category == ACTOR) | (people.category == ACTRESS)
    cat.quality = (
        rng.normal(0, spec.movie_bias_sd, n_m)
        + mean_effect(people, n_m, people.category == DIRECTOR)
        + mean_effect(people, n_m, cast)
    )
    # Popularity: Zipf by rank; ranks follow quality only partly (plus noise).
    z = (cat.quality - cat.quality.mean()) / (cat.quality.std() + 1e-12)
    c = spec.popularity_quality_corr
    rank_key = c * z + np.sqrt(max(0.0, 1 - c * c)) * rng.normal(0, 1, n_m)
    rank = np.empty(n_m, np.int64)
    rank[np.argsort(-rank_key, kind="stable")] = np.arange(n_m)
    cat.popularity = (rank + 1 + spec.zipf_offset) ** -spec.zipf_exponent
    return rng.normal(0, spec.factor_sd, (n_m, spec.latent_dim))


def user_counts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: floor + lognormal share of the rest, capped, summing exactly."""
    n_u, cap = spec.n_users, spec.user_cap
    w = rng.lognormal(0.0, spec.activity_sigma, n_u)
    counts = np.full(n_u, spec.min_ratings_per_user, dtype=np.int64)
    left = spec.n_ratings - int(counts.sum())
    while left > 0:
        open_ = counts < cap
        p = np.where(open_, w, 0.0)
        counts += rng.multinomial(left, p / p.sum())
        over = np.maximum(counts - cap, 0)
        counts -= over
        left = int(over.sum())
    return counts


def sample_pairs(
    counts: np.ndarray, popularity: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Sorted unique keys ``user * n_movies + movie``: per-user samples without replacement.

    Light users (the vast majority) draw with replacement from the popularity law and
    redraw only their deficit after de-duplication, all users at once; users asking for more
    than 5% of the catalogue (where redraws would crawl) get an exact Gumbel top-k each.
    Both approximate successive weighted sampling without replacement.
    """
    n_users, n_movies = counts.size, popularity.size
    p = popularity / popularity.sum()
    cdf = np.cumsum(p)
    cdf /= cdf[-1]

    def draw(k: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), n_movies - 1)

    heavy = counts * 20 > n_movies
    target = np.where(heavy, 0, counts)
    users = np.repeat(np.arange(n_users, dtype=np.int64), target)
    keys = sorted_unique(users * n_movies + draw(users.size))
    del users
    deficit = target - np.bincount(keys // n_movies, minlength=n_users)
    extra = np.empty(0, np.int64)
    for _ in range(60):
        total = int(deficit.sum())
        if total == 0:
            break
        du = np.repeat(np.arange(n_users, dtype=np.int64), deficit)
        new = sorted_unique(du * n_movies + draw(total))
        new = new[~sorted_contains(keys, new) & ~sorted_contains(extra, new)]
        extra = np.sort(np.concatenate([extra, new]))  # disjoint by construction
        deficit -= np.bincount(new // n_movies, minlength=n_users)
    # Exact path: heavy users, plus any light user still short after the redraw rounds.
    logp = np.log(np.maximum(p, 1e-300))
    parts = [keys, extra]
    for u in np.flatnonzero(heavy | (deficit > 0)).tolist():
        need = int(counts[u] if heavy[u] else deficit[u])
        g = logp + rng.gumbel(size=n_movies)
        if not heavy[u]:
            lo, hi = np.searchsorted(keys, [u * n_movies, (u + 1) * n_movies])
            g[keys[lo:hi] - u * n_movies] = -np.inf
            lo, hi = np.searchsorted(extra, [u * n_movies, (u + 1) * n_movies])
            g[extra[lo:hi] - u * n_movies] = -np.inf
        sel = np.argpartition(-g, need - 1)[:need] if need < n_movies else np.arange(n_movies)
        parts.append(u * n_movies + np.sort(sel).astype(np.int64))
    out = np.concatenate(parts)
    out.sort()
    return out


@dataclass
class Ratings:
    user: np.ndarray  # int32 index, sorted (user, movie)
    movie: np.ndarray  # int32 index
    half_stars: np.ndarray  # uint8, rating * 2
    oracle: np.ndarray  # float32, clip(noise-free score, 0.5, 5)
    timestamp: np.ndarray  # int64 seconds


@dataclass
class Users:
    bias: np.ndarray
    factors: np.ndarray
    taste: np.ndarray
    whole_star: np.ndarray
    start: np.ndarray
    span: np.ndarray


def make_users(spec: SyntheticSpec, rng: np.random.Generator) -> Users:
    """User biases, latent factors, per-genre taste, star habit and active period."""
    n = spec.n_users
    bias = rng.normal(0, spec.user_bias_sd, n)
    factors = rng.normal(0, spec.factor_sd, (n, spec.latent_dim))
    taste = ML_GENRE_MEAN_EFFECT[None, :] + rng.normal(0, spec.genre_taste_sd, (n, 19))
    whole = rng.random(n) < spec.whole_star_user_fraction
    start = rng.integers(TS_START, TS_END - 86_400, n)
    span = np.minimum(np.exp(rng.normal(np.log(30 * 86_400), 2.0, n)), TS_END - start)
    return Users(bias, factors, taste, whole, start, span)


def genre_weights(cat: Catalog) -> np.ndarray:
    """(n_movies, 19) weights averaging a user's genre taste over the movie's genres."""
    ng = cat.genres.sum(axis=1, keepdims=True)
    return np.divide(cat.genres, ng, out=np.zeros(cat.genres.shape), where=ng > 0)


def score_components(
    users: Users, movie_f: np.ndarray, genre_w: np.ndarray, quality: np.ndarray,
    u: np.ndarray, m: np.ndarray,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    """The planted score's parts for rating rows (u, m): user, movie, latent, genre."""
    lat = np.einsum("ij,ij->i", users.factors[u], movie_f[m])
    gen = np.einsum("ij,ij->i", users.taste[u], genre_w[m])
    return users.bias[u], quality[m], lat, gen


def make_ratings(
    spec: SyntheticSpec, cat: Catalog, users: Users, movie_f: np.ndarray,
    keys: np.ndarray, rng: np.random.Generator,
) -> Ratings:  # fmt: skip
    """Scores, noise, star rounding and timestamps, chunk by chunk to bound memory."""
    n_m = spec.n_movies
    n = keys.size
    user = (keys // n_m).astype(np.int32)
    movie = (keys % n_m).astype(np.int32)
    genre_w = genre_weights(cat)
    # Centre on the *sampled* ratings: popular movies are better (popularity_quality_corr),
    # so the rating-weighted mean of b_m drifts up with catalogue size; shifting mu makes
    # `global_mean` mean the same thing at every size.
    idx = np.linspace(0, n - 1, min(n, 200_000)).astype(np.int64)
    parts = score_components(users, movie_f, genre_w, cat.quality, user[idx], movie[idx])
    mu = spec.global_mean - float(sum(np.mean(p) for p in parts))
    release = (cat.year - 1970) * YEAR_SECONDS + 180 * 86_400
    half = np.empty(n, np.uint8)
    oracle = np.empty(n, np.float32)
    ts = np.empty(n, np.int64)
    for lo in range(0, n, CHUNK):
        u, m = user[lo : lo + CHUNK], movie[lo : lo + CHUNK]
        bu, bm, lat, gen = score_components(users, movie_f, genre_w, cat.quality, u, m)
        score = mu + bu + bm + lat + gen
        noisy = score + rng.normal(0.0, spec.noise_sd, u.size)
        whole = users.whole_star[u]
        h = np.where(whole, 2 * np.rint(noisy), np.rint(2 * noisy))
        h = np.where(whole, np.clip(h, 2, 10), np.clip(h, 1, 10))
        half[lo : lo + u.size] = h.astype(np.uint8)
        oracle[lo : lo + u.size] = np.clip(score, RATING_MIN, RATING_MAX)
        t = users.start[u] + rng.random(u.size) * users.span[u]
        t = np.maximum(t, release[m] + rng.random(u.size) * 2 * YEAR_SECONDS)
        ts[lo : lo + u.size] = np.minimum(t, TS_END).astype(np.int64)
    return Ratings(user, movie, half, oracle, ts)
