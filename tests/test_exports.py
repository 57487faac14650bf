"""A person's ratings from their own export files, matched to a small MovieLens-style catalogue.

The files are written here in the real formats (both IMDb header variants, Letterboxd
ratings.csv and watched.csv, plain CSV), with the oddities real exports have: titles with
commas in quotes, accents, TV series and episodes, films the data set does not hold.
"""

# ruff: noqa: E501 (the export files are quoted verbatim, one long CSV row per line)

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import compose_config

from duorec.cli import UsageError
from duorec.data.errors import DataError
from duorec.data.exports import CatalogMatcher, ReadLimits, read_people, read_person
from duorec.data.features import Features
from duorec.data.prepared import PreparedDataset
from duorec.recommend import parse_request

# MovieLens writes "Matrix, The" and alternates in parentheses; the exports write "The Matrix"
CATALOG = [
    (1, "Matrix, The", 1999, "Action|Sci-Fi", "tt0133093"),
    (2, "Amelie (Fabuleux destin d'Amélie Poulain, Le)", 2001, "Comedy|Romance", "tt0211915"),
    (3, "O Brother, Where Art Thou?", 2000, "Adventure|Comedy", "tt0190590"),
    (4, "Léon: The Professional (a.k.a. The Professional) (Léon)", 1994, "Crime", "tt0110413"),
    (5, "Toy Story", 1995, "Animation|Children", "tt0114709"),
    (6, "Seven (a.k.a. Se7en)", 1995, "Crime|Thriller", "tt0114369"),
    (7, "Shining, The", 1980, "Horror", None),  # no IMDb link: only its title can match
    (8, "Godfather, The", 1972, "Crime|Drama", "tt0068646"),
]


def small_dataset() -> PreparedDataset:
    catalog = pd.DataFrame(CATALOG, columns=["movieId", "title", "year", "genres", "tconst"])
    catalog["tconst"] = catalog["tconst"].astype("string")
    ratings = pd.DataFrame(
        {
            "user": np.array([0, 0, 1], dtype=np.int32),
            "movie": np.array([0, 1, 2], dtype=np.int32),
            "rating": np.array([4.0, 3.0, 5.0], dtype=np.float32),
            "timestamp": np.zeros(3, dtype=np.int64),
            "split": np.zeros(3, dtype=np.int8),
        }
    )
    empty = np.zeros((2, 0), dtype=np.float32)
    features = Features(
        empty, [], np.zeros((8, 0), np.float32), [], np.zeros(9, np.int64), np.zeros(0), [], 4.0
    )
    manifest = {"name": "hand-made", "rating_range": [0.5, 5.0]}
    return PreparedDataset(ratings, np.array([10, 11]), catalog, features, manifest)


@pytest.fixture(scope="module")
def matcher() -> CatalogMatcher:
    return CatalogMatcher(small_dataset())


IMDB_NEW = """\
Const,Your Rating,Date Rated,Title,Original Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors
tt0133093,10,2023-01-14,The Matrix,The Matrix,https://www.imdb.com/title/tt0133093/,Movie,8.7,136,1999,"Action, Sci-Fi",2100000,1999-03-31,"Lana Wachowski, Lilly Wachowski"
tt0211915,7,2023-01-15,Amélie,Le fabuleux destin d'Amélie Poulain,https://www.imdb.com/title/tt0211915/,Movie,8.3,122,2001,"Comedy, Romance",800000,2001-04-25,Jean-Pierre Jeunet
tt0903747,10,2023-01-16,Breaking Bad,Breaking Bad,https://www.imdb.com/title/tt0903747/,TV Series,9.5,49,2008,"Crime, Drama",2100000,2008-01-20,
tt0081505,1,2023-01-17,The Shining,The Shining,https://www.imdb.com/title/tt0081505/,Movie,8.4,146,1980,"Drama, Horror",1100000,1980-05-23,Stanley Kubrick
tt9999998,6,2023-01-18,"Snow, Rain, and Other Weather",,https://www.imdb.com/title/tt9999998/,Movie,6.1,95,2024,Drama,1200,2024-03-01,Nobody Known
tt0114369,9,2023-01-19,Se7en,Se7en,https://www.imdb.com/title/tt0114369/,Movie,8.6,127,1995,"Crime, Drama, Mystery",1800000,1995-09-22,David Fincher
"""

