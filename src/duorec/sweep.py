"""One table per sweep: every job's overrides, the model beside its best baseline, failures named.

After `python -m duorec.train -m ...` each job's metrics.json sits in its own numbered folder and
nothing compares them. `SweepSummary`, a Hydra callback (conf/hydra/train.yaml), rewrites
`sweep.md` and `sweep.csv` in the multirun folder after every job: Hydra raises at the end of a
sweep with a failed job *before* `on_multirun_end`, so a summary written only there would be
missing exactly when a reader most needs it. `python -m duorec.report DIR` rebuilds both files
from the folder alone (a sweep that was killed, or one run before this existed).

The callback also names the sweep's W&B group (the multirun folder's name, through
`DUOREC_SWEEP_GROUP`, read by conf/logger/wandb.yaml) so the jobs of one sweep share a group and
W&B's parallel-coordinates view needs no setup.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from duorec.io import atomic_path

log = logging.getLogger(__name__)

STATUS_FILE = "job_status.json"  # written by the callback into each job's folder
GROUP_ENV = "DUOREC_SWEEP_GROUP"
# the model's test metrics listed for every job, beside the intervals of metrics.json's "ci"
MODEL_COLUMNS = ("pair_rmse", "pair_mae", "ndcg@10", "recall@10", "hit_rate@10")


@dataclass
class Job:
    """One job folder of a sweep: what it was asked to run and how it ended."""

    name: str
    folder: Path
    overrides: list[str]
    status: str  # completed | failed | no result (still running, killed, or test=false)
    metrics: dict[str, Any] | None
    error: str | None


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder under `sweep_dir` (one with `.hydra/overrides.yaml`), by job number."""
    folders = [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")]
    folders.sort(key=lambda f: (not f.name.isdigit(), int(f.name) if f.name.isdigit() else 0, f))
    return [read_job(folder) for folder in folders]


def read_job(folder: Path) -> Job:
    overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
    metrics_file = folder / "metrics.json"
    status_file = folder / STATUS_FILE
    recorded = json.loads(status_file.read_text()) if status_file.exists() else {}
    status = recorded.get("status")
    error = recorded.get("error")
    metrics = None
    if metrics_file.exists():
        try:
            metrics = json.loads(metrics_file.read_text())
        except json.JSONDecodeError:  # one damaged job must not hide the others
            status, error = "failed", "metrics.json is not valid JSON"
    status = status or ("completed" if metrics is not None else "no result")
    return Job(folder.name, folder, [str(o) for o in overrides], status, metrics, error)


def job_row(job: Job) -> dict[str, Any]:
    """The job's CSV row: overrides, the model's test metrics, each interval of metrics.json."""
    row: dict[str, Any] = {
        "job": job.name,
        "status": job.status,
        "overrides": " ".join(job.overrides),
    }
    metrics = job.metrics or {}
    row["val pair_rmse"] = metrics.get("val", {}).get("pair_rmse")
    test = metrics.get("test", {})
    for column in MODEL_COLUMNS:
        row[column] = test.get(column)
    for metric, ci in (metrics.get("ci") or {}).items():
        if not ci:
            continue
        row[f"{metric} baseline"] = ci["baseline"]
        row[f"{metric} baseline value"] = metrics["baselines"][ci["baseline"]].get(metric)
        row[f"{metric} diff"] = ci["diff"]
        row[f"{metric} low"] = ci["low"]
        row[f"{metric} high"] = ci["high"]
    row["error"] = job.error
    return row


def summary_rows(jobs: list[Job]) -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV header (the union of every job's columns, in first-seen order) and the rows."""
    rows = [job_row(job) for job in jobs]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(k for k in row if k != "error"))
    return [*columns, "error"], rows


def write_summary(sweep_dir: Path) -> tuple[Path, Path]:
    """Write sweep.csv (every number, full precision) and sweep.md (the comparison) atomically."""
    jobs = read_jobs(sweep_dir)
    columns, rows = summary_rows(jobs)
    csv_path, md_path = sweep_dir / "sweep.csv", sweep_dir / "sweep.md"
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown(sweep_dir, jobs))
    return md_path, csv_path


def markdown(sweep_dir: Path, jobs: list[Job]) -> str:
    """One line per job: its overrides, the model, the best baseline, difference [95% CI]."""
    metrics = list(dict.fromkeys(m for job in jobs for m in ((job.metrics or {}).get("ci") or {})))
    counts = {s: sum(j.status == s for j in jobs) for s in ("completed", "failed", "no result")}
    # the overrides every job shares are said once: the table shows what the sweep varied
    common = set.intersection(*(set(j.overrides) for j in jobs)) if len(jobs) > 1 else set()
    head = ["job", "status", "overrides", "val pair_rmse"]
    for metric in metrics:
        head += [metric, f"best baseline ({metric})", "model - baseline [95% CI]"]
    lines = [
        f"# Sweep {sweep_dir.name}",
        "",
        f"{len(jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
        "",
    ]
    if common:
        shared = " ".join(o for o in jobs[0].overrides if o in common)
        lines += [f"Overrides of every job: `{shared}`", ""]
    lines += [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for job in jobs:
        m = job.metrics or {}
        varied = " ".join(o for o in job.overrides if o not in common)
        cells = [job.name, job.status, _md(varied) or "(none)"]
        cells.append(_num(m.get("val", {}).get("pair_rmse")))
        for metric in metrics:
            ci = (m.get("ci") or {}).get(metric)
            cells.append(_num(m.get("test", {}).get(metric)))
            if ci:
                base = m["baselines"][ci["baseline"]].get(metric)
                cells.append(f"{ci['baseline']} {_num(base)}")
                cells.append(f"{ci['diff']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}]")
            else:
                cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [j for j in jobs if j.status == "failed"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        for job in failed:
            lines.append(f"- job {job.name} ({' '.join(job.overrides)}): {job.error or 'failed'}")
    lines += [
        "",
        "Difference: the model minus the best baseline on test (lower pair_rmse, higher ndcg "
        "are better), with its paired-bootstrap 95% interval; every number is in sweep.csv.",
        "",
    ]
    return "\n".join(lines)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


class SweepSummary(Callback):
    """Hydra callback: the W&B group of a sweep, and its summary kept current after each job."""

    def __init__(self) -> None:
        self._previous_group: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # set before any job composes its logger; submitit and Slurm jobs inherit the environment
        self._previous_group = os.environ.get(GROUP_ENV)
        os.environ[GROUP_ENV] = Path(str(config.hydra.sweep.dir)).name

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.get("mode") != RunMode.MULTIRUN:
            return
        folder = Path(str(config.hydra.runtime.output_dir))
        status = {"status": job_return.status.name.lower(), "error": None}
        if status["status"] == "failed":
            # the exception itself: the `return_value` property would raise it
            error = getattr(job_return, "_return_value", None)
            text = str(error).strip()
            status["error"] = text.splitlines()[0] if text else type(error).__name__
        try:
            with atomic_path(folder / STATUS_FILE) as tmp:
                tmp.write_text(json.dumps(status))
            write_summary(Path(str(config.hydra.sweep.dir)))
        except Exception:  # a summary must never fail the job it describes
            log.warning("could not update the sweep summary", exc_info=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._previous_group is None:
            os.environ.pop(GROUP_ENV, None)
        else:
            os.environ[GROUP_ENV] = self._previous_group
        md, _ = write_summary(Path(str(config.hydra.sweep.dir)))
        log.info("sweep summary: %s", md)
