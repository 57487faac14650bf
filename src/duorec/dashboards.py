"""What every logger receives at the end of a run: the model beside its baselines, not alone.

A W&B or TensorBoard page that shows only the model's own numbers cannot say whether it beat MF
or EASE; metrics.json can. So everything in metrics.json that a reader compares goes to every
logger under stable names: a number at metrics.json path `a.b.c` is `final/a/b/c`, except that
the model's test metrics keep `final/<metric>` and a baseline's are
`final/baseline/<name>/<metric>` (`final/baseline/ease_both/ndcg@10`); the model minus the best
baseline is `final/ci/<metric>/{diff,low,high}` with the baseline's name at
`final/ci/<metric>/baseline`. Lists (tuning grids) stay in metrics.json and the tables.

W&B gets them as summary values plus `wandb.Table`s and images; TensorBoard as scalars, text
(markdown tables) and images; the CSV logger as `final.csv` and one CSV per table in its
folder. The pictures (`duorec.plots`) and the sample of recommendations
(`duorec.samples`, also `recommendations.csv`) are written beside metrics.json.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from duorec import breakdowns, plots, samples
from duorec.io import atomic_path
from duorec.report import COLUMNS

log = logging.getLogger(__name__)
T = TypeVar("T")

SECTIONS = {"test": "final", "baselines": "final/baseline"}
Table = tuple[list[str], list[list[Any]]]  # columns, rows


def flatten(result: Mapping[str, Any]) -> tuple[dict[str, float | int], dict[str, str]]:
    """metrics.json as stable names: the numbers, and the words (baseline names, rules)."""
    numbers: dict[str, float | int] = {}
    words: dict[str, str] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{name}/{key}")
        elif isinstance(node, bool) or isinstance(node, str):
            words[name] = str(node)
        elif isinstance(node, int | float):
            numbers[name] = node

    for section, node in result.items():
        walk(node, SECTIONS.get(section, f"final/{section}"))
    return numbers, words


def tables(result: Mapping[str, Any]) -> dict[str, Table]:
    """The comparisons of metrics.json as tables (only those the run produced)."""
    out: dict[str, Table] = {}
    systems = {"model": result.get("test", {}), **result.get("baselines", {})}
    if result.get("test"):
        out["metrics"] = (
            ["model", *COLUMNS],
            [[n, *(m.get(c) for c in COLUMNS)] for n, m in systems.items()],
        )
    intervals = [["test", metric, *_ci(ci)] for metric, ci in result.get("ci", {}).items() if ci]
    for n, block in result.get("cold_start", {}).items():
        if isinstance(block, Mapping):
            cis = (block.get("ci") or {}).items()
            intervals += [[f"cold start N={n}", m, *_ci(c)] for m, c in cis if c]
    if intervals:
        head = ["scope", "metric", "best baseline", "model - baseline", "low", "high", "n_boot"]
        out["vs_best_baseline"] = (head, intervals)
    targets = result.get("targets", {})
    if targets:
        names = list(next(iter(targets.values())))
        out["targets"] = (
            ["model", *(f"pair_rmse ({how})" for how in targets)],
            [[n, *(targets[how].get(n, {}).get("pair_rmse") for how in targets)] for n in names],
        )
    settings = ranking_settings(result)
    if settings:
        out["ranking_settings"] = (["setting", "value"], settings)
    cold = cold_start_rows(result.get("cold_start", {}))
    if cold:
        out["cold_start"] = cold
    groups = group_rows(result.get("groups", {}))
    if groups:
        out["groups"] = groups
    return out


def _ci(ci: Mapping[str, Any]) -> list[Any]:
    return [ci["baseline"], ci["diff"], ci["low"], ci["high"], ci.get("n_boot")]


def ranking_settings(result: Mapping[str, Any]) -> list[list[Any]]:
    """What was chosen on validation: the ranking score, fold-in's prior, each ranker's grid."""
    rows: list[list[Any]] = []
    weight = result.get("rank_rating_weight") or {}
    if weight:
        rows.append(["rank_rating_weight", weight.get("best")])
        rows.append(["rank_pair_rule", weight.get("rule")])
    if result.get("foldin_prior"):
        rows.append(["foldin_prior", result["foldin_prior"].get("best")])
    if result.get("cowatch"):
        rows.append(["cowatch lam", result["cowatch"].get("lam")])
    for name, setting in (result.get("ranker_settings") or {}).items():
        rows.append([f"{name} (ranker)", json.dumps(setting.get("best"), sort_keys=True)])
    return rows


def cold_start_rows(cold: Mapping[str, Any]) -> Table | None:
    """One row per (N revealed, system) of the cold-start section, when it ran."""
    columns = ["N", "system", "users", "triples", "pair_rmse", "ndcg@10", "recall@10"]
    rows = []
    for n, block in cold.items():
        if n in ("protocol", "new_movies") or not isinstance(block, Mapping):
            continue
        for name, metrics in block.items():
            if isinstance(metrics, Mapping) and name != "ci":
                rows.append(
                    [n, name, block.get("n_users"), block.get("n_triples")]
                    + [metrics.get(c) for c in columns[4:]]
                )
    return (columns, rows) if rows else None


def group_rows(groups: Mapping[str, Any]) -> Table | None:
    """One row per (group size, system): RMSE of each target and the ranking metrics."""
    rows, targets, ranked = [], [], []
    for entry in groups.values():
        targets += [t for t in entry.get("targets", {}) if t not in targets]
        for metrics in entry.get("ranking", {}).values():
            ranked += [m for m in metrics if m not in ranked and isinstance(metrics[m], float)]
    for size, entry in groups.items():
        if not entry.get("n_groups"):
            continue
        table, ranking = entry.get("targets", {}), entry.get("ranking", {})
        names = list(dict.fromkeys([*next(iter(table.values()), {}), *ranking]))
        for name in names:
            rows.append(
                [size, name, entry["n_groups"]]
                + [table.get(t, {}).get(name, {}).get("rmse") for t in targets]
                + [ranking.get(name, {}).get(m) for m in ranked]
            )
    columns = ["size", "system", "groups", *(f"rmse ({t})" for t in targets), *ranked]
    return (columns, rows) if rows else None


def breakdown_table(breakdown: Mapping[str, Any]) -> Table:
    """A history breakdown (`duorec.breakdowns`) as rows by bin, then all bins together."""
    series = [k for k in breakdown if k not in ("bin", "n", "overall", "k")]
    columns = ["history (shorter of the two)", "n", *series]
    rows = [
        [b, n, *(breakdown[s][i] for s in series)]
        for i, (b, n) in enumerate(zip(breakdown["bin"], breakdown["n"], strict=True))
    ]
    # the overall row repeats metrics.json's number: the breakdown measured the same items
    rows.append(["all", sum(breakdown["n"]), *(breakdown["overall"][s] for s in series)])
    return columns, rows


def publish(
    result: dict[str, Any], loggers: list[Any], model: Any, datamodule: Any, cfg: DictConfig
) -> None:
    """Send the run's comparison, tables and pictures to every logger, then close them.

    Called at the end of `duorec.train` once metrics.json is written. The breakdowns, the
    sample and the pictures are extras: one that fails is a warning, never a lost run.
    """
    out_dir = Path(cfg.paths.output_dir)
    opts = OmegaConf.to_container(cfg.eval, resolve=True)
    assert isinstance(opts, dict)
    extra: dict[str, Table] = {}
    charts: dict[str, Path] = {}
    for logger in loggers:
        if _kind(logger) == "csv":
            logger.save()  # the learning curves are read back from its metrics.csv
    if result.get("test"):
        extra, charts = _extras(result, model, datamodule, opts, loggers, out_dir)
    board = Dashboard(result, *flatten(result), {**tables(result), **extra}, charts)
    for logger in loggers:
        SENDERS[_kind(logger)](logger, board)
        logger.finalize("success")
        if _kind(logger) == "wandb":
            logger.experiment.finish()  # writes the run's summary; the run is over


def _extras(
    result: Mapping[str, Any],
    model: Any,
    datamodule: Any,
    opts: dict[str, Any],
    loggers: list[Any],
    out_dir: Path,
) -> tuple[dict[str, Table], dict[str, Path]]:
    """Breakdowns by history, the recommendation sample, the PNGs beside metrics.json."""
    extra: dict[str, Table] = {}
    charts: dict[str, Path | None] = {}
    rmse = _attempt(
        "pair RMSE by history", lambda: breakdowns.rmse_by_history(model, datamodule, opts)
    )
    ndcg = _attempt(
        "NDCG by history", lambda: breakdowns.ndcg_by_history(model, datamodule, opts)
    )
    k = int(opts["k"])
    if rmse:
        extra["pair_rmse_by_history"] = breakdown_table(rmse)
    if ndcg:
        extra[f"ndcg@{k}_by_history"] = breakdown_table(ndcg)
    sample = _attempt(
        "recommendation sample", lambda: samples.recommendation_sample(model, datamodule, opts)
    )
    if sample:
        columns = list(samples.COLUMNS)
        extra["recommendations"] = (columns, [[row[c] for c in columns] for row in sample])
        write_csv(out_dir / "recommendations.csv", *extra["recommendations"])
    charts["baselines"] = _attempt(
        "baselines chart", lambda: plots.baselines_chart(result, out_dir / "chart_baselines.png")
    )
    charts["pair_rmse_by_history"] = _attempt(
        "RMSE chart",
        lambda: plots.history_chart(
            rmse, "pair RMSE", out_dir / "chart_pair_rmse_by_history.png", "test pair RMSE"
        ),
    )
    charts["ndcg_by_history"] = _attempt(
        "NDCG chart",
        lambda: plots.history_chart(
            ndcg, f"NDCG@{k}", out_dir / "chart_ndcg_by_history.png", f"test NDCG@{k}"
        ),
    )
    curves = [Path(lg.experiment.metrics_file_path) for lg in loggers if _kind(lg) == "csv"]
    if curves:
        charts["learning_curves"] = _attempt(
            "learning curves",
            lambda: plots.learning_curves_chart(
                curves[0], result, out_dir / "chart_learning_curves.png"
            ),
        )
    return extra, {name: path for name, path in charts.items() if path is not None}


def _attempt(what: str, make: Callable[[], T]) -> T | None:
    try:
        return make()
    except Exception:  # an extra picture or table is never worth the run's end
        log.warning("dashboards: %s failed", what, exc_info=True)
        return None


def _kind(logger: Any) -> str:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    for kind, cls in (("wandb", WandbLogger), ("tensorboard", TensorBoardLogger)):
        if isinstance(logger, cls):
            return kind
    return "csv" if isinstance(logger, CSVLogger) else "other"


@dataclass
class Dashboard:
    """One run's dashboard, before it is sent to the loggers."""

    result: Mapping[str, Any]
    numbers: dict[str, float | int]
    words: dict[str, str]
    tables: dict[str, Table]
    charts: dict[str, Path]

    def model_test(self) -> dict[str, float]:
        """The model's test floats as `final/<metric>`, as every logger got them before."""
        test = self.result.get("test", {})
        return {f"final/{k}": v for k, v in test.items() if isinstance(v, float)}


