"""links.csv and the five IMDb files, consistent with each other and with the catalogue.

IMDb holds every MovieLens movie that is "in IMDb" (see the link states in ``catalog``), extra
titles MovieLens does not have, and TV series sharing a movie's title; links.csv points at
them, or nowhere, or at tconsts that do not exist, at the planted rates. Each file is written
in tconst order like the real dumps, and every writer draws from one generator in a fixed
order, so the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from duorec.data.synthetic.catalog import Catalog, People
from duorec.data.synthetic.draws import at_least_one, sorted_unique, unique_titles
from duorec.data.synthetic.spec import SyntheticSpec
from duorec.data.synthetic.vocab import (
    ACTOR,
    ACTRESS,
    DANGLING_ABSENT,
    DANGLING_IN_IMDB,
    DIRECTOR,
    EMPTY_ABSENT,
    EMPTY_IN_IMDB,
    FIRST_NAMES,
    IMDB_EXTRA_GENRES,
    IMDB_ONLY_GENRES,
    LAST_NAMES,
    LINK_OK,
    ML_GENRES,
    ML_TO_IMDB_GENRE,
    NO_ROW_ABSENT,
    NO_ROW_IN_IMDB,
    PRODUCER,
    PRODUCER_JOBS,
    PROFESSIONS,
    ROLES,
    WRITER,
    WRITER_JOBS,
)
from duorec.data.synthetic.writers import join_slots, pad7, write_csv_module, write_tsv


@dataclass
class _Ids:
    """tconst numbers: one per IMDb title index, plus the ones dangling links point at.

    Title indices: MovieLens movies first (``n_movies``), then extra titles, then the TV
    series whose title clashes with a movie's.
    """

    in_imdb: np.ndarray  # per movie: has an IMDb title
    dangling: np.ndarray  # per movie: links.csv points at a tconst IMDb lacks
    clash: np.ndarray  # movies whose title a tvSeries shares
    n_extra: int
    n_titles: int
    tnum: np.ndarray  # tconst number per title index
    dangling_num: np.ndarray  # per movie, the dangling tconst number (0 if none)


@dataclass
class _TitleTable:
    """The titles in title.basics, which every other IMDb file refers to."""

    tconst: pa.Array  # per title index
    present: np.ndarray  # per title index: written to title.basics
    order: np.ndarray  # title indices in file (tconst) order
    pos: np.ndarray  # title index -> row in title.basics (-1 when absent)


@dataclass
class _Credits:
    """title.principals rows of the titles present, in file order."""

    title: np.ndarray
    person: np.ndarray
    category: np.ndarray
    ordering: np.ndarray


def write_imdb_and_links(
    root: Path, spec: SyntheticSpec, cat: Catalog, people: People, n_extra: int,
    rng: np.random.Generator,
) -> dict[str, int]:  # fmt: skip
    """links.csv and the five IMDb TSVs; returns the counts recorded in the manifest."""
    st = cat.link_state
    ids = _draw_ids(spec, cat, n_extra, rng)
    n_links = _write_links(root / "movielens" / "links.csv", spec, cat, ids, rng)
    imdb = root / "imdb"
    table = _write_title_basics(imdb / "title.basics.tsv", spec, cat, ids, rng)
    n_rated = _write_title_ratings(imdb / "title.ratings.tsv", cat, ids, table, rng)
    credits = _credits(people, ids.n_titles, table)
    nconst = pad7(np.arange(1, spec.people + 1) + 1_000, "nm")
    _write_title_principals(imdb / "title.principals.tsv", credits, table, nconst, rng)
    _write_title_crew(imdb / "title.crew.tsv", credits, table, nconst)
    _write_name_basics(imdb / "name.basics.tsv", people, credits, table, nconst, rng)
    return {
        "links": n_links,
        "links_missing_row": int(np.isin(st, [NO_ROW_IN_IMDB, NO_ROW_ABSENT]).sum()),
        "links_empty_imdb_id": int(np.isin(st, [EMPTY_IN_IMDB, EMPTY_ABSENT]).sum()),
        "links_dangling": int(ids.dangling.sum()),
        "movies_in_imdb": int(ids.in_imdb.sum()),
        "movies_linked_to_imdb": int((st == LINK_OK).sum()),
        "imdb_titles": int(table.order.size),
        "imdb_tv_series_title_clashes": int(ids.clash.size),
        "imdb_rated_titles": n_rated,
        "imdb_principals": int(credits.title.size),
    }


def _draw_ids(spec: SyntheticSpec, cat: Catalog, n_extra: int, rng: np.random.Generator) -> _Ids:
    """Which movies are in IMDb, dangle or clash with a series, and every tconst number."""
    n_m = spec.n_movies
    st = cat.link_state
    in_imdb = np.isin(st, [LINK_OK, NO_ROW_IN_IMDB, EMPTY_IN_IMDB, DANGLING_IN_IMDB])
    dangling = np.isin(st, [DANGLING_IN_IMDB, DANGLING_ABSENT])
    clash = np.flatnonzero(
        at_least_one(rng.random(n_m) < spec.frac_tv_series_clash, spec.frac_tv_series_clash, rng)
        & in_imdb
    )
    n_titles = n_m + n_extra + clash.size  # ML movies + unrelated titles + tvSeries clashes
    n_ids = n_titles + int(dangling.sum())
    nums = sorted_unique(rng.integers(1, 9_999_999, size=int(n_ids * 1.3) + 16))
    nums = rng.permutation(nums)
    nums = nums[:n_ids]
    dangling_num = np.zeros(n_m, np.int64)
    dangling_num[dangling] = nums[n_titles:]
    return _Ids(in_imdb, dangling, clash, n_extra, n_titles, nums[:n_titles], dangling_num)


def _write_links(
    path: Path, spec: SyntheticSpec, cat: Catalog, ids: _Ids, rng: np.random.Generator
) -> int:
    """links.csv: ``movieId,imdbId,tmdbId``, imdbId unprefixed and zero-padded; row count."""
    n_m = spec.n_movies
    st = cat.link_state
    link_num = np.where(ids.dangling, ids.dangling_num, ids.tnum[:n_m])
    tmdb = rng.permutation(np.arange(2, 2 + 4 * n_m))[:n_m]
    imdb_txt = pad7(link_num, "").to_pylist()
    tmdb_missing = rng.random(n_m) < spec.frac_missing_tmdb
    rows = []
    for i in range(n_m):
        s = st[i]
        if s in (NO_ROW_IN_IMDB, NO_ROW_ABSENT):
            continue
        imdb_id = "" if s in (EMPTY_IN_IMDB, EMPTY_ABSENT) else imdb_txt[i]
        tm = "" if tmdb_missing[i] or not imdb_id and rng.random() < 0.5 else int(tmdb[i])
        rows.append((int(cat.movie_id[i]), imdb_id, tm))
    write_csv_module(path, ("movieId", "imdbId", "tmdbId"), rows)
    return len(rows)


def _nullable(x: np.ndarray) -> pa.Array:
    """Negative numbers are IMDb's ``\\N``."""
    return pa.array(x, mask=x < 0)


