"""The command lines as users type them: sweeps, Optuna, W&B offline, DDP, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import FAST, run_command
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from duorec.report import COLUMNS

REPO = Path(__file__).resolve().parents[1]


def run(
    module: str, args: list[str], root: Path, timeout: int = 600
) -> subprocess.CompletedProcess:
    return run_command(module, args, root, timeout)


def test_multirun_sweep_gives_each_job_its_directory(tmp_path: Path) -> None:
    out = run("duorec.train", ["-m", "optim.lr=1e-3,3e-3", "model.hidden=16,32", *FAST], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = sorted((tmp_path / "logs" / "train" / "multiruns").glob("*/*/metrics.json"))
    assert len(jobs) == 4
    settings = set()
    for path in jobs:
        cfg = yaml.safe_load((path.parent / ".hydra" / "config.yaml").read_text())
        settings.add((cfg["optim"]["lr"], cfg["model"]["hidden"]))
        assert json.loads(path.read_text())["test"]["pair_rmse"] > 0
    assert settings == {(1e-3, 16), (1e-3, 32), (3e-3, 16), (3e-3, 32)}


def test_optuna_search_minimises_validation_rmse(tmp_path: Path) -> None:
    out = run(
        "duorec.train",
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",  # a random start, then one the sampler proposes
            "hydra.sweeper.sampler.n_startup_trials=1",
            *FAST,
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (result,) = (tmp_path / "logs" / "train" / "multiruns").glob("*/optimization_results.yaml")
    best = yaml.safe_load(result.read_text())
    trials = [
        json.loads(p.read_text())["val"]["pair_rmse"] for p in result.parent.glob("*/metrics.json")
    ]
    assert len(trials) == 2
    assert best["best_value"] == pytest.approx(min(trials), rel=1e-6)


def test_wandb_offline_logs_config_and_metrics(tmp_path: Path) -> None:
    args = ["logger=wandb", "+sweep_group=lr-study", *FAST, "model.hidden=64"]
    out = run("duorec.train", args, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (record,) = (tmp_path / "logs" / "train" / "runs").glob("*/wandb/offline-run-*/run-*.wandb")
    # offline wandb keeps one binary record log (uploaded by `wandb sync`); the resolved config,
    # the group and the metric names are stored in it as JSON / plain strings
    data = record.read_bytes()
    assert b'"group":"lr-study"' in data
    assert b'"hidden":64' in data and b'"pair_weighting":"pairs"' in data
    assert b"val/pair_rmse" in data and b"final/pair_rmse" in data


def test_ddp_two_cpu_processes_draw_disjoint_reproducible_streams(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    records = []
    for attempt in ("first", "second"):
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        out = subprocess.run(
            [
                sys.executable,
                str(REPO / "tests" / "ddp_probe.py"),
                str(cache),
                str(tmp_path / attempt),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        records.append(
            {r: json.loads((tmp_path / attempt / f"rank{r}.json").read_text()) for r in (0, 1)}
        )
    first, second = records
    assert first[0]["world"] == 2
    rank0 = {tuple(b) for b in first[0]["batches"]}
    rank1 = {tuple(b) for b in first[1]["batches"]}
    assert len(rank0) == len(first[0]["batches"]) == 8  # 1024 / (128 * 2) batches x 2 epochs
    assert not rank0 & rank1  # the ranks never draw the same batch
    assert first[0]["batches"] == second[0]["batches"]  # and each stream is reproducible
    assert first[1]["batches"] == second[1]["batches"]
    assert first[0]["val_rmse"] == pytest.approx(first[1]["val_rmse"])  # metrics are synced


def test_train_command_runs_ddp_on_two_cpu_processes(tmp_path: Path) -> None:
    out = run("duorec.train", ["trainer=ddp", "trainer.devices=2", *FAST], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MEMBER: 2/2" in out.stderr + out.stdout
    (metrics,) = (tmp_path / "logs" / "train" / "runs").glob("*/metrics.json")
    assert json.loads(metrics.read_text())["test"]["pair_rmse"] > 0


def test_bad_data_path_is_one_clear_line(tmp_path: Path) -> None:
    out = run(
        "duorec.prepare", ["data=movielens", f"data.movielens_dir={tmp_path / 'none'}"], tmp_path
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().endswith("MovieLens folder does not exist")


def test_a_failing_sweep_job_fails_alone(tmp_path: Path) -> None:
    # job 0 has no MovieLens folder (a DataError); job 1 must still run and write its metrics
    out = run("duorec.train", ["-m", "data.source=movielens,synthetic", *FAST], tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "duorec.train: error: <input>: data.movielens_dir is not set" in out.stderr
    assert "Error executing job with overrides: ['data.source=movielens'" in out.stderr
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    assert not (sweep / "0" / "metrics.json").exists()
    assert json.loads((sweep / "1" / "metrics.json").read_text())["test"]["pair_rmse"] > 0


def test_submitit_sweep_runs_each_job_in_its_own_process(tmp_path: Path) -> None:
    out = run(
        "duorec.train",
        ["-m", "hydra/launcher=submitit_local", "optim.lr=1e-3,3e-3", *FAST],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    lrs = set()
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["test"]["pair_rmse"] > 0
        lrs.add(yaml.safe_load((sweep / job / ".hydra" / "config.yaml").read_text())["optim"]["lr"])
    assert lrs == {1e-3, 3e-3}
    # submitit ran the jobs in worker processes and kept their logs
    assert list((sweep / ".submitit").glob("*/*_log.out"))


@pytest.mark.parametrize(
    ("launcher", "target", "cpus"), [("slurm", "SlurmLauncher", 8), ("local", "LocalLauncher", 1)]
)
def test_launcher_options_extend_the_submitit_launchers(
    launcher: str, target: str, cpus: int
) -> None:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True
        )
    options = OmegaConf.to_container(cfg.hydra.launcher)  # unresolved: no sweep is running
    assert options["_target_"].endswith(f"submitit_launcher.{target}")
    assert options["cpus_per_task"] == cpus and options["tasks_per_node"] == 1
    assert options["timeout_min"] == 240
    assert options["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"


def test_ctrl_c_during_training_is_one_line_and_exit_130(tmp_path: Path) -> None:
    env = {**os.environ, "DUOREC_ROOT": str(tmp_path), "WANDB_MODE": "disabled"}
    args = [*FAST, "trainer.max_epochs=200", "~callbacks.early_stopping"]
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "duorec.train", *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
            # a shell's background job starts with SIGINT ignored; Python then never raises
            # KeyboardInterrupt, so give the child the default disposition
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 300
            # last.ckpt appears after the first epoch: training is under way
            while not list((tmp_path / "logs").glob("train/runs/*/checkpoints/last.ckpt")):
                assert proc.poll() is None, (tmp_path / "err.txt").read_text()[-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    stderr = (tmp_path / "err.txt").read_text()
    stdout = (tmp_path / "out.txt").read_text()
    assert code == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == (
        "duorec.train: interrupted; nothing half-written was kept (re-run to resume)"
    )
    assert "Traceback" not in stderr
    assert "Detected KeyboardInterrupt" not in stderr + stdout
    assert not list((tmp_path / "logs").glob("train/runs/*/metrics.json"))


def test_runs_started_together_get_their_own_folders(tmp_path: Path) -> None:
    env = {**os.environ, "DUOREC_ROOT": str(tmp_path), "WANDB_MODE": "disabled"}
    # max_epochs=0 is refused once Hydra has made the run folder: three runs in seconds
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "duorec.train", f"seed={seed}", "trainer.max_epochs=0"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for seed in (1, 2, 3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [1, 1, 1]
    folders = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(folders) == 3
    seeds = {yaml.safe_load((f / ".hydra" / "config.yaml").read_text())["seed"] for f in folders}
    assert seeds == {1, 2, 3}


def test_train_output_has_no_library_chatter_and_unwrapped_tables(tmp_path: Path) -> None:
    out = run("duorec.train", [*FAST, "eval.baselines=[global_mean,bias,mf,popularity]"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    for chatter in ("Tip:", "litlogger", "GPU available:", "TPU available:", "is deprecated"):
        assert chatter not in text
    # stdout is a pipe: each table row is one line, however wide the table
    (row,) = [line for line in out.stdout.splitlines() if line.startswith("│ popularity")]
    assert row.count("│") == len(COLUMNS) + 2  # name + one per metric column, unbroken