def to_wandb(logger: Any, board: Dashboard) -> None:
    import wandb

    run = logger.experiment
    logger.log_metrics(board.model_test())
    run.summary.update({**board.numbers, **board.words})
    logged: dict[str, Any] = {
        f"tables/{name}": wandb.Table(columns=columns, data=rows, allow_mixed_types=True)
        for name, (columns, rows) in board.tables.items()
    }
    logged.update({f"charts/{name}": wandb.Image(str(path)) for name, path in board.charts.items()})
    if logged:
        run.log(logged)


def to_tensorboard(logger: Any, board: Dashboard) -> None:
    from matplotlib.image import imread

    logger.log_metrics(board.numbers)
    writer = logger.experiment
    if board.words:
        words = sorted(board.words.items())
        writer.add_text("final/settings", markdown_table(["name", "value"], words))
    for name, (columns, rows) in board.tables.items():
        writer.add_text(f"tables/{name}", markdown_table(columns, rows))
    for name, path in board.charts.items():
        writer.add_image(f"charts/{name}", imread(path)[..., :3], dataformats="HWC")
    writer.flush()


def to_csv(logger: Any, board: Dashboard) -> None:
    logger.log_metrics(board.model_test())
    logger.save()
    folder = Path(logger.log_dir)
    values = [[k, v] for k, v in board.numbers.items()] + [[k, v] for k, v in board.words.items()]
    write_csv(folder / "final.csv", ["name", "value"], values)
    for name, table in board.tables.items():
        write_csv(folder / "tables" / f"{name}.csv", *table)


def to_other(logger: Any, board: Dashboard) -> None:
    logger.log_metrics(board.numbers)


SENDERS: dict[str, Callable[[Any, Dashboard], None]] = {
    "wandb": to_wandb,
    "tensorboard": to_tensorboard,
    "csv": to_csv,
    "other": to_other,
}


def write_csv(path: Path, columns: list[str], rows: list[list[Any]]) -> None:
    """A table as CSV, written beside `path` and renamed: a full disk leaves no half file."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)


def markdown_table(columns: list[str], rows: list[Any]) -> str:
    """TensorBoard's text plugin renders markdown: a table it shows as one."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_text(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value).replace("|", "\\|")

