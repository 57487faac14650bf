"""Find a trained model and load it together with the exact prepared data it was trained on.

A checkpoint's user and movie indices only mean something against the prepared data set that
assigned them: the same indices over another data set would silently recommend the wrong films
to the wrong people. So every checkpoint carries a reference to its data (name, cache key,
sizes and the resolved data config, see `PairDataModule.reference`), loading goes back to
that exact prepared folder, and anything that does not match is refused with a sentence that
names both data sets.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from duorec.checkpoint_io import load_checkpoint_file
from duorec.data.build import prepare_dataset, prepared_folder
from duorec.data.datamodule import PairDataModule
from duorec.data.prepared import PreparedDataset
from duorec.errors import UsageError
from duorec.model.base import PairRatingModule, load_model
from duorec.runs import run_folder_of

log = logging.getLogger(__name__)

# conf/hydra/default.yaml names run folders with this, then _<microseconds>_<pid> (to be unique)
RUN_STAMP = "%Y-%m-%d_%H-%M-%S"
# Lightning stores a data module's state_dict under its class name
DATASET_KEY = PairDataModule.__qualname__


# ---------------------------------------------------------------------------- finding


def best_in_run(run_dir: str | Path) -> Path | None:
    """The checkpoint to use from one run folder (or its checkpoints/ folder), or None.

    A finished run names it in its metrics.json (`"checkpoint"`: the best checkpoint, the one
    its metrics describe), so nothing is read from file names. The file of that name in the
    run's own checkpoints/ comes first, so a run folder moved or copied since uses its own
    copy; else the recorded path as written. A run without metrics.json (stopped before its
    evaluation) falls back to `last.ckpt`, which exists to resume and may be worse than the
    best epoch.
    """
    run_dir = Path(run_dir)
    if run_dir.name == "checkpoints":
        run_dir = run_dir.parent
    recorded = recorded_checkpoint(run_dir)
    if recorded is not None:
        for path in (run_dir / "checkpoints" / recorded.name, recorded):
            if path.is_file():
                return path
        return None
    last = run_dir / "checkpoints" / "last.ckpt"
    return last if last.is_file() else None


def recorded_checkpoint(run_dir: str | Path) -> Path | None:
    """`metrics.json["checkpoint"]` of a run folder, or None (no file, no entry, unreadable)."""
    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    path = metrics.get("checkpoint") if isinstance(metrics, dict) else None
    return Path(path).expanduser() if path else None


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


def training_runs(log_dir: str | Path) -> list[Path]:
    """Every training run folder under `log_dir`, newest first.

    Any task name counts (`task_name=...` only renames the folder): `<task>/runs/<stamp>/`
    and each sweep job `<task>/multiruns/<stamp>/<n>/` that has a `checkpoints/` folder; an
    evaluate run, which trains nothing, has none.
    """
    log_dir = Path(log_dir)
    candidates: list[tuple[tuple[str, int, float], Path]] = []
    for run in log_dir.glob("*/runs/*"):
        if (run / "checkpoints").is_dir():
            candidates.append((_run_order(run, None), run))
    for run in log_dir.glob("*/multiruns/*/*"):
        if (run / "checkpoints").is_dir():
            candidates.append((_run_order(run, run.parent), run))
    return [run for _, run in sorted(candidates, key=lambda item: item[0], reverse=True)]


def latest_checkpoint(log_dir: str | Path) -> Path:
    """The best checkpoint of the newest *finished* training run under `log_dir`.

    Finished = it wrote metrics.json, which names the checkpoint its test numbers describe. A
    run stopped before that (killed, interrupted, `test=false`) is never picked silently: its
    last.ckpt may be an epoch worse than its best, and its numbers are unknown.
    """
    runs = training_runs(log_dir)
    for run in runs:
        if (run / "metrics.json").is_file():
            found = best_in_run(run)
            if found is not None:
                return found
    unfinished = next((r for r in runs if (r / "checkpoints" / "last.ckpt").is_file()), None)
    hint = (
        f"; the newest unfinished run can be resumed with python -m duorec.train "
        f"ckpt_path={unfinished / 'checkpoints' / 'last.ckpt'}"
        if unfinished is not None
        else ""
    )
    raise UsageError(
        f"no finished training run (one with metrics.json) under {log_dir}: run python -m "
        f"duorec.train first, or pass ckpt_path=PATH{hint}"
    )


def describe_choice(ckpt: str | Path) -> str:
    """'using RUN (data NAME, test pair_rmse X, ndcg@10 Y)': which model a command serves.

    Printed first by evaluate and recommend, so a model picked by "newest run" is never a
    surprise. The numbers are the run's metrics.json, shown only when it describes this very
    checkpoint (a last.ckpt of a finished run is not the one its numbers are about).
    """
    ckpt = Path(ckpt)
    run = run_folder_of(ckpt)
    if run is None:
        return f"using {ckpt}"
    try:
        metrics = json.loads((run / "metrics.json").read_text())
    except (OSError, ValueError):
        return f"using {ckpt} (an unfinished run: no metrics.json)"
    recorded = metrics.get("checkpoint") if isinstance(metrics, dict) else None
    if not recorded or Path(recorded).name != ckpt.name:
        return f"using {ckpt} (not the checkpoint its run's metrics.json describes)"
    parts = []
    data = (metrics.get("protocol") or {}).get("data")
    if data:
        parts.append(f"data {data}")
    test = metrics.get("test") or {}
    if isinstance(test.get("pair_rmse"), float):
        parts.append(f"test pair_rmse {test['pair_rmse']:.4f}")
    ndcg = next((k for k in test if k.startswith("ndcg@")), None)
    if ndcg and isinstance(test[ndcg], float):
        parts.append(f"{ndcg} {test[ndcg]:.2f}")
    return f"using {run}" + (f" ({', '.join(parts)})" if parts else "")


def resolve_checkpoint(ckpt_path: str | Path | None, log_dir: str | Path) -> Path:
    """`ckpt_path` as given (a .ckpt file or a run folder), or the newest finished run's best."""
    if ckpt_path is None or str(ckpt_path) == "":
        return latest_checkpoint(log_dir)  # the caller prints `describe_choice` of it
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


