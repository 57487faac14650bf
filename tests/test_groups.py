"""Groups of 2..6: the sampler against enumeration, an order-free group head, group
evaluation beside the aggregated baselines, and recommending for four people."""

from __future__ import annotations

import json
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CHEAP_DUO, model_kwargs, rating_steps, run_in_process, tiny_train_cfg
from test_recommend import assert_one_line_error

from duorec.aggregate import aggregate_members
from duorec.checkpoint import best_in_run, load_checkpoint
from duorec.cli import UsageError
from duorec.data.datamodule import groups_to_batch
from duorec.data.groups import (
    GroupSampler,
    check_eval_sizes,
    check_group_sizes,
    enumerate_groups,
    evaluation_groups,
    n_groups,
    relevant_by_group,
)
from duorec.data.pairs import RaterIndex
from duorec.eval.groups import group_regression
from duorec.model.fusion import individual
from duorec.model.group_fusion import group_forward
from duorec.model.module import DuoModule
from duorec.model.rating_baselines import BiasBaseline
from duorec.serving import Recommender
from duorec.serving.index import ServingIndex
from duorec.topk import top_k_unseen, top_k_unseen_groups
from duorec.train import train

# movie 0: 6 raters, movie 1: 4, movie 2: 3, movie 3: 2, movie 4: 1
USER = np.array([0, 1, 2, 3, 4, 5, 0, 2, 4, 6, 1, 3, 6, 5, 6, 7])
MOVIE = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4])
RATING = np.arange(len(USER), dtype=np.float64) / 4 + 1


def tiny_index() -> RaterIndex:
    return RaterIndex(USER, MOVIE, RATING, n_movies=5)


def exact_groups(k: int) -> set[tuple[int, ...]]:
    """(movie, sorted members) of every group of k raters, by brute force."""
    out = set()
    for m in np.unique(MOVIE):
        raters = sorted(USER[MOVIE == m].tolist())
        out |= {(int(m), *c) for c in combinations(raters, k)}
    return out


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "sizes, fragment",
    [
        ({1: 1.0}, "group size 1 is outside 2..6"),
        ({2: 0.5, 7: 0.5}, "group size 7 is outside 2..6"),
        ({2: 0.6, 3: 0.3}, "probabilities must sum to 1, they sum to 0.9"),
        ({2: 1.2, 3: -0.2}, "probability of size 3 must be > 0"),
        ([2, 3], "must map group sizes to probabilities"),
    ],
)
def test_bad_group_sizes_name_the_key(sizes, fragment: str) -> None:
    with pytest.raises(ValueError, match="data.group_sizes") as err:
        check_group_sizes(sizes)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_good_group_sizes_and_eval_sizes() -> None:
    assert check_group_sizes(None) is None
    assert check_group_sizes({"4": 0.15, 2: 0.6, 3: 0.25}) == {2: 0.6, 3: 0.25, 4: 0.15}
    assert check_eval_sizes([4, 3, 3]) == [3, 4]
    with pytest.raises(ValueError, match="eval.group_sizes: group size 7"):
        check_eval_sizes([3, 7])


def test_bad_group_size_on_the_command_line_is_one_line(
    tmp_path: Path, tiny_cache: Path, capsys
) -> None:
    """In this process (`run_in_process`): test_settings runs a refused setting as a command."""
    proc = run_in_process(
        capsys,
        "train",
        tmp_path,
        tiny_cache,
        "data.synthetic.size=tiny",
        "data.group_sizes={7: 1.0}",
    )
    assert_one_line_error(proc, "data.group_sizes={7: 1.0} is not allowed", "sizes 2..6")


