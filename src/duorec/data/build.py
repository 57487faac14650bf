"""Build (or load from cache) the prepared dataset described by a `data` config.

raw files -> readers -> merge -> split -> features -> PreparedDataset, in one direction. The
synthetic source first writes real-format files and then takes exactly the same path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from duorec.data import imdb
from duorec.data.errors import DataError
from duorec.data.features import fit_features
from duorec.data.imdb import IMDB_FILES
from duorec.data.merge import fallback_title_keys, link_tconsts, merge_movies
from duorec.data.movielens import MovieLensData, read_movielens
from duorec.data.prepared import PreparedDataset, cache_key
from duorec.data.split import (
    COLD,
    COLD_MOVIE,
    COLD_MOVIE_STREAM,
    COLD_USER_STREAM,
    held_out_mask,
    split_ratings,
)
from duorec.data.titles import split_title_years
from duorec.io import sweep_orphans

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """What defines a prepared data set, and so its cache key: the source, split and features.

    The `data` config node also holds loader settings (batch size, weighting, ...) that do not
    change the data; `from_config` takes only the fields named here, so this class is the one
    list of what goes into the cache key.
    """

    source: str
    name: str
    seed: int
    split: Mapping[str, Any]
    features: Mapping[str, Any]
    synthetic: Mapping[str, Any] | None = None
    movielens_dir: str | None = None
    imdb_dir: str | None = None
    cold_users: float | None = None  # share of users held out entirely (cold-start protocol)
    cold_movies: float | None = None  # share of movies without any train rating (metadata kept)

    def __post_init__(self) -> None:
        for key in ("cold_users", "cold_movies"):
            value = getattr(self, key)
            if value is not None and not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and 0.0 < float(value) < 1.0
            ):
                from duorec.errors import UsageError

                raise UsageError(f"data.{key} must be a share in (0, 1) or null, got {value!r}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> DatasetSpec:
        names = [f.name for f in fields(cls)]
        return cls(**{k: _plain(cfg[k]) for k in names if k in cfg})

    def as_dict(self) -> dict[str, Any]:
        """The fields; the held-out shares only when set, so data sets without them keep the
        cache key they had before the settings existed."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("cold_users", "cold_movies"):
            if out[key] is None:
                del out[key]
        return out


def prepared_folder(cache_dir: str | Path, name: str, key: str) -> Path:
    """Where the prepared data set `name` with cache key `key` lives under `cache_dir`."""
    return Path(cache_dir) / "prepared" / f"{name}-{key}"


@dataclass
class Prepared:
    dataset: PreparedDataset
    folder: Path
    from_cache: bool
    seconds: float


def prepare_dataset(spec: DatasetSpec | Mapping[str, Any], cache_dir: str | Path) -> Prepared:
    """Return the prepared dataset for `spec` (or a `data` config), building it only if needed."""
    start = time.perf_counter()
    if not isinstance(spec, DatasetSpec):
        spec = DatasetSpec.from_config(spec)
    cfg = spec.as_dict()
    cache_dir = Path(cache_dir)
    sweep_cache(cache_dir)
    movielens_dir, imdb_dir = _source_dirs(cfg, cache_dir)
    sources = _source_files(movielens_dir, imdb_dir)
    settings = dict(cfg, movielens_dir=str(movielens_dir), imdb_dir=imdb_dir and str(imdb_dir))
    key = cache_key(settings, sources)
    folder = prepared_folder(cache_dir, spec.name or "dataset", key)
    if (folder / "manifest.json").exists():
        dataset = PreparedDataset.load(folder)
        return Prepared(dataset, folder, True, time.perf_counter() - start)
    dataset = build_dataset(cfg, movielens_dir, imdb_dir)
    dataset.manifest.update(cache_key=key, settings=settings, fingerprint=dataset.fingerprint())
    dataset.save(folder)
    return Prepared(dataset, folder, False, time.perf_counter() - start)


def sweep_cache(cache_dir: Path) -> None:
    """Remove what killed prepares left in the cache (`duorec.io.sweep_orphans`): staged
    prepared folders and synthetic releases whose writer is gone."""
    for folder in (cache_dir / "prepared", cache_dir / "synthetic"):
        for orphan in sweep_orphans(folder):
            log.info("removed %s, left by a prepare that was killed", orphan)


