"""Does "what comes next" in the co-watch head transfer from validation to test?

Individual NDCG@10 (the protocol `model.cowatch` chooses lambda and the share on: one person's
ranking, so the scale of the scores plays no part) of the co-watch weights at each share of
`model.cowatch.next_weight`, on validation (history: train) and on test (history: train +
validation, the weights fitted on train, as the model reads them), for a trained run's data
and lambda. docs/time_features.md quotes it.

Usage: next_check.py RUN_FOLDER [SHARE ...]   (default shares: 0 0.1 0.25 0.5)
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np

from duorec.checkpoint import load_checkpoint, resolve_checkpoint
from duorec.model.cowatch import mix_next, next_weights
from duorec.model.ranking_baselines import EASE, individual_ndcg

COLUMNS = ("user", "movie", "rating", "timestamp")


def main() -> None:
    run = Path(sys.argv[1])
    shares = [float(a) for a in sys.argv[2:]] or [0.0, 0.1, 0.25, 0.5]
    metrics = json.loads((run / "metrics.json").read_text())
    model, ds = load_checkpoint(resolve_checkpoint(str(run), None))
    settings = dict(model.hparams["cowatch"])
    lam, fraction = metrics["cowatch"]["lam"], float(settings.get("next_fraction", 0.2))
    part = {s: {c: ds.split(s)[c].to_numpy() for c in COLUMNS} for s in ("train", "val", "test")}
    tr, va = part["train"], part["val"]
    history = {c: np.concatenate([tr[c], va[c]]) for c in COLUMNS}
    ease = EASE(lam=lam, max_items=int(settings["max_items"]))
    ease.fit(tr["user"], tr["movie"], tr["rating"], ds.n_users, ds.n_movies)
    after, scale = next_weights(ease, tr, fraction)
    print(f"{run.name}: lambda {lam}, late share {fraction}")
    print("share  val NDCG@10  test NDCG@10")
    for a in shares:
        trial = copy.copy(ease)
        trial.weights = mix_next(ease.weights, after, scale, a)
        val = individual_ndcg(trial, tr, va)
        at_test = trial.with_history(history["user"], history["movie"], history["rating"])
        test = individual_ndcg(at_test, history, part["test"])
        print(f"{a:5.2f}  {val:11.4f}  {test:12.4f}", flush=True)


if __name__ == "__main__":
    main()