@dataclass
class _TitleFields:
    ttype: np.ndarray
    primary: list[str]
    original: list[str]
    start: np.ndarray  # -1: unknown
    end: np.ndarray
    runtime: np.ndarray


def _title_fields(
    spec: SyntheticSpec, cat: Catalog, ids: _Ids, rng: np.random.Generator
) -> _TitleFields:
    """Type, names, years and runtime of every title index (movies, extras, clashes)."""
    n_m, n_extra, n_titles, clash = spec.n_movies, ids.n_extra, ids.n_titles, ids.clash
    extra_names = unique_titles(rng, n_extra, set(cat.imdb_primary))
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
    return _TitleFields(ttype, primary, original, start, end, runtime)


def _write_title_basics(
    path: Path, spec: SyntheticSpec, cat: Catalog, ids: _Ids, rng: np.random.Generator
) -> _TitleTable:
    """title.basics: every title present in IMDb, sorted by tconst like the real dump."""
    n_m, n_titles = spec.n_movies, ids.n_titles
    f = _title_fields(spec, cat, ids, rng)
    genres = _imdb_genres(cat, ids.n_extra, ids.clash, rng)
    adult = (np.arange(n_titles) >= n_m) & (rng.random(n_titles) < 0.01)
    present = np.concatenate([ids.in_imdb, np.ones(n_titles - n_m, bool)])
    order = np.flatnonzero(present)
    order = order[np.argsort(ids.tnum[order], kind="stable")]  # IMDb files are sorted by tconst
    tconst = pad7(ids.tnum, "tt")
    write_tsv(
        path,
        ("tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear",
         "endYear", "runtimeMinutes", "genres"),
        [a.take(pa.array(order)) for a in (
            tconst, pa.array(f.ttype), pa.array(f.primary), pa.array(f.original),
            pa.array(adult.astype(np.int8)), _nullable(f.start), _nullable(f.end),
            _nullable(f.runtime), genres)],
        order.size,
    )  # fmt: skip
    pos = np.full(n_titles, -1, dtype=np.int64)
    pos[order] = np.arange(order.size)
    return _TitleTable(tconst, present, order, pos)


