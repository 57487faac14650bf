"""Dashboards: every logger gets the model beside its baselines; a sweep gets one summary."""

from __future__ import annotations

import csv
import json
import math
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import run_command
from wandb.proto import wandb_internal_pb2

from duorec.dashboards import flatten, tables
from duorec.report import main as report
from duorec.sweep import read_jobs, write_summary

# one epoch of tiny data; the evaluation cut to one ranker and short grids (its cost dominates)
FAST = [
    "data.synthetic.size=tiny",
    "data.samples_per_epoch=2048",
    "data.batch_size=256",
    "trainer.max_epochs=1",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "eval.bootstrap=50",
    "eval.rank_rating_weights=[0.0,1.0]",
    "eval.foldin_choice.priors=[]",
    "eval.diversity=[0.0]",
    "~eval.rankers",
    "+eval.rankers.ease.lam=50",
    "threads=1",
]


def run(module: str, args: list[str], root: Path) -> subprocess.CompletedProcess:
    return run_command(module, args, root)


def wandb_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """The records of an offline run's .wandb file (a LevelDB-style log of protobufs).

    Offline W&B writes no wandb-summary.json (the service that would is the one `wandb sync`
    talks to), so the summary is read where it is kept: 32 KiB blocks after a 7-byte header,
    each chunk a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
    """
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunks, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a chunk header never straddles a block: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            records.append(record)
            chunks = b""
    return records


def wandb_run(run_dir: Path) -> tuple[dict, set[str], str]:
    """The offline run's summary (its updates applied in order), the keys it logged as
    history (tables, images), and its group."""
    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    summary, logged, group = {}, set(), ""
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "history":
            # a table or an image is logged as fields under its key: (key, "path"), ...
            logged.update(item.key or item.nested_key[0] for item in record.history.item)
        elif kind == "run":
            group = record.run.run_group
    return summary, logged, group


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    """One 3-job sweep logged to W&B (offline), TensorBoard and CSV, shared by the tests
    below (a run costs ~10 s):
    jobs 0 and 1 train; job 2's learning rate fails the settings check, so the sweep goes on
    and then exits 1."""
    root = tmp_path_factory.mktemp("sweep")
    args = ["-m", "optim.lr=1e-3,3e-3,-1", "logger=many", f"paths.cache_dir={tiny_cache}"]
    out = run("duorec.train", [*args, *FAST], root)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "optim.lr" in out.stderr
    (folder,) = (root / "logs" / "train" / "multiruns").iterdir()
    return folder


def test_wandb_summary_holds_every_baseline_and_the_interval(sweep: Path) -> None:
    run_dir = sweep / "0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary, logged, group = wandb_run(run_dir)
    assert group == sweep.name  # the jobs of one sweep share a group: the multirun folder's
    assert {"global_mean", "bias", "mf", "popularity", "ease_sum", "ease_both"} <= set(
        metrics["baselines"]
    )
    for name, values in metrics["baselines"].items():
        for metric, value in values.items():
            assert same(summary[f"final/baseline/{name}/{metric}"], value), (name, metric)
    for metric, ci in metrics["ci"].items():
        for field in ("diff", "low", "high"):
            assert summary[f"final/ci/{metric}/{field}"] == ci[field]
        assert summary[f"final/ci/{metric}/baseline"] == ci["baseline"]
    assert summary["final/pair_rmse"] == metrics["test"]["pair_rmse"]
    assert summary["final/rank_rating_weight/best"] == metrics["rank_rating_weight"]["best"]
    assert {"tables/metrics", "tables/vs_best_baseline", "tables/recommendations"} <= logged
    # the pictures beside metrics.json, also in the W&B run; the sample of recommendations
    for chart in ("baselines", "pair_rmse_by_history", "ndcg_by_history"):
        assert (run_dir / f"chart_{chart}.png").stat().st_size > 1000
        assert f"charts/{chart}" in logged
    with (run_dir / "recommendations.csv").open() as f:
        sample = list(csv.DictReader(f))
    assert len(sample) == 10 and all(row["top"] for row in sample)


