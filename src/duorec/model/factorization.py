"""Biased matrix factorisation (and the bias model, k = 0) as LightningModules.

The same baselines evaluation fits in closed form (`baselines.py`), here trained by SGD on the
individual ratings of the sampled triples, so `python -m duorec.train model=mf` is swept,
checkpointed, evaluated and served exactly like the three-tower model. The pair's rating is
the aggregate (mean / min / max) of the two people's predictions; nothing is learned about
pairs, which is the point of a baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from duorec.data.prepared import PreparedDataset
from duorec.model.base import PairRatingModule
from duorec.model.foldin import FoldIn, NewRatings, fold_factorization, fold_in


class FactorizationModule(PairRatingModule):
    """r(u, m) = mu + b_u + b_m + p_u . q_m on the scaled axis; k = 0 leaves the biases."""

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        rating_range: tuple[float, float],
        global_mean: float,
        *,
        k: int,
        init_std: float,
        target: str,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        factor_l2: float = 0.0,  # off: checkpoints written before it load unchanged
    ):
        super().__init__(rating_range, target, 0.0, 1.0, optimizer, scheduler, factor_l2=factor_l2)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.n_movies = n_movies
        self.users = nn.Embedding(n_users, k + 1)
        self.movies = nn.Embedding(n_movies, k + 1)
        for table in (self.users, self.movies):
            nn.init.normal_(table.weight, std=init_std)
            nn.init.zeros_(table.weight[:, -1])
        self.offset = nn.Parameter(torch.tensor(float(global_mean)))

    @classmethod
    def from_dataset(cls, dataset: PreparedDataset, **kwargs: Any) -> FactorizationModule:
        low, high = dataset.rating_range
        mu = (dataset.features.global_mean - low) / (high - low)
        return cls(
            n_users=dataset.n_users,
            n_movies=dataset.n_movies,
            rating_range=dataset.rating_range,
            global_mean=mu,
            **kwargs,
        )

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.users(users)

    def movie_vectors(self, movies: torch.Tensor) -> torch.Tensor:
        vectors = self.movies(movies)
        # the global offset rides on the movie bias, so `individual` needs no extra term
        return torch.cat([vectors[:, :-1], vectors[:, -1:] + self.offset], dim=-1)

    def fold_in(
        self, dataset: PreparedDataset, people: Sequence[NewRatings], prior: float | None = None
    ) -> FoldIn:
        """People who are not in the data: each one's row (factors and bias) is the ridge
        regression of their ratings on the frozen movie factors (`fold_factorization`)."""

        def fit(people: Sequence[NewRatings], prior: float) -> FactorizationModule:
            return fold_factorization(self, people, prior)

        return fold_in(self, dataset, people, fit, prior)
