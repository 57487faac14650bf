"""The pictures of a run, as PNG files beside metrics.json (matplotlib, no display needed).

A reader sees at a glance what a table makes them work out: whether the model's bar clears the
best baseline's, for which pairs it errs, and whether training had flattened out above or below
the baselines' level. `matplotlib.figure.Figure` is used directly (the Agg canvas, no pyplot):
nothing depends on a display or on pyplot's global state, so a run on a cluster node plots too.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from duorec.io import atomic_path

# metrics drawn against the baselines, when the model has them; lower is better for errors
CHART_METRICS = ("pair_rmse", "pair_mae", "ndcg@10", "recall@10", "longtail_ndcg@10", "coverage@10")
LOWER_IS_BETTER = ("pair_rmse", "pair_mae", "scaled_mse")
MODEL_COLOUR, BASELINE_COLOUR, BEST_COLOUR = "#d62728", "#7f7f7f", "#1f77b4"
MIN_BIN_ITEMS = 30  # history bins with fewer test items are not drawn


def baselines_chart(result: Mapping[str, Any], path: Path) -> Path | None:
    """One panel per metric: the model and every baseline that has it, best first.

    The interval metrics.json has is the paired-bootstrap 95% interval of model minus the best
    baseline; it is drawn around the model's value (best baseline + [low, high]), so the bar
    clears the best baseline exactly when the interval excludes zero.
    """
    test, baselines = result.get("test", {}), result.get("baselines", {})
    metrics = [m for m in CHART_METRICS if _finite(test.get(m))]
    if not metrics:
        return None
    cols = 2
    rows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(11, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        values = {"model": test[metric]}
        values.update({n: b[metric] for n, b in baselines.items() if _finite(b.get(metric))})
        names = sorted(values, key=values.get, reverse=metric not in LOWER_IS_BETTER)
        ci = (result.get("ci") or {}).get(metric)
        colours = [
            MODEL_COLOUR if n == "model" else BEST_COLOUR if ci and n == ci["baseline"] else
            BASELINE_COLOUR
            for n in names
        ]
        ax.scatter([values[n] for n in names], names, color=colours, zorder=3)
        ax.grid(axis="both", alpha=0.3)
        if ci:
            best = values[ci["baseline"]]
            low, high = best + ci["low"], best + ci["high"]
            y = names.index("model")
            ax.errorbar(
                [test[metric]], [y], xerr=[[test[metric] - low], [high - test[metric]]],
                fmt="none", ecolor="black", capsize=4,
            )
            ax.set_xlabel(
                f"model - {ci['baseline']}: {ci['diff']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}]"
            )
        ax.invert_yaxis()
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        ax.set_title(f"{metric} (test, {better} is better)")
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(
        "test: model (red), best baseline (blue); bar: 95% paired-bootstrap interval of "
        "model - best baseline, drawn at the model"
    )
    return _save(fig, path)


def history_chart(
    breakdown: Mapping[str, Any], metric: str, path: Path, ylabel: str
) -> Path | None:
    """A metric by history bin (`duorec.breakdowns`), one line per model, counts on the bars."""
    if not breakdown or not breakdown.get("bin"):
        return None
    # a bin of a handful of items is noise drawn as a trend: the tables keep it, the chart not
    keep = [i for i, n in enumerate(breakdown["n"]) if n >= MIN_BIN_ITEMS]
    if not keep:
        return None
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    bins = [breakdown["bin"][i] for i in keep]
    series = [k for k in breakdown if k not in ("bin", "n", "overall", "k")]
    for name in series:
        colour = MODEL_COLOUR if name == "model" else BASELINE_COLOUR
        ax.plot(bins, [breakdown[name][i] for i in keep], marker="o", color=colour, label=name)
    counts = ax.twinx()
    counts.bar(bins, [breakdown["n"][i] for i in keep], alpha=0.15, color="black")
    counts.set_ylabel("test items in bin")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlabel("ratings known before test of the less-rated person of the pair")
    ax.set_ylabel(ylabel)
    dropped = len(breakdown["n"]) - len(keep)
    note = f" ({dropped} bin(s) of < {MIN_BIN_ITEMS} items left out)" if dropped else ""
    ax.set_title(f"{metric} by history{note}")
    ax.legend()
    return _save(fig, path)


def learning_curves_chart(
    metrics_csv: Path, result: Mapping[str, Any], path: Path
) -> Path | None:
    """Validation pair RMSE by epoch (the CSV logger's metrics.csv), the baselines' test level
    as dashed lines: whether more epochs could have crossed them."""
    if not metrics_csv.exists():
        return None
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    # the best checkpoint's re-validation after fit logs one more "epoch": trained epochs only
    trained = {
        row["epoch"] for row in rows if any(k.startswith("train/") and v for k, v in row.items())
    }
    curve: dict[int, float] = {}
    for row in rows:
        epoch = row.get("epoch")
        if row.get("val/pair_rmse") and epoch and (epoch in trained or not trained):
            curve.setdefault(int(float(row["epoch"])), float(row["val/pair_rmse"]))
    if not curve:
        return None
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    epochs = sorted(curve)
    ax.plot(epochs, [curve[e] for e in epochs], marker="o", color=MODEL_COLOUR, label="model (val)")
    baselines = result.get("baselines", {}).items()
    levels = {n: b["pair_rmse"] for n, b in baselines if _finite(b.get("pair_rmse"))}
    if _finite(result.get("test", {}).get("pair_rmse")):
        ax.axhline(result["test"]["pair_rmse"], color=MODEL_COLOUR, ls=":", label="model (test)")
    for i, (name, level) in enumerate(sorted(levels.items(), key=lambda kv: kv[1])):
        ax.axhline(level, ls="--", color=f"C{i % 10}", label=f"{name} (test)")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("pair RMSE")
    ax.set_title("learning curve against the baselines")
    ax.legend(fontsize="small")
    return _save(fig, path)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _save(fig: Figure, path: Path) -> Path:
    """The figure as PNG, written beside `path` and renamed (no half-written picture)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
