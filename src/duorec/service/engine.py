"""What the HTTP layer asks of the model: one `Service` per process, built at startup around a
loaded `Recommender`, turning a checked request into the answer's JSON.

Why a layer between the routes and the `Recommender`: the Recommender's errors name values
("unknown user id 99999"), a person at the page needs the field ("members[1].user: ..."), so
each member is checked here on its own before the one ranking call; and the answer is one
normalised shape for pairs and groups alike (`group_rating`, `ratings` in the members' order),
where the Recommender's tables differ (`pair_rating`/`rating_a` vs `group_rating`/`rating_<id>`)
and put user ids ahead of new people.

Ranking runs on one thread of its own (`Service.answer`), one request at a time: two
rankings at once gained nothing on 2 cores (ml-latest-small, 4-person groups: 63 requests/s
with one thread, 65 with two, 64 with three; the reasons and the table are Python, under the
GIL), a single thread keeps memory in one allocator arena, and the event loop goes on reading
requests meanwhile. The Recommender's lazily built parts (title keys, genre matrix, the
reasons' explainer) are built at startup (`_warm`), so the checks that run on the loop only
read them. Uploads are read on `parallel_uploads` threads of their own, since each may hold
`people_limits.max_unzipped_mb` in memory while it is parsed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from duorec.data.errors import DataError
from duorec.data.exports import CatalogMatcher, ReadLimits, read_person
from duorec.data.groups import MAX_GROUP
from duorec.errors import UsageError
from duorec.service.errors import ApiError
from duorec.service.models import RecommendRequest
from duorec.service.uploads import Upload
from duorec.serving.frames import member_column
from duorec.serving.index import allowed_movies
from duorec.serving.recommender import Recommender

NOT_FOUND_SHOWN = 20  # an upload's unmatched films listed in the answer


@dataclass(frozen=True)
class ServiceOptions:
    """The service's own settings (conf/serve.yaml `service`)."""

    min_picks: int = 5  # movies a person picked on the page must rate (their only signal)
    max_json_kb: int = 256  # a JSON request's body
    parallel_uploads: int = 2  # exports parsed at once

    def __post_init__(self) -> None:
        for name in ("min_picks", "max_json_kb", "parallel_uploads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"service.{name}={value!r} is not allowed: expected an integer >= 1"
                )

    @classmethod
    def from_config(cls, block: Any) -> ServiceOptions:
        values = dict(block or {})
        known = {"min_picks", "max_json_kb", "parallel_uploads"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"service.{unknown[0]} is not a setting: expected {', '.join(sorted(known))}"
            )
        return cls(**values)


@dataclass
class _Member:
    """One checked member: what the Recommender gets and how the answer shows it."""

    ranked: Any  # a user id (int) or a new person
    out: dict[str, Any]