def _source_dirs(cfg: Mapping[str, Any], cache_dir: Path) -> tuple[Path, Path | None]:
    if cfg["source"] == "synthetic":
        from duorec.data.synthetic import generate

        syn = cfg["synthetic"]
        root = cache_dir / "synthetic" / f"{syn['size']}-seed{syn['seed']}"
        if not (root / "manifest.json").exists():
            log.info("writing synthetic %s data set to %s", syn["size"], root)
            generate(root, syn["size"], seed=int(syn["seed"]))
        return root / "movielens", root / "imdb"
    if cfg["source"] != "movielens":
        raise ValueError(f"unknown data.source {cfg['source']!r}: use synthetic or movielens")
    if not cfg.get("movielens_dir"):
        raise DataError(None, "data.movielens_dir is not set: pass data.movielens_dir=PATH")
    imdb_dir = cfg.get("imdb_dir")
    return Path(cfg["movielens_dir"]).expanduser(), imdb_dir and Path(imdb_dir).expanduser()


def _source_files(movielens_dir: Path, imdb_dir: Path | None) -> list[Path]:
    names = [
        "ratings.csv",
        "movies.csv",
        "links.csv",
        "ratings.dat",
        "movies.dat",
        "u.data",
        "u.item",
    ]
    files = [movielens_dir / n for n in names if (movielens_dir / n).exists()]
    if not files:
        read_movielens(movielens_dir)  # raises the precise "no ratings found" error
    if imdb_dir is not None:
        files += [imdb.find_imdb_file(imdb_dir, name) for name in IMDB_FILES]
    return files


def build_dataset(
    cfg: Mapping[str, Any], movielens_dir: Path, imdb_dir: Path | None
) -> PreparedDataset:
    """Read, merge, split and featurise: the uncached path."""
    ml = read_movielens(movielens_dir)
    ratings = ml.ratings
    user_ids = np.unique(ratings["userId"].to_numpy())
    movies = ml.movies.sort_values("movieId", ignore_index=True)
    user = np.searchsorted(user_ids, ratings["userId"].to_numpy()).astype(np.int32)
    movie = np.searchsorted(movies["movieId"].to_numpy(), ratings["movieId"].to_numpy())
    split_cfg = cfg["split"]
    split = split_ratings(
        len(ratings),
        tuple(split_cfg["fractions"]),
        seed=int(cfg["seed"]),
        method=split_cfg["method"],
        timestamps=ratings["timestamp"].to_numpy(),
        users=user,
    )
    seed = int(cfg["seed"])
    cold = held_out_mask(len(user_ids), cfg.get("cold_users"), seed, COLD_USER_STREAM)
    cold_movies = held_out_mask(len(movies), cfg.get("cold_movies"), seed, COLD_MOVIE_STREAM)
    split[cold_movies[movie]] = COLD_MOVIE
    split[cold[user]] = COLD  # a held-out user's ratings all wait for the fold-in

    rating_counts = ratings["movieId"].value_counts()
    catalog, people, report = _catalog(ml, movies, imdb_dir, rating_counts, cfg["features"])
    features = fit_features(
        user,
        movie,
        ratings["rating"].to_numpy(),
        split,
        len(user_ids),
        catalog,
        people,
        min_person_count=int(cfg["features"]["min_person_count"]),
    )
    frame = pd.DataFrame(
        {
            "user": user,
            "movie": movie.astype(np.int32),
            "rating": ratings["rating"].to_numpy(np.float32),
            "timestamp": ratings["timestamp"].to_numpy(np.int64),
            "split": split,
        }
    )
    manifest = {
        "name": cfg.get("name"),
        "layout": ml.layout,
        "rating_range": list(ml.rating_range),
        "n_users": len(user_ids),
        "n_movies": len(movies),
        "n_ratings": len(frame),
        "n_people": len(features.people_vocab),
        "merge_report": report,
        "split_sizes": {
            s: int((split == c).sum()) for s, c in (("train", 0), ("val", 1), ("test", 2))
        },
    }
    if cold.any():
        manifest["split_sizes"]["cold"] = int((split == COLD).sum())
        manifest["n_cold_users"] = int(cold.sum())
    if cold_movies.any():
        manifest["split_sizes"]["cold_movies"] = int((split == COLD_MOVIE).sum())
        manifest["n_cold_movies"] = int(cold_movies.sum())
    synthetic_manifest = movielens_dir.parent / "manifest.json"
    if cfg["source"] == "synthetic" and synthetic_manifest.exists():
        import json

        manifest["synthetic"] = json.loads(synthetic_manifest.read_text())
    return PreparedDataset(frame, user_ids, catalog, features, manifest)