# ---------------------------------------------------------------------------- sampler


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_enumeration_lists_every_group_once(k: int) -> None:
    groups = enumerate_groups(tiny_index(), k)
    listed = [(int(m), *g) for m, g in zip(groups.movie, groups.members.tolist(), strict=True)]
    assert len(listed) == len(set(listed)) == n_groups(tiny_index(), k)
    assert set(listed) == exact_groups(k)
    rating = {(u, m): r for u, m, r in zip(USER, MOVIE, RATING, strict=True)}
    for m, members, ratings in zip(groups.movie, groups.members, groups.ratings, strict=True):
        assert ratings.tolist() == [rating[u, m] for u in members]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_sampler_draws_every_group_equally_often(k: int) -> None:
    """Against exact enumeration: each (group, movie) within 5 sigma of N / |groups|."""
    n = 200_000
    drawn = GroupSampler(tiny_index(), {k: 1.0}).draw_size(n, k, np.random.default_rng(1))
    ordered = drawn.ordered()
    counts = Counter(
        (int(m), *g) for m, g in zip(ordered.movie, ordered.members.tolist(), strict=True)
    )
    every = exact_groups(k)
    assert set(counts) == every  # nothing else, e.g. a repeated member or a non-rater
    p = 1 / len(every)
    sigma = np.sqrt(n * p * (1 - p))
    worst = max(abs(c - n * p) for c in counts.values())
    assert worst < 5 * sigma, (worst, sigma)
    # the ratings travel with their members
    rating = {(u, m): r for u, m, r in zip(USER, MOVIE, RATING, strict=True)}
    for i in range(50):
        assert drawn.ratings[i].tolist() == [rating[u, drawn.movie[i]] for u in drawn.members[i]]


def test_batch_sizes_follow_the_configured_distribution() -> None:
    sampler = GroupSampler(tiny_index(), {2: 0.6, 3: 0.25, 4: 0.15})
    rng = np.random.default_rng(0)
    sizes = Counter(sampler.draw(8, rng).size for _ in range(4000))
    for k, p in {2: 0.6, 3: 0.25, 4: 0.15}.items():
        assert abs(sizes[k] - 4000 * p) < 5 * np.sqrt(4000 * p * (1 - p))


def test_too_large_a_group_for_the_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="data.group_sizes: no movie has 6 raters"):
        GroupSampler(RaterIndex(USER[6:], MOVIE[6:], RATING[6:], 5), {2: 0.5, 6: 0.5})


def test_evaluation_groups_sample_is_distinct_seeded_and_bounded() -> None:
    index = tiny_index()
    assert len(evaluation_groups(index, 3, None, 0)) == n_groups(index, 3) == 25
    for limit in (5, 20):  # lazily drawn, and subsampled from the enumeration
        a = evaluation_groups(index, 3, limit, 7)
        b = evaluation_groups(index, 3, limit, 7)
        keys = {(int(m), *g) for m, g in zip(a.movie, a.members.tolist(), strict=True)}
        assert len(a) == len(keys) == limit and keys <= exact_groups(3)
        assert np.array_equal(a.members, b.members) and np.array_equal(a.movie, b.movie)


def test_relevant_means_every_member_liked_it() -> None:
    groups = enumerate_groups(tiny_index(), 2)
    members, relevant = relevant_by_group(groups, threshold=3.0)
    for row, movies in zip(members.tolist(), relevant, strict=True):
        for m in movies:
            for u in row:
                assert RATING[(USER == u) & (MOVIE == m)][0] >= 3.0


# ---------------------------------------------------------------------------- the head


def group_module(**overrides) -> DuoModule:
    torch.manual_seed(0)
    kwargs = model_kwargs(use_history=False, watch_dim=0, rank_by="rating", **overrides)
    kwargs.pop("max_people_per_movie"), kwargs.pop("history_max")
    module = DuoModule(
        n_users=30,
        n_movies=20,
        n_user_features=3,
        n_movie_features=2,
        n_people=0,
        max_people=0,
        rating_range=(0.5, 5.0),
        groups=True,
        **kwargs,
    )
    return module.eval()


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_group_rating_is_bit_identical_in_any_member_order(k: int) -> None:
    model = group_module()
    g = torch.Generator().manual_seed(k)
    members = torch.stack([torch.randperm(30, generator=g)[:k] for _ in range(64)])
    movie = torch.randint(0, 20, (64,), generator=g)
    with torch.no_grad():
        group, each = group_forward(model, members, movie)
        for _ in range(5):
            perm = torch.randperm(k, generator=g)
            shuffled, shuffled_each = group_forward(model, members[:, perm], movie)
            assert torch.equal(group, shuffled)
            assert torch.equal(each[:, perm], shuffled_each)
        grid, _ = model.group_grid(members[:4], model.encode_movies())
        grid_shuffled, _ = model.group_grid(members[:4, perm], model.encode_movies())
        assert torch.equal(grid, grid_shuffled)
    # the head is not a plain aggregate: the group pools move it
    assert not torch.equal(group, aggregate_members(each, "mean"))


