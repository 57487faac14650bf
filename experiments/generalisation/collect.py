"""Gather the generalisation study's runs into results.csv, results.md, a plot and the README.

    python experiments/generalisation/collect.py LOG_DIR [--out experiments/generalisation]

LOG_DIR is the folder run.sh wrote (logs/generalisation by default); every metrics.json under it
is one run. Data set, split and seed come from each file's "protocol", the model's numbers from
"test", each baseline's from "baselines", the per-run bootstrap intervals from "ci": nothing is
typed by hand, so the tables can be regenerated from the runs at any time. Written to --out:

- results.csv: one row per run x model (duorec or a baseline): pair_rmse, ndcg@10 (empty where
  the model has no such number: rankers predict no rating, a constant ranks nothing);
- results.md: per metric, mean ± sd (n seeds) for each model in each data set x split, the best
  cell of a column in bold; then duorec minus the best baseline, the quantity the study is about;
- generalisation.png: duorec beside the best baseline of each data set x split, sd error bars;
- README.md (if it is in --out): the part between the results markers becomes results.md, so
  the README cannot disagree with the runs.

The study's point is one recipe everywhere, so the Hydra overrides each run got beyond its data
set, split and seed (.hydra/overrides.yaml) are listed too: "none" is the claim being made.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
# metric -> (title, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "pair_rmse": ("pair RMSE", False),
    "ndcg@10": ("NDCG@10", True),
}
MODEL = "duorec"
START, END = "<!-- results:start -->", "<!-- results:end -->"
# what run.sh sets per job; anything else a run was given is a change to the recipe
STUDY_KEYS = {
    "seed",
    "data",
    "data.split.method",
    "data.movielens_dir",
    "data.imdb_dir",
    "paths.log_dir",
    "callbacks.progress_bar",
    "ckpt_path",
}


def read_run(path: Path, log_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run's rows (one per model) and its facts: protocol, bootstrap intervals, overrides."""
    metrics = json.loads(path.read_text())
    proto = metrics["protocol"]
    key = {
        "data": proto["data"],
        "split": (proto.get("split") or {}).get("method"),
        "seed": int(proto["seed"]),
    }
    run = str(path.parent.relative_to(log_dir))
    models = {MODEL: metrics["test"], **metrics["baselines"]}
    rows = [
        {**key, "model": name, **{m: values.get(m) for m in METRICS}, "run": run}
        for name, values in models.items()
    ]
    overrides_file = path.parent / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else None
    extra = None
    if overrides is not None:
        extra = " ".join(o for o in overrides if o.split("=")[0].lstrip("+~") not in STUDY_KEYS)
    return rows, {**key, "run": run, "ci": metrics.get("ci", {}), "overrides": extra}


