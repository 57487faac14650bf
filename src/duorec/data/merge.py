"""Match MovieLens movies to IMDb titles (tconst).

Rules, in order:

1. ``imdb_id``: links.csv gives the imdbId; ``"tt"`` + at least 7 digits is the tconst. It
   counts only when that tconst is in the title.basics we read (else we would attach a movie
   to a title with no metadata); otherwise the movie falls through to rule 2 and is counted
   in ``report["link_not_in_imdb"]``.
2. Title fallback, for movies without a usable link: every key of the MovieLens title (main
   title and the alternates in parentheses, see :mod:`duorec.data.titles`) is joined with the
   keys of IMDb primaryTitle and originalTitle, keeping candidates whose startYear is the
   MovieLens year (``title_year``) or one off (``title_year_pm1``; release vs. festival year
   differ); a MovieLens title without a year matches by title alone (``title_only``). Among
   candidates: films first (movie, tvMovie), then video / mini-series / untyped, then series
   and shorts, episodes last; then the exact year; then a match on the main title over an
   alternate one; then the most IMDb votes.

One-to-one: a title already taken by a link is not offered to the fallback, and a title
goes to at most one fallback movie (the best-ranked claim; the loser takes its next
candidate). MovieLens does hold a few duplicate entries with identical titles; with
one-to-one, two "War of the Worlds (2005)" entries get the two 2005 titles instead of both
the most voted one, and a wrong link never steals a second movie's metadata.

Everything is joins on keys: no Python loop over movies x titles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from duorec.data.titles import normalise_titles, split_title_years, title_keys_frame

RULES = ("imdb_id", "title_year", "title_year_pm1", "title_only", "unmatched")
_YEAR_RULES = {0: "title_year", 1: "title_year_pm1", 2: "title_only"}

# Lower is better. Titles with no type (\N, seen in merged dumps) rank with videos.
TYPE_RANK = {
    "movie": 0,
    "tvMovie": 0,
    "video": 1,
    "tvMiniSeries": 1,
    "tvSpecial": 1,
    "tvSeries": 2,
    "short": 2,
    "tvShort": 2,
    "tvEpisode": 3,
    "videoGame": 4,
}
UNTYPED_RANK = 1
OTHER_RANK = 2
# Candidate order, best first: column -> ascending. tconst and movieId make ties deterministic.
PREFERENCE = {
    "type_rank": True,
    "year_class": True,
    "alternate": True,
    "votes": False,
    "tconst": True,
    "movieId": True,
}


@dataclass
class MergeResult:
    """Outcome of :func:`merge_movies`.

    ``links``: one row per MovieLens movie, in input order: movieId, tconst (NA when
    unmatched), rule (one of :data:`RULES`). ``report``: counts for logs and the manifest.
    """

    links: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def imdb_ids_to_tconsts(imdb_ids: pd.Series) -> pd.Series:
    """links.csv imdbId (int, ``"0114709"`` or ``"tt0114709"``) -> ``"tt0114709"``; NA stays NA.

    IMDb pads to 7 digits; newer ids are longer and keep all their digits (``tt10872600``).
    Anything that is not a number becomes NA (links are validated by the MovieLens reader).
    """
    if pd.api.types.is_numeric_dtype(imdb_ids):
        numbers = pd.to_numeric(imdb_ids).astype("Float64")
    else:
        text = imdb_ids.astype("str").str.strip().str.removeprefix("tt")
        numbers = pd.to_numeric(text, errors="coerce").astype("Float64")
    numbers = numbers.where((numbers >= 0) & (numbers % 1 == 0))
    digits = numbers.astype("Int64").astype("str")
    padded = "tt" + digits.str.zfill(7)
    return padded.where(numbers.notna()).astype("str")


def link_tconsts(links: pd.DataFrame | None) -> set[str]:
    """All tconsts links.csv points to: what the basics reader must keep for rule 1."""
    if links is None or links.empty:
        return set()
    return set(imdb_ids_to_tconsts(links["imdbId"]).dropna())


def _link_table(movies: pd.DataFrame, links: pd.DataFrame | None) -> pd.Series:
    """movieId-aligned Series of linked tconsts (NA where none), in ``movies`` order."""
    if links is None or links.empty:
        return pd.Series(pd.NA, index=movies.index, dtype="str")
    by_movie = pd.Series(
        imdb_ids_to_tconsts(links["imdbId"]).to_numpy(), index=links["movieId"].to_numpy()
    )
    by_movie = by_movie[~by_movie.index.duplicated()]
    return pd.Series(by_movie.reindex(movies["movieId"]).to_numpy(), index=movies.index)


def fallback_title_keys(
    movies: pd.DataFrame,
    links: pd.DataFrame | None = None,
    present_tconsts: Iterable[str] | None = None,
) -> set[str]:
    """Title keys of the movies that may need the title fallback, to filter title.basics.

    A movie needs the fallback unless its link is known to be in title.basics. Before reading
    basics that is not known, so with ``present_tconsts=None`` every movie's keys are returned
    and a single pass ``read_title_basics(path, link_tconsts(links), fallback_title_keys(
    movies))`` keeps everything :func:`merge_movies` can use. A caller with a previous pass
    can give ``present_tconsts`` to shrink the set to the movies whose link is absent.
    """
    todo = movies
    if present_tconsts is not None:
        present = set(present_tconsts)
        linked = _link_table(movies, links)
        todo = movies[~linked.isin(present).to_numpy()]
    titles = split_title_years(todo["title"])["title"]
    return set(title_keys_frame(titles)["key"])


def _movie_keys(movies: pd.DataFrame) -> pd.DataFrame:
    """movieId, key, alternate, year for every key of every MovieLens title."""
    split = split_title_years(movies["title"].reset_index(drop=True))
    keys = title_keys_frame(split["title"])
    rows = keys["row"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "movieId": movies["movieId"].to_numpy()[rows],
            "key": keys["key"].to_numpy(),
            "alternate": keys["alternate"].to_numpy(),
            "year": split["year"].to_numpy()[rows],
        }
    )


def _imdb_keys(basics: pd.DataFrame, ratings: pd.DataFrame | None) -> pd.DataFrame:
    """tconst, key, startYear, type_rank, votes for primary and original titles of basics."""
    parts = []
    for column in ("primaryTitle", "originalTitle"):
        part = basics[["tconst", "titleType", "startYear"]].copy()
        part["key"] = normalise_titles(basics[column])
        parts.append(part)
    keys = pd.concat(parts, ignore_index=True)
    keys = keys[keys["key"].notna() & (keys["key"] != "")]
    keys = keys.drop_duplicates(["tconst", "key"])
    ranks = keys["titleType"].map(TYPE_RANK)
    untyped = keys["titleType"].isna()
    keys["type_rank"] = ranks.where(ranks.notna(), np.where(untyped, UNTYPED_RANK, OTHER_RANK))
    keys["votes"] = 0
    if ratings is not None and not ratings.empty:
        votes = ratings.drop_duplicates("tconst").set_index("tconst")["numVotes"]
        keys["votes"] = keys["tconst"].map(votes).fillna(0).astype("int64").to_numpy()
    return keys.drop(columns="titleType")


def _title_candidates(
    movies: pd.DataFrame, basics: pd.DataFrame, ratings: pd.DataFrame | None
) -> pd.DataFrame:
    """All plausible (movieId, tconst) pairs, best first, with their year class.

    year_class: 0 same year, 1 one year apart, 2 the MovieLens title has no year. A MovieLens
    year never matches an IMDb title without one: those are mostly announced, unreleased
    titles, which would otherwise catch remakes' names.
    """
    cand = _movie_keys(movies).merge(_imdb_keys(basics, ratings), on="key")
    ml_year = cand["year"].astype("Float64").to_numpy(float, na_value=np.nan)
    imdb_year = cand["startYear"].astype("Float64").to_numpy(float, na_value=np.nan)
    gap = np.abs(ml_year - imdb_year)
    cand["year_class"] = np.select([np.isnan(ml_year), gap == 0, gap == 1], [2, 0, 1], 3)
    cand = cand[cand["year_class"] <= 2]
    cand = cand.sort_values(list(PREFERENCE), ascending=list(PREFERENCE.values()), kind="stable")
    return cand.drop_duplicates(["movieId", "tconst"])[
        ["movieId", "tconst", "year_class", "type_rank", "alternate", "votes"]
    ]


def _assign_one_to_one(cand: pd.DataFrame) -> pd.DataFrame:
    """Greedy one-to-one assignment over candidates sorted best first.

    Each round gives every movie its best remaining candidate, lets each contested title go
    to the best-ranked claim, and removes the winners' movies and titles. Rounds are vectorised;
    there are as many as the longest chain of contested titles (a handful).
    """
    won = []
    remaining = cand
    while not remaining.empty:
        best = remaining.drop_duplicates("movieId")
        winners = best.drop_duplicates("tconst")
        won.append(winners)
        remaining = remaining[
            ~remaining["movieId"].isin(winners["movieId"])
            & ~remaining["tconst"].isin(winners["tconst"])
        ]
    if not won:
        return cand.iloc[:0]
    return pd.concat(won, ignore_index=True)


def merge_movies(
    movies: pd.DataFrame,
    links: pd.DataFrame | None,
    basics: pd.DataFrame,
    ratings: pd.DataFrame | None = None,
    use_links: bool = True,
    rating_counts: pd.Series | None = None,
) -> MergeResult:
    """Attach an IMDb tconst to each MovieLens movie (see the module docstring for the rules).

    ``movies``: movieId, title (raw, year included). ``links``: movieId, imdbId (may be NA).
    ``basics``: from :func:`duorec.data.imdb.read_title_basics`. ``ratings``: title.ratings,
    for the votes tie-break. ``use_links=False`` ignores links.csv, to measure the fallback.
    ``rating_counts``: movieId -> number of MovieLens ratings, for ``ratings_covered``.
    """
    movies = movies.reset_index(drop=True)
    if movies["movieId"].duplicated().any():
        raise ValueError("merge_movies: movieId must be unique in movies")
    present = set(basics["tconst"].dropna())
    linked = _link_table(movies, links if use_links else None)
    by_link = linked.isin(present).to_numpy()

    result = pd.DataFrame(
        {
            "movieId": movies["movieId"].to_numpy(),
            "tconst": linked.where(by_link).astype("str").to_numpy(),
            "rule": np.where(by_link, "imdb_id", "unmatched"),
        }
    )
    result["tconst"] = result["tconst"].astype("str")

    todo = movies[~by_link]
    free = basics[~basics["tconst"].isin(set(linked[by_link]))]
    cand = _title_candidates(todo, free, ratings)
    chosen = _assign_one_to_one(cand).set_index("movieId")
    n_candidates = cand.groupby("movieId").size()

    fallback = result["movieId"].isin(chosen.index) & ~pd.Series(by_link)
    ids = result.loc[fallback, "movieId"]
    result.loc[fallback, "tconst"] = chosen.loc[ids, "tconst"].to_numpy()
    result.loc[fallback, "rule"] = chosen.loc[ids, "year_class"].map(_YEAR_RULES).to_numpy()

    report = _report(result, linked, by_link, use_links, n_candidates, rating_counts)
    return MergeResult(links=result, report=report)


def _report(
    result: pd.DataFrame,
    linked: pd.Series,
    by_link: np.ndarray,
    use_links: bool,
    n_candidates: pd.Series,
    rating_counts: pd.Series | None,
) -> dict[str, Any]:
    """Counts that tell whether the merge is healthy (logged and kept in the manifest)."""
    matched = result["rule"] != "unmatched"
    counts = result["rule"].value_counts()
    fallback_ids = result.loc[matched & ~by_link, "movieId"]
    report: dict[str, Any] = {
        "movies_total": int(len(result)),
        "movies_matched": int(matched.sum()),
        "matched_by_rule": {rule: int(counts.get(rule, 0)) for rule in RULES[:-1]},
        "unmatched": int((~matched).sum()),
        "ambiguous": int((n_candidates.reindex(fallback_ids).fillna(0) > 1).sum()),
        "links_used": bool(use_links),
        "no_link": int(linked.isna().sum()) if use_links else None,
        "link_not_in_imdb": int((linked.notna().to_numpy() & ~by_link).sum())
        if use_links
        else None,
        "ratings_covered": None,
    }
    if rating_counts is not None:
        total = float(rating_counts.sum())
        covered = float(rating_counts.reindex(result.loc[matched, "movieId"]).fillna(0).sum())
        report["ratings_covered"] = covered / total if total else None
    return report