def test_group_grid_agrees_with_group_forward() -> None:
    model = group_module()
    members = torch.tensor([[1, 4, 9], [2, 3, 5]])
    with torch.no_grad():
        grid, each = model.group_grid(members, model.encode_movies())
        for movie in (0, 7, 19):
            rows, row_each = group_forward(model, members, torch.tensor([movie, movie]))
            torch.testing.assert_close(grid[:, movie], rows, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(each[:, movie], row_each, rtol=1e-5, atol=1e-6)


def test_pairs_only_model_has_no_group_head_and_aggregates() -> None:
    model = group_module()
    torch.manual_seed(0)
    kwargs = model_kwargs(use_history=False, watch_dim=0, rank_by="rating")
    kwargs.pop("max_people_per_movie"), kwargs.pop("history_max")
    plain = DuoModule(30, 20, 3, 2, 0, 0, (0.5, 5.0), **kwargs).eval()
    assert plain.group_head is None and model.group_head is not None
    # the group head is built last: a pairs-only model's parameters are unchanged by it
    plain_state = plain.state_dict()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in plain_state.items())
    members, movie = torch.tensor([[1, 2, 3]]), torch.tensor([4])
    with torch.no_grad():
        group, each = group_forward(plain, members, movie)
        users = plain.user_vectors(members[0])
        expected = individual(users, plain.movie_vectors(movie).expand(3, -1))
    torch.testing.assert_close(each[0], expected)
    assert torch.equal(group, aggregate_members(each, "mean"))


def test_one_ranking_path_for_pairs_and_groups() -> None:
    from duorec.csr import csr_from_pairs

    seen = csr_from_pairs(USER, MOVIE, 8)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 5))
    a, b = np.array([0, 1, 6]), np.array([2, 3, 7])
    pairs = top_k_unseen(scores, a, b, seen, 3)
    groups = top_k_unseen_groups(scores, np.stack([a, b], 1), seen, 3)
    assert np.array_equal(pairs.movie, groups.movie) and np.array_equal(pairs.score, groups.score)
    trio = top_k_unseen_groups(scores[:1], np.array([[0, 2, 6]]), seen, 5).movie[0]
    assert set(trio[trio >= 0]) == {4}  # 0-3 are seen by someone


def low_rank_ratings(n_users: int = 60, n_movies: int = 40, seed: int = 0):
    """Ratings = 3 + taste x movie (rank 2) + a little noise: what a bias model cannot fit."""
    rng = np.random.default_rng(seed)
    taste, kind = rng.normal(size=(n_users, 2)), rng.normal(size=(n_movies, 2))
    user, movie = np.nonzero(rng.random((n_users, n_movies)) < 0.6)
    stars = 3 + 0.9 * (taste[user] * kind[movie]).sum(1) + rng.normal(0, 0.2, len(user))
    rating = np.clip(np.round(stars * 2) / 2, 0.5, 5.0)
    test = rng.random(len(user)) < 0.2
    return user, movie, rating, test


