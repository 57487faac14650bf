"""Run folders: where a checkpoint's run lives, so a resumed run continues in it.

A training run is one folder (conf/hydra/default.yaml) holding its logs, `checkpoints/` and
metrics.json. Resuming from `<run>/checkpoints/last.ckpt` writes into that same `<run>`:
Lightning restores the best-checkpoint tracking of a `ModelCheckpoint` only when its folder is
the one the state was saved from ("dirpath has changed" otherwise), so a resume into a fresh
folder would forget the best epoch so far and could pick a worse checkpoint at the end.
"""

from __future__ import annotations

from pathlib import Path


def run_folder_of(ckpt_path: str | Path | None) -> Path | None:
    """The run folder of a checkpoint in `<run>/checkpoints/`, or None (none given, or a
    checkpoint file kept elsewhere, which has no run to continue)."""
    if ckpt_path is None or str(ckpt_path) == "":
        return None
    path = Path(ckpt_path).expanduser().absolute()
    return path.parent.parent if path.parent.name == "checkpoints" else None


def resume_dir(ckpt_path: str | None, fresh: str) -> str:
    """`${resume_dir:${ckpt_path},FRESH}` (conf/hydra/train.yaml): the checkpoint's run folder
    when resuming from one, else `fresh`, the new run's folder."""
    folder = run_folder_of(ckpt_path)
    return str(folder) if folder is not None else fresh