def test_tensorboard_and_csv_get_the_same_numbers(sweep: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = sweep / "0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    numbers, words = flatten(metrics)
    with (run_dir / "csv" / "final.csv").open() as f:
        final = {row["name"]: row["value"] for row in csv.DictReader(f)}
    assert {k: float(v) for k, v in final.items() if k in numbers} == pytest.approx(numbers)
    assert final["final/ci/ndcg@10/baseline"] == metrics["ci"]["ndcg@10"]["baseline"]
    assert (run_dir / "csv" / "tables" / "vs_best_baseline.csv").exists()
    # the breakdowns by history measured the evaluation's own items: their "all" row is
    # metrics.json's number
    for metric in ("pair_rmse", "ndcg@10"):
        with (run_dir / "csv" / "tables" / f"{metric}_by_history.csv").open() as f:
            head, *rows = list(csv.reader(f))
        (overall,) = [row for row in rows if row[0] == "all"]
        model = float(overall[head.index("model")])
        assert model == pytest.approx(metrics["test"][metric], rel=1e-5)
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()
    name = "final/baseline/mf/pair_rmse"
    assert events.Scalars(name)[-1].value == pytest.approx(metrics["baselines"]["mf"]["pair_rmse"])
    assert "final/ci/pair_rmse/low" in tags["scalars"]
    assert "tables/vs_best_baseline/text_summary" in tags["tensors"]
    assert "charts/baselines" in tags["images"]
    assert (run_dir / "chart_learning_curves.png").exists()  # drawn from the CSV logger's curves


def test_sweep_summary_has_every_job_and_names_the_failed_one(sweep: Path) -> None:
    with (sweep / "sweep.csv").open() as f:
        rows = {row["job"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"0", "1", "2"}
    for job, lr in (("0", "0.001"), ("1", "0.003")):
        row, metrics = rows[job], json.loads((sweep / job / "metrics.json").read_text())
        assert row["status"] == "completed"
        assert row["overrides"].startswith(f"optim.lr={lr} ")
        assert wandb_run(sweep / job)[2] == sweep.name
        assert float(row["val pair_rmse"]) == metrics["val"]["pair_rmse"]
        assert float(row["pair_rmse"]) == metrics["test"]["pair_rmse"]
        for metric, ci in metrics["ci"].items():
            assert row[f"{metric} baseline"] == ci["baseline"]
            best = metrics["baselines"][ci["baseline"]][metric]
            assert float(row[f"{metric} baseline value"]) == best
            for field in ("diff", "low", "high"):
                assert float(row[f"{metric} {field}"]) == ci[field]
    assert rows["2"]["status"] == "failed" and "optim.lr" in rows["2"]["error"]
    assert rows["2"]["pair_rmse"] == ""
    md = (sweep / "sweep.md").read_text()
    assert "3 jobs: 2 completed, 1 failed" in md
    assert "| 0 | completed | optim.lr=0.001 |" in md and "| 2 | failed | optim.lr=-1 |" in md


def test_report_rebuilds_the_sweep_summary(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {name: (sweep / name).read_text() for name in ("sweep.md", "sweep.csv")}
    for name in before:
        (sweep / name).unlink()
    report([str(sweep)])  # python -m duorec.report DIR
    assert {name: (sweep / name).read_text() for name in before} == before
    assert "| 2 | failed |" in capsys.readouterr().out


def test_report_refuses_a_folder_that_is_neither_run_nor_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        report([str(tmp_path)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("duorec.report: error:") and "neither a run folder" in err
    assert len(err.splitlines()) == 1


def test_flat_names_follow_metrics_json_paths() -> None:
    result = {
        "test": {"pair_rmse": 0.9, "n_triples": 10, "diversity": {"0.3": {"ndcg@10": 0.2}}},
        "baselines": {"ease_both": {"ndcg@10": 0.3}},
        "ci": {"ndcg@10": {"baseline": "ease_both", "diff": 0.01, "low": -0.1, "high": 0.2}},
        "ranker_settings": {"ease": {"best": {"lam": 50}, "grid": [{"lam": 50}]}},
    }
    numbers, words = flatten(result)
    assert numbers == {
        "final/pair_rmse": 0.9,
        "final/n_triples": 10,
        "final/diversity/0.3/ndcg@10": 0.2,
        "final/baseline/ease_both/ndcg@10": 0.3,
        "final/ci/ndcg@10/diff": 0.01,
        "final/ci/ndcg@10/low": -0.1,
        "final/ci/ndcg@10/high": 0.2,
        "final/ranker_settings/ease/best/lam": 50,
    }
    assert words == {"final/ci/ndcg@10/baseline": "ease_both"}


def test_a_job_without_result_or_status_is_listed(tmp_path: Path) -> None:
    """A job killed mid-run (or still running) has a folder but no metrics.json."""
    job = tmp_path / "0" / ".hydra"
    job.mkdir(parents=True)
    (job / "overrides.yaml").write_text("- optim.lr=0.1\n")
    (listed,) = read_jobs(tmp_path)
    assert listed.status == "no result" and listed.overrides == ["optim.lr=0.1"]
    md, _ = write_summary(tmp_path)
    assert "| 0 | no result | optim.lr=0.1 |" in md.read_text()


def test_cold_start_and_group_sections_become_tables() -> None:
    """The shapes metrics.json gives them (eval.cold_start.reveal, eval.group_sizes)."""
    ci = {"baseline": "bias", "diff": 0.28, "low": 0.25, "high": 0.31}
    result = {
        "cold_start": {
            "protocol": {"held_out_users": 5, "reveal": [5]},
            "5": {
                "n_users": 5,
                "n_triples": 1042,
                "model": {"pair_rmse": 0.79, "ndcg@10": 0.38, "recall@10": 0.61},
                "bias": {"pair_rmse": 0.51, "ndcg@10": 0.25, "recall@10": 0.43},
                "ci": {"pair_rmse": ci},
            },
        },
        "groups": {
            "3": {
                "n_groups": 294,
                "targets": {"mean": {"model": {"rmse": 0.82}, "mf": {"rmse": 0.49}}},
                "ranking": {"model": {"ndcg@10": 0.74, "n_ranked_groups": 38}},
            }
        },
    }
    made = tables(result)
    columns, rows = made["cold_start"]
    assert columns[:4] == ["N", "system", "users", "triples"]
    assert rows == [
        ["5", "model", 5, 1042, 0.79, 0.38, 0.61],
        ["5", "bias", 5, 1042, 0.51, 0.25, 0.43],
    ]
    (interval,) = made["vs_best_baseline"][1]
    assert interval == ["cold start N=5", "pair_rmse", "bias", 0.28, 0.25, 0.31, None]
    columns, rows = made["groups"]
    assert columns == ["size", "system", "groups", "rmse (mean)", "ndcg@10"]
    assert rows == [["3", "model", 294, 0.82, 0.74], ["3", "mf", 294, 0.49, None]]
    numbers, _ = flatten(result)
    assert numbers["final/cold_start/5/ci/pair_rmse/low"] == 0.25
    assert numbers["final/groups/3/targets/mean/mf/rmse"] == 0.49