def _imdb_genres(
    cat: Catalog, n_extra: int, clash: np.ndarray, rng: np.random.Generator
) -> pa.Array:
    """IMDb genre strings: ML genres mapped to IMDb names (max 3, alphabetical), extras random."""
    out: list[str | None] = []
    u = rng.random(cat.genres.shape[0])
    extra_g = np.array(IMDB_ONLY_GENRES)[rng.integers(0, len(IMDB_ONLY_GENRES), u.size)]
    for i, row in enumerate(cat.genres):
        gs = {ML_TO_IMDB_GENRE[ML_GENRES[j]] for j in np.flatnonzero(row)} - {""}
        if u[i] < 0.1:
            gs.add(str(extra_g[i]))
        out.append(",".join(sorted(gs)[:3]) if gs and u[i] > 0.01 else None)
    pool = np.array(IMDB_EXTRA_GENRES)
    k = rng.choice([0, 1, 2, 3], size=n_extra, p=[0.05, 0.4, 0.35, 0.2])
    picks = pool[rng.integers(0, pool.size, (n_extra, 3))]
    for i in range(n_extra):
        gs = sorted(set(picks[i, : k[i]].tolist()))
        out.append(",".join(gs) if gs else None)
    out.extend(out[i] for i in clash.tolist())
    return pa.array(out, pa.string())


def _write_title_ratings(
    path: Path, cat: Catalog, ids: _Ids, table: _TitleTable, rng: np.random.Generator
) -> int:
    """title.ratings: quality-driven score, popularity-driven votes; not every title rated."""
    n_m, n_titles, order = cat.quality.size, ids.n_titles, table.order
    q = np.concatenate([cat.quality, rng.normal(0, cat.quality.std() + 1e-9, n_titles - n_m)])
    q = (q - q.mean()) / (q.std() + 1e-12)
    avg = np.clip(np.round(6.3 + 1.1 * q + rng.normal(0, 0.4, n_titles), 1), 1.0, 10.0)
    pop = np.concatenate([cat.popularity / cat.popularity.max(), np.full(n_titles - n_m, 1e-3)])
    votes = np.maximum(5, np.exp(np.log(pop) + 13 + rng.normal(0, 0.8, n_titles))).astype(int)
    rated = order[rng.random(order.size) < np.where(order < n_m, 0.97, 0.6)]
    avg_txt = pa.array([f"{v:.1f}" for v in avg[rated].tolist()], pa.string())  # "7.0"
    write_tsv(
        path,
        ("tconst", "averageRating", "numVotes"),
        [table.tconst.take(pa.array(rated)), avg_txt, votes[rated]],
        rated.size,
    )
    return int(rated.size)


def _credits(people: People, n_titles: int, table: _TitleTable) -> _Credits:
    """Principals rows of the titles present in title.basics, in tconst order."""
    pp = people.title < n_titles
    pt = people.title[pp]
    keep = table.present[pt]
    p_title, p_person = pt[keep], people.person[pp][keep]
    p_cat, p_ord = people.category[pp][keep], people.ordering[pp][keep]
    resort = np.lexsort((p_ord, table.pos[p_title]))
    return _Credits(p_title[resort], p_person[resort], p_cat[resort], p_ord[resort])


