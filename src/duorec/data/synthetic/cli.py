"""Synthetic MovieLens + IMDb release with planted, learnable structure (command line).

Usage: python -m duorec.data.synthetic --size small --seed 0 --out data/synthetic/small
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from duorec.data.synthetic.release import generate
from duorec.data.synthetic.spec import SIZES, SyntheticSpec


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m duorec.data.synthetic``: generate a preset, print the manifest summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=sorted(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a SyntheticSpec field, e.g. --set n_users=1000 (repeatable)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, val = item.partition("=")
        overrides[key] = json.loads(val) if val not in ("", "None") else None
    spec = SyntheticSpec.from_size(args.size, **overrides)
    t0 = time.perf_counter()
    out = generate(args.out, spec, args.seed)
    secs = time.perf_counter() - t0
    man = json.loads((out / "manifest.json").read_text())
    summary = {k: man[k] for k in man if k.endswith("rmse") or k == "global_mean"}
    summary |= {"counts": {k: man["counts"][k] for k in ("users", "movies", "ratings")}}
    print(json.dumps({"out": str(out), "seconds": round(secs, 2), **summary}, indent=2))
    return 0
