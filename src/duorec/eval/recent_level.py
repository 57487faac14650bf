"""How much a person's recent rating level moves their predicted ratings, chosen on
validation after training (`choose_recent_weight`).

People drift: on both MovieLens releases the ratings that follow a person's train period are
lower than their train mean, and the newest ratings in a person's history say which way they
are heading (`HistoryBag.recent_level`). The weight is a single number, chosen like the rank
weight: training never sees it (it is 0 there, so no training target ever reaches its own
input through it), validation picks it from `eval.recent_weights` by pair RMSE with each
person's train history, and the test reads train + validation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from duorec.data.datamodule import PairDataModule
from duorec.eval.scoring import predict_triples
from duorec.metrics import pair_target
from duorec.model.base import PairRatingModule

log = logging.getLogger("duorec.eval")


def choose_recent_weight(
    model: PairRatingModule, datamodule: PairDataModule, opts: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Set the model's `recent_weight` to the grid value with the lowest validation pair RMSE
    (ties to the smaller); the grid and each value's RMSE for metrics.json. None when there
    is nothing to choose: no grid, or a model without a history bag."""
    weights = sorted({float(w) for w in opts.get("recent_weights") or []})
    if not weights or weights == [0.0] or getattr(model, "history", None) is None:
        return None
    triples = datamodule.evaluation_triples("val")
    truth = pair_target(triples.rating_a, triples.rating_b, model.target).astype(np.float64)
    rmse = []
    for weight in weights:
        model.recent_weight = weight
        pair = predict_triples(model, triples)[0].astype(np.float64)
        rmse.append(float(np.sqrt(np.mean((pair - truth) ** 2))))
    best = weights[int(np.argmin(rmse))]
    model.recent_weight = best
    model.hparams["recent_weight"] = best
    log.info("recent rating level weight chosen on validation: %s; pair RMSE %s", best, rmse)
    return {"best": best, "grid": weights, "val_pair_rmse": rmse}