IMDB_OLD = """\
Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors
tt9000001,8,2019-05-04,"O Brother, Where Art Thou?",https://www.imdb.com/title/tt9000001/,movie,7.7,107,2000,"Adventure, Comedy, Crime",320000,2000-12-22,"Joel Coen, Ethan Coen"
tt9000002,9,2019-05-05,Léon: The Professional,https://www.imdb.com/title/tt9000002/,movie,8.5,110,1995,"Action, Crime",1200000,1994-09-14,Luc Besson
tt0959621,10,2019-05-06,Pilot,https://www.imdb.com/title/tt0959621/,tvEpisode,8.2,58,2008,"Crime, Drama",40000,2008-01-20,Vince Gilligan
tt0068646,10,2019-05-07,The Godfather,https://www.imdb.com/title/tt0068646/,movie,9.2,175,1972,"Crime, Drama",2000000,1972-03-24,Francis Ford Coppola
"""

LETTERBOXD_RATINGS = """\
Date,Name,Year,Letterboxd URI,Rating
2022-11-02,Toy Story,1995,https://boxd.it/2a1m,4.5
2022-12-03,"O Brother, Where Art Thou?",2000,https://boxd.it/2a7k,4
2023-01-07,The Matrix,1999,https://boxd.it/2a2k,0.5
2023-01-08,Not A Real Film,2010,https://boxd.it/zzzz,2
"""

