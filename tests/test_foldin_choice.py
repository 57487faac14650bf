"""Fold-in's prior strength, chosen on validation after training (duorec.eval.foldin_choice)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_foldin import genre_people, learned  # noqa: F401 - the 6-epoch model fixture
from test_recommend import trained_run

from duorec.checkpoint import best_in_run
from duorec.data.split import TEST
from duorec.eval.foldin_choice import choose_foldin_prior, validation_people

GRID = [1.0, 1 / 64]
OPTS = {"seed": 0, "foldin_choice": {"priors": GRID, "reveal": [3, 8], "users": 15}}


def test_a_weaker_prior_lets_a_new_person_move_further_from_the_average(learned) -> None:  # noqa: F811
    """The multiplier scales the pull on the ids; None reads the model's own."""
    model, dataset = learned
    lover, hater, _ = genre_people(dataset, "Drama")
    norms = {}
    for prior in (1.0, 1 / 64):
        folded = model.fold_in(dataset, [lover, hater], prior=prior)
        norms[prior] = folded.model.user_tower.id_factors.weight[dataset.n_users :].norm(dim=1)
    assert (norms[1 / 64] > 1.5 * norms[1.0]).all(), norms
    model.foldin_prior = 1 / 64
    try:
        by_model = model.fold_in(dataset, [lover, hater]).vectors
    finally:
        model.foldin_prior = 1.0
    explicit = model.fold_in(dataset, [lover, hater], prior=1 / 64).vectors
    torch.testing.assert_close(by_model, explicit, rtol=0, atol=0)


def test_the_choice_is_the_prior_with_the_lowest_validation_rmse(learned) -> None:  # noqa: F811
    """Each grid value's RMSE equals one computed by hand through the model's own forward
    pass (the folded person as both sides of a pair: their individual prediction), and the
    best is set on the model."""
    model, dataset = learned
    data = SimpleNamespace(dataset=dataset)
    try:
        chosen = choose_foldin_prior(model, data, OPTS)
        assert chosen is not None
        assert model.foldin_prior == model.hparams["foldin_prior"] == chosen["best"]
    finally:
        model.foldin_prior = 1.0
    people, person, movie, rating = validation_people(data, [3, 8], 15, 0)
    assert chosen["people"] == len(people) and chosen["ratings"] == len(rating)
    by_hand = []
    for prior in GRID:
        folded = model.fold_in(dataset, people, prior=prior)
        users = torch.as_tensor(folded.users[person])
        with torch.no_grad():
            _, own, _ = folded.model(users, users, torch.as_tensor(movie))
        low, high = dataset.rating_range
        predicted = model.unscale(own).clamp(low, high).double().numpy()
        by_hand.append(float(np.sqrt(np.mean((predicted - rating) ** 2))))
    np.testing.assert_allclose(chosen["val_rmse"], by_hand, rtol=1e-6)
    assert chosen["best"] == GRID[int(np.argmin(by_hand))]
    assert by_hand[0] != pytest.approx(by_hand[1])  # the prior matters, so the choice can fail


def test_the_choice_reveals_train_ratings_and_scores_validation_never_test(learned) -> None:  # noqa: F811
    """Scrambling every test rating changes nothing; each person reveals only the earliest
    train ratings of a training user who has validation ratings."""
    model, dataset = learned
    ratings = dataset.ratings.copy()
    is_test = (ratings["split"] == TEST).to_numpy()
    rng = np.random.default_rng(1)
    ratings.loc[is_test, "rating"] = rng.choice([0.5, 5.0], is_test.sum())
    scrambled = dataclasses.replace(dataset, ratings=ratings)
    try:
        a = choose_foldin_prior(model, SimpleNamespace(dataset=dataset), OPTS)
        b = choose_foldin_prior(model, SimpleNamespace(dataset=scrambled), OPTS)
    finally:
        model.foldin_prior = 1.0
    assert a == b
    people, _, _, _ = validation_people(SimpleNamespace(dataset=dataset), [3], 15, 0)
    train = dataset.split("train")
    firsts = {
        user: set(rows.sort_values("timestamp")["movie"].head(3))
        for user, rows in train.groupby("user")
    }
    for p in people:
        assert len(p.movies) == 3
        assert any(set(p.movies) == movies for movies in firsts.values())


def test_training_saves_the_choice_with_the_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path
) -> None:
    """`python -m duorec.train` chooses it after fit; metrics.json and the best checkpoint
    (which recommend and evaluate load) agree."""
    run = trained_run(tmp_path_factory, tiny_cache)
    metrics = json.loads((run / "metrics.json").read_text())
    chosen = metrics["foldin_prior"]
    assert chosen["best"] in chosen["grid"] and len(chosen["val_rmse"]) == len(chosen["grid"])
    assert chosen["best"] == chosen["grid"][int(np.argmin(chosen["val_rmse"]))]
    state = torch.load(best_in_run(run), map_location="cpu", weights_only=False)
    assert state["hyper_parameters"]["foldin_prior"] == chosen["best"]
