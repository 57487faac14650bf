"""Time and memory of the synthetic generator at a given size (numbers, not pass/fail).

Why: the ``ml32m`` preset exists to exercise readers, merge and pair sampling at
MovieLens-32M scale, which is only useful if generating it is cheap. This prints wall time,
peak RSS, file sizes and the planted oracle figures as one JSON object.

    python benchmarks/synthetic_scale_gen.py --size ml32m --out /tmp/synth32m [--keep]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import time
from pathlib import Path

from duorec.data.synthetic import SIZES, generate


def main() -> None:
    """Generate once, report, and delete the output unless ``--keep``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=sorted(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = generate(args.out, args.size, args.seed)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    man = json.loads((out / "manifest.json").read_text())
    report = {
        "size": args.size,
        "seed": args.seed,
        "seconds": round(seconds, 2),
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "machine": f"{platform.machine()} {platform.python_version()}",
        "counts": {k: man["counts"][k] for k in ("users", "movies", "ratings", "principals")},
        "file_mib": {k: round(v / 2**20, 1) for k, v in man["files"].items()},
        **{k: round(v, 4) for k, v in man.items() if k.endswith("rmse")},
    }
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
