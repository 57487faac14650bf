"""duorec.download against a local HTTP server: no internet needed, everything time-bounded.

The server is a small in-memory handler with real ``Range`` / ``If-Range`` support (the
stdlib SimpleHTTPRequestHandler has none) that records every request, so the tests can assert
what went over the wire, not only what ended up on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from duorec.data.errors import DataError
from duorec.download import (
    DownloadError,
    download_file,
    fetch_imdb,
    fetch_movielens,
    parse_md5,
)

TEST_TIMEOUT_S = 60
NET_TIMEOUT_S = 5.0

RATINGS = (
    "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n2,1,3.5,1445714835\n"
)
MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation\n3,Grumpier Old Men (1995),Comedy\n"
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _time_limit() -> Iterator[None]:
    """Fail a hung test instead of hanging the suite (no pytest-timeout in this env)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"test exceeded {TEST_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Request:
    path: str
    range: str | None
    if_range: str | None
    status: int = 0
    sent: int = 0


@dataclass
class FileServer:
    """In-memory files behind a real socket, with switches for misbehaving servers."""

    port: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    ignore_range: bool = False
    truncate_next_to: int | None = None  # send only this many body bytes once, then hang up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def etag(body: bytes) -> str:
        return '"' + hashlib.md5(body).hexdigest() + '"'


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
            rec = Request(self.path, self.headers.get("Range"), self.headers.get("If-Range"))
            server.requests.append(rec)
            body = server.files.get(self.path)
            if body is None:
                rec.status = 404
                self.send_error(404, "Not Found")
                return
            etag = FileServer.etag(body)
            start, status = 0, 200
            match = re.fullmatch(r"bytes=(\d+)-", rec.range or "")
            if match and not server.ignore_range and rec.if_range in (None, etag):
                start, status = int(match.group(1)), 206
                if start >= len(body):
                    rec.status = 416
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            payload = body[start:]
            rec.status = status
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            if server.truncate_next_to is not None:
                payload, server.truncate_next_to = payload[: server.truncate_next_to], None
            rec.sent = len(payload)  # before writing: the client may finish before we return
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_zip(top: str, files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", "")
        for name, text in files.items():
            zf.writestr(f"{top}/{name}", text)
    return buf.getvalue()


def serve_movielens(
    server: FileServer, name: str, top: str | None = None, md5_style: str = "bsd"
) -> bytes:
    blob = make_zip(top or name, {"ratings.csv": RATINGS, "movies.csv": MOVIES})
    digest = hashlib.md5(blob).hexdigest()
    server.files[f"/movielens/{name}.zip"] = blob
    server.files[f"/movielens/{name}.zip.md5"] = (
        f"MD5 ({name}.zip) = {digest}\n" if md5_style == "bsd" else f"{digest}  {name}.zip\n"
    ).encode()
    return blob


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def leftovers(folder: Path) -> list[str]:
    """Temp dirs, partial files and validators a finished run must not leave behind."""
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or ".part" in p.name)


# --------------------------------------------------------------------------- md5 parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "MD5 (ml-1m.zip) = C4D9EECFCA2AB87C1945AFE126590906\n",
            "c4d9eecfca2ab87c1945afe126590906",
        ),
        ("c4d9eecfca2ab87c1945afe126590906  ml-1m.zip\n", "c4d9eecfca2ab87c1945afe126590906"),
        ("c4d9eecfca2ab87c1945afe126590906 *ml-1m.zip\n", "c4d9eecfca2ab87c1945afe126590906"),
        ("c4d9eecfca2ab87c1945afe126590906\n", "c4d9eecfca2ab87c1945afe126590906"),
        ("MD5 (ml-20m.zip) = c4d9eecfca2ab87c1945afe126590906\n", None),  # another file's md5
        ("<html>not found</html>", None),
    ],
)
def test_parse_md5_accepts_bsd_gnu_and_bare_forms(text: str, expected: str | None) -> None:
    assert parse_md5(text, "ml-1m.zip") == expected


# --------------------------------------------------------------------------- MovieLens


