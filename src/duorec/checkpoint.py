"""Find a trained model and load it together with the exact prepared data it was trained on.

A checkpoint's user and movie indices only mean something against the prepared data set that
assigned them: the same indices over another data set would silently recommend the wrong films
to the wrong people. So every checkpoint carries a reference to its data (name, cache key,
sizes and the resolved data config, see `duorec.train.dataset_reference`), loading goes back to
that exact prepared folder, and anything that does not match is refused with a sentence that
names both data sets.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from duorec.cli import UsageError
from duorec.data.build import prepare_dataset
from duorec.data.prepared import PreparedDataset
from duorec.model.base import PairRatingModule, load_model

log = logging.getLogger(__name__)

# conf/hydra/default.yaml names run folders with this, then _<microseconds>_<pid> (to be unique)
RUN_STAMP = "%Y-%m-%d_%H-%M-%S"
_RMSE = re.compile(r"rmse(\d+(?:\.\d+)?)")


# ---------------------------------------------------------------------------- finding


def best_in_run(run_dir: str | Path) -> Path | None:
    """The checkpoint to use from one run folder (or its checkpoints/ folder), or None.

    The best checkpoint (`epoch…-rmse….ckpt`) is the one the run's metrics describe; with
    several (save_top_k > 1) the lowest RMSE in the name wins. `last.ckpt` is only the
    fallback: it exists to resume, and may be worse than the best epoch.
    """
    run_dir = Path(run_dir)
    folder = run_dir if run_dir.name == "checkpoints" else run_dir / "checkpoints"
    if not folder.is_dir():
        return None
    files = [p for p in folder.glob("*.ckpt") if p.is_file()]
    best = [p for p in files if not (p.stem == "last" or p.stem.startswith("last-"))]
    if best:
        return min(best, key=lambda p: (_rmse_in_name(p), -p.stat().st_mtime))
    last = folder / "last.ckpt"
    return last if last.is_file() else None


def _rmse_in_name(path: Path) -> float:
    match = _RMSE.search(path.stem)
    return float(match.group(1)) if match else float("inf")


def _run_order(run_dir: Path, sweep_dir: Path | None) -> tuple[str, int, float]:
    """Sort key of a run: its start stamp (the folder name), then job number, then mtime.

    The stamp comes from the folder name rather than file times so copying a log folder does
    not reorder runs; a folder not named by the stamp falls back to its modification time.
    """
    named = sweep_dir if sweep_dir is not None else run_dir
    mtime = run_dir.stat().st_mtime
    try:
        time.strptime(named.name[:19], RUN_STAMP)  # 19 = len("2024-01-31_12-00-00")
        stamp = named.name
    except ValueError:
        stamp = time.strftime(RUN_STAMP, time.localtime(named.stat().st_mtime))
    job = int(run_dir.name) if sweep_dir is not None and run_dir.name.isdigit() else -1
    return stamp, job, mtime


def latest_checkpoint(log_dir: str | Path) -> Path:
    """The best checkpoint of the most recent training run under `log_dir`.

    Looks at `train/runs/<stamp>/` and every sweep job `train/multiruns/<stamp>/<n>/`; runs
    without a checkpoint (stopped before the first epoch ended) are skipped.
    """
    log_dir = Path(log_dir)
    train_dir = log_dir / "train"
    candidates: list[tuple[tuple[str, int, float], Path]] = []
    for run in sorted((train_dir / "runs").glob("*")):
        if (run / "checkpoints").is_dir():
            candidates.append((_run_order(run, None), run))
    for run in sorted((train_dir / "multiruns").glob("*/*")):
        if (run / "checkpoints").is_dir():
            candidates.append((_run_order(run, run.parent), run))
    for _, run in sorted(candidates, key=lambda item: item[0], reverse=True):
        found = best_in_run(run)
        if found is not None:
            return found
    raise UsageError(
        f"no trained model found under {train_dir}: run python -m duorec.train first "
        "(or pass ckpt_path=PATH)"
    )


def resolve_checkpoint(ckpt_path: str | Path | None, log_dir: str | Path) -> Path:
    """`ckpt_path` as given (a .ckpt file or a run folder), or the latest run's best if None."""
    if ckpt_path is None or str(ckpt_path) == "":
        path = latest_checkpoint(log_dir)
        log.info("using the latest checkpoint: %s", path)
        return path
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        found = best_in_run(path)
        if found is None:
            raise UsageError(f"no checkpoint (.ckpt) in {path} or {path / 'checkpoints'}")
        return found
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    return path


