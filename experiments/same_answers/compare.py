"""Compare two snapshots of experiments/same_answers/run.sh: every metrics.json value (timings
counted apart) and the recommendation CSVs on the columns both have.

    python experiments/same_answers/compare.py BEFORE AFTER ml-100k ml-latest-small
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

TABLES = ("pair", "group_mean", "group_min", "people")


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every leaf where two JSON values differ, as 'path: before -> after'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'after' if key not in a else 'before'}")
            else:
                out += differences(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def main() -> None:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    for name in sys.argv[3:]:
        old, new = (json.loads((p / name / "metrics.json").read_text()) for p in (before, after))
        found = differences(old, new)
        timing = [d for d in found if "seconds" in d.split(":")[0]]
        other = [d for d in found if d not in timing]
        print(f"== {name} metrics.json: {len(other)} differences (+{len(timing)} timings)")
        for line in other:
            print("  ", line)
        for table in TABLES:
            a, b = (pd.read_csv(p / name / f"{table}.csv") for p in (before, after))
            common = [c for c in a.columns if c in b.columns]
            same = "identical" if a[common].equals(b[common]) else "DIFFER"
            added = [c for c in b.columns if c not in a.columns]
            print(f"  {table}.csv: {len(a)} rows; common columns {same}; added {added}")


if __name__ == "__main__":
    main()
