"""Choose fold-in's prior strength on validation, after training (`eval.foldin_choice`).

Fold-in (`duorec.model.foldin`) pulls a new person's ids towards zero with a Gaussian prior whose
strength is the MAP ratio noise / (prior variance x ratings) times the model's
`foldin_prior`. The MAP ratio assumes the towers were trained under that prior, and they
were not (their ids are held by AdamW's decay and the factor L2 of the whole batch), so the
multiplier is chosen here rather than assumed. On ml-latest-small the ratio alone pulled
new people so hard that 20 revealed ratings scored worse than the bias baseline.

The choice needs people the model was not fitted to from ratings it never saw, without
holding users out of training: a seeded sample of training users is folded in *as new
people* from their N earliest train ratings (N from `reveal`, the cold-start protocol's
reveal rule) and scored on their validation ratings. The towers have seen those users' train
ratings, but fold-in refits the person from the N revealed alone (features, history bag and
ids), and validation ratings were never trained on; the test split is never read. The
multiplier with the lowest individual-rating RMSE over all N together is set on the model
and saved with the checkpoint, so `recommend people=...` and the cold-start evaluation
fold in the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from duorec.data.datamodule import PairDataModule
from duorec.eval.coldstart import reveal_earliest
from duorec.model.foldin import Person
from duorec.model.fusion import individual
from duorec.model.module import DuoModule

log = logging.getLogger(__name__)


def choose_foldin_prior(
    model: Any, datamodule: PairDataModule, opts: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Set `model.foldin_prior` to the best of `eval.foldin_choice.priors` on validation;
    what metrics.json records of it. None when there is no grid or nothing to fold in."""
    choice = opts.get("foldin_choice") or {}
    grid = [float(p) for p in choice.get("priors") or []]
    if not grid or not isinstance(model, DuoModule):
        return None
    sample = validation_people(
        datamodule, [int(n) for n in choice["reveal"]], int(choice["users"]), int(opts["seed"])
    )
    if sample is None:
        log.warning("fold-in prior: no training user has validation ratings; kept %s", grid[0])
        return None
    people, person, movie, rating = sample
    rmse = [foldin_rmse(model, datamodule, people, person, movie, rating, p) for p in grid]
    best = grid[int(np.argmin(rmse))]
    model.foldin_prior = best
    model.hparams["foldin_prior"] = best
    log.info("fold-in prior chosen on validation: %s (RMSE %s)", best, rmse)
    return {
        "best": best,
        "grid": grid,
        "val_rmse": rmse,
        "people": len(people),
        "ratings": int(len(rating)),
    }


def validation_people(
    datamodule: PairDataModule, reveal: list[int], users: int, seed: int
) -> tuple[list[Person], np.ndarray, np.ndarray, np.ndarray] | None:
    """Training users re-encoded as new people: for each N of `reveal`, up to `users`
    seeded users with more than N train ratings and some validation ratings, revealing their
    N earliest train ratings. Returns (people, then each validation rating's person index,
    movie and rating), or None when no user qualifies."""
    ds = datamodule.dataset
    train, val = ds.split("train"), ds.split("val")
    val_rows = val.groupby("user").indices
    rng = np.random.default_rng([seed, 0xF01D])
    people: list[Person] = []
    person, movie, rating = [], [], []
    for n in reveal:
        revealed, _ = reveal_earliest(train[train["user"].isin(list(val_rows))], n, seed)
        revealed_rows = revealed.groupby("user").indices
        chosen = np.sort(rng.permutation(np.fromiter(revealed_rows, np.int64))[:users])
        for user in chosen:
            mine, scored = revealed.iloc[revealed_rows[user]], val.iloc[val_rows[user]]
            person.append(np.full(len(scored), len(people)))
            movie.append(scored["movie"].to_numpy(np.int64))
            rating.append(scored["rating"].to_numpy(np.float64))
            people.append(
                Person(
                    mine["movie"].to_numpy(np.int64),
                    mine["rating"].to_numpy(np.float64),
                    timestamps=mine["timestamp"].to_numpy(np.int64),
                )
            )
    if not people:
        return None
    return people, np.concatenate(person), np.concatenate(movie), np.concatenate(rating)


def foldin_rmse(
    model: DuoModule,
    datamodule: PairDataModule,
    people: list[Person],
    person: np.ndarray,
    movie: np.ndarray,
    rating: np.ndarray,
    prior: float,
) -> float:
    """RMSE (stars) of the folded-in people's own predictions of `rating` with this prior."""
    folded = model.fold_in(datamodule.dataset, people, prior=prior)  # fits with gradients
    low, high = datamodule.dataset.rating_range
    with torch.no_grad():
        users = folded.vectors[torch.from_numpy(person)]
        movies = folded.model.movie_vectors(torch.from_numpy(movie))
        predicted = model.unscale(individual(users, movies)).clamp(low, high).double().numpy()
    return float(np.sqrt(np.mean((predicted - rating) ** 2)))
