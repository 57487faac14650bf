"""The networks: exact symmetry of the fusion, aggregates, people bags, feature buffers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import model_kwargs, rating_steps

from duorec.model.fusion import aggregate
from duorec.model.module import DuoModule
from duorec.model.towers import MovieTower, TowerConfig


def duo_kwargs(**overrides) -> dict:
    """conf/model/duo.yaml as DuoModule's own arguments (the bag width is from_dataset's)."""
    kwargs = {"rating_range": (0.5, 5.0), **model_kwargs(**overrides)}
    kwargs.pop("max_people_per_movie")
    kwargs.pop("history_max")
    return kwargs


def make_module(**kwargs) -> DuoModule:
    torch.manual_seed(0)
    module = DuoModule(
        n_users=50,
        n_movies=40,
        n_user_features=6,
        n_movie_features=5,
        n_people=12,
        max_people=4,
        **duo_kwargs(**kwargs),
    )
    with torch.no_grad():  # non-trivial features, so feature paths matter
        module.user_tower.features.normal_()
        module.movie_tower.features.normal_()
    return module.eval()


@pytest.mark.parametrize("target", ["mean", "min", "max"])
def test_fusion_is_exactly_symmetric(target: str) -> None:
    module = make_module(target=target, dropout=0.0)
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 50, (512,), generator=g)
    b = torch.randint(0, 50, (512,), generator=g)
    m = torch.randint(0, 40, (512,), generator=g)
    with torch.no_grad():
        ab, ra, rb = module(a, b, m)
        ba, rb2, ra2 = module(b, a, m)
    assert torch.equal(ab, ba)  # bit-identical, not merely close
    assert torch.equal(ra, ra2) and torch.equal(rb, rb2)
    assert not torch.equal(ra, rb)  # and the two people are really told apart


def test_catalogue_grid_scores_equal_triple_scores() -> None:
    """Recommendation's matrix path must give the numbers training's triple path gives."""
    module = make_module(target="min", dropout=0.0)
    a, b = torch.tensor([3, 7]), torch.tensor([9, 1])
    with torch.no_grad():
        grid_pair, grid_a, grid_b = module.score_grid(a, b, module.encode_movies())
        movies = torch.arange(40)
        for row in range(2):
            pair, ra, rb = module(a[row].repeat(40), b[row].repeat(40), movies)
            torch.testing.assert_close(grid_pair[row], pair, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(grid_a[row], ra, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(grid_b[row], rb, rtol=1e-5, atol=1e-5)


def test_aggregates() -> None:
    a, b = torch.tensor([1.0, 4.0]), torch.tensor([3.0, 2.0])
    assert aggregate(a, b, "mean").tolist() == [2.0, 3.0]
    assert aggregate(a, b, "min").tolist() == [1.0, 2.0]
    assert aggregate(a, b, "max").tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        aggregate(a, b, "median")


def test_people_bags_fill_padded_matrix() -> None:
    shape = TowerConfig(4, 8, 4, 1, 0.0, use_ids=True, use_features=False, use_people=True)
    tower = MovieTower(n_movies=3, n_features=0, n_people=5, max_people=2, cfg=shape)
    offsets = np.array([0, 3, 3, 4])  # movie 0 has 3 people (truncated to 2), movie 1 none
    index = np.array([4, 1, 2, 0], dtype=np.int32)
    tower.set_people(offsets, index)
    assert tower.people_ids.tolist() == [[4, 1], [5, 5], [0, 5]]  # 5 = padding
    # a movie without people gets exactly the zero vector from the bag
    assert torch.equal(tower.people(tower.people_ids[1:2]), torch.zeros(1, 4))


def test_switches_remove_inputs() -> None:
    module = make_module(use_ids=False, use_people=False)
    assert module.user_tower.embedding is None and module.movie_tower.people is None
    with pytest.raises(ValueError, match="needs ids, features or a history"):
        DuoModule(
            n_users=5,
            n_movies=5,
            n_user_features=2,
            n_movie_features=2,
            n_people=0,
            max_people=0,
            **duo_kwargs(use_ids=False, use_features=False, use_history=False),
        )


def test_scale_round_trip_and_clamp() -> None:
    module = make_module(rating_range=(0.5, 5.0))
    stars = torch.tensor([0.5, 2.75, 5.0])
    assert torch.allclose(module.unscale(module.scale(stars)), stars)
    assert module.unscale(torch.tensor([-1.0, 2.0])).tolist() == [0.5, 5.0]


def history_module(**kwargs) -> DuoModule:
    """A small model that reads histories: users 0 and 1 both rated movie 3 (and others).
    The learned watch head (off by default, beside the co-watch one) is what reads them."""
    kwargs = {"watch_dim": 16, "cowatch": None, **kwargs}
    torch.manual_seed(0)
    user = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    movie = np.array([1, 3, 5, 3, 7, 0, 3, 5, 9])
    rating = np.array([4.0, 5.0, 2.0, 1.0, 3.5, 3.0, 4.5, 2.5, 5.0])
    module = DuoModule(
        n_users=3,
        n_movies=10,
        n_user_features=2,
        n_movie_features=2,
        n_people=0,
        max_people=0,
        n_history=len(user),
        **duo_kwargs(dropout=0.0, **kwargs),
    )
    module.history.set_history(user, movie, rating)
    return module.eval()


def test_the_target_movie_never_reaches_its_own_inputs() -> None:
    """Rating and watch predictions of (a, b, m) are bit-identical whatever the history says
    about m: its embedding in the bag and both people's ratings of it are perturbed."""
    module = history_module()
    a, b, m = torch.tensor([0]), torch.tensor([1]), torch.tensor([3])
    before = [x.clone() for x in module(a, b, m)]
    watch_before = module.encode_users(torch.tensor([0, 1]), exclude=torch.tensor([3, 3]))
    unmasked_before = module.encode_users(torch.tensor([0, 1]))
    with torch.no_grad():
        module.history.embedding.weight[3] += 10.0
        rated_3 = module.history.movies == 3
        module.history.centred[rated_3] = -module.history.centred[rated_3] + 7.0
    after = module(a, b, m)
    for x, y in zip(before, after, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(
        watch_before, module.encode_users(torch.tensor([0, 1]), exclude=torch.tensor([3, 3]))
    )
    # the same perturbation does reach an unmasked history: the test can fail
    assert not torch.allclose(unmasked_before, module.encode_users(torch.tensor([0, 1])))


def test_the_rating_history_leaves_the_target_movie_out() -> None:
    """With `history_rating` the rating factors read the bag of watched movies: a pair's
    predicted rating of m is bit-identical whatever m's embedding in the bag is, while a
    person's serving vector (bag unmasked) does move with it, so the test can fail."""
    module = history_module(history_rating=True)
    with torch.no_grad():  # zero at the start by design: give the term weight to test it
        module.history_to_rating.weight.normal_()
    a, b, m = torch.tensor([0]), torch.tensor([1]), torch.tensor([3])
    before = [x.clone() for x in module(a, b, m)]
    serving_before = module.user_vectors(torch.tensor([0, 1]))
    with torch.no_grad():
        module.history.embedding.weight[3] += 10.0
    for x, y in zip(before, module(a, b, m), strict=True):
        assert torch.equal(x, y)
    assert not torch.allclose(serving_before, module.user_vectors(torch.tensor([0, 1])))


def test_the_rating_history_starts_as_the_model_without_it() -> None:
    """Zero-initialised and built last: switching it on changes no prediction before training
    (up to float rounding: the two paths batch the tower's rows differently)."""
    a, b, m = torch.tensor([0, 2]), torch.tensor([1, 0]), torch.tensor([3, 4])
    without, with_it = history_module()(a, b, m), history_module(history_rating=True)(a, b, m)
    for x, y in zip(without, with_it, strict=True):
        assert torch.allclose(x, y, rtol=0, atol=1e-6)


def test_use_history_false_turns_every_use_of_the_bag_off() -> None:
    """The bag is one switch: without it neither head reads a history, and history_rating
    alone (no watch head) still builds the bag it reads."""
    off = make_module(history_rating=True, use_history=False)
    assert off.history is None and off.history_to_rating is None
    assert off.history_to_watch is None
    rating_only = make_module(history_rating=True, watch_dim=0, cowatch=None, rank_by="rating")
    assert rating_only.history is not None and rating_only.history_to_rating is not None
    assert rating_only.history_to_watch is None


def test_pair_watch_scores_are_symmetric() -> None:
    module = history_module()
    watch = module.encode_watch()
    ab = module.watch_grid(torch.tensor([0, 2]), torch.tensor([1, 0]), watch)
    ba = module.watch_grid(torch.tensor([1, 0]), torch.tensor([0, 2]), watch)
    assert torch.equal(ab, ba)


def test_factor_l2_adds_the_mean_squared_norm_of_the_factors_a_batch_used() -> None:
    """loss(l2) - loss(0) = l2 x (mean |user factors|^2 + mean |movie factors|^2), biases out."""
    plain, held = make_module(factor_l2=0.0), make_module(factor_l2=0.5)
    batch = {
        "user_a": torch.tensor([0, 1, 2, 3]),
        "user_b": torch.tensor([4, 5, 6, 7]),
        "movie": torch.tensor([0, 0, 9, 30]),
        "rating_a": torch.tensor([4.0, 2.0, 3.5, 5.0]),
        "rating_b": torch.tensor([3.0, 1.0, 4.5, 0.5]),
    }
    users = torch.cat([batch["user_a"], batch["user_b"]])
    with torch.no_grad():
        vectors = plain.user_vectors_for(users, torch.cat([batch["movie"]] * 2))
        base, _ = plain.rating_losses(vectors, batch)
        penalised, _ = held.rating_losses(vectors, batch)
        movies = plain.movie_vectors(batch["movie"])  # per rating: movie 0 counts twice
    by_hand = vectors[:, :-1].pow(2).sum(-1).mean() + movies[:, :-1].pow(2).sum(-1).mean()
    assert float(penalised - base) == pytest.approx(0.5 * float(by_hand), rel=1e-5)


def test_id_factors_add_each_ids_own_vector_to_the_towers_factors() -> None:
    with_factors = make_module(id_factors=True)
    out_dim = with_factors.rating_dim - 1
    table = with_factors.movie_tower.id_factors
    assert table is not None and table.embedding_dim == out_dim
    movies = torch.tensor([3, 7])
    with torch.no_grad():
        table.weight.zero_()
        before = with_factors.movie_vectors(movies)
        table.weight[7] = 1.0
        after = with_factors.movie_vectors(movies)
    torch.testing.assert_close(after[0], before[0])  # movie 3's row is still zero
    torch.testing.assert_close(after[1, :out_dim], before[1, :out_dim] + 1.0)
    torch.testing.assert_close(after[1, out_dim], before[1, out_dim])  # the bias is the tower's
    assert make_module(id_factors=False).movie_tower.id_factors is None


@pytest.mark.parametrize(
    ("sides", "users", "movies"),
    [("users", True, False), ("movies", False, True), ("both", True, True), ("none", False, False)],
)
def test_id_factors_go_to_the_towers_named(sides: str, users: bool, movies: bool) -> None:
    module = make_module(id_factors=sides)
    assert (module.user_tower.id_factors is not None) is users
    assert (module.movie_tower.id_factors is not None) is movies


def test_id_factor_dim_narrows_the_table_to_the_first_factor_columns() -> None:
    narrow = make_module(id_factors="movies", id_factor_dim=3)
    table = narrow.movie_tower.id_factors
    assert table is not None and table.embedding_dim == 3
    movies = torch.tensor([5])
    with torch.no_grad():
        table.weight.zero_()
        before = narrow.movie_vectors(movies)
        table.weight[5] = 2.0
        after = narrow.movie_vectors(movies)
    torch.testing.assert_close(after[0, :3], before[0, :3] + 2.0)
    torch.testing.assert_close(after[0, 3:], before[0, 3:])


def test_unknown_id_factors_side_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown id_factors 'user': choose one of users"):
        make_module(id_factors="user")
    with pytest.raises(ValueError, match="id_factor_dim must be >= 1"):
        make_module(id_factors="both", id_factor_dim=0)


def test_id_factors_learn_planted_user_by_movie_factors() -> None:
    """On rank-2 ratings (taste x kind) that no bias can fit, the model with id factors and
    their L2 reaches well below the bias baseline's RMSE on held-out ratings."""
    from test_groups import low_rank_ratings

    from duorec.data.datamodule import groups_to_batch
    from duorec.data.groups import GroupSampler
    from duorec.data.pairs import RaterIndex
    from duorec.model.fusion import individual
    from duorec.model.rating_baselines import BiasBaseline

    user, movie, rating, test = low_rank_ratings()
    torch.manual_seed(0)
    model = DuoModule(
        60,
        40,
        0,
        0,
        0,
        0,
        **duo_kwargs(
            use_history=False,
            watch_dim=0,
            cowatch=None,
            rank_by="rating",
            use_features=False,
            use_people=False,
            id_factors=True,
            factor_l2=0.01,
        ),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    sampler = GroupSampler(RaterIndex(user[~test], movie[~test], rating[~test], 40), {2: 1.0})
    rng = np.random.default_rng(0)
    model.train()
    rating_steps(model, optimizer, (groups_to_batch(sampler.draw(256, rng)) for _ in range(300)))
    model.eval()
    with torch.no_grad():
        u, m = torch.as_tensor(user[test]), torch.as_tensor(movie[test])
        predicted = model.unscale(individual(model.user_vectors(u), model.movie_vectors(m)))
    rmse = float(np.sqrt(np.mean((predicted.numpy() - rating[test]) ** 2)))
    bias = BiasBaseline(rating_range=(0.5, 5.0)).fit(
        user[~test], movie[~test], rating[~test], 60, 40
    )
    bias_rmse = float(np.sqrt(np.mean((bias.predict(user[test], movie[test]) - rating[test]) ** 2)))
    assert rmse < 0.6 * bias_rmse, (rmse, bias_rmse)


def test_settings_are_grouped_and_round_trip_through_flat_keys() -> None:
    """conf/model/duo.yaml's flat keys become the four config groups and come back unchanged
    (what a checkpoint stores); a key that is no setting is named."""
    from duorec.model.config import DuoConfig

    flat = duo_kwargs()
    flat.pop("rating_range")  # a size of the data, not a setting
    config = DuoConfig.from_flat(flat)
    assert config.towers.hidden == flat["hidden"] and config.ranking.rank_by == flat["rank_by"]
    assert config.watch.watch_dim == flat["watch_dim"] and config.losses.target == flat["target"]
    assert {k: v for k, v in config.flat().items() if k in flat} == flat
    module = make_module()
    stored = {k: module.hparams[k] for k in config.flat()}
    assert DuoConfig.from_flat(stored) == module.config
    with pytest.raises(TypeError, match="no setting hiden"):
        DuoConfig.from_flat({**flat, "hiden": 3})
    with pytest.raises(TypeError, match="Towers.*hidden"):
        DuoConfig.from_flat({k: v for k, v in flat.items() if k != "hidden"})
