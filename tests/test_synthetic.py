"""The synthetic release must look exactly like the real files and carry learnable signal.

Everything here uses the ``tiny`` preset so the whole module runs in a second or two.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from duorec.data import synthetic
from duorec.data.imdb import IMDB_FILES
from duorec.data.synthetic import SIZES, SyntheticSpec, generate
from duorec.data.synthetic import release as synthetic_release

HEADERS = {
    "movielens/ratings.csv": "userId,movieId,rating,timestamp",
    "movielens/movies.csv": "movieId,title,genres",
    "movielens/links.csv": "movieId,imdbId,tmdbId",
    "imdb/title.basics.tsv": "tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\t"
    "startYear\tendYear\truntimeMinutes\tgenres",
    "imdb/title.ratings.tsv": "tconst\taverageRating\tnumVotes",
    "imdb/title.crew.tsv": "tconst\tdirectors\twriters",
    "imdb/title.principals.tsv": "tconst\tordering\tnconst\tcategory\tjob\tcharacters",
    "imdb/name.basics.tsv": "nconst\tprimaryName\tbirthYear\tdeathYear\tprimaryProfession\t"
    "knownForTitles",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("syn") / "tiny", "tiny", seed=0)


def _tsv(path: Path) -> pd.DataFrame:
    """Read an IMDb TSV the only correct way: no quoting, ``\\N`` is the one null."""
    return pd.read_csv(
        path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, na_values=["\\N"],
        keep_default_na=False,
    )  # fmt: skip


def _ratings(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "movielens" / "ratings.csv")


def test_files_exist_with_exact_headers(tiny: Path) -> None:
    for rel, header in HEADERS.items():
        with (tiny / rel).open(encoding="utf-8") as fh:
            assert fh.readline().rstrip("\n") == header, rel
    assert (tiny / "manifest.json").is_file()


def test_writes_exactly_the_files_the_readers_read(tiny: Path) -> None:
    """Every required IMDb file, the three MovieLens files, nothing else (no tags.csv)."""
    written = {str(p.relative_to(tiny)) for p in tiny.rglob("*") if p.is_file()}
    imdb = {f"imdb/{name}.tsv" for name in IMDB_FILES}
    movielens = {f"movielens/{name}.csv" for name in ("ratings", "movies", "links")}
    assert written == imdb | movielens | {"manifest.json"}
    assert set(HEADERS) == imdb | movielens


def test_same_seed_same_bytes_other_seed_differs(tiny: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", "tiny", seed=0)
    other = generate(tmp_path / "other", "tiny", seed=1)
    for rel in [*HEADERS, "manifest.json"]:
        assert (again / rel).read_bytes() == (tiny / rel).read_bytes(), rel
    assert (other / "movielens/ratings.csv").read_bytes() != (
        tiny / "movielens/ratings.csv"
    ).read_bytes()


def test_ratings_half_stars_unique_pairs_min_count(tiny: Path) -> None:
    r = _ratings(tiny)
    text = (tiny / "movielens/ratings.csv").read_text().splitlines()[1:]
    assert all(re.fullmatch(r"\d+,\d+,[0-5]\.[05],\d{9,10}", line) for line in text)
    assert r["rating"].between(0.5, 5.0).all()
    assert ((r["rating"] * 2) % 1 == 0).all()
    assert not r.duplicated(["userId", "movieId"]).any()
    spec = SyntheticSpec.from_size("tiny")
    per_user = r.groupby("userId").size()
    assert len(per_user) == spec.n_users and len(r) == spec.n_ratings
    assert per_user.min() >= spec.min_ratings_per_user
    # MovieLens order: by user, then movie.
    assert r.sort_values(["userId", "movieId"]).index.equals(r.index)
    movies = pd.read_csv(tiny / "movielens/movies.csv")
    assert set(r["movieId"]) <= set(movies["movieId"])


def test_movie_titles_and_genres(tiny: Path) -> None:
    movies = pd.read_csv(tiny / "movielens/movies.csv")
    parsed = movies["title"].str.match(r"^(.*) \((\d{4})\)$")
    assert parsed.mean() > 0.9
    assert movies["title"].str.contains(", The (", regex=False).any()
    assert movies["movieId"].is_monotonic_increasing and movies["movieId"].is_unique
    names = movies["title"].str.extract(r"^(.*) \((\d{4})\)$")
    assert names.dropna().duplicated(0).any(), "some title is reused in another year"
    assert not names.dropna().duplicated([0, 1]).any()
    genres = set("|".join(movies["genres"]).split("|")) - {synthetic.NO_GENRES}
    assert genres <= set(synthetic.ML_GENRES)
    raw = (tiny / "movielens/movies.csv").read_text(encoding="utf-8")
    assert re.search(r'^\d+,".*, The.*\(\d{4}\)",', raw, re.M), "commas force CSV quoting"


def test_links_oddities(tiny: Path) -> None:
    links = pd.read_csv(tiny / "movielens/links.csv", dtype=str, keep_default_na=False)
    movies = pd.read_csv(tiny / "movielens/movies.csv", dtype={"movieId": str})
    ids = links["imdbId"][links["imdbId"] != ""]
    assert ids.str.fullmatch(r"\d{7}").all()
    assert (links["imdbId"] == "").any(), "some links have an empty imdbId"
    assert len(links) < len(movies), "some movies have no links row"
    basics = _tsv(tiny / "imdb/title.basics.tsv")
    assert basics["tconst"].str.fullmatch(r"tt\d{7}").all()
    assert basics["tconst"].is_monotonic_increasing
    linked = "tt" + ids
    assert (~linked.isin(basics["tconst"])).any(), "some links dangle"
    assert linked.isin(basics["tconst"]).mean() > 0.8
    # Article inversion: MovieLens "X, The (Y)" is IMDb "The X".
    movies = movies.merge(links, on="movieId")
    movies["tconst"] = "tt" + movies["imdbId"]
    m = movies.merge(basics, on="tconst")
    inv = m[m["title"].str.contains(", The (", regex=False)]
    assert len(inv) and inv["primaryTitle"].str.startswith("The ").all()
    # A tvSeries shares some movie's title.
    series = basics[basics["titleType"] == "tvSeries"]
    assert series["primaryTitle"].isin(m.loc[m["titleType"] == "movie", "primaryTitle"]).any()


def test_tsvs_use_backslash_n_and_no_quoting(tiny: Path) -> None:
    for rel in HEADERS:
        if not rel.endswith(".tsv"):
            continue
        lines = (tiny / rel).read_text(encoding="utf-8").splitlines()
        width = lines[0].count("\t")
        assert all(line.count("\t") == width for line in lines), rel
        fields = [f for line in lines for f in line.split("\t")]
        # Never CSV-quoted: no field wrapped in quotes, no doubled quotes; raw quotes are fine.
        assert not any(len(f) > 1 and f[0] == f[-1] == '"' for f in fields), rel
        assert not any('""' in f for f in fields), rel
        assert "\t\t" not in "\n".join(lines) and not any(x.endswith("\t") for x in lines)
    assert "\\N" in (tiny / "imdb/title.basics.tsv").read_text()
    assert "\\N" in (tiny / "imdb/name.basics.tsv").read_text()
    basics = _tsv(tiny / "imdb/title.basics.tsv")
    assert basics["primaryTitle"].str.contains('"').any(), "raw quotes survive, unescaped"
    principals = _tsv(tiny / "imdb/title.principals.tsv")
    chars = principals["characters"].dropna()
    assert len(chars) and chars.str.fullmatch(r'\["[^"]+"\]').all()
    names = _tsv(tiny / "imdb/name.basics.tsv")
    assert names["nconst"].str.fullmatch(r"nm\d{7}").all()
    assert principals["nconst"].isin(names["nconst"]).all()


def test_manifest_oracle_beats_global_mean(tiny: Path) -> None:
    man = json.loads((tiny / "manifest.json").read_text())
    assert man["seed"] == 0 and man["rating_range"] == [0.5, 5.0]
    assert man["spec"]["n_users"] == SIZES["tiny"]["n_users"]
    r = _ratings(tiny)["rating"].to_numpy()
    gm_rmse = float(np.sqrt(np.mean((r - r.mean()) ** 2)))
    assert man["global_mean_rmse"] == pytest.approx(gm_rmse, rel=1e-6)
    for key in ("oracle_rating_rmse", "oracle_pair_rmse", "oracle_pair_rmse_min",
                "oracle_pair_rmse_max"):  # fmt: skip
        assert 0 < man[key] < 1.0, key
    assert man["oracle_rating_rmse"] < 0.7 * gm_rmse
    assert man["oracle_pair_rmse"] < 0.7 * man["global_mean_pair_rmse"]
    assert man["counts"]["ratings"] == len(r)


def test_people_effects_are_informative(tiny: Path) -> None:
    """IMDb rating (planted from movie quality) correlates with the movies' mean rating."""
    r = _ratings(tiny)
    links = pd.read_csv(tiny / "movielens/links.csv", dtype=str, keep_default_na=False)
    imdb = _tsv(tiny / "imdb/title.ratings.tsv")
    links["tconst"] = "tt" + links["imdbId"]
    m = links.merge(imdb, on="tconst")
    m["movieId"] = m["movieId"].astype(int)
    mean = r.groupby("movieId")["rating"].mean().rename("ml_mean")
    m = m.join(mean, on="movieId").dropna()
    assert np.corrcoef(m["averageRating"].astype(float), m["ml_mean"])[0, 1] > 0.3


