"""How long does one recommendation take over a MovieLens-32M-sized catalogue? Measured.

Why: `python -m duorec.recommend` promises an interactive answer (goal: <= 10 ms median per
pair on a laptop-class CPU) once the model is loaded, and the batch mode promises throughput.
The cost per pair is the pair scored against every unseen movie: with DuoModule that is three
[dim x movies] products plus the small symmetric fusion MLP once per (pair, movie). It depends
on the catalogue size and each person's number of ratings, not on the number of users.

Two sources of model + data:

* default: a DuoModule built directly (random weights and features; no training is needed to
  time the arithmetic) over a synthetic prepared data set of `--movies` (87k, MovieLens-32M's
  catalogue) movies, with the default model config's sizes (conf/model/duo.yaml). Users rate
  a log-normal number of movies, mean `--ratings-per-user` (160 ~ MovieLens-32M).
* `--ckpt PATH`: a trained checkpoint with its own prepared data (e.g. trained on
  data.synthetic.size=ml32m), loaded through `duorec.checkpoint.load_checkpoint`.

Measured after loading: the data set index (`serving.index.ServingIndex`: seen-movies CSR), built
once as the command line does; one call as the command line makes it (movie tower, scoring);
the towers once, as a service holds them (a `Recommender`: the movie tower, the watch
factors, and with `hold_users` every person's vector) and the genre matrix for repeated use;
then per-pair latency of `Recommender.pair` over `--pairs` random pairs with those reused
(median, p90), for the pair head
(aggregate = the model's target), the same with the user tower run per call, another
aggregate (no fusion MLP) and a genre filter; and pairs/s of `Recommender.pairs` with batches
of 64 and 256. Wall and CPU time are both reported: on a
shared machine the wall time also counts waiting for a core. `--threads 1` is usually faster
per pair when the cores are busy (OpenMP threads wait for each other at every op).

    .venv/bin/python benchmarks/recommend_latency.py [--threads 1] [--json out.json]
    .venv/bin/python benchmarks/recommend_latency.py --ckpt logs/train/runs/<stamp>
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _common import machine_info, markdown_table, save_json
from omegaconf import OmegaConf

from duorec.data.features import Features
from duorec.data.prepared import PreparedDataset
from duorec.model.cowatch import CoWatchFit
from duorec.model.module import DuoModule
from duorec.serving import Recommender
from duorec.serving import scores as rec
from duorec.serving.index import ServingIndex

GENRES = (
    "Action Adventure Animation Children Comedy Crime Documentary Drama Fantasy Film-Noir "
    "Horror IMAX Musical Mystery Romance Sci-Fi Thriller War Western"
).split()


def synthetic_dataset(
    n_users: int, n_movies: int, ratings_per_user: float, seed: int = 0
) -> PreparedDataset:
    """An in-memory prepared data set with the shape that matters for recommending.

    Feature widths follow the real pipeline on synthetic data (38 user, 49 movie features,
    up to 10 people per movie from a 50k vocabulary); movie popularity is Zipf-like so a
    person's seen set looks like a real one (mostly popular films).
    """
    rng = np.random.default_rng(seed)
    sigma = 1.0
    counts = rng.lognormal(np.log(ratings_per_user) - sigma**2 / 2, sigma, n_users)
    counts = np.clip(counts.round(), 20, n_movies // 2).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_movies + 1) ** 0.9
    movie = rng.choice(n_movies, size=int(counts.sum()), p=popularity / popularity.sum())
    ratings = pd.DataFrame(
        {
            "user": np.repeat(np.arange(n_users, dtype=np.int32), counts),
            "movie": rng.permutation(n_movies).astype(np.int32)[movie],
            "rating": rng.choice(np.arange(1, 11, dtype=np.float32) / 2, size=len(movie)),
            "timestamp": np.zeros(len(movie), dtype=np.int64),
            "split": np.zeros(len(movie), dtype=np.int8),
        }
    )
    n_genres = rng.integers(1, 4, n_movies)
    catalog = pd.DataFrame(
        {
            "movieId": np.arange(1, n_movies + 1, dtype=np.int64),
            "title": [f"Movie {i}" for i in range(1, n_movies + 1)],
            "year": np.where(
                rng.random(n_movies) < 0.02, np.nan, rng.integers(1920, 2025, n_movies)
            ),
            "genres": ["|".join(rng.choice(GENRES, n, replace=False)) for n in n_genres],
            "runtime": np.where(rng.random(n_movies) < 0.1, np.nan, rng.normal(105, 20, n_movies)),
            "imdb_rating": rng.uniform(2, 9, n_movies).round(1),
        }
    )
    people_counts = rng.integers(0, 11, n_movies)
    offsets = np.concatenate([[0], np.cumsum(people_counts)]).astype(np.int64)
    n_people = 50_000
    features = Features(
        user=rng.normal(size=(n_users, 38)).astype(np.float32),
        user_names=[f"u{i}" for i in range(38)],
        movie=rng.normal(size=(n_movies, 49)).astype(np.float32),
        movie_names=[f"m{i}" for i in range(49)],
        people_offsets=offsets,
        people_index=rng.integers(0, n_people, offsets[-1]).astype(np.int32),
        people_vocab=[f"cast:nm{i:07d}" for i in range(n_people)],
        global_mean=3.5,
    )
    manifest = {"name": f"bench-{n_movies}", "rating_range": [0.5, 5.0], "cache_key": "bench"}
    return PreparedDataset(ratings, np.arange(1, n_users + 1), catalog, features, manifest)


def percentiles(seconds: list[float], cpu: list[float]) -> dict[str, float]:
    """Median / p90 wall ms, and median CPU ms (all threads): on a shared machine the wall
    time includes waiting for a core, the CPU time is the work itself."""
    ms = np.asarray(seconds) * 1000
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "cpu_ms": float(np.median(cpu) * 1000),
    }


def random_pairs(dataset: PreparedDataset, n: int, seed: int) -> np.ndarray:
    """n pairs of distinct original user ids."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, dataset.n_users, n)
    b = (a + rng.integers(1, dataset.n_users, n)) % dataset.n_users
    return dataset.user_ids[np.stack([a, b], axis=1)]