# ---------------------------------------------------------------------------- loading


def load_checkpoint(
    ckpt_path: str | Path, cache_dir: str | Path | None = None
) -> tuple[PairRatingModule, PreparedDataset]:
    """The model (on the CPU, in eval mode) and the prepared data set it was trained on.

    Any duorec model loads (the three-tower DuoModule or a factorisation baseline): the
    class is recorded in the checkpoint (`duorec.model.base.load_model`).

    The data is read from the prepared folder named in the checkpoint when it is still in
    `cache_dir` or in the cache the model was trained with; otherwise it is prepared again from
    the saved data config. Either way it must be the same data set (same cache key, user and
    movie counts), else a UsageError names both.
    """
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        model = load_model(path, map_location="cpu")
    except Exception as err:  # unpickling an arbitrary file can fail in any way at all
        raise UsageError(f"{path}: not a duorec checkpoint ({type(err).__name__}: {err})") from err
    model.eval()
    reference = model.dataset_reference
    if not reference or not reference.get("cache_key"):
        raise UsageError(
            f"{path} does not say which data set it was trained on (no 'duorec_dataset' entry): "
            "train it again with python -m duorec.train"
        )
    dataset = load_reference(reference, cache_dir)
    check_same_dataset(reference, dataset, path)
    sizes = (model.hparams.get("n_users"), model.hparams.get("n_movies"))
    if sizes != (dataset.n_users, dataset.n_movies):
        raise UsageError(
            f"{path}: the model has {sizes[0]} users and {sizes[1]} movies but its data "
            f"set {describe(dataset.manifest)} has {dataset.n_users} and {dataset.n_movies}"
        )
    return model, dataset


def load_reference(
    reference: Mapping[str, Any], cache_dir: str | Path | None = None
) -> PreparedDataset:
    """The prepared data set a checkpoint refers to: its cached folder, else prepared again.

    Reading the very folder the model was trained on (rather than re-deriving the cache key
    from the raw files) keeps a model usable when the raw files have since been touched, and
    costs no scan of the sources.
    """
    data = dict(reference.get("data") or {})
    name = data.get("name") or reference.get("name") or "dataset"
    saved_cache = reference.get("cache_dir")
    caches = list(dict.fromkeys(str(c) for c in (cache_dir, saved_cache) if c))
    if not caches:
        raise UsageError("the checkpoint names no cache folder: pass paths.cache_dir=PATH")
    for cache in caches:
        folder = Path(cache) / "prepared" / f"{name}-{reference['cache_key']}"
        if (folder / "manifest.json").is_file():
            log.info("data set %s from %s", name, folder)
            return PreparedDataset.load(folder)
    if not data:
        raise UsageError(
            f"the prepared data set {name} (key {reference['cache_key']}) is not in "
            f"{' or '.join(caches)} and the checkpoint holds no data config to rebuild it"
        )
    log.info("prepared data set %s not cached: preparing it again", name)
    return prepare_dataset(data, caches[0]).dataset


def describe(info: Mapping[str, Any]) -> str:
    """'name (key k, N users, M movies)' for messages, from a manifest or a reference."""
    return (
        f"{info.get('name')} (key {info.get('cache_key')}, {info.get('n_users')} users, "
        f"{info.get('n_movies')} movies)"
    )


def check_same_dataset(
    reference: Mapping[str, Any], dataset: PreparedDataset, ckpt_path: str | Path = "checkpoint"
) -> None:
    """Refuse a data set other than the one the checkpoint was trained on."""
    manifest = dataset.manifest
    same = (
        manifest.get("cache_key") == reference.get("cache_key")
        and dataset.n_users == reference.get("n_users")
        and dataset.n_movies == reference.get("n_movies")
    )
    if not same:
        here = {**manifest, "n_users": dataset.n_users, "n_movies": dataset.n_movies}
        raise UsageError(
            f"checkpoint {ckpt_path} was trained on {describe(reference)}, the prepared data "
            f"here is {describe(here)}: use a model trained on this data, or restore that data"
        )
