"""One short line per recommended movie saying why: what in the two people's own ratings
points at it.

A reason is only worth showing if the people can check it against their memory, so every
reason names something they rated themselves, in this order:

1. a director or cast member of the movie who is also in a movie *both* people rated highly
   (or, failing both, one of them): "Christopher Nolan: alice liked Inception, bob liked
   Memento";
2. for whoever that does not cover, the movie they rated highly that is most similar to it,
   by the model's own movie vectors (cosine of the rating factors): "like Alien (alice)";
3. and the movie's genres that both rate above their own average (shrunk like the genre
   tastes of the user features): "both rate Sci-Fi, Thriller highly".

"Rated highly": at least the person's mean and at least 70% of the way up the rating scale
(4 stars and up on MovieLens' 0.5-5), so a harsh critic's 3.5 does not count as love.
The catalogue's `directors` / `cast` columns carry names ("; "-separated); an unresolved
"nm..." id is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from duorec.data.features import SHRINK, genre_matrix
from duorec.data.titles import split_title_year, title_variants

LIKED_FRACTION = 0.7
_UNRESOLVED = re.compile(r"^nm\d+$")
_TRAILING_ARTICLE = re.compile(
    r"^(?P<main>.*), (?P<article>The|A|An|Les|La|Le|L'|Il|El|Die|Der|Das)$"
)


@dataclass
class Rater:
    """Whom a reason speaks about: a label and the movies they rated (indices, ratings)."""

    label: str
    movies: np.ndarray
    ratings: np.ndarray


@dataclass
class Liking:
    """What reasons read of one rater, computed once (`Explainer.liking`): the movies they
    liked, best first; their genre tastes; and per role (directors, cast) each name's first
    two liked movies, so naming a shared director is a lookup, not a scan of every liked
    movie for every name of every pick. A service keeps the likings of the data set's people
    it has seen."""

    rater: Rater
    liked: np.ndarray
    tastes: np.ndarray
    by_name: list[dict[str, list[int]]]


def display_title(title: str) -> str:
    """'Matrix, The' -> 'The Matrix'; alternates in parentheses dropped."""
    name, _ = split_title_year(str(title))
    variants = title_variants(name)
    main = variants[1] if len(variants) > 1 else variants[0]
    match = _TRAILING_ARTICLE.match(main)
    return f"{match['article']} {match['main']}" if match else main


class Explainer:
    """Built once per data set and model: the catalogue's names and genres, movie vectors."""

    def __init__(
        self,
        catalog: pd.DataFrame,
        rating_range: tuple[float, float],
        movie_vectors: torch.Tensor | np.ndarray | None = None,
    ):
        catalog = catalog.reset_index(drop=True)
        self.titles = [display_title(t) for t in catalog["title"].astype(str)]
        self.names = [
            _names(catalog[c]) if c in catalog else [[] for _ in range(len(catalog))]
            for c in ("directors", "cast")
        ]
        self.genres, self.genre_names = genre_matrix(catalog["genres"], "|")
        low, high = rating_range
        self.liked_floor = low + LIKED_FRACTION * (high - low)
        self.unit = np.zeros((len(catalog), 0), dtype=np.float32)
        if movie_vectors is not None:
            factors = np.asarray(torch.as_tensor(movie_vectors)[:, :-1].detach().cpu().numpy())
            norm = np.linalg.norm(factors, axis=1, keepdims=True)
            self.unit = factors / np.maximum(norm, 1e-12)

    def liked(self, rater: Rater) -> np.ndarray:
        """The movies a rater rated highly (see the module docstring), best first."""
        ratings = np.asarray(rater.ratings, dtype=np.float64)
        if not len(ratings):
            return np.zeros(0, dtype=np.int64)
        keep = (ratings >= ratings.mean()) & (ratings >= self.liked_floor)
        order = np.argsort(-ratings[keep], kind="stable")
        return np.asarray(rater.movies, dtype=np.int64)[keep][order]

    def tastes(self, rater: Rater) -> np.ndarray:
        """Per genre: the rater's shrunk mean rating above their own mean."""
        movies = np.asarray(rater.movies, dtype=np.int64)
        ratings = np.asarray(rater.ratings, dtype=np.float64)
        if not len(ratings):
            return np.zeros(len(self.genre_names))
        in_genre = self.genres[movies]
        residual = ratings - ratings.mean()
        return (in_genre * residual[:, None]).sum(0) / (in_genre.sum(0) + SHRINK)

    def liking(self, rater: Rater) -> Liking:
        """`rater` as reasons read them (`Liking`)."""
        liked = self.liked(rater)
        by_name: list[dict[str, list[int]]] = []
        for names in self.names:
            first: dict[str, list[int]] = {}
            for movie in liked.tolist():
                for name in names[movie]:
                    seen = first.setdefault(name, [])
                    if len(seen) < 2 and movie not in seen:  # one may be the pick itself
                        seen.append(movie)
            by_name.append(first)
        return Liking(rater, liked, self.tastes(rater), by_name)

    def explain(
        self, movies: Sequence[int] | np.ndarray, raters: Sequence[Rater | Liking]
    ) -> list[str]:
        """One line per movie in `movies`, for the people in `raters` (or their likings)."""
        likings = [r if isinstance(r, Liking) else self.liking(r) for r in raters]
        tastes = np.stack([liking.tastes for liking in likings])
        return [self._line(int(m), likings, tastes) for m in movies]

    def _line(self, movie: int, likings: Sequence[Liking], tastes: np.ndarray) -> str:
        raters = [liking.rater for liking in likings]
        liked = [liking.liked for liking in likings]
        named, covered = self._people(movie, likings)
        others = [i for i in range(len(raters)) if i not in covered]
        parts = [
            named,
            self._similar(movie, [raters[i] for i in others], [liked[i] for i in others]),
        ]
        genres = [
            self.genre_names[g]
            for g in np.argsort(-tastes.min(0))
            if self.genres[movie, g] and (tastes[:, g] > 0).all()
        ][:2]
        if genres:
            who = "both" if len(raters) == 2 else "all"
            parts.append(f"{who} rate {', '.join(genres)} highly")
        line = "; ".join(p for p in parts if p)
        return line or "the model's pick: little in common with what you rated"

    def _people(self, movie: int, likings: Sequence[Liking]) -> tuple[str, set[int]]:
        """('name: who liked what', the raters it speaks for): the movie's director or cast
        member found in the most raters' liked movies (directors first, then billing), each
        rater's best-liked movie with that name other than this one."""
        best: tuple[str, set[int]] = ("", set())
        for role, names in enumerate(self.names):
            for name in names[movie]:
                hits, covered = [], set()
                for i, liking in enumerate(likings):
                    found = liking.by_name[role].get(name, ())
                    shared = next((m for m in found if m != movie), None)
                    if shared is not None:
                        hits.append(f"{liking.rater.label} liked {self.titles[shared]}")
                        covered.add(i)
                if len(covered) > len(best[1]):
                    best = (f"{name}: {', '.join(hits)}", covered)
            if len(best[1]) == len(likings):
                break
        return best

    def _similar(self, movie: int, raters: Sequence[Rater], liked: list[np.ndarray]) -> str:
        if not self.unit.shape[1]:
            return ""
        picks: dict[str, list[str]] = {}  # nearest liked title -> who
        for rater, mine in zip(raters, liked, strict=True):
            if not len(mine):
                continue
            similarity = self.unit[mine] @ self.unit[movie]
            picks.setdefault(self.titles[int(mine[np.argmax(similarity)])], []).append(rater.label)
        if not picks:
            return ""
        if len(picks) == 1 and len(raters) > 1 and len(next(iter(picks.values()))) == len(raters):
            who = "both" if len(raters) == 2 else "all"
            return f"like {next(iter(picks))}, which {who} liked"
        return "like " + ", ".join(f"{title} ({', '.join(who)})" for title, who in picks.items())


def _names(column: pd.Series) -> list[list[str]]:
    """'; '-separated names per movie, unresolved nm-ids dropped."""
    out = []
    for value in column.astype(object).where(column.notna(), None):
        names = [] if value is None else [n.strip() for n in str(value).split(";")]
        out.append([n for n in names if n and not _UNRESOLVED.match(n)])
    return out


def dataset_rater(ratings: pd.DataFrame, user: int, label: str) -> Rater:
    """A data set user as a Rater: every rating they gave, whatever the split."""
    mine = ratings[ratings["user"].to_numpy() == user]
    return Rater(label, mine["movie"].to_numpy(np.int64), mine["rating"].to_numpy(np.float64))
