"""The prepared dataset: everything training, evaluation and recommendation read, cached.

One object holds the integer-indexed ratings with their split, the id maps, the movie catalog
and the fitted features. It is saved as parquet + numpy + a JSON manifest in a folder whose
name carries a key derived from the config and the source files' size and mtime, so a second
run loads in a second and a changed input rebuilds. The folder is written to a temporary
sibling and renamed, so an interrupted build leaves no half cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from duorec.data.features import Features
from duorec.data.split import SPLIT_NAMES
from duorec.io import atomic_path

FORMAT_VERSION = 3  # bump when the layout or the meaning of a feature changes


@dataclass
class PreparedDataset:
    """Ratings as contiguous indices plus what is needed to map them back to the world."""

    ratings: pd.DataFrame  # user int32, movie int32, rating float32, timestamp int64, split int8
    user_ids: np.ndarray  # original userId of each user index
    catalog: pd.DataFrame  # one row per movie index: movieId, title, year, genres, tconst, ...
    features: Features
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.catalog)

    @property
    def rating_range(self) -> tuple[float, float]:
        low, high = self.manifest["rating_range"]
        return float(low), float(high)

    def split(self, name: str) -> pd.DataFrame:
        """Ratings of one split: 'train', 'val' or 'test'."""
        return self.ratings[self.ratings["split"].to_numpy() == SPLIT_NAMES[name]]

    def user_index(self, user_id: int) -> int:
        """Index of an original userId, or a KeyError that names the id and the data set."""
        lookup = pd.Index(self.user_ids)
        position = lookup.get_indexer([user_id])[0]
        if position < 0:
            raise KeyError(
                f"unknown user id {user_id}: the data set {self.manifest.get('name')!r} has "
                f"{self.n_users} users with ids {self.user_ids.min()}..{self.user_ids.max()}"
            )
        return int(position)

    def fingerprint(self) -> str:
        """A hash of the content (ratings, split, ids, catalog ids, features), not of paths.

        The cache key says where a build came from (paths and mtimes, cheap to check on every
        run); the fingerprint says what it holds. A checkpoint records the fingerprint, so its
        data is recognised after the files were copied, moved or touched, and refused only if
        the content differs. Hashing 32M ratings takes about a second, once per build.
        """
        digest = hashlib.sha256()
        for column in ("user", "movie", "rating", "split"):
            digest.update(np.ascontiguousarray(self.ratings[column].to_numpy()).tobytes())
        digest.update(np.ascontiguousarray(self.user_ids).tobytes())
        digest.update(np.ascontiguousarray(self.catalog["movieId"].to_numpy()).tobytes())
        f = self.features
        for array in (f.user, f.movie, f.people_offsets, f.people_index):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(json.dumps([f.user_names, f.movie_names, f.people_vocab]).encode())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------ persistence

    def save(self, folder: str | Path) -> Path:
        """Write atomically: the folder appears complete or not at all."""
        folder = Path(folder)
        with atomic_path(folder) as tmp:
            tmp.mkdir(parents=True)
            self.ratings.to_parquet(tmp / "ratings.parquet", index=False)
            pd.DataFrame({"userId": self.user_ids}).to_parquet(tmp / "users.parquet", index=False)
            self.catalog.to_parquet(tmp / "catalog.parquet", index=False)
            pd.DataFrame({"token": self.features.people_vocab}).to_parquet(
                tmp / "people.parquet", index=False
            )
            f = self.features
            np.savez(
                tmp / "features.npz",
                user=f.user,
                movie=f.movie,
                people_offsets=f.people_offsets,
                people_index=f.people_index,
            )
            manifest = dict(self.manifest)
            manifest["features"] = {
                "user": f.user_names,
                "movie": f.movie_names,
                "global_mean": f.global_mean,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_jsonable))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> PreparedDataset:
        folder = Path(folder)
        if not (folder / "manifest.json").exists():
            raise FileNotFoundError(f"{folder}: not a prepared dataset (no manifest.json)")
        manifest = json.loads((folder / "manifest.json").read_text())
        arrays = np.load(folder / "features.npz")
        names = manifest["features"]
        features = Features(
            user=arrays["user"],
            user_names=names["user"],
            movie=arrays["movie"],
            movie_names=names["movie"],
            people_offsets=arrays["people_offsets"],
            people_index=arrays["people_index"],
            people_vocab=pd.read_parquet(folder / "people.parquet")["token"].tolist(),
            global_mean=names["global_mean"],
        )
        return cls(
            ratings=pd.read_parquet(folder / "ratings.parquet"),
            user_ids=pd.read_parquet(folder / "users.parquet")["userId"].to_numpy(),
            catalog=pd.read_parquet(folder / "catalog.parquet"),
            features=features,
            manifest=manifest,
        )


def cache_key(config: dict[str, Any], sources: list[Path]) -> str:
    """Hash of the preparation config and each source file's path, size and mtime.

    Size + mtime instead of content hashes: hashing 900 MB of MovieLens-32M on every run
    would cost more than the cache saves, and any rewrite of a file changes its mtime.
    """
    stats = []
    for path in sorted(Path(p) for p in sources):
        st = path.stat()
        stats.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps(
        {"v": FORMAT_VERSION, "config": config, "files": stats}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to the manifest")
