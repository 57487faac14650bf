"""Prepared dataset: the synthetic path end to end, cache reuse and invalidation, no leaks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config

from duorec.data.build import build_dataset, prepare_dataset
from duorec.data.errors import DataError
from duorec.data.split import TEST, TRAIN, VAL, split_ratings


def tiny_data_cfg(tmp_path: Path, *extra: str):
    return compose_config("prepare", ["data.synthetic.size=tiny", *extra], tmp_path).data


def test_synthetic_data_goes_through_the_real_readers(tmp_path: Path) -> None:
    cfg = tiny_data_cfg(tmp_path)
    prepared = prepare_dataset(cfg, tmp_path / "cache")
    ds = prepared.dataset
    assert not prepared.from_cache
    assert ds.manifest["layout"] == "csv"  # read back as a MovieLens CSV release
    report = ds.manifest["merge_report"]
    assert report["movies_total"] == ds.n_movies
    assert 0.5 < report["movies_matched"] / ds.n_movies <= 1.0
    assert report["matched_by_rule"]["imdb_id"] > 0
    assert ds.features.user.shape == (ds.n_users, len(ds.features.user_names))
    assert ds.features.movie.shape == (ds.n_movies, len(ds.features.movie_names))
    assert len(ds.features.people_vocab) > 0
    assert np.isfinite(ds.features.user).all() and np.isfinite(ds.features.movie).all()
    assert "oracle_pair_rmse" in ds.manifest["synthetic"]


def test_second_run_loads_from_cache_and_changed_input_rebuilds(tmp_path: Path) -> None:
    cfg = tiny_data_cfg(tmp_path)
    first = prepare_dataset(cfg, tmp_path / "cache")
    second = prepare_dataset(cfg, tmp_path / "cache")
    assert second.from_cache and second.folder == first.folder
    assert second.dataset.ratings.equals(first.dataset.ratings)

    # a real-data config pointing at the generated files: touching one rebuilds
    src = tmp_path / "cache" / "synthetic" / "tiny-seed0"
    ml_dir = tmp_path / "ml"
    shutil.copytree(src / "movielens", ml_dir)
    real = tiny_data_cfg(
        tmp_path, "data=movielens", f"data.movielens_dir={ml_dir}", f"data.imdb_dir={src / 'imdb'}"
    )
    a = prepare_dataset(real, tmp_path / "cache")
    assert prepare_dataset(real, tmp_path / "cache").from_cache
    ratings = ml_dir / "ratings.csv"
    ratings.write_text(ratings.read_text().replace("\n", "\n", 1))
    os.utime(ratings, ns=(ratings.stat().st_atime_ns, ratings.stat().st_mtime_ns + 10**9))
    b = prepare_dataset(real, tmp_path / "cache")
    assert not b.from_cache and b.folder != a.folder
    # a different split seed is a different data set too
    c = prepare_dataset(tiny_data_cfg(tmp_path, "seed=1"), tmp_path / "cache")
    assert not c.from_cache and c.folder != first.folder


def test_interrupted_build_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_data_cfg(tmp_path)
    prepare_dataset(cfg, tmp_path / "cache")  # generate sources once
    shutil.rmtree(tmp_path / "cache" / "prepared")

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pandas.DataFrame.to_parquet", explode)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(cfg, tmp_path / "cache")
    assert list((tmp_path / "cache" / "prepared").iterdir()) == []
    monkeypatch.undo()
    assert not prepare_dataset(cfg, tmp_path / "cache").from_cache


def test_changing_a_test_rating_changes_no_feature(tmp_path: Path) -> None:
    cfg = tiny_data_cfg(tmp_path)
    prepare_dataset(cfg, tmp_path / "cache")
    src = tmp_path / "cache" / "synthetic" / "tiny-seed0"
    base = build_dataset(cfg, src / "movielens", src / "imdb")
    test_rows = np.flatnonzero(base.ratings["split"].to_numpy() == TEST)

    # rewrite every test rating in the raw file: 5.0 <-> 0.5 flips means if they leaked
    edited = tmp_path / "edited"
    shutil.copytree(src / "movielens", edited)
    lines = (edited / "ratings.csv").read_text().splitlines()
    for row in test_rows:
        user, movie, rating, stamp = lines[row + 1].split(",")
        lines[row + 1] = ",".join([user, movie, "0.5" if float(rating) > 2.5 else "5.0", stamp])
    (edited / "ratings.csv").write_text("\n".join(lines) + "\n")
    changed = build_dataset(cfg, edited, src / "imdb")

    assert not np.array_equal(changed.ratings["rating"], base.ratings["rating"])
    np.testing.assert_array_equal(changed.ratings["split"], base.ratings["split"])
    np.testing.assert_array_equal(changed.features.user, base.features.user)
    np.testing.assert_array_equal(changed.features.movie, base.features.movie)
    assert changed.features.global_mean == base.features.global_mean


def test_train_ratings_do_change_features(tmp_path: Path) -> None:
    """The leak test above could pass trivially if features ignored ratings altogether."""
    cfg = tiny_data_cfg(tmp_path)
    prepare_dataset(cfg, tmp_path / "cache")
    src = tmp_path / "cache" / "synthetic" / "tiny-seed0"
    base = build_dataset(cfg, src / "movielens", src / "imdb")
    row = int(np.flatnonzero(base.ratings["split"].to_numpy() == TRAIN)[0])
    edited = tmp_path / "edited"
    shutil.copytree(src / "movielens", edited)
    lines = (edited / "ratings.csv").read_text().splitlines()
    user, movie, rating, stamp = lines[row + 1].split(",")
    lines[row + 1] = ",".join([user, movie, "0.5" if float(rating) > 2.5 else "5.0", stamp])
    (edited / "ratings.csv").write_text("\n".join(lines) + "\n")
    changed = build_dataset(cfg, edited, src / "imdb")
    assert not np.array_equal(changed.features.user, base.features.user)


def test_split_fractions_methods_and_errors() -> None:
    codes = split_ratings(1000, (0.8, 0.1, 0.1), seed=0)
    assert np.bincount(codes).tolist() == [800, 100, 100]
    assert np.array_equal(codes, split_ratings(1000, (0.8, 0.1, 0.1), seed=0))
    assert not np.array_equal(codes, split_ratings(1000, (0.8, 0.1, 0.1), seed=1))
    stamps = np.arange(1000)[::-1]  # newest first
    temporal = split_ratings(1000, (0.8, 0.1, 0.1), method="temporal", timestamps=stamps)
    assert (temporal[:100] == TEST).all() and (temporal[100:200] == VAL).all()
    with pytest.raises(ValueError, match="summing to 1"):
        split_ratings(10, (0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="unknown split method 'weekly'"):
        split_ratings(10, method="weekly")


def test_missing_movielens_dir_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tiny_data_cfg(tmp_path, "data=movielens", f"data.movielens_dir={tmp_path / 'none'}")
    with pytest.raises(DataError, match="MovieLens folder does not exist"):
        prepare_dataset(cfg, tmp_path / "cache")


def test_catalog_names_directors_and_cast_from_name_basics(tmp_path: Path) -> None:
    """name.basics is required input because it is used: people get their names."""
    ds = prepare_dataset(tiny_data_cfg(tmp_path), tmp_path / "cache").dataset
    named = ds.catalog["directors"].dropna()
    assert len(named) > 0
    # names, not nconsts, for everyone name.basics knows (the generator names everyone)
    assert not named.str.contains(r"\bnm\d{7}\b").any()
    assert ds.catalog["cast"].notna().sum() > 0
