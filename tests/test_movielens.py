"""MovieLens readers: every layout, and every malformed input named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from duorec.data.errors import DataError
from duorec.data.movielens import read_movielens

RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,3.5,101\n2,1,5.0,102\n"
MOVIES = (
    "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
    '2,"Matrix, The (1999)",Action|Sci-Fi\n'
)
LINKS = "movieId,imdbId,tmdbId\n1,0114709,862\n2,0133093,\n"


def write_csv_release(
    root: Path, ratings: str = RATINGS, movies: str = MOVIES, links: str | None = LINKS
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.csv").write_text(ratings, encoding="utf-8")
    (root / "movies.csv").write_text(movies, encoding="utf-8")
    if links is not None:
        (root / "links.csv").write_text(links)
    return root


def test_csv_release_is_read_with_types_and_links(tmp_path: Path) -> None:
    data = read_movielens(write_csv_release(tmp_path))
    assert data.layout == "csv"
    assert data.ratings["rating"].tolist() == [4.0, 3.5, 5.0]
    assert str(data.ratings["rating"].dtype) == "float32"
    assert data.movies.set_index("movieId").loc[2, "title"] == "Matrix, The (1999)"
    assert data.links["imdbId"].tolist() == [114709, 133093]
    assert data.rating_range == (0.5, 5.0)


def test_links_are_optional(tmp_path: Path) -> None:
    assert read_movielens(write_csv_release(tmp_path, links=None)).links is None


def test_dat_release_latin1_titles(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n2::1::3::978302109\n")
    (tmp_path / "movies.dat").write_bytes(
        "1::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n".encode("latin-1")
    )
    data = read_movielens(tmp_path)
    assert data.layout == "dat"
    assert data.movies["title"].iloc[0] == "Cité des enfants perdus, La (1995)"
    assert data.ratings["userId"].tolist() == [1, 2]
    assert data.rating_range == (1.0, 5.0)


def test_100k_release_genre_flags(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("196\t1\t3\t881250949\n186\t1\t4\t891717742\n")
    flags = ["0"] * 19
    flags[3] = flags[5] = "1"  # Animation, Comedy
    (tmp_path / "u.item").write_bytes(
        ("1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n").encode("latin-1")
    )
    data = read_movielens(tmp_path)
    assert data.layout == "100k"
    assert data.movies["genres"].iloc[0] == "Animation|Comedy"


def test_missing_folder_and_missing_ratings(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_movielens(tmp_path / "nope")
    with pytest.raises(DataError, match="no MovieLens ratings found"):
        read_movielens(tmp_path)


def test_missing_movies_file(tmp_path: Path) -> None:
    write_csv_release(tmp_path)
    (tmp_path / "movies.csv").unlink()
    with pytest.raises(DataError, match=r"movies\.csv: required MovieLens file is missing"):
        read_movielens(tmp_path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    write_csv_release(tmp_path, ratings="userId,movieId,timestamp\n1,1,100\n")
    with pytest.raises(DataError, match=r"ratings\.csv, line 1: missing column\(s\) \['rating'\]"):
        read_movielens(tmp_path)


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("1,1,4.0,100\n1,2,3.5\n", 3, "expected 4 fields, found 3"),
        ("1,1,4.0,100\n1,2,abc,101\n", 3, "rating is not a number: 'abc'"),
        ("1,1,4.0,100\n2,2,7.0,101\n", 3, "rating 7 is outside 0.5-5.0"),
        ("1,1,4.0,100\n2,2,3.3,101\n", 3, "rating 3.3 is outside 0.5-5.0 in half stars"),
        (
            "1,1,4.0,100\n2,2,3.0,101\n1,1,2.0,102\n",
            4,
            "duplicate rating: user 1 already rated movie 1",
        ),
        (
            "1,1,4.0,100\n1,2,3.0,101\n1,2,2.0,102\n",
            4,
            "duplicate rating: user 1 already rated movie 2",
        ),
        ("1,1,4.0,100\n2,99,3.0,101\n", 3, "rating of movie 99, which is not in the movies"),
    ],
)
def test_malformed_rating_lines_are_located(
    tmp_path: Path, body: str, line: int, problem: str
) -> None:
    write_csv_release(tmp_path, ratings="userId,movieId,rating,timestamp\n" + body)
    with pytest.raises(DataError, match=rf"ratings\.csv, line {line}: {problem}"):
        read_movielens(tmp_path)


def test_undecodable_text_names_the_line(tmp_path: Path) -> None:
    write_csv_release(tmp_path)
    (tmp_path / "movies.csv").write_bytes(
        b"movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Caf\xe9 (2001),Drama\n"
    )
    with pytest.raises(DataError, match=r"movies\.csv, line 3: text is not valid UTF-8"):
        read_movielens(tmp_path)


def test_duplicate_movie_id(tmp_path: Path) -> None:
    write_csv_release(tmp_path, movies=MOVIES + "2,Other (2000),Drama\n")
    with pytest.raises(DataError, match=r"movies\.csv, line 4: duplicate movieId 2"):
        read_movielens(tmp_path)


# --- blank lines and empty files: lines are physical lines -------------------------------


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("1,1,4.0,100\n\n2,2,7.0,101\n", 4, "rating 7 is outside 0.5-5.0"),
        ("\n\n1,1,4.0,100\r\n\r\n2,2,3.0,101\n1,1,2.0,102\n", 7, "duplicate rating: user 1"),
        ("1,1,4.0,100\n\n\n2,99,3.0,101\n", 5, "rating of movie 99, which is not in the movies"),
        ("1,1,4.0,100\n\n2,2,abc,101\n", 4, "rating is not a number: 'abc'"),
        ("1,1,4.0,100\n  \n2,2,3.0,101\n", 3, "line of only whitespace"),
    ],
)
def test_lines_after_blank_lines_are_physical_lines(
    tmp_path: Path, body: str, line: int, problem: str
) -> None:
    write_csv_release(tmp_path, ratings="userId,movieId,rating,timestamp\n" + body)
    with pytest.raises(DataError, match=rf"ratings\.csv, line {line}: {problem}"):
        read_movielens(tmp_path)


def test_movies_csv_duplicate_after_blank_and_multiline_title(tmp_path: Path) -> None:
    movies = MOVIES + '\n3,"Two\nLines (2001)",Drama\n\n2,Other (2000),Drama\n'
    write_csv_release(tmp_path, movies=movies)
    with pytest.raises(DataError, match=r"movies\.csv, line 8: duplicate movieId 2"):
        read_movielens(tmp_path)


def test_dat_and_100k_lines_after_blank_lines(tmp_path: Path) -> None:
    dat = tmp_path / "dat"
    dat.mkdir()
    (dat / "ratings.dat").write_text("1::1::5::978300760\n\n2::1::9::978302109\n")
    (dat / "movies.dat").write_text("1::A (1995)::Drama\n\n\n1::B (1996)::Drama\n")
    with pytest.raises(DataError, match=r"movies\.dat, line 4: duplicate movieId 1"):
        read_movielens(dat)
    (dat / "movies.dat").write_text("1::A (1995)::Drama\n")
    with pytest.raises(DataError, match=r"ratings\.dat, line 3: rating 9 is outside"):
        read_movielens(dat)
    k100 = tmp_path / "100k"
    k100.mkdir()
    (k100 / "u.data").write_text("196\t1\t3\t881250949\n\t\n186\t1\t4\t891717742\n")
    (k100 / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join("0" * 19))
    with pytest.raises(DataError, match=r"u\.data, line 2: expected 4 fields, found 2"):
        read_movielens(k100)


@pytest.mark.parametrize("ratings", ["userId,movieId,rating,timestamp\n", RATINGS[:32] + "\n\n"])
def test_ratings_file_without_rows_is_an_error(tmp_path: Path, ratings: str) -> None:
    write_csv_release(tmp_path, ratings=ratings)
    with pytest.raises(DataError, match=r"ratings\.csv: no ratings: the file has no data rows"):
        read_movielens(tmp_path)
    (tmp_path / "ratings.csv").unlink()
    (tmp_path / "ratings.dat").write_text("")
    (tmp_path / "movies.dat").write_text("1::A (1995)::Drama\n")
    with pytest.raises(DataError, match=r"ratings\.dat: .*no data rows"):
        read_movielens(tmp_path)