def test_group_model_beats_the_aggregated_bias_baseline() -> None:
    """Trained on sampled groups of 2..4, the group head beats the members' bias predictions
    averaged (and min / max-ed), on test groups of 3 and 4 it never saw."""
    user, movie, rating, test = low_rank_ratings()
    train_index = RaterIndex(user[~test], movie[~test], rating[~test], 40)
    test_index = RaterIndex(user[test], movie[test], rating[test], 40)
    torch.manual_seed(0)
    kwargs = model_kwargs(
        use_history=False, watch_dim=0, rank_by="rating", use_features=False, use_people=False
    )
    kwargs.pop("max_people_per_movie"), kwargs.pop("history_max")
    model = DuoModule(60, 40, 0, 0, 0, 0, (0.5, 5.0), groups=True, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    sampler = GroupSampler(train_index, {2: 0.4, 3: 0.3, 4: 0.3})
    rng = np.random.default_rng(0)
    model.train()
    rating_steps(model, optimizer, (groups_to_batch(sampler.draw(256, rng)) for _ in range(400)))
    bias = BiasBaseline(rating_range=(0.5, 5.0)).fit(
        user[~test], movie[~test], rating[~test], 60, 40
    )
    for k in (3, 4):
        groups = evaluation_groups(test_index, k, None, 0)
        assert len(groups) > 100
        table = group_regression(model, groups, {"bias": bias}, ["mean", "min", "max"], (0.5, 5))
        for how, scores in table.items():
            assert scores["model"]["rmse"] < 0.9 * scores["bias"]["rmse"], (k, how, scores)


# ---------------------------------------------------------------------------- end to end

_RUN: dict[str, Path] = {}


@pytest.fixture(scope="module")
def group_run(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    if "run" not in _RUN:
        root = tmp_path_factory.mktemp("groups")
        cfg = tiny_train_cfg(
            root,
            tiny_cache,
            "trainer.max_epochs=3",
            "data.group_sizes={2: 0.5, 3: 0.3, 4: 0.2}",
            "eval.group_sizes=[3, 4]",
            # what the group evaluation reads is kept: the rating baselines
            "~eval.rankers",
            "eval.foldin_choice.priors=[]",
            "eval.diversity=[0.0]",
            "eval.bootstrap=50",
            *CHEAP_DUO,
        )
        train(cfg)
        _RUN["run"] = root / "run"
    return _RUN["run"]


def test_group_evaluation_in_the_train_run(group_run: Path) -> None:
    metrics = json.loads((group_run / "metrics.json").read_text())
    assert set(metrics["groups"]) == {"3", "4"}
    for size in ("3", "4"):
        entry = metrics["groups"][size]
        assert entry["n_groups"] > 50
        mean = entry["targets"]["mean"]
        assert set(mean) == {"model", "global_mean", "bias", "mf"}
        for table in entry["targets"].values():  # short training: only the constant is beaten
            assert table["model"]["rmse"] < table["global_mean"]["rmse"], (size, table)
        assert mean["model"]["n_groups"] == mean["bias"]["n_groups"] == entry["n_groups"]
        assert set(entry["targets"]) == {"mean", "min", "max"}
        ranking = entry["ranking"]
        assert {"model", "bias", "mf", "popularity"} <= set(ranking)
        assert ranking["model"]["n_ranked_groups"] == ranking["bias"]["n_ranked_groups"] > 0


def recommend_group(
    model: DuoModule, index: ServingIndex, ids: list[int], **options: object
) -> pd.DataFrame:
    """A group through a `Recommender` of this model, as the CLI and the service ask."""
    return Recommender(model, index.dataset, index).group(ids, reasons=False, **options)


def test_recommend_for_four_excludes_what_anyone_saw(group_run: Path, tiny_cache: Path) -> None:
    model, dataset = load_checkpoint(best_in_run(group_run), tiny_cache)
    index = ServingIndex(dataset)
    ids = [int(u) for u in dataset.user_ids[[0, 3, 5, 8]]]
    ratings = dataset.ratings
    members = index.user_indices(np.array(ids))
    seen_ids = set(
        dataset.catalog["movieId"].to_numpy()[
            ratings["movie"].to_numpy()[np.isin(ratings["user"].to_numpy(), members)]
        ]
    )
    unseen = dataset.n_movies - len(seen_ids)
    assert unseen >= 3
    frame = recommend_group(model, index, ids, k=8, aggregate="mean")
    n = min(8, unseen)  # the tiny catalogue may leave fewer than 8 unseen by all four
    assert len(frame) == n and frame["rank"].tolist() == list(range(1, n + 1))
    assert not set(frame["movieId"]) & seen_ids
    # each member's predicted rating, and the lowest of them
    columns = [f"rating_{u}" for u in ids]
    assert set(columns) <= set(frame.columns)
    np.testing.assert_array_equal(frame["lowest"], frame[columns].min(axis=1))
    movie_index = dataset.catalog.reset_index(drop=True).reset_index().set_index("movieId")["index"]
    with torch.no_grad():
        users = model.user_vectors(torch.as_tensor(members))
        movies = model.movie_vectors(
            torch.as_tensor(movie_index[frame["movieId"]].to_numpy().copy())
        )
        for j, user in enumerate(ids):
            stars = model.unscale(individual(users[j].expand(len(movies), -1), movies))
            np.testing.assert_allclose(frame[f"rating_{user}"], stars.numpy(), rtol=1e-5)
    assert frame.attrs["lowest"]["rating"] == pytest.approx(frame["lowest"].min())
    # least misery: the group's rating is its least happy member's
    least = recommend_group(model, index, ids, k=8, aggregate="min", rank_by="rating")
    np.testing.assert_array_equal(least["group_rating"], least["lowest"])
    assert least["group_rating"].is_monotonic_decreasing
    # the order the members are named in changes nothing but the column order
    again = recommend_group(model, index, ids[::-1], k=8, aggregate="mean")
    assert again["movieId"].tolist() == frame["movieId"].tolist()
    np.testing.assert_array_equal(again["group_rating"], frame["group_rating"])


def test_least_misery_and_most_pleasure_rank_the_group(group_run: Path, tiny_cache: Path) -> None:
    """`aggregate=min` ranks by the least happy member, not only shows that rating: with the
    default score (co-watch + rating) each pick's key is the lowest member's co-watch
    percentile plus the weight times the lowest member's rating, and the list differs from
    the mean's for some group (it was the same ten movies in the same order)."""
    model, dataset = load_checkpoint(best_in_run(group_run), tiny_cache)
    index = ServingIndex(dataset)
    assert model.cowatch is not None and model.rank_by == "score"
    movies = model.encode_movies()
    differs = 0
    for start in range(0, 40, 4):
        ids = [int(u) for u in dataset.user_ids[start : start + 4]]
        members = torch.as_tensor(index.user_indices(np.array(ids)))[None]
        mean = recommend_group(model, index, ids, k=5, aggregate="mean")
        least = recommend_group(model, index, ids, k=5, aggregate="min")
        most = recommend_group(model, index, ids, k=5, aggregate="max")
        differs += mean["movieId"].tolist() != least["movieId"].tolist()
        for frame, how, pick in ((least, "min", np.min), (most, "max", np.max)):
            with torch.no_grad():
                each = model.group_grid(members, movies)[1][0]  # [M, k] scaled
                parts = model.cowatch.member_percentiles(members)[:, 0]  # [k, M]
            key = pick(parts.numpy(), axis=0) + model.rank_rating_weight * pick(
                each.numpy(), axis=1
            )
            columns = movie_columns(dataset, frame["movieId"])
            np.testing.assert_allclose(
                key[columns],
                model.rank_grid(members, movies, None, aggregate=how)[0][columns].numpy(),
                rtol=1e-5,
                atol=1e-6,
            )
            assert np.all(np.diff(key[columns]) <= 1e-6), how  # ranked by that key
            np.testing.assert_allclose(frame["score"], key[columns], rtol=1e-5, atol=1e-6)
    assert differs > 0


def movie_columns(dataset, movie_ids) -> np.ndarray:
    lookup = dataset.catalog.reset_index(drop=True).reset_index().set_index("movieId")["index"]
    return lookup[movie_ids].to_numpy()


def test_group_requests_are_checked(group_run: Path, tiny_cache: Path) -> None:
    model, dataset = load_checkpoint(best_in_run(group_run), tiny_cache)
    index = ServingIndex(dataset)
    ids = [int(u) for u in dataset.user_ids[:7]]
    with pytest.raises(UsageError, match="users must be 2 to 6 user ids, got 7"):
        recommend_group(model, index, ids)
    with pytest.raises(UsageError, match=f"user {ids[0]} is named twice"):
        recommend_group(model, index, [ids[0], ids[1], ids[0]])


def test_recommend_cli_for_a_group(
    group_run: Path, tiny_cache: Path, tmp_path: Path, capsys
) -> None:
    """In this process (`run_in_process`): test_recommend runs the command as a user does."""
    model, dataset = load_checkpoint(best_in_run(group_run), tiny_cache)
    ids = ",".join(str(int(u)) for u in dataset.user_ids[:4])
    proc = run_in_process(
        capsys, "recommend", tmp_path, tiny_cache, f"ckpt_path={group_run}", f"users=[{ids}]", "k=3"
    )
    assert proc.returncode == 0, proc.stderr
    assert "lowest" in proc.stdout and "fairness: the least happy member is user" in proc.stdout
    for user in dataset.user_ids[:4]:
        assert f"user {int(user)}" in proc.stdout
    bad = run_in_process(capsys, "recommend", tmp_path, tiny_cache, "users=[1,2,3,4,5,6,7]")
    assert_one_line_error(bad, "users must be 2 to 6 user ids, got 7")
