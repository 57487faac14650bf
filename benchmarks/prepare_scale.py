"""Data preparation at MovieLens-32M scale: generate, prepare from scratch, load from cache.

What is measured, each step in its own child process so that its peak RSS is its own and not
the parent's or an earlier step's. The peak is read inside the child as VmHWM (the
high-water mark of its address space, which exec resets). ``ru_maxrss`` from ``os.wait4`` is
kept in the JSON too, but Linux carries it over exec, so it never reads below the parent's
RSS at the fork (0.2 GiB here) and is only right for large steps:

1. generate: ``duorec.data.synthetic.generate`` of the ``--size`` preset (default ``ml32m``:
   200k users, 87k movies, 32M ratings, IMDb files with 350k people) into a fresh work dir,
   at the path ``prepare_dataset`` uses for synthetic data (``cache/synthetic/SIZE-seedN``).
2. prepare (scratch): ``prepare_dataset(cfg, work_dir)`` with no prepared cache, where
   ``cfg`` is the ``data`` group composed by Hydra from conf/ (``data=synthetic``,
   ``data.synthetic.size=SIZE``): read MovieLens + IMDb, merge, split, features, save.
   Its stages are timed by wrapping the functions ``duorec.data.build`` calls
   (``read_movielens``, ``split_ratings``, ``_catalog``, ``fit_features``,
   ``PreparedDataset.save``) with timers that also record the peak RSS reached so far, so
   the table shows which stage costs the time and which one sets the memory peak.
   ``--profile N`` also prints the N functions with the largest cumulative time (cProfile).
3. prepare (cache): the same call again; it must find the cache and only load it.

Reported: wall seconds and peak RSS of each step, the data set sizes (users, movies,
ratings, people vocabulary), the size of the generated files and of the prepared cache on
disk, against the goal (prepare < 5 min and < 8 GB on the 2-core, 24 GB machine).

    .venv/bin/python benchmarks/prepare_scale.py                      # ml32m, a few minutes
    .venv/bin/python benchmarks/prepare_scale.py --size small --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import DEFAULT_CACHE, data_config, machine_info, markdown_table, save_json

GOAL_SECONDS = 300
GOAL_BYTES = 8 * 2**30
STAGES = ("read_movielens", "split_ratings", "_catalog", "fit_features")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="ml32m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--work-dir", type=Path, default=None,
        help="cache dir for this run (default: a fresh folder under --cache-dir, removed)",
    )  # fmt: skip
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile top N")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", choices=["generate", "prepare"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# ----------------------------------------------------------------------------- children


def peak_rss() -> int:
    """Peak RSS of this process image so far, bytes: VmHWM, reset by exec.

    ``ru_maxrss`` is not: Linux carries it over exec, so a child started from a parent that
    had imported torch reports at least the parent's RSS (a 0.2 GiB floor here).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_generate(args: argparse.Namespace) -> dict[str, Any]:
    from _common import synthetic_root

    from duorec.data.synthetic import generate

    root = synthetic_root(args.work_dir, args.size, args.seed)
    start = time.perf_counter()
    generate(root, args.size, seed=args.seed)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": _folder_bytes(root), "peak_rss_self": peak_rss()}


