"""Fold-in: score people the model was never trained on, from their ratings, without retraining.

`model.fold_in(dataset, people)` returns a *copy* of the model that knows the original
users at their usual indices and the new people after them (`FoldIn.users`), so everything
that scores user indices (`duorec.serving`, `duorec.eval.scoring.model_pair_scorer`) serves
them unchanged. The checkpoint and the model passed in are never modified: every trained
tensor is shared read-only with the copy, and only the new people's rows are new tensors.

How a new person is encoded, for the three-tower model (`DuoModule`):

* user features: computed from their ratings by the code that computed the training users'
  (`duorec.data.features.user_features_for`): mean, activity, genre shares and tastes;
* history bag: their rated movies (centred ratings) plus the movies they only watched
  (centred 0: seen, opinion unknown), newest first, as training bags are built;
* id embedding: the one per-user *parameter*, fitted by a few dozen Adam steps on the
  training objective restricted to this person (their ratings' MSE plus the watch
  softmax over the catalogue), with everything else frozen, starting at 0 with an L2 pull
  towards 0. Why fit it at all: the features and the history describe a person only
  through fixed summaries; the id is what the towers learned to read as "what is
  particular about this person", and a folded-in person without it would be an average
  user with their genre tastes. Why the pull: with 5 ratings the id would otherwise fit
  noise. Its strength is the Gaussian-prior (MAP) ratio noise variance / prior variance,
  the prior variance being the trained ids' own spread, divided by the person's number of
  ratings, so it matters with 5 ratings and fades with 200; times the model's
  `foldin_prior`, chosen on validation after training (`duorec.eval.foldin_choice`), because
  the MAP ratio assumes a model trained under that prior, which the towers were not (on
  ml-latest-small it pulled new people 16 to 64 times too hard).

Only the id is fitted, rather than the whole tower or a new vector in its output space,
because it is exactly what a training user has that a new person lacks: the person then
goes through the same MLP, the same history projection and the same heads as everyone else.

For the factorisation baselines (`FactorizationModule`) the user row (factors and bias) is
the ridge regression of the person's residuals on the frozen movie factors, in closed form,
with the same prior. Any other model is refused with a one-line UsageError. Each model's
`fold_in` method picks its own way (`fold_duo`, `fold_factorization`) and hands it to
`fold_in` here, which checks the people and builds the `FoldIn`; serving and the cold-start
protocol both call the method.

Cost: one pass of the movie tower over the catalogue, then [people, dim] work per step
plus a [people, movies] softmax; at ml-latest-small scale (9.7k movies) about 0.1-0.2 s per
call of one or two people on one CPU thread. People are fitted together but independently
(per-person losses, element-wise Adam), so an evaluation can fold in held-out users a few
hundred at a time (memory is O(people x movies)) and get the same vectors as one by one
(up to float rounding).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from duorec.data.features import user_features_for
from duorec.data.prepared import PreparedDataset
from duorec.errors import UsageError
from duorec.model.base import PairRatingModule
from duorec.model.fusion import individual
from duorec.model.towers import add_id_factors

# residual variance on the scaled axis assumed by the prior: (0.9 stars / 4.5 stars)^2, the
# order of a good model's individual RMSE on MovieLens
NOISE = 0.04
STEPS = 60
LR = 0.02


class NewRatings(Protocol):
    """What fold-in reads of a person (`duorec.data.exports.PersonRatings` is one)."""

    movies: np.ndarray  # movie indices, one per rated movie
    ratings: np.ndarray  # on the data set's scale
    watched: np.ndarray  # movie indices seen without a rating
    timestamps: np.ndarray  # seconds, orders the history bag (0: unknown)


@dataclass
class Person:
    """The simplest NewRatings: movies and their ratings (watched-only and dates optional)."""

    movies: np.ndarray
    ratings: np.ndarray
    watched: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    timestamps: np.ndarray | None = None


@dataclass
class FoldIn:
    """A model copy extended with new people, and where they are in it.

    `model`: scores the data set's users at their indices and the new people at `users`;
    `seen`: each new person's rated and watched movies (to exclude from their rankings);
    `vectors`: their user vectors [P, dim + 1] (`model.user_vectors(users)`), for scorers
    that take vectors rather than indices.
    """

    model: PairRatingModule
    users: np.ndarray
    seen: list[np.ndarray]
    vectors: torch.Tensor


#: how one kind of model folds people in: (people, prior) -> the extended copy
Fit = Callable[[Sequence[NewRatings], float], PairRatingModule]


def fold_in(
    model: PairRatingModule,
    dataset: PreparedDataset,
    people: Sequence[NewRatings],
    fit: Fit,
    prior: float | None = None,
) -> FoldIn:
    """Check `people`, fold them in with the model's own `fit`, and say where they are.

    `prior`: the strength of the pull on a new person's ids, x the MAP ratio (None: the
    model's `foldin_prior`, 1 for models without one)."""
    if not people:
        raise UsageError("no people to fold in")
    for i, person in enumerate(people):
        if len(person.movies) != len(person.ratings):
            raise UsageError(
                f"person #{i + 1}: {len(person.movies)} movies but {len(person.ratings)} ratings"
            )
    if model.training:
        model.eval()
    if prior is None:
        prior = float(getattr(model, "foldin_prior", 1.0))
    if not prior > 0:
        raise UsageError(f"the fold-in prior must be > 0, got {prior}")
    folded = fit(people, prior)
    n = dataset.n_users
    users = np.arange(n, n + len(people), dtype=np.int64)
    seen = [np.union1d(p.movies, p.watched).astype(np.int64) for p in people]
    with torch.no_grad():
        vectors = folded.user_vectors(torch.from_numpy(users))
    return FoldIn(folded, users, seen, vectors)