def dataset_reference_of(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The data set reference stored in a loaded checkpoint dict (None if it has none).

    The one reader of where the reference lives, for `PairRatingModule.on_load_checkpoint`
    and anything else that opens a checkpoint file.
    """
    reference = (checkpoint.get(DATASET_KEY) or {}).get("dataset")
    return dict(reference) if reference else None


def load_checkpoint(
    ckpt_path: str | Path,
    cache_dir: str | Path | None = None,
    sources: Mapping[str, Any] | None = None,
) -> tuple[PairRatingModule, PreparedDataset]:
    """The model (on the CPU, in eval mode) and the prepared data set it was trained on.

    Any duorec model loads (the three-tower DuoModule or a factorisation baseline): the
    class is recorded in the checkpoint (`duorec.model.base.load_model`).

    The data is read from the prepared folder named in the checkpoint when it is still in
    `cache_dir` or in the cache the model was trained with; otherwise it is prepared again from
    the saved data config. Either way it must be the same data set (same content fingerprint,
    user and movie counts), else a UsageError names both and what differs.

    `sources` (`data.movielens_dir` / `data.imdb_dir` of evaluate and recommend) says where
    the raw files are now, when they moved since training: the data is prepared again from
    there and accepted only if it is the same content (see `load_reference`).
    """
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        model = load_model(path, map_location="cpu")
    except UsageError:  # refused (it names code to run, or a class that is not a model)
        raise
    except Exception as err:  # reading an arbitrary file can fail in any way at all
        raise UsageError(f"{path}: not a duorec checkpoint ({type(err).__name__}: {err})") from err
    model.eval()
    reference = read_reference(path)
    dataset = load_reference(reference, cache_dir, moved_sources(sources))
    check_same_dataset(reference, dataset, path)
    sizes = (model.hparams.get("n_users"), model.hparams.get("n_movies"))
    if sizes != (dataset.n_users, dataset.n_movies):
        raise UsageError(
            f"{path}: the model has {sizes[0]} users and {sizes[1]} movies but its data "
            f"set {describe(dataset.manifest)} has {dataset.n_users} and {dataset.n_movies}"
        )
    return model, dataset


def read_reference(ckpt_path: str | Path) -> dict[str, Any]:
    """The data reference a checkpoint file carries, or a UsageError saying it has none."""
    checkpoint = load_checkpoint_file(ckpt_path)
    reference = dataset_reference_of(checkpoint)
    if not reference or not reference.get("cache_key"):
        raise UsageError(
            f"{ckpt_path} does not say which data set it was trained on (no data module state): "
            "train it again with python -m duorec.train"
        )
    return reference


# the data settings that say where raw files are, not what they hold: overridable when loading
SOURCE_KEYS = ("movielens_dir", "imdb_dir")


def moved_sources(sources: Mapping[str, Any] | None) -> dict[str, str]:
    """The raw-file folders given to evaluate / recommend (`data.movielens_dir=...`), set ones."""
    return {k: str(sources[k]) for k in SOURCE_KEYS if sources and sources.get(k)}


def load_reference(
    reference: Mapping[str, Any],
    cache_dir: str | Path | None = None,
    moved: Mapping[str, str] | None = None,
) -> PreparedDataset:
    """The prepared data set a checkpoint refers to: its cached folder, else prepared again.

    Reading the very folder the model was trained on (rather than re-deriving the cache key
    from the raw files) keeps a model usable when the raw files have since been touched, and
    costs no scan of the sources. With `moved` raw-file folders, the data is prepared from
    those instead (cached under its own key): a checkpoint copied to another machine, or data
    moved, needs no edit of the checkpoint; `check_same_dataset` then insists on the same
    content.
    """
    data = dict(reference.get("data") or {})
    name = data.get("name") or reference.get("name") or "dataset"
    saved_cache = reference.get("cache_dir")
    caches = list(dict.fromkeys(str(c) for c in (cache_dir, saved_cache) if c))
    if not caches:
        raise UsageError("the checkpoint names no cache folder: pass paths.cache_dir=PATH")
    if moved:
        if data.get("source") != "movielens":
            given = ", ".join(f"data.{k}" for k in moved)
            raise UsageError(
                f"{given} only applies to a MovieLens data set; the checkpoint's {name} is "
                f"{data.get('source') or 'unknown'} (its data is rebuilt from the saved config)"
            )
        data = {**data, **moved}
        if "movielens_dir" in moved:
            # named after the folder it is read from, as training names it: other files under
            # the checkpoint's name would leave a mislabelled cache entry when refused
            data["name"] = Path(moved["movielens_dir"]).expanduser().resolve().name
        log.info("preparing %s again from %s", data.get("name"), ", ".join(moved.values()))
        return prepare_dataset(data, caches[0]).dataset
    for cache in caches:
        folder = prepared_folder(cache, name, reference["cache_key"])
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
        f"{info.get('name')} (key {info.get('cache_key')}, content {info.get('fingerprint')}, "
        f"{info.get('n_users')} users, "
        f"{info.get('n_movies')} movies)"
    )


def check_same_dataset(
    reference: Mapping[str, Any], dataset: PreparedDataset, ckpt_path: str | Path = "checkpoint"
) -> None:
    """Refuse a data set other than the one the checkpoint was trained on.

    The content fingerprint decides (the same files moved or touched are the same data);
    references without one fall back to the cache key.
    """
    manifest = dataset.manifest
    field = "fingerprint" if reference.get("fingerprint") else "cache_key"
    differs = [
        what
        for what, ours, theirs in (
            (field.replace("_", " "), manifest.get(field), reference.get(field)),
            ("users", dataset.n_users, reference.get("n_users")),
            ("movies", dataset.n_movies, reference.get("n_movies")),
        )
        if ours != theirs
    ]
    if differs:
        here = {**manifest, "n_users": dataset.n_users, "n_movies": dataset.n_movies}
        raise UsageError(
            f"checkpoint {ckpt_path} was trained on {describe(reference)}, the prepared data "
            f"here is {describe(here)} ({' and '.join(differs)} "
            f"{'differ' if len(differs) > 1 else 'differs'}): use a model trained "
            "on this data, or restore that data"
        )
