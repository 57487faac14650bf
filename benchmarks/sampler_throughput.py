"""Pair-sampler throughput and memory: triples/s of `PairSampler.draw` and of the DataLoader.

What is measured, on each data set (synthetic ``small`` and the MovieLens-32M-scale
synthetic ``ml32m``, both generated into ``--cache-dir`` on first use):

1. ``PairSampler.draw(batch, rng)`` for every batch size (default 1024, 4096, 16384, 65536)
   and every weighting (pairs, ratings, uniform). One repeat draws batches until at least
   ``--triples-per-repeat`` triples have been drawn; triples/s is the median over
   ``--repeats`` repeats (after one warm-up repeat).
2. A baseline in the same run and the same way: ``rng.integers(0, n_ratings, batch)``, one
   array of the batch size (the cheapest thing a sampler could possibly do). The ratio
   baseline / sampler says how many such arrays one draw costs, which is stable across
   machines and load, unlike the raw rate on a shared 2-core box.
3. The full training input path as Lightning uses it: ``SampledPairBatches`` +
   ``EpochBatchSampler`` in a ``DataLoader(batch_size=None, num_workers=W)`` yielding the
   dict of tensors, for W = 0 and 2 (``--workers``). One repeat iterates one whole epoch of
   ``--loader-triples`` triples, worker start-up included (the datamodule does not keep
   workers between epochs); median over ``--loader-repeats``.
4. Memory at each scale: bytes held by the ``RaterIndex`` + ``PairSampler`` arrays (nbytes),
   the RSS growth while building them, and the peak traced allocation during construction
   (tracemalloc, which numpy reports to), all per training rating; compared with what
   enumerating every pair would hold: ``index.n_pairs * 5 columns * 4 (or 8) bytes``.

How the training index is built: the ratings are read from the generated ``ratings.csv``
with pyarrow, user and movie ids mapped to contiguous indices, and the train split taken
with ``duorec.data.split.split_ratings`` (random 0.8/0.1/0.1, seed 0) - the same arrays the
datamodule gets from a prepared dataset, without paying for the IMDb merge and features.
``--from-prepared`` uses ``prepare_dataset`` + ``PairDataModule.rater_index('train')``
instead (slower at ml32m; see prepare_scale.py).

    .venv/bin/python benchmarks/sampler_throughput.py                  # small and ml32m
    .venv/bin/python benchmarks/sampler_throughput.py --sizes small --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    DEFAULT_CACHE,
    data_config,
    ensure_synthetic,
    machine_info,
    markdown_table,
    median,
    read_ratings_arrays,
    rss_bytes,
    save_json,
)

from duorec.data.pairs import WEIGHTINGS, PairSampler, RaterIndex
from duorec.data.split import TRAIN, split_ratings

GOAL = 5_000_000  # triples/s on the 2-core development machine


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["small", "ml32m"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1024, 4096, 16384, 65536])
    ap.add_argument("--weightings", nargs="+", default=list(WEIGHTINGS), choices=WEIGHTINGS)
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per cell (median)")
    ap.add_argument("--triples-per-repeat", type=int, default=1 << 19)
    ap.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    ap.add_argument("--loader-batch-sizes", nargs="+", type=int, default=[2048, 16384])
    ap.add_argument("--loader-triples", type=int, default=1 << 21, help="triples per epoch")
    ap.add_argument("--loader-repeats", type=int, default=5)
    ap.add_argument("--from-prepared", action="store_true", help="index from prepare_dataset")
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap.parse_args()


# ----------------------------------------------------------------------------- data


def train_arrays(args: argparse.Namespace, size: str) -> dict[str, Any]:
    """user, movie, rating of the train split (contiguous indices) and n_movies."""
    if args.from_prepared:
        from duorec.data.build import prepare_dataset

        prepared = prepare_dataset(data_config(size, args.seed), args.cache_dir)
        train = prepared.dataset.split("train")
        return {
            "user": train["user"].to_numpy(),
            "movie": train["movie"].to_numpy(),
            "rating": train["rating"].to_numpy(),
            "n_movies": prepared.dataset.n_movies,
            "n_ratings": prepared.dataset.manifest["n_ratings"],
            "source": f"prepare_dataset ({'cache' if prepared.from_cache else 'built'})",
        }
    root, gen_seconds = ensure_synthetic(args.cache_dir, size, args.seed)
    start = time.perf_counter()
    cols = read_ratings_arrays(root / "movielens" / "ratings.csv")
    read_seconds = time.perf_counter() - start
    _, user = np.unique(cols["userId"], return_inverse=True)
    movie_ids, movie = np.unique(cols["movieId"], return_inverse=True)
    split = split_ratings(len(user), (0.8, 0.1, 0.1), seed=args.seed, method="random")
    train = split == TRAIN
    return {
        "user": user[train].astype(np.int32),
        "movie": movie[train].astype(np.int32),
        "rating": cols["rating"][train],
        "n_movies": len(movie_ids),
        "n_ratings": len(user),
        "source": f"ratings.csv via pyarrow ({read_seconds:.1f} s read"
        + (f", {gen_seconds:.0f} s generated)" if gen_seconds else ")"),
    }


def build_index(arrays: dict[str, Any]) -> tuple[RaterIndex, dict[str, Any]]:
    """RaterIndex of the train arrays, with its memory accounting."""
    gc.collect()
    before = rss_bytes()
    tracemalloc.start()
    start = time.perf_counter()
    index = RaterIndex(arrays["user"], arrays["movie"], arrays["rating"], arrays["n_movies"])
    samplers = {w: PairSampler(index, w) for w in WEIGHTINGS}
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    grown = rss_bytes() - before
    held = sum(a.nbytes for a in (index.raters, index.ratings, index.indptr, index.counts))
    held_sampler = samplers["pairs"].cumulative.nbytes
    n = len(index.raters)
    n_pairs = index.n_pairs
    memory = {
        "train_ratings": n,
        "movies": arrays["n_movies"],
        "n_pairs": n_pairs,
        "build_seconds": seconds,
        "index_bytes": held,
        "sampler_bytes": held_sampler,
        "bytes_per_rating": (held + held_sampler) / n,
        "rss_growth_bytes": grown,
        "rss_bytes_per_rating": grown / n,
        "build_peak_bytes": peak,
        "enumerate_bytes_4": n_pairs * 5 * 4,
        "enumerate_bytes_8": n_pairs * 5 * 8,
    }
    memory["enumerate_over_index"] = memory["enumerate_bytes_4"] / (held + held_sampler)
    return index, memory


# ----------------------------------------------------------------------------- timing


def rate(fn, batch: int, total: int, repeats: int) -> tuple[float, list[float]]:
    """Median triples/s of calling fn(batch) until `total` triples, over `repeats`."""
    calls = max(1, -(-total // batch))
    fn(batch)  # warm-up (page faults, caches)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn(batch)
        rates.append(calls * batch / (time.perf_counter() - start))
    return median(rates), rates


def time_draws(index: RaterIndex, args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng(args.seed)
    n = len(index.raters)
    rows = []
    for batch in args.batch_sizes:
        base, _ = rate(
            lambda b: rng.integers(0, n, b), batch, args.triples_per_repeat, args.repeats
        )
        for weighting in args.weightings:
            sampler = PairSampler(index, weighting)
            med, rates = rate(
                lambda b, s=sampler: s.draw(b, rng), batch, args.triples_per_repeat, args.repeats
            )
            rows.append(
                {
                    "batch": batch,
                    "weighting": weighting,
                    "triples/s": med,
                    "min": min(rates),
                    "max": max(rates),
                    "baseline/s": base,
                    "cost (baseline arrays)": base / med,
                    "goal met": med >= GOAL,
                }
            )
    return rows


def time_loader(index: RaterIndex, args: argparse.Namespace) -> list[dict[str, Any]]:
    from torch.utils.data import DataLoader

    from duorec.data.datamodule import EpochBatchSampler, SampledPairBatches

    sampler = PairSampler(index, "pairs")
    rows = []
    for batch in args.loader_batch_sizes:
        n_batches = max(1, args.loader_triples // batch)
        rng = np.random.default_rng(args.seed)
        n = len(index.raters)
        # baseline: the same number of batches of rng.integers in a plain loop
        base, _ = rate(lambda b, g=rng, n=n: g.integers(0, n, b), batch, n_batches * batch, 3)
        for workers in args.workers:
            dataset = SampledPairBatches(sampler, batch, args.seed)
            loader = DataLoader(
                dataset,
                batch_size=None,
                sampler=EpochBatchSampler(n_batches),
                num_workers=workers,
                persistent_workers=False,
            )
            rates, first = [], []
            for epoch in range(args.loader_repeats + 1):
                loader.sampler.set_epoch(epoch)
                start = time.perf_counter()
                got = 0
                for i, b in enumerate(loader):
                    if i == 0:
                        first.append(time.perf_counter() - start)
                    got += len(b["movie"])
                if epoch:  # epoch 0 is the warm-up
                    rates.append(got / (time.perf_counter() - start))
            med = median(rates)
            rows.append(
                {
                    "batch": batch,
                    "workers": workers,
                    "batches/epoch": n_batches,
                    "triples/s": med,
                    "min": min(rates),
                    "max": max(rates),
                    "first batch s": median(first[1:]),
                    "cost (baseline arrays)": base / med,
                    "goal met": med >= GOAL,
                }
            )
    return rows


def main() -> None:
    args = parse_args()
    info = machine_info()
    print("# Pair sampler throughput\n")
    print(", ".join(f"{k}: {v}" for k, v in info.items()))
    results: dict[str, Any] = {"machine": info, "args": vars(args), "goal": GOAL, "sizes": {}}
    for size in args.sizes:
        arrays = train_arrays(args, size)
        source = arrays.pop("source")
        n_ratings = arrays.pop("n_ratings")
        index, memory = build_index(arrays)
        del arrays
        gc.collect()
        print(f"\n## {size}: {n_ratings:,} ratings, {memory['train_ratings']:,} in train "
              f"({source})\n")  # fmt: skip
        print("### Memory\n")
        print(markdown_table([_memory_row(memory)]))
        draws = time_draws(index, args)
        print("\n### PairSampler.draw (median of repeats)\n")
        print(markdown_table(draws))
        loader = time_loader(index, args)
        print("\n### DataLoader (SampledPairBatches + EpochBatchSampler, dict of tensors)\n")
        print(markdown_table(loader))
        results["sizes"][size] = {
            "source": source,
            "n_ratings": n_ratings,
            "memory": memory,
            "draw": draws,
            "loader": loader,
        }
        del index
        gc.collect()
    save_json(args.json, results)


def _memory_row(m: dict[str, Any]) -> dict[str, Any]:
    mib, gib = 2**20, 2**30
    return {
        "train ratings": m["train_ratings"],
        "n_pairs": m["n_pairs"],
        "build s": m["build_seconds"],
        "index+sampler MiB": m["index_bytes"] / mib + m["sampler_bytes"] / mib,
        "B/rating": m["bytes_per_rating"],
        "RSS growth MiB": m["rss_growth_bytes"] / mib,
        "RSS B/rating": m["rss_bytes_per_rating"],
        "build peak MiB": m["build_peak_bytes"] / mib,
        "enumerate GiB (4 B)": m["enumerate_bytes_4"] / gib,
        "enumerate GiB (8 B)": m["enumerate_bytes_8"] / gib,
        "enumerate / index": m["enumerate_over_index"],
    }


if __name__ == "__main__":
    main()
