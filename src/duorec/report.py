"""The evaluation table on screen: the model and every baseline, side by side.

`python -m duorec.report DIR` prints a run folder's tables from its metrics.json, or rebuilds
a sweep folder's sweep.md / sweep.csv (`duorec.sweep`) and prints the comparison.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from duorec.cli import UsageError, friendly_errors
from duorec.sweep import read_jobs, write_summary

UNWRAPPED_WIDTH = 1000  # columns; tables still take only their natural width
COLUMNS = (
    "pair_rmse",
    "pair_mae",
    "scaled_mse",
    "ndcg@10",
    "recall@10",
    "hit_rate@10",
    "coverage@10",
    "top_title_share@10",  # share of lists holding the most frequent title
    "head_share@10",  # share of picks among the eval.long_tail_head most-rated movies
    "longtail_ndcg@10",
)


def metrics_table(result: dict[str, Any]) -> Table:
    """One row per model for the headline target, ranking metrics where they exist."""
    proto = result.get("protocol", {})
    title = (
        f"test: {proto.get('data')}, {proto.get('test_triples')} pair triples"
        f"{' (seeded sample)' if proto.get('test_triples_sampled') else ''}"
    )
    table = Table(title=title)
    table.add_column("model")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    rows = {"model": result.get("test", {}), **result.get("baselines", {})}
    for name, metrics in rows.items():
        table.add_row(name, *(_fmt(metrics.get(c)) for c in COLUMNS))
    return table


def targets_table(result: dict[str, Any]) -> Table:
    """Pair RMSE for each target: mean, least misery (min), most pleasure (max)."""
    targets = result.get("targets", {})
    table = Table(title="pair RMSE by target")
    table.add_column("model")
    for how in targets:
        table.add_column(how, justify="right")
    names = next(iter(targets.values()), {}).keys()
    for name in names:
        table.add_row(name, *(_fmt(targets[how][name]["pair_rmse"]) for how in targets))
    return table


def diversity_table(diversity: dict[str, dict[str, float]]) -> Table:
    """What an MMR diversity re-rank of the model's lists costs in NDCG, and buys."""
    table = Table(title="model lists re-ranked for diversity (MMR)")
    columns = list(next(iter(diversity.values())))
    table.add_column("diversity")
    for column in columns:
        table.add_column(column, justify="right")
    for strength, values in diversity.items():
        table.add_row(strength, *(_fmt(values[c]) for c in columns))
    return table


def ci_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for metric, ci in result.get("ci", {}).items():
        if ci:
            lines.append(
                f"model - {ci['baseline']} on {metric}: {ci['diff']:+.4f} "
                f"(95% CI {ci['low']:+.4f} .. {ci['high']:+.4f}, "
                f"{ci['n_boot']} paired bootstrap resamples)"
            )
    return lines


def print_report(result: dict[str, Any], console: Console | None = None) -> None:
    # piped or redirected (a log file, `| tee`): no width to fit, so never wrap a table row
    console = console or Console(width=None if Console().is_terminal else UNWRAPPED_WIDTH)
    console.print(metrics_table(result))
    if result.get("targets"):
        console.print(targets_table(result))
    for line in ci_lines(result):
        console.print(line)
    diversity = result.get("test", {}).get("diversity")
    if diversity:
        console.print(diversity_table(diversity))
    if result.get("known_people"):
        console.print(known_people_table(result["known_people"]))
    folded = result.get("known_people", {}).get("newcomers_folded_in")
    if folded:
        title = f"newcomers folded in: {folded['protocol']['newcomers']} newcomers, " + (
            "their ratings before the test period + their N earliest test ratings revealed"
        )
        console.print(cold_start_table(folded, title))
        for line in cold_start_ci_lines(folded, "newcomers folded in"):
            console.print(line)
    if result.get("cold_start", {}).get("protocol"):
        console.print(cold_start_table(result["cold_start"]))
    for line in cold_start_ci_lines(result.get("cold_start", {})):
        console.print(line)
    oracle = result.get("oracle")
    if oracle:
        console.print(
            f"best achievable pair RMSE (synthetic noise floor): "
            f"{oracle['pair_rmse']:.4f}; model / floor = {oracle['model_ratio']:.3f}"
        )


