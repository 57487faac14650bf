"""One 1-epoch training alone vs two at once, with duorec's thread defaults and the old ones.

Why: on a CPU shared with other work, torch's OpenMP threads spin while waiting for each other
and torch sizes its pool by the machine's cores, so two trainings side by side (or one beside
any busy process) can each run several times slower than alone. duorec now sets
OMP_WAIT_POLICY=PASSIVE before torch loads and `threads: auto` (the CPUs in the process's
affinity mask); this script measures both settings on the same machine in the same run.

What is timed: the wall time of each `python -m duorec.train` process from start to exit
(imports, loading the cached prepared data set, one epoch, a validation pass; `test=false`
skips the final evaluation), for

* new: the defaults (no OMP_* variables in the environment, `threads=auto`);
* old: OMP_WAIT_POLICY unset and torch's default thread count: the child imports torch
  *before* duorec, so duorec's setdefault comes too late for OpenMP, and `threads=null`.

Each configuration runs alone and as two processes started together; the rounds interleave
the configurations and every figure is the median over the repeats (and over both processes
of a pair). The data set is prepared once beforehand, outside the timings.

    .venv/bin/python benchmarks/concurrent_training.py [--repeats 3] [--samples 200000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine_info, markdown_table, median, save_json

OLD = (
    "import sys, runpy, torch; sys.argv = ['duorec.train', *sys.argv[1:]]; "
    "runpy.run_module('duorec.train', run_name='__main__', alter_sys=True)"
)


def command(mode: str, overrides: list[str]) -> list[str]:
    if mode == "new":
        return [sys.executable, "-m", "duorec.train", "threads=auto", *overrides]
    return [sys.executable, "-c", OLD, "threads=null", *overrides]


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env["PYTHONPATH"]]) if env.get("PYTHONPATH") else src
    return {**env, "DUOREC_ROOT": str(root), "WANDB_MODE": "disabled"}


def run_together(cmds: list[list[str]], env: dict[str, str], cwd: Path) -> list[float]:
    """Start the commands at once; wall seconds of each, start to exit."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(c, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for c in cmds
    ]
    seconds = []
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"training failed ({proc.returncode}):\n{err.decode()[-2000:]}")
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200_000, help="triples in the epoch")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    overrides = [
        "trainer.max_epochs=1",
        "test=false",
        f"data.samples_per_epoch={args.samples}",
        "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    with tempfile.TemporaryDirectory(prefix="duorec-concurrent-") as tmp:
        root = Path(tmp)
        env = environment(root)
        run_together([command("new", overrides)], env, root)  # prepare the data once, untimed
        times: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.repeats):
            for mode in ("new", "old"):
                for together in (1, 2):
                    cmds = [command(mode, overrides)] * together
                    times.setdefault((mode, together), []).extend(run_together(cmds, env, root))
    rows = []
    for mode in ("new", "old"):
        alone = median(times[(mode, 1)])
        pair = median(times[(mode, 2)])
        rows.append(
            {
                "defaults": mode,
                "alone s": round(alone, 1),
                "two at once s (each)": round(pair, 1),
                "slowdown": round(pair / alone, 2),
            }
        )
    info = machine_info()
    print(
        f"{info.get('cpu')}, {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} available), "
        f"load average {os.getloadavg()[0]:.1f}; {args.samples} triples, "
        f"median of {args.repeats} repeats"
    )
    print(markdown_table(rows))
    save_json(
        args.json, {"machine": info, "rows": rows, "times": {str(k): v for k, v in times.items()}}
    )


if __name__ == "__main__":
    main()
