"""MovieLens <-> IMDb merge: each rule, the tie-breaks, one-to-one, and the report."""

from __future__ import annotations

import pandas as pd
import pytest

from duorec.data.merge import (
    RULES,
    MergeResult,
    fallback_title_keys,
    imdb_ids_to_tconsts,
    link_tconsts,
    merge_movies,
)

Scene = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]


def basics_frame(rows: list[tuple]) -> pd.DataFrame:
    """A title.basics frame as read_title_basics returns it."""
    frame = pd.DataFrame(
        rows, columns=["tconst", "titleType", "primaryTitle", "originalTitle", "startYear"]
    )
    frame["startYear"] = frame["startYear"].astype("Int32")
    frame["runtimeMinutes"] = pd.array([100] * len(frame), dtype="Int32")
    frame["genres"] = "Drama"
    for column in ("tconst", "titleType", "primaryTitle", "originalTitle", "genres"):
        frame[column] = frame[column].astype("str")
    return frame


def ratings_frame(votes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tconst": list(votes),
            "averageRating": pd.array([7.0] * len(votes), dtype="float32"),
            "numVotes": pd.array(list(votes.values()), dtype="int64"),
        }
    )


def movies_frame(titles: dict[int, str]) -> pd.DataFrame:
    return pd.DataFrame({"movieId": list(titles), "title": list(titles.values()), "genres": "X"})


def links_frame(ids: dict[int, object]) -> pd.DataFrame:
    return pd.DataFrame({"movieId": list(ids), "imdbId": list(ids.values())})


def outcome(result: MergeResult, movie_id: int) -> tuple[object, str]:
    row = result.links.set_index("movieId").loc[movie_id]
    return (None if pd.isna(row["tconst"]) else row["tconst"]), row["rule"]


# --- id conversion --------------------------------------------------------------------------


def test_imdb_ids_to_tconsts_pads_to_seven_digits_and_keeps_longer_ids() -> None:
    ids = pd.Series([114709, "0114709", "tt0114709", 10872600, None, "abc"], dtype=object)
    assert imdb_ids_to_tconsts(ids).tolist()[:4] == [
        "tt0114709",
        "tt0114709",
        "tt0114709",
        "tt10872600",
    ]
    converted = imdb_ids_to_tconsts(ids)
    assert pd.isna(converted.iloc[4]) and pd.isna(converted.iloc[5])
    assert link_tconsts(links_frame({1: 114709, 2: None})) == {"tt0114709"}


# --- the rules --------------------------------------------------------------------------------


@pytest.fixture
def scene() -> Scene:
    movies = movies_frame(
        {
            1: "Matrix, The (1999)",  # link, present in IMDb
            2: "Heat (1995)",  # link to a title missing from IMDb -> title fallback
            3: "Toy Story (1995)",  # no link, exact title and year
            4: "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)",  # alternate title, year+1
            5: "Fargo (1996)",  # film preferred over a more voted TV series
            6: "Hamlet (1990)",  # two films: most votes wins
            7: "King Kong (1933)",  # same title, different years
            8: "King Kong (2005)",
            9: "Nonexistent Film (2010)",  # unmatched
            10: "Babylon 5",  # no year: title only
            11: "Solaris (1972)",  # exact year preferred to one year off
        }
    )
    links = links_frame({1: 133093, 2: 9999999, 3: None})
    basics = basics_frame(
        [
            ("tt0133093", "movie", "The Matrix", "The Matrix", 1999),
            ("tt0113277", "movie", "Heat", "Heat", 1995),
            ("tt0114709", "movie", "Toy Story", "Toy Story", 1995),
            ("tt0211915", "movie", "Amélie", "Le fabuleux destin d'Amélie Poulain", 2002),
            ("tt0116282", "movie", "Fargo", "Fargo", 1996),
            ("tt9000001", "tvSeries", "Fargo", "Fargo", 1996),
            ("tt0099726", "movie", "Hamlet", "Hamlet", 1990),
            ("tt9000002", "movie", "Hamlet", "Hamlet", 1990),
            ("tt0024216", "movie", "King Kong", "King Kong", 1933),
            ("tt0360717", "movie", "King Kong", "King Kong", 2005),
            ("tt0105946", "tvSeries", "Babylon 5", "Babylon 5", 1993),
            ("tt0069293", "movie", "Solaris", "Solyaris", 1972),
            ("tt9000003", "movie", "Solaris", "Solaris", 1971),
            ("tt9000004", "movie", "Unrelated", "Unrelated", 2010),
        ]
    )
    ratings = ratings_frame(
        {
            "tt9000001": 900_000,
            "tt0116282": 700_000,
            "tt0099726": 50_000,
            "tt9000002": 300,
            "tt9000003": 10_000_000,
            "tt0069293": 90_000,
        }
    )
    return movies, links, basics, ratings


