"""Evaluation under the DESIGN.md protocol: the model beside its baselines, same triples."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from duorec.data.datamodule import PairDataModule, triples_to_batch
from duorec.data.pairs import Triples
from duorec.model.module import DuoModule


@torch.no_grad()
def predict_triples(
    model: DuoModule, triples: Triples, batch_size: int = 16384
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Star-scale predictions (pair, person a, person b) for every triple."""
    model.eval()
    outputs: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, len(triples), batch_size):
        batch = triples_to_batch(triples.take(slice(start, start + batch_size)))
        batch = {k: v.to(model.device) for k, v in batch.items()}
        pair, ra, rb = model(batch["user_a"], batch["user_b"], batch["movie"])
        outputs.append(tuple(model.unscale(x).cpu() for x in (pair, ra, rb)))
    if not outputs:
        empty = np.zeros(0, dtype=np.float32)
        return empty, empty, empty
    return tuple(torch.cat(parts).numpy() for parts in zip(*outputs, strict=True))  # type: ignore


def evaluate(model: DuoModule, datamodule: PairDataModule, targets: Any = None) -> dict[str, Any]:
    triples = datamodule.evaluation_triples("test")
    pair, _, _ = predict_triples(model, triples)
    target = (triples.rating_a + triples.rating_b) / 2
    low, high = datamodule.dataset.rating_range
    train = datamodule.dataset.split("train")
    mu = float(train["rating"].mean())

    def reg(pred: np.ndarray) -> dict[str, float]:
        mse = float(np.mean((pred - target) ** 2))
        return {
            "pair_rmse": mse**0.5,
            "pair_mae": float(np.mean(np.abs(pred - target))),
            "scaled_mse": mse / (high - low) ** 2,
            "n_triples": len(target),
        }

    return {"test": reg(pair), "baselines": {"global_mean": reg(np.full_like(target, mu))}}