# ---------------------------------------------------------------------------- copying


def shared_copy(model: PairRatingModule) -> PairRatingModule:
    """A structural copy of the model whose parameters and buffers are the original tensors.

    Replacing a tensor or submodule on the copy leaves the original untouched; the tensors
    themselves must not be written in place (nothing here does).
    """
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    cowatch = getattr(model, "cowatch", None)
    if cowatch is not None and cowatch._weights is not None:  # derived weights: shared too
        memo[id(cowatch._weights)] = cowatch._weights
    clone = copy.deepcopy(model, memo)
    clone.eval()
    return clone


def _frozen_table(old: torch.Tensor, new: torch.Tensor) -> nn.Embedding:
    """An embedding table of the old rows followed by the new ones (no gradient)."""
    weight = torch.cat([old.detach(), new.detach().to(old.dtype)])
    table = nn.Embedding(len(weight), weight.shape[1])
    table.weight = nn.Parameter(weight, requires_grad=False)
    return table


def _prior_weight(trained: torch.Tensor, counts: np.ndarray) -> torch.Tensor:
    """L2 weight per person: NOISE / (prior variance x their number of ratings)."""
    variance = float(trained.detach().pow(2).mean()) or 1e-3
    return torch.as_tensor(NOISE / (variance * np.maximum(counts, 1)), dtype=torch.float32)


# ---------------------------------------------------------------------------- DuoModule


def fold_duo(
    model: PairRatingModule,  # a DuoModule
    dataset: PreparedDataset,
    people: Sequence[NewRatings],
    steps: int,
    lr: float,
    prior: float,
) -> PairRatingModule:
    n_old, n_new = dataset.n_users, len(people)
    person = np.repeat(np.arange(n_new), [len(p.movies) for p in people])
    movie = np.concatenate([np.asarray(p.movies, dtype=np.int64) for p in people])
    rating = np.concatenate([np.asarray(p.ratings, dtype=np.float64) for p in people])
    tower = model.user_tower
    clone = shared_copy(model)

    if tower.features.shape[1]:
        train = dataset.split("train")
        counts = np.bincount(train["user"].to_numpy(), minlength=n_old)
        features = user_features_for(
            person, movie, rating, n_new, dataset.catalog, dataset.features.global_mean, counts
        )
        clone.user_tower.features = torch.cat([tower.features, torch.from_numpy(features)])
    if clone.history is not None:
        _extend_history(clone, people)
    if clone.cowatch is not None:
        _extend_cowatch(clone, people)

    new_users = torch.arange(n_old, n_old + n_new)
    if tower.embedding is not None or tower.id_factors is not None:
        ids, factors = _fit_ids(clone, new_users, person, movie, rating, people, steps, lr, prior)
        if ids is not None:
            clone.user_tower.embedding = _frozen_table(tower.embedding.weight, ids)
        if factors is not None:
            clone.user_tower.id_factors = _frozen_table(tower.id_factors.weight, factors)
    clone.hparams["n_users"] = n_old + n_new
    return clone


