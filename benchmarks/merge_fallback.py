"""How good is the title fallback of the MovieLens <-> IMDb merge? Measured, not assumed.

Runs :func:`duorec.data.merge.merge_movies` twice on real data:

* with links.csv hidden (``use_links=False``): every match comes from the title fallback, and
  links.csv is the answer key. precision = correct / matched by the fallback; recall =
  correct / movies whose links.csv tconst is in title.basics (the ones it could find).
* with links.csv: the normal path; prints matches per rule and the time taken.

Both read title.basics the way ``prepare`` does: filtered to linked tconsts plus the title
keys of the MovieLens movies (the fallback run uses the keys only, so links cannot leak in).

Usage (from the repository root):
    .venv/bin/python benchmarks/merge_fallback.py [--movielens DIR] [--imdb DIR] [--errors N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from duorec.data.imdb import find_imdb_file, read_title_basics, read_title_ratings
from duorec.data.merge import (
    fallback_title_keys,
    imdb_ids_to_tconsts,
    link_tconsts,
    merge_movies,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MOVIELENS = ROOT.parent / "shared" / "data" / "ml-latest-small"
DEFAULT_IMDB = ROOT.parent / "shared" / "data" / "imdb-subset"


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movielens", type=Path, default=DEFAULT_MOVIELENS)
    parser.add_argument("--imdb", type=Path, default=DEFAULT_IMDB)
    parser.add_argument("--errors", type=int, default=0, help="print N wrong/missed examples")
    return parser.parse_args()


def _load_movielens(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    movies = pd.read_csv(folder / "movies.csv", dtype={"movieId": "int64"})
    links = pd.read_csv(folder / "links.csv", dtype={"movieId": "int64", "imdbId": "str"})
    ratings = pd.read_csv(folder / "ratings.csv", usecols=["movieId"])
    return movies, links, ratings["movieId"].value_counts()


def _fallback_quality(
    movies: pd.DataFrame, links: pd.DataFrame, imdb: Path, show: int
) -> dict[str, float]:
    """Merge with links hidden and score it against links.csv."""
    start = time.perf_counter()
    basics = read_title_basics(
        find_imdb_file(imdb, "title.basics"), title_keys=fallback_title_keys(movies)
    )
    ratings = read_title_ratings(find_imdb_file(imdb, "title.ratings"), set(basics["tconst"]))
    result = merge_movies(movies, None, basics, ratings, use_links=False)
    seconds = time.perf_counter() - start

    truth = pd.Series(imdb_ids_to_tconsts(links["imdbId"]).to_numpy(), index=links["movieId"])
    got = result.links.set_index("movieId")
    truth = truth.reindex(got.index)
    all_basics = read_title_basics(find_imdb_file(imdb, "title.basics"))
    findable = truth.isin(set(all_basics["tconst"]))
    matched = got["rule"] != "unmatched"
    correct = matched & (got["tconst"] == truth)
    if show:
        _show_errors(movies, got, truth, matched, correct, findable, all_basics, show)
    return {
        "matched": int(matched.sum()),
        "correct": int(correct.sum()),
        "findable": int(findable.sum()),
        "precision": correct.sum() / max(matched.sum(), 1),
        "recall": (correct & findable).sum() / max(findable.sum(), 1),
        "ambiguous": result.report["ambiguous"],
        "seconds": seconds,
        **{f"rule {k}": v for k, v in result.report["matched_by_rule"].items() if k != "imdb_id"},
    }


def _show_errors(
    movies: pd.DataFrame,
    got: pd.DataFrame,
    truth: pd.Series,
    matched: pd.Series,
    correct: pd.Series,
    findable: pd.Series,
    basics: pd.DataFrame,
    show: int,
) -> None:
    """Print examples of wrong and missed matches, to guide normalisation work."""
    title = movies.set_index("movieId")["title"]
    info = basics.set_index("tconst")[["titleType", "primaryTitle", "originalTitle", "startYear"]]

    def describe(tconst: object) -> str:
        if not isinstance(tconst, str) or tconst not in info.index:
            return f"{tconst} (not in basics)"
        row = info.loc[tconst]
        return (
            f"{tconst} {row.titleType} {row.primaryTitle!r}/{row.originalTitle!r} {row.startYear}"
        )

    wrong = got.index[matched & ~correct]
    missed = got.index[~matched & findable]
    for label, ids in (("WRONG", wrong), ("MISSED", missed)):
        print(f"--- {label}: {len(ids)}")
        for movie_id in ids[:show]:
            print(
                f"{title[movie_id]!r}: got {describe(got.loc[movie_id, 'tconst'])} "
                f"[{got.loc[movie_id, 'rule']}]; truth {describe(truth[movie_id])}"
            )


def _with_links(
    movies: pd.DataFrame, links: pd.DataFrame, counts: pd.Series, imdb: Path
) -> dict[str, float]:
    """The normal path: one filtered pass over basics, then the merge."""
    start = time.perf_counter()
    basics = read_title_basics(
        find_imdb_file(imdb, "title.basics"), link_tconsts(links), fallback_title_keys(movies)
    )
    ratings = read_title_ratings(find_imdb_file(imdb, "title.ratings"), set(basics["tconst"]))
    result = merge_movies(movies, links, basics, ratings, rating_counts=counts)
    seconds = time.perf_counter() - start
    report = result.report
    return {
        "matched": report["movies_matched"],
        "movies": report["movies_total"],
        **{f"rule {k}": v for k, v in report["matched_by_rule"].items()},
        "link_not_in_imdb": report["link_not_in_imdb"],
        "ambiguous": report["ambiguous"],
        "ratings_covered": report["ratings_covered"],
        "seconds": seconds,
    }


def _print_table(title: str, values: dict[str, float]) -> None:
    print(f"\n{title}")
    for name, value in values.items():
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"  {name:<22} {text:>10}")


def main() -> None:
    args = _parse_args()
    movies, links, counts = _load_movielens(args.movielens)
    print(f"MovieLens: {args.movielens} ({len(movies)} movies); IMDb: {args.imdb}")
    _print_table(
        "title fallback alone (links.csv hidden, used only to score)",
        _fallback_quality(movies, links, args.imdb, args.errors),
    )
    _print_table(
        "normal merge (links.csv, then fallback)", _with_links(movies, links, counts, args.imdb)
    )


if __name__ == "__main__":
    main()
