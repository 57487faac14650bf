"""The README's first command, timed as a newcomer runs it, and what its table shows.

Runs ``python -m duorec.train`` (plus any extra overrides) ``--runs`` times, each in a fresh
process with its own run folder, and reports per run and as medians:

* **wall s**: from the process start to its exit (imports, data, training, evaluation: the
  whole "main job" a newcomer waits for; the install is not included);
* **cpu s**: user + system seconds of the finished child (``resource.getrusage``): on a busy
  machine wall time says little, CPU time still bounds what an idle 2-core machine needs;
* **verdict**: from the run's own metrics.json, whether duorec is ahead of *every* baseline of
  the same run (pair RMSE below each rating baseline, NDCG@10 above each ranking baseline)
  and the paired-bootstrap interval against the best one.

    .venv/bin/python benchmarks/quickstart.py --runs 3
    .venv/bin/python benchmarks/quickstart.py --runs 1 recipe=full   # the long synthetic run
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_once(overrides: list[str], out: Path) -> dict[str, Any]:
    """One fresh `python -m duorec.train` into `out`: its times and its metrics.json."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "duorec.train", *overrides, f"hydra.run.dir={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"duorec.train failed ({proc.returncode}): {proc.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"wall_s": wall, "cpu_s": cpu, **verdict(metrics)}


def verdict(metrics: dict[str, Any]) -> dict[str, Any]:
    """Is the model ahead of every same-run baseline on pair RMSE and NDCG@10?"""
    model, baselines = metrics["test"], metrics.get("baselines", {})
    rmse = {n: b["pair_rmse"] for n, b in baselines.items() if b.get("pair_rmse") is not None}
    ndcg = {n: b["ndcg@10"] for n, b in baselines.items() if b.get("ndcg@10") is not None}
    out: dict[str, Any] = {
        "pair_rmse": model["pair_rmse"],
        "best_rmse_baseline": min(rmse.items(), key=lambda kv: kv[1]) if rmse else None,
        "ndcg@10": model.get("ndcg@10"),
        "best_ndcg_baseline": max(ndcg.items(), key=lambda kv: kv[1]) if ndcg else None,
    }
    out["ahead_of_every_baseline"] = all(model["pair_rmse"] < v for v in rmse.values()) and all(
        model.get("ndcg@10", -1) > v for v in ndcg.values()
    )
    out["ci"] = {
        k: (c["baseline"], round(c["diff"], 4), round(c["low"], 4), round(c["high"], 4))
        for k, c in metrics.get("ci", {}).items()
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="extra overrides for duorec.train")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="quickstart-") as tmp:
        for i in range(args.runs):
            result = run_once(args.overrides, Path(tmp) / f"run{i}")
            results.append(result)
            print(json.dumps({"run": i, **result}), flush=True)
    for key in ("wall_s", "cpu_s"):
        values = [r[key] for r in results]
        print(f"{key}: median {statistics.median(values):.1f} (min {min(values):.1f}, "
              f"max {max(values):.1f}) over {len(values)} runs")
    print(f"ahead of every baseline in {sum(r['ahead_of_every_baseline'] for r in results)} "
          f"of {len(results)} runs")


if __name__ == "__main__":
    main()