def _catalog(
    ml: MovieLensData,
    movies: pd.DataFrame,
    imdb_dir: Path | None,
    rating_counts: pd.Series,
    feature_cfg: Mapping[str, Any],
) -> tuple[pd.DataFrame, list[list[str]], dict[str, Any] | None]:
    """Movie catalog (MovieLens + matched IMDb columns) and role-tagged people per movie."""
    titles = split_title_years(movies["title"])
    catalog = pd.DataFrame(
        {
            "movieId": movies["movieId"].to_numpy(),
            "title": titles["title"].to_numpy(),
            "year": titles["year"].astype("Int32").to_numpy(),
            "genres": movies["genres"].to_numpy(),
        }
    )
    for column, dtype in (
        ("directors", "string"),
        ("cast", "string"),
        ("tconst", "string"),
        ("match_rule", "string"),
        ("imdb_genres", "string"),
        ("runtime", "Float32"),
        ("imdb_rating", "Float32"),
        ("imdb_votes", "Float64"),
    ):
        catalog[column] = pd.array([None] * len(catalog), dtype=dtype)
    people: list[list[str]] = [[] for _ in range(len(catalog))]
    if imdb_dir is None:
        return catalog, people, None

    linked = link_tconsts(ml.links)
    keys = fallback_title_keys(movies, ml.links)
    basics = imdb.read_title_basics(
        imdb.find_imdb_file(imdb_dir, "title.basics"), tconsts=linked, title_keys=keys
    )
    title_ratings = imdb.read_title_ratings(
        imdb.find_imdb_file(imdb_dir, "title.ratings"), tconsts=set(basics["tconst"])
    )
    merged = merge_movies(movies, ml.links, basics, title_ratings, rating_counts=rating_counts)
    links = merged.links.set_index("movieId").reindex(catalog["movieId"])
    catalog["tconst"] = links["tconst"].astype("string").to_numpy()
    catalog["match_rule"] = links["rule"].astype("string").to_numpy()

    info = (
        basics.drop_duplicates("tconst")
        .set_index("tconst")
        .join(title_ratings.drop_duplicates("tconst").set_index("tconst"), how="left")
    )
    matched = catalog["tconst"].dropna()
    row = info.reindex(catalog["tconst"])
    catalog["imdb_genres"] = row["genres"].astype("string").to_numpy()
    catalog["runtime"] = row["runtimeMinutes"].astype("Float32").to_numpy()
    catalog["imdb_rating"] = row["averageRating"].astype("Float32").to_numpy()
    catalog["imdb_votes"] = row["numVotes"].astype("Float64").to_numpy()
    imdb_year = pd.Series(row["startYear"].astype("Int32").to_numpy(), index=catalog.index)
    catalog["year"] = catalog["year"].fillna(imdb_year)

    wanted = set(matched)
    crew = imdb.read_title_crew(imdb.find_imdb_file(imdb_dir, "title.crew"), tconsts=wanted)
    principals = imdb.read_title_principals(
        imdb.find_imdb_file(imdb_dir, "title.principals"),
        tconsts=wanted,
        max_ordering=int(feature_cfg.get("principals_max_ordering", 10)),
    )
    people = _people_tokens(catalog["tconst"], crew, principals, int(feature_cfg["top_cast"]))
    _name_people(catalog, people, imdb_dir)
    return catalog, people, merged.report


def _name_people(catalog: pd.DataFrame, people: list[list[str]], imdb_dir: Path) -> None:
    """Add `directors` and `cast` columns of names (from name.basics), for people to read.

    Recommendations explain themselves with these; a person name.basics does not know keeps
    their nconst.
    """
    nconsts = {token.split(":", 1)[1] for tokens in people for token in tokens}
    names = imdb.read_person_names(imdb_dir, nconsts)
    for column, role in (("directors", "director"), ("cast", "cast")):
        catalog[column] = pd.array(
            [
                "; ".join(
                    names.get(t.split(":", 1)[1], t.split(":", 1)[1])
                    for t in tokens
                    if t.startswith(f"{role}:")
                )
                or None
                for tokens in people
            ],
            dtype="string",
        )


def _people_tokens(
    tconsts: pd.Series, crew: pd.DataFrame, principals: pd.DataFrame, top_cast: int
) -> list[list[str]]:
    """Role-tagged person tokens per movie: a director and an actor are different signals."""
    by_title: dict[str, list[str]] = {}
    for column, role in (("directors", "director"), ("writers", "writer")):
        for tconst, names in zip(crew["tconst"], imdb.split_people(crew[column]), strict=True):
            by_title.setdefault(tconst, []).extend(f"{role}:{n}" for n in names)
    cast = (
        principals.sort_values(["tconst", "ordering"]).groupby("tconst", sort=False).head(top_cast)
    )
    for tconst, nconst in zip(cast["tconst"], cast["nconst"], strict=True):
        by_title.setdefault(tconst, []).append(f"cast:{nconst}")
    return [
        list(dict.fromkeys(by_title.get(t, []))) if isinstance(t, str) else []
        for t in tconsts.astype(object).where(tconsts.notna(), None)
    ]


def _plain(value: Any) -> Any:
    """OmegaConf containers -> plain Python, so configs hash and serialise the same way."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return value