def single_latency(
    recommender: Recommender,
    pairs: np.ndarray,
    aggregate: str,
    filters: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Per-call wall time of `Recommender.pair` (towers run once, no reasons), after two
    warm-up calls."""

    def call(a: int, b: int) -> None:
        recommender.pair(a, b, 10, aggregate, filters=filters, reasons=False)

    for a, b in pairs[:2]:
        call(a, b)
    times, cpu = [], []
    for a, b in pairs:
        start, start_cpu = time.perf_counter(), time.process_time()
        call(a, b)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return percentiles(times, cpu)


def batch_throughput(
    recommender: Recommender, pairs: np.ndarray, aggregate: str, batch_size: int
) -> dict[str, float]:
    """pairs/s of `Recommender.pairs` over all `pairs` (one warm-up batch first)."""

    def call(some: np.ndarray) -> None:
        recommender.pairs(some, 10, aggregate, batch_size=batch_size, reasons=False)

    call(pairs[:batch_size])
    start, start_cpu = time.perf_counter(), time.process_time()
    call(pairs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "median_ms": seconds / len(pairs) * 1000,
        "cpu_ms": cpu / len(pairs) * 1000,
        "pairs_per_s": len(pairs) / seconds,
    }


def model_config() -> dict[str, Any]:
    """The sizes of conf/model/duo.yaml, so the benchmark times the model users train."""
    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf/model/duo.yaml"))
    cfg.pop("_target_")
    return cfg


def random_cowatch(dataset: PreparedDataset, cfg: dict[str, Any], seed: int) -> CoWatchFit:
    """Co-watch weights of a fitted model's shape (the `max_items` most-rated movies, `top_n`
    weights each), random: the timing depends on the shape, and fitting EASE on a 20k
    catalogue would cost minutes that measure nothing about serving."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(dataset.ratings["movie"].to_numpy(), minlength=dataset.n_movies)
    kept = np.sort(np.argsort(-counts, kind="stable")[: cfg["max_items"]])
    n = min(cfg["top_n"], len(kept))
    per_movie = np.zeros(dataset.n_movies, dtype=np.int64)
    per_movie[kept] = n
    indptr = np.concatenate([[0], np.cumsum(per_movie)])
    target = kept[rng.integers(0, len(kept), len(kept) * n)]
    weight = rng.normal(0, 0.01, len(target)).astype(np.float32)
    return CoWatchFit(indptr, target.astype(np.int64), weight, 0.0, [], int(len(kept)))


