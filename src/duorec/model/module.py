"""DuoModule: user tower, movie tower and symmetric fusion, trained on pair triples.

Each triple carries both people's own ratings as well as the pair's target, so the towers are
trained on both: the individual loss gives each person's predicted rating (shown beside a
recommendation) and the pair loss trains the fusion. Shared machinery is in `base.py`.

Ranking needs more than ratings: a model trained only on observed ratings learns how a movie
would be rated *if watched*, not which unseen movies a pair would choose (Cremonesi et al.
2010). So the towers also emit `watch_dim` "watch" factors, trained with a softmax over the
catalogue: for a triple (a, b, m), m is what a watched, what b watched, and what the two
watched together (the pair's logits are the sum of the two people's, so the pair softmax is
the product of their preferences: both must want it). The user tower reads each person's
train history (`HistoryBag`) with the triple's movie masked out, so neither head ever sees
its own target. Ranking scores combine the two heads (`rank_and_rate`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from duorec.aggregate import aggregate_members
from duorec.data.prepared import PreparedDataset
from duorec.model.base import PairRatingModule, Rated
from duorec.model.config import DuoConfig
from duorec.model.cowatch import COWATCH_RULES, CoWatch, fit_cowatch
from duorec.model.cowatch import describe as describe_cowatch
from duorec.model.foldin import LR, STEPS, FoldIn, NewRatings, fold_duo, fold_in
from duorec.model.fusion import SymmetricFusion, aggregate, gather_movies, individual_grid
from duorec.model.group_fusion import GroupFusion, group_head_grid, group_loss
from duorec.model.history import HistoryBag, ragged_positions
from duorec.model.towers import MovieTower, TowerConfig, UserTower


class DuoModule(PairRatingModule):
    """Predicts a pair's rating of a movie from two user towers' and one movie tower's output."""

    #: the flat settings `**settings` takes (for checks of a command line's overrides)
    setting_keys = DuoConfig.keys()

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        n_user_features: int,
        n_movie_features: int,
        n_people: int,
        max_people: int,
        rating_range: tuple[float, float],
        n_history: int = 0,
        *,
        config: DuoConfig | None = None,
        n_cowatch: tuple[int, int] = (0, 0),
        cowatch_fit: dict[str, Any] | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        **settings: Any,
    ):
        """The sizes come from the data (`from_dataset` reads them); everything else is a
        `DuoConfig`, or its flat keys as conf/model/duo.yaml and checkpoints hold them
        (`settings`). `n_cowatch`, `cowatch_fit`: the co-watch fit's sizes and record."""
        config = config if config is not None else DuoConfig.from_flat(settings)
        towers, losses, watch, ranking = config.towers, config.losses, config.watch, config.ranking
        super().__init__(
            rating_range,
            losses.target,
            losses.pair_weight,
            losses.individual_weight,
            optimizer,
            scheduler,
            losses.factor_l2,
        )
        self.config = config
        # flat, plain values (the optimiser partials stay out): a checkpoint loads weights-only
        # and without Hydra, and one written before the config groups loads the same way
        sizes = dict(
            n_users=n_users,
            n_movies=n_movies,
            n_user_features=n_user_features,
            n_movie_features=n_movie_features,
            n_people=n_people,
            max_people=max_people,
            rating_range=rating_range,
            n_history=n_history,
            n_cowatch=n_cowatch,
            cowatch_fit=cowatch_fit,
        )
        self.save_hyperparameters({**sizes, **config.flat()}, logger=False)
        check_settings(config, n_cowatch)
        factor_sides = ID_FACTORS[towers.id_factors]
        out_dim, watch_dim = towers.out_dim, watch.watch_dim
        width = out_dim if towers.id_factor_dim is None else min(towers.id_factor_dim, out_dim)
        self.n_movies = n_movies
        self.rating_dim = out_dim + 1  # factors plus one bias (see fusion.individual)
        self.watch_dim = watch_dim
        self.watch_weight = watch.watch_weight
        self.watch_negatives = watch.watch_negatives
        self.watch_batch = watch.watch_batch
        # how a list is ordered; the weight and rule are re-chosen on validation after training
        self.rank_by = ranking.rank_by
        self.rank_rating_weight = ranking.rank_rating_weight
        self.rank_pair_rule = ranking.rank_pair_rule
        self.rank_shortlist = ranking.rank_shortlist
        # strength of fold-in's prior on a new person's ids, x the MAP ratio (duorec.model.foldin);
        # chosen on validation after training (duorec.eval.foldin_choice), like the rank weight
        self.foldin_prior = ranking.foldin_prior
        # how much a person's recent rating level moves their bias; chosen on validation after
        # training (duorec.eval.recent_level), like the rank weight; 0: not at all
        self.recent_weight = watch.recent_weight
        # "both would watch": EASE fitted on train in `from_dataset` (cowatch.py says why)
        self.cowatch = CoWatch(n_users, n_movies, *n_cowatch) if n_cowatch[1] else None
        # the whole history (which movies, and how they were rated) feeds the watch factors;
        # read whole by the rating head too, it let the model memorise train ratings
        # (validation RMSE rose after two epochs on ml-latest-small), so the rating head may
        # read only its "watched" half (history_rating, below)
        # use_history: false turns every use of the bag off (watch and rating heads alike)
        history_rating = watch.history_rating and watch.use_history
        self.history = (
            HistoryBag(n_users, n_movies, n_history, towers.embed_dim)
            if watch.use_history and (watch_dim or history_rating)
            else None
        )
        self.history_to_watch = (
            nn.Linear(self.history.out_dim, watch_dim)
            if self.history is not None and watch_dim
            else None
        )
        user = TowerConfig(
            towers.embed_dim,
            towers.hidden,
            out_dim + 1 + watch_dim,
            towers.layers,
            towers.dropout,
            towers.use_ids,
            towers.use_features,
            False,
            width if "users" in factor_sides else 0,
        )
        # the movie's watch factors come with their own bias (popularity)
        movie = TowerConfig(
            towers.embed_dim,
            towers.hidden,
            out_dim + 1 + watch_dim + (1 if watch_dim else 0),
            towers.layers,
            towers.dropout,
            towers.use_ids,
            towers.use_features,
            towers.use_people,
            width if "movies" in factor_sides else 0,
        )
        self.user_tower = UserTower(n_users, n_user_features, user)
        self.movie_tower = MovieTower(n_movies, n_movie_features, n_people, max_people, movie)
        head = (towers.fusion_hidden, 2, towers.dropout, losses.target)
        self.fusion = SymmetricFusion(*head)
        # groups of 2..6 (data.group_sizes): a head of its own, built last and only then, so
        # a pairs-only model's parameters and random stream are exactly what they were
        self.group_head = GroupFusion(*head) if losses.groups else None
        # SVD++'s implicit term: *which* movies a person rated (the "watched" half of the bag,
        # not how: the ratings half let the rating head memorise train ratings), added to the
        # rating factors and bias. Zero at the start and built last, so it begins as the model
        # without it, parameters and random stream alike
        self.history_to_rating = (
            nn.Linear(self.history.embedding.embedding_dim, self.rating_dim)
            if history_rating
            else None
        )
        if self.history_to_rating is not None:
            nn.init.zeros_(self.history_to_rating.weight)
            nn.init.zeros_(self.history_to_rating.bias)

    @classmethod
    def from_dataset(
        cls,
        dataset: PreparedDataset,
        max_people_per_movie: int,
        history_max: int | None,
        **kwargs: Any,
    ) -> DuoModule:
        """Size the towers from a prepared dataset and copy its features into the buffers.

        A movie's people bag keeps its first `max_people_per_movie` people (directors, then
        writers, then the top-billed cast): the bag is a padded matrix, so its width is paid
        for every movie. The history bag holds train ratings only, each person's
        `history_max` most recent.
        """
        f = dataset.features
        max_people = int(np.diff(f.people_offsets).max(initial=0))
        train = dataset.split("train")
        fit = None
        if kwargs.get("cowatch"):
            # plain values: the settings go into the checkpoint, which must load without Hydra
            kwargs["cowatch"] = {
                k: v if isinstance(v, int | float | str) else [float(x) for x in v]
                for k, v in dict(kwargs["cowatch"]).items()
            }
            val = dataset.split("val")
            fit = fit_cowatch(
                {c: train[c].to_numpy() for c in ("user", "movie", "rating", "timestamp")},
                {c: val[c].to_numpy() for c in ("user", "movie", "rating")},
                dataset.n_users,
                dataset.n_movies,
                **kwargs["cowatch"],
            )
            kwargs["n_cowatch"] = (len(train), len(fit.weight))
            kwargs["cowatch_fit"] = describe_cowatch(fit)
        module = cls(
            n_users=dataset.n_users,
            n_movies=dataset.n_movies,
            n_user_features=f.user.shape[1],
            n_movie_features=f.movie.shape[1],
            n_people=len(f.people_vocab),
            max_people=min(max_people, max_people_per_movie),
            rating_range=dataset.rating_range,
            n_history=history_size(train, history_max),
            **kwargs,
        )
        # id factors start at zero (towers.id_factor_table): an id with no train rating
        # never gets a gradient, so its factors stay exactly zero
        with torch.no_grad():
            if module.user_tower.features.shape[1]:
                module.user_tower.features.copy_(torch.from_numpy(f.user))
            if module.movie_tower.features.shape[1]:
                module.movie_tower.features.copy_(torch.from_numpy(f.movie))
            module.movie_tower.set_people(f.people_offsets, f.people_index)
            if module.history is not None:
                module.history.set_history(
                    train["user"].to_numpy(),
                    train["movie"].to_numpy(),
                    train["rating"].to_numpy(),
                    train["timestamp"].to_numpy(),
                    history_max,
                )
            if fit is not None:
                module.cowatch.set(fit, train["user"].to_numpy(), train["movie"].to_numpy())
        return module

    # ------------------------------------------------------------------ towers

    def encode_users(
        self, users: torch.Tensor, exclude: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The whole user vector [N, rating_dim + watch_dim]: the tower's output, with the
        history bag (`exclude`: each row's masked movie) added to the watch factors."""
        out = self.user_tower(users)
        if self.history_to_watch is None:
            return out
        watch = out[:, self.rating_dim :] + self.history_to_watch(self.history(users, exclude))
        return torch.cat([out[:, : self.rating_dim], watch], dim=-1)

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._rating_vectors(users)

    def user_vectors_for(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        """Rating vectors for rating `movies` (aligned): with `history_rating`, each row's
        history bag leaves its movie out, so the rating never sees its own target."""
        if self.history_to_rating is None:
            return super().user_vectors_for(users, movies)
        return self._rating_vectors(users, movies)

    def _rating_vectors(
        self, users: torch.Tensor, exclude: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The tower's rating factors and bias, plus the implicit term with `history_rating`,
        plus `recent_weight` x the person's recent rating level on the bias."""
        out = self.user_tower(users)[:, : self.rating_dim]
        if self.history_to_rating is not None:
            out = out + self.rating_history(users, exclude)
        if self.recent_weight and self.history is not None:
            shift = (
                self.recent_weight * self.history.recent_level(users) / (self.r_max - self.r_min)
            )
            out = torch.cat([out[:, :-1], out[:, -1:] + shift[:, None]], dim=1)
        return out

    def rating_history(
        self, users: torch.Tensor, exclude: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The implicit (SVD++) term of the rating vectors: the watched half of each user's
        history bag (`exclude`: each row's movie to leave out), projected."""
        return self.history_to_rating(self.history(users, exclude, watched_only=True))

    def movie_vectors(self, movies: torch.Tensor) -> torch.Tensor:
        return self.movie_tower(movies)[:, : self.rating_dim]

    def pair_rating(
        self,
        rating_a: torch.Tensor,
        rating_b: torch.Tensor,
        together: torch.Tensor,
        apart: torch.Tensor,
    ) -> torch.Tensor:
        return self.fusion(rating_a, rating_b, together, apart)

    def rating_losses(
        self, users: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair losses, plus the group head's on a group batch (`members` in it)."""
        loss, pair_loss = super().rating_losses(users, batch)
        if self.group_head is not None and "members" in batch:
            loss = loss + self.pair_weight * group_loss(self, batch)
        return loss, pair_loss

    # ------------------------------------------------------------------ the watch head

    @property
    def ranks_by_watch(self) -> bool:
        return self.cowatch is not None or self.watch_dim > 0

    @property
    def needs_watch_vectors(self) -> bool:
        return self.cowatch is None and self.watch_dim > 0  # co-watch ranks without them

    @torch.no_grad()
    def encode_watch(self, batch_size: int = 65536) -> torch.Tensor | None:
        """Every movie's watch factors and bias [n_movies, watch_dim + 1] (None: no head)."""
        if not self.watch_dim:
            return None
        ids = torch.arange(self.n_movies, device=self.device)
        parts = [
            self.movie_tower(ids[s : s + batch_size])[:, self.rating_dim :]
            for s in range(0, self.n_movies, batch_size)
        ]
        return torch.cat(parts)

    @torch.no_grad()
    def watch_grid(
        self, user_a: torch.Tensor, user_b: torch.Tensor, watch_vectors: torch.Tensor
    ) -> torch.Tensor:
        """Log-odds that both would watch each movie: the sum of the two people's logits."""
        wa = self.encode_users(user_a)[:, self.rating_dim :]
        wb = self.encode_users(user_b)[:, self.rating_dim :]
        factors, bias = watch_vectors[:, :-1], watch_vectors[:, -1]
        return (wa + wb) @ factors.T + 2 * bias

    def _watch_loss(
        self, users: torch.Tensor, user_out: torch.Tensor, movie: torch.Tensor
    ) -> torch.Tensor:
        """Softmax cross-entropy of the triple's movie for a, for b and for the pair.

        Over the whole catalogue, with every other movie the person (or the pair) has already
        rated masked out: those are not negatives, and at ranking time they are never
        candidates. With `watch_negatives` > 0, a shared uniform sample of that many movies
        plus the batch's own replaces the catalogue (uniform: the logQ correction is a
        constant and cancels), for catalogues too large for a full softmax per step.
        """
        n = len(movie)
        if self.watch_negatives and self.watch_negatives < self.n_movies:
            sampled = torch.randint(0, self.n_movies, (self.watch_negatives,), device=self.device)
            columns = torch.unique(torch.cat([movie, sampled]))
            target = torch.searchsorted(columns, movie)
        else:
            columns = torch.arange(self.n_movies, device=self.device)
            target = movie
        out = self.movie_tower(columns)[:, self.rating_dim :]
        watch = user_out[:, self.rating_dim :]
        logits = watch @ out[:, :-1].T + out[:, -1]  # [2n, C]
        if self.history is not None:
            start = self.history.indptr[users]
            row, flat = ragged_positions(start, self.history.indptr[users + 1] - start)
            seen = self.history.movies[flat]
            col = torch.searchsorted(columns, seen).clamp(max=len(columns) - 1)
            hit = (columns[col] == seen) & (seen != torch.cat([movie, movie])[row])
            mask = torch.zeros_like(logits, dtype=torch.bool)
            mask[row[hit], col[hit]] = True
            logits = logits.masked_fill(mask, float("-inf"))
            pair_logits = (logits[:n] + logits[n:]).masked_fill(mask[:n] | mask[n:], float("-inf"))
        else:
            pair_logits = logits[:n] + logits[n:]
        each = F.cross_entropy(logits, torch.cat([target, target]))
        return (each + F.cross_entropy(pair_logits, target)) / 2

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if not self.watch_dim:
            return super().training_step(batch, batch_idx)
        user_a, user_b, movie = batch["user_a"], batch["user_b"], batch["movie"]
        users, movies = torch.cat([user_a, user_b]), torch.cat([movie, movie])
        rating_loss, pair_loss = self.rating_losses(self.user_vectors_for(users, movies), batch)
        # the catalogue softmax costs O(rows x movies): it sees the first `watch_batch` triples
        k, n = min(self.watch_batch, len(movie)), len(movie)
        rows = torch.cat([torch.arange(k), n + torch.arange(k)]).to(movie.device)
        out = self.encode_users(users[rows], exclude=movies[rows])
        watch_loss = self._watch_loss(users[rows], out, movie[:k])
        loss = rating_loss + self.watch_weight * watch_loss
        self.log_dict(
            {"train/loss": loss, "train/pair_scaled_mse": pair_loss, "train/watch_ce": watch_loss},
            on_step=True,
            on_epoch=True,
            batch_size=len(movie),
        )
        return loss

    # ------------------------------------------------------------------ ranking

    def watch_scores(
        self,
        members: torch.Tensor,
        watch_vectors: torch.Tensor | None,
        candidates: torch.Tensor | None,
        how: str,
    ) -> torch.Tensor | None:
        """[B, M] "would all watch it" of pairs or groups [B, k]: the co-watch model's
        (`rank_pair_rule` over every member; min / max of their percentiles for least misery /
        most pleasure) when there is one, else the learned watch head's logits summed over the
        members (their min / max). None without either: the model ranks by rating."""
        if self.cowatch is None and watch_vectors is None:
            return None
        extreme = how in ("min", "max")
        if self.cowatch is not None:
            if extreme:
                parts = self.cowatch.member_percentiles(members)  # [k, B, M]
                watch = parts.amin(0) if how == "min" else parts.amax(0)
            else:
                watch = self.cowatch.group_scores(members, self.rank_pair_rule)
            return watch if candidates is None else watch[:, candidates]
        assert watch_vectors is not None
        if members.shape[1] == 2 and not extreme:
            return self.watch_grid(members[:, 0], members[:, 1], watch_vectors)
        wanted = self.encode_users(members.reshape(-1))[:, self.rating_dim :]
        wanted = wanted.reshape(*members.shape, -1)
        factors, bias = watch_vectors[:, :-1].T, watch_vectors[:, -1]
        if extreme:  # each member's logits [B, M, k], the lowest / highest of them
            return aggregate_members((wanted @ factors + bias).permute(0, 2, 1), how)
        return wanted.sum(1) @ factors + members.shape[1] * bias

    def shortlisted(
        self,
        members: torch.Tensor,
        movie_vectors: torch.Tensor,
        watch: torch.Tensor,
        candidates: torch.Tensor | None,
        user_vectors: tuple[torch.Tensor, torch.Tensor] | None,
        how: str,
    ) -> tuple[torch.Tensor, Rated] | None:
        """A pair ranked by `score` for the model's own target over a catalogue larger than
        `rank_shortlist`: the pair head runs on each pair's shortlist only (`_shortlisted`)."""
        shortlist = self.rank_shortlist
        if not (self.cowatch is not None and shortlist and shortlist < watch.shape[1]):
            return None
        if members.shape[1] != 2 or how != self.target:
            return None
        a, b = members[:, 0], members[:, 1]
        vectors = user_vectors or self.pair_user_vectors(a, b)
        return self._shortlisted(a, b, vectors, movie_vectors, watch, candidates)

    @property
    def has_group_head(self) -> bool:
        return self.group_head is not None

    def fold_in(
        self,
        dataset: PreparedDataset,
        people: Sequence[NewRatings],
        prior: float | None = None,
        steps: int = STEPS,
        lr: float = LR,
    ) -> FoldIn:
        """People who are not in the data, encoded with this model frozen: features from
        their ratings, their history bag and co-watch history, and a fitted id
        (`duorec.model.foldin` says how and why). `prior`: None for `foldin_prior`."""

        def fit(people: Sequence[NewRatings], prior: float) -> DuoModule:
            return fold_duo(self, dataset, people, steps, lr, prior)

        return fold_in(self, dataset, people, fit, prior)

    def group_rating(
        self, each: torch.Tensor, users: torch.Tensor, movie_vectors: torch.Tensor
    ) -> torch.Tensor:
        """The group head's rating grid when the model was trained on groups, else the target
        aggregate of the members' (`PairRatingModule.group_rating`)."""
        if self.group_head is None:
            return super().group_rating(each, users, movie_vectors)
        return group_head_grid(self.group_head, each, users, movie_vectors)

    def _shortlisted(
        self,
        user_a: torch.Tensor,
        user_b: torch.Tensor,
        user_vectors: tuple[torch.Tensor, torch.Tensor],
        movie_vectors: torch.Tensor,
        watch: torch.Tensor,
        candidates: torch.Tensor | None,
    ) -> tuple[torch.Tensor, Rated]:
        """The score of each pair's `rank_shortlist` best unseen movies by a cheap bound, -inf
        elsewhere: the pair head's MLP runs on those alone (their ratings are returned too).

        The cheap score replaces the pair rating by the aggregate of the two individual
        predictions (the pair head's starting point; its MLP adds a small correction), so
        over a large catalogue the MLP, most of the cost of a recommendation, runs on a few
        thousand movies instead of 87k. For the mean that aggregate is one biased dot product
        with the mean of the two user vectors: one pass over the movie matrix, not two.
        Seen movies (train histories) are left out first. The exact score of the shortlist
        is `rank_score`, as without it, from the shortlisted movies' vectors alone.
        """
        ua, ub = user_vectors
        if self.target == "mean":
            cheap = individual_grid((ua + ub) / 2, movie_vectors)
        else:
            cheap = aggregate(
                individual_grid(ua, movie_vectors), individual_grid(ub, movie_vectors), self.target
            )
        cheap = self.rank_score(watch, cheap)
        if cheap is watch:  # rank_rating_weight 0: masked in place below, watch is read after
            cheap = watch.clone()
        n = len(user_a)
        row, movie = self.cowatch.seen_entries(torch.cat([user_a, user_b]))
        if candidates is None:
            cheap[row % n, movie] = float("-inf")
        else:
            seen = torch.zeros(n, self.n_movies, dtype=torch.bool, device=cheap.device)
            seen[row % n, movie] = True
            cheap = cheap.masked_fill(seen[:, candidates], float("-inf"))
        top = top_columns(cheap, self.rank_shortlist)  # [B, S]
        picked = gather_movies(movie_vectors, top.reshape(-1)).reshape(*top.shape, -1)
        factors, bias = picked[..., :-1].transpose(1, 2), picked[..., -1]  # [B, dim, S], [B, S]

        def dot(user: torch.Tensor) -> torch.Tensor:  # [B, dim] . each pair's S movies
            return (user[:, None, :] @ factors).squeeze(1)

        ra, rb = dot(ua[:, :-1]) + ua[:, -1:] + bias, dot(ub[:, :-1]) + ub[:, -1:] + bias
        together, apart = dot((ua * ub)[:, :-1]), dot((ua - ub).abs()[:, :-1])
        pair = self.pair_rating(ra, rb, together, apart)
        shortlisted = self.rank_score(watch.gather(1, top), pair)
        score = torch.full_like(cheap, float("-inf")).scatter_(1, top, shortlisted)
        return score, Rated(top, pair, ra, rb, shortlisted)

    def rank_score(self, watch: torch.Tensor, rating: torch.Tensor) -> torch.Tensor:
        """The default ranking score from its two grids: watch + rank_rating_weight * rating."""
        return watch + self.rank_rating_weight * rating if self.rank_rating_weight else watch


def top_columns(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[B, k] indices of each row's k highest scores, in no particular order.

    On a CPU numpy's introselect (`argpartition`), 3x faster than `torch.topk` over 87k
    movies (0.24 vs 0.83 ms per row, benchmarks/README.md); `topk` elsewhere.
    """
    if scores.device.type != "cpu":
        return scores.topk(k, dim=1, sorted=False).indices
    n = scores.shape[1]
    return torch.from_numpy(np.argpartition(scores.numpy(), n - k, axis=1)[:, n - k :])


RANK_BY = ("score", "rating", "watch")


def check_settings(config: DuoConfig, n_cowatch: tuple[int, int]) -> None:
    """ValueError naming a setting whose value no DuoModule can have."""
    ranking, towers = config.ranking, config.towers
    if ranking.rank_by not in RANK_BY:
        raise ValueError(f"unknown rank_by {ranking.rank_by!r}: choose one of {RANK_BY}")
    if ranking.rank_by != "rating" and not (
        config.watch.watch_dim or ranking.cowatch or n_cowatch[1]
    ):
        raise ValueError(
            f"rank_by={ranking.rank_by!r} needs a watch head: set model.cowatch or "
            "model.watch_dim > 0"
        )
    if ranking.rank_pair_rule not in COWATCH_RULES:
        raise ValueError(
            f"unknown rank_pair_rule {ranking.rank_pair_rule!r}: choose one of {COWATCH_RULES}"
        )
    if towers.id_factors not in ID_FACTORS:
        raise ValueError(
            f"unknown id_factors {towers.id_factors!r}: choose one of users, movies, both, none"
        )
    if towers.id_factor_dim is not None and towers.id_factor_dim < 1:
        raise ValueError(
            f"id_factor_dim must be >= 1 (or null for out_dim), got {towers.id_factor_dim}"
        )
    if not ranking.foldin_prior > 0:
        raise ValueError(f"foldin_prior must be > 0, got {ranking.foldin_prior}")


# which towers get free id factors (towers.add_id_factors); a bool is "both" or "none"
ID_FACTORS: dict[bool | str, tuple[str, ...]] = {
    "none": (),
    "users": ("users",),
    "movies": ("movies",),
    "both": ("users", "movies"),
    False: (),
    True: ("users", "movies"),
}


def history_size(train: Any, history_max: int | None) -> int:
    """How many train ratings the history bags hold when each keeps at most `history_max`."""
    counts = np.bincount(train["user"].to_numpy())
    return int(counts.sum() if history_max is None else np.minimum(counts, history_max).sum())