def _write_title_principals(
    path: Path, c: _Credits, table: _TitleTable, nconst: pa.Array, rng: np.random.Generator
) -> None:
    """title.principals, with writer and producer jobs and cast character names."""
    n = c.title.size
    job = np.full(n, None, dtype=object)
    wri = c.category == WRITER
    job[wri] = np.array(WRITER_JOBS)[rng.integers(0, len(WRITER_JOBS), wri.sum())]
    wri_null = wri & (rng.random(n) < 0.3)
    job[wri_null] = None
    pro = c.category == PRODUCER
    job[pro] = np.array(PRODUCER_JOBS)[rng.integers(0, len(PRODUCER_JOBS), pro.sum())]
    is_cast = (c.category == ACTOR) | (c.category == ACTRESS)
    chars = np.full(n, None, dtype=object)
    fn = np.array(FIRST_NAMES)
    ci = np.flatnonzero(is_cast & (rng.random(n) < 0.9))
    cnames = np.char.add(np.char.add('["', fn[rng.integers(0, fn.size, ci.size)]), '"]')
    chars[ci] = cnames
    write_tsv(
        path,
        ("tconst", "ordering", "nconst", "category", "job", "characters"),
        [table.tconst.take(pa.array(c.title)), c.ordering, nconst.take(pa.array(c.person)),
         pa.array(np.array(ROLES)[c.category]), pa.array(job.tolist(), pa.string()),
         pa.array(chars.tolist(), pa.string())],
        n,
    )  # fmt: skip


def _write_title_crew(path: Path, c: _Credits, table: _TitleTable, nconst: pa.Array) -> None:
    """title.crew: directors and writers (principals rows are grouped by title already)."""
    crew_cols = []
    for category in (DIRECTOR, WRITER):
        sel = c.category == category
        crew_cols.append(
            join_slots(nconst.take(pa.array(c.person[sel])), table.pos[c.title[sel]],
                       table.order.size, 4)
        )  # fmt: skip
    write_tsv(
        path,
        ("tconst", "directors", "writers"),
        [table.tconst.take(pa.array(table.order)), *crew_cols],
        table.order.size,
    )


def _person_names(people: People, rng: np.random.Generator) -> np.ndarray:
    """Each person's "First [M. ]Last" name; actresses get the female first names."""
    n_people = people.role.size
    fn, ln = np.array(FIRST_NAMES), np.array(LAST_NAMES)
    # FIRST_NAMES alternates male / female: actresses get the odd (female) entries.
    female = (people.role == ACTRESS) | ((people.role != ACTOR) & (rng.random(n_people) < 0.4))
    first_i = 2 * rng.integers(0, fn.size // 2, n_people) + female
    last_i = rng.integers(0, ln.size, n_people)
    initial = rng.integers(0, 26, n_people)
    middle = np.where(rng.random(n_people) < 0.3, np.char.add(
        np.array([chr(65 + i) for i in range(26)])[initial], ". "), "")  # fmt: skip
    return np.char.add(np.char.add(np.char.add(fn[first_i], " "), middle), ln[last_i])


def _write_name_basics(
    path: Path, people: People, c: _Credits, table: _TitleTable, nconst: pa.Array,
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """name.basics: names, life years, professions; knownForTitles = up to 4 titles."""
    n_people = people.role.size
    by_person = np.lexsort((table.pos[c.title], c.person))
    kp, kt = c.person[by_person], c.title[by_person]
    first = np.ones(kp.size, bool)
    first[1:] = (kp[1:] != kp[:-1]) | (kt[1:] != kt[:-1])
    kp, kt = kp[first], kt[first]
    known = join_slots(table.tconst.take(pa.array(kt)), kp, n_people, 4)
    names = _person_names(people, rng)
    birth = np.where(rng.random(n_people) < 0.6, rng.integers(1880, 2005, n_people), -1)
    death_age = rng.integers(45, 98, n_people)
    death = np.where((birth > 0) & (birth + death_age < 2024) & (rng.random(n_people) < 0.8),
                     birth + death_age, -1)  # fmt: skip
    prof_opts = np.array(PROFESSIONS)
    prof = prof_opts[people.role, rng.choice(3, size=n_people, p=[0.6, 0.25, 0.15])]
    prof = np.where(rng.random(n_people) < 0.02, None, prof.astype(object))
    write_tsv(
        path,
        ("nconst", "primaryName", "birthYear", "deathYear", "primaryProfession",
         "knownForTitles"),
        [nconst, pa.array(names), _nullable(birth), _nullable(death),
         pa.array(prof.tolist(), pa.string()), known],
        n_people,
    )  # fmt: skip