LETTERBOXD_WATCHED = """\
Date,Name,Year,Letterboxd URI
2022-10-01,The Godfather,1972,https://boxd.it/2aAa
2022-10-02,Amélie,2001,https://boxd.it/2aHu
2022-10-03,Nope,1999,https://boxd.it/zz1
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def movie_ids(person, which: str = "movies") -> list[int]:
    return sorted(int(CATALOG[m][0]) for m in getattr(person, which))


def test_imdb_export_with_original_title(tmp_path: Path, matcher: CatalogMatcher) -> None:
    person = read_person(write(tmp_path, "alice.csv", IMDB_NEW), matcher)
    assert person.format == "imdb" and person.label == "alice"
    assert (person.rows, person.skipped) == (6, 1)  # Breaking Bad is a TV series
    # The Shining's tconst is not linked in the data set: its title and year find it
    assert dict(person.matched) == {"tconst": 3, "title_year": 1}
    assert person.unmatched == ["Snow, Rain, and Other Weather (2024)"]
    assert movie_ids(person) == [1, 2, 6, 7]
    # 1..10 onto 0.5..5: 10 -> 5, 7 -> 3.5, 1 -> 0.5
    by_id = {CATALOG[m][0]: float(r) for m, r in zip(person.movies, person.ratings, strict=True)}
    assert by_id == {1: 5.0, 2: 3.5, 7: 0.5, 6: 4.5}
    assert "4 of 5 films matched" in person.report()
    assert "1 TV series/episodes skipped" in person.report()


def test_imdb_export_without_original_title(tmp_path: Path, matcher: CatalogMatcher) -> None:
    person = read_person(write(tmp_path, "bob.csv", IMDB_OLD), matcher)
    assert (person.rows, person.skipped) == (4, 1)  # the tvEpisode
    # unknown tconsts fall back to the title: a quoted title with a comma, and a festival
    # year one off the MovieLens year
    assert dict(person.matched) == {"tconst": 1, "title_year": 1, "title_year_pm1": 1}
    assert person.unmatched == []
    assert movie_ids(person) == [3, 4, 8]


def test_letterboxd_ratings_and_watched(tmp_path: Path, matcher: CatalogMatcher) -> None:
    rated = read_person(write(tmp_path, "ratings.csv", LETTERBOXD_RATINGS), matcher)
    assert rated.format == "letterboxd_ratings"
    assert dict(rated.matched) == {"title_year": 3}
    assert rated.unmatched == ["Not A Real Film (2010)"]
    assert movie_ids(rated) == [1, 3, 5]
    assert sorted(rated.ratings.tolist()) == [0.5, 4.0, 4.5]  # stars are the data set's scale

    watched = read_person(write(tmp_path, "watched.csv", LETTERBOXD_WATCHED), matcher)
    assert watched.format == "letterboxd_watched"
    assert dict(watched.matched) == {"title_year": 2}
    assert watched.unmatched == ["Nope (1999)"]
    assert len(watched.movies) == 0  # seen, never rated
    assert movie_ids(watched, "watched") == [2, 8]
    assert sorted(CATALOG[m][0] for m in watched.seen) == [2, 8]


# watched.csv lists every film seen, rated ones included (The Matrix here)
LETTERBOXD_WATCHED_ALL = LETTERBOXD_WATCHED + "2023-01-07,The Matrix,1999,https://boxd.it/2a2k\n"


def export_folder(root: Path) -> Path:
    """A Letterboxd export as it unzips: a folder of files, some not about taste."""
    folder = root / "letterboxd-alice-2026-11-28"
    folder.mkdir()
    write(folder, "ratings.csv", LETTERBOXD_RATINGS)
    write(folder, "watched.csv", LETTERBOXD_WATCHED_ALL)
    write(folder, "watchlist.csv", "Date,Name,Year,Letterboxd URI\n2023-01-01,Seven,1995,x\n")
    return folder


def check_export(person) -> None:
    assert person.format == "letterboxd_export"
    assert [p.format for p in person.parts] == ["letterboxd_ratings", "letterboxd_watched"]
    assert [dict(p.matched) for p in person.parts] == [{"title_year": 3}, {"title_year": 3}]
    assert person.unmatched == ["Not A Real Film (2010)", "Nope (1999)"]
    assert movie_ids(person) == [1, 3, 5]  # rated: ratings.csv
    assert sorted(person.ratings.tolist()) == [0.5, 4.0, 4.5]
    assert movie_ids(person, "watched") == [2, 8]  # seen, not rated; the watchlist is not seen
    assert sorted(CATALOG[m][0] for m in person.seen) == [1, 2, 3, 5, 8]
    report = person.report()
    assert "5 films seen, 3 of them rated" in report and "Nope (1999)" in report


def test_a_letterboxd_export_folder_is_one_person(tmp_path: Path, matcher: CatalogMatcher) -> None:
    check_export(read_person(export_folder(tmp_path), matcher, "alice"))


def test_a_letterboxd_export_zip_is_one_person(tmp_path: Path, matcher: CatalogMatcher) -> None:
    import shutil

    folder = export_folder(tmp_path)
    archive = shutil.make_archive(str(tmp_path / "letterboxd"), "zip", folder)
    check_export(read_person(archive, matcher, "alice"))


def test_a_folder_without_letterboxd_files_is_refused(
    tmp_path: Path, matcher: CatalogMatcher
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DataError, match=r"empty: a folder or zip needs a Letterboxd ratings.csv or watched.csv"
    ):
        read_person(tmp_path / "empty", matcher)


@pytest.mark.parametrize(
    ("text", "rule", "ids"),
    [
        ("movieId,rating\n1,4\n5,3.5\n99,2\n", "movieId", [1, 5]),
        ("tconst,rating\ntt0133093,4\ntt0114709,3.5\ntt0000001,2\n", "tconst", [1, 5]),
        ('title,year,rating\n"Matrix, The",1999,4\nToy Story,1995,3.5\nNope,2001,2\n',
         "title_year", [1, 5]),
    ],
)  # fmt: skip
def test_plain_csv(
    tmp_path: Path, matcher: CatalogMatcher, text: str, rule: str, ids: list[int]
) -> None:
    person = read_person(write(tmp_path, "me.csv", text), matcher)
    assert person.format == "plain"
    assert dict(person.matched) == {rule: 2}
    assert len(person.unmatched) == 1
    assert movie_ids(person) == ids
    assert sorted(person.ratings.tolist()) == [3.5, 4.0]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["empty file"]),
        ("\n\n", ["empty file"]),
        ("foo,bar\n1,2\n", ["unrecognised header 'foo,bar'", "IMDb", "Letterboxd"]),
        ("Const,Your Rating,Title,Year\ntt0133093,9,The Matrix,1999\ntt0114369,11,Se7en,1995\n",
         ["line 3", "rating '11' out of range", "1 to 10"]),
        ("movieId,rating\n1,4\n5,7\n", ["line 3", "rating '7' out of range", "0.5 to 5"]),
        ("Date,Name,Year,Letterboxd URI,Rating\n2022-01-01,Toy Story,1995,x,five\n",
         ["line 2", "rating 'five'"]),
        ("movieId,rating\n", ["no movies"]),
        ("title,year,rating\nNope,2001,3\nNot Either,1990,4\n",
         ["none of its 2 films is in the data set 'hand-made'", "Nope (2001)"]),
    ],
)  # fmt: skip
def test_bad_files_are_one_line_errors_naming_the_file(
    tmp_path: Path, matcher: CatalogMatcher, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError) as caught:
        read_person(path, matcher)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_every_file_is_read_even_after_a_bad_one(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", "foo,bar\n")
    good = write(tmp_path, "good.csv", LETTERBOXD_RATINGS)
    people, errors = read_people([bad, good], small_dataset())
    assert people[0] is None and people[1] is not None
    assert sum(people[1].matched.values()) == 3
    assert [e.path for e in errors] == [str(bad)]


def test_a_movie_listed_twice_counts_once_with_its_last_rating(
    tmp_path: Path, matcher: CatalogMatcher
) -> None:
    person = read_person(write(tmp_path, "me.csv", "movieId,rating\n1,2\n1,4.5\n5,3\n"), matcher)
    assert dict(person.matched) == {"movieId": 2}
    ratings = {CATALOG[m][0]: float(r) for m, r in zip(person.movies, person.ratings, strict=True)}
    assert ratings == {1: 4.5, 5: 3.0}


# ---------------------------------------------------------------------------- bounds


def one_line_error(path, matcher: CatalogMatcher, limits: ReadLimits | None = None) -> str:
    with pytest.raises(DataError) as caught:
        read_person(path, matcher, **({"limits": limits} if limits else {}))
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def zip_of(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(zipfile.ZipInfo(name), text)
    return path


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 MB of zip whose ratings.csv unzips to 1.2 GB of real rows, written in chunks (~2 s)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    line = b"2022-11-02,Toy Story,1995,https://boxd.it/2a1m,4.5\n"
    chunk = line * (2**20 // len(line) + 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("ratings.csv", "w", force_zip64=True) as member:
            member.write(LETTERBOXD_RATINGS.encode())
            for _ in range(1200):
                member.write(chunk)
    assert path.stat().st_size < 10 * 2**20
    return path


# run in a child so its peak memory is its own; the address space is capped at 3 GB so that
# reading the whole member (7 GB, the old behaviour) fails fast instead of taking the machine
BOMB_CHILD = """
import json, re, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
from duorec.data.errors import DataError
from duorec.data.exports import read_person
try:
    read_person(sys.argv[1], matcher=None)  # refused (or out of memory) before any matching
    error = None
