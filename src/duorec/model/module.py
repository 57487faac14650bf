"""DuoModule: user tower, movie tower and symmetric fusion, trained on pair triples.

Each triple carries both people's own ratings as well as the pair's target, so the towers are
trained on both: the individual loss gives each person's predicted rating (shown beside a
recommendation) and the pair loss trains the fusion. Shared machinery is in `base.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from duorec.data.prepared import PreparedDataset
from duorec.model.base import PairRatingModule
from duorec.model.fusion import SymmetricFusion
from duorec.model.towers import MovieTower, TowerConfig, UserTower


class DuoModule(PairRatingModule):
    """Predicts a pair's rating of a movie from two user towers' and one movie tower's output."""

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        n_user_features: int,
        n_movie_features: int,
        n_people: int,
        max_people: int,
        rating_range: tuple[float, float],
        *,
        embed_dim: int,
        hidden: int,
        layers: int,
        out_dim: int,
        fusion_hidden: int,
        dropout: float,
        use_ids: bool,
        use_features: bool,
        use_people: bool,
        target: str,
        pair_weight: float,
        individual_weight: float,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ):
        super().__init__(rating_range, target, pair_weight, individual_weight, optimizer, scheduler)
        # the optimiser partials stay out of the checkpoint: it must load without Hydra objects
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.n_movies = n_movies
        # both towers end in `out_dim` factors plus one bias (see fusion.individual)
        tower = TowerConfig(
            embed_dim, hidden, out_dim + 1, layers, dropout, use_ids, use_features, use_people
        )
        self.user_tower = UserTower(n_users, n_user_features, tower)
        self.movie_tower = MovieTower(n_movies, n_movie_features, n_people, max_people, tower)
        self.fusion = SymmetricFusion(fusion_hidden, 2, dropout, target)

    @classmethod
    def from_dataset(
        cls, dataset: PreparedDataset, max_people_per_movie: int, **kwargs: Any
    ) -> DuoModule:
        """Size the towers from a prepared dataset and copy its features into the buffers.

        A movie's people bag keeps its first `max_people_per_movie` people (directors, then
        writers, then the top-billed cast): the bag is a padded matrix, so its width is paid
        for every movie.
        """
        f = dataset.features
        max_people = int(np.diff(f.people_offsets).max(initial=0))
        module = cls(
            n_users=dataset.n_users,
            n_movies=dataset.n_movies,
            n_user_features=f.user.shape[1],
            n_movie_features=f.movie.shape[1],
            n_people=len(f.people_vocab),
            max_people=min(max_people, max_people_per_movie),
            rating_range=dataset.rating_range,
            **kwargs,
        )
        with torch.no_grad():
            if module.user_tower.features.shape[1]:
                module.user_tower.features.copy_(torch.from_numpy(f.user))
            if module.movie_tower.features.shape[1]:
                module.movie_tower.features.copy_(torch.from_numpy(f.movie))
            module.movie_tower.set_people(f.people_offsets, f.people_index)
        return module

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_tower(users)

    def movie_vectors(self, movies: torch.Tensor) -> torch.Tensor:
        return self.movie_tower(movies)

    def pair_rating(
        self,
        rating_a: torch.Tensor,
        rating_b: torch.Tensor,
        together: torch.Tensor,
        apart: torch.Tensor,
    ) -> torch.Tensor:
        return self.fusion(rating_a, rating_b, together, apart)
