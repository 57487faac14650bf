"""The group head: a group's rating from its k = 2..6 members', invariant to their order.

Its inputs are pooled over the members so that any order of the same members gives
bit-identical outputs. Plain float sums are not enough (a + b + c and c + a + b can differ
in the last bit), so every pool first sorts the member axis (per rating, per factor) and only
then reduces in that fixed order: the sorted values, and so their sums, min, max and spread,
do not depend on the order the members came in.

Pooled features, each a scalar per (group, movie):

* of the members' individual predictions: mean, min, max, standard deviation;
* of their factors against the movie's: the movie's dot product with the mean of the pairwise
  products of the members' factors (all pairs i < j; "together") and with the per-factor
  spread max - min ("apart");
* the group size, (k - 2) / 4.

For k = 2 these are the pair fusion's features (sum, |difference|, together, apart) up to
rounding, but the pair head (`SymmetricFusion`) stays as it is and keeps serving pairs: pair
results do not move when groups are added, and the group head is its own module (`group_head`
of DuoModule), trained on group batches of every configured size, including 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from duorec.aggregate import AGGREGATES, aggregate_members
from duorec.model.base import PairRatingModule, encode_unique
from duorec.model.fusion import individual
from duorec.model.towers import mlp

N_FEATURES = 7


def member_pools(factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean pairwise product, spread max - min) per factor of members [N, k, d] -> [N, d].

    Movie-independent: a catalogue grid dots them with every movie in one product each.
    """
    k = factors.shape[1]
    u = factors.sort(dim=1).values
    total, squares = u.sum(1), (u * u).sum(1)
    pairwise = (total * total - squares) / (k * (k - 1))  # mean over i < j of u_i * u_j
    return pairwise, u[:, -1] - u[:, 0]


class GroupFusion(nn.Module):
    """f(members, m) identical for every order of the members; corrects the aggregate.

    Like the pair head it starts from the target aggregate (mean / min / max) of the members'
    individual predictions and learns how a group departs from it.
    """

    def __init__(self, hidden: int, layers: int, dropout: float, target: str):
        super().__init__()
        if target not in AGGREGATES:
            raise ValueError(f"unknown target {target!r}: choose one of {AGGREGATES}")
        self.target = target
        self.net = mlp(N_FEATURES, hidden, 1, layers, dropout)

    def forward(
        self, ratings: torch.Tensor, together: torch.Tensor, apart: torch.Tensor
    ) -> torch.Tensor:
        """Scaled group ratings [...] from the members' ratings [..., k] and the movie's dot
        products with `member_pools` ("together", "apart", [...]): [N] rows or a [B, M] grid."""
        k = ratings.shape[-1]
        r = ratings.sort(dim=-1).values
        mean = r.sum(-1) / k
        std = ((r - mean.unsqueeze(-1)) ** 2).sum(-1).div(k).sqrt()
        size = torch.full_like(mean, (k - 2) / 4)
        features = torch.stack([mean, r[..., 0], r[..., -1], std, together, apart, size], -1)
        return aggregate_members(ratings, self.target) + self.net(features).squeeze(-1)


def group_forward(
    model: PairRatingModule, members: torch.Tensor, movie: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled (group rating [N], each member's rating [N, k]) for groups [N, k] and movies [N].

    With a group head (`model.group_head`) the group rating is its output; without one (the
    factorisation baselines, a pairs-only DuoModule) the target aggregate of the members'.
    """
    n, k = members.shape
    users = model.user_vectors_for(members.T.reshape(-1), movie.repeat(k))  # member-major
    mv = encode_unique(model.movie_vectors, movie)
    each = individual(users, mv.repeat(k, 1)).reshape(k, n).T
    head = getattr(model, "group_head", None)
    if head is None:
        return aggregate_members(each, model.target), each
    pairwise, spread = member_pools(users[:, :-1].reshape(k, n, -1).transpose(0, 1))
    factors = mv[:, :-1]
    return head(each, (pairwise * factors).sum(-1), (spread * factors).sum(-1)), each


def group_loss(model: PairRatingModule, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Scaled MSE of the group head against the target aggregate of the members' ratings."""
    group, _ = group_forward(model, batch["members"], batch["movie"])
    truth = aggregate_members(model.scale(batch["member_ratings"]), model.target)
    return F.mse_loss(group, truth)


def group_head_grid(
    head: GroupFusion, each: torch.Tensor, users: torch.Tensor, movie_vectors: torch.Tensor
) -> torch.Tensor:
    """The group head over a grid: members' ratings [B, M, k] and vectors [B, k, dim + 1]
    against M movies -> [B, M]. The member pools are dotted with every movie in one
    [B, d] x [d, M] product each, as `score_grid` does for pairs."""
    pairwise, spread = member_pools(users[..., :-1])
    factors = movie_vectors[:, :-1].T
    return head(each, pairwise @ factors, spread @ factors)
