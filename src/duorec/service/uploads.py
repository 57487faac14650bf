"""Bounded request bodies and uploads streamed to a temporary folder.

Anyone who can reach the port can send anything, so nothing is read whole before it is
known to be small enough:

* `BodyLimit` (ASGI middleware) refuses a request whose Content-Length is over the limit of
  its path before reading a byte of it, and stops one without a Content-Length (chunked) as
  soon as it has sent more than that: a 200 MB upload costs the server nothing.
* `read_form` parses a multipart upload as it arrives (python-multipart's streaming parser,
  the one Starlette uses), writing each file part straight into the request's
  `tempfile.TemporaryDirectory` under a name of our own (never the client's file name), each
  capped at `people_limits.max_file_mb`; the one other field, `request` (the JSON), is kept in
  memory up to a small cap. Starlette's own `request.form()` would spool files to the system
  temp folder with no per-file cap.

What happens to a file after that is `duorec.data.exports.read_person`'s: read within
`ReadLimits` (a zip's members unzipped in chunks up to `max_unzipped_mb`, unsafe member names
refused), parsed as CSV, never unpickled or executed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duorec.data.exports import MB, ReadLimits
from duorec.service.errors import ApiError, error_response

REQUEST_FIELD = "request"  # the form field holding the JSON request


class TooLarge(HTTPException):
    """A body over its limit: a 413 whose message names the field (`body`)."""

    def __init__(self, message: str):
        super().__init__(status_code=413, detail=message)
        self.field = "body"


class BodyLimit:
    """Refuse request bodies over `limit_for(path)` bytes: by Content-Length before reading,
    or while streaming when there is none (or it lies)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared == -1 or (declared is not None and declared > limit):
            what = "an unreadable Content-Length" if declared == -1 else f"{declared:,} bytes"
            # answered without reading the body; uvicorn discards what the client still sends
            # (its keep-alive timeout ends a client that never stops)
            response = error_response("body", _too_large(what, limit), 413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(_too_large(f"more than {limit:,} bytes", limit))
            return message

        await self.app(scope, limited, send)


def _too_large(what: str, limit: int) -> str:
    return f"the request body is {what}; this endpoint takes at most {_size(limit)}: refused"


def _size(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n / 1024:g} KB"


def _content_length(scope: Scope) -> int | None:
    """The declared body size, None when absent, -1 when unreadable."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 19 else -1
    return None


# ---------------------------------------------------------------------------- multipart


@dataclass
class Upload:
    """One uploaded file: its form field, the client's file name (for messages only) and
    where its bytes are, inside the request's temporary folder."""

    field: str
    filename: str
    path: Path
    size: int = 0


@dataclass
class Form:
    request: bytes | None = None
    files: dict[str, Upload] = field(default_factory=dict)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    upload: Upload | None = None
    handle: IO[bytes] | None = None
    data: bytearray = field(default_factory=bytearray)


class _FormReader:
    """python-multipart callbacks writing file parts to `folder`, every size capped."""

    def __init__(self, folder: Path, limits: ReadLimits, max_files: int, max_field: int):
        self.folder = folder
        self.limits = limits
        self.file_cap = int(limits.max_file_mb * MB)
        self.max_files = max_files
        self.max_field = max_field
        self.form = Form()
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.error: ApiError | None = None

    def callbacks(self) -> dict[str, Callable[..., Any]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.header_name.lower()] = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        disposition = self.part.headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        if name is None:
            raise ApiError("body", "a form part has no name (Content-Disposition: name=...)", 400)
        self.part.name = _safe_name(name.decode("utf-8", "replace"))
        if self.part.name in self.form.files or (
            self.part.name == REQUEST_FIELD and self.form.request is not None
        ):
            raise ApiError(self.part.name, "sent twice in one form", 422)
        if b"filename" not in options:
            if self.part.name != REQUEST_FIELD:
                raise ApiError(
                    self.part.name,
                    f"is not a field of this form: send '{REQUEST_FIELD}' (the JSON) and "
                    "one file per member that names it",
                    422,
                )
            return
        if self.part.name == REQUEST_FIELD:
            raise ApiError(REQUEST_FIELD, "must be the JSON text, not a file", 422)
        if len(self.form.files) >= self.max_files:
            raise ApiError("body", f"more than {self.max_files} files in one request", 422)
        filename = _safe_filename(options[b"filename"].decode("utf-8", "replace"))
        path = self.folder / f"upload-{len(self.form.files) + 1}"
        upload = Upload(self.part.name, filename, path)
        self.part.upload = upload
        self.part.handle = path.open("xb")  # our own name, inside the request's folder
        self.form.files[self.part.name] = upload

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        upload = self.part.upload
        if upload is None:
            if len(self.part.data) + len(chunk) > self.max_field:
                raise ApiError(
                    self.part.name, f"more than {_size(self.max_field)} of JSON: refused", 413
                )
            self.part.data.extend(chunk)
            return
        upload.size += len(chunk)
        if upload.size > self.file_cap:
            raise ApiError(
                upload.field,
                f"{upload.filename}: " + self.limits.refusal("max_file_mb", "the upload holds"),
                413,
            )
        assert self.part.handle is not None
        self.part.handle.write(chunk)

    def on_part_end(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()
            self.part.handle = None
        elif self.part.name == REQUEST_FIELD:
            self.form.request = bytes(self.part.data)

    def close(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()


async def read_form(
    request: Request, folder: Path, limits: ReadLimits, max_files: int, max_field: int
) -> Form:
    """The multipart form of `request`: its JSON field and its files, written into `folder`
    as they arrive; ApiError (413 for sizes) naming the field otherwise."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise ApiError(
            "body",
            "send multipart/form-data: a 'request' field (the JSON) and the files",
            415,
        )
    reader = _FormReader(folder, limits, max_files, max_field)
    parser = MultipartParser(options[b"boundary"], reader.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (ApiError, HTTPException):
        raise
    except Exception as err:  # python-multipart's parse errors: malformed input
        raise ApiError(
            "body", f"not valid multipart/form-data ({type(err).__name__})", 400
        ) from None
    finally:
        reader.close()
    if reader.form.request is None:
        raise ApiError(
            REQUEST_FIELD,
            f"missing: send the JSON request in a form field named '{REQUEST_FIELD}'",
            422,
        )
    return reader.form


def _safe_name(name: str) -> str:
    """A form field name as it may be quoted back: printable, at most 40 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "?", name)[:40]
    return cleaned or "?"


def _safe_filename(name: str) -> str:
    """The client's file name, only to be shown: its last path part, printable, short."""
    base = re.split(r"[\\/]", name)[-1]
    cleaned = "".join(c if c.isprintable() else "?" for c in base).strip()[:80]
    return cleaned or "upload"