def build_model(dataset: PreparedDataset, seed: int) -> DuoModule:
    """conf/model/duo.yaml's model over `dataset`, random weights, its co-watch random too."""
    cfg = model_config()
    cowatch = cfg.pop("cowatch", None)
    torch.manual_seed(seed)
    if not cowatch:
        return DuoModule.from_dataset(dataset, **cfg).eval()
    fit = random_cowatch(dataset, cowatch, seed)
    model = DuoModule.from_dataset(
        dataset, **cfg, n_cowatch=(len(dataset.ratings), len(fit.weight))
    ).eval()
    ratings = dataset.ratings
    model.cowatch.set(fit, ratings["user"].to_numpy(), ratings["movie"].to_numpy())
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, help="a trained checkpoint (file or run folder)")
    ap.add_argument("--cache-dir", type=Path, help="prepared data cache of --ckpt")
    ap.add_argument("--movies", type=int, default=87_000)
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--ratings-per-user", type=float, default=160.0)
    ap.add_argument("--pairs", type=int, default=200, help="pairs timed one by one")
    ap.add_argument("--batch-pairs", type=int, default=1024, help="pairs in the batch runs")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--chunk-elements", type=int, help="override serving.CHUNK_ELEMENTS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.chunk_elements:
        rec.CHUNK_ELEMENTS = args.chunk_elements

    setup: dict[str, float] = {}
    start = time.perf_counter()
    if args.ckpt:
        from duorec.checkpoint import load_checkpoint, resolve_checkpoint

        ckpt = resolve_checkpoint(args.ckpt, ".")
        model, dataset = load_checkpoint(ckpt, args.cache_dir)
        source = f"checkpoint {ckpt}"
        setup["load checkpoint + data"] = time.perf_counter() - start
    else:
        dataset = synthetic_dataset(args.users, args.movies, args.ratings_per_user, args.seed)
        setup["generate data"] = time.perf_counter() - start
        start = time.perf_counter()
        model = build_model(dataset, args.seed)
        setup["build model"] = time.perf_counter() - start
        source = "DuoModule (random weights, conf/model/duo.yaml sizes) over synthetic data"
    first = random_pairs(dataset, 1, args.seed + 2)[0]
    start = time.perf_counter()
    index = ServingIndex(dataset)
    setup["data set index (seen CSR), once"] = time.perf_counter() - start
    start = time.perf_counter()
    per_call = Recommender(model, dataset, index)
    setup["Recommender: movie tower (once)"] = time.perf_counter() - start
    start = time.perf_counter()
    per_call.pair(first[0], first[1], 10, model.target, reasons=False)
    setup["first recommendation, as the CLI (after the tower)"] = time.perf_counter() - start
    start = time.perf_counter()
    held = Recommender(model, dataset, index, hold_users=True)
    setup["Recommender holding users: both towers (once, every person)"] = (
        time.perf_counter() - start
    )
    start = time.perf_counter()
    index.genres  # noqa: B018 - built on first use
    setup["genre matrix (first genre filter)"] = time.perf_counter() - start

    pairs = random_pairs(dataset, args.pairs, args.seed)
    batch = random_pairs(dataset, args.batch_pairs, args.seed + 1)
    other = next(a for a in ("min", "max", "mean") if a != model.target)
    rows: list[dict[str, Any]] = []

    def row(mode: str, result: dict[str, float]) -> None:
        ms = result["median_ms"]
        rows.append(
            {
                "mode": mode,
                "median ms/pair": round(ms, 2),
                "p90 ms/pair": round(result["p90_ms"], 2) if "p90_ms" in result else "-",
                "CPU ms/pair": round(result["cpu_ms"], 2),
                "pairs/s": round(result.get("pairs_per_s", 1000 / ms), 1),
            }
        )

    row(f"single, pair head ({model.target})", single_latency(held, pairs, model.target))
    row(
        "single, pair head, user tower per call",
        single_latency(per_call, pairs, model.target),
    )
    row(f"single, aggregate={other}", single_latency(held, pairs, other))
    row(
        "single, pair head, genres=[Comedy]",
        single_latency(held, pairs, model.target, {"genres": ["Comedy"]}),
    )
    for size in args.batch_sizes:
        row(f"batch of {size}, pair head", batch_throughput(held, batch, model.target, size))

    info = machine_info()
    print(
        f"\n{source}: {dataset.n_movies:,} movies, {dataset.n_users:,} users, "
        f"{len(dataset.ratings):,} ratings; torch threads {torch.get_num_threads()}, "
        f"CHUNK_ELEMENTS {rec.CHUNK_ELEMENTS}; {info['cpu']} ({info['cores']} cores)\n"
    )
    print(markdown_table([{"step": k, "seconds": round(v, 2)} for k, v in setup.items()]))
    print()
    print(markdown_table(rows))
    print(
        f"\nmedian/p90: wall time per pair (batch rows: total / pairs); CPU: process time "
        f"(all threads); load average at the end: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores"
    )
    save_json(
        args.json,
        {
            "machine": info,
            "source": source,
            "n_movies": dataset.n_movies,
            "n_users": dataset.n_users,
            "n_ratings": len(dataset.ratings),
            "torch_threads": torch.get_num_threads(),
            "chunk_elements": rec.CHUNK_ELEMENTS,
            "setup_seconds": setup,
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
