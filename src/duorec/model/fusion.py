"""Heads that turn tower vectors into ratings: one person's, and the pair's (symmetric)."""

from __future__ import annotations

import torch
from torch import nn

from duorec.model.towers import mlp

AGGREGATES = ("mean", "min", "max")


def aggregate(a: torch.Tensor, b: torch.Tensor, how: str) -> torch.Tensor:
    """The pair's rating from two individual ratings: mean, least misery (min), most pleasure."""
    if how == "mean":
        return (a + b) / 2
    if how == "min":
        return torch.minimum(a, b)
    if how == "max":
        return torch.maximum(a, b)
    raise ValueError(f"unknown aggregate {how!r}: choose one of {AGGREGATES}")


class IndividualHead(nn.Module):
    """One person's rating of a movie from their vectors: shown beside each recommendation."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.net = mlp(3 * dim, hidden, 1, 1, dropout)

    def forward(self, user: torch.Tensor, movie: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([user * movie, user, movie], dim=-1)).squeeze(-1)


class SymmetricFusion(nn.Module):
    """f(a, b, m) == f(b, a, m) exactly, by construction.

    It only sees symmetric functions of the two people: the sum, the product and the absolute
    difference of their vectors, and the sum and absolute difference of their individual
    predictions. IEEE addition and multiplication are commutative, so swapping a and b gives
    bit-identical inputs and therefore bit-identical outputs. The output is a correction on top
    of the aggregate of the individual predictions, so the network starts from a sensible answer.
    """

    def __init__(self, dim: int, hidden: int, layers: int, dropout: float, target: str):
        super().__init__()
        if target not in AGGREGATES:
            raise ValueError(f"unknown target {target!r}: choose one of {AGGREGATES}")
        self.target = target
        self.net = mlp(4 * dim + 2, hidden, 1, layers, dropout)

    def forward(
        self,
        user_a: torch.Tensor,
        user_b: torch.Tensor,
        movie: torch.Tensor,
        rating_a: torch.Tensor,
        rating_b: torch.Tensor,
    ) -> torch.Tensor:
        together = user_a + user_b
        inputs = torch.cat(
            [
                together,
                user_a * user_b,
                (user_a - user_b).abs(),
                together * movie,
                (rating_a + rating_b)[:, None],
                (rating_a - rating_b).abs()[:, None],
            ],
            dim=-1,
        )
        correction = self.net(inputs).squeeze(-1)
        return aggregate(rating_a, rating_b, self.target) + correction