def read_runs(log_dir: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """All runs under `log_dir`; two runs of one data set x split x seed are refused, since
    averaging them would count a seed twice (a stray rerun in the same log dir)."""
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for path in sorted(log_dir.rglob("metrics.json")):
        run_rows, run = read_run(path, log_dir)
        rows += run_rows
        runs.append(run)
    if not runs:
        sys.exit(f"no metrics.json under {log_dir}: run experiments/generalisation/run.sh first")
    seen: dict[tuple[Any, ...], str] = {}
    for run in runs:
        key = (run["data"], run["split"], run["seed"])
        if key in seen:
            sys.exit(f"two runs of {key}: {seen[key]} and {run['run']}; keep one")
        seen[key] = run["run"]
    return pd.DataFrame(rows), runs


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """mean, sd (over seeds, ddof 1) and n per (metric, model, data, split); models in the
    order metrics.json lists them, duorec first."""
    long = results.melt(
        id_vars=["data", "split", "seed", "model"], value_vars=list(METRICS), var_name="metric"
    ).dropna(subset=["value"])
    long["value"] = long["value"].astype(float)
    summary = long.groupby(["metric", "model", "data", "split"], sort=False)["value"].agg(
        ["mean", "std", "count"]
    )
    return summary.rename(columns={"std": "sd", "count": "n"}).reset_index()


def columns(results: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(set(zip(results["data"], results["split"], strict=True)))


def cell(mean: float, sd: float, n: int) -> str:
    return f"{mean:.4f} ± {sd:.4f} ({n})" if n > 1 else f"{mean:.4f} ({n})"


def metric_table(summary: pd.DataFrame, metric: str, cols: list[tuple[str, str]]) -> str:
    """Markdown: rows = models with this metric, columns = data set x split, best in bold."""
    title, higher = METRICS[metric]
    part = summary[summary["metric"] == metric]
    lines = [
        f"### {title} ({'higher' if higher else 'lower'} is better)",
        "",
        "| model | " + " | ".join(f"{d} / {s}" for d, s in cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    best = {}
    for d, s in cols:
        means = part[(part["data"] == d) & (part["split"] == s)]["mean"]
        best[d, s] = (means.max() if higher else means.min()) if len(means) else None
    for model in part["model"].unique():
        cells = []
        for d, s in cols:
            hit = part[(part["model"] == model) & (part["data"] == d) & (part["split"] == s)]
            if hit.empty:
                cells.append("-")
                continue
            row = hit.iloc[0]
            text = cell(row["mean"], row["sd"], int(row["n"]))
            cells.append(f"**{text}**" if row["mean"] == best[d, s] else text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def gaps(summary: pd.DataFrame, runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Per data set x split and metric: duorec, the best baseline by mean over seeds (only
    baselines with as many seeds as duorec, so both means cover the same seeds), the difference,
    and in how many runs duorec's bootstrap 95% interval against that run's best baseline
    excludes 0 in its favour or against it."""
    out = []
    for (metric, d, s), part in summary.groupby(["metric", "data", "split"], sort=False):
        _, higher = METRICS[metric]
        ours = part[part["model"] == MODEL]
        if ours.empty:
            continue
        ours = ours.iloc[0]
        rivals = part[(part["model"] != MODEL) & (part["n"] == ours["n"])]
        if rivals.empty:
            continue
        rival = rivals.loc[rivals["mean"].idxmax() if higher else rivals["mean"].idxmin()]
        wins = losses = 0
        for run in runs:
            ci = run["ci"].get(metric)
            if (run["data"], run["split"]) != (d, s) or not ci:
                continue
            better, worse = (
                (ci["low"] > 0, ci["high"] < 0) if higher else (ci["high"] < 0, ci["low"] > 0)
            )
            wins, losses = wins + better, losses + worse
        out.append(
            {
                "metric": metric,
                "data": d,
                "split": s,
                "duorec": ours["mean"],
                "duorec_sd": ours["sd"],
                "n": int(ours["n"]),
                "baseline": rival["model"],
                "baseline_mean": rival["mean"],
                "baseline_sd": rival["sd"],
                "diff": ours["mean"] - rival["mean"],
                "ci_wins": wins,
                "ci_losses": losses,
            }
        )
    return pd.DataFrame(out)


def gap_table(gap: pd.DataFrame) -> str:
    lines = [
        "### duorec − best baseline (mean over seeds)",
        "",
        "Negative is better for pair RMSE, positive for NDCG@10. The last column counts the "
        "runs whose paired bootstrap 95% interval (metrics.json `ci`, against that run's own "
        "best baseline) excludes 0 for / against duorec.",
        "",
        "| data / split | metric | duorec | best baseline | its mean | duorec − it | CI for / "
        "against |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, g in gap.iterrows():
        lines.append(
            f"| {g['data']} / {g['split']} | {METRICS[g['metric']][0]} | {g['duorec']:.4f} | "
            f"{g['baseline']} | {g['baseline_mean']:.4f} | {g['diff']:+.4f} | "
            f"{g['ci_wins']} / {g['ci_losses']} of {g['n']} |"
        )
    return "\n".join(lines) + "\n"


def recipe_note(runs: list[dict[str, Any]]) -> str:
    """Which overrides the runs had beyond data set, split and seed: one recipe means one set."""
    sets = pd.Series([r["overrides"] for r in runs]).fillna("(no .hydra/overrides.yaml)")
    counts = sets.replace("", "none").value_counts()
    listed = "; ".join(
        f"`{k}` ({v} runs)" if k != "none" else f"none ({v} runs)" for k, v in counts.items()
    )
    warn = " — more than one recipe: these runs are not one study" if len(counts) > 1 else ""
    return f"Overrides beyond data set, split and seed: {listed}{warn}."


def plot(gap: pd.DataFrame, path: Path) -> None:
    """duorec beside the best baseline per data set x split, one panel per metric. Points with
    sd bars rather than bars from 0: the differences that matter are a few hundredths."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(6 * len(METRICS), 4.5), squeeze=False)
    for ax, (metric, (title, higher)) in zip(axes[0], METRICS.items(), strict=True):
        part = gap[gap["metric"] == metric].reset_index(drop=True)
        x = np.arange(len(part))
        for shift, mean, sd, label, marker in (
            (-0.1, "duorec", "duorec_sd", MODEL, "o"),
            (0.1, "baseline_mean", "baseline_sd", "best baseline (named below)", "s"),
        ):
            ax.errorbar(
                x + shift, part[mean], yerr=part[sd].fillna(0), fmt=marker, capsize=4, label=label
            )
        labels = [f"{r.data}\n{r.split}\nvs {r.baseline}" for r in part.itertuples()]
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlim(-0.5, len(part) - 0.5)
        ax.set_title(f"test {title} ({'higher' if higher else 'lower'} is better), ± sd over seeds")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def update_readme(readme: Path, section: str) -> bool:
    """Replace what lies between the results markers; False when the README has none."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{section}{END}{tail}")
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", type=Path, help="the folder run.sh wrote")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.* go (%(default)s)")
    args = parser.parse_args(argv)
    results, runs = read_runs(args.log_dir.resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    results.to_csv(args.out / "results.csv", index=False)
    summary = summarise(results)
    cols = columns(results)
    gap = gaps(summary, runs)
    plot(gap, args.out / "generalisation.png")
    md = "\n".join(
        [
            f"Written by `collect.py` from {len(runs)} runs' metrics.json (cells: mean ± sd over "
            "seeds (n seeds); bold: the best of a column). " + recipe_note(runs),
            "",
            *(metric_table(summary, metric, cols) for metric in METRICS),
            gap_table(gap),
            "![duorec vs the best baseline](generalisation.png)",
            "",
        ]
    )
    (args.out / "results.md").write_text(md)
    print(md)
    readme = args.out / "README.md"
    if update_readme(readme, md):
        print(f"updated {readme}")
    print(f"wrote {args.out}/results.csv, results.md, generalisation.png")


if __name__ == "__main__":
    main()
