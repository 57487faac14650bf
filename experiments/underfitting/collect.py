"""Gather the underfitting study's runs into a results table (CSV + markdown) and plots.

    python experiments/underfitting/collect.py [--logs logs] [--out experiments/underfitting]

Reads every job of the newest `underfitting` and `underfitting_ablation` multiruns: the
resolved config (.hydra/config.yaml), metrics.json (test numbers and same-run baselines) and
the CSV logger's per-epoch curves. Nothing is typed in by hand: each number in the README
table comes from these files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import yaml


def newest_multirun(logs: Path, task: str) -> Path | None:
    runs = sorted((logs / task / "multiruns").glob("*"))
    return runs[-1] if runs else None


def read_job(job: Path) -> dict | None:
    metrics_path = job / "metrics.json"
    if not metrics_path.exists():
        return None
    cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
    metrics = json.loads(metrics_path.read_text())
    curves = pd.read_csv(job / "csv" / "metrics.csv")
    # the final trainer.validate() of the best checkpoint logs one more row: keep training epochs
    per_epoch = curves.dropna(subset=["train/loss_epoch"]).groupby("epoch").last()
    val_curve = curves.dropna(subset=["val/pair_rmse"]).groupby("epoch")["val/pair_rmse"].first()
    per_epoch["val/pair_rmse"] = val_curve.reindex(per_epoch.index)
    model = cfg["model"]
    inputs = [name for name in ("ids", "features", "people") if model.get(f"use_{name}", True)]
    row = {
        "data": metrics["protocol"]["data"],
        "lr": cfg["optim"]["lr"],
        "hidden": model.get("hidden"),
        "batch_size": cfg["data"]["batch_size"],
        "samples_per_epoch": cfg["data"]["samples_per_epoch"],
        "inputs": "+".join(inputs),
        "epochs": len(per_epoch),
        "val_pair_rmse": metrics["val"]["pair_rmse"],
        "test_pair_rmse": metrics["test"]["pair_rmse"],
        "test_scaled_mse": metrics["test"]["scaled_mse"],
        "test_ndcg@10": metrics["test"].get("ndcg@10"),
        "triples_per_s": per_epoch["train/triples_per_s"].median()
        if "train/triples_per_s" in per_epoch
        else None,
        "final_train_loss": per_epoch["train/loss_epoch"].dropna().iloc[-1],
        "job": str(job),
    }
    for name, values in metrics["baselines"].items():
        if "pair_rmse" in values:
            row[f"{name}_pair_rmse"] = values["pair_rmse"]
    row["_curves"] = per_epoch
    return row


def collect(root: Path | None) -> pd.DataFrame:
    if root is None:
        return pd.DataFrame()
    rows = [r for job in sorted(root.iterdir()) if job.is_dir() and (r := read_job(job))]
    return pd.DataFrame(rows)


def plot_curves(frame: pd.DataFrame, out: Path) -> None:
    """Train loss and validation pair RMSE per epoch, one panel per (data, width, batch)."""
    for data, group in frame.groupby("data"):
        settings = sorted(group.groupby(["hidden", "batch_size"]).groups)
        fig, axes = plt.subplots(
            2, len(settings), figsize=(4 * len(settings), 6.5), sharex=True, squeeze=False
        )
        for col, (hidden, batch) in enumerate(settings):
            subset = group[(group.hidden == hidden) & (group.batch_size == batch)]
            for _, run in subset.sort_values("lr").iterrows():
                curves = run["_curves"]
                label = f"lr {run['lr']:g}"
                axes[0, col].plot(curves.index, curves["train/loss_epoch"], marker=".", label=label)
                axes[1, col].plot(curves.index, curves["val/pair_rmse"], marker=".", label=label)
            axes[0, col].set_title(f"hidden {hidden}, batch {batch}")
            axes[0, col].set_yscale("log")  # the first epoch of a high learning rate spikes
            floor = subset["val_pair_rmse"].min()
            axes[1, col].set_ylim(0.97 * floor, 1.05 * subset["global_mean_pair_rmse"].iloc[0])
            axes[1, col].set_xlabel("epoch")
            for baseline, style in (("mf_pair_rmse", "--"), ("global_mean_pair_rmse", ":")):
                if baseline in subset:
                    axes[1, col].axhline(
                        subset[baseline].iloc[0],
                        color="grey",
                        ls=style,
                        label=baseline.replace("_pair_rmse", " (test)"),
                    )
        axes[0, 0].set_ylabel("train loss (scaled MSE, pair + individual; log)")
        axes[1, 0].set_ylabel("validation pair RMSE (stars)")
        axes[1, -1].legend(fontsize=8)
        fig.suptitle(f"{data}: training curves per setting")
        fig.tight_layout()
        fig.savefig(out / f"curves_{data}.png", dpi=110)
        plt.close(fig)


def plot_rmse_vs_lr(frame: pd.DataFrame, out: Path) -> None:
    datasets = sorted(frame["data"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        group = frame[frame.data == data]
        for (hidden, batch), runs in group.groupby(["hidden", "batch_size"]):
            runs = runs.sort_values("lr")
            ax.plot(
                runs["lr"],
                runs["val_pair_rmse"],
                marker="o",
                label=f"hidden {hidden}, batch {batch}",
            )
        for baseline, style in (
            ("mf_pair_rmse", "--"),
            ("bias_pair_rmse", "-."),
            ("global_mean_pair_rmse", ":"),
        ):
            ax.axhline(
                group[baseline].iloc[0],
                color="grey",
                ls=style,
                label=baseline.replace("_pair_rmse", "") + " (test, same split)",
            )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (AdamW, log scale)")
        ax.set_ylabel("best validation pair RMSE (stars)")
        ax.set_title(data)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "val_rmse_vs_lr.png", dpi=110)
    plt.close(fig)


def plot_throughput(frame: pd.DataFrame, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for (data, hidden), runs in frame.groupby(["data", "hidden"]):
        by_batch = runs.groupby("batch_size")["triples_per_s"].median()
        ax.plot(by_batch.index, by_batch.values, marker="o", label=f"{data}, hidden {hidden}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (triples)")
    ax.set_ylabel("training throughput (triples / s, median over runs)")
    ax.set_title("throughput on the 2-core CPU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "throughput_vs_batch.png", dpi=110)
    plt.close(fig)


def markdown(frame: pd.DataFrame, columns: list[str]) -> str:
    table = frame[columns].copy()
    for column in table.columns:
        if table[column].dtype.kind == "f":
            table[column] = table[column].map(lambda v: f"{v:.4g}" if pd.notna(v) else "")
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return header + "\n".join("| " + " | ".join(map(str, r)) + " |" for r in table.values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    grid = collect(newest_multirun(args.logs, "underfitting"))
    ablation = collect(newest_multirun(args.logs, "underfitting_ablation"))
    columns = [
        "data",
        "lr",
        "hidden",
        "batch_size",
        "epochs",
        "final_train_loss",
        "val_pair_rmse",
        "test_pair_rmse",
        "test_scaled_mse",
        "triples_per_s",
        "mf_pair_rmse",
        "bias_pair_rmse",
        "global_mean_pair_rmse",
    ]
    parts = []
    if not grid.empty:
        grid = grid.sort_values(["data", "lr", "hidden", "batch_size"])
        grid.drop(columns="_curves").to_csv(args.out / "results.csv", index=False)
        plot_curves(grid, args.out)
        plot_rmse_vs_lr(grid, args.out)
        plot_throughput(grid, args.out)
        parts.append("## Grid\n\n" + markdown(grid, columns))
    if not ablation.empty:
        ablation = ablation.sort_values(["data", "val_pair_rmse"])
        ablation.drop(columns="_curves").to_csv(args.out / "ablation.csv", index=False)
        parts.append(
            "## Ablation\n\n"
            + markdown(
                ablation,
                [
                    "data",
                    "inputs",
                    "epochs",
                    "val_pair_rmse",
                    "test_pair_rmse",
                    "mf_pair_rmse",
                    "global_mean_pair_rmse",
                ],
            )
        )
    samples = collect(newest_multirun(args.logs, "underfitting_samples"))
    if not samples.empty:
        samples = samples.sort_values(["data", "lr", "samples_per_epoch"])
        samples.drop(columns="_curves").to_csv(args.out / "samples.csv", index=False)
        parts.append(
            "## Triples per epoch\n\n"
            + markdown(
                samples,
                [
                    "data",
                    "lr",
                    "samples_per_epoch",
                    "epochs",
                    "final_train_loss",
                    "val_pair_rmse",
                    "test_pair_rmse",
                    "mf_pair_rmse",
                    "bias_pair_rmse",
                ],
            )
        )
    optuna_root = newest_multirun(args.logs, "underfitting_optuna")
    optuna = collect(optuna_root)
    if not optuna.empty:
        best = yaml.safe_load((optuna_root / "optimization_results.yaml").read_text())
        optuna = optuna.sort_values("val_pair_rmse")
        optuna.drop(columns="_curves").to_csv(args.out / "optuna.csv", index=False)
        grid_best = grid[grid.data == optuna["data"].iloc[0]].nsmallest(1, "val_pair_rmse")
        summary = pd.concat(
            [
                grid_best.assign(search="grid (16 settings)"),
                optuna.head(1).assign(search=f"optuna TPE ({len(optuna)} trials)"),
            ]
        )
        parts.append(
            "## Optuna against the grid\n\n"
            f"Optuna's best parameters: `{best['best_params']}`, "
            f"best value {best['best_value']:.4f}"
            "\n\n"
            + markdown(
                summary,
                [
                    "search",
                    "data",
                    "lr",
                    "hidden",
                    "batch_size",
                    "val_pair_rmse",
                    "test_pair_rmse",
                    "mf_pair_rmse",
                ],
            )
        )
    (args.out / "results.md").write_text("\n\n".join(parts) + "\n")
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
