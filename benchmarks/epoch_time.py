"""Training time per epoch: today's default recipe beside the rating-only recipe before ranking.

The two recipes, each composed from conf/train.yaml by Hydra as ``python -m duorec.train``
would compose it with these overrides (DATA = ``data=movielens data.movielens_dir=DIR
data.imdb_dir=IMDB``, or ``data=synthetic data.synthetic.size=SIZE`` with ``--size``):

* **default**: DATA and nothing else: conf/model/duo.yaml (the co-watch EASE weights fitted
  when the model is built, with its lambda searched on validation; the learned watch head with
  the history bag; ``rank_by=score``), ``samples_per_epoch: auto`` (one triple per train
  rating), batch 1024, conf/trainer/default.yaml (``max_epochs: 20``);
* **rating-only (before ranking)**: ``+experiment=best_ml_latest_small`` DATA
  ``model.cowatch=null model.watch_dim=0 model.use_history=false model.rank_by=rating
  model.id_factors=false model.factor_l2=0``: the rating towers and pair MLP only, 100,000
  triples per epoch, batch 1024, lr 1e-3, ``max_epochs: 10``. The experiment replaces the
  data group with ml_latest_small; DATA comes after it on the command line and wins
  (checked: the composed ``data.movielens_dir`` and name are those asked for).

What is measured, for each recipe, in a fresh child process (``OMP_NUM_THREADS=--threads``,
also passed to ``torch.set_num_threads``; ``OMP_WAIT_POLICY=PASSIVE`` unless set, as duorec
sets it) so that no measurement inherits another's torch or OpenMP state:

1. **setup s**: the one-off work before training, as ``duorec.train.train`` does it: the data
   module's ``prepare_data`` (the prepared data set loaded from the cache in ``--cache-dir``;
   the parent prepares it once beforehand, untimed) plus building the model
   (``DuoModule.from_dataset``: for the default recipe this includes the co-watch EASE fit and
   its lambda search, and the history bags). Reported split into its two parts.
2. **epoch s**: wall time from ``on_train_epoch_start`` to ``on_train_epoch_end`` of a real
   ``Trainer.fit`` with the recipe's data module, model, optimiser, schedule and trainer
   config (gradient clipping, precision), for ``--epochs`` epochs, with no logger,
   checkpointing, progress bar, model summary or the recipe's other callbacks (early stopping,
   throughput and learning-rate logging), and **validation disabled**
   (``limit_val_batches=0``, ``num_sanity_val_steps=0``). A real training epoch is followed
   by a validation pass, and a run ends with testing and the ranking evaluation; none of that
   is "per-epoch training" and none of it is timed here. Sampling runs in-process
   (``data.num_workers`` of the recipe, 0). ``fit other s`` is the rest of the ``fit`` call
   (data module ``setup``: the evaluation triples and rater indexes; optimiser; loop start).
   Since ``max_epochs`` is set to ``--epochs``, the cosine schedule is shorter than the
   recipe's; it changes the learning rate, not the work of a step.
3. **triples/epoch** (batches counted by the callback x batch size) and **triples/s**.
4. **max epochs**: the recipe's ``trainer.max_epochs`` and the implied training time, max
   epochs x median epoch s (an upper bound: early stopping may end the default recipe sooner;
   validation passes not included).

Each recipe's epoch s per repeat is the median of its ``--epochs`` epochs; the table gives
the medians over ``--repeats`` repeats. The recipes alternate (default, rating-only, default,
rating-only, ...) so that a machine whose load drifts loads both alike; the ratios
default / rating-only (per epoch, per triple, implied training, setup) are medians of the
per-repeat ratios of that run.

    .venv/bin/python benchmarks/epoch_time.py --size small --epochs 1 --repeats 1
    .venv/bin/python benchmarks/epoch_time.py --movielens-dir DIR --imdb-dir DIR --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from _common import (
    DEFAULT_CACHE,
    compose_train_config,
    drop_option,
    machine_info,
    markdown_table,
    median,
    save_json,
)

RECIPES = {
    "default": [],
    "rating-only (before ranking)": [
        "model.cowatch=null",
        "model.watch_dim=0",
        "model.use_history=false",
        "model.rank_by=rating",
        # the rating head as it was then: no id factors (their L2 with them)
        "model.id_factors=false",
        "model.factor_l2=0",
    ],
}
#: Overrides that come *before* the data overrides (the experiment replaces the data group).
RECIPE_PREFIX = {
    "default": [],
    "rating-only (before ranking)": ["+experiment=best_ml_latest_small"],
}

COLUMNS = ["recipe", "setup s", "prepare s", "model build s", "epoch s", "first epoch s",
           "fit other s", "triples/epoch", "triples/s", "us/triple", "max epochs",
           "implied training s", "repeats"]  # fmt: skip


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movielens-dir", type=Path, help="a MovieLens release (data=movielens)")
    ap.add_argument("--imdb-dir", type=Path, help="IMDb files for it (optional)")
    ap.add_argument(
        "--size",
        help="synthetic preset instead of real data (default small without --movielens-dir)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="prepared data cache")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="measurements of each recipe")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS / torch threads")
    ap.add_argument(
        "--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES), metavar="NAME",
        help=f"which recipes (default both): {', '.join(map(repr, RECIPES))}",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # one recipe, result to --json
    args = ap.parse_args()
    if args.movielens_dir and args.size:
        ap.error("--size (synthetic) and --movielens-dir (real data) exclude each other")
    if not args.movielens_dir and not args.size:
        args.size = "small"
    return args


def data_overrides(args: argparse.Namespace) -> list[str]:
    if args.movielens_dir:
        imdb = str(args.imdb_dir.resolve()) if args.imdb_dir else "null"
        return [
            "data=movielens",
            f"data.movielens_dir={args.movielens_dir.resolve()}",
            f"data.imdb_dir={imdb}",
        ]
    return ["data=synthetic", f"data.synthetic.size={args.size}"]


def recipe_overrides(args: argparse.Namespace, recipe: str) -> list[str]:
    """The command-line overrides of `recipe` (what `python -m duorec.train` would be given)."""
    return [*RECIPE_PREFIX[recipe], *data_overrides(args), *RECIPES[recipe]]


def compose(args: argparse.Namespace, recipe: str, root: Path) -> Any:
    """The recipe's train config, the data cache at --cache-dir, checked to be the data asked."""
    from omegaconf import open_dict

    import duorec  # noqa: F401 - registers the config resolvers (folder_name, cwd)

    extra = [f"seed={args.seed}", f"data.cache_dir={args.cache_dir.resolve()}"]
    cfg = compose_train_config([*recipe_overrides(args, recipe), *extra], root)
    with open_dict(cfg):
        cfg.threads = args.threads
    if args.movielens_dir:
        want = str(args.movielens_dir.resolve())
        if cfg.data.movielens_dir != want or cfg.data.source != "movielens":
            raise SystemExit(f"{recipe}: composed data is {cfg.data.movielens_dir}, not {want}")
        if cfg.data.name != args.movielens_dir.resolve().name:
            raise SystemExit(f"{recipe}: composed data name {cfg.data.name!r}")
    elif cfg.data.source != "synthetic" or cfg.data.synthetic.size != args.size:
        raise SystemExit(f"{recipe}: composed data is not synthetic {args.size}")
    return cfg


