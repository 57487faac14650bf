"""DuoModule: user tower, movie tower and symmetric fusion, trained on pair triples.

Predictions live on the scaled rating axis [0, 1] = (r - r_min) / (r_max - r_min), so the loss
is the scaled MSE the original study quoted; metrics are reported back in stars. Each triple
also carries both people's own ratings, which train an individual head: it gives each person's
predicted rating beside a recommendation and a sensible starting point for the fusion.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from duorec.data.prepared import PreparedDataset
from duorec.model.fusion import SymmetricFusion, aggregate, individual, individual_grid
from duorec.model.towers import MovieTower, UserTower


def encode_unique(tower: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Run a tower once per distinct id of the batch and scatter back.

    Popular movies and active users repeat many times in a batch of triples (each user twice
    per pair at least), so this cuts tower work several-fold at the cost of one sort.
    """
    unique, inverse = torch.unique(ids, return_inverse=True)
    return tower(unique)[inverse]


class DuoModule(L.LightningModule):
    """Predicts a pair's rating of a movie; see the module docstring for the scale."""

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        n_user_features: int,
        n_movie_features: int,
        n_people: int,
        max_people: int,
        rating_range: tuple[float, float] = (0.5, 5.0),
        embed_dim: int = 32,
        hidden: int = 128,
        layers: int = 2,
        out_dim: int = 64,
        fusion_hidden: int = 32,
        dropout: float = 0.1,
        use_ids: bool = True,
        use_features: bool = True,
        use_people: bool = True,
        target: str = "mean",
        individual_weight: float = 1.0,
        optim: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.r_min, self.r_max = float(rating_range[0]), float(rating_range[1])
        self.user_tower = UserTower(
            n_users,
            n_user_features,
            embed_dim,
            hidden,
            out_dim + 1,
            layers,
            dropout,
            use_ids,
            use_features,
        )
        self.movie_tower = MovieTower(
            n_movies,
            n_movie_features,
            n_people,
            max_people,
            embed_dim,
            hidden,
            out_dim + 1,
            layers,
            dropout,
            use_ids,
            use_features,
            use_people,
        )
        self.fusion = SymmetricFusion(fusion_hidden, 2, dropout, target)
        self.target = target
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # where the data came from (name, cache key, data config), saved in every checkpoint
        self.dataset_reference: dict[str, Any] | None = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["duorec_dataset"] = self.dataset_reference

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.dataset_reference = checkpoint.get("duorec_dataset")

    @classmethod
    def from_dataset(cls, dataset: PreparedDataset, **kwargs: Any) -> DuoModule:
        """Size the towers from a prepared dataset and copy its features into the buffers."""
        f = dataset.features
        max_people = int(np.diff(f.people_offsets).max(initial=0))
        module = cls(
            n_users=dataset.n_users,
            n_movies=dataset.n_movies,
            n_user_features=f.user.shape[1],
            n_movie_features=f.movie.shape[1],
            n_people=len(f.people_vocab),
            max_people=min(max_people, 32),
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

    # ------------------------------------------------------------------ scale

    def scale(self, stars: torch.Tensor) -> torch.Tensor:
        return (stars - self.r_min) / (self.r_max - self.r_min)

    def unscale(self, scaled: torch.Tensor) -> torch.Tensor:
        return (scaled * (self.r_max - self.r_min) + self.r_min).clamp(self.r_min, self.r_max)

    # ------------------------------------------------------------------ forward

    def forward(
        self, user_a: torch.Tensor, user_b: torch.Tensor, movie: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled predictions (pair, person a, person b) for aligned triples [N]."""
        users = encode_unique(self.user_tower, torch.cat([user_a, user_b]))
        ua, ub = users[: len(user_a)], users[len(user_a) :]
        mv = encode_unique(self.movie_tower, movie)
        ra, rb = individual(ua, mv), individual(ub, mv)
        together = ((ua * ub)[:, :-1] * mv[:, :-1]).sum(-1)
        apart = ((ua - ub).abs()[:, :-1] * mv[:, :-1]).sum(-1)
        return self.fusion(ra, rb, together, apart), ra, rb

    @torch.no_grad()
    def encode_movies(self, batch_size: int = 65536) -> torch.Tensor:
        """The movie tower over the whole catalogue, once: [n_movies, dim + 1]."""
        n = self.movie_tower.features.shape[0]
        ids = torch.arange(n, device=self.device)
        return torch.cat(
            [self.movie_tower(ids[s : s + batch_size]) for s in range(0, n, batch_size)]
        )

    @torch.no_grad()
    def score_grid(
        self, user_a: torch.Tensor, user_b: torch.Tensor, movie_vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled (pair, a, b) predictions of B pairs against M movies -> three [B, M].

        The same heads as `forward`, written as matrix products so a catalogue costs three
        [B, dim] x [dim, M] products: `movie_vectors` comes from `encode_movies`, computed once.
        """
        ua, ub = self.user_tower(user_a), self.user_tower(user_b)
        ra, rb = individual_grid(ua, movie_vectors), individual_grid(ub, movie_vectors)
        factors = movie_vectors[:, :-1].T
        together = (ua * ub)[:, :-1] @ factors
        apart = (ua - ub).abs()[:, :-1] @ factors
        return self.fusion(ra, rb, together, apart), ra, rb

    def target_of(self, rating_a: torch.Tensor, rating_b: torch.Tensor) -> torch.Tensor:
        return aggregate(rating_a, rating_b, self.target)

    # ------------------------------------------------------------------ steps

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        pair, ra, rb = self(batch["user_a"], batch["user_b"], batch["movie"])
        ta, tb = self.scale(batch["rating_a"]), self.scale(batch["rating_b"])
        pair_loss = F.mse_loss(pair, self.target_of(ta, tb))
        individual_loss = (F.mse_loss(ra, ta) + F.mse_loss(rb, tb)) / 2
        loss = pair_loss + self.hparams.individual_weight * individual_loss
        self.log_dict(
            {"train/loss": loss, "train/pair_scaled_mse": pair_loss},
            on_step=True,
            on_epoch=True,
            batch_size=len(pair),
        )
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: MetricCollection) -> None:
        pair, _, _ = self(batch["user_a"], batch["user_b"], batch["movie"])
        metrics.update(self.unscale(pair), self.target_of(batch["rating_a"], batch["rating_b"]))

    def _log_metrics(self, metrics: MetricCollection, prefix: str) -> None:
        values = metrics.compute()
        mse = values[f"{prefix}/mse"]
        self.log_dict(
            {
                f"{prefix}/pair_rmse": mse.sqrt(),
                f"{prefix}/pair_mae": values[f"{prefix}/mae"],
                f"{prefix}/scaled_mse": mse / (self.r_max - self.r_min) ** 2,
            },
            sync_dist=False,
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

    # ------------------------------------------------------------------ optimisation

    def configure_optimizers(self) -> dict[str, Any]:
        optim = dict(self.hparams.optim or {})
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=optim.get("lr", 1e-3),
            weight_decay=optim.get("weight_decay", 0.0),
        )
        scheduler = optim.get("scheduler") or "none"
        if scheduler == "none":
            return {"optimizer": optimizer}
        steps = int(self.trainer.estimated_stepping_batches)
        if scheduler == "cosine":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
        elif scheduler == "onecycle":
            schedule = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=optim.get("lr", 1e-3),
                total_steps=max(steps, 1),
                pct_start=optim.get("warmup_fraction", 0.1),
            )
        else:
            raise ValueError(f"unknown scheduler {scheduler!r}: use none, cosine or onecycle")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
