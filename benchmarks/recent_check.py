"""How people drift, and what a person's recent rating level does for a trained run.

For a run folder (a `python -m duorec.train` run with its checkpoint), prints:

1. the drift in the data: the mean of (rating - the person's train mean) over each split's
   ratings, and over tenths of each person's train ratings in time order;
2. across people, the correlation of the model's validation error (weight 0) with their
   recent level read from train (`HistoryBag.recent_level`);
3. the weight chosen on validation (`duorec.eval.recent_level.choose_recent_weight`, the
   grid of `eval.recent_weights`) and the test pair RMSE without and with it, history train +
   validation, with the paired-bootstrap 95% interval of the difference.

docs/time_features.md, "(d)", quotes it. Usage: recent_check.py RUN_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from duorec.checkpoint import load_checkpoint, read_reference, resolve_checkpoint
from duorec.data.datamodule import PairDataModule
from duorec.eval.history import history_at_test
from duorec.eval.recent_level import choose_recent_weight
from duorec.eval.scoring import predict_triples
from duorec.metrics import bootstrap_diff_ci, pair_target

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def drift(ratings: pd.DataFrame) -> None:
    train = ratings[ratings["split"] == 0]
    mean = train.groupby("user")["rating"].mean()
    residual = ratings["rating"] - ratings["user"].map(mean)
    by_split = {
        int(k): round(float(v), 3) for k, v in residual.groupby(ratings["split"]).mean().items()
    }
    print("mean rating - the person's train mean, by split (0 train, 1 val, 2 test):", by_split)
    ordered = train.sort_values(["user", "timestamp"], kind="stable")
    position = ordered.groupby("user").cumcount() / ordered.groupby("user")["user"].transform(
        "size"
    )
    tenth = np.minimum((position * 10).astype(int), 9)
    print(
        "... over tenths of each person's train ratings, oldest first:",
        [round(float(v), 3) for v in residual[ordered.index].groupby(tenth).mean()],
    )


def main() -> None:
    run = Path(sys.argv[1])
    with initialize_config_dir(CONF, version_base="1.3"):
        cfg = compose("evaluate", ["seed=0"])
    ckpt = resolve_checkpoint(str(run), None)
    model, ds = load_checkpoint(ckpt)
    dm = PairDataModule.from_reference(read_reference(ckpt), cfg.paths.cache_dir)
    dm.seed = 0
    dm.use_dataset(ds)
    opts = OmegaConf.to_container(cfg.eval, resolve=True)
    drift(ds.ratings)

    model.recent_weight = 0.0
    val = dm.evaluation_triples("val")
    _, own_a, own_b = predict_triples(model, val)
    error = (
        pd.DataFrame(
            {
                "user": np.concatenate([val.user_a, val.user_b]),
                "error": np.concatenate([own_a - val.rating_a, own_b - val.rating_b]),
            }
        )
        .groupby("user")["error"]
        .mean()
    )
    level = model.history.recent_level(torch.tensor(error.index.to_numpy())).numpy()
    print(f"corr(validation error per person, recent level): {np.corrcoef(error, level)[0, 1]:.3f}")

    chosen = choose_recent_weight(model, dm, opts)
    assert chosen is not None, "the run has no history bag or no eval.recent_weights grid"
    print(
        "validation pair RMSE by weight:",
        {w: round(r, 4) for w, r in zip(chosen["grid"], chosen["val_pair_rmse"], strict=True)},
    )
    test = dm.evaluation_triples("test")
    truth = pair_target(test.rating_a, test.rating_b, model.target)
    best = model.recent_weight
    with history_at_test(model, ds, opts):
        model.recent_weight = 0.0
        without = predict_triples(model, test)[0] - truth
        model.recent_weight = best
        with_level = predict_triples(model, test)[0] - truth
    diff, low, high = bootstrap_diff_ci(with_level, without, n_boot=1000, seed=0, stat="rmse")
    print(
        f"weight {best}: test pair RMSE {np.sqrt(np.mean(without**2)):.4f} -> "
        f"{np.sqrt(np.mean(with_level**2)):.4f}, difference {diff:+.4f} ({low:+.4f} .. {high:+.4f})"
    )


if __name__ == "__main__":
    main()
