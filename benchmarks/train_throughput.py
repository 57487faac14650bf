"""Training throughput: triples/s of DuoModule optimizer steps, and of a real `Trainer.fit`.

What is measured:

1. Optimizer steps, for every ``model.hidden`` (default 64, 256, 1024) and batch size
   (default 2048, 8192): ``model.training_step(batch)`` (forward, the same losses as
   training) + ``loss.backward()`` + gradient clipping at ``--clip`` (the trainer config's
   ``gradient_clip_val``; 0 disables) + ``AdamW.step()``. Batches are drawn beforehand by
   the datamodule's own ``SampledPairBatches`` from the train split and already moved to
   the device, so data loading is *not* in these times. ``--warmup`` untimed steps, then
   the wall time of each of ``--steps`` steps (synchronised on CUDA); triples/s = batch /
   median step time. ``self.log_dict`` is stubbed out (there is no trainer to log to).
2. ``Trainer.fit`` (``--fit-hidden``, ``--fit-batch``): the trainer config of
   conf/trainer/default.yaml (gradient clipping, 32-bit) with no logger, checkpoint,
   progress bar or validation, for ``limit_train_batches=--fit-steps`` steps through the
   real ``PairDataModule`` (num_workers 0, so sampling *is* included). Reported: the
   median time between consecutive ``on_train_batch_end`` calls (a whole loop iteration:
   loading + step + Lightning's bookkeeping) and the total wall time of ``fit`` (including
   setup: evaluation triples, optimizer, first batch). The ratio against the matching
   plain-step row is Lightning + loading overhead.
3. Ratios in the same run: time(hidden=256) / time(hidden=64) per batch size, and how each
   row compares to the first.

Data: the synthetic ``small`` preset (``--size``), prepared with ``prepare_dataset`` from a
config composed from conf/ by Hydra, as ``python -m duorec.train`` would, cached in
``--cache-dir``. The model is ``conf/model/duo.yaml`` with ``model.hidden`` overridden.

    .venv/bin/python benchmarks/train_throughput.py
    .venv/bin/python benchmarks/train_throughput.py --device cuda --json gpu.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from _common import (
    DEFAULT_CACHE,
    compose_train_config,
    machine_info,
    markdown_table,
    median,
    save_json,
)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--size", default="small", help="synthetic preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--hidden", nargs="+", type=int, default=[64, 256, 1024])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[2048, 8192])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient clip norm (0: none)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--fit-hidden", type=int, default=256)
    ap.add_argument("--fit-batch", type=int, default=2048)
    ap.add_argument("--fit-steps", type=int, default=40)
    ap.add_argument("--no-fit", action="store_true", help="skip the Trainer.fit row")
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(cfg: Any, dataset: Any, device: torch.device) -> torch.nn.Module:
    import hydra
    from omegaconf import OmegaConf

    build = hydra.utils.instantiate(cfg.model, _partial_=True)
    model = build(dataset=dataset, optim=OmegaConf.to_container(cfg.optim, resolve=True))
    return model.to(device)


def time_steps(
    cfg: Any, dataset: Any, batches: list[dict[str, torch.Tensor]], args: argparse.Namespace
) -> list[float]:
    """Wall seconds of each timed optimizer step (after warm-up)."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = build_model(cfg, dataset, device)
    model.train()
    model.log_dict = lambda *a, **k: None  # no trainer to log to
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    times = []
    for i, batch in enumerate(batches):
        sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = model.training_step(batch, i)
        loss.backward()
        if args.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return times


