"""Synthetic MovieLens + IMDb release with planted, learnable structure.

Why this exists: tests, CI and the default experiment need data that (a) is small, free and
instant, (b) goes through *exactly* the same readers, merge and features as the real
MovieLens and IMDb files, and (c) has a known answer, so a model that learns nothing is
caught. The generator therefore writes the real file formats byte for byte (headers, CSV
quoting, ``\\N`` nulls, zero-padded ids) including the oddities real data has (missing
links, dangling links, reused titles, ``"Title, The (Year)"`` article inversion, TV series
sharing a movie's title, titles without a year, quotes and commas in titles), and plants a
rating model whose noise-free part is recorded in ``manifest.json`` as the best achievable
RMSE.

Planted rating model (all vectorised numpy, one seed)::

    score(u, m) = mu + b_u + b_m + <p_u, q_m> + mean_{g in genres(m)} taste_u[g]
    b_m         = base_m + mean(effect of m's directors) + mean(effect of m's cast)
    rating      = clip(round_to_half_star(score + N(0, noise_sd)), 0.5, 5.0)
                  (whole stars, 1..5, for the users who only use whole stars)

Which movies a user rates: a Zipf popularity law (popularity mildly correlated with quality,
as in real data) sampled without replacement per user; how many: a heavy-tailed lognormal
with a floor of ``min_ratings_per_user`` (20, as MovieLens guarantees).

Command line, for benchmarks::

    python -m duorec.data.synthetic --size small --seed 0 --out data/synthetic/small
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duorec.io import atomic_path

__all__ = [
    "IMDB_FILES",
    "MOVIELENS_FILES",
    "ML_GENRES",
    "SIZES",
    "SyntheticSpec",
    "generate",
    "main",
]

FORMAT_VERSION = 1

# ----------------------------------------------------------------------------- vocabularies

#: MovieLens genre vocabulary, alphabetical: MovieLens writes a movie's genres in this order.
ML_GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"
# Rough share of real MovieLens movies carrying each genre: drives Gumbel top-k genre draws.
# fmt: off
_ML_GENRE_WEIGHT = np.array(
    [0.13, 0.09, 0.05, 0.05, 0.35, 0.11, 0.07, 0.45, 0.06, 0.005, 0.11, 0.003, 0.02, 0.06,
     0.15, 0.07, 0.17, 0.03, 0.02]
)
# fmt: on
# Population-level genre effect on ratings (Film-Noir and documentaries are rated higher,
# horror lower, as in MovieLens); each user's taste is drawn around it.
# fmt: off
_ML_GENRE_MEAN_EFFECT = np.array(
    [-0.05, 0.0, 0.1, -0.15, -0.1, 0.05, 0.2, 0.1, -0.05, 0.3, -0.3, 0.05, 0.0, 0.05, -0.05,
     0.0, -0.05, 0.2, 0.05]
)
# fmt: on
# MovieLens genre -> IMDb genre (IMAX has no IMDb genre; Children is Family there).
_ML_TO_IMDB_GENRE = {g: g for g in ML_GENRES} | {"Children": "Family", "IMAX": ""}
_IMDB_ONLY_GENRES = ("Biography", "History", "Music", "Sport")
_IMDB_EXTRA_GENRES = (
    "Action", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Documentary", "Drama",
    "Family", "Fantasy", "Game-Show", "History", "Horror", "Music", "Mystery", "News",
    "Reality-TV", "Romance", "Sci-Fi", "Short", "Sport", "Talk-Show", "Thriller", "War",
)  # fmt: skip

_WORDS = (
    "Night Day River Stone Fire Water Dark Light Blue Red Black White Golden Silver Iron Glass "
    "Winter Summer Autumn Spring Storm Rain Snow Wind Sun Moon Star Sky Sea Ocean Island Mountain "
    "Valley Forest Desert City Town Road Street House Garden Bridge Tower Castle Kingdom Empire "
    "Heart Soul Mind Dream Shadow Ghost Angel Devil King Queen Prince Princess Knight Soldier "
    "Hunter Thief Killer Stranger Lover Friend Enemy Brother Sister Mother Father Son Daughter "
    "Child Man Woman Girl Boy Wolf Tiger Lion Eagle Raven Dragon Horse Dog Cat Bird Snake Fox "
    "Last First Lost Hidden Secret Silent Broken Wild Quiet Lonely Strange Bright Deep High Long "
    "Little Big Great Old New Young Cold Hot Sweet Bitter Final Eternal Endless Dangerous Deadly "
    "Midnight Morning Evening Twilight Dawn Sunset Echo Memory Promise Journey Escape Return "
    "Revenge Justice Honor Glory Freedom Destiny Fortune Mercy Paradise Heaven Hell Time Money "
    "Blood Bone Steel Velvet Crimson Scarlet Emerald Diamond Crystal Pearl Thunder Lightning "
    "Harbor Station Hotel Palace Circus Carnival Theater Machine Robot Planet Galaxy Signal Code "
    "Game Play Dance Song Music Story Tale Letter Book Map Key Door Window Mirror Clock Train "
    "Ship Plane Car Highway Border Frontier Edge Line Circle Point Zero Paper Smoke Ash Dust "
    "Gold Salt Honey Wine Coffee Sugar Cherry Rose Lily Orchid Violet Summit Canyon Prairie"
).split()
_ALT_WORDS = (
    "Rêve Nuit Cœur Ciel Été Hiver Fleuve Étoile Lumière Ombre Mère Père Fille Garçon Chemin "
    "Traum Nacht Himmel Sommer Reise Liebe Sonne Mond Noche Cielo Corazón Sueño Camino Vida "
    "Sogno Notte Cuore Estate Strada Amore Mar Tierra Fuego Agua"
).split()
_ARTICLES = ("The", "A", "An")
_ALT_ARTICLES = ("La", "Le", "Les", "El", "Das", "Il")
_FIRST_NAMES = (
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony "
    "Betty Mark Margaret Donald Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna "
    "Kenneth Michelle Kevin Dorothy Brian Carol George Amanda Edward Melissa Ronald Deborah "
    "Timothy Stephanie Jason Rebecca Jeffrey Sharon Ryan Laura Jacob Cynthia Gary Kathleen "
    "Nicholas Amy Eric Shirley Jonathan Angela Stephen Helen Larry Anna Justin Brenda Scott "
    "Pamela Brandon Nicole Frank Emma Benjamin Samantha Gregory Katherine Samuel Christine "
    "Raymond Debra Patrick Rachel Alexander Catherine Jack Carolyn Dennis Janet Jerry Ruth"
).split()
_LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook "
    "Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward "
    "Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez"
).split()
_TAGS = (
    "atmospheric", "funny", "dark comedy", "twist ending", "visually appealing", "classic",
    "based on a book", "thought-provoking", "sci-fi", "romance", "surreal", "quirky",
    "great soundtrack", "boring", "overrated", "underrated", "cult film", "violent",
    "beautiful cinematography", "slow", "predictable", "funny, witty", "mindfuck", "BD-R",
    "Oscar (Best Picture)", "drama", "World War II", "stylized", "philosophical", "feel-good",
)  # fmt: skip

#: Relative paths of the files written, in the real releases' names.
MOVIELENS_FILES = ("ratings.csv", "movies.csv", "links.csv", "tags.csv")
IMDB_FILES = (
    "title.basics.tsv", "title.ratings.tsv", "title.crew.tsv", "title.principals.tsv",
    "name.basics.tsv",
)  # fmt: skip

RATING_MIN, RATING_MAX = 0.5, 5.0
_RATING_STRINGS = pa.array([f"{h / 2:.1f}" for h in range(0, 11)])  # index = stars * 2
_NULL = "\\N"
_TS_START = 820_454_400  # 1996-01-01: MovieLens ratings start in 1995/96
_TS_END = 1_696_118_400  # 2023-10-01: the ml-32m snapshot ends in late 2023
_YEAR_SECONDS = 31_556_952
_CHUNK = 1 << 20  # rows per vectorised chunk: bounds peak memory at ml32m scale

# Link state of each MovieLens movie (how it is, or is not, connected to IMDb).
_LINK_OK, _NO_ROW_IN_IMDB, _NO_ROW_ABSENT, _EMPTY_IN_IMDB, _EMPTY_ABSENT = 0, 1, 2, 3, 4
_DANGLING_IN_IMDB, _DANGLING_ABSENT = 5, 6

# Principal roles: pool share of people, principals category name.
_ROLES = ("director", "writer", "actor", "actress", "producer", "composer")
_ROLE_SHARE = np.array([0.12, 0.18, 0.33, 0.27, 0.06, 0.04])
_DIRECTOR, _WRITER, _ACTOR, _ACTRESS, _PRODUCER, _COMPOSER = range(6)
_PROFESSIONS = (
    ("director", "director,writer", "director,producer,writer"),
    ("writer", "writer,producer", "writer,miscellaneous"),
    ("actor", "actor,soundtrack", "actor,director"),
    ("actress", "actress,producer", "actress,soundtrack"),
    ("producer", "producer,executive", "producer,writer"),
    ("composer", "composer,music_department", "music_department,composer"),
)
_WRITER_JOBS = ("screenplay", "novel", "story", "written by", "characters")
_PRODUCER_JOBS = ("producer", "executive producer", "co-producer")


# ----------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that shapes a synthetic release; ``generate(spec, seed)`` is a pure function.

    Defaults are calibrated (on ``small``) so that a global-mean predictor scores an
    individual RMSE near 1.0 and the planted noise-free score about 0.55, like MovieLens where
    global mean ~1.04 and good models ~0.85: learnable, but far from trivial.
    """

    n_users: int
    n_movies: int
    n_ratings: int
    min_ratings_per_user: int = 20  # MovieLens only ships users with >= 20 ratings
    max_user_fraction: float = 0.5  # cap on one user's share of the catalogue
    activity_sigma: float = 1.4  # lognormal sd of user activity: heavy tail as in MovieLens
    zipf_exponent: float = 1.3  # movie popularity ~ (rank + offset) ** -exponent
    zipf_offset: float = 100.0  # flattens the head so the top movie reaches ~50% of users
    popularity_quality_corr: float = 0.3  # good movies are watched more (real data does this)
    latent_dim: int = 8
    factor_sd: float = 0.42  # per-dimension sd of user and movie factors
    global_mean: float = 3.53  # mean planted score over the written ratings (ML-32M: 3.54)
    user_bias_sd: float = 0.45
    movie_bias_sd: float = 0.3  # the part of a movie's bias not explained by its people
    genre_taste_sd: float = 0.35  # per-user, per-genre taste around the genre's mean effect
    director_effect_sd: float = 0.45  # each director's quality effect
    cast_effect_sd: float = 0.45  # each actor's quality effect (a movie gets the cast mean)
    noise_sd: float = 0.5
    whole_star_user_fraction: float = 0.25  # users who never give half stars (pre-2003 UI)
    n_people: int | None = None  # default: 3 per catalogue title
    n_tags: int | None = None  # default: one per 50 ratings
    n_oracle_pairs: int = 200_000  # seeded co-rater pairs sampled for the pair oracle
    # IMDb side and oddities -------------------------------------------------------------
    frac_extra_imdb_titles: float = 0.3  # IMDb titles MovieLens does not have
    frac_tv_series_clash: float = 0.03  # tvSeries with the same title as a movie
    frac_title_reuse: float = 0.03  # remakes: same title, different year
    frac_article: float = 0.15  # "The X" in IMDb, "X, The (Year)" in MovieLens
    frac_alt_title: float = 0.03  # "X (Alt Title) (Year)"; IMDb originalTitle differs
    frac_comma_title: float = 0.02  # commas inside the name itself
    frac_quote_title: float = 0.005  # double quotes inside the name (CSV-escaped)
    frac_no_year: float = 0.005  # MovieLens title without "(Year)"
    frac_year_mismatch: float = 0.02  # IMDb startYear one off MovieLens' year
    frac_no_link_row: float = 0.02  # movie missing from links.csv
    frac_empty_imdb_id: float = 0.01  # links row with an empty imdbId
    frac_dangling_link: float = 0.02  # imdbId whose tconst is not in title.basics
    frac_missing_tmdb: float = 0.01  # empty tmdbId
    frac_no_genres: float = 0.01  # "(no genres listed)"

    def __post_init__(self) -> None:
        """Reject impossible specs now, not after minutes of generation."""
        if min(self.n_users, self.n_movies, self.n_ratings, self.latent_dim) < 1:
            raise ValueError(f"sizes must be positive: {self}")
        lo = self.n_users * self.min_ratings_per_user
        cap = self.user_cap
        if cap < self.min_ratings_per_user:
            raise ValueError(
                f"n_movies={self.n_movies} * max_user_fraction={self.max_user_fraction} < "
                f"min_ratings_per_user={self.min_ratings_per_user}"
            )
        if not lo <= self.n_ratings <= self.n_users * cap:
            raise ValueError(
                f"n_ratings={self.n_ratings} must lie in [{lo}, {self.n_users * cap}] "
                f"(n_users * min_ratings_per_user, n_users * per-user cap)"
            )
        if self.noise_sd < 0:
            raise ValueError("noise_sd must be >= 0")

    @property
    def user_cap(self) -> int:
        """Most ratings one user may have: a real user never rates the whole catalogue."""
        return max(self.min_ratings_per_user, int(self.max_user_fraction * self.n_movies))

    @property
    def people(self) -> int:
        """Number of IMDb people: enough that directors and actors recur across movies."""
        return self.n_people if self.n_people is not None else 3 * self.n_movies

    @property
    def tags(self) -> int:
        """Number of tag rows (MovieLens has ~1 per 16 ratings; a few suffice for readers)."""
        return self.n_tags if self.n_tags is not None else max(10, self.n_ratings // 50)

    @classmethod
    def from_size(cls, name: str, **overrides: Any) -> SyntheticSpec:
        """A named preset from :data:`SIZES`, with any field overridden by keyword."""
        if name not in SIZES:
            raise ValueError(f"unknown synthetic size {name!r}; choose from {sorted(SIZES)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise ValueError(f"unknown SyntheticSpec fields: {sorted(unknown)}")
        return cls(**(SIZES[name] | overrides))


#: Named presets. ``small`` is the project's default data set (ml-latest-small's shape);
#: ``ml32m`` matches MovieLens-32M's scale for throughput and memory benchmarks.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_users": 50, "n_movies": 120, "n_ratings": 3_000, "zipf_offset": 10.0,
             "max_user_fraction": 0.7, "n_oracle_pairs": 20_000},
    "small": {"n_users": 600, "n_movies": 4_000, "n_ratings": 100_000},
    "medium": {"n_users": 10_000, "n_movies": 20_000, "n_ratings": 2_000_000,
               "zipf_exponent": 1.5, "zipf_offset": 150.0},
    "ml32m": {"n_users": 200_000, "n_movies": 87_000, "n_ratings": 32_000_000,
              "zipf_exponent": 1.8, "zipf_offset": 250.0, "n_people": 350_000},
}  # fmt: skip