# ----------------------------------------------------------------------------- child


def epoch_timer() -> Any:
    import lightning as L

    class EpochTimer(L.Callback):
        """Wall seconds and batch count of every training epoch (validation is disabled)."""

        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.batches: list[int] = []
            self.start = 0.0

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.batches.append(0)
            self.start = time.perf_counter()

        def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
            self.batches[-1] += 1

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def measure(args: argparse.Namespace, recipe: str) -> dict[str, Any]:
    """One recipe: setup, then --epochs timed training epochs of a real Trainer.fit."""
    import hydra
    import lightning as L
    import torch

    from duorec.train import build_model

    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    scratch = Path(tempfile.mkdtemp(prefix="duorec-epoch-bench-"))
    cfg = compose(args, recipe, scratch)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    # setup, as duorec.train.train does it
    start = time.perf_counter()
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    prepared = time.perf_counter()
    model = build_model(cfg, datamodule)
    built = time.perf_counter()

    timer = epoch_timer()
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        max_epochs=args.epochs,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        default_root_dir=str(scratch / "run"),
    )
    fit_start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    fit_wall = time.perf_counter() - fit_start
    batch_size = int(datamodule.batch_size)
    dataset = datamodule.dataset
    return {
        "recipe": recipe,
        "overrides": recipe_overrides(args, recipe),
        "prepare_s": prepared - start,
        "build_s": built - prepared,
        "epoch_s": timer.seconds,
        "batches": timer.batches,
        "batch_size": batch_size,
        "triples_per_epoch": timer.batches[0] * batch_size if timer.batches else 0,
        "samples_per_epoch": cfg.data.samples_per_epoch,
        "fit_wall_s": fit_wall,
        "max_epochs": int(cfg.trainer.max_epochs),
        "parameters": sum(p.numel() for p in model.parameters()),
        "cowatch_fit": model.hparams.get("cowatch_fit"),
        "data": {
            "name": dataset.manifest.get("name"),
            "n_users": dataset.n_users,
            "n_movies": dataset.n_movies,
            "train_ratings": int(dataset.manifest["split_sizes"]["train"]),
        },
        "torch_threads": torch.get_num_threads(),
    }


