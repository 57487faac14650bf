"""The world the ratings come from: MovieLens movies (years, ids, genres, titles, IMDb link
states) and IMDb people (roles, quality effects, who worked on which title).

Titles and link states carry the oddities real data has (reused titles, article inversion,
alternative titles, missing and dangling links), so the readers and the merge meet them here
first; each oddity with a positive rate is planted at least once (see ``at_least_one``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from duorec.data.synthetic.draws import at_least_one, gumbel_topk_mask, unique_titles
from duorec.data.synthetic.spec import SyntheticSpec
from duorec.data.synthetic.vocab import (
    ACTOR,
    ACTRESS,
    ALT_ARTICLES,
    ALT_WORDS,
    ARTICLES,
    COMPOSER,
    DANGLING_ABSENT,
    DANGLING_IN_IMDB,
    DIRECTOR,
    EMPTY_ABSENT,
    EMPTY_IN_IMDB,
    LINK_OK,
    ML_GENRE_WEIGHT,
    NO_ROW_ABSENT,
    NO_ROW_IN_IMDB,
    PRODUCER,
    ROLE_SHARE,
    ROLES,
    WORDS,
    WRITER,
)


@dataclass
class Catalog:
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


@dataclass
class _Titles:
    """Each movie's name in MovieLens and IMDb, and the year IMDb gives it."""

    ml_title: list[str]
    imdb_primary: list[str]
    imdb_original: list[str]
    imdb_year: np.ndarray


def make_catalog(spec: SyntheticSpec, rng: np.random.Generator) -> Catalog:
    """Years, ids, genres, titles and link states of the MovieLens movies."""
    n = spec.n_movies
    # Years skew recent like MovieLens; index order ~ year so movieIds rise with time.
    year = np.clip(2023 - np.floor(rng.exponential(17.0, n)), 1915, 2023).astype(np.int64)
    year = year[np.argsort(year + rng.normal(0, 6, n), kind="stable")]
    movie_id = np.cumsum(1 + rng.geometric(0.6, n) - 1).astype(np.int64)  # gaps, like ML

    n_genres = rng.choice([1, 2, 3, 4], size=n, p=[0.35, 0.35, 0.2, 0.1])
    n_genres[rng.random(n) < spec.frac_no_genres] = 0
    genres = gumbel_topk_mask(rng, np.log(ML_GENRE_WEIGHT), n_genres, n)
    titles = _make_titles(spec, year, rng)
    state = _link_states(spec, rng)
    return Catalog(
        year=year, movie_id=movie_id, genres=genres, ml_title=titles.ml_title,
        imdb_primary=titles.imdb_primary, imdb_original=titles.imdb_original,
        imdb_year=titles.imdb_year, link_state=state,
        quality=np.zeros(n), popularity=np.zeros(n),
    )  # fmt: skip


