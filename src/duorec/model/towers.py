"""User and movie towers: ids and features in, one vector per user or movie out.

Feature matrices live in the towers as buffers, so a batch carries only indices, the checkpoint
is self-contained for recommendation, and the movie tower can encode the whole catalog at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from duorec.csr import ragged_offsets


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int, dropout: float) -> nn.Sequential:
    """`layers` hidden blocks of Linear -> GELU -> Dropout, then a Linear to `out_dim`."""
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, out_dim))
    return nn.Sequential(*blocks)


def embedding(n: int, dim: int) -> nn.Embedding:
    """An id table starting small (std 0.05), so ids begin as a nudge on top of the features."""
    table = nn.Embedding(n, dim)
    nn.init.normal_(table.weight, std=0.05)
    return table


def id_factor_table(n: int, dim: int) -> nn.Embedding:
    """Free per-id factors, starting at exactly zero (drawn first, so the random stream of
    every other parameter is unchanged).

    Why zero: the tower's own output already breaks the symmetry (a rating's gradient on a
    movie's id factors is the person's factors times the error), and an id seen in only a
    few sampled triples would otherwise keep most of a random start, noise added to the
    towers' prediction for exactly the rare movies that need it least.
    """
    table = embedding(n, dim)
    nn.init.zeros_(table.weight)
    return table


@dataclass(frozen=True)
class TowerConfig:
    """The shape of a tower (conf/model/duo.yaml): sizes, depth, dropout and input switches."""

    embed_dim: int  # id and people embedding size
    hidden: int  # MLP width
    out_dim: int  # output size (the model adds one for the bias)
    layers: int  # hidden layers
    dropout: float
    use_ids: bool
    use_features: bool
    use_people: bool
    id_factors: int = 0  # an id table added to the first id_factors outputs (0: none)


def add_id_factors(out: torch.Tensor, factors: torch.Tensor | None) -> torch.Tensor:
    """The tower's output with the id's own factors added to its first columns.

    Why: a tower reads its id embedding through an MLP, which learns the id-specific part
    of a rating (what matrix factorisation captures with p_u . q_m) far more slowly than a
    free vector does. On synthetic data planted with exactly such factors the towers alone
    stayed at the bias baseline's RMSE (validation 0.519) while MF reached 0.469; with these
    factors and `factor_l2` the model learns them (docs/results.md). Features still carry
    what ids cannot: new people and new movies, whose id factors are zero.
    """
    if factors is None:
        return out
    width = factors.shape[1]
    return torch.cat([out[:, :width] + factors, out[:, width:]], dim=-1)


class UserTower(nn.Module):
    """id embedding + (mean, count, per-genre shares and tastes) -> MLP -> out_dim."""

    def __init__(self, n_users: int, n_features: int, cfg: TowerConfig, n_extra: int = 0):
        super().__init__()
        if not (cfg.use_ids or cfg.use_features or n_extra):
            raise ValueError("the user tower needs ids, features or a history (or several)")
        self.embedding = embedding(n_users, cfg.embed_dim) if cfg.use_ids else None
        width = n_features if cfg.use_features else 0
        self.register_buffer("features", torch.zeros(n_users, width))
        in_dim = (cfg.embed_dim if cfg.use_ids else 0) + width + n_extra
        self.net = mlp(in_dim, cfg.hidden, cfg.out_dim, cfg.layers, cfg.dropout)
        self.id_factors = id_factor_table(n_users, cfg.id_factors) if cfg.id_factors else None

    def forward(self, user: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """`extra`: per-row inputs computed outside, e.g. the history bag [N, n_extra]."""
        parts = [self.features[user]]
        if self.embedding is not None:
            parts.append(self.embedding(user))
        if extra is not None:
            parts.append(extra)
        factors = self.id_factors(user) if self.id_factors is not None else None
        return add_id_factors(self.net(torch.cat(parts, dim=-1)), factors)


class MovieTower(nn.Module):
    """id embedding + genres/numeric metadata + a bag of people embeddings -> MLP -> out_dim.

    People (directors, writers, top cast) are an EmbeddingBag over a padded [movies, P] id
    matrix: padding entries are excluded from the mean, so a movie with no known people
    contributes a zero vector rather than noise.
    """

    def __init__(
        self, n_movies: int, n_features: int, n_people: int, max_people: int, cfg: TowerConfig
    ):
        super().__init__()
        use_people = cfg.use_people and n_people > 0 and max_people > 0
        if not (cfg.use_ids or cfg.use_features or use_people):
            raise ValueError("the movie tower needs ids, features or people")
        embed_dim = cfg.embed_dim
        self.embedding = embedding(n_movies, embed_dim) if cfg.use_ids else None
        width = n_features if cfg.use_features else 0
        self.register_buffer("features", torch.zeros(n_movies, width))
        self.people = (
            nn.EmbeddingBag(n_people + 1, embed_dim, mode="mean", padding_idx=n_people)
            if use_people
            else None
        )
        if self.people is not None:
            nn.init.normal_(self.people.weight, std=0.05)
        self.register_buffer(
            "people_ids",
            torch.full((n_movies, max_people if use_people else 0), n_people, dtype=torch.long),
        )
        in_dim = (embed_dim if cfg.use_ids else 0) + width + (embed_dim if use_people else 0)
        self.net = mlp(in_dim, cfg.hidden, cfg.out_dim, cfg.layers, cfg.dropout)
        self.id_factors = id_factor_table(n_movies, cfg.id_factors) if cfg.id_factors else None

    def set_people(self, offsets: np.ndarray, index: np.ndarray) -> None:
        """Fill the padded people matrix from CSR bags (longer bags are truncated)."""
        if self.people is None:
            return
        n_movies, width = self.people_ids.shape
        lengths = np.minimum(np.diff(offsets), width)
        rows, cols = ragged_offsets(lengths)
        source = offsets[:-1][rows] + cols
        self.people_ids[torch.from_numpy(rows), torch.from_numpy(cols)] = torch.from_numpy(
            index[source].astype(np.int64)
        )

    def forward(self, movie: torch.Tensor) -> torch.Tensor:
        parts = [self.features[movie]]
        if self.embedding is not None:
            parts.append(self.embedding(movie))
        if self.people is not None:
            parts.append(self.people(self.people_ids[movie]))
        factors = self.id_factors(movie) if self.id_factors is not None else None
        return add_id_factors(self.net(torch.cat(parts, dim=-1)), factors)
