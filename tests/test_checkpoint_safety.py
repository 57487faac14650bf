"""Checkpoints never run code, and a full disk never leaves half a file or a traceback.

A checkpoint is a pickle: loading one with `weights_only=False` runs whatever it names. Every
loader (evaluate, recommend, train's resume check, Lightning's restore, the hyperparameter
rewrite) must refuse such a file in one line, before anything in it runs. And every write
(checkpoints, metrics.json, the data cache) goes to a sibling temporary and is renamed into
place, so a full disk leaves the previous file, and ends in one line naming the file.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_config, run_command

import duorec.io
from duorec.checkpoint import latest_checkpoint, load_checkpoint, read_reference
from duorec.checkpoint_io import (
    SafeCheckpointIO,
    load_checkpoint_file,
    refused_globals,
    save_checkpoint_file,
)
from duorec.cli import UsageError, friendly_errors
from duorec.io import atomic_path
from duorec.model.base import load_model
from duorec.settings import check_resume_checkpoint
from duorec.train import save_hyperparameters, train

DATA = Path(__file__).resolve().parent / "data"
# written by the code before checkpoints were read weights-only (tests/data/README.md)
TODAY = DATA / "duo_tiny.ckpt"
QUIET = [
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
SMALL = [
    "model.hidden=16",
    "model.embed_dim=8",
    "model.out_dim=8",
    "model.fusion_hidden=8",
    "model.watch_dim=8",
    "data.samples_per_epoch=2048",
    "trainer.max_epochs=1",
    "eval.bootstrap=20",
]


class Payload:
    """What an attacker pickles: unpickling it calls `exec`, which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'a').write('x')",))


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """(a malicious checkpoint, the marker file that loading it would create)."""
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "evil": Payload(marker)}, ckpt)
    return ckpt, marker


def one_line(err: BaseException) -> str:
    (line,) = str(err).splitlines()
    return line


LOADERS = {
    "file": lambda ckpt, cache: load_checkpoint_file(ckpt),
    "evaluate_recommend": lambda ckpt, cache: load_checkpoint(ckpt, cache),
    "model": lambda ckpt, cache: load_model(ckpt),
    "reference": lambda ckpt, cache: read_reference(ckpt),
    "train_resume_check": lambda ckpt, cache: check_resume_checkpoint(str(ckpt)),
    "lightning_restore": lambda ckpt, cache: SafeCheckpointIO().load_checkpoint(ckpt),
    "hyperparameter_rewrite": lambda ckpt, cache: save_hyperparameters(str(ckpt), {"x": 1}),
}


@pytest.mark.parametrize("loader", LOADERS)
def test_a_checkpoint_that_runs_code_is_refused_unrun(
    evil: tuple[Path, Path], tmp_path: Path, loader: str
) -> None:
    ckpt, marker = evil
    with pytest.raises(UsageError) as err:
        LOADERS[loader](ckpt, tmp_path / "cache")
    assert "holds builtins.exec, which a duorec checkpoint never does" in one_line(err.value)
    assert str(ckpt) in str(err.value)
    assert not marker.exists()
    assert refused_globals(ckpt) == ["builtins.exec"]


def test_a_checkpoint_naming_a_class_that_is_no_model_is_refused(tmp_path: Path) -> None:
    """The class a checkpoint names is imported: only duorec models may be named."""
    ckpt = tmp_path / "popen.ckpt"
    torch.save({"state_dict": {}, "duorec_model_class": "subprocess.Popen"}, ckpt)
    with pytest.raises(UsageError, match="'subprocess.Popen', which is not a duorec model"):
        load_model(ckpt)


def test_lightning_restore_in_training_refuses_it(
    evil: tuple[Path, Path], tmp_path: Path, tiny_cache: Path
) -> None:
    """`train(cfg)` called directly skips the settings check: Lightning's own restore
    (`Trainer.fit(ckpt_path=...)`) must refuse the file too."""
    ckpt, marker = evil
    cfg = compose_config("train", [*TINY, *QUIET, *SMALL, f"ckpt_path={ckpt}"], tmp_path)
    cfg.paths.cache_dir = str(tiny_cache)
    with pytest.raises(UsageError, match="holds builtins.exec"):
        train(cfg)
    assert not marker.exists()


def test_plain_recommend_refuses_the_newest_runs_checkpoint_in_one_line(
    evil: tuple[Path, Path], tmp_path: Path
) -> None:
    """`python -m duorec.recommend` without ckpt_path serves the checkpoint the newest run's
    metrics.json names: a planted file there is refused, in one line, unrun."""
    ckpt, marker = evil
    run = tmp_path / "logs" / "train" / "runs" / "2030-01-01_00-00-00_000000_1"
    (run / "checkpoints").mkdir(parents=True)
    planted = run / "checkpoints" / "epoch000-rmse0.5000.ckpt"
    ckpt.rename(planted)
    (run / "metrics.json").write_text(json.dumps({"checkpoint": str(planted)}))
    assert latest_checkpoint(tmp_path / "logs") == planted
    proc = run_command("duorec.recommend", ["users=[1,2]"], tmp_path, WANDB_MODE="disabled")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        f"duorec.recommend: error: checkpoint {planted} holds builtins.exec, which a duorec "
        "checkpoint never does: refused without running it"
    ]
    assert not marker.exists()


