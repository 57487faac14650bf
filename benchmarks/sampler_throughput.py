"""Pair-sampler throughput and memory: triples/s of `PairSampler.draw` and of the DataLoader.

What is measured, on each data set (synthetic ``small`` and the MovieLens-32M-scale
synthetic ``ml32m``, both generated into ``--cache-dir`` on first use):

1. ``PairSampler.draw(batch, rng)`` for every batch size (default 1024, 4096, 16384, 65536)
   and every weighting (pairs, ratings, uniform). One repeat draws batches until at least
   ``--triples-per-repeat`` triples have been drawn; triples/s is the median over
   ``--repeats`` repeats (after one warm-up repeat).
2. Two baselines, timed in the same run and interleaved with the draws (each repeat runs
   every baseline and every weighting in turn, so all see the same load):
   ``rng.integers(0, n_ratings, batch)``, one random array of the batch size (compute-bound),
   and ``index.raters[rng.integers(0, n_ratings, batch)]``, one random gather from the
   index (memory-bound, the floor for anything that reads one rater per triple). The costs
   are medians of the per-repeat ratios baseline rate / draw rate: how many such arrays or
   gathers one draw is worth. They move far less with machine load than raw triples/s,
   which matters on a shared 2-core box.
3. The full training input path as Lightning uses it: ``SampledPairBatches`` +
   ``EpochBatchSampler`` in a ``DataLoader(batch_size=None, num_workers=W)`` yielding the
   dict of tensors, for W = 0 and 2 (``--workers``). One repeat iterates one whole epoch of
   ``--loader-triples`` triples, worker start-up included (the datamodule does not keep
   workers between epochs); median over ``--loader-repeats``; its cost column compares with
   the same number of ``rng.integers`` batches timed just before.
4. Where the time of one ``pairs`` draw goes (``--breakdown-batch``): the body of
   ``PairSampler.draw`` replayed here in three timed stages (``time.perf_counter`` around
   each, per batch): the movie draw (``rng.integers`` + ``rng.random`` + the ``prob`` /
   ``alias`` gathers of the Walker/Vose alias table), the rater draws (``counts`` and
   ``indptr`` of each movie, two ``rng.random``, the two rater offsets) and the gathers of
   the two raters and their ratings from the 4 columns of the index. The replay is checked
   to return exactly what ``draw`` returns from the same seed. Beside it, in the same run and
   interleaved with it (each repeat runs ``draw``, the alias replay and the baseline in turn),
   the baseline: the same replay with the movie sampler used before the alias table,
   ``np.searchsorted`` over ``np.cumsum(index.weights("pairs"))`` of ``rng.random(n) * total``
   (written here; duorec no longer has it). The speed-ups are medians of per-repeat ratios.
5. Memory at each scale: bytes held by the ``RaterIndex`` + ``PairSampler`` arrays (nbytes),
   the RSS growth while building them, and the peak traced allocation during construction
   (tracemalloc, which numpy reports to), all per training rating; compared with what
   enumerating every pair would hold: ``index.n_pairs * 5 columns * 4 (or 8) bytes``.

How the training index is built: the ratings are read from the generated ``ratings.csv``
with pyarrow, user and movie ids mapped to contiguous indices, and the train split taken
with ``duorec.data.split.split_ratings`` (random 0.8/0.1/0.1, seed 0): the same train
ratings a prepared dataset has (movies are indexed among rated movies only, a few hundred
fewer at ml32m), without paying for the IMDb merge and features. ``--from-prepared`` builds
the index from ``prepare_dataset``'s train split instead, as ``PairDataModule.rater_index``
does (a minute more at ml32m on first use; see prepare_scale.py).

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

from duorec.data.pairs import WEIGHTINGS, PairSampler, RaterIndex, Triples
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
    ap.add_argument("--breakdown-batch", type=int, default=16384)
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
    held_sampler = samplers["pairs"].prob.nbytes + samplers["pairs"].alias.nbytes
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


def rates_interleaved(
    fns: dict[str, Any], batch: int, total: int, repeats: int
) -> dict[str, list[float]]:
    """Triples/s of each fn(batch) per repeat, the fns run in turn within every repeat.

    Interleaving exposes the sampler and its baselines to the same machine load, so the
    per-repeat ratios stay meaningful while the load of a shared machine drifts.
    """
    calls = max(1, -(-total // batch))
    for fn in fns.values():
        fn(batch)  # warm-up (page faults, caches)
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn(batch)
            rates[name].append(calls * batch / (time.perf_counter() - start))
    return rates


def time_draws(index: RaterIndex, args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng(args.seed)
    n = len(index.raters)
    raters = index.raters
    rows = []
    for batch in args.batch_sizes:
        fns: dict[str, Any] = {
            "integers": lambda b: rng.integers(0, n, b),
            "gather": lambda b: raters[rng.integers(0, n, b)],
        }
        for weighting in args.weightings:
            sampler = PairSampler(index, weighting)
            fns[weighting] = lambda b, s=sampler: s.draw(b, rng)
        rates = rates_interleaved(fns, batch, args.triples_per_repeat, args.repeats)
        for weighting in args.weightings:
            r = rates[weighting]
            med = median(r)
            rows.append(
                {
                    "batch": batch,
                    "weighting": weighting,
                    "triples/s": med,
                    "min": min(r),
                    "max": max(r),
                    "integers/s": median(rates["integers"]),
                    "gather/s": median(rates["gather"]),
                    "cost (integers arrays)": median(
                        [b / a for a, b in zip(r, rates["integers"], strict=True)]
                    ),
                    "cost (gathers)": median(
                        [b / a for a, b in zip(r, rates["gather"], strict=True)]
                    ),
                    "goal met": med >= GOAL,
                }
            )
    return rows


STAGES = ("movie draw", "rater draws", "gathers")


class _Replay:
    """The index arrays and a generator, so `staged_draw` reads them like `draw` does."""

    def __init__(self, index: RaterIndex, rng: np.random.Generator):
        self.counts, self.indptr = index.counts, index.indptr
        self.raters, self.ratings = index.raters, index.ratings
        self.rng = rng


def staged_draw(index: _Replay, movies: Any, n: int, acc: list[float]) -> Triples:
    """`PairSampler.draw`'s body with `movies(n)` as its movie step, each stage timed into acc.

    acc[0] += movie draw, acc[1] += rater draws (offsets), acc[2] += gathers (seconds).
    """
    t0 = time.perf_counter()
    movie = movies(n)
    t1 = time.perf_counter()
    count = index.counts[movie]
    first = (index.rng.random(n) * count).astype(np.int64)
    second = (index.rng.random(n) * (count - 1)).astype(np.int64)
    second += second >= first
    a = index.indptr[movie] + first
    b = index.indptr[movie] + second
    t2 = time.perf_counter()
    out = Triples(index.raters[a], index.raters[b], movie, index.ratings[a], index.ratings[b])
    t3 = time.perf_counter()
    acc[0] += t1 - t0
    acc[1] += t2 - t1
    acc[2] += t3 - t2
    return out


def alias_movies(sampler: PairSampler, rng: np.random.Generator):
    """The movie step of `PairSampler.draw` (alias table), as a function of n."""
    prob, alias = sampler.prob, sampler.alias

    def movies(n: int) -> np.ndarray:
        k = rng.integers(0, len(prob), n)
        return np.where(rng.random(n) < prob[k], k, alias[k])

    return movies


def search_movies(cumulative: np.ndarray, rng: np.random.Generator):
    """Baseline: the movie step before the alias table, a binary search of cumulative weights."""
    total, last = cumulative[-1], len(cumulative) - 1

    def movies(n: int) -> np.ndarray:
        movie = np.searchsorted(cumulative, rng.random(n) * total, side="right")
        return np.minimum(movie, last)

    return movies


def check_replay(index: RaterIndex, sampler: PairSampler, seed: int) -> None:
    """The staged replay must be `draw` itself: same seed, same triples."""
    check_rng = np.random.default_rng(seed)
    replay = _Replay(index, check_rng)
    check = staged_draw(replay, alias_movies(sampler, check_rng), 1000, [0.0, 0.0, 0.0])
    ref = sampler.draw(1000, np.random.default_rng(seed))
    for field in Triples.__dataclass_fields__:
        if not np.array_equal(getattr(check, field), getattr(ref, field)):
            raise AssertionError(f"staged replay differs from PairSampler.draw in {field}")


def stage_medians(reps: list[list[float]]) -> dict[str, float]:
    """Median total and per-stage seconds over the repeats of one variant."""
    return {
        "total": median([sum(r) for r in reps]),
        **{stage: median([r[i] for r in reps]) for i, stage in enumerate(STAGES)},
    }


def time_stages(replay: _Replay, movies: Any, batch: int, calls: int) -> list[float]:
    """Seconds per stage of `calls` staged draws of `batch` triples."""
    acc = [0.0, 0.0, 0.0]
    for _ in range(calls):
        staged_draw(replay, movies, batch, acc)
    return acc


def time_breakdown(index: RaterIndex, args: argparse.Namespace) -> dict[str, Any]:
    """Where one `pairs` draw spends its time, and the binary-search movie step beside it."""
    batch, repeats = args.breakdown_batch, args.repeats
    calls = max(1, -(-args.triples_per_repeat // batch))
    sampler = PairSampler(index, "pairs")
    cumulative = np.cumsum(index.weights("pairs"))

    check_replay(index, sampler, args.seed)
    rng = np.random.default_rng(args.seed)
    replay = _Replay(index, rng)
    variants = {
        "alias": alias_movies(sampler, rng),
        "binary search": search_movies(cumulative, rng),
    }
    draw_seconds: list[float] = []
    stage_seconds: dict[str, list[list[float]]] = {v: [] for v in variants}
    for rep in range(repeats + 1):  # repeat 0 is the warm-up
        start = time.perf_counter()
        for _ in range(calls):
            sampler.draw(batch, rng)
        elapsed = time.perf_counter() - start
        if rep:
            draw_seconds.append(elapsed)
        for name, movies in variants.items():
            acc = time_stages(replay, movies, batch, calls)
            if rep:
                stage_seconds[name].append(acc)

    triples = calls * batch

    def us(seconds: float) -> float:
        return seconds / calls * 1e6

    per_variant = {name: stage_medians(reps) for name, reps in stage_seconds.items()}
    alias_total = per_variant["alias"]["total"]
    rows = [
        {
            "what": "PairSampler.draw (pairs)",
            "triples/s": triples / median(draw_seconds),
            "us/batch": us(median(draw_seconds)),
            "share of alias draw": median(draw_seconds) / alias_total,
        }
    ]
    for name, stages in per_variant.items():
        label = "draw, alias movie step" if name == "alias" else "baseline: draw, binary search"
        rows.append(
            {
                "what": f"{label} (sum of stages)",
                "triples/s": triples / stages["total"],
                "us/batch": us(stages["total"]),
                "share of alias draw": stages["total"] / alias_total,
            }
        )
        for stage in STAGES:
            what = stage
            if stage == "movie draw":
                what += " (alias table)" if name == "alias" else " (searchsorted)"
            rows.append(
                {
                    "what": f"  {what}",
                    "triples/s": triples / stages[stage],
                    "us/batch": us(stages[stage]),
                    "share of alias draw": stages[stage] / alias_total,
                }
            )
    search, alias = stage_seconds["binary search"], stage_seconds["alias"]
    ratios = {
        "movie step: binary search / alias": median(
            [s[0] / a[0] for s, a in zip(search, alias, strict=True)]
        ),
        "whole draw: binary search / alias": median(
            [sum(s) / sum(a) for s, a in zip(search, alias, strict=True)]
        ),
        "binary-search draw / PairSampler.draw": median(
            [sum(s) / d for s, d in zip(search, draw_seconds, strict=True)]
        ),
        "alias replay / PairSampler.draw": median(
            [sum(a) / d for a, d in zip(alias, draw_seconds, strict=True)]
        ),
    }
    return {"rows": [{"batch": batch, **row} for row in rows], "ratios": ratios}


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
                    "cost (integers arrays)": base / med,
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
        breakdown = time_breakdown(index, args)
        print("\n### Where a draw's time goes (median of repeats)\n")
        print(markdown_table(breakdown["rows"]))
        print()
        print(markdown_table([{"same-run ratio (median per repeat)": k, "x": v}
                              for k, v in breakdown["ratios"].items()]))  # fmt: skip
        loader = time_loader(index, args)
        print("\n### DataLoader (SampledPairBatches + EpochBatchSampler, dict of tensors)\n")
        print(markdown_table(loader))
        results["sizes"][size] = {
            "source": source,
            "n_ratings": n_ratings,
            "memory": memory,
            "draw": draws,
            "breakdown": breakdown,
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
