"""Recommendations for a pair: unseen movies only, exactly k, sorted, symmetric, filtered.

One tiny model is trained once for the session (`trained_run`, shared with test_evaluate) and
loaded back through `duorec.checkpoint`, exactly as the command line does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import model_kwargs, run_in_process, tiny_train_cfg

from duorec.checkpoint import best_in_run, load_checkpoint, read_reference
from duorec.cli import UsageError
from duorec.data.errors import DataError
from duorec.data.prepared import PreparedDataset
from duorec.model.factorization import FactorizationModule
from duorec.model.module import DuoModule
from duorec.recommend import read_pairs
from duorec.serving import Recommender
from duorec.serving.frames import BATCH_COLUMNS, SINGLE_COLUMNS
from duorec.serving.index import ServingIndex
from duorec.serving.requests import check_request
from duorec.serving.scores import ModelScores
from duorec.topk import top_k_unseen
from duorec.train import train

_TRAINED: dict[str, Path] = {}


def recommend(model: Any, index: ServingIndex, a: Any, b: Any, **options: Any) -> pd.DataFrame:
    """One pair through a `Recommender` of this model, as the CLI and the service ask."""
    return Recommender(model, index.dataset, index).pair(a, b, reasons=False, **options)


def recommend_many(model: Any, index: ServingIndex, pairs: Any, **options: Any) -> pd.DataFrame:
    """Many pairs through a `Recommender` of this model (`pairs_file` mode)."""
    return Recommender(model, index.dataset, index).pairs(pairs, reasons=False, **options)


def trained_run(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """Train the tiny model once per session (2 epochs); return its run folder."""
    if "run" not in _TRAINED:
        root = tmp_path_factory.mktemp("trained")
        # with the learned watch head, which the synthetic recipe leaves out: serving must
        # handle a model that has one (and not run it when co-watch ranks)
        train(tiny_train_cfg(root, cache, "trainer.max_epochs=2", "model.watch_dim=64"))
        _TRAINED["run"] = root / "run"
    return _TRAINED["run"]


def run_cli(module: str, root: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m module args` as a user runs it, with every path under `root`."""
    env = {**os.environ, "DUOREC_ROOT": str(root), "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", module, f"paths.cache_dir={cache}", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    return trained_run(tmp_path_factory, tiny_cache)


@pytest.fixture(scope="module")
def ckpt(run_dir: Path) -> Path:
    path = best_in_run(run_dir)
    assert path is not None and path.name != "last.ckpt"
    return path


@pytest.fixture(scope="module")
def loaded(ckpt: Path, tiny_cache: Path) -> tuple[DuoModule, PreparedDataset]:
    return load_checkpoint(ckpt, tiny_cache)


@pytest.fixture(scope="module")
def index(loaded: tuple[DuoModule, PreparedDataset]) -> ServingIndex:
    """Built once, passed to every call, as a service would."""
    return ServingIndex(loaded[1])


def seen(dataset: PreparedDataset, *user_ids: int) -> set[int]:
    """movieIds rated by any of the users, in any split."""
    users = [dataset.user_index(u) for u in user_ids]
    rated = dataset.ratings[dataset.ratings["user"].isin(users)]["movie"].to_numpy()
    return set(dataset.catalog["movieId"].to_numpy()[rated].tolist())


# the tiny data is dense (most people rated 84 of 120 movies): these pairs leave 34-85 unseen
PAIRS = [(38, 39), (15, 24), (25, 38), (1, 2), (50, 7)]


def test_loaded_checkpoint_is_the_trained_data(
    loaded: tuple[DuoModule, PreparedDataset], ckpt: Path
) -> None:
    model, dataset = loaded
    assert not model.training
    assert read_reference(ckpt)["cache_key"] == dataset.manifest["cache_key"]
    assert (dataset.n_users, dataset.n_movies) == (50, 120)


@pytest.mark.parametrize("pair", PAIRS)
def test_never_recommends_a_movie_either_person_rated(loaded, index, pair: tuple[int, int]) -> None:
    model, dataset = loaded
    watched = seen(dataset, *pair)
    everything = recommend(model, index, *pair, k=dataset.n_movies)
    # with k = the catalogue, the answer is exactly the unseen movies, once each
    assert set(everything["movieId"]) == set(dataset.catalog["movieId"]) - watched
    assert everything["movieId"].is_unique
    top = recommend(model, index, *pair, k=10)
    assert not watched & set(top["movieId"])


def test_index_holds_every_split_seen_movies(loaded, index) -> None:
    """The seen-movies CSR is every rating of the person, whatever its split."""
    _, dataset = loaded
    for user_id in (38, 39, 1):
        u = dataset.user_index(user_id)
        row = index.seen.indices[index.seen.indptr[u] : index.seen.indptr[u + 1]]
        movie_ids = set(dataset.catalog["movieId"].to_numpy()[row].tolist())
        assert movie_ids == seen(dataset, user_id)
    assert set(dataset.ratings["split"]) != {0}  # the data has more than a train split


def test_request_checks_in_one_place() -> None:
    request = check_request(3, "min", [(1, "2")], single=True, output="x.csv")
    assert (request.k, request.aggregate, request.pairs.tolist()) == (3, "min", [[1, 2]])
    with pytest.raises(UsageError, match="the two users are the same"):
        check_request(3, "mean", [(7, 7)], single=True)
    with pytest.raises(UsageError, match="batch_size must be a positive integer"):
        check_request(3, "mean", batch_size=0)
    with pytest.raises(UsageError, match="unknown file type '.txt'"):
        check_request(3, "mean", output="top.txt")


@pytest.mark.parametrize("aggregate", ["mean", "min", "max"])
def test_exactly_k_rows_sorted_by_pair_rating(loaded, index, aggregate: str) -> None:
    model, dataset = loaded
    frame = recommend(model, index, 38, 39, k=7, aggregate=aggregate, rank_by="rating")
    assert list(frame.columns) == SINGLE_COLUMNS
    assert len(frame) == 7
    assert frame["rank"].tolist() == list(range(1, 8))
    assert (np.diff(frame["pair_rating"].to_numpy()) <= 0).all()
    r_min, r_max = dataset.rating_range
    for column in ("pair_rating", "rating_a", "rating_b"):
        assert frame[column].between(r_min, r_max).all()
    catalog = dataset.catalog.set_index("movieId")
    assert frame["title"].tolist() == catalog.loc[frame["movieId"], "title"].tolist()


def test_pair_head_is_the_models_prediction_and_the_best_unseen(loaded, index) -> None:
    """aggregate == the training target: the pair head's score, best of all unseen movies."""
    model, dataset = loaded
    assert model.target == "mean"
    a, b = 15, 24
    frame = recommend(model, index, a, b, k=10, aggregate="mean", rank_by="rating")
    assert frame.attrs["pair_head"]
    unseen = np.flatnonzero(~dataset.catalog["movieId"].isin(seen(dataset, a, b)).to_numpy())
    n = len(unseen)
    ua = torch.full((n,), dataset.user_index(a))
    ub = torch.full((n,), dataset.user_index(b))
    with torch.no_grad():
        pair, ra, rb = (model.unscale(x).numpy() for x in model(ua, ub, torch.from_numpy(unseen)))
    order = np.argsort(-pair, kind="stable")[:10]
    np.testing.assert_allclose(frame["pair_rating"], pair[order], atol=1e-5)
    by_movie = dict(zip(dataset.catalog["movieId"].to_numpy()[unseen], ra, strict=True))
    np.testing.assert_allclose(frame["rating_a"], [by_movie[m] for m in frame["movieId"]], 1e-5)
    # the pair head is not simply the mean of the two individual predictions
    assert not np.allclose(frame["pair_rating"], (frame["rating_a"] + frame["rating_b"]) / 2)


def test_default_ranks_by_the_models_score_with_ratings_beside(loaded, index) -> None:
    """rank_by=score (the default of conf/model/duo.yaml): the list is the top of
    `rank_grid` over unseen movies, and each movie still shows its predicted ratings."""
    model, dataset = loaded
    assert model.rank_by == "score"
    a, b = 15, 24
    frame = recommend(model, index, a, b, k=10)
    unseen = np.flatnonzero(~dataset.catalog["movieId"].isin(seen(dataset, a, b)).to_numpy())
    ua = torch.tensor([dataset.user_index(a)])
    ub = torch.tensor([dataset.user_index(b)])
    pair_members = torch.stack([ua, ub], 1)
    score = model.rank_grid(pair_members, model.encode_movies(), model.encode_watch())[0].numpy()
    best = unseen[np.argsort(-score[unseen], kind="stable")[:10]]
    assert frame["movieId"].tolist() == dataset.catalog["movieId"].to_numpy()[best].tolist()
    # the ratings beside are each person's own (ranking and showing share the user vectors)
    with torch.no_grad():
        pair, ra, rb = (
            model.unscale(x).numpy()
            for x in model(ua.repeat(10), ub.repeat(10), torch.from_numpy(best))
        )
    for column, expected in (("pair_rating", pair), ("rating_a", ra), ("rating_b", rb)):
        np.testing.assert_allclose(frame[column], expected, atol=1e-5)
    by_rating = recommend(model, index, a, b, k=10, rank_by="rating")
    assert frame["movieId"].tolist() != by_rating["movieId"].tolist()
    with pytest.raises(UsageError, match="rank_by='best'"):
        recommend(model, index, a, b, k=10, rank_by="best")


@pytest.mark.parametrize(("aggregate", "combine"), [("min", np.minimum), ("max", np.maximum)])
def test_other_aggregates_combine_the_individual_predictions(
    loaded, index, aggregate, combine
) -> None:
    model, dataset = loaded
    frame = recommend(model, index, 15, 24, k=15, aggregate=aggregate, rank_by="rating")
    assert not frame.attrs["pair_head"]
    expected = combine(frame["rating_a"].to_numpy(), frame["rating_b"].to_numpy())
    np.testing.assert_array_equal(frame["pair_rating"].to_numpy(), expected)
    # and they are the best unseen movies by that aggregate
    everything = recommend(
        model, index, 15, 24, k=dataset.n_movies, aggregate=aggregate, rank_by="rating"
    )
    best = np.sort(everything["pair_rating"].to_numpy())[::-1][:15]
    np.testing.assert_allclose(frame["pair_rating"], best)


def test_mean_aggregates_individual_predictions_when_the_model_target_differs(
    loaded: tuple[DuoModule, PreparedDataset],
    index: ServingIndex,
) -> None:
    """A least-misery model asked for `mean` averages the two predictions (in stars)."""
    _, dataset = loaded
    torch.manual_seed(0)
    model = DuoModule.from_dataset(dataset, **model_kwargs(target="min")).eval()
    frame = recommend(model, index, 1, 2, k=10, aggregate="mean")
    a = frame["rating_a"].to_numpy(np.float32)
    b = frame["rating_b"].to_numpy(np.float32)
    np.testing.assert_allclose(frame["pair_rating"].to_numpy(), (a + b) / 2, rtol=1e-6)
    head = recommend(model, index, 1, 2, k=10, aggregate="min")
    assert head.attrs["pair_head"]


@pytest.mark.parametrize("aggregate", ["mean", "min"])
def test_a_factorisation_baseline_is_served_the_same_way(loaded, index, aggregate: str) -> None:
    _, dataset = loaded
    torch.manual_seed(0)
    model = FactorizationModule.from_dataset(
        dataset, **model_kwargs("mf", k=8, init_std=0.3)
    ).eval()
    frame = recommend(model, index, 38, 39, k=10, aggregate=aggregate)
    assert len(frame) == 10 and (np.diff(frame["pair_rating"].to_numpy()) <= 0).all()
    assert not seen(dataset, 38, 39) & set(frame["movieId"])


@pytest.mark.parametrize("aggregate", ["mean", "min"])
@pytest.mark.parametrize("pair", PAIRS[:3])
def test_symmetric_in_the_two_people(loaded, index, pair: tuple[int, int], aggregate: str) -> None:
    model, dataset = loaded
    ab = recommend(model, index, *pair, k=10, aggregate=aggregate)
    ba = recommend(model, index, *reversed(pair), k=10, aggregate=aggregate)
    assert ab["movieId"].tolist() == ba["movieId"].tolist()
    np.testing.assert_array_equal(ab["pair_rating"], ba["pair_rating"])
    np.testing.assert_array_equal(ab["rating_a"], ba["rating_b"])
    np.testing.assert_array_equal(ab["rating_b"], ba["rating_a"])


FILTERS: list[dict[str, Any]] = [
    {"genres": ["Comedy"]},
    {"genres": ["horror", "Romance"]},
    {"min_year": 1995},
    {"max_runtime": 100},
    {"genres": ["Drama"], "min_year": 1980, "max_runtime": 130},
]


@pytest.mark.parametrize("filters", FILTERS)
def test_filters_are_respected_and_keep_the_best_qualifying(loaded, index, filters) -> None:
    model, dataset = loaded
    catalog = dataset.catalog.set_index("movieId")
    frame = recommend(model, index, 38, 39, k=5, filters=filters)
    assert len(frame) == 5
    rows = catalog.loc[frame["movieId"]]
    genres = [g.lower() for g in filters.get("genres", [])]
    qualifies = pd.Series(True, index=catalog.index)
    if genres:
        qualifies &= (
            catalog["genres"]
            .str.lower()
            .str.split("|")
            .apply(lambda gs: bool(set(gs) & set(genres)))
        )
    if "min_year" in filters:
        qualifies &= catalog["year"].astype("Float64").ge(filters["min_year"]).fillna(False)
    if "max_runtime" in filters:
        qualifies &= catalog["runtime"].astype("Float64").le(filters["max_runtime"]).fillna(False)
    assert qualifies.loc[rows.index].all()
    # same as filtering the unfiltered full ranking afterwards
    everything = recommend(model, index, 38, 39, k=dataset.n_movies)
    expected = everything[qualifies.loc[everything["movieId"]].to_numpy()].head(5)
    assert frame["movieId"].tolist() == expected["movieId"].tolist()


def test_bad_filters_are_named(loaded, index) -> None:
    model, dataset = loaded
    with pytest.raises(UsageError, match="unknown genre.*Cmedy.*Comedy"):
        recommend(model, index, 1, 2, filters={"genres": ["Cmedy"]})
    with pytest.raises(UsageError, match="unknown filter"):
        recommend(model, index, 1, 2, filters={"language": "fr"})
    with pytest.raises(UsageError, match="no movie .* passes the filters"):
        recommend(model, index, 1, 2, filters={"min_year": 3000})


def test_clear_errors(loaded, index) -> None:
    model, dataset = loaded
    with pytest.raises(UsageError, match="unknown user id 999: the data set 'synthetic-tiny'"):
        recommend(model, index, 1, 999)
    with pytest.raises(UsageError, match="the two users are the same"):
        recommend(model, index, 7, 7)
    for k in (0, -3):
        with pytest.raises(UsageError, match="k must be a positive integer"):
            recommend(model, index, 1, 2, k=k)
    with pytest.raises(UsageError, match="unknown aggregate 'median'"):
        recommend(model, index, 1, 2, aggregate="median")
    with pytest.raises(UsageError, match="user ids are integers"):
        recommend(model, index, 1, "bob")
    with pytest.raises(UsageError, match=r"pair #2: unknown user id 999"):
        recommend_many(model, index, [(1, 2), (3, 999)])
    with pytest.raises(UsageError, match=r"pair #1 names user 4 twice"):
        recommend_many(model, index, [(4, 4)])


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_batch_mode_equals_single_calls(loaded, index, aggregate: str) -> None:
    model, dataset = loaded
    pairs = pd.DataFrame(PAIRS + [(2, 1), (24, 25), (39, 15)], columns=["user_a", "user_b"])
    filters = {"genres": ["Drama", "Comedy"]}
    many = recommend_many(
        model, index, pairs, k=6, aggregate=aggregate, filters=filters, batch_size=3
    )
    assert list(many.columns) == BATCH_COLUMNS
    assert len(many) == 6 * len(pairs)
    for (a, b), rows in many.groupby(["user_a", "user_b"], sort=False):
        single = recommend(model, index, a, b, k=6, aggregate=aggregate, filters=filters)
        assert rows["movieId"].tolist() == single["movieId"].tolist()
        assert rows["rank"].tolist() == single["rank"].tolist()
        assert rows["title"].tolist() == single["title"].tolist()
        for column in ("pair_rating", "rating_a", "rating_b"):
            np.testing.assert_allclose(rows[column], single[column], rtol=1e-6, atol=1e-6)
    # the order of the input pairs is kept
    first = many.drop_duplicates(["user_a", "user_b"])[["user_a", "user_b"]]
    assert list(map(tuple, first.to_numpy())) == list(map(tuple, pairs.to_numpy()))


def test_a_recommender_answers_the_same_every_time(loaded, index) -> None:
    """Its towers run once, at construction: later calls, other pairs and groups between
    them, and a fresh recommender all give the same table."""
    model, dataset = loaded
    rec = Recommender(model, dataset, index)
    first = rec.pair(3, 4, k=10)
    rec.group([1, 2, 5], k=5, aggregate="min")
    rec.pair(1, 2, k=3, filters={"genres": ["Drama"]})
    pd.testing.assert_frame_equal(rec.pair(3, 4, k=10), first)
    pd.testing.assert_frame_equal(Recommender(model, dataset).pair(3, 4, k=10), first)


def test_co_watch_ranking_runs_no_watch_tower(
    loaded, index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With co-watch the learned watch head only helps training and does not rank, so a call
    without `watch_vectors` must not run the movie tower for it (a wasted 87k-movie pass)."""
    model, _ = loaded
    assert model.cowatch is not None and model.watch_dim > 0
    want = recommend(model, index, 3, 4, k=10)

    def refuse() -> None:
        raise AssertionError("encode_watch ran")

    monkeypatch.setattr(model, "encode_watch", refuse)
    pd.testing.assert_frame_equal(recommend(model, index, 3, 4, k=10), want)
    cowatch, model.cowatch = model.cowatch, None  # the learned head ranks: its factors are read
    try:  # (not monkeypatch: undoing it on a torch submodule deletes the submodule)
        with pytest.raises(AssertionError, match="encode_watch ran"):
            recommend(model, index, 3, 4, k=10)
    finally:
        model.cowatch = cowatch


@pytest.mark.parametrize("rank_by", ["score", "rating"])
def test_precomputed_towers_give_the_same_answer(loaded, index, rank_by: str) -> None:
    """Both towers run once over everyone (a service's setup) list the same movies with the
    same ratings as the towers run per call; and the ratings are read from that table."""
    model, dataset = loaded
    held = Recommender(model, dataset, index, hold_users=True)
    assert held.user_vectors is not None and held.user_vectors.shape[0] == dataset.n_users
    fresh = recommend(model, index, 3, 4, k=10, rank_by=rank_by)
    reused = held.pair(3, 4, k=10, rank_by=rank_by, reasons=False)
    assert reused["movieId"].tolist() == fresh["movieId"].tolist()
    for column in ("pair_rating", "rating_a", "rating_b"):
        np.testing.assert_allclose(reused[column], fresh[column], rtol=1e-5, atol=1e-5)
    many = held.pairs([(3, 4), (1, 2)], k=10, rank_by=rank_by, reasons=False)
    assert many["movieId"].tolist()[:10] == fresh["movieId"].tolist()
    held.user_vectors[dataset.user_index(3), -1] += 0.05  # person 3's bias, in the table
    nudged = held.pair(3, 4, k=10, rank_by=rank_by, reasons=False)
    assert (nudged["rating_a"].to_numpy() > fresh["rating_a"].to_numpy() - 1e-6).all()
    assert not np.allclose(nudged["rating_a"], fresh["rating_a"])


def test_ratings_shown_from_the_shortlist_equal_the_heads(
    loaded, index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a shortlist the ranking has already predicted the chosen movies' ratings, and
    they are shown from there: equal to the heads run on those movies, each in its place.
    (Only for the model's own target: least misery ranks every movie by its own rule.)"""
    model, _ = loaded
    monkeypatch.setattr(model, "rank_shortlist", 20)  # of 120 movies
    scores = ModelScores(model, model.target)
    users = index.user_indices(np.array([[3, 4], [1, 2], [24, 25]]))
    ua, ub = users[:, 0], users[:, 1]
    score, rated = scores.ranked(ua, ub)
    assert rated is not None and rated.column.shape == (3, 20)
    top = top_k_unseen(score, ua, ub, index.seen, 10)
    assert (top.movie >= 0).all()
    from_shortlist = scores.shown(ua, ub, top.movie, rated=rated)
    from_heads = scores.shown(ua, ub, top.movie)
    for got, want in zip(from_shortlist, from_heads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(from_shortlist[1], from_shortlist[1][:, ::-1])  # not all alike


def test_checkpoint_from_another_data_set_is_refused(
    ckpt: Path, tiny_cache: Path, tmp_path: Path
) -> None:
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    reference = state["PairDataModule"]["dataset"]  # the data module's state_dict
    real = reference["cache_key"]
    reference["cache_key"] = "0123456789abcdef"
    reference["fingerprint"] = "fedcba9876543210"
    reference["name"] = "synthetic-other"
    other = tmp_path / "other.ckpt"
    torch.save(state, other)
    with pytest.raises(UsageError) as err:
        load_checkpoint(other, tiny_cache)
    message = str(err.value)
    assert "was trained on synthetic-other (key 0123456789abcdef" in message
    assert f"the prepared data here is synthetic-tiny (key {real}" in message
    assert "(fingerprint differs)" in message


def test_missing_or_bad_checkpoint_is_named(tmp_path: Path, tiny_cache: Path) -> None:
    with pytest.raises(UsageError, match=f"checkpoint not found: {tmp_path / 'none.ckpt'}"):
        load_checkpoint(tmp_path / "none.ckpt", tiny_cache)
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    with pytest.raises(UsageError, match="not a duorec checkpoint"):
        load_checkpoint(junk, tiny_cache)


def test_pairs_file_errors_name_the_file_and_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="pairs file not found"):
        read_pairs(tmp_path / "none.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("user_a,other\n1,2\n")
    with pytest.raises(DataError, match=f"{wrong}: missing column user_b"):
        read_pairs(wrong)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_a,user_b\n1,2\n3,x\n")
    with pytest.raises(DataError, match=f"{bad}, line 3: column user_b must hold integer"):
        read_pairs(bad)
    good = tmp_path / "good.parquet"
    pd.DataFrame({"user_b": [2, 4], "user_a": [1, 3], "note": ["x", "y"]}).to_parquet(good)
    assert read_pairs(good).to_dict("list") == {"user_a": [1, 3], "user_b": [2, 4]}


# ---------------------------------------------------------------------------- command line


def test_cli_single_pair_writes_the_table(
    loaded, index, ckpt: Path, tiny_cache: Path, tmp_path: Path, capsys
) -> None:
    """In this process (`run_in_process`); the pairs file below runs as a real command."""
    model, dataset = loaded
    out = tmp_path / "top.csv"
    proc = run_in_process(
        capsys,
        "recommend",
        tmp_path,
        tiny_cache,
        f"ckpt_path={ckpt}",
        "users=[5,42]",
        "k=4",
        "aggregate=min",
        f"output={out}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "top 4 for users 5 and 42" in proc.stdout
    written = pd.read_csv(out)
    expected = recommend(model, index, 5, 42, k=4, aggregate="min")
    assert list(written.columns) == [*SINGLE_COLUMNS, "reason"]
    assert written["reason"].str.len().gt(0).all()
    assert written["movieId"].tolist() == expected["movieId"].tolist()
    np.testing.assert_allclose(written["pair_rating"], expected["pair_rating"], rtol=1e-6)


def test_cli_pairs_file_batch_mode(
    loaded, index, ckpt: Path, tiny_cache: Path, tmp_path: Path
) -> None:
    model, dataset = loaded
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(PAIRS, columns=["user_a", "user_b"]).to_csv(pairs, index=False)
    # the newest finished training run is found without ckpt_path, whatever its task name;
    # a newer unfinished one (no metrics.json) is not used
    run = tmp_path / "logs" / "ablation" / "runs" / "2030-01-01_00-00-00" / "checkpoints"
    run.mkdir(parents=True)
    shutil.copy(ckpt, run / ckpt.name)
    shutil.copy(ckpt.parent.parent / "metrics.json", run.parent / "metrics.json")
    unfinished = tmp_path / "logs" / "train" / "runs" / "2031-01-01_00-00-00" / "checkpoints"
    unfinished.mkdir(parents=True)
    (unfinished / "last.ckpt").write_bytes(b"not a checkpoint")
    out = tmp_path / "recs.parquet"
    proc = run_cli(
        "duorec.recommend",
        tmp_path,
        tiny_cache,
        f"pairs_file={pairs}",
        f"output={out}",
        "k=3",
        "filters.genres=[Drama]",
    )
    assert proc.returncode == 0, proc.stderr
    # the newest finished run, in any task folder, and said so first
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"using {run.parent} (data synthetic-tiny, test pair_rmse "), first
    written = pd.read_parquet(out)
    expected = recommend_many(model, index, PAIRS, k=3, filters={"genres": ["Drama"]})
    assert list(written.columns) == [*BATCH_COLUMNS, "reason"]
    pd.testing.assert_frame_equal(
        written[["user_a", "user_b", "rank", "movieId"]],
        expected[["user_a", "user_b", "rank", "movieId"]],
        check_dtype=False,
    )
    # each pick's reason is the one a single-pair request gives for that pair
    rec = Recommender(model, dataset, index)
    for a, b in PAIRS:
        mine = (expected["user_a"] == a) & (expected["user_b"] == b)
        single = rec.pair(a, b, k=3, filters={"genres": ["Drama"]})["reason"]
        assert written.loc[mine.to_numpy(), "reason"].tolist() == single.tolist()
    assert written["reason"].str.len().gt(0).all()


CLI_ERRORS = [
    (["users=[1,999]"], ["unknown user id 999", "synthetic-tiny"]),
    (["users=[1]"], ["users must be 2 to 6 user ids, got 1"]),
    (["users=[1,2]", "output=top.xlsx"], ["unknown file type '.xlsx'"]),
]


@pytest.mark.parametrize(("args", "fragments"), CLI_ERRORS)
def test_cli_errors_are_one_line(
    ckpt: Path, tiny_cache: Path, tmp_path: Path, capsys, args: list[str], fragments: list[str]
) -> None:
    proc = run_in_process(capsys, "recommend", tmp_path, tiny_cache, f"ckpt_path={ckpt}", *args)
    assert_one_line_error(proc, "duorec.recommend: error:", *fragments)


def test_cli_error_is_one_line_as_a_command(ckpt: Path, tiny_cache: Path, tmp_path: Path) -> None:
    """The first case above as a user runs it: after loading the model, nothing but the one
    line on stderr (no logging, warnings or traceback from Hydra, Lightning or torch)."""
    args, fragments = CLI_ERRORS[0]
    proc = run_cli("duorec.recommend", tmp_path, tiny_cache, f"ckpt_path={ckpt}", *args)
    assert_one_line_error(proc, "duorec.recommend: error:", *fragments)


def test_cli_pairs_file_with_a_wrong_column(
    ckpt: Path, tiny_cache: Path, tmp_path: Path, capsys
) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user_a,userb\n1,2\n")
    proc = run_in_process(
        capsys,
        "recommend",
        tmp_path,
        tiny_cache,
        f"ckpt_path={ckpt}",
        f"pairs_file={pairs}",
        f"output={tmp_path / 'o.csv'}",
    )
    assert_one_line_error(proc, str(pairs), "missing column user_b")


def test_least_misery_orders_a_pair_by_its_least_happy_person(loaded, index) -> None:
    """aggregate=min ranks a pair by the lower of the two people's co-watch percentiles plus
    the weight times the lower predicted rating (each pick's `score`), not only shows the
    min beside the mean's order: the list differs from the mean's for some pair."""
    model, dataset = loaded
    assert model.cowatch is not None and model.rank_by == "score"
    rec = Recommender(model, dataset, index)
    movies, differs = model.encode_movies(), 0
    for a, b in PAIRS:
        mean = rec.pair(a, b, k=6, reasons=False)
        least = rec.pair(a, b, k=6, aggregate="min", reasons=False)
        differs += mean["movieId"].tolist() != least["movieId"].tolist()
        members = torch.as_tensor(index.user_indices(np.array([[a, b]])))
        with torch.no_grad():
            lowest = model.cowatch.member_percentiles(members).amin(0)[0].numpy()
            rating = model.group_grid(members, movies)[1][0].amin(-1).numpy()  # scaled
        key = lowest + model.rank_rating_weight * rating
        columns = pd.Index(dataset.catalog["movieId"]).get_indexer(least["movieId"])
        np.testing.assert_allclose(least["score"], key[columns], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(least["score"]) <= 0)
        np.testing.assert_array_equal(
            least["pair_rating"], np.minimum(least["rating_a"], least["rating_b"])
        )
        unseen = np.setdiff1d(
            np.arange(dataset.n_movies),
            np.flatnonzero(dataset.catalog["movieId"].isin(seen(dataset, a, b)).to_numpy()),
        )
        assert key[columns].min() >= np.sort(key[unseen])[-6] - 1e-6  # the best six unseen
    assert differs > 0