def test_every_rule_picks_the_expected_title(scene: Scene) -> None:
    movies, links, basics, ratings = scene
    result = merge_movies(movies, links, basics, ratings)
    assert outcome(result, 1) == ("tt0133093", "imdb_id")
    assert outcome(result, 2) == ("tt0113277", "title_year")
    assert outcome(result, 3) == ("tt0114709", "title_year")
    assert outcome(result, 4) == ("tt0211915", "title_year_pm1")
    assert outcome(result, 5) == ("tt0116282", "title_year")
    assert outcome(result, 6) == ("tt0099726", "title_year")
    assert outcome(result, 7) == ("tt0024216", "title_year")
    assert outcome(result, 8) == ("tt0360717", "title_year")
    assert outcome(result, 9) == (None, "unmatched")
    assert outcome(result, 10) == ("tt0105946", "title_only")
    assert outcome(result, 11) == ("tt0069293", "title_year")
    assert result.links["movieId"].tolist() == movies["movieId"].tolist()
    assert set(result.links["rule"]) <= set(RULES)


def test_report_counts(scene: Scene) -> None:
    movies, links, basics, ratings = scene
    counts = pd.Series({1: 50, 9: 30, 3: 20})  # movie 9 is unmatched
    report = merge_movies(movies, links, basics, ratings, rating_counts=counts).report
    assert report["movies_total"] == 11
    assert report["movies_matched"] == 10
    assert report["unmatched"] == 1
    assert report["matched_by_rule"] == {
        "imdb_id": 1,
        "title_year": 7,
        "title_year_pm1": 1,
        "title_only": 1,
    }
    assert report["link_not_in_imdb"] == 1
    assert report["no_link"] == 9  # movie 3's imdbId is NA, 4..11 have no row
    # Fargo, Hamlet and Solaris had two candidates each.
    assert report["ambiguous"] == 3
    assert report["ratings_covered"] == pytest.approx(0.7)


def test_without_links_everything_comes_from_the_title_fallback(scene: Scene) -> None:
    movies, links, basics, ratings = scene
    result = merge_movies(movies, links, basics, ratings, use_links=False)
    assert outcome(result, 1) == ("tt0133093", "title_year")
    assert result.report["matched_by_rule"]["imdb_id"] == 0
    assert result.report["link_not_in_imdb"] is None
    assert result.report["ratings_covered"] is None


def test_links_none_is_the_same_as_no_links(scene: Scene) -> None:
    movies, _, basics, ratings = scene
    a = merge_movies(movies, None, basics, ratings).links
    b = merge_movies(movies, links_frame({}), basics, ratings).links
    pd.testing.assert_frame_equal(a, b)


def test_string_imdb_ids_and_long_ids_link() -> None:
    movies = movies_frame({1: "Toy Story (1995)", 2: "Soul (2020)"})
    links = links_frame({1: "0114709", 2: "tt2948372"})
    basics = basics_frame(
        [
            ("tt0114709", "movie", "Toy Story", "Toy Story", 1995),
            ("tt2948372", "movie", "Soul", "Soul", 2020),
        ]
    )
    result = merge_movies(movies, links, basics)
    assert result.links["tconst"].tolist() == ["tt0114709", "tt2948372"]
    assert result.links["rule"].tolist() == ["imdb_id", "imdb_id"]