def child_prepare(args: argparse.Namespace) -> dict[str, Any]:
    """prepare_dataset with every stage of build_dataset timed (and optionally profiled)."""
    from duorec.data import build
    from duorec.data.prepared import PreparedDataset

    stages: list[dict[str, Any]] = []

    def timed(name: str, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            result = fn(*a, **k)
            stages.append(
                {
                    "stage": name,
                    "seconds": time.perf_counter() - start,
                    "peak RSS so far GiB": peak_rss() / 2**30,
                }
            )
            return result

        return wrapper

    for name in STAGES:
        setattr(build, name, timed(name, getattr(build, name)))
    PreparedDataset.save = timed("PreparedDataset.save", PreparedDataset.save)
    PreparedDataset.load = timed("PreparedDataset.load", PreparedDataset.load)

    cfg = data_config(args.size, args.seed)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    prepared = build.prepare_dataset(cfg, args.work_dir)
    seconds = time.perf_counter() - start
    if profiler:
        import io
        import pstats

        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(args.profile)
        print(text.getvalue())
    m = prepared.dataset.manifest
    return {
        "seconds": seconds,
        "from_cache": prepared.from_cache,
        "stages": stages,
        "folder": str(prepared.folder),
        "cache_bytes": _folder_bytes(prepared.folder),
        "users": m["n_users"],
        "movies": m["n_movies"],
        "ratings": m["n_ratings"],
        "people_vocab": m["n_people"],
        "split_sizes": m.get("split_sizes"),
        "merge_report": m.get("merge_report"),
        "peak_rss_self": peak_rss(),
    }


def run_child(step: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one step in a fresh interpreter; its result plus its own wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--child", step, "--out", str(out), "--size", args.size,
               "--seed", str(args.seed), "--work-dir", str(args.work_dir),
               "--profile", str(args.profile if step == "prepare" else 0)]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"{step} failed with exit code {proc.returncode}")
        result = json.loads(out.read_text())
    result["wall_seconds"] = wall
    result["ru_maxrss_bytes"] = usage.ru_maxrss * 1024  # from os.wait4: the child's own
    result["peak_rss_bytes"] = result["peak_rss_self"]
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return result


# ----------------------------------------------------------------------------- parent


def main() -> None:
    args = parse_args()
    if args.child:
        result = (child_generate if args.child == "generate" else child_prepare)(args)
        args.out.write_text(json.dumps(result, default=str))
        return
    info = machine_info()
    print(f"# Preparation at {args.size} scale\n")
    print(", ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    own_work_dir = args.work_dir is None
    if own_work_dir:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        args.work_dir = Path(tempfile.mkdtemp(prefix="prepare-scale-", dir=args.cache_dir))
    try:
        generated = run_child("generate", args)
        print(f"generated in {generated['wall_seconds']:.1f} s", flush=True)
        scratch = run_child("prepare", args)
        print(f"prepared from scratch in {scratch['wall_seconds']:.1f} s", flush=True)
        cached = run_child("prepare", args)
        if not cached["from_cache"]:
            print("WARNING: the second prepare did not use the cache")
    finally:
        if own_work_dir and not args.keep:
            shutil.rmtree(args.work_dir, ignore_errors=True)

    steps = []
    for name, r in (("generate", generated), ("prepare (scratch)", scratch),
                    ("prepare (cache)", cached)):  # fmt: skip
        steps.append(
            {
                "step": name,
                "wall s": r["wall_seconds"],
                "in-call s": r["seconds"],
                "CPU s": r["cpu_seconds"],
                "peak RSS GiB": r["peak_rss_bytes"] / 2**30,
                "meets goal": r["wall_seconds"] < GOAL_SECONDS and r["peak_rss_bytes"] < GOAL_BYTES
                if name.startswith("prepare")
                else "",
            }
        )
    sizes = {
        "users": scratch["users"],
        "movies": scratch["movies"],
        "ratings": scratch["ratings"],
        "people vocab": scratch["people_vocab"],
        "generated files MiB": generated["bytes"] / 2**20,
        "prepared cache MiB": scratch["cache_bytes"] / 2**20,
    }
    print("\n## Steps (each in its own process; wall includes interpreter start-up)\n")
    print(markdown_table(steps))
    print("\n## Stages of prepare (scratch), in call order\n")
    print(markdown_table(scratch["stages"]))
    print("\n## Sizes\n")
    print(markdown_table([sizes]))
    print(f"\ngoal: prepare < {GOAL_SECONDS} s and < {GOAL_BYTES / 2**30:.0f} GiB peak RSS")
    save_json(
        args.json,
        {
            "machine": info,
            "args": vars(args),
            "generate": generated,
            "prepare_scratch": scratch,
            "prepare_cache": cached,
            "steps": steps,
            "sizes": sizes,
        },
    )


def _folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


if __name__ == "__main__":
    main()
