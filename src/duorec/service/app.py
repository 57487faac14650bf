"""The FastAPI application: the JSON API, its OpenAPI docs and the page.

    GET  /                      the page (static/index.html, app.js, style.css; no CDN)
    GET  /health                {"status": "ok", "dataset", "source"}
    GET  /api/info              what the page's form needs (genres, rating scale, limits)
    GET  /api/search?q=&limit=  catalogue titles containing q, likeliest first
    POST /api/recommend         JSON: 2-6 members by user id or rated picks
    POST /api/recommend/upload  multipart: the same JSON in field `request`, plus one file
                                field per member that names it ({"file": "alice"})
    GET  /docs, /openapi.json   the API's schema (Swagger UI's own files come from its CDN)

`create_app` takes a loaded `Recommender`: the model and its index are built once, by the
caller (`duorec.serve`, or a test), never per request.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duorec.data.exports import MB, ReadLimits
from duorec.data.groups import MAX_GROUP
from duorec.service.engine import Service, ServiceOptions
from duorec.service.errors import ApiError, install_handlers, validation_line
from duorec.service.models import (
    ErrorBody,
    Health,
    Info,
    RecommendRequest,
    RecommendResponse,
    SearchResponse,
)
from duorec.service.uploads import REQUEST_FIELD, BodyLimit, read_form
from duorec.serving.index import SEARCH_LIMIT
from duorec.serving.recommender import Recommender

STATIC = Path(__file__).parent / "static"
UPLOAD_PATH = "/api/recommend/upload"
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (400, "malformed body"),
        (413, "body or file over its limit"),
        (415, "not multipart/form-data"),
        (422, "a field is wrong: the message starts with it"),
    )
}
# the page's own files may only load themselves: no inline script, nothing from elsewhere
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


class PageHeaders:
    """Security headers on every answer, and the page's content policy on the page itself
    (not on /docs, whose Swagger UI loads from a CDN)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] == "/" or scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if page:
                    headers.append((b"content-security-policy", PAGE_POLICY.encode()))
                    headers.append((b"x-frame-options", b"DENY"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _closing(service: Service) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the service's threads stopped when the server stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    return lifespan


def create_app(
    recommender: Recommender,
    limits: ReadLimits | None = None,
    options: ServiceOptions | None = None,
) -> FastAPI:
    """The service over a loaded recommender; `limits` bound every upload (`people_limits`)."""
    service = Service(recommender, limits, options)
    json_cap = service.options.max_json_kb * 1024
    upload_cap = int(MAX_GROUP * service.limits.max_file_mb * MB) + json_cap + 64 * 1024

    app = FastAPI(
        title="duorec",
        summary="Movies for pairs and groups of 2-6 people to watch together",
        description=(
            f"Serving {service.source}. Members are user ids of the data set, movies a person "
            "picked and rated, or an uploaded export (IMDb ratings CSV, Letterboxd zip / "
            "ratings.csv / watched.csv, or a CSV of movieId|tconst|title+year and rating). "
            "Every error is one line naming the field."
        ),
        version="1",
        responses=ERRORS,
        lifespan=_closing(service),
    )
    app.state.service = service
    install_handlers(app)
    app.add_middleware(
        BodyLimit, limit_for=lambda path: upload_cap if path == UPLOAD_PATH else json_cap
    )
    app.add_middleware(PageHeaders)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> dict[str, Any]:
        """Alive, and which model and data set it serves."""
        return {"status": "ok", "dataset": service.dataset, "source": service.source}

    @app.get("/api/info", response_model=Info, tags=["service"])
    async def info() -> dict[str, Any]:
        """The data set's genres, rating scale, example user ids and the limits, for a form."""
        return service.info()

    @app.get("/api/search", response_model=SearchResponse, tags=["movies"])
    async def search(
        q: str = Query(min_length=1, max_length=200, description="part of a title"),
        limit: int = Query(10, ge=1, le=SEARCH_LIMIT),
    ) -> dict[str, Any]:
        """Titles containing `q` (accents, case, punctuation and a leading "The" do not
        matter), the most rated first."""
        return service.search(q, limit)

    @app.post("/api/recommend", response_model=RecommendResponse, tags=["recommend"])
    async def recommend(request: RecommendRequest) -> dict[str, Any]:
        """Picks for 2-6 members given by user id or by movies they rated, none of them seen
        by any member; each with the group's and every member's predicted rating and why."""
        for i, member in enumerate(request.members):
            if member.file is not None:
                raise ApiError(
                    f"members[{i}].file", f"files go to POST {UPLOAD_PATH} (multipart/form-data)"
                )
        return await service.answer(request)

    @app.post(
        UPLOAD_PATH,
        response_model=RecommendResponse,
        tags=["recommend"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": [REQUEST_FIELD],
                            "properties": {
                                REQUEST_FIELD: {
                                    "type": "string",
                                    "description": "the RecommendRequest as JSON; a member "
                                    '{"file": "NAME"} is the file in form field NAME',
                                },
                            },
                            "additionalProperties": {"type": "string", "format": "binary"},
                        }
                    }
                },
            }
        },
    )
    async def recommend_upload(http: Request) -> dict[str, Any]:
        """The same as /api/recommend, with members' exports uploaded: IMDb ratings CSV,
        Letterboxd zip / ratings.csv / watched.csv, or a CSV the command line reads. Each file
        is read within `people_limits` and lives only in a temporary folder for this call."""
        with tempfile.TemporaryDirectory(prefix="duorec-upload-") as folder:
            form = await read_form(http, Path(folder), service.limits, MAX_GROUP, json_cap)
            try:
                request = RecommendRequest.model_validate_json(form.request or b"")
            except ValidationError as err:
                field, message = validation_line(err.errors())
                raise ApiError(
                    f"{REQUEST_FIELD}.{field}" if field != "body" else REQUEST_FIELD, message
                ) from None
            return await service.answer(request, form.files)

    return app