def _extend_history(clone: PairRatingModule, people: Sequence[NewRatings]) -> None:
    """Append each person's bag: rated movies centred on their mean, watched-only at 0.

    Newest first and at most as long as the longest training bag (training keeps each
    person's `history_max` most recent ratings; the checkpoint does not record the cap).
    """
    bag = clone.history
    assert bag is not None
    cap = int(torch.diff(bag.indptr).max()) if len(bag.indptr) > 1 else None
    rows_movies, rows_centred, undated = [], [], []
    for p in people:
        movies = np.asarray(p.movies, dtype=np.int64)
        ratings = np.asarray(p.ratings, dtype=np.float64)
        centred = ratings - (ratings.mean() if len(ratings) else 0.0)
        when = np.zeros(len(movies)) if p.timestamps is None else np.asarray(p.timestamps, float)
        undated.append(len(np.unique(when)) < 2)  # one date for all: their order is unknown
        extra = np.setdiff1d(np.asarray(p.watched, dtype=np.int64), movies)
        movies = np.concatenate([movies, extra])
        centred = np.concatenate([centred, np.zeros(len(extra))])
        when = np.concatenate([when, np.zeros(len(extra))])
        order = np.lexsort((movies, -when))
        if cap:
            order = order[:cap]
        rows_movies.append(movies[order])
        rows_centred.append(centred[order].astype(np.float32))
    lengths = torch.tensor([len(m) for m in rows_movies])
    n_before = len(bag.indptr) - 1
    bag.indptr = torch.cat([bag.indptr, bag.indptr[-1] + torch.cumsum(lengths, 0)])
    bag.movies = torch.cat([bag.movies, torch.from_numpy(np.concatenate(rows_movies))])
    bag.centred = torch.cat([bag.centred, torch.from_numpy(np.concatenate(rows_centred))])
    # the data's people are dated; the new ones as their files say (HistoryBag.recent_level)
    before = torch.zeros(n_before, dtype=torch.bool) if bag.undated is None else bag.undated.cpu()
    bag.undated = torch.cat([before, torch.tensor(undated, dtype=torch.bool)]).to(bag.indptr.device)


def _extend_cowatch(clone: PairRatingModule, people: Sequence[NewRatings]) -> None:
    """Append each person's rated and watched movies to the co-watch histories: EASE scores
    any set of movies, so this is its whole fold-in."""
    cowatch = clone.cowatch
    assert cowatch is not None
    rows = [np.union1d(p.movies, p.watched).astype(np.int64) for p in people]
    lengths = torch.tensor([len(r) for r in rows])
    indptr = cowatch.history_indptr
    cowatch.history_indptr = torch.cat([indptr, indptr[-1] + torch.cumsum(lengths, 0)])
    cowatch.history_movies = torch.cat(
        [cowatch.history_movies, torch.from_numpy(np.concatenate(rows))]
    )