def in_child(args: argparse.Namespace, recipe: str) -> dict[str, Any]:
    """`measure` in a fresh interpreter started with OMP_NUM_THREADS=--threads."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        argv = drop_option(drop_option(drop_option(sys.argv[1:], "--json"), "--recipes"), "--child")
        cmd = [sys.executable, __file__, *argv, "--child", recipe, "--json", str(out)]
        threads = str(args.threads)
        env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        subprocess.run(cmd, check=True, env=env)
        return json.loads(out.read_text())


# ----------------------------------------------------------------------------- parent


def summarise(recipe: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    epoch = median([median(r["epoch_s"]) for r in runs])
    triples = runs[0]["triples_per_epoch"]
    max_epochs = runs[0]["max_epochs"]
    return {
        "recipe": recipe,
        "setup s": median([r["prepare_s"] + r["build_s"] for r in runs]),
        "prepare s": median([r["prepare_s"] for r in runs]),
        "model build s": median([r["build_s"] for r in runs]),
        "epoch s": epoch,
        "first epoch s": median([r["epoch_s"][0] for r in runs]),
        "fit other s": median([r["fit_wall_s"] - sum(r["epoch_s"]) for r in runs]),
        "triples/epoch": triples,
        "triples/s": round(triples / epoch),
        "us/triple": epoch / triples * 1e6,
        "max epochs": max_epochs,
        "implied training s": max_epochs * epoch,
        "repeats": len(runs),
    }


def ratios(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """default / rating-only, median of the per-repeat ratios (repeat i of each recipe)."""
    a, b = results.get("default"), results.get("rating-only (before ranking)")
    if not a or not b:
        return []

    def per_epoch(r: dict[str, Any]) -> float:
        return median(r["epoch_s"])

    measures = {
        "time per epoch": per_epoch,
        "time per triple": lambda r: per_epoch(r) / r["triples_per_epoch"],
        "implied training time (max epochs x epoch)": lambda r: per_epoch(r) * r["max_epochs"],
        "setup (prepare + model build)": lambda r: r["prepare_s"] + r["build_s"],
    }
    return [
        {
            "default / rating-only": name,
            "ratio": median([f(x) / f(y) for x, y in zip(a, b, strict=False)]),
            "per repeat": ", ".join(f"{f(x) / f(y):.3g}" for x, y in zip(a, b, strict=False)),
        }
        for name, f in measures.items()
    ]


def main() -> None:
    args = parse_args()
    if args.child:
        save_json(args.json, measure(args, args.child), quiet=True)
        return
    from duorec.data.build import prepare_dataset

    info = machine_info()
    info["OMP_NUM_THREADS"] = args.threads
    info["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "PASSIVE (duorec's default)")
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    data = str(args.movielens_dir) if args.movielens_dir else f"synthetic {args.size}"
    print("# Training time per epoch\n")
    print(", ".join(f"{k}: {v}" for k, v in info.items()), flush=True)

    # the prepared data set, once, outside every timing (both recipes share it)
    with tempfile.TemporaryDirectory() as tmp:
        cfgs = {recipe: compose(args, recipe, Path(tmp)) for recipe in args.recipes}
        prepared = prepare_dataset(next(iter(cfgs.values())).data, args.cache_dir)
    print(
        f"data: {data}, {prepared.dataset.n_users:,} users, {prepared.dataset.n_movies:,} movies "
        f"({'cache' if prepared.from_cache else 'prepared'}, {prepared.seconds:.1f} s); "
        f"{args.repeats} repeats x {args.epochs} epochs per recipe, {args.threads} thread(s)",
        flush=True,
    )
    for recipe in args.recipes:
        print(f"  {recipe}: {' '.join(recipe_overrides(args, recipe))}", flush=True)

    results: dict[str, list[dict[str, Any]]] = {recipe: [] for recipe in args.recipes}
    start = time.perf_counter()
    for i in range(args.repeats):
        for recipe in args.recipes:
            r = in_child(args, recipe)
            results[recipe].append(r)
            epochs = ", ".join(f"{s:.2f}" for s in r["epoch_s"])
            print(
                f"  repeat {i + 1} {recipe}: setup {r['prepare_s'] + r['build_s']:.1f} s "
                f"(build {r['build_s']:.1f} s), epochs {epochs} s, "
                f"{r['triples_per_epoch']:,} triples/epoch",
                flush=True,
            )
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["wall s"] = time.perf_counter() - start

    rows = [summarise(recipe, runs) for recipe, runs in results.items()]
    ratio_rows = ratios(results)
    print(f"\nload average at end: {info['load average at end']}\n")
    print(markdown_table(rows, COLUMNS))
    if ratio_rows:
        print()
        print(markdown_table(ratio_rows))
    save_json(
        args.json,
        {
            "machine": info,
            "args": vars(args),
            "data": data,
            "rows": rows,
            "ratios": ratio_rows,
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()
