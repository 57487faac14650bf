"""`Recommender`: a trained model and its data set, ready to answer pairs, groups and people.

The one door to recommendations. The command line (`duorec.recommend`), the HTTP service
(`duorec.serve`) and a notebook all go through it:

    rec = Recommender.load("logs/train/runs/...")      # or Recommender(model, dataset)
    rec.pair(1, 42, k=10)                               # two people of the data set
    rec.pairs([(1, 42), (7, 9)], k=10)                  # many pairs, one table
    rec.group([1, 42, 100, 200], k=10, aggregate="min") # 3..6 people: least misery
    rec.people([alice], users=[42], k=10)               # people from their exports / picks
    Recommender(model, dataset, hold_users=True)        # also hold every person's vector
    rec.recommend([42, alice], k=10)                    # any mix of ids and people, 2..6

Built once (as implicit's `RecommenderBase` holds its factors): the serving index (who has
seen what, the catalogue columns, filters, title search), the movie tower over the catalogue,
the watch factors and the reasons' explainer. A call then costs the scoring of its own
people (`duorec.serving.scores`), a few milliseconds. People who are not in the data are
folded in per call (`PairRatingModule.fold_in`, the model and checkpoint unchanged): their
ratings never outlive the call.

Every table has one row per pick, best first: the catalogue columns, the pair's (group's)
predicted rating, each person's, the ranking `score` the list is ordered by (`rank_and_rate`:
with aggregate=min, the least happy member's), and a one-line `reason` from the people's own
ratings (`duorec.reasons`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from duorec.data.groups import MAX_GROUP
from duorec.data.prepared import PreparedDataset
from duorec.errors import UsageError
from duorec.model.base import PairRatingModule
from duorec.model.foldin import NewRatings
from duorec.reasons import Explainer, Liking, Rater
from duorec.serving.frames import (
    BATCH_COLUMNS,
    GROUP_COLUMNS,
    SINGLE_COLUMNS,
    member_column,
    result_frame,
)
from duorec.serving.index import ServingIndex, allowed_movies, search_titles
from duorec.serving.requests import (
    as_user_id,
    check_aggregate,
    check_k,
    check_members,
    check_rank_by,
    check_request,
)
from duorec.serving.scores import (
    ModelScores,
    best_for_group,
    best_unseen,
    movie_matrix,
    user_matrix,
)

log = logging.getLogger("duorec.recommend")


@dataclass
class NewPerson:
    """Someone who is not in the data, by the ratings they gave: what `people` folds in.

    `duorec.data.exports.PersonRatings` (an export read from a file) is one; so is a list of
    movies picked and rated on a page (`Recommender.person`). Movies are catalogue indices.
    """

    label: str
    movies: np.ndarray
    ratings: np.ndarray
    watched: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    timestamps: np.ndarray | None = None


class Recommender:
    """A model and its data set, with everything a recommendation needs computed once."""

    def __init__(
        self,
        model: PairRatingModule,
        dataset: PreparedDataset,
        index: ServingIndex | None = None,
        source: str | None = None,
        hold_users: bool = False,
    ):
        if model.training:
            model.eval()
        self.model = model
        self.dataset = dataset
        self.index = index if index is not None else ServingIndex(dataset)
        self.source = source  # which run / checkpoint it serves, for a first line
        self.movie_vectors = movie_matrix(model)  # the movie tower, once, in both layouts
        self.movie_rows = self.movie_vectors.movie_rows  # the row-major one
        self.watch_vectors = model.encode_watch() if model.needs_watch_vectors else None
        # every person's rating vector, once (`user_matrix`): a tenth of a pair's time over
        # 87k movies (benchmarks/README.md); off by default, the towers then run per call
        self.user_vectors = user_matrix(model, self.index) if hold_users else None
        self._likings: dict[int, Liking] = {}  # user id -> what their reasons read, once

    @classmethod
    def load(
        cls,
        ckpt_path: str | Path | None,
        log_dir: str | Path,
        cache_dir: str | Path,
        data: Any = None,
        announce: Callable[[str], Any] | None = None,
    ) -> Recommender:
        """The checkpoint (a file, a run folder, or None: the newest finished run's best) and
        the prepared data set it was trained on, loaded weights-only. `announce` hears which
        run it is (`source`) before the loading starts, so a user sees it first."""
        from duorec.checkpoint import describe_choice, load_checkpoint, resolve_checkpoint

        ckpt = resolve_checkpoint(ckpt_path, log_dir)
        source = describe_choice(ckpt)
        if announce is not None:
            announce(source)
        model, dataset = load_checkpoint(ckpt, cache_dir, data)
        return cls(model, dataset, source=source)

    @property
    def name(self) -> str:
        """The data set's name (its folder, e.g. ml-latest-small)."""
        return str(self.index.name)

    # ------------------------------------------------------------------ the doors

    def pair(
        self,
        user_a: Any,
        user_b: Any,
        k: int = 10,
        aggregate: str = "mean",
        rank_by: str | None = None,
        filters: Mapping[str, Any] | None = None,
        reasons: bool = True,
    ) -> pd.DataFrame:
        """Top-k unseen movies for two users of the data set, best first (SINGLE_COLUMNS,
        plus `reason`).

        Symmetric: pair(a, b) lists the same movies with the same pair ratings as pair(b, a),
        with rating_a and rating_b swapped.
        """
        request = check_request(k, aggregate, [(user_a, user_b)], single=True, rank_by=rank_by)
        ids = request.pairs[0].tolist()  # type: ignore[index]
        users = self.index.user_indices(request.pairs)[0]  # type: ignore[arg-type]
        frame = self._pair(users, ids, request.k, request.aggregate, request.rank_by, filters)
        if reasons:
            frame = self._explain(frame, [self._rater(i) for i in ids])
        return frame

    def pairs(
        self,
        pairs: pd.DataFrame | Sequence[Sequence[Any]] | np.ndarray,
        k: int = 10,
        aggregate: str = "mean",
        rank_by: str | None = None,
        filters: Mapping[str, Any] | None = None,
        batch_size: int = 256,
        reasons: bool = True,
    ) -> pd.DataFrame:
        """Top-k for many pairs (a frame with user_a, user_b, or [(a, b), ...]): BATCH_COLUMNS
        plus `reason`, each pair's rows equal to what `pair` returns for it, in order.

        The filters are computed once; pairs are scored `batch_size` at a time.
        """
        request = check_request(k, aggregate, pairs, batch_size=batch_size, rank_by=rank_by)
        ids = request.pairs
        assert ids is not None
        users = self.index.user_indices(ids, numbered=True)
        scores = self._scores(request.aggregate, request.rank_by, filters)
        parts = []
        for start in range(0, len(users), request.batch_size):
            best = best_unseen(
                scores, self.index, users[start : start + request.batch_size], request.k
            )
            row, col = np.nonzero(best.movie >= 0)
            values = {
                "user_a": ids[start + row, 0],
                "user_b": ids[start + row, 1],
                "rank": col + 1,
                "pair_rating": best.pair[row, col],
                "rating_a": best.rating_a[row, col],
                "rating_b": best.rating_b[row, col],
                "score": best.score[row, col],
            }
            parts.append(result_frame(self.index, best.movie[row, col], BATCH_COLUMNS, values))
        frame = pd.concat(parts, ignore_index=True)
        frame.attrs.update(
            aggregate=request.aggregate, pair_head=request.aggregate == self.model.target
        )
        if reasons:
            frame = self._explain_pairs(frame)
        return frame

    def group(
        self,
        users: Sequence[Any],
        k: int = 10,
        aggregate: str = "mean",
        rank_by: str | None = None,
        filters: Mapping[str, Any] | None = None,
        reasons: bool = True,
    ) -> pd.DataFrame:
        """Top-k unseen movies for 2..6 users of the data set; two are a `pair`.

        Three or more: GROUP_COLUMNS (the group's rating, the ranking score, the least happy
        member's rating), one `rating_<id>` column per member in the order given (the
        ranking ignores that order), and `reason`.
        """
        ids = check_members(list(users))
        if len(ids) == 2:
            return self.pair(
                *ids, k=k, aggregate=aggregate, rank_by=rank_by, filters=filters, reasons=reasons
            )
        members = self.index.user_indices(np.array(ids))
        frame = self._group(members, ids, k, aggregate, rank_by, filters)
        if reasons:
            frame = self._explain(frame, [self._rater(i) for i in ids])
        return frame

    def people(
        self,
        people: Sequence[NewRatings],
        users: Sequence[Any] = (),
        k: int = 10,
        aggregate: str = "mean",
        rank_by: str | None = None,
        filters: Mapping[str, Any] | None = None,
        reasons: bool = True,
    ) -> pd.DataFrame:
        """Top-k for people who are not in the data (their exports, or movies they picked and
        rated), with `users` of the data set beside them: 2..6 in all.

        They are folded into a copy of the model for this call (`model.fold_in`); the
        table is a pair's (two in all) or a group's, labelled by each person's `label`.
        """
        k, how, rank_by = check_k(k), check_aggregate(aggregate), check_rank_by(rank_by)
        ids = [as_user_id(u) for u in users]
        if not 2 <= len(ids) + len(people) <= MAX_GROUP:
            raise UsageError(
                f"a pair or group is 2 to {MAX_GROUP} people: got {len(ids)} user id(s) and "
                f"{len(people)} new people"
            )
        if len(set(ids)) < len(ids):
            raise UsageError(f"user {ids[0]} is named twice: a pair needs two people")
        known = self.index.user_indices(np.array(ids, dtype=np.int64)).tolist()
        folded = self.model.fold_in(self.dataset, people)
        labels: list[Any] = ids + [
            getattr(p, "label", f"person {i + 1}") for i, p in enumerate(people)
        ]
        if len(set(map(str, labels))) < len(labels):  # the same file twice: tell them apart
            labels = [f"{label} ({i + 1})" for i, label in enumerate(labels)]
        served = self._sibling(folded.model, self.index.with_people(folded.seen))
        members = known + folded.users.tolist()
        if len(members) == 2:
            frame = served._pair(np.asarray(members), labels, k, how, rank_by, filters)
        else:
            frame = served._group(np.asarray(members), labels, k, how, rank_by, filters)
        if reasons:
            raters: list[Rater | Liking] = [self._rater(i) for i in ids]
            raters += [
                Rater(str(label), p.movies, p.ratings)
                for label, p in zip(labels[len(ids) :], people, strict=True)
            ]
            frame = self._explain(frame, raters)
        return frame

    def recommend(
        self,
        members: Sequence[Any],
        k: int = 10,
        aggregate: str = "mean",
        rank_by: str | None = None,
        filters: Mapping[str, Any] | None = None,
        reasons: bool = True,
    ) -> pd.DataFrame:
        """2..6 members, each a user id of the data set or a new person (`NewRatings`): a
        pair, a group or people, whichever they are."""
        new = [m for m in members if not _is_user_id(m)]
        ids = [m for m in members if _is_user_id(m)]
        options = dict(k=k, aggregate=aggregate, rank_by=rank_by, filters=filters, reasons=reasons)
        if new:
            return self.people(new, ids, **options)  # type: ignore[arg-type]
        return self.group(ids, **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ helpers for callers

    def person(self, label: str, ratings: Sequence[tuple[Any, Any]]) -> NewPerson:
        """A new person from (movieId, rating) picks, e.g. rated on a page; UsageError naming
        the first unknown movieId, a rating off the data set's scale, or a movie twice."""
        low, high = self.dataset.rating_range
        lookup = self.index.movie_lookup
        movies, values = [], []
        for position, (movie_id, rating) in enumerate(ratings, start=1):
            try:
                movie = lookup[int(movie_id)]
            except (KeyError, TypeError, ValueError):
                raise UsageError(
                    f"{label}: rating #{position}: unknown movieId {movie_id!r}"
                ) from None
            if isinstance(rating, bool) or not isinstance(rating, int | float):
                raise UsageError(f"{label}: rating #{position} must be a number, got {rating!r}")
            if not low <= float(rating) <= high:
                raise UsageError(
                    f"{label}: rating #{position} is {rating}, outside {low:g}..{high:g}"
                )
            movies.append(movie)
            values.append(float(rating))
        if not movies:
            raise UsageError(f"{label}: no ratings (rate a few movies first)")
        if len(set(movies)) < len(movies):
            raise UsageError(f"{label}: a movie is rated twice")
        return NewPerson(label, np.array(movies, dtype=np.int64), np.array(values))

    def search(self, query: Any, limit: int = 10) -> pd.DataFrame:
        """Catalogue titles containing `query` (movieId, title, year, genres, n_ratings), the
        likeliest first (`duorec.serving.index.search_titles`)."""
        found = search_titles(self.index, query, limit)
        frame = result_frame(self.index, found, ["movieId", "title", "year", "genres"], {})
        frame["n_ratings"] = self.index.rating_counts[found]
        return frame

    # ------------------------------------------------------------------ internals

    def _sibling(self, model: PairRatingModule, index: ServingIndex) -> Recommender:
        """This recommender over a folded-in copy of the model and an index that knows the new
        people: the catalogue side (towers, explainer) is shared, not recomputed."""
        other = object.__new__(Recommender)
        other.__dict__.update(self.__dict__)
        other.model, other.index = model, index
        other.user_vectors = None  # the held table does not know the new people
        return other

    def _scores(
        self, how: str, rank_by: str | None, filters: Mapping[str, Any] | None
    ) -> ModelScores:
        return ModelScores(
            self.model,
            how,
            allowed_movies(self.index, filters),
            self.movie_vectors,
            rank_by,
            self.watch_vectors,
            self.user_vectors,
        )

    def _pair(
        self,
        users: np.ndarray,
        labels: Sequence[Any],
        k: int,
        how: str,
        rank_by: str | None,
        filters: Mapping[str, Any] | None,
    ) -> pd.DataFrame:
        """One pair of user indices (folded-in people included), shown as `labels`."""
        users = np.asarray(users, dtype=np.int64).reshape(1, 2)
        if users[0, 0] == users[0, 1]:
            raise UsageError(f"the two people are the same ({labels[0]}): a pair needs two people")
        best = best_unseen(self._scores(how, rank_by, filters), self.index, users, k)
        found = best.movie[0] >= 0
        movies = best.movie[0][found]
        if len(movies) < k:
            log.warning("only %d unseen movies qualify for %s (k=%d)", len(movies), list(labels), k)
        values = {
            "rank": np.arange(1, len(movies) + 1),
            "pair_rating": best.pair[0][found],
            "rating_a": best.rating_a[0][found],
            "rating_b": best.rating_b[0][found],
            "score": best.score[0][found],
        }
        frame = result_frame(self.index, movies, SINGLE_COLUMNS, values)
        frame.attrs.update(
            user_a=labels[0],
            user_b=labels[1],
            aggregate=how,
            pair_head=how == self.model.target,
            rank_by=rank_by or self.model.rank_by,
        )
        return frame

    def _group(
        self,
        members: np.ndarray,
        labels: Sequence[Any],
        k: Any,
        aggregate: Any,
        rank_by: Any,
        filters: Mapping[str, Any] | None,
    ) -> pd.DataFrame:
        """One group of member indices (folded-in people included), each named by `labels`.

        `lowest` is the least happy member's predicted rating of each movie, and
        `frame.attrs["lowest"]` the lowest of them in the whole list (who, for which movie):
        how badly the list treats its least happy member.
        """
        k, how, rank_by = check_k(k), check_aggregate(aggregate), check_rank_by(rank_by)
        allowed = allowed_movies(self.index, filters)
        best = best_for_group(
            self.model,
            self.index,
            members,
            k,
            how,
            rank_by,
            allowed,
            self.movie_rows,
            self.watch_vectors,
        )
        values: dict[str, Any] = {
            "rank": np.arange(1, len(best.movie) + 1),
            "group_rating": best.rating,
            "score": best.score,
            "lowest": best.each.min(axis=1) if len(best.movie) else np.zeros(0, np.float32),
        }
        for j, label in enumerate(labels):
            values[member_column(label)] = best.each[:, j]
        columns = [*GROUP_COLUMNS, *(member_column(label) for label in labels)]
        frame = result_frame(self.index, best.movie, columns, values)
        lowest = None
        if len(best.movie):
            row, col = np.unravel_index(int(np.argmin(best.each)), best.each.shape)
            lowest = {
                "rating": float(best.each[row, col]),
                "user": labels[col],
                "title": str(frame["title"].iloc[row]),
            }
        frame.attrs.update(
            users=list(labels),
            aggregate=how,
            group_head=best.own_head and self.model.has_group_head,
            rank_by=rank_by or self.model.rank_by,
            lowest=lowest,
        )
        return frame

    @cached_property
    def explainer(self) -> Explainer:
        """The reasons' catalogue side (names, genres, movie vectors), built on first use."""
        return Explainer(self.dataset.catalog, self.dataset.rating_range, self.movie_rows)

    @cached_property
    def _ratings_by_user(self) -> dict[int, np.ndarray]:
        return self.dataset.ratings.groupby("user").indices

    def _rater(self, user_id: int) -> Liking:
        """A data set user as reasons read them: every rating they gave, whatever the split;
        kept, so a person asked about again costs a lookup (the data set does not change)."""
        if user_id not in self._likings:
            user = int(self.index.user_indices(np.array([user_id], dtype=np.int64))[0])
            mine = self.dataset.ratings.iloc[self._ratings_by_user.get(user, [])]
            rater = Rater(
                f"user {user_id}",
                mine["movie"].to_numpy(np.int64),
                mine["rating"].to_numpy(np.float64),
            )
            self._likings[user_id] = self.explainer.liking(rater)
        return self._likings[user_id]

    def _movie_indices(self, frame: pd.DataFrame) -> np.ndarray:
        return self.index.movie_lookup_array(frame["movieId"].to_numpy())

    def _explain(self, frame: pd.DataFrame, raters: list[Rater | Liking]) -> pd.DataFrame:
        """The frame with a `reason` column for these people (`duorec.reasons`)."""
        frame = frame.copy()
        frame["reason"] = self.explainer.explain(self._movie_indices(frame), raters)
        return frame

    def _explain_pairs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A batch frame with a `reason` column: each pair's picks explained from its two
        people's ratings, as `pair` does (each person's liking built once, `_rater`)."""
        movies = self._movie_indices(frame)
        reasons = np.empty(len(frame), dtype=object)
        for (a, b), rows in frame.groupby(["user_a", "user_b"], sort=False).indices.items():
            people = [self._rater(int(a)), self._rater(int(b))]
            reasons[rows] = self.explainer.explain(movies[rows], people)
        frame = frame.copy()
        frame["reason"] = reasons
        return frame


def _is_user_id(member: Any) -> bool:
    return isinstance(member, int | np.integer | str) and not isinstance(member, bool)


def _label(person: Any, position: int) -> str:
    """What a new person is called in the table: their label, else "person N"."""
    return str(getattr(person, "label", None) or f"person {position + 1}")
