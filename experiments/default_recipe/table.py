"""Markdown tables of one or more train runs' metrics.json: the model beside every baseline.

    python experiments/default_recipe/table.py logs/train/runs/<run>/metrics.json [...]

Prints, per run: rating accuracy (pair RMSE / MAE, mean target), ranking (NDCG@10, Recall@10,
long-tail NDCG@10, coverage@10), the bootstrap intervals and the diversity re-rank costs, as
they were written by `duorec.eval.protocol.evaluate`: nothing here is recomputed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = ("pair_rmse", "pair_mae", "ndcg@10", "recall@10", "longtail_ndcg@10", "coverage@10")


def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def run_table(metrics: dict[str, Any]) -> str:
    proto = metrics["protocol"]
    lines = [
        f"### {proto['data']} ({(proto['split'] or {}).get('method')} split, seed {proto['seed']}, "
        f"{proto['test_triples']} test triples)",
        "",
        "| model | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    rows = {"duorec": metrics["test"], **metrics["baselines"]}
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(values.get(c)) for c in COLUMNS) + " |")
    lines.append("")
    for metric, ci in metrics.get("ci", {}).items():
        lines.append(
            f"- duorec − {ci['baseline']} on {metric}: {ci['diff']:+.4f} "
            f"(95% CI {ci['low']:+.4f} .. {ci['high']:+.4f})"
        )
    chosen = metrics.get("rank_rating_weight")
    if chosen:
        lines.append(f"- rank_rating_weight chosen on validation: {chosen['best']}")
    for strength, values in (metrics["test"].get("diversity") or {}).items():
        lines.append(
            f"- diversity {strength}: NDCG@10 {values['ndcg@10']:.4f}, coverage "
            f"{values['coverage@10']:.4f}, intra-list similarity "
            f"{values['intra_list_similarity']:.4f}"
        )
    return "\n".join(lines) + "\n"


def main(paths: list[str]) -> None:
    for path in paths:
        print(run_table(json.loads(Path(path).read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
