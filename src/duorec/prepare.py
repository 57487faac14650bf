"""`python -m duorec.prepare`: build or load the prepared dataset and report the merge.

Writes `merge_report.json` and `movie_links.csv` (movieId, tconst, rule) to the run directory
so anyone can audit how MovieLens movies were matched to IMDb titles.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from duorec.cli import friendly_errors
from duorec.data.build import prepare_dataset

log = logging.getLogger("duorec.prepare")


def write_merge_audit(dataset, out_dir: Path) -> None:
    """merge_report.json + movie_links.csv, each written whole or not at all."""
    from duorec.io import atomic_path

    report = dataset.manifest.get("merge_report")
    if report is None:
        return
    with atomic_path(out_dir / "merge_report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    links = dataset.catalog[["movieId", "tconst", "match_rule"]].rename(
        columns={"match_rule": "rule"}
    )
    with atomic_path(out_dir / "movie_links.csv") as tmp:
        links.to_csv(tmp, index=False)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="prepare")
@friendly_errors("duorec.prepare")
def main(cfg: DictConfig) -> None:
    datamodule = hydra.utils.instantiate(cfg.data)
    prepared = prepare_dataset(datamodule.spec, datamodule.cache_dir)
    ds = prepared.dataset
    m = ds.manifest
    how = "loaded from cache" if prepared.from_cache else "built"
    log.info("%s %s in %.1f s: %s", how, m["name"], prepared.seconds, prepared.folder)
    log.info(
        "%d users, %d movies, %d ratings (train/val/test %s), %d people in the vocabulary",
        m["n_users"],
        m["n_movies"],
        m["n_ratings"],
        m["split_sizes"],
        m["n_people"],
    )
    log.info(
        "features: %d per user, %d per movie", ds.features.user.shape[1], ds.features.movie.shape[1]
    )
    report = m.get("merge_report")
    if report:
        log.info("merge: %s", json.dumps(report))
    out_dir = Path(cfg.paths.output_dir)
    write_merge_audit(ds, out_dir)
    log.info("merge report and movie links written to %s", out_dir)


if __name__ == "__main__":
    from duorec.overrides import run_checked

    run_checked(main, "prepare", "duorec.prepare")
