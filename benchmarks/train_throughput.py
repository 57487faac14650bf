"""Training throughput: triples/s of DuoModule optimizer steps, and of a real `Trainer.fit`.

What is measured:

1. Optimizer steps, for every ``model.hidden`` (default 64, 256, 1024), batch size (default
   2048, 8192) and torch thread count (``--threads``, default 1 and all cores; each count
   runs in its own child process started with OMP_NUM_THREADS set, see ``in_child``):
   ``model.training_step(batch)`` (forward and the same losses as training) +
   ``loss.backward()`` + gradient clipping at ``--clip`` (the trainer config's
   ``gradient_clip_val``; 0 disables) + ``AdamW.step()``. Batches are drawn beforehand by the
   datamodule's own ``SampledPairBatches`` from the train split and already moved to the
   device, so data loading is *not* in these times. ``self.log_dict`` is stubbed out (there
   is no trainer to log to). The hidden sizes of one (batch, threads) cell are stepped
   *round-robin* (one step of each model in turn): on a shared machine the load changes
   over seconds, and interleaving exposes every model to the same load, which keeps their
   ratio honest. ``--warmup`` untimed rounds, then ``--steps`` timed ones; each step is
   synchronised on CUDA; triples/s = batch / median step time.
2. ``Trainer.fit`` (``--fit-hidden``, ``--fit-batch``, each thread count): the trainer config
   of conf/trainer/default.yaml (gradient clipping, 32-bit) with no logger, checkpoint,
   progress bar or validation, for ``limit_train_batches=--fit-steps`` steps through the real
   ``PairDataModule`` (num_workers 0, so sampling *is* included). Reported: the median time
   between consecutive ``on_train_batch_end`` calls (a whole loop iteration: loading, step and
   Lightning's bookkeeping), its ratio to the plain optimizer step of the same configuration
   (the Lightning + loading overhead), and the wall time of the whole ``fit`` call
   (including setup: evaluation triples, optimizer, worker-less loader).
3. Ratios in the same run: time(hidden=256) / time(hidden=64) per batch size and threads.

Data: the synthetic ``small`` preset (``--size``), prepared by ``prepare_dataset`` from a
config that Hydra composes from conf/ as ``python -m duorec.train`` would, cached in
``--cache-dir``. The model is conf/model/duo.yaml with ``model.hidden`` overridden.

    .venv/bin/python benchmarks/train_throughput.py
    .venv/bin/python benchmarks/train_throughput.py --device cuda --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from _common import (
    DEFAULT_CACHE,
    compose_train_config,
    drop_option,
    machine_info,
    markdown_table,
    median,
    save_json,
)

COLUMNS = ["what", "threads", "hidden", "batch", "median step ms", "IQR ms", "triples/s",
           "vs plain step", "fit wall s"]  # fmt: skip


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--size", default="small", help="synthetic preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--hidden", nargs="+", type=int, default=[64, 256, 1024])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[2048, 8192])
    ap.add_argument(
        "--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}),
        help="torch.set_num_threads values to measure (default: 1 and all cores)",
    )  # fmt: skip
    ap.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient clip norm (0: none)")
    ap.add_argument("--fit-hidden", type=int, default=256)
    ap.add_argument("--fit-batch", type=int, default=2048)
    ap.add_argument("--fit-steps", type=int, default=40)
    ap.add_argument("--no-fit", action="store_true", help="skip the Trainer.fit rows")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(cfg: Any, dataset: Any, device: torch.device) -> L.LightningModule:
    import hydra

    build = hydra.utils.instantiate(cfg.model, _partial_=True)
    scheduler = hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    model = build(
        dataset=dataset, optimizer=hydra.utils.instantiate(cfg.optim), scheduler=scheduler
    )
    return model.to(device)


def time_steps(
    cfgs: dict[int, Any],
    dataset: Any,
    batches: list[dict[str, torch.Tensor]],
    args: argparse.Namespace,
) -> dict[int, list[float]]:
    """Wall seconds of each timed optimizer step per hidden size, models stepped in turn."""
    device = torch.device(args.device)
    runs = {}
    for hidden, cfg in cfgs.items():
        torch.manual_seed(args.seed)
        model = build_model(cfg, dataset, device)
        model.train()
        model.log_dict = lambda *a, **k: None  # no trainer to log to
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
        )
        runs[hidden] = (model, optimizer)
    times: dict[int, list[float]] = {h: [] for h in cfgs}
    for i, batch in enumerate(batches):
        for hidden, (model, optimizer) in runs.items():
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
                times[hidden].append(time.perf_counter() - start)
    return times


class StepTimer(L.Callback):
    """Timestamps of every on_train_batch_end."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device = device
        self.stamps: list[float] = []

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        sync(self.device)
        self.stamps.append(time.perf_counter())


def time_fit(cfg: Any, dataset: Any, args: argparse.Namespace) -> dict[str, Any]:
    """A real Trainer.fit of --fit-steps batches; per-iteration gaps and the total wall time."""
    import hydra

    from duorec.data.datamodule import PairDataModule

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
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
    return {"gaps": gaps[args.warmup :] or gaps, "wall": wall, "steps": len(timer.stamps)}