class StepTimer(L.Callback):
    """Lightning callback: timestamps of every on_train_batch_end."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device = device
        self.stamps: list[float] = []

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        sync(self.device)
        self.stamps.append(time.perf_counter())


def time_fit(cfg: Any, dataset: Any, args: argparse.Namespace) -> dict[str, Any]:
    import hydra

    from duorec.data.datamodule import PairDataModule

    device = torch.device(args.device)
    L.seed_everything(args.seed, workers=True, verbose=False)
    model = build_model(cfg, dataset, torch.device("cpu"))
    datamodule = PairDataModule(
        dataset,
        pair_weighting=cfg.data.pair_weighting,
        samples_per_epoch=args.fit_steps * args.fit_batch,
        batch_size=args.fit_batch,
        eval_max_triples=10_000,
        num_workers=0,
        seed=args.seed,
    )
    timer = StepTimer(device)
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=[device.index or 0] if device.type == "cuda" else 1,
        max_epochs=1,
        limit_train_batches=args.fit_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    wall = time.perf_counter() - start
    gaps = [b - a for a, b in zip(timer.stamps, timer.stamps[1:], strict=False)]
    timed = gaps[args.warmup :] or gaps
    return {"gaps": timed, "wall": wall, "steps": len(timer.stamps)}


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from duorec.data.build import prepare_dataset
    from duorec.data.datamodule import SampledPairBatches
    from duorec.data.pairs import PairSampler, RaterIndex

    device = torch.device(args.device)
    info = machine_info() | {"device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    print("# Training throughput\n")
    print(", ".join(f"{k}: {v}" for k, v in info.items()))

    scratch = Path(tempfile.mkdtemp(prefix="duorec-train-bench-"))
    base = [f"data.synthetic.size={args.size}", f"seed={args.seed}", "logger=[]"]
    cfg = compose_train_config([*base, f"model.hidden={args.hidden[0]}"], scratch)
    prepared = prepare_dataset(cfg.data, args.cache_dir)
    dataset = prepared.dataset
    train = dataset.split("train")
    index = RaterIndex(
        train["user"].to_numpy(),
        train["movie"].to_numpy(),
        train["rating"].to_numpy(),
        dataset.n_movies,
    )
    sampler = PairSampler(index, cfg.data.pair_weighting)
    n_calls = args.warmup + args.steps
    print(
        f"\ndata: synthetic {args.size}, {dataset.n_users:,} users, {dataset.n_movies:,} movies, "
        f"{len(train):,} train ratings ({'cache' if prepared.from_cache else 'prepared'}, "
        f"{prepared.seconds:.1f} s); {args.warmup} warm-up + {args.steps} timed steps\n"
    )

    rows: list[dict[str, Any]] = []
    for batch_size in args.batch_sizes:
        source = SampledPairBatches(sampler, batch_size, args.seed)
        batches = [{k: v.to(device) for k, v in source[(0, j)].items()} for j in range(n_calls)]
        for hidden in args.hidden:
            cfg = compose_train_config([*base, f"model.hidden={hidden}"], scratch)
            times = time_steps(cfg, dataset, batches, args)
            step = median(times)
            rows.append(
                {
                    "what": "optimizer step",
                    "hidden": hidden,
                    "batch": batch_size,
                    "median step ms": step * 1e3,
                    "IQR ms": _iqr(times) * 1e3,
                    "triples/s": batch_size / step,
                }
            )
        del batches

    by_key = {(r["hidden"], r["batch"]): r for r in rows}
    ratios = []
    for batch_size in args.batch_sizes:
        a, b = by_key.get((256, batch_size)), by_key.get((64, batch_size))
        if a and b:
            ratios.append(
                {
                    "batch": batch_size,
                    "time(hidden=256) / time(hidden=64)": a["median step ms"] / b["median step ms"],
                }
            )

    fit_row = None
    if not args.no_fit:
        cfg = compose_train_config([*base, f"model.hidden={args.fit_hidden}"], scratch)
        fit = time_fit(cfg, dataset, args)
        step = median(fit["gaps"])
        fit_row = {
            "what": "Trainer.fit iteration",
            "hidden": args.fit_hidden,
            "batch": args.fit_batch,
            "median step ms": step * 1e3,
            "IQR ms": _iqr(fit["gaps"]) * 1e3,
            "triples/s": args.fit_batch / step,
        }
        plain = by_key.get((args.fit_hidden, args.fit_batch))
        fit_row["fit wall s"] = fit["wall"]
        fit_row["fit wall triples/s"] = fit["steps"] * args.fit_batch / fit["wall"]
        if plain:
            fit_row["vs plain step"] = step * 1e3 / plain["median step ms"]
        rows.append(fit_row)

    print(markdown_table(rows, ["what", "hidden", "batch", "median step ms", "IQR ms",
                                "triples/s", "vs plain step", "fit wall s",
                                "fit wall triples/s"]))  # fmt: skip
    if ratios:
        print()
        print(markdown_table(ratios))
    save_json(args.json, {"machine": info, "args": vars(args), "rows": rows, "ratios": ratios})


def _iqr(values: list[float]) -> float:
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


if __name__ == "__main__":
    main()