def test_atomic_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> int:
        raise RuntimeError("interrupted mid-write")

    monkeypatch.setattr(synthetic_release, "write_imdb_and_links", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate(tmp_path / "out", "tiny", seed=0)
    assert list(tmp_path.iterdir()) == []


def test_spec_presets_and_validation() -> None:
    assert {"tiny", "small", "medium", "ml32m"} <= set(SIZES)
    spec = SyntheticSpec.from_size("small", noise_sd=0.3)
    assert spec.noise_sd == 0.3 and spec.n_users == SIZES["small"]["n_users"]
    big = SyntheticSpec.from_size("ml32m")
    assert (big.n_users, big.n_movies, big.n_ratings) == (200_000, 87_000, 32_000_000)
    with pytest.raises(ValueError, match="unknown synthetic size"):
        SyntheticSpec.from_size("huge")
    with pytest.raises(ValueError, match="unknown SyntheticSpec fields"):
        SyntheticSpec.from_size("tiny", n_userz=3)
    with pytest.raises(ValueError, match="n_ratings"):
        SyntheticSpec.from_size("tiny", n_ratings=10)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert synthetic.main(["--size", "tiny", "--seed", "3", "--out", str(out),
                           "--set", "n_users=60"]) == 0  # fmt: skip
    assert json.loads((out / "manifest.json").read_text())["counts"]["users"] == 60
    assert '"oracle_rating_rmse"' in capsys.readouterr().out
