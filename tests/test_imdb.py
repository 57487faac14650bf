"""IMDb readers: streaming, filtering, types and DataError locations, on tiny files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from duorec.data.errors import DataError
from duorec.data.imdb import (
    IMDB_FILES,
    find_imdb_file,
    find_imdb_files,
    read_name_basics,
    read_person_names,
    read_title_basics,
    read_title_crew,
    read_title_principals,
    read_title_ratings,
    split_people,
)

BASICS_HEADER = (
    "tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\tstartYear\tendYear"
    "\truntimeMinutes\tgenres"
)
BASICS_ROWS = [
    "tt0133093\tmovie\tThe Matrix\tThe Matrix\t0\t1999\t\\N\t136\tAction,Sci-Fi",
    'tt0000003\tshort\t"Pauvre Pierrot\t"Pauvre Pierrot\t0\t1892\t\\N\t4\tAnimation,Short',
    'tt0000004\tmovie\tThe "Real" Story\t\\N\t0\t\\N\t\\N\t\\N\t\\N',
    "tt0211915\tmovie\tAmélie\tLe fabuleux destin d'Amélie Poulain\t0\t2001\t\\N\t122\tComedy",
    "tt9999991\ttvEpisode\tThe Matrix\tThe Matrix\t0\t1999\t\\N\t\\N\tDrama",
]


def write(path: Path, lines: list[str], raw: bytes | None = None) -> Path:
    """Write lines (or raw bytes) as an IMDb file; gzip when the name ends in .gz."""
    data = raw if raw is not None else ("\n".join(lines) + "\n").encode("utf-8")
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def basics_file(tmp_path: Path, name: str = "title.basics.tsv") -> Path:
    return write(tmp_path / name, [BASICS_HEADER, *BASICS_ROWS])


# --- finding files -----------------------------------------------------------------------


def test_find_imdb_file_accepts_tsv_and_gz(tmp_path: Path) -> None:
    write(tmp_path / "title.ratings.tsv.gz", ["tconst\taverageRating\tnumVotes"])
    assert find_imdb_file(tmp_path, "title.ratings") == tmp_path / "title.ratings.tsv.gz"
    write(tmp_path / "title.ratings.tsv", ["tconst\taverageRating\tnumVotes"])
    assert find_imdb_file(tmp_path, "title.ratings") == tmp_path / "title.ratings.tsv"


def test_find_imdb_file_names_directory_and_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        find_imdb_file(tmp_path, "title.crew")
    message = str(err.value)
    assert str(tmp_path) in message
    assert "title.crew.tsv" in message and "title.crew.tsv.gz" in message


def test_missing_imdb_files_are_all_named_in_one_error(tmp_path: Path) -> None:
    """A folder lacking three files says so at once, not one file per run."""
    write(tmp_path / "title.basics.tsv", [BASICS_HEADER])
    write(tmp_path / "title.ratings.tsv.gz", ["tconst\taverageRating\tnumVotes"])
    missing = ["title.crew", "title.principals", "name.basics"]
    for find in (lambda: find_imdb_file(tmp_path, "title.crew"), lambda: find_imdb_files(tmp_path)):
        with pytest.raises(DataError, match="3 IMDb files not found") as err:
            find()
        assert err.value.path == str(tmp_path)
        for name in missing:
            assert f"{name}.tsv or {name}.tsv.gz" in err.value.problem
        assert "title.basics" not in err.value.problem and "title.ratings" not in err.value.problem


def test_find_imdb_files_returns_every_required_file(tmp_path: Path) -> None:
    for name in IMDB_FILES:
        write(tmp_path / f"{name}.tsv.gz", ["x"])
    write(tmp_path / "title.basics.tsv", ["x"])
    found = find_imdb_files(tmp_path)
    assert list(found) == list(IMDB_FILES)
    assert found["title.basics"] == tmp_path / "title.basics.tsv"
    assert found["name.basics"] == tmp_path / "name.basics.tsv.gz"


def test_missing_imdb_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="IMDb folder does not exist"):
        find_imdb_file(tmp_path / "nope", "title.basics")


# --- title.basics --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["title.basics.tsv", "title.basics.tsv.gz"])
def test_read_title_basics_types_nulls_and_quotes(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, [BASICS_HEADER, *BASICS_ROWS])
    basics = read_title_basics(path)
    assert list(basics.columns) == [
        "tconst", "titleType", "primaryTitle", "originalTitle", "startYear",
        "runtimeMinutes", "genres",
    ]  # fmt: skip
    assert len(basics) == 5
    assert str(basics["startYear"].dtype) == "Int32"
    assert str(basics["runtimeMinutes"].dtype) == "Int32"
    row = basics.set_index("tconst")
    assert row.loc["tt0133093", "startYear"] == 1999
    assert row.loc["tt0133093", "genres"] == "Action,Sci-Fi"
    # No quoting: a lone quote does not swallow the following fields or lines.
    assert row.loc["tt0000003", "primaryTitle"] == '"Pauvre Pierrot'
    assert row.loc["tt0000003", "runtimeMinutes"] == 4
    assert row.loc["tt0000004", "primaryTitle"] == 'The "Real" Story'
    for column in ("originalTitle", "startYear", "runtimeMinutes", "genres"):
        assert pd.isna(row.loc["tt0000004", column]), column


def test_read_title_basics_filters_by_tconst_or_title_key(tmp_path: Path) -> None:
    path = basics_file(tmp_path)
    by_id = read_title_basics(path, tconsts={"tt0000003"})
    assert list(by_id["tconst"]) == ["tt0000003"]
    # originalTitle key; the tvEpisode named "The Matrix" is not kept by title.
    by_key = read_title_basics(path, title_keys={"matrix", "fabuleux destin damelie poulain"})
    assert sorted(by_key["tconst"]) == ["tt0133093", "tt0211915"]
    both = read_title_basics(path, tconsts={"tt9999991"}, title_keys={"matrix"})
    assert sorted(both["tconst"]) == ["tt0133093", "tt9999991"]
    nothing = read_title_basics(path, tconsts=set())
    assert nothing.empty and list(nothing.columns) == list(by_id.columns)


def test_filtering_works_across_chunks(tmp_path: Path) -> None:
    path = basics_file(tmp_path)
    whole = read_title_basics(path, title_keys={"matrix", "real story"})
    chunked = read_title_basics(path, title_keys={"matrix", "real story"}, chunk_rows=2)
    pd.testing.assert_frame_equal(whole, chunked)
    assert sorted(chunked["tconst"]) == ["tt0000004", "tt0133093"]


def test_missing_column_names_file_column_and_line_1(tmp_path: Path) -> None:
    header = BASICS_HEADER.replace("\tstartYear", "\tyear")
    path = write(tmp_path / "title.basics.tsv", [header, *BASICS_ROWS])
    with pytest.raises(DataError) as err:
        read_title_basics(path)
    assert err.value.line == 1
    assert err.value.path == str(path)
    assert "startYear" in err.value.problem


@pytest.mark.parametrize("chunk_rows", [100, 2])
@pytest.mark.parametrize("name", ["title.basics.tsv", "title.basics.tsv.gz"])
def test_extra_field_reports_physical_line(tmp_path: Path, name: str, chunk_rows: int) -> None:
    rows = list(BASICS_ROWS)
    rows[3] += "\textra"  # data row 4 = physical line 5 (header is line 1)
    path = write(tmp_path / name, [BASICS_HEADER, *rows])
    with pytest.raises(DataError) as err:
        read_title_basics(path, chunk_rows=chunk_rows)
    assert err.value.line == 5
    assert "expected 9" in err.value.problem and "found 10" in err.value.problem


@pytest.mark.parametrize("chunk_rows", [100, 2])
def test_missing_field_reports_physical_line(tmp_path: Path, chunk_rows: int) -> None:
    rows = list(BASICS_ROWS)
    rows[2] = rows[2].rsplit("\t", 1)[0]  # data row 3 = line 4, one field short
    path = write(tmp_path / "title.basics.tsv", [BASICS_HEADER, *rows])
    with pytest.raises(DataError) as err:
        read_title_basics(path, chunk_rows=chunk_rows)
    assert err.value.line == 4
    assert "fields" in err.value.problem


def test_blank_line_is_reported_not_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "title.basics.tsv", [BASICS_HEADER, BASICS_ROWS[0], "", *BASICS_ROWS[1:]]
    )
    with pytest.raises(DataError) as err:
        read_title_basics(path)
    assert err.value.line == 3


@pytest.mark.parametrize("name", ["title.ratings.tsv", "title.ratings.tsv.gz"])
def test_undecodable_bytes_report_file_and_line(tmp_path: Path, name: str) -> None:
    raw = b"tconst\taverageRating\tnumVotes\ntt0000001\t5.7\t2150\ntt00\xff\xfe02\t5.5\t291\n"
    path = write(tmp_path / name, [], raw=raw)
    with pytest.raises(DataError) as err:
        read_title_ratings(path)
    assert err.value.path == str(path)
    assert err.value.line == 3
    assert "UTF-8" in err.value.problem


# --- title.ratings ---------------------------------------------------------------------------

RATINGS = ["tconst\taverageRating\tnumVotes", "tt0000001\t5.7\t2150", "tt0133093\t8.7\t2100000"]


def test_read_title_ratings_types_and_filter(tmp_path: Path) -> None:
    path = write(tmp_path / "title.ratings.tsv", RATINGS)
    ratings = read_title_ratings(path)
    assert ratings["averageRating"].dtype == "float32"
    assert ratings["numVotes"].dtype == "int64"
    assert ratings["numVotes"].tolist() == [2150, 2100000]
    assert ratings["averageRating"].iloc[1] == pytest.approx(8.7, abs=1e-5)
    only = read_title_ratings(path, tconsts={"tt0133093"})
    assert only["tconst"].tolist() == ["tt0133093"]


def test_non_numeric_rating_names_line_column_and_value(tmp_path: Path) -> None:
    path = write(tmp_path / "title.ratings.tsv", [*RATINGS, "tt0000009\tabc\t12"])
    with pytest.raises(DataError) as err:
        read_title_ratings(path)
    assert err.value.line == 4
    assert "averageRating" in err.value.problem and "'abc'" in err.value.problem


def test_non_integer_votes_and_null_required_field_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "title.ratings.tsv", [*RATINGS, "tt0000009\t6.1\t12.5"])
    with pytest.raises(DataError, match=r"line 4: column 'numVotes': '12.5' is not an integer"):
        read_title_ratings(path)
    path = write(tmp_path / "title.ratings.tsv", [*RATINGS[:2], "tt0000009\t\\N\t12"])
    with pytest.raises(DataError, match=r"line 3: column 'averageRating' is empty"):
        read_title_ratings(path)


def test_bad_year_in_basics_is_reported(tmp_path: Path) -> None:
    rows = [*BASICS_ROWS[:2], BASICS_ROWS[2].replace("\t0\t\\N\t", "\t0\t19x9\t", 1)]
    path = write(tmp_path / "title.basics.tsv", [BASICS_HEADER, *rows])
    with pytest.raises(DataError) as err:
        read_title_basics(path)
    assert err.value.line == 4
    assert "startYear" in err.value.problem and "19x9" in err.value.problem


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "title.ratings.tsv", [], raw=b"")
    with pytest.raises(DataError, match="empty file"):
        read_title_ratings(path)


# --- title.crew, title.principals, name.basics ------------------------------------------------


def test_read_title_crew_keeps_comma_strings_and_nulls(tmp_path: Path) -> None:
    lines = [
        "tconst\tdirectors\twriters",
        "tt0133093\tnm0905154,nm0905152\tnm0905152,nm0905154",
        "tt0000003\tnm0721526\t\\N",
        "tt0000004\t\\N\t\\N",
    ]
    path = write(tmp_path / "title.crew.tsv.gz", lines)
    crew = read_title_crew(path, tconsts={"tt0133093", "tt0000003"})
    assert crew["tconst"].tolist() == ["tt0133093", "tt0000003"]
    assert crew["directors"].iloc[0] == "nm0905154,nm0905152"
    assert pd.isna(crew["writers"].iloc[1])
    assert split_people(crew["writers"]).tolist() == [["nm0905152", "nm0905154"], []]


PRINCIPALS = [
    "tconst\tordering\tnconst\tcategory\tjob\tcharacters",
    'tt0133093\t1\tnm0000206\tactor\t\\N\t["Neo"]',
    'tt0133093\t2\tnm0000401\tactor\t\\N\t["Morpheus"]',
    "tt0133093\t3\tnm0905154\tdirector\t\\N\t\\N",
    'tt0133093\t4\tnm0005251\tactress\t\\N\t["Trinity"]',
    'tt0000004\t1\tnm0000001\tself\t\\N\t["Himself"]',
]


def test_read_title_principals_filters_category_ordering_and_tconst(tmp_path: Path) -> None:
    path = write(tmp_path / "title.principals.tsv", PRINCIPALS)
    cast = read_title_principals(path)
    assert cast["nconst"].tolist() == ["nm0000206", "nm0000401", "nm0005251", "nm0000001"]
    assert cast["ordering"].dtype == "int32"
    assert list(cast.columns) == ["tconst", "ordering", "nconst", "category"]
    top = read_title_principals(path, tconsts={"tt0133093"}, max_ordering=2)
    assert top["nconst"].tolist() == ["nm0000206", "nm0000401"]
    everyone = read_title_principals(path, categories=None)
    assert "director" in set(everyone["category"])


def test_principals_bad_ordering_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path / "title.principals.tsv", [*PRINCIPALS, "tt0000005\tfirst\tnm1\tactor\t\\N\t\\N"]
    )
    with pytest.raises(DataError) as err:
        read_title_principals(path)
    assert err.value.line == 7
    assert "ordering" in err.value.problem and "first" in err.value.problem


def test_read_name_basics(tmp_path: Path) -> None:
    lines = [
        "nconst\tprimaryName\tbirthYear\tdeathYear\tprimaryProfession\tknownForTitles",
        "nm0000206\tKeanu Reeves\t1964\t\\N\tactor\ttt0133093",
        "nm0000401\tLaurence Fishburne\t1961\t\\N\tactor\ttt0133093",
        "nm0000999\t\\N\t\\N\t\\N\t\\N\t\\N",
    ]
    path = write(tmp_path / "name.basics.tsv", lines)
    names = read_name_basics(path)
    assert names["primaryName"].iloc[0] == "Keanu Reeves"
    assert pd.isna(names["primaryName"].iloc[2])
    assert read_name_basics(path, nconsts={"nm0000401"})["primaryName"].tolist() == [
        "Laurence Fishburne"
    ]


def test_read_person_names_maps_wanted_people_to_names(tmp_path: Path) -> None:
    """Names for the vocabulary only; people without a name (or absent) are left out."""
    lines = [
        "nconst\tprimaryName\tbirthYear\tdeathYear\tprimaryProfession\tknownForTitles",
        "nm0000206\tKeanu Reeves\t1964\t\\N\tactor\ttt0133093",
        "nm0000401\tLaurence Fishburne\t1961\t\\N\tactor\ttt0133093",
        "nm0905154\tLana Wachowski\t1965\t\\N\tdirector,writer\ttt0133093",
        "nm0000999\t\\N\t\\N\t\\N\t\\N\t\\N",
    ]
    write(tmp_path / "name.basics.tsv.gz", lines)
    wanted = {"nm0905154", "nm0000206", "nm0000999", "nm7777777"}
    assert read_person_names(tmp_path, wanted) == {
        "nm0000206": "Keanu Reeves",
        "nm0905154": "Lana Wachowski",
    }
    assert read_person_names(tmp_path, set()) == {}


def test_numeric_error_line_is_file_line_in_later_chunks(tmp_path: Path) -> None:
    lines = [*RATINGS, "tt0000007\t6.0\t10", "tt0000008\t7.0\t11", "tt0000009\t7,5\t12"]
    path = write(tmp_path / "title.ratings.tsv", lines)
    with pytest.raises(DataError) as err:
        read_title_ratings(path, chunk_rows=2)
    assert err.value.line == 6
    assert "'7,5'" in err.value.problem


def test_trailing_tab_is_an_extra_field(tmp_path: Path) -> None:
    path = write(tmp_path / "title.ratings.tsv", [*RATINGS, "tt0000009\t6.1\t12\t"])
    with pytest.raises(DataError) as err:
        read_title_ratings(path)
    assert err.value.line == 4
    assert "found 4" in err.value.problem


def test_genuinely_empty_last_field_is_not_a_short_line(tmp_path: Path) -> None:
    rows = [*BASICS_ROWS[:2], BASICS_ROWS[2].rsplit("\t", 1)[0] + "\t"]  # genres is ""
    path = write(tmp_path / "title.basics.tsv", [BASICS_HEADER, *rows])
    basics = read_title_basics(path)
    assert len(basics) == 3
    assert basics["genres"].iloc[2] == ""


def test_truncated_gzip_is_a_data_error(tmp_path: Path) -> None:
    data = gzip.compress(("\n".join(RATINGS * 2000) + "\n").encode())
    path = tmp_path / "title.ratings.tsv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="title.ratings.tsv.gz"):
        read_title_ratings(path)