def test_without_ratings_ties_are_broken_deterministically() -> None:
    movies = movies_frame({1: "Hamlet (1990)"})
    basics = basics_frame(
        [
            ("tt0099726", "movie", "Hamlet", "Hamlet", 1990),
            ("tt0000002", "movie", "Hamlet", "Hamlet", 1990),
        ]
    )
    first = merge_movies(movies, None, basics).links
    again = merge_movies(movies, None, basics.iloc[::-1]).links
    assert first["tconst"].tolist() == again["tconst"].tolist() == ["tt0000002"]


# --- one-to-one -----------------------------------------------------------------------------


def test_duplicate_movielens_entries_get_distinct_titles() -> None:
    movies = movies_frame({10: "War of the Worlds (2005)", 11: "War of the Worlds (2005)"})
    basics = basics_frame(
        [
            ("tt0407304", "movie", "War of the Worlds", "War of the Worlds", 2005),
            ("tt0449040", "video", "War of the Worlds", "War of the Worlds", 2005),
        ]
    )
    result = merge_movies(movies, None, basics, ratings_frame({"tt0407304": 10, "tt0449040": 1}))
    assert outcome(result, 10) == ("tt0407304", "title_year")
    assert outcome(result, 11) == ("tt0449040", "title_year")


def test_a_linked_title_is_not_given_to_a_second_movie_by_title() -> None:
    movies = movies_frame({1: "Heat (1995)", 2: "Heat (1995)"})
    links = links_frame({1: 113277})
    basics = basics_frame([("tt0113277", "movie", "Heat", "Heat", 1995)])
    result = merge_movies(movies, links, basics)
    assert outcome(result, 1) == ("tt0113277", "imdb_id")
    assert outcome(result, 2) == (None, "unmatched")


def test_two_links_to_the_same_title_are_both_kept() -> None:
    movies = movies_frame({1: "Emma (1996)", 2: "Emma (1996)"})
    links = links_frame({1: 116191, 2: 116191})
    basics = basics_frame([("tt0116191", "movie", "Emma", "Emma", 1996)])
    result = merge_movies(movies, links, basics)
    assert result.links["tconst"].tolist() == ["tt0116191", "tt0116191"]
    assert result.report["matched_by_rule"]["imdb_id"] == 2


# --- keys for the basics reader -------------------------------------------------------------


def test_fallback_title_keys_all_movies_or_only_those_needing_it() -> None:
    movies = movies_frame(
        {
            1: "Matrix, The (1999)",
            2: "Heat (1995)",
            3: "Amelie (Fabuleux destin d'Amélie, Le) (2001)",
        }
    )
    links = links_frame({1: 133093, 2: 9999999})
    everything = fallback_title_keys(movies)
    assert {"matrix", "heat", "amelie", "fabuleux destin damelie"} <= everything
    needed = fallback_title_keys(movies, links, present_tconsts={"tt0133093"})
    assert "matrix" not in needed
    assert {"heat", "amelie", "fabuleux destin damelie"} <= needed


def test_empty_inputs() -> None:
    movies = movies_frame({1: "Heat (1995)"})
    empty = basics_frame([])
    result = merge_movies(movies, None, empty)
    assert outcome(result, 1) == (None, "unmatched")
    assert result.report["movies_matched"] == 0


def test_a_dated_movie_never_matches_an_undated_imdb_title() -> None:
    movies = movies_frame({1: "Heat (1995)", 2: "Heat"})
    basics = basics_frame([("tt9000009", "movie", "Heat", "Heat", None)])
    result = merge_movies(movies, None, basics)
    assert outcome(result, 1) == (None, "unmatched")
    assert outcome(result, 2) == ("tt9000009", "title_only")