def _base_titles(spec: SyntheticSpec, year: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Unique base names, some reused by a movie of another year (a remake)."""
    n = spec.n_movies
    base = unique_titles(rng, n, set())
    reuse = np.flatnonzero(at_least_one(rng.random(n) < spec.frac_title_reuse,
                                        spec.frac_title_reuse, rng))  # fmt: skip
    src = rng.integers(0, n, size=reuse.size)
    for i, j in zip(reuse.tolist(), src.tolist(), strict=True):
        if year[i] == year[j]:  # a remake needs another year: try the far side of the list
            j = (i + n // 2) % n
        if i != j and year[i] != year[j]:
            base[i] = base[j]  # same title, different year: a remake
    return base


def _make_titles(spec: SyntheticSpec, year: np.ndarray, rng: np.random.Generator) -> _Titles:
    """Base names with the planted oddities, as MovieLens and IMDb each spell them."""
    n = spec.n_movies
    base = _base_titles(spec, year, rng)
    u = rng.random((6, n))
    fracs = (spec.frac_comma_title, spec.frac_quote_title, spec.frac_article,
             spec.frac_alt_title, spec.frac_no_year, spec.frac_year_mismatch)  # fmt: skip
    hit = [at_least_one(u[k] < f, f, rng) for k, f in enumerate(fracs)]
    article = np.array(ARTICLES)[rng.choice(3, size=n, p=[0.8, 0.15, 0.05])]
    alt_art = np.array(ALT_ARTICLES)[rng.integers(0, len(ALT_ARTICLES), n)]
    alt_words = np.array(ALT_WORDS)[rng.integers(0, len(ALT_WORDS), (n, 2))]
    comma_word = np.array(WORDS)[rng.integers(0, len(WORDS), n)]
    year_shift = rng.choice([-1, 1], size=n)
    out = _Titles([], [], [], year.copy())
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
            out.imdb_year[i] += year_shift[i]
        out.ml_title.append(ml_name)
        out.imdb_primary.append(imdb_name)
        out.imdb_original.append(orig)
    return out


def _link_states(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Each movie's link state: each oddity at its rate; "not in IMDb" half of each kind."""
    n = spec.n_movies
    state = np.full(n, LINK_OK, dtype=np.int8)
    r = rng.random(n)
    half = rng.random(n) < 0.5
    c1 = spec.frac_no_link_row
    c2 = c1 + spec.frac_empty_imdb_id
    c3 = c2 + spec.frac_dangling_link
    state[r < c1] = np.where(half, NO_ROW_ABSENT, NO_ROW_IN_IMDB)[r < c1]
    m2 = (r >= c1) & (r < c2)
    state[m2] = np.where(half, EMPTY_ABSENT, EMPTY_IN_IMDB)[m2]
    m3 = (r >= c2) & (r < c3)
    state[m3] = np.where(half, DANGLING_ABSENT, DANGLING_IN_IMDB)[m3]
    kinds = ((NO_ROW_IN_IMDB, spec.frac_no_link_row), (NO_ROW_ABSENT, spec.frac_no_link_row),
             (EMPTY_IN_IMDB, spec.frac_empty_imdb_id), (EMPTY_ABSENT, spec.frac_empty_imdb_id),
             (DANGLING_IN_IMDB, spec.frac_dangling_link),
             (DANGLING_ABSENT, spec.frac_dangling_link))  # fmt: skip
    for kind, frac in kinds:
        ok = np.flatnonzero(state == LINK_OK)
        if frac > 0 and not (state == kind).any() and ok.size > n // 2:
            state[ok[rng.integers(0, ok.size)]] = kind
    return state


@dataclass
class People:
    """IMDb people and who worked on which title (principals rows, in file order)."""

    role: np.ndarray  # pool role per person
    effect: np.ndarray  # quality effect (directors and cast only)
    title: np.ndarray  # principals: title index
    person: np.ndarray  # principals: person index
    category: np.ndarray  # principals: role index
    ordering: np.ndarray  # principals: 1-based order within title


def make_people(spec: SyntheticSpec, n_titles: int, rng: np.random.Generator) -> People:
    """People pools by role with recurring (lognormal-prolific) members, assigned to titles."""
    n_p = spec.people
    role = rng.choice(len(ROLES), size=n_p, p=ROLE_SHARE / ROLE_SHARE.sum())
    effect = np.zeros(n_p)
    is_dir = role == DIRECTOR
    is_cast = (role == ACTOR) | (role == ACTRESS)
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
        (*draw(is_dir, n_dir), DIRECTOR),
        (*draw(role == WRITER, n_wri), WRITER),
        (*draw(role == PRODUCER, n_pro), PRODUCER),
        (*draw(role == COMPOSER, n_com), COMPOSER),
    ]
    title = np.concatenate([p[0] for p in parts])
    person = np.concatenate([p[1] for p in parts])
    cat = np.concatenate([np.full(p[0].size, p[2]) for p in parts])
    cat = np.where(cat < 0, role[person], cat)
    # Some directors also write their film (real crews do): list them as writer too.
    d = np.flatnonzero(cat == DIRECTOR)
    d = d[rng.random(d.size) < 0.3]
    title = np.concatenate([title, title[d]])
    person = np.concatenate([person, person[d]])
    cat = np.concatenate([cat, np.full(d.size, WRITER)])
    # Drop duplicate (title, person, category) from with-replacement draws, keep bill order.
    seq = np.arange(title.size)
    key = (title.astype(np.int64) * n_p + person) * len(ROLES) + cat
    by_key = np.argsort(key, kind="stable")
    sk = key[by_key]
    keep = np.sort(by_key[np.concatenate([[True], sk[1:] != sk[:-1]])])
    title, person, cat, seq = title[keep], person[keep], cat[keep], seq[keep]
    order = np.lexsort((seq, title))
    title, person, cat = title[order], person[order], cat[order]
    starts = np.searchsorted(title, np.arange(n_titles))
    ordering = np.arange(title.size) - starts[title] + 1
    return People(role, effect, title, person, cat, ordering)


def mean_effect(people: People, n: int, mask: np.ndarray) -> np.ndarray:
    """Mean people effect per title over principals rows in ``mask`` (0 where none)."""
    t, e = people.title[mask], people.effect[people.person[mask]]
    cnt = np.bincount(t, minlength=n)[:n]
    tot = np.bincount(t, weights=e, minlength=n)[:n]
    return np.divide(tot, cnt, out=np.zeros(n), where=cnt > 0)
