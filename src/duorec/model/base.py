"""What every pair-rating LightningModule shares: scale, heads, steps, metrics, optimiser.

A model only says how it encodes users and movies into `dim` factors plus one bias
(`user_vectors`, `movie_vectors`) and how a pair's rating follows from the two individual ones
(`pair_rating`). Everything else, training on triples, the torchmetrics, scoring a whole
catalogue, checkpoint bookkeeping, lives here once, so the three-tower model and the
factorisation baselines are trained, swept, evaluated and served by the same code.

Predictions live on the scaled axis [0, 1] = (r - r_min) / (r_max - r_min): the loss is the
scaled MSE the original study quoted; metrics are reported in stars.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from duorec.aggregate import aggregate_members
from duorec.model.fusion import AGGREGATES, aggregate, individual, individual_grid


def encode_unique(encode, ids: torch.Tensor) -> torch.Tensor:
    """Encode each distinct id of the batch once and scatter back.

    Popular movies and active users repeat many times in a batch of triples (each user twice
    per pair at least), so this cuts tower work several-fold at the cost of one sort.
    """
    unique, inverse = torch.unique(ids, return_inverse=True)
    return encode(unique)[inverse]


def load_model(path: str | Path, map_location: str = "cpu") -> PairRatingModule:
    """Load any duorec model from a checkpoint: its class is recorded inside it.

    Nothing in the file runs: it is read weights-only (`duorec.checkpoint_io`), and the class
    it names must be a duorec model, or a file could make us import any module at all.
    """
    from duorec.checkpoint_io import allowed_globals, load_checkpoint_file
    from duorec.errors import UsageError

    checkpoint = load_checkpoint_file(path, map_location=map_location)
    class_path = str(checkpoint.get("duorec_model_class", "duorec.model.module.DuoModule"))
    module_name, _, class_name = class_path.rpartition(".")
    model_class = None
    if module_name.startswith("duorec.model."):
        try:
            model_class = getattr(importlib.import_module(module_name), class_name, None)
        except ImportError:
            pass
    if not (isinstance(model_class, type) and issubclass(model_class, PairRatingModule)):
        raise UsageError(f"checkpoint {path} names {class_path!r}, which is not a duorec model")
    with allowed_globals():
        return model_class.load_from_checkpoint(path, map_location=map_location, weights_only=True)


class Rated(NamedTuple):
    """Scaled (pair, a, b) predictions a ranking computed for some movies of each pair, and
    their ranking scores: every finite score of the grid (a shortlist), when `score` is set."""

    column: torch.Tensor  # [B, S] the movies' columns of the ranking grid
    pair: torch.Tensor  # [B, S]
    rating_a: torch.Tensor  # [B, S]
    rating_b: torch.Tensor  # [B, S]
    score: torch.Tensor | None = None  # [B, S] their ranking scores; the rest are -inf


class PairRatingModule(L.LightningModule):
    """Base class; subclasses define `user_vectors`, `movie_vectors` and maybe `pair_rating`."""

    rank_by = "rating"  # what orders a recommendation; a model with a watch head says otherwise

    def __init__(
        self,
        rating_range: tuple[float, float],
        target: str,
        pair_weight: float,
        individual_weight: float,
        optimizer: Callable[..., torch.optim.Optimizer] | None,
        scheduler: Callable[..., Any] | None,
        factor_l2: float = 0.0,
    ):
        super().__init__()
        if factor_l2 < 0:
            raise ValueError(f"factor_l2 must be >= 0, got {factor_l2}")
        if target not in AGGREGATES:
            raise ValueError(f"unknown target {target!r}: choose one of {AGGREGATES}")
        self.r_min, self.r_max = float(rating_range[0]), float(rating_range[1])
        self.target = target
        self.pair_weight = pair_weight
        self.individual_weight = individual_weight
        self.factor_l2 = factor_l2
        # partials from conf/optim and conf/scheduler, completed in configure_optimizers
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    # ------------------------------------------------------------------ what a model defines

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """[N] user indices -> [N, dim + 1] (factors, bias)."""
        raise NotImplementedError

    def movie_vectors(self, movies: torch.Tensor) -> torch.Tensor:
        """[N] movie indices -> [N, dim + 1] (factors, bias)."""
        raise NotImplementedError

    def pair_rating(
        self,
        rating_a: torch.Tensor,
        rating_b: torch.Tensor,
        together: torch.Tensor,
        apart: torch.Tensor,
    ) -> torch.Tensor:
        """The pair's scaled rating; by default the target aggregate of the individual ones."""
        return aggregate(rating_a, rating_b, self.target)

    # ------------------------------------------------------------------ scale

    def scale(self, stars: torch.Tensor) -> torch.Tensor:
        return (stars - self.r_min) / (self.r_max - self.r_min)

    def unscale(self, scaled: torch.Tensor) -> torch.Tensor:
        return (scaled * (self.r_max - self.r_min) + self.r_min).clamp(self.r_min, self.r_max)

    # ------------------------------------------------------------------ prediction

    def forward(
        self, user_a: torch.Tensor, user_b: torch.Tensor, movie: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled predictions (pair, person a, person b) for aligned triples [N]."""
        users = self.user_vectors_for(torch.cat([user_a, user_b]), torch.cat([movie, movie]))
        return self.predict_from(users, movie)

    def user_vectors_for(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        """User vectors for rating `movies` (aligned): a model that reads a person's history
        must leave the movie out; one that does not encodes each distinct user once."""
        return encode_unique(self.user_vectors, users)

    def predict_from(
        self, users: torch.Tensor, movie: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pair, a, b) from the stacked user vectors [a; b] [2N, dim + 1] and movies [N]."""
        return self.predict_vectors(users, encode_unique(self.movie_vectors, movie))

    def predict_vectors(
        self, users: torch.Tensor, mv: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pair, a, b) from stacked user vectors [a; b] [2N, dim + 1] and movie vectors [N]."""
        ua, ub = users[: len(mv)], users[len(mv) :]
        ra, rb = individual(ua, mv), individual(ub, mv)
        together = ((ua * ub)[:, :-1] * mv[:, :-1]).sum(-1)
        apart = ((ua - ub).abs()[:, :-1] * mv[:, :-1]).sum(-1)
        return self.pair_rating(ra, rb, together, apart), ra, rb

    @torch.no_grad()
    def encode_movies(self, batch_size: int = 65536) -> torch.Tensor:
        """Every movie's vector, computed once per call site: [n_movies, dim + 1]."""
        ids = torch.arange(self.n_movies, device=self.device)
        return torch.cat(
            [
                self.movie_vectors(ids[s : s + batch_size])
                for s in range(0, self.n_movies, batch_size)
            ]
        )

    @torch.no_grad()
    def score_grid(
        self,
        user_a: torch.Tensor,
        user_b: torch.Tensor,
        movie_vectors: torch.Tensor,
        user_vectors: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled (pair, a, b) predictions of B pairs against M movies -> three [B, M].

        The same heads as `forward`, as matrix products: a catalogue costs three [B, dim] x
        [dim, M] products. `movie_vectors` comes from `encode_movies`, computed once;
        `user_vectors`, when given, is `pair_user_vectors(user_a, user_b)`, computed once.
        """
        ua, ub = user_vectors or self.pair_user_vectors(user_a, user_b)
        ra, rb = individual_grid(ua, movie_vectors), individual_grid(ub, movie_vectors)
        factors = movie_vectors[:, :-1].T
        together = (ua * ub)[:, :-1] @ factors
        apart = (ua - ub).abs()[:, :-1] @ factors
        return self.pair_rating(ra, rb, together, apart), ra, rb

    @torch.no_grad()
    def pair_user_vectors(
        self, user_a: torch.Tensor, user_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both sides' rating vectors, in one tower call over [lower ids; higher ids].

        One call costs half of two (a tower is a few small layers: the time goes to calling
        them), and ordering each pair by id makes it exactly symmetric: a matrix product's
        row can differ in its last bit with its position in the batch, but (a, b) and (b, a)
        put the same people in the same rows, so swapping them gives bit-identical scores.
        A caller that both ranks and shows ratings for the same pairs computes them once
        and passes them on (a person's vector reads their history bag).
        """
        low, high = torch.minimum(user_a, user_b), torch.maximum(user_a, user_b)
        both = self.user_vectors(torch.cat([low, high]))
        first, second = both[: len(low)], both[len(low) :]
        a_is_low = (user_a == low)[:, None]
        return torch.where(a_is_low, first, second), torch.where(a_is_low, second, first)

    @property
    def ranks_by_watch(self) -> bool:
        """Whether `rank_grid` knows "both would watch" (a watch head), not only ratings."""
        return False

    @property
    def needs_watch_vectors(self) -> bool:
        """Whether ranking by watch reads `encode_watch()` (`rank_grid`'s `watch_vectors`)."""
        return False

    @torch.no_grad()
    def encode_watch(self) -> torch.Tensor | None:
        """Every movie's watch factors, for models with a watch head; None here."""
        return None

    @torch.no_grad()
    def rank_grid(
        self,
        members: torch.Tensor,
        movie_vectors: torch.Tensor,
        watch_vectors: torch.Tensor | None,
        rank_by: str | None = None,
        candidates: torch.Tensor | None = None,
        user_vectors: tuple[torch.Tensor, torch.Tensor] | None = None,
        aggregate: str | None = None,
    ) -> torch.Tensor:
        """[B, M] ranking scores of pairs or groups `members` [B, k] against the movies of
        `movie_vectors` (`candidates`: their indices, None for the whole catalogue); see
        `rank_and_rate`."""
        args = (movie_vectors, watch_vectors, rank_by, candidates, user_vectors, aggregate)
        return self.rank_and_rate(members, *args)[0]

    @torch.no_grad()
    def rank_and_rate(
        self,
        members: torch.Tensor,
        movie_vectors: torch.Tensor,
        watch_vectors: torch.Tensor | None,
        rank_by: str | None = None,
        candidates: torch.Tensor | None = None,
        user_vectors: tuple[torch.Tensor, torch.Tensor] | None = None,
        aggregate: str | None = None,
        rating: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Rated | None]:
        """[B, M] ranking scores of B pairs or groups (`members` [B, k], k = 2..6), and the
        ratings predicted on the way for a few movies per pair (a shortlist), None when it
        predicted none or every one: a caller showing ratings beside the ranking reads the
        chosen movies' there rather than running the pair head again.

        The one place `rank_by` is decided, for every group size:

        * `rating`: the group's predicted rating (`rating_grid`, scaled);
        * `watch`: "would all watch it" (`watch_scores`; a model without one ranks by rating);
        * `score`: watch + rank_rating_weight * rating (`rank_score`).

        `aggregate` (None: the model's `target`) is how the group is served: `min` (least
        misery) and `max` (most pleasure) combine the members' ratings AND their "would
        watch" scores by that rule, so the least (most) happy member decides the order.
        `watch_vectors`: `encode_watch()` restricted to the same `candidates` as
        `movie_vectors`; `user_vectors`: a pair's `pair_user_vectors`, computed once;
        `rating`: `rating_grid(members, movie_vectors, user_vectors, aggregate)` when the caller
        already has it (a group's shown ratings come from the same grid).
        """
        rank_by = rank_by or self.rank_by
        how = aggregate or self.target
        watch = (
            None
            if rank_by == "rating"
            else self.watch_scores(members, watch_vectors, candidates, how)
        )
        if watch is not None and rank_by == "watch":
            return watch, None
        if watch is not None:
            short = self.shortlisted(members, movie_vectors, watch, candidates, user_vectors, how)
            if short is not None:
                return short
        if rating is None:
            rating = self.rating_grid(members, movie_vectors, user_vectors, how)
        return (rating if watch is None else self.rank_score(watch, rating)), None

    @torch.no_grad()
    def rating_grid(
        self,
        members: torch.Tensor,
        movie_vectors: torch.Tensor,
        user_vectors: tuple[torch.Tensor, torch.Tensor] | None = None,
        aggregate: str | None = None,
    ) -> torch.Tensor:
        """Scaled [B, M] rating of pairs or groups [B, k]: the pair head (k = 2) or the group
        head (`group_grid`) for the model's own target, else `aggregate` of the members'
        individual predictions (each clamped by nothing: this is a ranking key)."""
        how = aggregate or self.target
        if members.shape[1] == 2 and how == self.target:
            return self.score_grid(members[:, 0], members[:, 1], movie_vectors, user_vectors)[0]
        group, each = self.group_grid(members, movie_vectors)
        return group if how == self.target else aggregate_members(each, how)

    @torch.no_grad()
    def group_grid(
        self, members: torch.Tensor, movie_vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled (group [B, M], each member's [B, M, k]) of B groups against M movies: the
        target aggregate of the members' predictions here, a group head where a model has one
        (`group_rating`)."""
        b, k = members.shape
        users = self.user_vectors(members.reshape(-1)).reshape(b, k, -1)
        each = torch.stack([individual_grid(users[:, j], movie_vectors) for j in range(k)], -1)
        return self.group_rating(each, users, movie_vectors), each

    def group_rating(
        self, each: torch.Tensor, users: torch.Tensor, movie_vectors: torch.Tensor
    ) -> torch.Tensor:
        """A group's scaled rating grid [B, M] from its members' [B, M, k] (and their vectors
        [B, k, dim + 1]): the target aggregate, for a model without a group head."""
        return aggregate_members(each, self.target)

    def watch_scores(
        self,
        members: torch.Tensor,
        watch_vectors: torch.Tensor | None,
        candidates: torch.Tensor | None,
        how: str,
    ) -> torch.Tensor | None:
        """[B, M] "would all watch it" of groups [B, k]; None for a model that rates only."""
        return None

    def shortlisted(
        self,
        members: torch.Tensor,
        movie_vectors: torch.Tensor,
        watch: torch.Tensor,
        candidates: torch.Tensor | None,
        user_vectors: tuple[torch.Tensor, torch.Tensor] | None,
        how: str,
    ) -> tuple[torch.Tensor, Rated] | None:
        """The ranking computed from a shortlist of each row's best movies, or None where the
        model scores the whole grid (every model but DuoModule over a large catalogue)."""
        return None

    def rank_score(self, watch: torch.Tensor, rating: torch.Tensor) -> torch.Tensor:
        """The ranking score from "would watch" and the rating grid; a rating model has no
        watch part."""
        return rating

    @property
    def has_group_head(self) -> bool:
        """Whether the model learned a group's rating (`group_rating`) beyond the aggregate."""
        return False

    # ------------------------------------------------------------------ new people

    def fold_in(self, dataset: Any, people: Any, prior: float | None = None, **options: Any) -> Any:
        """A copy of the model that also scores `people` who are not in the data, from their
        ratings, without retraining (`duorec.model.foldin`); a model that cannot says so."""
        from duorec.errors import UsageError

        raise UsageError(
            f"fold-in is not available for {type(self).__name__}: use a DuoModule "
            "(model=duo) or factorisation (model=mf|bias) checkpoint"
        )

    # ------------------------------------------------------------------ steps

    def rating_losses(
        self, users: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted loss, pair loss) of a batch given its stacked user vectors [a; b].

        With `factor_l2` > 0 the loss adds that times the mean squared norm of the rating
        factors the batch used (each person's and the movie's, biases excluded): the L2 of
        matrix factorisation, paid per rating as SGD pays it, so an often-seen user or movie
        is held as firmly as its data allows and a rarely-seen one stays near zero. Weight
        decay cannot do this job: AdamW's decay is lr x weight_decay per step (1e-5 here),
        and without it a factor model overfits before it learns the interactions (synthetic
        small, Lightning-trained MF: validation RMSE 0.5164 at best without it, 0.4691 with 1e-2).
        """
        mv = encode_unique(self.movie_vectors, batch["movie"])
        pair, ra, rb = self.predict_vectors(users, mv)
        ta, tb = self.scale(batch["rating_a"]), self.scale(batch["rating_b"])
        pair_loss = F.mse_loss(pair, aggregate(ta, tb, self.target))
        individual_loss = (F.mse_loss(ra, ta) + F.mse_loss(rb, tb)) / 2
        loss = self.pair_weight * pair_loss + self.individual_weight * individual_loss
        if self.factor_l2:
            norms = users[:, :-1].pow(2).sum(-1).mean() + mv[:, :-1].pow(2).sum(-1).mean()
            loss = loss + self.factor_l2 * norms
        return loss, pair_loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        movie = batch["movie"]
        users = self.user_vectors_for(
            torch.cat([batch["user_a"], batch["user_b"]]), torch.cat([movie, movie])
        )
        loss, pair_loss = self.rating_losses(users, batch)
        self.log_dict(
            {"train/loss": loss, "train/pair_scaled_mse": pair_loss},
            on_step=True,
            on_epoch=True,
            batch_size=len(movie),
        )
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: MetricCollection) -> None:
        pair, _, _ = self(batch["user_a"], batch["user_b"], batch["movie"])
        truth = aggregate(batch["rating_a"], batch["rating_b"], self.target)
        metrics.update(self.unscale(pair), truth)

    def _log_metrics(self, metrics: MetricCollection, prefix: str) -> None:
        values = metrics.compute()  # torchmetrics syncs the states across DDP ranks here
        mse = values[f"{prefix}/mse"]
        self.log_dict(
            {
                f"{prefix}/pair_rmse": mse.sqrt(),
                f"{prefix}/pair_mae": values[f"{prefix}/mae"],
                f"{prefix}/scaled_mse": mse / (self.r_max - self.r_min) ** 2,
            },
            sync_dist=True,  # already synced by torchmetrics: identical on every rank
        )
        metrics.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    # ------------------------------------------------------------------ bookkeeping

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["duorec_model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def configure_optimizers(self) -> dict[str, Any]:
        if self.optimizer_factory is None:
            raise ValueError("no optimizer: build the model with optimizer=partial(...)")
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = self.scheduler_factory(optimizer, total_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
