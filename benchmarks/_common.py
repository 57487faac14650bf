"""Helpers shared by the benchmark scripts: data locations, timing, memory, tables, JSON.

Not a benchmark itself. Every script imports it as ``from _common import ...``, which works
because Python puts the script's own folder (``benchmarks/``) first on ``sys.path``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
#: Where benchmark data is generated and cached (gitignored, like the project's data/cache).
DEFAULT_CACHE = Path(os.environ.get("DUOREC_BENCH_CACHE", ROOT / "data" / "bench-cache"))


# ----------------------------------------------------------------------------- data


def synthetic_root(cache_dir: Path, size: str, seed: int = 0) -> Path:
    """Where `prepare_dataset` looks for (and writes) synthetic files under `cache_dir`.

    The same layout as ``duorec.data.build._source_dirs``, so files generated here are reused
    by ``prepare_dataset(cfg, cache_dir)`` rather than generated again.
    """
    return Path(cache_dir) / "synthetic" / f"{size}-seed{seed}"


def ensure_synthetic(cache_dir: Path, size: str, seed: int = 0) -> tuple[Path, float | None]:
    """Generate the synthetic release once; return (root, seconds or None if it existed)."""
    from duorec.data.synthetic import generate

    root = synthetic_root(cache_dir, size, seed)
    if (root / "manifest.json").exists():
        return root, None
    start = time.perf_counter()
    generate(root, size, seed=seed)
    return root, time.perf_counter() - start


def data_config(size: str, seed: int = 0, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The `data` group of conf/train.yaml for a synthetic size, composed as the CLI would.

    Returned as a plain dict (resolved), ready for ``prepare_dataset(cfg, cache_dir)``.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                "data=synthetic",
                f"data.synthetic.size={size}",
                f"data.synthetic.seed={seed}",
                f"seed={seed}",
                *overrides,
            ],
        )
    return OmegaConf.to_container(cfg.data, resolve=True)


def compose_train_config(overrides: Sequence[str], root: Path) -> Any:
    """The whole train config (DictConfig), every path under `root` (as tests/conftest.py)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(root)
        cfg.paths.output_dir = str(root / "run")
        cfg.paths.log_dir = str(root / "logs")
        del cfg["hydra"]
    return cfg


def read_ratings_arrays(ratings_csv: Path) -> dict[str, Any]:
    """userId, movieId, rating of a MovieLens ratings.csv as numpy, read by pyarrow (fast)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(
        ratings_csv,
        convert_options=pacsv.ConvertOptions(
            include_columns=["userId", "movieId", "rating"],
            column_types={"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32()},
        ),
    )
    return {name: np.asarray(table[name].to_numpy()) for name in table.column_names}


# ----------------------------------------------------------------------------- measuring


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Wall times of `repeats` calls of `fn` after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def machine_info() -> dict[str, Any]:
    """Date, CPU, cores, Python, numpy and (if importable) torch versions and threads."""
    import numpy as np

    info: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "git": _git_revision(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return info


def _git_revision() -> str:
    """Short HEAD commit of the checkout, with '+dirty' if tracked files are modified."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (rev or "unknown") + ("+dirty" if dirty else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or "unknown"


# ----------------------------------------------------------------------------- output


def fmt(value: Any) -> str:
    """Human-readable cell: thousands separators for big numbers, 3 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1e4:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of `rows` (dicts) with `columns` (default: first row's keys)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def save_json(path: str | Path | None, payload: Mapping[str, Any], quiet: bool = False) -> None:
    """Write `payload` as indented JSON if a path was given."""
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    if not quiet:
        print(f"\nresults written to {path}")


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def drop_option(argv: list[str], name: str) -> list[str]:
    """argv without `name` and the values that follow it (up to the next --option)."""
    out, skipping = [], False
    for a in argv:
        if a == name or a.startswith(name + "="):
            skipping = a == name
            continue
        if skipping and not a.startswith("--"):
            continue
        skipping = False
        out.append(a)
    return out
