"""Every refusal as one JSON line naming the field: `{"error": "members[1].user: ...",
"field": "members[1].user"}` with a 4xx status.

A person at the page (or a script) fixes the field the message starts with; a traceback or
FastAPI's default list of pydantic errors would tell them neither. Nothing a request sends
ends the process: the handlers below turn every failure into an answer, a bug into a 500
with one line (and a traceback in the server's log, not in the answer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("duorec.serve")

MAX_MESSAGE = 500  # characters: a message quotes a value, never a whole upload


class ApiError(Exception):
    """A request the service refuses: the field it is about, one line, a 4xx status."""

    def __init__(self, field: str | None, message: str, status: int = 422):
        self.field = field
        self.message = message
        self.status = status
        super().__init__(self.line)

    @property
    def line(self) -> str:
        text = self.message if not self.field else f"{self.field}: {self.message}"
        return one_line(text)


def one_line(text: str) -> str:
    """Whitespace (newlines included) folded to single spaces, cut at MAX_MESSAGE."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."


def error_response(field: str | None, message: str, status: int) -> JSONResponse:
    err = ApiError(field, message, status)
    return JSONResponse({"error": err.line, "field": field}, status_code=status)


def field_path(loc: Sequence[Any]) -> str:
    """pydantic's location ('body', 'members', 0, 'user') as members[0].user."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
        if not parts:
            return str(where)
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def validation_line(errors: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """(field, message) of the first pydantic error, '(and N more)' when there are others."""
    first = errors[0]
    field = field_path(first.get("loc", ()))
    message = str(first.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if first.get("type") == "json_invalid":
        field, message = "body", "not valid JSON"
    elif first.get("type") == "extra_forbidden":
        message = "is not a field of this request (check the spelling)"
    elif first.get("type") == "missing":
        message = "is required"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return field, message


def install_handlers(app: FastAPI) -> None:
    """Refusals as one-line JSON: pydantic errors, our own, HTTP errors (404, 405, 413), bugs."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> JSONResponse:
        return error_response(err.field, err.message, err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        field, message = validation_line(err.errors())
        return error_response(field, message, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        field = getattr(err, "field", None)
        if err.status_code == 404 and field is None:
            field, message = "path", f"no such page or endpoint: {request.url.path}"
        elif err.status_code == 405 and field is None:
            field, message = "method", f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(err.detail)
        response = error_response(field, message, err.status_code)
        if err.headers:
            response.headers.update(err.headers)
        return response

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            None, f"internal error ({type(err).__name__}); see the server log", 500
        )