def measure(args: argparse.Namespace, threads: int) -> list[dict[str, Any]]:
    """Every optimizer-step row (and the fit row) at one torch thread count."""
    from duorec.data.build import prepare_dataset
    from duorec.data.datamodule import SampledPairBatches
    from duorec.data.pairs import PairSampler, RaterIndex

    torch.set_num_threads(threads)
    device = torch.device(args.device)
    scratch = Path(tempfile.mkdtemp(prefix="duorec-train-bench-"))
    base = [f"data.synthetic.size={args.size}", f"seed={args.seed}", "logger=[]"]
    cfgs = {h: compose_train_config([*base, f"model.hidden={h}"], scratch) for h in args.hidden}
    cfg0 = next(iter(cfgs.values()))
    prepared = prepare_dataset(cfg0.data, args.cache_dir)
    dataset = prepared.dataset
    train = dataset.split("train")
    index = RaterIndex(
        train["user"].to_numpy(),
        train["movie"].to_numpy(),
        train["rating"].to_numpy(),
        dataset.n_movies,
    )
    sampler = PairSampler(index, cfg0.data.pair_weighting)
    n_calls = args.warmup + args.steps
    print(
        f"threads={threads}: synthetic {args.size}, {dataset.n_users:,} users, "
        f"{dataset.n_movies:,} movies, {len(train):,} train ratings "
        f"({'cache' if prepared.from_cache else 'prepared'}, {prepared.seconds:.1f} s); "
        f"{args.warmup} warm-up + {args.steps} timed steps",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    for batch_size in args.batch_sizes:
        source = SampledPairBatches(sampler, batch_size, args.seed)
        batches = [{k: v.to(device) for k, v in source[(0, j)].items()} for j in range(n_calls)]
        for hidden, times in time_steps(cfgs, dataset, batches, args).items():
            step = median(times)
            rows.append(
                {
                    "what": "optimizer step",
                    "threads": threads,
                    "hidden": hidden,
                    "batch": batch_size,
                    "median step ms": step * 1e3,
                    "IQR ms": _iqr(times) * 1e3,
                    "triples/s": batch_size / step,
                }
            )
            print(_progress(rows[-1]), flush=True)
        del batches
    if not args.no_fit:
        cfg = compose_train_config([*base, f"model.hidden={args.fit_hidden}"], scratch)
        fit = time_fit(cfg, dataset, args)
        step = median(fit["gaps"])
        row = {
            "what": "Trainer.fit iteration",
            "threads": threads,
            "hidden": args.fit_hidden,
            "batch": args.fit_batch,
            "median step ms": step * 1e3,
            "IQR ms": _iqr(fit["gaps"]) * 1e3,
            "triples/s": args.fit_batch / step,
            "fit wall s": fit["wall"],
        }
        plain = _find(rows, threads, args.fit_hidden, args.fit_batch)
        if plain:
            row["vs plain step"] = step * 1e3 / plain["median step ms"]
        rows.append(row)
        print(_progress(row), flush=True)
    return rows


def in_child(args: argparse.Namespace, threads: int) -> list[dict[str, Any]]:
    """`measure` in a fresh interpreter whose OpenMP pool has `threads` threads from the start.

    Changing torch.set_num_threads inside one process is not the same thing: going from 1 to
    2 threads mid-process made steps up to 100x slower on the loaded 2-core machine.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        argv = drop_option(drop_option(sys.argv[1:], "--threads"), "--json")
        cmd = [sys.executable, __file__, *argv, "--threads", str(threads), "--json", str(out)]
        cmd.append("--child")
        env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        subprocess.run(cmd, check=True, env=env)
        return json.loads(out.read_text())["rows"]


def main() -> None:
    args = parse_args()
    if args.child:  # one thread count, rows to --json, no tables
        rows = measure(args, args.threads[0])
        save_json(args.json, {"rows": rows}, quiet=True)
        return
    device = torch.device(args.device)
    info = machine_info() | {"device": str(device)}
    info["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    print("# Training throughput\n")
    print(", ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    if len(args.threads) == 1:
        rows = measure(args, args.threads[0])
    else:
        rows = [row for threads in args.threads for row in in_child(args, threads)]

    ratios = []
    for threads in args.threads:
        for batch_size in args.batch_sizes:
            a = _find(rows, threads, 256, batch_size)
            b = _find(rows, threads, 64, batch_size)
            if a and b:
                ratios.append(
                    {
                        "threads": threads,
                        "batch": batch_size,
                        "time(hidden=256) / time(hidden=64)": a["median step ms"]
                        / b["median step ms"],
                    }
                )
    print()
    print(markdown_table(rows, COLUMNS))
    if ratios:
        print()
        print(markdown_table(ratios))
    save_json(args.json, {"machine": info, "args": vars(args), "rows": rows, "ratios": ratios})


def _find(rows: list[dict[str, Any]], threads: int, hidden: int, batch: int) -> dict | None:
    for r in rows:
        if r["what"] == "optimizer step" and (r["threads"], r["hidden"], r["batch"]) == (
            threads,
            hidden,
            batch,
        ):
            return r
    return None


def _progress(row: dict[str, Any]) -> str:
    return (
        f"  {row['what']}: threads={row['threads']} hidden={row['hidden']} "
        f"batch={row['batch']}: {row['median step ms']:.1f} ms, {row['triples/s']:,.0f} triples/s"
    )


def _iqr(values: list[float]) -> float:
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


if __name__ == "__main__":
    main()