def test_a_checkpoint_written_before_still_loads_and_predicts_the_same(tiny_cache: Path) -> None:
    """tests/data/duo_tiny.ckpt, written before loads were weights-only (and so before
    DuoModule's settings were grouped into DuoConfig), loads through every path; its data is
    prepared again from the saved config and it predicts what it did."""
    assert refused_globals(TODAY) == []
    check_resume_checkpoint(str(TODAY))
    assert SafeCheckpointIO().load_checkpoint(TODAY)["epoch"] == 1
    model, dataset = load_checkpoint(TODAY, tiny_cache)
    # its flat settings (written before DuoModule's settings were grouped) fill the groups
    assert (model.config.towers.hidden, model.config.towers.out_dim) == (16, 8)
    assert model.config.watch.watch_dim == 8 and model.config.ranking.rank_by == "score"
    expected = json.loads((DATA / "duo_tiny_predictions.json").read_text())
    assert (dataset.n_users, dataset.n_movies) == (expected["n_users"], expected["n_movies"])
    users_a, users_b, movies = (torch.tensor(expected[k]) for k in ("user_a", "user_b", "movie"))
    with torch.no_grad():
        pair, rating_a, rating_b = model(users_a, users_b, movies)
    for name, got in (("pair", pair), ("rating_a", rating_a), ("rating_b", rating_b)):
        torch.testing.assert_close(
            model.unscale(got), torch.tensor(expected[name]), rtol=0, atol=1e-5, msg=name
        )


# ---------------------------------------------------------------------------- a full disk


class FullDisk:
    """Stands in for `open` in duorec.io: the file gets half of what is written, then the
    disk is full (as a real write() fails part-way)."""

    def __init__(self, error: int = errno.ENOSPC) -> None:
        self.error = error
        self.opened: list[Path] = []

    def __call__(self, path, mode="r", *args, **kwargs):
        self.opened.append(Path(path))
        fh = open(path, mode, *args, **kwargs)  # closed by `write` or `__exit__` below
        error = self.error

        class Half:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

            def write(self, data) -> int:
                fh.write(bytes(data)[: len(data) // 2])
                fh.close()
                raise OSError(error, os.strerror(error))

        return Half()


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = tmp_path / "checkpoints" / "last.ckpt"
    io = SafeCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 0}, last)
    full = FullDisk()
    monkeypatch.setattr(duorec.io, "open", full, raising=False)
    with pytest.raises(OSError) as err:
        io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "epoch": 1}, last)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(last)
    assert full.opened and full.opened[0].parent.parent == last.parent  # staged beside it
    assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"]  # nothing half-written
    assert load_checkpoint_file(last)["epoch"] == 0


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_disk_writing_an_output_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, error: int
) -> None:
    """metrics.json, merge_report.json, recommendation files, the data cache: all are
    written through `atomic_path`; a full disk names the file, not the staging path."""
    out = tmp_path / "run" / "metrics.json"
    out.parent.mkdir()
    out.write_text('{"old": true}')

    def half(self: Path, data: str, *args, **kwargs) -> int:
        with open(self, "w") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(Path, "write_text", half)

    @friendly_errors("duorec.evaluate")
    def command(cfg: object) -> None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps({"new": list(range(100))}))

    with pytest.raises(SystemExit) as exit_:
        command(None)
    assert exit_.value.code == 1
    words = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
    expected = f"{words.get(error, 'file too large')} writing {out}"
    assert capsys.readouterr().err.splitlines() == [f"duorec.evaluate: error: {expected}"]
    assert json.loads(out.read_text()) == {"old": True}
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]


def test_a_full_disk_during_training_is_one_line_naming_the_checkpoint(
    tmp_path: Path, tiny_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Lightning's checkpoint saves go through the same writer: the first one fails, the run
    ends in one line naming it, exit status 1, and no truncated checkpoint is left."""
    cfg = compose_config("train", [*TINY, *QUIET, *SMALL, "threads=1"], tmp_path)
    cfg.paths.cache_dir = str(tiny_cache)
    monkeypatch.setattr(duorec.io, "open", FullDisk(), raising=False)
    with pytest.raises(SystemExit) as exit_:
        friendly_errors("duorec.train")(train)(cfg)
    assert exit_.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    folder = tmp_path / "run" / "checkpoints"
    assert line.startswith(f"duorec.train: error: no space left on device writing {folder}/")
    assert line.endswith(".ckpt")
    assert not [p for p in folder.iterdir() if p.suffix == ".ckpt"]


def test_save_checkpoint_file_round_trips(tmp_path: Path) -> None:
    """The one writer (also of train's hyperparameter rewrite) writes what the loader reads."""
    path = tmp_path / "a.ckpt"
    save_checkpoint_file({"state_dict": {"w": torch.arange(4.0)}, "hyper_parameters": {}}, path)
    save_hyperparameters(str(path), {"rank_rating_weight": 0.5})
    loaded = load_checkpoint_file(path)
    assert loaded["hyper_parameters"] == {"rank_rating_weight": 0.5}
    torch.testing.assert_close(loaded["state_dict"]["w"], torch.arange(4.0))