except DataError as err:
    error = str(err)
# the high-water mark of this program's memory (ru_maxrss would count the parent's too: Linux
# carries it over the exec that started this one)
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) / 1024
print(json.dumps({"error": error, "peak_mb": peak}))
"""


def test_a_zip_bomb_is_refused_in_one_line_in_bounded_memory(zip_bomb: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BOMB_CHILD, str(zip_bomb)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] == (
        f"{zip_bomb}: ratings.csv unzips to more than 50 MB "
        "(people_limits.max_unzipped_mb=50): refused"
    )
    print(f"zip bomb child peak memory: {result['peak_mb']:.0f} MB")
    assert result["peak_mb"] < 1024, result


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, matcher: CatalogMatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as file:
        file.truncate(200 * 2**20)  # sparse: 200 MB long, nothing written to disk
    opened = Path.open

    def refuse_to_open(self: Path, *args, **kwargs):
        assert self != big, "the file was opened"
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse_to_open)
    assert one_line_error(big, matcher) == (
        f"{big}: the file is 200.0 MB, more than 50 MB (people_limits.max_file_mb=50): refused"
    )
    small = write(tmp_path, "small.csv", LETTERBOXD_RATINGS)  # 190 bytes
    message = one_line_error(small, matcher, ReadLimits(max_file_mb=0.0001))
    assert message.endswith("more than 0.0001 MB (people_limits.max_file_mb=0.0001): refused")


def test_zip_members_are_unzipped_within_the_limit_each_and_together(
    tmp_path: Path, matcher: CatalogMatcher
) -> None:
    rows = LETTERBOXD_RATINGS + "2022-11-02,Toy Story,1995,https://boxd.it/2a1m,4.5\n" * 1400
    watched = LETTERBOXD_WATCHED + "2022-10-01,The Godfather,1972,https://boxd.it/2aAa\n" * 800
    assert 0.05 * 2**20 < len(rows) < 0.1 * 2**20 < len(rows) + len(watched)
    limits = ReadLimits(max_unzipped_mb=0.05)
    alone = zip_of(tmp_path / "alone.zip", {"ratings.csv": rows})
    assert one_line_error(alone, matcher, limits) == (
        f"{alone}: ratings.csv unzips to more than 0.05 MB "
        "(people_limits.max_unzipped_mb=0.05): refused"
    )
    both = zip_of(tmp_path / "both.zip", {"x/ratings.csv": rows, "x/watched.csv": watched})
    assert one_line_error(both, matcher, ReadLimits(max_unzipped_mb=0.1)) == (
        f"{both}: x/ratings.csv and x/watched.csv unzip to more than 0.1 MB "
        "(people_limits.max_unzipped_mb=0.1): refused"
    )
    person = read_person(both, matcher, limits=ReadLimits(max_unzipped_mb=0.2))
    assert movie_ids(person) == [1, 3, 5]
    # a zip that understates a member's size is unzipped only as far as it claims, then
    # refused: what it holds beyond that is never read
    liar = tmp_path / "liar.zip"
    content = bytearray(alone.read_bytes())
    entry = content.index(b"PK\x01\x02")  # its directory entry: the size is at +24
    content[entry + 24 : entry + 28] = (100).to_bytes(4, "little")
    liar.write_bytes(content)
    message = one_line_error(liar, matcher, limits)
    assert message.startswith(f"{liar}: cannot read the zip: Bad CRC-32"), message
    # a zip's whole directory is parsed: one listing too many files is refused before that
    many = zip_of(tmp_path / "many.zip", {f"lists/{i}.csv": "" for i in range(11)})
    assert one_line_error(many, matcher, ReadLimits(max_zip_members=10)) == (
        f"{many}: the zip holds more than 10 files (people_limits.max_zip_members=10): refused"
    )


@pytest.mark.parametrize(
    "member",
    [
        "/tmp/x/watched.csv",
        "../watched.csv",
        "export/../../watched.csv",
        "..\\watched.csv",
        "\\tmp\\watched.csv",
        "C:\\Users\\x\\watched.csv",
        "notes/../../../etc/passwd",  # not an export file at all: the zip is still not one
    ],
)
def test_zip_members_named_outside_the_export_are_refused(
    tmp_path: Path, matcher: CatalogMatcher, member: str
) -> None:
    archive = zip_of(
        tmp_path / "export.zip", {"ratings.csv": LETTERBOXD_RATINGS, member: LETTERBOXD_WATCHED}
    )
    message = one_line_error(archive, matcher)
    assert message.startswith(f"{archive}: member {member!r} is named outside the export")
    assert message.endswith(": refused")


def test_a_folder_export_does_not_follow_links_out_of_it(
    tmp_path: Path, matcher: CatalogMatcher
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = write(outside, "watched.csv", LETTERBOXD_WATCHED)
    folder = tmp_path / "export"
    folder.mkdir()
    write(folder, "ratings.csv", LETTERBOXD_RATINGS)
    (folder / "watched.csv").symlink_to(secret)
    message = one_line_error(folder, matcher)
    link = folder / "watched.csv"
    assert message == f"{link}: links to {secret}, outside the export folder: refused"
    (folder / "watched.csv").unlink()
    (folder / "watched.csv").symlink_to(folder / "ratings.csv")  # inside: fine
    assert movie_ids(read_person(folder, matcher)) == [1, 3, 5]


def test_utf16_latin1_and_bom_files_read_as_utf8_does(
    tmp_path: Path, matcher: CatalogMatcher
) -> None:
    """Excel and Notepad save UTF-16 ("Unicode") and Windows-1252 ("ANSI"): the same export."""

    def read(name: str, content: bytes):
        path = tmp_path / name
        path.write_bytes(content)
        person = read_person(path, matcher)
        return dict(person.matched), person.unmatched, movie_ids(person), person.ratings.tolist()

    text = IMDB_NEW.replace("Snow, Rain", "Snów, Rain")  # an accent in an unmatched title too
    expected = read("utf8.csv", text.encode("utf-8"))
    assert expected[1] == ["Snów, Rain, and Other Weather (2024)"]
    for name, content in [
        ("bom.csv", codecs.BOM_UTF8 + text.encode("utf-8")),
        ("utf16le.csv", text.encode("utf-16")),  # with its byte order mark
        ("utf16be.csv", codecs.BOM_UTF16_BE + text.encode("utf-16-be")),
        ("latin1.csv", text.encode("latin-1")),
        ("crlf.csv", text.replace("\n", "\r\n").encode("cp1252")),
    ]:
        assert read(name, content) == expected, name
    # Windows-1252's curly quote, where Latin-1 has a control code
    curly = LETTERBOXD_RATINGS.replace("Not A Real Film", "Schindler’s Film")
    assert read("ansi.csv", curly.encode("cp1252"))[1] == ["Schindler’s Film (2010)"]
    nul = tmp_path / "nomark.csv"
    nul.write_bytes(text.encode("utf-16-le"))
    assert "byte order mark" in one_line_error(nul, matcher)


def test_the_cli_takes_an_export_folder(tmp_path: Path) -> None:
    """README: `people=[...]` takes "the whole export, zip or folder"; a folder was refused as
    'file not found' before the model was loaded."""
    folder = export_folder(tmp_path)
    other = write(tmp_path, "bob.csv", LETTERBOXD_RATINGS)
    request = parse_request(compose_config("recommend", [f"people=[{folder},{other}]"], tmp_path))
    assert request.people == [folder, other]
    people, errors = read_people(request.people, small_dataset())  # what run_people reads
    assert not errors and people[0] is not None
    check_export(people[0])


def test_the_cli_takes_the_read_limits(tmp_path: Path) -> None:
    other = write(tmp_path, "bob.csv", LETTERBOXD_RATINGS)
    args = [f"people=[{other},{other}]", "people_limits.max_unzipped_mb=5"]
    request = parse_request(compose_config("recommend", args, tmp_path))
    assert request.people_limits == ReadLimits(max_file_mb=50, max_unzipped_mb=5)
    for bad, expected in [
        ("max_file_mb=0", "a number > 0 (MB)"),
        ("max_zip_members=2.5", "an integer >= 1"),
    ]:
        overrides = [*args, f"people_limits.{bad}"]
        with pytest.raises(UsageError) as caught:
            parse_request(compose_config("recommend", overrides, tmp_path))
        assert str(caught.value) == f"people_limits.{bad} is not allowed: expected {expected}"