def _fit_ids(
    clone: PairRatingModule,
    users: torch.Tensor,
    person: np.ndarray,
    movie: np.ndarray,
    rating: np.ndarray,
    people: Sequence[NewRatings],
    steps: int,
    lr: float,
    prior: float,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The new people's id embeddings [P, embed_dim] and id factors [P, out_dim] (None where
    the tower has no such table), everything else frozen. Each has its own Gaussian prior,
    scaled by the trained rows' spread (and by `prior`), so both fade as a person's ratings
    grow.

    Gradients are taken with `torch.autograd.grad` with respect to the ids alone, so no
    `.grad` of a shared (trained) tensor is ever touched.
    """
    tower = clone.user_tower
    n_new = len(users)
    with torch.no_grad():
        features = tower.features[users]
        movie_out = clone.movie_tower(torch.arange(clone.n_movies))
        mv = movie_out[:, : clone.rating_dim]
        watch = movie_out[:, clone.rating_dim :] if clone.watch_dim else None
        history = (
            clone.history_to_watch(clone.history(users))
            if clone.history_to_watch is not None
            else None
        )
    p = torch.from_numpy(person)
    m = torch.from_numpy(movie)
    target = clone.scale(torch.from_numpy(rating).float())
    # the implicit (SVD++) term of each rating, its own movie left out of the bag as in training
    implicit = 0.0
    if clone.history_to_rating is not None:
        with torch.no_grad():
            implicit = clone.rating_history(users[p], exclude=m)
    counts = np.bincount(person, minlength=n_new)
    tables = {"ids": tower.embedding, "factors": tower.id_factors}
    fitted = {
        name: torch.zeros(n_new, table.embedding_dim, requires_grad=True)
        for name, table in tables.items()
        if table is not None
    }
    priors = {name: prior * _prior_weight(tables[name].weight, counts) for name in fitted}
    # the watch softmax: each watched movie against the movies the person has not seen
    seen_rows, seen_cols = [], []
    for i, q in enumerate(people):
        seen_i = np.union1d(q.movies, q.watched).astype(np.int64)
        seen_rows.append(np.full(len(seen_i), i))
        seen_cols.append(seen_i)
    seen_p = torch.from_numpy(np.concatenate(seen_rows))
    seen_m = torch.from_numpy(np.concatenate(seen_cols))
    unseen = torch.ones(n_new, clone.n_movies, dtype=torch.bool)
    unseen[seen_p, seen_m] = False
    n_seen = torch.bincount(seen_p, minlength=n_new).clamp(min=1).float()
    n_rated = torch.from_numpy(counts).clamp(min=1).float()

    params = list(fitted.values())
    optimiser = torch.optim.Adam(params, lr=lr)
    no_ids = torch.zeros(n_new, 0)
    for _ in range(steps):
        out = tower.net(torch.cat([features, fitted.get("ids", no_ids)], dim=-1))
        out = add_id_factors(out, fitted.get("factors"))
        per_person = torch.zeros(n_new)
        if len(m):
            error = (individual(out[p, : clone.rating_dim] + implicit, mv[m]) - target) ** 2
            mse = torch.zeros(n_new).index_add(0, p, error) / n_rated
            per_person = per_person + clone.individual_weight * mse
        if watch is not None and clone.watch_weight:
            user_watch = out[:, clone.rating_dim :]
            if history is not None:
                user_watch = user_watch + history
            logits = user_watch @ watch[:, :-1].T + watch[:, -1]
            rest = logits.masked_fill(~unseen, float("-inf")).logsumexp(-1)  # [P]
            own = logits[seen_p, seen_m]
            nll = torch.logaddexp(own, rest[seen_p]) - own
            ce = torch.zeros(n_new).index_add(0, seen_p, nll) / n_seen
            per_person = per_person + clone.watch_weight * ce
        penalty = sum(priors[name] * x.pow(2).sum(-1) for name, x in fitted.items())
        loss = (per_person + penalty).sum()
        for x, grad in zip(params, torch.autograd.grad(loss, params), strict=True):
            x.grad = grad
        optimiser.step()
    return (
        fitted["ids"].detach() if "ids" in fitted else None,
        fitted["factors"].detach() if "factors" in fitted else None,
    )


# ---------------------------------------------------------------------------- factorisation


def fold_factorization(
    model: PairRatingModule, people: Sequence[NewRatings], prior: float = 1.0
) -> PairRatingModule:
    """Each person's row: ridge regression on the frozen movie factors (closed form)."""
    clone = shared_copy(model)
    rows = []
    with torch.no_grad():
        trained = model.users.weight
        for person in people:
            movies = torch.as_tensor(np.asarray(person.movies, dtype=np.int64))
            mv = model.movie_vectors(movies).double()
            target = model.scale(torch.as_tensor(person.ratings, dtype=torch.float64))
            design = torch.cat([mv[:, :-1], torch.ones(len(movies), 1, dtype=torch.float64)], 1)
            residual = target - mv[:, -1]
            weight = float(_prior_weight(trained, np.array([1.0]))[0])
            gram = design.T @ design + weight * torch.eye(design.shape[1], dtype=torch.float64)
            rows.append(torch.linalg.solve(gram, design.T @ residual).float())
    clone.users = _frozen_table(trained, torch.stack(rows))
    clone.hparams["n_users"] = len(clone.users.weight)
    return clone