KNOWN_COLUMNS = ("pair_rmse", "ndcg@10", "recall@10")


def known_people_table(known: dict[str, Any]) -> Table:
    """Temporal split: known people (>= min_ratings before test) apart from newcomers."""
    table = Table(title=f"known people (>= {known.get('min_ratings')} ratings before test)")
    for column in ("group", "model", "triples", "pairs", *KNOWN_COLUMNS):
        table.add_column(column, justify="left" if column in ("group", "model") else "right")
    for group in ("known", "newcomers"):
        block = known.get(group, {})
        rows = {"model": block.get("model", {}), **block.get("baselines", {})}
        counts = (str(block.get("n_triples")), str(block.get("n_pairs")))
        for name, metrics in rows.items():
            shown = counts if name == "model" else ("", "")  # once per group
            table.add_row(group, name, *shown, *(_fmt(metrics.get(c)) for c in KNOWN_COLUMNS))
    return table


COLD_COLUMNS = ("pair_rmse", "pair_rmse_cold_cold", "pair_rmse_cold_known", "ndcg@10", "recall@10")


def cold_start_table(cold: dict[str, Any], title: str | None = None) -> Table:
    """Cold start: one row per (N revealed, model), the model beside the folded-in baselines
    (also the temporal split's newcomers folded in, under their own `title`)."""
    proto = cold.get("protocol", {})
    table = Table(
        title=title
        or f"cold start: {proto.get('held_out_users')} held-out users, "
        f"{proto.get('reveal')} revealed to fold-in"
    )
    for column in ("N", "model", "users", "triples", *COLD_COLUMNS):
        table.add_column(column, justify="right" if column != "model" else "left")
    for n, block in cold.items():
        if n in ("protocol", "new_movies"):
            continue
        for name in ("model", "bias", "ease_sum", "ease_both", "popularity"):
            if name in block:
                metrics = block[name]
                table.add_row(
                    n,
                    name,
                    str(block.get("n_users")),
                    str(block.get("n_triples")),
                    *(_fmt(metrics.get(c)) for c in COLD_COLUMNS),
                )
    return table


def cold_start_ci_lines(cold: dict[str, Any], what: str = "cold start") -> list[str]:
    """Paired-bootstrap lines for each N, and the new-movie RMSEs."""
    lines = []
    for n, block in cold.items():
        if n == "protocol":
            continue
        label = "new movies" if n == "new_movies" else f"N={n}"
        if n == "new_movies" and "model" in block:
            lines.append(
                f"cold start, {block['n_movies']} new movies, {block['n_triples']} pair "
                f"triples: pair RMSE model {block['model']['pair_rmse']:.4f}, global mean + "
                f"user bias {block['mean_plus_user_bias']['pair_rmse']:.4f}"
            )
        for metric, ci in (block.get("ci") or {}).items():
            lines.append(
                f"{what} {label}: {metric} model - {ci['baseline']} = {ci['diff']:+.4f} "
                f"[{ci['low']:+.4f}, {ci['high']:+.4f}] (95% paired bootstrap)"
            )
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


@friendly_errors("duorec.report")
def main(argv: list[str] | None = None) -> None:
    """Report on DIR: a run folder (metrics.json) or a multirun folder (numbered job folders)."""
    parser = argparse.ArgumentParser(
        prog="python -m duorec.report",
        description="Print a run's tables, or rebuild a sweep's sweep.md and sweep.csv.",
    )
    parser.add_argument(
        "dir", type=Path, help="logs/train/runs/<time> or logs/train/multiruns/<time>"
    )
    folder: Path = parser.parse_args(argv).dir
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    metrics = folder / "metrics.json"
    if metrics.exists():
        try:
            result = json.loads(metrics.read_text())
        except json.JSONDecodeError as err:
            raise UsageError(f"{metrics} is not valid JSON ({err})") from None
        print_report(result)
        return
    if not read_jobs(folder):
        raise UsageError(
            f"{folder} is neither a run folder (no metrics.json) nor a sweep folder (no job "
            "folders with .hydra/overrides.yaml)"
        )
    md, table = write_summary(folder)
    print(md.read_text())
    print(f"wrote {md} and {table}")


if __name__ == "__main__":
    main()