# ----------------------------------------------------------------------------- world model


@dataclass
class _Catalog:
    """Per-title arrays for MovieLens movies (first ``n_movies``) and extra IMDb titles."""

    year: np.ndarray  # int, MovieLens movies' year
    movie_id: np.ndarray  # int64, increasing with index (so (user, index) sort = ML order)
    genres: np.ndarray  # bool (n_movies, 19)
    ml_title: list[str]
    imdb_primary: list[str]  # for ML movies
    imdb_original: list[str]
    imdb_year: np.ndarray
    link_state: np.ndarray
    quality: np.ndarray  # total movie bias b_m (base + people)
    popularity: np.ndarray  # sampling weight


def _rngs(seed: int, names: Sequence[str]) -> dict[str, np.random.Generator]:
    """Independent streams per component, so changing one part leaves the others' draws."""
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, children, strict=True)}


def _gumbel_topk_mask(
    rng: np.random.Generator, logw: np.ndarray, k: np.ndarray, n_rows: int
) -> np.ndarray:
    """Rows of a weighted sample without replacement (Gumbel top-k), k varying per row."""
    keys = logw[None, :] + rng.gumbel(size=(n_rows, logw.size))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return rank < k[:, None]


def _unique_titles(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """Distinct 1-3 word names; ``taken`` keeps extra IMDb titles apart from movie titles."""
    words = np.array(_WORDS)
    out: dict[str, None] = {}
    while len(out) < n:
        m = int((n - len(out)) * 1.3) + 16
        n_words = rng.choice([1, 2, 3], size=m, p=[0.04, 0.36, 0.6])
        picks = words[rng.integers(0, len(words), size=(m, 3))]
        for row, k in zip(picks.tolist(), n_words.tolist(), strict=True):
            t = " ".join(row[:k])
            if t not in taken and t not in out:
                out[t] = None
                if len(out) == n:
                    break
    return list(out)


def _at_least_one(mask: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Force one hit when a planted oddity's rate is positive but chance gave none.

    Why: small test catalogues (120 movies) would otherwise miss a 2% oddity about one
    seed in ten, and a reader test that silently checks nothing is worse than none.
    """
    if frac > 0 and mask.size and not mask.any():
        mask = mask.copy()
        mask[rng.integers(0, mask.size)] = True
    return mask


def _make_catalog(spec: SyntheticSpec, rng: np.random.Generator) -> _Catalog:
    """Years, ids, genres, titles and link states of the MovieLens movies."""
    n = spec.n_movies
    # Years skew recent like MovieLens; index order ~ year so movieIds rise with time.
    year = np.clip(2023 - np.floor(rng.exponential(17.0, n)), 1915, 2023).astype(np.int64)
    year = year[np.argsort(year + rng.normal(0, 6, n), kind="stable")]
    movie_id = np.cumsum(1 + rng.geometric(0.6, n) - 1).astype(np.int64)  # gaps, like ML

    n_genres = rng.choice([1, 2, 3, 4], size=n, p=[0.35, 0.35, 0.2, 0.1])
    n_genres[rng.random(n) < spec.frac_no_genres] = 0
    genres = _gumbel_topk_mask(rng, np.log(_ML_GENRE_WEIGHT), n_genres, n)

    # Titles: unique base names, then planted oddities.
    base = _unique_titles(rng, n, set())
    reuse = np.flatnonzero(_at_least_one(rng.random(n) < spec.frac_title_reuse,
                                         spec.frac_title_reuse, rng))  # fmt: skip
    src = rng.integers(0, n, size=reuse.size)
    for i, j in zip(reuse.tolist(), src.tolist(), strict=True):
        if year[i] == year[j]:  # a remake needs another year: try the far side of the list
            j = (i + n // 2) % n
        if i != j and year[i] != year[j]:
            base[i] = base[j]  # same title, different year: a remake
    u = rng.random((6, n))
    fracs = (spec.frac_comma_title, spec.frac_quote_title, spec.frac_article,
             spec.frac_alt_title, spec.frac_no_year, spec.frac_year_mismatch)  # fmt: skip
    hit = [_at_least_one(u[k] < f, f, rng) for k, f in enumerate(fracs)]
    article = np.array(_ARTICLES)[rng.choice(3, size=n, p=[0.8, 0.15, 0.05])]
    alt_art = np.array(_ALT_ARTICLES)[rng.integers(0, len(_ALT_ARTICLES), n)]
    alt_words = np.array(_ALT_WORDS)[rng.integers(0, len(_ALT_WORDS), (n, 2))]
    comma_word = np.array(_WORDS)[rng.integers(0, len(_WORDS), n)]
    year_shift = rng.choice([-1, 1], size=n)
    ml_title, primary, original = [], [], []
    imdb_year = year.copy()
    for i in range(n):
        name = base[i]
        if hit[0][i]:
            name = f"{name}, {comma_word[i]}"
        if hit[1][i]:
            name = f'"{name}" {comma_word[i]}'
        if hit[2][i]:
            imdb_name, ml_name = f"{article[i]} {name}", f"{name}, {article[i]}"
        else:
            imdb_name, ml_name = name, name
        orig = imdb_name
        if hit[3][i]:
            orig = f"{alt_art[i]} {alt_words[i, 0]} {alt_words[i, 1]}"
            ml_name = f"{ml_name} ({alt_words[i, 0]} {alt_words[i, 1]}, {alt_art[i]})"
        if not hit[4][i]:
            ml_name = f"{ml_name} ({year[i]})"
        if hit[5][i]:
            imdb_year[i] += year_shift[i]
        ml_title.append(ml_name)
        primary.append(imdb_name)
        original.append(orig)

    # Link states: each oddity at its rate; "not in IMDb" half of each missing kind.
    state = np.full(n, _LINK_OK, dtype=np.int8)
    r = rng.random(n)
    half = rng.random(n) < 0.5
    c1 = spec.frac_no_link_row
    c2 = c1 + spec.frac_empty_imdb_id
    c3 = c2 + spec.frac_dangling_link
    state[r < c1] = np.where(half, _NO_ROW_ABSENT, _NO_ROW_IN_IMDB)[r < c1]
    m2 = (r >= c1) & (r < c2)
    state[m2] = np.where(half, _EMPTY_ABSENT, _EMPTY_IN_IMDB)[m2]
    m3 = (r >= c2) & (r < c3)
    state[m3] = np.where(half, _DANGLING_ABSENT, _DANGLING_IN_IMDB)[m3]
    kinds = ((_NO_ROW_IN_IMDB, spec.frac_no_link_row), (_NO_ROW_ABSENT, spec.frac_no_link_row),
             (_EMPTY_IN_IMDB, spec.frac_empty_imdb_id), (_EMPTY_ABSENT, spec.frac_empty_imdb_id),
             (_DANGLING_IN_IMDB, spec.frac_dangling_link),
             (_DANGLING_ABSENT, spec.frac_dangling_link))  # fmt: skip
    for kind, frac in kinds:
        ok = np.flatnonzero(state == _LINK_OK)
        if frac > 0 and not (state == kind).any() and ok.size > n // 2:
            state[ok[rng.integers(0, ok.size)]] = kind
    return _Catalog(
        year=year, movie_id=movie_id, genres=genres, ml_title=ml_title, imdb_primary=primary,
        imdb_original=original, imdb_year=imdb_year, link_state=state,
        quality=np.zeros(n), popularity=np.zeros(n),
    )  # fmt: skip


@dataclass
class _People:
    """IMDb people and who worked on which title (principals rows, in file order)."""

    role: np.ndarray  # pool role per person
    effect: np.ndarray  # quality effect (directors and cast only)
    title: np.ndarray  # principals: title index
    person: np.ndarray  # principals: person index
    category: np.ndarray  # principals: role index
    ordering: np.ndarray  # principals: 1-based order within title


def _make_people(spec: SyntheticSpec, n_titles: int, rng: np.random.Generator) -> _People:
    """People pools by role with recurring (lognormal-prolific) members, assigned to titles."""
    n_p = spec.people
    role = rng.choice(len(_ROLES), size=n_p, p=_ROLE_SHARE / _ROLE_SHARE.sum())
    effect = np.zeros(n_p)
    is_dir = role == _DIRECTOR
    is_cast = (role == _ACTOR) | (role == _ACTRESS)
    effect[is_dir] = rng.normal(0, spec.director_effect_sd, is_dir.sum())
    effect[is_cast] = rng.normal(0, spec.cast_effect_sd, is_cast.sum())
    prolific = rng.lognormal(0, 1.0, n_p)

    def draw(pool_mask: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pool = np.flatnonzero(pool_mask)
        if pool.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        w = prolific[pool] / prolific[pool].sum()
        t = np.repeat(np.arange(n_titles), counts)
        return t, pool[rng.choice(pool.size, size=t.size, p=w)]

    # (category, count distribution) in billing order: cast first, then crew, as IMDb does.
    n_cast = rng.integers(3, 9, n_titles)
    n_dir = rng.choice([0, 1, 2], size=n_titles, p=[0.02, 0.88, 0.10])
    n_wri = rng.choice([0, 1, 2, 3], size=n_titles, p=[0.1, 0.5, 0.3, 0.1])
    n_pro = rng.choice([0, 1], size=n_titles, p=[0.4, 0.6])
    n_com = rng.choice([0, 1], size=n_titles, p=[0.5, 0.5])
    parts = [
        (*draw(is_cast, n_cast), -1),  # category from the person's gender below
        (*draw(is_dir, n_dir), _DIRECTOR),
        (*draw(role == _WRITER, n_wri), _WRITER),
        (*draw(role == _PRODUCER, n_pro), _PRODUCER),
        (*draw(role == _COMPOSER, n_com), _COMPOSER),
    ]
    title = np.concatenate([p[0] for p in parts])
    person = np.concatenate([p[1] for p in parts])
    cat = np.concatenate([np.full(p[0].size, p[2]) for p in parts])
    cat = np.where(cat < 0, role[person], cat)
    # Some directors also write their film (real crews do): list them as writer too.
    d = np.flatnonzero(cat == _DIRECTOR)
    d = d[rng.random(d.size) < 0.3]
    title = np.concatenate([title, title[d]])
    person = np.concatenate([person, person[d]])
    cat = np.concatenate([cat, np.full(d.size, _WRITER)])
    # Drop duplicate (title, person, category) from with-replacement draws, keep bill order.
    seq = np.arange(title.size)
    key = (title.astype(np.int64) * n_p + person) * len(_ROLES) + cat
    by_key = np.argsort(key, kind="stable")
    sk = key[by_key]
    keep = np.sort(by_key[np.concatenate([[True], sk[1:] != sk[:-1]])])
    title, person, cat, seq = title[keep], person[keep], cat[keep], seq[keep]
    order = np.lexsort((seq, title))
    title, person, cat = title[order], person[order], cat[order]
    starts = np.searchsorted(title, np.arange(n_titles))
    ordering = np.arange(title.size) - starts[title] + 1
    return _People(role, effect, title, person, cat, ordering)


def _mean_effect(people: _People, n: int, mask: np.ndarray) -> np.ndarray:
    """Mean people effect per title over principals rows in ``mask`` (0 where none)."""
    t, e = people.title[mask], people.effect[people.person[mask]]
    cnt = np.bincount(t, minlength=n)[:n]
    tot = np.bincount(t, weights=e, minlength=n)[:n]
    return np.divide(tot, cnt, out=np.zeros(n), where=cnt > 0)


# ----------------------------------------------------------------------------- ratings


def _user_counts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
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


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values by sort + neighbour compare.

    Why not ``np.unique``: numpy >= 2.3 routes integer arrays through a hash table that is
    ~30x slower than sorting on tens of millions of wide-range int64 keys (measured: 140 s
    against ~4 s at MovieLens-32M scale).
    """
    a = np.sort(a)
    if a.size == 0:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _sorted_contains(sorted_arr: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Membership of ``x`` in a sorted array (cheaper than np.isin for a huge haystack)."""
    if sorted_arr.size == 0:
        return np.zeros(x.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_arr, x), sorted_arr.size - 1)
    return sorted_arr[pos] == x


def _sample_pairs(
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
    keys = _sorted_unique(users * n_movies + draw(users.size))
    del users
    deficit = target - np.bincount(keys // n_movies, minlength=n_users)
    extra = np.empty(0, np.int64)
    for _ in range(60):
        total = int(deficit.sum())
        if total == 0:
            break
        du = np.repeat(np.arange(n_users, dtype=np.int64), deficit)
        new = _sorted_unique(du * n_movies + draw(total))
        new = new[~_sorted_contains(keys, new) & ~_sorted_contains(extra, new)]
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
class _Ratings:
    user: np.ndarray  # int32 index, sorted (user, movie)
    movie: np.ndarray  # int32 index
    half_stars: np.ndarray  # uint8, rating * 2
    oracle: np.ndarray  # float32, clip(noise-free score, 0.5, 5)
    timestamp: np.ndarray  # int64 seconds


@dataclass
class _Users:
    bias: np.ndarray
    factors: np.ndarray
    taste: np.ndarray
    whole_star: np.ndarray
    start: np.ndarray
    span: np.ndarray


def _make_users(spec: SyntheticSpec, rng: np.random.Generator) -> _Users:
    """User biases, latent factors, per-genre taste, star habit and active period."""
    n = spec.n_users
    bias = rng.normal(0, spec.user_bias_sd, n)
    factors = rng.normal(0, spec.factor_sd, (n, spec.latent_dim))
    taste = _ML_GENRE_MEAN_EFFECT[None, :] + rng.normal(0, spec.genre_taste_sd, (n, 19))
    whole = rng.random(n) < spec.whole_star_user_fraction
    start = rng.integers(_TS_START, _TS_END - 86_400, n)
    span = np.minimum(np.exp(rng.normal(np.log(30 * 86_400), 2.0, n)), _TS_END - start)
    return _Users(bias, factors, taste, whole, start, span)


def _score_components(
    spec: SyntheticSpec, users: _Users, movie_f: np.ndarray, genre_w: np.ndarray,
    quality: np.ndarray, u: np.ndarray, m: np.ndarray,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    """The planted score's parts for rating rows (u, m): user, movie, latent, genre."""
    lat = np.einsum("ij,ij->i", users.factors[u], movie_f[m])
    gen = np.einsum("ij,ij->i", users.taste[u], genre_w[m])
    return users.bias[u], quality[m], lat, gen


def _make_ratings(
    spec: SyntheticSpec, cat: _Catalog, users: _Users, movie_f: np.ndarray,
    keys: np.ndarray, rng: np.random.Generator,
) -> _Ratings:  # fmt: skip
    """Scores, noise, star rounding and timestamps, chunk by chunk to bound memory."""
    n_m = spec.n_movies
    n = keys.size
    user = (keys // n_m).astype(np.int32)
    movie = (keys % n_m).astype(np.int32)
    ng = cat.genres.sum(axis=1, keepdims=True)
    genre_w = np.divide(cat.genres, ng, out=np.zeros(cat.genres.shape), where=ng > 0)
    # Centre on the *sampled* ratings: popular movies are better (popularity_quality_corr),
    # so the rating-weighted mean of b_m drifts up with catalogue size; shifting mu makes
    # `global_mean` mean the same thing at every size.
    idx = np.linspace(0, n - 1, min(n, 200_000)).astype(np.int64)
    parts = _score_components(spec, users, movie_f, genre_w, cat.quality, user[idx], movie[idx])
    mu = spec.global_mean - float(sum(np.mean(p) for p in parts))
    release = (cat.year - 1970) * _YEAR_SECONDS + 180 * 86_400
    half = np.empty(n, np.uint8)
    oracle = np.empty(n, np.float32)
    ts = np.empty(n, np.int64)
    for lo in range(0, n, _CHUNK):
        u, m = user[lo : lo + _CHUNK], movie[lo : lo + _CHUNK]
        bu, bm, lat, gen = _score_components(spec, users, movie_f, genre_w, cat.quality, u, m)
        score = mu + bu + bm + lat + gen
        noisy = score + rng.normal(0.0, spec.noise_sd, u.size)
        whole = users.whole_star[u]
        h = np.where(whole, 2 * np.rint(noisy), np.rint(2 * noisy))
        h = np.where(whole, np.clip(h, 2, 10), np.clip(h, 1, 10))
        half[lo : lo + u.size] = h.astype(np.uint8)
        oracle[lo : lo + u.size] = np.clip(score, RATING_MIN, RATING_MAX)
        t = users.start[u] + rng.random(u.size) * users.span[u]
        t = np.maximum(t, release[m] + rng.random(u.size) * 2 * _YEAR_SECONDS)
        ts[lo : lo + u.size] = np.minimum(t, _TS_END).astype(np.int64)
    return _Ratings(user, movie, half, oracle, ts)


# ----------------------------------------------------------------------------- oracle


def _oracle_stats(spec: SyntheticSpec, r: _Ratings, rng: np.random.Generator) -> dict[str, Any]:
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


# ----------------------------------------------------------------------------- writers


def _str_col(values: np.ndarray | pa.Array | list[Any], null: str) -> pa.Array:
    """Any column as strings, nulls rendered the way the target format spells them."""
    arr = values if isinstance(values, pa.Array) else pa.array(values)
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr.fill_null(null) if arr.null_count else arr


def _write_rows(fh: BinaryIO, columns: Sequence[Any], sep: str, null: str) -> None:
    """Write columns as delimited rows, no quoting, vectorised in Arrow (no Python per row).

    Arrow's own CSV writer either quotes every string or refuses quote characters, and the
    real files do neither (IMDb TSVs carry raw quotes), so rows are joined with Arrow string
    kernels and the joined string buffer is written as is.
    """
    cols = [_str_col(c, null) for c in columns]
    rows = pc.binary_join_element_wise(*cols, sep)
    rows = pc.binary_join_element_wise(rows, pa.scalar("\n"), "")
    rows = rows.combine_chunks() if isinstance(rows, pa.ChunkedArray) else rows
    if len(rows) == 0:
        return
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset :]
    data = rows.buffers()[2]
    fh.write(memoryview(data)[int(offsets[0]) : int(offsets[len(rows)])])


def _write_tsv(path: Path, header: Sequence[str], columns: Sequence[Any], n: int) -> None:
    """IMDb-style TSV: tab separated, ``\\N`` for null, never quoted; chunked."""
    with path.open("wb") as fh:
        fh.write(("\t".join(header) + "\n").encode())
        for lo in range(0, n, _CHUNK):
            _write_rows(fh, [_slice(c, lo, lo + _CHUNK) for c in columns], "\t", _NULL)


def _slice(col: Any, lo: int, hi: int) -> Any:
    return col.slice(lo, hi - lo) if isinstance(col, pa.Array) else col[lo:hi]


def _write_csv_module(path: Path, header: Sequence[str], rows: Any) -> None:
    """MovieLens CSV via the csv module: quotes only fields that need it, as MovieLens does."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _write_ratings(path: Path, r: _Ratings, movie_id: np.ndarray) -> None:
    """ratings.csv, ``userId,movieId,rating,timestamp`` with ratings like ``4.0``; chunked."""
    with path.open("wb") as fh:
        fh.write(b"userId,movieId,rating,timestamp\n")
        for lo in range(0, r.user.size, _CHUNK):
            hi = lo + _CHUNK
            cols = [
                r.user[lo:hi].astype(np.int64) + 1,
                movie_id[r.movie[lo:hi]],
                _RATING_STRINGS.take(pa.array(r.half_stars[lo:hi])),
                r.timestamp[lo:hi],
            ]
            _write_rows(fh, cols, ",", "")


def _pad7(n: np.ndarray, prefix: str) -> pa.Array:
    """IMDb ids: prefix + number zero-padded to 7 digits (``tt0114709``, ``nm0000123``)."""
    s = pc.utf8_lpad(pa.array(n).cast(pa.string()), 7, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), s, "") if prefix else s


def _join_slots(values: pa.Array, group: np.ndarray, n_groups: int, max_slots: int) -> pa.Array:
    """Comma-join up to ``max_slots`` values per group (rows sorted by group), null if none."""
    starts = np.searchsorted(group, np.arange(n_groups))
    rank = np.arange(group.size) - starts[group]
    joined: pa.Array | None = None
    for s in range(max_slots):
        idx = np.full(n_groups, -1, dtype=np.int64)
        sel = rank == s
        idx[group[sel]] = np.flatnonzero(sel)
        slot = values.take(pa.array(idx, mask=idx < 0))
        joined = (
            slot
            if joined is None
            else pc.coalesce(pc.binary_join_element_wise(joined, slot, ","), joined)
        )
    assert joined is not None
    return joined


# ----------------------------------------------------------------------------- generate


def generate(out_dir: str | Path, spec: SyntheticSpec | str = "small", seed: int = 0) -> Path:
    """Write a synthetic MovieLens + IMDb release under ``out_dir`` and return ``out_dir``.

    Layout: ``out_dir/movielens/{ratings,movies,links,tags}.csv``,
    ``out_dir/imdb/{title.basics,title.ratings,title.crew,title.principals,name.basics}.tsv``
    and ``out_dir/manifest.json`` (spec, seed, counts, oracle and baseline RMSEs). The whole
    directory is staged and swapped in atomically, so an interrupted run leaves the previous
    ``out_dir`` (or nothing) rather than a half-written data set a cache might trust.
    Same (spec, seed) -> byte-identical files.
    """
    spec = SyntheticSpec.from_size(spec) if isinstance(spec, str) else spec
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        _generate_into(tmp, spec, seed)
    return out_dir


def _generate_into(root: Path, spec: SyntheticSpec, seed: int) -> None:
    rng = _rngs(seed, ["catalog", "people", "users", "sample", "noise", "imdb", "tags", "pairs"])
    n_m = spec.n_movies
    cat = _make_catalog(spec, rng["catalog"])
    n_extra = int(round(spec.frac_extra_imdb_titles * n_m))
    people = _make_people(spec, n_m + n_extra, rng["people"])
    cast = (people.category == _ACTOR) | (people.category == _ACTRESS)
    prng = rng["catalog"]
    cat.quality = (
        prng.normal(0, spec.movie_bias_sd, n_m)
        + _mean_effect(people, n_m, people.category == _DIRECTOR)
        + _mean_effect(people, n_m, cast)
    )
    # Popularity: Zipf by rank; ranks follow quality only partly (plus noise).
    z = (cat.quality - cat.quality.mean()) / (cat.quality.std() + 1e-12)
    c = spec.popularity_quality_corr
    rank_key = c * z + np.sqrt(max(0.0, 1 - c * c)) * prng.normal(0, 1, n_m)
    rank = np.empty(n_m, np.int64)
    rank[np.argsort(-rank_key, kind="stable")] = np.arange(n_m)
    cat.popularity = (rank + 1 + spec.zipf_offset) ** -spec.zipf_exponent
    movie_f = prng.normal(0, spec.factor_sd, (n_m, spec.latent_dim))

    users = _make_users(spec, rng["users"])
    counts = _user_counts(spec, rng["sample"])
    keys = _sample_pairs(counts, cat.popularity, rng["sample"])
    ratings = _make_ratings(spec, cat, users, movie_f, keys, rng["noise"])
    del keys
    stats = _oracle_stats(spec, ratings, rng["pairs"])
    stats["planted_variance"] = _variance_parts(spec, cat, users, movie_f, ratings)

    ml, imdb = root / "movielens", root / "imdb"
    ml.mkdir()
    imdb.mkdir()
    _write_ratings(ml / "ratings.csv", ratings, cat.movie_id)
    genre_names = np.array(ML_GENRES)
    _write_csv_module(
        ml / "movies.csv",
        ("movieId", "title", "genres"),
        (
            (mid, title, "|".join(genre_names[g]) if g.any() else NO_GENRES)
            for mid, title, g in zip(cat.movie_id.tolist(), cat.ml_title, cat.genres, strict=True)
        ),
    )
    link_counts = _write_imdb_and_links(root, spec, cat, people, n_extra, rng["imdb"])
    n_tags = _write_tags(ml / "tags.csv", spec, ratings, cat.movie_id, rng["tags"])

    per_user = np.bincount(ratings.user, minlength=spec.n_users)
    per_movie = np.bincount(ratings.movie, minlength=n_m)
    manifest = {
        "format_version": FORMAT_VERSION,
        "generator": "duorec.data.synthetic",
        "seed": seed,
        "spec": dataclasses.asdict(spec),
        "rating_range": [RATING_MIN, RATING_MAX],
        "noise_sd": spec.noise_sd,
        "counts": {
            "users": spec.n_users,
            "movies": n_m,
            "ratings": int(ratings.user.size),
            "rated_movies": int((per_movie > 0).sum()),
            "tags": n_tags,
            "people": spec.people,
            "principals": int(people.title.size),
            "ratings_per_user": _quantiles(per_user),
            "ratings_per_movie": _quantiles(per_movie),
            **link_counts,
        },
        **stats,
        "files": {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*.*sv"))},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {
        "min": int(x.min()),
        "median": float(np.median(x)),
        "mean": float(x.mean()),
        "max": int(x.max()),
    }


def _variance_parts(
    spec: SyntheticSpec, cat: _Catalog, users: _Users, movie_f: np.ndarray, r: _Ratings
) -> dict[str, float]:
    """Variance of each planted component over (a prefix sample of) the written ratings.

    Recorded so a reader of the manifest sees how much each signal is worth: e.g. whether
    people features can matter (movie part) or only collaborative filtering can (latent).
    """
    idx = np.linspace(0, r.user.size - 1, min(r.user.size, 200_000)).astype(np.int64)
    ng = cat.genres.sum(axis=1, keepdims=True)
    genre_w = np.divide(cat.genres, ng, out=np.zeros(cat.genres.shape), where=ng > 0)
    parts = _score_components(spec, users, movie_f, genre_w, cat.quality, r.user[idx], r.movie[idx])
    names = ("user_bias", "movie_bias", "latent", "genre")
    out = {k: float(np.var(v)) for k, v in zip(names, parts, strict=True)}
    out["noise"] = spec.noise_sd**2
    return out


def _write_imdb_and_links(
    root: Path, spec: SyntheticSpec, cat: _Catalog, people: _People, n_extra: int,
    rng: np.random.Generator,
) -> dict[str, int]:  # fmt: skip
    """links.csv and the five IMDb TSVs, consistent with each other and the catalogue."""
    n_m = spec.n_movies
    st = cat.link_state
    in_imdb = np.isin(st, [_LINK_OK, _NO_ROW_IN_IMDB, _EMPTY_IN_IMDB, _DANGLING_IN_IMDB])
    dangling = np.isin(st, [_DANGLING_IN_IMDB, _DANGLING_ABSENT])
    clash = np.flatnonzero(
        _at_least_one(rng.random(n_m) < spec.frac_tv_series_clash, spec.frac_tv_series_clash, rng)
        & in_imdb
    )
    n_titles = n_m + n_extra + clash.size  # ML movies + unrelated titles + tvSeries clashes
    n_ids = n_titles + int(dangling.sum())
    nums = _sorted_unique(rng.integers(1, 9_999_999, size=int(n_ids * 1.3) + 16))
    nums = rng.permutation(nums)
    nums = nums[:n_ids]
    tnum = nums[:n_titles]  # tconst number per title index
    dangling_num = np.zeros(n_m, np.int64)
    dangling_num[dangling] = nums[n_titles:]

    # links.csv -------------------------------------------------------------------------
    link_num = np.where(dangling, dangling_num, tnum[:n_m])
    tmdb = rng.permutation(np.arange(2, 2 + 4 * n_m))[:n_m]
    imdb_txt = _pad7(link_num, "").to_pylist()
    tmdb_missing = rng.random(n_m) < spec.frac_missing_tmdb
    rows = []
    for i in range(n_m):
        s = st[i]
        if s in (_NO_ROW_IN_IMDB, _NO_ROW_ABSENT):
            continue
        imdb_id = "" if s in (_EMPTY_IN_IMDB, _EMPTY_ABSENT) else imdb_txt[i]
        tm = "" if tmdb_missing[i] or not imdb_id and rng.random() < 0.5 else int(tmdb[i])
        rows.append((int(cat.movie_id[i]), imdb_id, tm))
    _write_csv_module(root / "movielens" / "links.csv", ("movieId", "imdbId", "tmdbId"), rows)

    # Titles: ML movies (present ones), extra titles, tvSeries clashes ------------------
    extra_names = _unique_titles(rng, n_extra, set(cat.imdb_primary))
    ex_type = rng.choice(
        ["movie", "short", "tvSeries", "tvEpisode", "video", "tvMovie", "tvMiniSeries"],
        size=n_extra, p=[0.35, 0.15, 0.12, 0.2, 0.08, 0.07, 0.03],
    )  # fmt: skip
    ex_year = np.clip(2024 - np.floor(rng.exponential(20.0, n_extra)), 1895, 2024).astype(int)
    ml_type = rng.choice(
        ["movie", "tvMovie", "video", "short"], size=n_m, p=[0.93, 0.03, 0.02, 0.02]
    )
    clash_year = cat.imdb_year[clash] + rng.choice([0, 0, 1, 3, -2, 8], size=clash.size)
    ttype = np.concatenate([ml_type, ex_type, np.full(clash.size, "tvSeries")])
    primary = cat.imdb_primary + extra_names + [cat.imdb_primary[i] for i in clash.tolist()]
    original = cat.imdb_original + extra_names + [cat.imdb_primary[i] for i in clash.tolist()]
    start = np.concatenate([cat.imdb_year, ex_year, clash_year]).astype(np.int64)
    series = np.isin(ttype, ["tvSeries", "tvMiniSeries"])
    end = np.where(series & (rng.random(n_titles) < 0.6), start + rng.integers(0, 9, n_titles), -1)
    runtime = np.where(
        np.isin(ttype, ["short", "tvEpisode"]) | series,
        rng.integers(5, 60, n_titles),
        np.clip(rng.normal(105, 22, n_titles), 60, 240).astype(int),
    )
    runtime = np.where(rng.random(n_titles) < 0.05, -1, runtime)
    start = np.where((rng.random(n_titles) < 0.01) & (np.arange(n_titles) >= n_m), -1, start)
    genres = _imdb_genres(cat, n_extra, clash, rng)
    adult = (np.arange(n_titles) >= n_m) & (rng.random(n_titles) < 0.01)
    present = np.concatenate([in_imdb, np.ones(n_titles - n_m, bool)])
    order = np.flatnonzero(present)
    order = order[np.argsort(tnum[order], kind="stable")]  # IMDb files are sorted by tconst
    tconst = _pad7(tnum, "tt")

    def nullable(x: np.ndarray) -> pa.Array:
        return pa.array(x, mask=x < 0)

    _write_tsv(
        root / "imdb" / "title.basics.tsv",
        ("tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear",
         "endYear", "runtimeMinutes", "genres"),
        [a.take(pa.array(order)) for a in (
            tconst, pa.array(ttype), pa.array(primary), pa.array(original),
            pa.array(adult.astype(np.int8)), nullable(start), nullable(end),
            nullable(runtime), genres)],
        order.size,
    )  # fmt: skip

    # title.ratings: quality-driven score, popularity-driven votes; not every title rated.
    q = np.concatenate([cat.quality, rng.normal(0, cat.quality.std() + 1e-9, n_titles - n_m)])
    q = (q - q.mean()) / (q.std() + 1e-12)
    avg = np.clip(np.round(6.3 + 1.1 * q + rng.normal(0, 0.4, n_titles), 1), 1.0, 10.0)
    pop = np.concatenate([cat.popularity / cat.popularity.max(), np.full(n_titles - n_m, 1e-3)])
    votes = np.maximum(5, np.exp(np.log(pop) + 13 + rng.normal(0, 0.8, n_titles))).astype(int)
    rated = order[rng.random(order.size) < np.where(order < n_m, 0.97, 0.6)]
    avg_txt = pa.array([f"{v:.1f}" for v in avg[rated].tolist()], pa.string())  # "7.0"
    _write_tsv(
        root / "imdb" / "title.ratings.tsv",
        ("tconst", "averageRating", "numVotes"),
        [tconst.take(pa.array(rated)), avg_txt, votes[rated]],
        rated.size,
    )

    # Principals / crew / names: only for titles present in title.basics, in tconst order.
    pos = np.full(n_titles, -1, dtype=np.int64)
    pos[order] = np.arange(order.size)
    pp = people.title < n_titles
    pt = people.title[pp]
    keep = present[pt]
    p_title, p_person = pt[keep], people.person[pp][keep]
    p_cat, p_ord = people.category[pp][keep], people.ordering[pp][keep]
    resort = np.lexsort((p_ord, pos[p_title]))
    p_title, p_person, p_cat, p_ord = (
        p_title[resort],
        p_person[resort],
        p_cat[resort],
        p_ord[resort],
    )
    n_people = spec.people
    nconst = _pad7(np.arange(1, n_people + 1) + 1_000, "nm")
    job = np.full(p_title.size, None, dtype=object)
    wri = p_cat == _WRITER
    job[wri] = np.array(_WRITER_JOBS)[rng.integers(0, len(_WRITER_JOBS), wri.sum())]
    wri_null = wri & (rng.random(p_title.size) < 0.3)
    job[wri_null] = None
    pro = p_cat == _PRODUCER
    job[pro] = np.array(_PRODUCER_JOBS)[rng.integers(0, len(_PRODUCER_JOBS), pro.sum())]
    is_cast = (p_cat == _ACTOR) | (p_cat == _ACTRESS)
    chars = np.full(p_title.size, None, dtype=object)
    fn, ln = np.array(_FIRST_NAMES), np.array(_LAST_NAMES)
    ci = np.flatnonzero(is_cast & (rng.random(p_title.size) < 0.9))
    cnames = np.char.add(np.char.add('["', fn[rng.integers(0, fn.size, ci.size)]), '"]')
    chars[ci] = cnames
    _write_tsv(
        root / "imdb" / "title.principals.tsv",
        ("tconst", "ordering", "nconst", "category", "job", "characters"),
        [tconst.take(pa.array(p_title)), p_ord, nconst.take(pa.array(p_person)),
         pa.array(np.array(_ROLES)[p_cat]), pa.array(job.tolist(), pa.string()),
         pa.array(chars.tolist(), pa.string())],
        p_title.size,
    )  # fmt: skip

    # title.crew: directors and writers (principals rows are grouped by title already).
    crew_cols = []
    for c in (_DIRECTOR, _WRITER):
        sel = p_cat == c
        crew_cols.append(
            _join_slots(nconst.take(pa.array(p_person[sel])), pos[p_title[sel]], order.size, 4)
        )
    _write_tsv(
        root / "imdb" / "title.crew.tsv",
        ("tconst", "directors", "writers"),
        [tconst.take(pa.array(order)), *crew_cols],
        order.size,
    )

    # name.basics: knownForTitles = up to 4 of the person's titles.
    by_person = np.lexsort((pos[p_title], p_person))
    kp, kt = p_person[by_person], p_title[by_person]
    first = np.ones(kp.size, bool)
    first[1:] = (kp[1:] != kp[:-1]) | (kt[1:] != kt[:-1])
    kp, kt = kp[first], kt[first]
    known = _join_slots(tconst.take(pa.array(kt)), kp, n_people, 4)
    # _FIRST_NAMES alternates male / female: actresses get the odd (female) entries.
    female = (people.role == _ACTRESS) | ((people.role != _ACTOR) & (rng.random(n_people) < 0.4))
    first_i = 2 * rng.integers(0, fn.size // 2, n_people) + female
    last_i = rng.integers(0, ln.size, n_people)
    initial = rng.integers(0, 26, n_people)
    middle = np.where(rng.random(n_people) < 0.3, np.char.add(
        np.array([chr(65 + i) for i in range(26)])[initial], ". "), "")  # fmt: skip
    names = np.char.add(np.char.add(np.char.add(fn[first_i], " "), middle), ln[last_i])
    birth = np.where(rng.random(n_people) < 0.6, rng.integers(1880, 2005, n_people), -1)
    death_age = rng.integers(45, 98, n_people)
    death = np.where((birth > 0) & (birth + death_age < 2024) & (rng.random(n_people) < 0.8),
                     birth + death_age, -1)  # fmt: skip
    prof_opts = np.array(_PROFESSIONS)
    prof = prof_opts[people.role, rng.choice(3, size=n_people, p=[0.6, 0.25, 0.15])]
    prof = np.where(rng.random(n_people) < 0.02, None, prof.astype(object))
    _write_tsv(
        root / "imdb" / "name.basics.tsv",
        ("nconst", "primaryName", "birthYear", "deathYear", "primaryProfession",
         "knownForTitles"),
        [nconst, pa.array(names), nullable(birth), nullable(death),
         pa.array(prof.tolist(), pa.string()), known],
        n_people,
    )  # fmt: skip

    return {
        "links": len(rows),
        "links_missing_row": int(np.isin(st, [_NO_ROW_IN_IMDB, _NO_ROW_ABSENT]).sum()),
        "links_empty_imdb_id": int(np.isin(st, [_EMPTY_IN_IMDB, _EMPTY_ABSENT]).sum()),
        "links_dangling": int(dangling.sum()),
        "movies_in_imdb": int(in_imdb.sum()),
        "movies_linked_to_imdb": int((st == _LINK_OK).sum()),
        "imdb_titles": int(order.size),
        "imdb_tv_series_title_clashes": int(clash.size),
        "imdb_rated_titles": int(rated.size),
        "imdb_principals": int(p_title.size),
    }


def _imdb_genres(
    cat: _Catalog, n_extra: int, clash: np.ndarray, rng: np.random.Generator
) -> pa.Array:
    """IMDb genre strings: ML genres mapped to IMDb names (max 3, alphabetical), extras random."""
    out: list[str | None] = []
    u = rng.random(cat.genres.shape[0])
    extra_g = np.array(_IMDB_ONLY_GENRES)[rng.integers(0, len(_IMDB_ONLY_GENRES), u.size)]
    for i, row in enumerate(cat.genres):
        gs = {_ML_TO_IMDB_GENRE[ML_GENRES[j]] for j in np.flatnonzero(row)} - {""}
        if u[i] < 0.1:
            gs.add(str(extra_g[i]))
        out.append(",".join(sorted(gs)[:3]) if gs and u[i] > 0.01 else None)
    pool = np.array(_IMDB_EXTRA_GENRES)
    k = rng.choice([0, 1, 2, 3], size=n_extra, p=[0.05, 0.4, 0.35, 0.2])
    picks = pool[rng.integers(0, pool.size, (n_extra, 3))]
    for i in range(n_extra):
        gs = sorted(set(picks[i, : k[i]].tolist()))
        out.append(",".join(gs) if gs else None)
    out.extend(out[i] for i in clash.tolist())
    return pa.array(out, pa.string())


def _write_tags(
    path: Path, spec: SyntheticSpec, r: _Ratings, movie_id: np.ndarray,
    rng: np.random.Generator,
) -> int:  # fmt: skip
    """tags.csv rows on rated (user, movie) pairs, sorted like MovieLens; a few quoted."""
    k = min(spec.tags, r.user.size)
    idx = np.sort(rng.choice(r.user.size, size=k, replace=False))
    tag = np.array(_TAGS, dtype=object)[rng.integers(0, len(_TAGS), k)]
    ts = r.timestamp[idx] + rng.integers(0, 3_600, k)
    rows = zip(
        (r.user[idx].astype(np.int64) + 1).tolist(), movie_id[r.movie[idx]].tolist(),
        tag.tolist(), ts.tolist(), strict=True,
    )  # fmt: skip
    _write_csv_module(path, ("userId", "movieId", "tag", "timestamp"), rows)
    return k


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m duorec.data.synthetic``: generate a preset, print the manifest summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=sorted(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a SyntheticSpec field, e.g. --set n_users=1000 (repeatable)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, val = item.partition("=")
        overrides[key] = json.loads(val) if val not in ("", "None") else None
    spec = SyntheticSpec.from_size(args.size, **overrides)
    t0 = time.perf_counter()
    out = generate(args.out, spec, args.seed)
    secs = time.perf_counter() - t0
    man = json.loads((out / "manifest.json").read_text())
    summary = {k: man[k] for k in man if k.endswith("rmse") or k == "global_mean"}
    summary |= {"counts": {k: man["counts"][k] for k in ("users", "movies", "ratings")}}
    print(json.dumps({"out": str(out), "seconds": round(secs, 2), **summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