@pytest.mark.parametrize("md5_style", ["bsd", "gnu"])
def test_fetch_movielens_downloads_verifies_and_unpacks(
    server: FileServer, tmp_path: Path, md5_style: str
) -> None:
    serve_movielens(server, "ml-latest-small", md5_style=md5_style)

    out = fetch_movielens(
        "ml-latest-small",
        tmp_path,
        f"{server.url}/movielens",
        progress=False,
        timeout=NET_TIMEOUT_S,
    )

    assert out == tmp_path / "ml-latest-small"
    assert sorted(p.name for p in out.iterdir()) == ["movies.csv", "ratings.csv"]
    assert (out / "ratings.csv").read_text() == RATINGS
    assert (out / "movies.csv").read_text() == MOVIES
    assert [r.path for r in server.requests] == [
        "/movielens/ml-latest-small.zip.md5",
        "/movielens/ml-latest-small.zip",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-latest-small"]  # zip removed
    assert leftovers(tmp_path) == []


def test_single_top_folder_is_renamed_to_dataset_name(server: FileServer, tmp_path: Path) -> None:
    serve_movielens(server, "ml-10m", top="ml-10M100K")

    out = fetch_movielens(
        "ml-10m", tmp_path, f"{server.url}/movielens", progress=False, timeout=NET_TIMEOUT_S
    )

    assert out == tmp_path / "ml-10m"
    assert (out / "ratings.csv").read_text() == RATINGS
    assert not (tmp_path / "ml-10M100K").exists()


def test_rerun_skips_without_touching_the_network(
    server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    serve_movielens(server, "ml-latest-small")
    base = f"{server.url}/movielens"
    fetch_movielens("ml-latest-small", tmp_path, base, progress=False, timeout=NET_TIMEOUT_S)
    n_requests = len(server.requests)
    (tmp_path / "ml-latest-small" / "ratings.csv").write_text("edited by the user\n")

    with caplog.at_level(logging.INFO, logger="duorec.download"):
        out = fetch_movielens(
            "ml-latest-small", tmp_path, base, progress=False, timeout=NET_TIMEOUT_S
        )

    assert len(server.requests) == n_requests
    assert "already present, skipping" in caplog.text
    assert (out / "ratings.csv").read_text() == "edited by the user\n"  # not overwritten


def test_md5_mismatch_raises_and_leaves_nothing_unpacked(
    server: FileServer, tmp_path: Path
) -> None:
    blob_ = serve_movielens(server, "ml-latest-small")
    actual = hashlib.md5(blob_).hexdigest()
    wrong = "0" * 32
    server.files["/movielens/ml-latest-small.zip.md5"] = (
        f"MD5 (ml-latest-small.zip) = {wrong}".encode()
    )

    with pytest.raises(DataError) as info:
        fetch_movielens(
            "ml-latest-small",
            tmp_path,
            f"{server.url}/movielens",
            progress=False,
            timeout=NET_TIMEOUT_S,
        )

    message = str(info.value)
    assert "ml-latest-small.zip" in message
    assert f"expected {wrong}" in message and f"got {actual}" in message
    assert "deleted" in message and "re-run" in message
    assert list(tmp_path.iterdir()) == []  # no folder, no zip, no .part, no temp dir

    # Once the server is fixed, the next run downloads from scratch and succeeds.
    serve_movielens(server, "ml-latest-small")
    server.requests.clear()
    out = fetch_movielens(
        "ml-latest-small",
        tmp_path,
        f"{server.url}/movielens",
        progress=False,
        timeout=NET_TIMEOUT_S,
    )
    assert (out / "ratings.csv").read_text() == RATINGS
    assert all(r.range is None for r in server.requests)


def test_unknown_dataset_is_rejected_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match="^movielens=ml-2k: unknown MovieLens dataset; choose one of: ml-latest-small, ",
    ):
        fetch_movielens("ml-2k", tmp_path, "http://127.0.0.1:9")


# --------------------------------------------------------------------------- resuming


def test_resume_requests_and_appends_only_the_missing_bytes(
    server: FileServer, tmp_path: Path
) -> None:
    data = blob(300_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(data[:120_000])

    download_file(
        f"{server.url}/f.bin",
        dest,
        expected_md5=hashlib.md5(data).hexdigest(),
        timeout=NET_TIMEOUT_S,
    )  # progress bar on: exercises the rich path too

    assert dest.read_bytes() == data
    (req,) = server.requests
    assert req.range == "bytes=120000-"
    assert (req.status, req.sent) == (206, 300_000 - 120_000)
    assert leftovers(tmp_path) == []


def test_server_ignoring_range_still_gives_a_correct_file(
    server: FileServer, tmp_path: Path
) -> None:
    data = blob(200_000)
    server.files["/f.bin"] = data
    server.ignore_range = True
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(data[:50_000])

    download_file(
        f"{server.url}/f.bin",
        dest,
        expected_md5=hashlib.md5(data).hexdigest(),
        progress=False,
        timeout=NET_TIMEOUT_S,
    )

    assert dest.read_bytes() == data  # not the first 50 kB twice
    (req,) = server.requests
    assert req.range == "bytes=50000-"
    assert (req.status, req.sent) == (200, len(data))


def test_dropped_connection_keeps_part_and_next_run_resumes(
    server: FileServer, tmp_path: Path
) -> None:
    data = blob(200_000, seed=1)
    server.files["/f.bin"] = data
    server.truncate_next_to = 70_000
    dest = tmp_path / "f.bin"
    url = f"{server.url}/f.bin"

    with pytest.raises(DownloadError, match=r"after 70000 of 200000 bytes.*re-run to resume"):
        download_file(url, dest, progress=False, timeout=NET_TIMEOUT_S)
    assert not dest.exists()
    assert (tmp_path / "f.bin.part").read_bytes() == data[:70_000]

    download_file(url, dest, progress=False, timeout=NET_TIMEOUT_S)

    assert dest.read_bytes() == data
    assert server.requests[-1].range == "bytes=70000-"
    assert server.requests[-1].if_range == FileServer.etag(data)  # remembered from 1st response
    assert server.requests[-1].sent == 130_000


def test_remote_file_changed_since_partial_download_restarts(
    server: FileServer, tmp_path: Path
) -> None:
    """IMDb rebuilds its dumps daily: yesterday's head + today's tail must never be glued."""
    old, new = blob(100_000, seed=2), blob(100_000, seed=3)
    server.files["/f.bin"] = old
    server.truncate_next_to = 40_000
    dest = tmp_path / "f.bin"
    url = f"{server.url}/f.bin"
    with pytest.raises(DownloadError):
        download_file(url, dest, progress=False, timeout=NET_TIMEOUT_S)

    server.files["/f.bin"] = new
    download_file(url, dest, progress=False, timeout=NET_TIMEOUT_S)

    assert dest.read_bytes() == new
    assert (server.requests[-1].status, server.requests[-1].sent) == (200, len(new))


def test_complete_part_is_finished_without_refetching(server: FileServer, tmp_path: Path) -> None:
    """A run killed after the last byte but before the rename: the server answers 416."""
    data = blob(50_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(data)

    download_file(
        f"{server.url}/f.bin",
        dest,
        expected_md5=hashlib.md5(data).hexdigest(),
        progress=False,
        timeout=NET_TIMEOUT_S,
    )

    assert dest.read_bytes() == data
    assert [(r.status, r.sent) for r in server.requests] == [(416, 0)]


# --------------------------------------------------------------------------- errors


def test_http_404_names_the_url_and_status(server: FileServer, tmp_path: Path) -> None:
    url = f"{server.url}/nope/title.basics.tsv.gz"

    with pytest.raises(DownloadError) as info:
        download_file(url, tmp_path / "x.tsv.gz", progress=False, timeout=NET_TIMEOUT_S)

    assert str(info.value) == f"{url}: HTTP 404 Not Found"
    assert info.value.status == 404
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as sock:  # grab a free port, then close it: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/movielens/ml-1m.zip"

    with pytest.raises(DownloadError, match=rf"^{re.escape(url)}: cannot connect \(.*refused"):
        download_file(url, tmp_path / "ml-1m.zip", progress=False, timeout=NET_TIMEOUT_S)


def test_error_page_served_as_200_is_rejected(server: FileServer, tmp_path: Path) -> None:
    server.files["/imdb/title.ratings.tsv.gz"] = b"<html>maintenance</html>"

    with pytest.raises(DataError, match="does not start with"):
        fetch_imdb(
            tmp_path, f"{server.url}/imdb", ["title.ratings"], progress=False, timeout=NET_TIMEOUT_S
        )
    assert list((tmp_path / "imdb").iterdir()) == []


# --------------------------------------------------------------------------- IMDb


def serve_imdb(server: FileServer, names: list[str]) -> dict[str, bytes]:
    raw = {n: f"tconst\t{n}\ntt0000001\tx\n".encode() for n in names}
    for n, text in raw.items():
        server.files[f"/imdb/{n}.tsv.gz"] = gzip.compress(text, mtime=0)
    return raw


def test_fetch_imdb_keeps_files_gzipped_and_skips_on_rerun(
    server: FileServer, tmp_path: Path
) -> None:
    names = ["title.basics", "title.ratings", "name.basics"]
    raw = serve_imdb(server, names)

    paths = fetch_imdb(
        tmp_path, f"{server.url}/imdb/", names, progress=False, timeout=NET_TIMEOUT_S
    )

    assert paths == [tmp_path / "imdb" / f"{n}.tsv.gz" for n in names]
    for n, path in zip(names, paths, strict=True):
        assert gzip.decompress(path.read_bytes()) == raw[n]
    assert leftovers(tmp_path) == []
    n_requests = len(server.requests)
    assert fetch_imdb(tmp_path, f"{server.url}/imdb", names, progress=False) == paths
    assert len(server.requests) == n_requests


# --------------------------------------------------------------------------- CLI


def run_cli(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "duorec.download", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TEST_TIMEOUT_S - 10,
    )


def test_cli_downloads_movielens_and_imdb_without_littering(
    server: FileServer, tmp_path: Path
) -> None:
    serve_movielens(server, "ml-latest-small")
    names = ["title.basics", "title.ratings", "title.crew", "title.principals", "name.basics"]
    serve_imdb(server, names)
    dest, cwd = tmp_path / "raw", tmp_path / "cwd"

    proc = run_cli(
        cwd,
        "movielens=ml-latest-small",
        "imdb=true",
        f"dest={dest}",
        f"grouplens_url={server.url}/movielens",
        f"imdb_url={server.url}/imdb",
    )

    assert proc.returncode == 0, proc.stderr
    assert (dest / "ml-latest-small" / "ratings.csv").read_text() == RATINGS
    assert sorted(p.name for p in (dest / "imdb").iterdir()) == sorted(f"{n}.tsv.gz" for n in names)
    assert list(cwd.iterdir()) == []  # no outputs/, .hydra/, or log file

    again = run_cli(
        cwd,
        "movielens=ml-latest-small",
        "imdb=true",
        f"dest={dest}",
        f"grouplens_url={server.url}/movielens",
        f"imdb_url={server.url}/imdb",
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already present, skipping") == 6


def test_cli_error_is_one_line_and_exit_status_1(server: FileServer, tmp_path: Path) -> None:
    proc = run_cli(
        tmp_path / "cwd",
        "movielens=null",
        "imdb=true",
        "imdb_files=[title.basics]",
        f"dest={tmp_path / 'raw'}",
        f"imdb_url={server.url}/missing",
    )

    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    url = f"{server.url}/missing/title.basics.tsv.gz"
    assert proc.stderr.strip() == f"duorec.download: error: {url}: HTTP 404 Not Found"


def test_archive_without_published_md5_downloads_with_a_warning(
    server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    serve_movielens(server, "ml-100k")
    del server.files["/movielens/ml-100k.zip.md5"]

    with caplog.at_level(logging.WARNING, logger="duorec.download"):
        out = fetch_movielens(
            "ml-100k", tmp_path, f"{server.url}/movielens", progress=False, timeout=NET_TIMEOUT_S
        )

    assert (out / "movies.csv").read_text() == MOVIES
    assert "no checksum published" in caplog.text


def test_corrupt_archive_is_deleted_and_leaves_no_folder(tmp_path: Path) -> None:
    archive = tmp_path / "ml-1m.zip"
    archive.write_bytes(make_zip("ml-1m", {"ratings.dat": "1::1::5::0\n"})[:-30])  # cut the tail

    with pytest.raises(DataError, match=r"ml-1m\.zip: corrupt zip archive .*re-run"):
        fetch_movielens("ml-1m", tmp_path, "http://127.0.0.1:9", progress=False)
    assert list(tmp_path.iterdir()) == []