class Service:
    """A loaded Recommender and what every request shares, built once."""

    def __init__(
        self,
        recommender: Recommender,
        limits: ReadLimits | None = None,
        options: ServiceOptions | None = None,
    ):
        self.rec = recommender
        self.limits = limits or ReadLimits()
        self.options = options or ServiceOptions()
        self.matcher = CatalogMatcher(recommender.dataset)  # title keys, once
        self.lock = threading.Lock()
        self.reading = threading.BoundedSemaphore(self.options.parallel_uploads)
        self.ranker = ThreadPoolExecutor(1, thread_name_prefix="duorec-rank")
        self.readers = ThreadPoolExecutor(
            self.options.parallel_uploads, thread_name_prefix="duorec-read"
        )
        low, high = recommender.dataset.rating_range
        self.rating_range = (float(low), float(high))
        self.dataset = recommender.name
        self.source = recommender.source or f"a model of {self.dataset}"
        with self.lock:
            self.genre_names = [g for g in recommender.index.genres[0] if g]  # built now
            self._warm()

    def _warm(self) -> None:
        """One search and one recommendation before the first request: the parts the
        Recommender builds on first use (title keys, the reasons' explainer, co-watch
        weights) are built now, not inside someone's request (the first took 90 ms, the next
        10 on ml-latest-small)."""
        ids = np.sort(np.asarray(self.rec.dataset.user_ids))[:2].tolist()
        try:
            self.rec.search("a", 1)
            _ = self.rec.index.movie_lookup
            if len(ids) == 2:
                self.rec.recommend([int(i) for i in ids], k=1)
        except (UsageError, DataError) as err:  # a data set too small to warm: serve anyway
            logging.getLogger("duorec.serve").warning("warm-up skipped: %s", err)

    def close(self) -> None:
        """Stop the ranking and reading threads (the app's shutdown)."""
        self.ranker.shutdown(wait=False, cancel_futures=True)
        self.readers.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ the page's form

    def info(self) -> dict[str, Any]:
        low, high = self.rating_range
        ids = np.sort(np.asarray(self.rec.dataset.user_ids))
        return {
            "dataset": self.dataset,
            "source": self.source,
            "rating_range": (low, high),
            "rating_step": 0.5 if (low * 2) % 2 == 1 else 1.0,
            "genres": [g for g in self.genre_names if g != "(no genres listed)"],
            "users": int(self.rec.index.n_users),
            "movies": int(self.rec.index.n_movies),
            "example_users": [int(u) for u in ids[:5]],
            "min_picks": self.options.min_picks,
            "max_members": MAX_GROUP,
            "max_file_mb": float(self.limits.max_file_mb),
        }

    def search(self, query: str, limit: int) -> dict[str, Any]:
        try:
            frame = self.rec.search(query, limit)
        except UsageError as err:
            raise ApiError("q", str(err)) from None
        movies = [
            {
                "movieId": int(row.movieId),
                "title": str(row.title),
                "year": _int_or_none(row.year),
                "genres": _genres(row.genres),
                "n_ratings": int(row.n_ratings),
            }
            for row in frame.itertuples(index=False)
        ]
        return {"query": query, "movies": movies}

    # ------------------------------------------------------------------ recommend

    def recommend(
        self, request: RecommendRequest, uploads: Mapping[str, Upload] | None = None
    ) -> dict[str, Any]:
        """The answer to a checked request (uploads: the files of its form, by field), in the
        calling thread."""
        start = time.perf_counter()
        return self.rank(request, self.check(request, uploads), start)

    async def answer(
        self, request: RecommendRequest, uploads: Mapping[str, Upload] | None = None
    ) -> dict[str, Any]:
        """`recommend` for the event loop: uploads read on the reading threads, the ranking
        on the one ranking thread, so the loop goes on accepting requests meanwhile."""
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        if uploads:
            checked = await loop.run_in_executor(self.readers, self.check, request, uploads)
        else:
            checked = self.check(request, None)  # ids and picks: microseconds
        return await loop.run_in_executor(self.ranker, self.rank, request, checked, start)

    def check(
        self, request: RecommendRequest, uploads: Mapping[str, Upload] | None
    ) -> tuple[list[_Member], dict[str, Any] | None]:
        """Every member (uploads read and matched) and the filters, each error naming its
        field: (members, filters as the Recommender takes them)."""
        uploads = dict(uploads or {})
        referred = {m.file for m in request.members if m.file is not None}
        for name in uploads:
            if name not in referred:
                raise ApiError(name, "an uploaded file no member names (members[i].file)")
        return self._members(request, uploads), self._filters(request)

    def rank(
        self,
        request: RecommendRequest,
        checked: tuple[list[_Member], dict[str, Any] | None],
        start: float,
    ) -> dict[str, Any]:
        """The one Recommender call and the answer built from its table."""
        members, filters = checked
        options = dict(k=request.k, aggregate=request.aggregate, rank_by=request.rank_by)
        try:
            with self.lock:
                frame = self.rec.recommend([m.ranked for m in members], filters=filters, **options)
        except (UsageError, DataError) as err:
            raise ApiError("members", str(err)) from None
        answer = self._answer(frame, request, members)
        answer["took_ms"] = round((time.perf_counter() - start) * 1000, 2)
        return answer

    def _members(self, request: RecommendRequest, uploads: Mapping[str, Upload]) -> list[_Member]:
        members: list[_Member] = []
        users: dict[int, int] = {}
        labels: set[str] = set()
        for i, member in enumerate(request.members):
            where = f"members[{i}]"
            if member.user is not None:
                uid = int(member.user)
                if uid in users:
                    raise ApiError(
                        f"{where}.user",
                        f"user {uid} is already members[{users[uid]}]: each member is someone else",
                    )
                try:
                    (index,) = self.rec.index.user_indices(np.array([uid], dtype=np.int64))
                except UsageError as err:
                    raise ApiError(f"{where}.user", str(err)) from None
                users[uid] = i
                seen = self.rec.index.seen
                rated = int(seen.indptr[index + 1] - seen.indptr[index])
                label = _unique(member.label or f"user {uid}", labels)
                out = {"label": label, "kind": "user", "user": uid, "rated": rated}
                members.append(_Member(uid, out))
            elif member.ratings is not None:
                label = _unique(member.label or f"person {i + 1}", labels)
                if len(member.ratings) < self.options.min_picks:
                    raise ApiError(
                        f"{where}.ratings",
                        f"rate at least {self.options.min_picks} movies (got "
                        f"{len(member.ratings)})",
                    )
                picks = [(r.movie, r.rating) for r in member.ratings]
                try:
                    person = self.rec.person(label, picks)
                except UsageError as err:
                    raise ApiError(f"{where}.ratings", str(err)) from None
                out = {"label": label, "kind": "ratings", "rated": len(person.movies)}
                members.append(_Member(person, out))
            else:
                assert member.file is not None
                upload = uploads.get(member.file)
                if upload is None:
                    raise ApiError(
                        f"{where}.file",
                        f"no file was uploaded in a form field named {member.file!r}",
                    )
                stem = upload.filename.rsplit(".", 1)[0] if "." in upload.filename else None
                label = _unique(member.label or stem or upload.filename, labels)
                with self.reading:
                    try:
                        person = read_person(upload.path, self.matcher, label, self.limits)
                    except DataError as err:
                        line = f"line {err.line}: " if err.line is not None else ""
                        raise ApiError(
                            f"{where}.file", f"{upload.filename}: {line}{err.problem}"
                        ) from None
                report = person.report(limit=0).splitlines()[0]
                out = {
                    "label": label,
                    "kind": "file",
                    "rated": len(person.movies),
                    "report": report.replace(f"{upload.path.name}", upload.filename),
                    "not_found": [str(t) for t in person.unmatched[:NOT_FOUND_SHOWN]],
                }
                members.append(_Member(person, out))
        return members

    def _filters(self, request: RecommendRequest) -> dict[str, Any] | None:
        """The filters as the Recommender takes them, checked here so an error names its key."""
        if request.filters is None:
            return None
        filters = request.filters.model_dump(exclude_none=True)
        if not filters:
            return None
        for key in ("genres", "exclude", "min_year", "max_runtime"):
            if key not in filters:
                continue
            try:
                allowed_movies(self.rec.index, {key: filters[key]})
            except UsageError as err:
                raise ApiError(f"filters.{key}", _without(str(err), f"filters.{key}: ")) from None
        try:
            allowed_movies(self.rec.index, filters)
        except UsageError as err:
            raise ApiError("filters", str(err)) from None
        return filters

    def _answer(
        self, frame: pd.DataFrame, request: RecommendRequest, members: list[_Member]
    ) -> dict[str, Any]:
        """The normalised answer: one shape for a pair and a group, ratings in request order.

        The Recommender lists user ids ahead of new people (its tables' member columns come in
        that order); `order[j]` is the request position of its j-th member.
        """
        is_id = [isinstance(m.ranked, int) for m in members]
        order = [i for i, x in enumerate(is_id) if x] + [i for i, x in enumerate(is_id) if not x]
        n = len(members)
        if "pair_rating" in frame:
            group = frame["pair_rating"].to_numpy(np.float64)
            columns = [
                frame["rating_a"].to_numpy(np.float64),
                frame["rating_b"].to_numpy(np.float64),
            ]
        else:
            group = frame["group_rating"].to_numpy(np.float64)
            labels = frame.attrs["users"]
            columns = [frame[member_column(label)].to_numpy(np.float64) for label in labels]
        each = np.zeros((len(frame), n))
        for j, values in enumerate(columns):
            each[:, order[j]] = values
        lowest = each.min(axis=1) if n else np.zeros(len(frame))
        picks = []
        for r, row in enumerate(frame.itertuples(index=False)):
            picks.append(
                {
                    "rank": int(row.rank),
                    "movieId": int(row.movieId),
                    "title": str(row.title),
                    "year": _int_or_none(row.year),
                    "genres": _genres(row.genres),
                    "imdb_rating": _float_or_none(row.imdb_rating, 1),
                    "group_rating": round(float(group[r]), 4),
                    "score": round(float(row.score), 4),
                    "lowest": round(float(lowest[r]), 4),
                    "ratings": [round(float(v), 4) for v in each[r]],
                    "reason": str(row.reason),
                }
            )
        worst = None
        if picks:
            r, m = np.unravel_index(int(np.argmin(each)), each.shape)
            worst = {
                "rating": round(float(each[r, m]), 4),
                "member": int(m),
                "title": picks[r]["title"],
            }
        return {
            "dataset": self.dataset,
            "kind": "pair" if n == 2 else "group",
            "aggregate": str(frame.attrs.get("aggregate", request.aggregate)),
            "rank_by": str(frame.attrs.get("rank_by") or request.rank_by or "score"),
            "members": [m.out for m in members],
            "picks": picks,
            "lowest": worst,
        }


def _unique(label: str, taken: set[str]) -> str:
    """`label`, or `label (2)`, ... when another member is already shown under it."""
    candidate, n = label, 1
    while candidate in taken:
        n += 1
        candidate = f"{label} ({n})"
    taken.add(candidate)
    return candidate


def _without(text: str, prefix: str) -> str:
    return text[len(prefix) :] if text.startswith(prefix) else text


def _genres(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [g for g in str(value).split("|") if g and g != "(no genres listed)"]


def _int_or_none(value: Any) -> int | None:
    if value is None or value is pd.NA:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
        return int(value)
    except (TypeError, ValueError):
        return None


def _float_or_none(value: Any, digits: int) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, digits)
