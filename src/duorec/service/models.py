"""The JSON the service reads and writes, as pydantic models: they are the OpenAPI schema at
`/docs`, and every field a request gets wrong is named by its path (`members[1].user`).

A request names 2-6 members, each one of: a user id of the data set (`{"user": 42}`), movies
picked and rated on the page (`{"label": "Ana", "ratings": [{"movie": 1, "rating": 4.5}]}`),
or, on the upload endpoint only, an uploaded export named by its form field
(`{"file": "alice"}`). Unknown keys are refused rather than ignored, so a misspelt option
(`"agregate"`) is a 422 naming it instead of a silently default answer.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from duorec.data.groups import MAX_GROUP

MAX_RATINGS = 5000  # picks per person: a page never sends more; an export is an upload
MAX_EXCLUDE = 1000  # "not for us" presses a page can send back
MAX_K = 100
LABEL_MAX = 60
# a form field naming an uploaded file: plain, so it can be quoted back in a message safely
FIELD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class Strict(BaseModel):
    """Unknown keys are an error naming the key (`extra="forbid"`)."""

    model_config = ConfigDict(extra="forbid")


class Rating(Strict):
    """One movie picked on the page and its rating on the data set's scale."""

    movie: int = Field(description="movieId of the data set (from /api/search)")
    rating: float = Field(description="on the data set's scale (GET /api/info: rating_range)")


class Member(Strict):
    """One person of the pair or group: exactly one of `user`, `ratings`, `file`."""

    user: int | None = Field(None, description="a user id of the data set")
    ratings: list[Rating] | None = Field(
        None, max_length=MAX_RATINGS, description="movies this person picked and rated"
    )
    file: str | None = Field(
        None,
        description="upload endpoint only: the form field holding this person's export",
        max_length=40,
    )
    label: str | None = Field(
        None,
        max_length=LABEL_MAX,
        description="how this person is shown (default: from the file name, 'person N')",
    )

    @field_validator("label")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())  # no newlines or tabs in a label shown in a table
        return value or None

    @field_validator("file")
    @classmethod
    def _field_name(cls, value: str | None) -> str | None:
        if value is not None and not FIELD_NAME.match(value):
            raise ValueError("must be a form field name of letters, digits, '_' or '-'")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Member:
        given = [name for name in ("user", "ratings", "file") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of user, ratings or file"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class Filters(Strict):
    """What the picks must be (all optional): any of `genres`, released from `min_year`, at
    most `max_runtime` minutes, none of `exclude` (movies the people turned down)."""

    genres: list[str] | None = Field(None, max_length=50)
    min_year: int | None = Field(None, ge=1800, le=2200)
    max_runtime: float | None = Field(None, gt=0, le=10000)
    exclude: list[int] | None = Field(None, max_length=MAX_EXCLUDE)


class RecommendRequest(Strict):
    """A recommendation for 2-6 people."""

    members: list[Member] = Field(min_length=2, max_length=MAX_GROUP)
    k: int = Field(10, ge=1, le=MAX_K, description="how many picks")
    aggregate: Literal["mean", "min", "max"] = Field(
        "mean", description="the group's rating: mean, min (least misery), max (most pleasure)"
    )
    rank_by: Literal["score", "watch", "rating"] | None = Field(
        None, description="what orders the list; null: the model's own (score)"
    )
    filters: Filters | None = None


# ---------------------------------------------------------------------------- answers


class MemberOut(BaseModel):
    """A member as the answer names them, in the order the request gave."""

    label: str
    kind: Literal["user", "ratings", "file"]
    user: int | None = None
    rated: int = Field(description="movies this person rated (what the picks avoid)")
    report: str | None = Field(None, description="an upload: how its films matched the catalogue")
    not_found: list[str] = Field(default_factory=list, description="an upload's unmatched films")


class Pick(BaseModel):
    """One recommended movie: the group's predicted rating, each member's, and why."""

    rank: int
    movieId: int
    title: str
    year: int | None
    genres: list[str]
    imdb_rating: float | None
    group_rating: float = Field(description="the pair's / group's predicted rating")
    score: float = Field(description="what the list is ordered by")
    lowest: float = Field(description="the least happy member's predicted rating")
    ratings: list[float] = Field(description="each member's predicted rating, as in members")
    reason: str


class Lowest(BaseModel):
    """How badly the list treats its least happy member."""

    rating: float
    member: int = Field(description="index into members")
    title: str


class RecommendResponse(BaseModel):
    dataset: str
    kind: Literal["pair", "group"]
    aggregate: str
    rank_by: str
    members: list[MemberOut]
    picks: list[Pick]
    lowest: Lowest | None
    took_ms: float


class Movie(BaseModel):
    movieId: int
    title: str
    year: int | None
    genres: list[str]
    n_ratings: int


class SearchResponse(BaseModel):
    query: str
    movies: list[Movie]


class Info(BaseModel):
    """What the page needs to build its form."""

    dataset: str
    source: str
    rating_range: tuple[float, float]
    rating_step: float
    genres: list[str]
    users: int
    movies: int
    example_users: list[int]
    min_picks: int
    max_members: int
    max_file_mb: float


class Health(BaseModel):
    status: Literal["ok"]
    dataset: str
    source: str


class ErrorBody(BaseModel):
    """Every refusal: one line that starts with the field it is about."""

    error: str = Field(description="one line, e.g. 'members[1].user: unknown user id 99999 ...'")
    field: str | None = Field(description="the field the error is about, e.g. members[1].user")
