"""Atomic writes and the sweeping of what killed writers left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from duorec.data.build import prepare_dataset
from duorec.io import atomic_path, sweep_orphans


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def staging(folder: Path, name: str, pid: int | None, age_s: float = 0.0) -> Path:
    """A staging folder as `atomic_path` names it, with a file inside, `age_s` old."""
    owner = f"{pid}@{socket.gethostname()}." if pid is not None else ""
    path = folder / f".{name}.{owner}k3x_{len(list(folder.iterdir()))}q.tmp"  # mkdtemp-like
    (path / name).mkdir(parents=True)
    (path / name / "part.parquet").write_bytes(b"half")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_atomic_path_names_its_owner(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "out.json") as tmp:
        assert tmp.parent.name.startswith(f".out.json.{os.getpid()}@{socket.gethostname()}.")
        tmp.write_text("{}")
        assert sweep_orphans(tmp_path) == []  # our own, live: kept
    assert (tmp_path / "out.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_orphans_of_dead_or_old_writers_are_swept_live_ones_kept(tmp_path: Path) -> None:
    killed = staging(tmp_path, "synthetic-tiny-abc", dead_pid())
    stale = staging(tmp_path, "synthetic-tiny-abc", None, age_s=2 * 3600)
    live = staging(tmp_path, "synthetic-tiny-def", os.getppid())  # a running process
    young_unknown = staging(tmp_path, "synthetic-tiny-abc", None)
    other_host = tmp_path / ".x.1@elsewhere.example.k3x_9q2a.tmp"
    other_host.mkdir()
    unrelated = tmp_path / ".keep.tmp"
    unrelated.mkdir()
    assert sorted(sweep_orphans(tmp_path)) == sorted([killed, stale])
    for kept in (live, young_unknown, other_host, unrelated):
        assert kept.exists(), kept
    # a live writer's folder goes too once it is older than the limit
    assert set(sweep_orphans(tmp_path, max_age_s=-1)) == {live, young_unknown, other_host}
    assert unrelated.exists()  # not a name atomic_path writes


def test_next_prepare_of_the_cache_sweeps_a_killed_prepare(tmp_path: Path) -> None:
    """A prepare killed with SIGKILL leaves its staging folder; the next prepare removes it."""
    cache = tmp_path / "cache"
    prepared = cache / "prepared"
    script = (
        "import os, signal\n"
        "import duorec.data.prepared as prepared\n"
        "save = prepared.PreparedDataset.save\n"
        "def killed(self, folder):\n"
        "    from duorec.io import atomic_path\n"
        "    with atomic_path(folder) as tmp:\n"
        "        tmp.mkdir(parents=True)\n"
        "        (tmp / 'ratings.parquet').write_bytes(b'half')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "prepared.PreparedDataset.save = killed\n"
        "from duorec.data.build import prepare_dataset\n"
        f"prepare_dataset(dict(CONFIG), {str(cache)!r})\n"
    )
    config = tiny_config()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", f"CONFIG = {config!r}\n{script}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -9, proc.stderr
    (orphan,) = prepared.glob(".*.tmp")
    assert not list(prepared.glob("*-*/manifest.json"))
    result = prepare_dataset(config, cache)
    assert not orphan.exists()
    assert (result.folder / "manifest.json").is_file()
    assert [p for p in prepared.iterdir() if p.name.startswith(".")] == []


def tiny_config() -> dict:
    from conftest import TINY, compose_config
    from omegaconf import OmegaConf

    cfg = compose_config("train", TINY, Path("/nonexistent"))
    data = OmegaConf.to_container(cfg.data, resolve=True)
    return {k: v for k, v in data.items() if k != "_target_"}
