"""``generate``: the whole release (files + ``manifest.json``) from a spec and a seed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from duorec.data.synthetic.catalog import make_catalog, make_people
from duorec.data.synthetic.imdb_files import write_imdb_and_links
from duorec.data.synthetic.model import (
    Ratings,
    make_ratings,
    make_users,
    plant_movies,
    sample_pairs,
    user_counts,
)
from duorec.data.synthetic.oracle import oracle_stats, variance_parts
from duorec.data.synthetic.spec import SyntheticSpec
from duorec.data.synthetic.vocab import RATING_MAX, RATING_MIN
from duorec.data.synthetic.writers import write_movies, write_ratings
from duorec.io import atomic_path

FORMAT_VERSION = 1
# One independent stream per component, by position. "tags" fed the retired tags.csv; it keeps
# its slot so that the streams after it (and so every file) keep their draws.
_STREAMS = ("catalog", "people", "users", "sample", "noise", "imdb", "tags", "pairs")


def generate(out_dir: str | Path, spec: SyntheticSpec | str = "small", seed: int = 0) -> Path:
    """Write a synthetic MovieLens + IMDb release under ``out_dir`` and return ``out_dir``.

    Layout: ``out_dir/movielens/{ratings,movies,links}.csv``,
    ``out_dir/imdb/{title.basics,title.ratings,title.crew,title.principals,name.basics}.tsv``
    and ``out_dir/manifest.json`` (spec, seed, counts, oracle and baseline RMSEs). The whole
    directory is staged and swapped in atomically, so an interrupted run leaves the previous
    ``out_dir`` (or nothing) rather than a half-written data set a cache might trust.
    Same (spec, seed) -> byte-identical files.
    """
    spec = SyntheticSpec.from_size(spec) if isinstance(spec, str) else spec
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        _generate_into(tmp, spec, seed)
    return out_dir


def _rngs(seed: int, names: Sequence[str]) -> dict[str, np.random.Generator]:
    """Independent streams per component, so changing one part leaves the others' draws."""
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, children, strict=True)}


def _generate_into(root: Path, spec: SyntheticSpec, seed: int) -> None:
    rng = _rngs(seed, _STREAMS)
    n_m = spec.n_movies
    cat = make_catalog(spec, rng["catalog"])
    n_extra = int(round(spec.frac_extra_imdb_titles * n_m))
    people = make_people(spec, n_m + n_extra, rng["people"])
    movie_f = plant_movies(spec, cat, people, rng["catalog"])

    users = make_users(spec, rng["users"])
    counts = user_counts(spec, rng["sample"])
    keys = sample_pairs(counts, cat.popularity, rng["sample"])
    ratings = make_ratings(spec, cat, users, movie_f, keys, rng["noise"])
    del keys
    stats = oracle_stats(spec, ratings, rng["pairs"])
    stats["planted_variance"] = variance_parts(spec, cat, users, movie_f, ratings)

    ml, imdb = root / "movielens", root / "imdb"
    ml.mkdir()
    imdb.mkdir()
    write_ratings(ml / "ratings.csv", ratings, cat.movie_id)
    write_movies(ml / "movies.csv", cat)
    link_counts = write_imdb_and_links(root, spec, cat, people, n_extra, rng["imdb"])
    counts_all = _counts(spec, ratings, int(people.title.size)) | link_counts
    _write_manifest(root, spec, seed, counts_all, stats)


def _counts(spec: SyntheticSpec, ratings: Ratings, n_principals: int) -> dict[str, Any]:
    per_user = np.bincount(ratings.user, minlength=spec.n_users)
    per_movie = np.bincount(ratings.movie, minlength=spec.n_movies)
    return {
        "users": spec.n_users,
        "movies": spec.n_movies,
        "ratings": int(ratings.user.size),
        "rated_movies": int((per_movie > 0).sum()),
        "people": spec.people,
        "principals": n_principals,
        "ratings_per_user": _quantiles(per_user),
        "ratings_per_movie": _quantiles(per_movie),
    }


def _write_manifest(
    root: Path, spec: SyntheticSpec, seed: int, counts: dict[str, Any], stats: dict[str, Any]
) -> None:
    manifest = {
        "format_version": FORMAT_VERSION,
        "generator": "duorec.data.synthetic",
        "seed": seed,
        "spec": dataclasses.asdict(spec),
        "rating_range": [RATING_MIN, RATING_MAX],
        "noise_sd": spec.noise_sd,
        "counts": counts,
        **stats,
        "files": {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*.*sv"))},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {
        "min": int(x.min()),
        "median": float(np.median(x)),
        "mean": float(x.mean()),
        "max": int(x.max()),
    }
