"""Heads that turn tower vectors into ratings: each person's own, and the pair's (symmetric).

Towers emit `dim` factors plus one bias. A person's rating is a biased dot product, and the
pair head sees only scalar, symmetric summaries of the two people against the movie. Scoring
a pair against the whole catalogue is therefore three [dim x movies] products and a tiny MLP
per movie, which is what makes a recommendation over 87k movies take milliseconds on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from duorec.aggregate import AGGREGATES, aggregate
from duorec.model.towers import mlp

__all__ = [
    "AGGREGATES",
    "aggregate",
    "individual",
    "individual_grid",
    "gather_movies",
    "with_rows",
    "SymmetricFusion",
]


def individual(user: torch.Tensor, movie: torch.Tensor) -> torch.Tensor:
    """Biased dot product of aligned rows [N, dim + 1] -> [N]."""
    return (user[:, :-1] * movie[:, :-1]).sum(-1) + user[:, -1] + movie[:, -1]


def individual_grid(user: torch.Tensor, movie: torch.Tensor) -> torch.Tensor:
    """Every user [B, dim + 1] against every movie [M, dim + 1] -> [B, M]."""
    return user[:, :-1] @ movie[:, :-1].T + user[:, -1:] + movie[:, -1]


def with_rows(movie: torch.Tensor) -> torch.Tensor:
    """A movie matrix [M, dim + 1] stored column-major, carrying the same values row-major
    for `gather_movies`. Each layout is fast at one job: the product over the whole
    catalogue reads the column-major one (a row-major product is 2-4x slower in torch), and
    gathering a shortlist's 1,000 movies reads 1,000 rows of the row-major one instead of 65
    scattered values per movie (0.7 -> 0.15 ms per pair at 87k movies, benchmarks/README.md).
    The two live as long as the returned object; a tensor derived from it has no rows.
    """
    rows = movie.contiguous()  # (no copy when `movie` is row-major already)
    columns = rows.T.contiguous().T
    columns.movie_rows = rows  # type: ignore[attr-defined]
    return columns


def gather_movies(movie: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`movie[index]` [N, dim + 1], row-major, read from the layout that gathers fastest: the
    row-major twin `with_rows` attached, else rows or (column-major) columns of `movie`
    itself. Always returned row-major: the products made from it then round alike, so a
    shortlist scores bit for bit the same whichever layout it was given."""
    rows = getattr(movie, "movie_rows", movie)
    if rows.stride(-1) == 1:
        return rows.index_select(0, index)
    # columns of the transposed view (2x faster than rows of a column-major matrix)
    return rows.T.index_select(1, index).T.contiguous()


class SymmetricFusion(nn.Module):
    """f(a, b, m) == f(b, a, m) exactly, by construction.

    Its inputs are symmetric in the two people: the sum and absolute difference of their
    individual predictions, and the movie's dot products with the product and with the
    absolute difference of their factors. IEEE addition and multiplication are commutative,
    so swapping a and b gives bit-identical inputs and outputs. The output corrects the
    aggregate (mean / min / max) of the individual predictions, so training starts from a
    sensible answer and the MLP learns how a pair departs from it.

    Groups of 2..6 have a head of their own (`group_fusion.GroupFusion`); this one stays the
    pair head, unchanged, so pair results do not move when groups are trained.
    """

    def __init__(self, hidden: int, layers: int, dropout: float, target: str):
        super().__init__()
        if target not in AGGREGATES:
            raise ValueError(f"unknown target {target!r}: choose one of {AGGREGATES}")
        self.target = target
        self.net = mlp(4, hidden, 1, layers, dropout)

    def forward(
        self,
        rating_a: torch.Tensor,
        rating_b: torch.Tensor,
        together: torch.Tensor,
        apart: torch.Tensor,
    ) -> torch.Tensor:
        """All inputs have the same shape ([N] for triples, [B, M] for a catalogue grid)."""
        inputs = torch.stack(
            [rating_a + rating_b, (rating_a - rating_b).abs(), together, apart], dim=-1
        )
        return aggregate(rating_a, rating_b, self.target) + self.net(inputs).squeeze(-1)
