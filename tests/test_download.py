"""duorec.download against a local HTTP server on 127.0.0.1: no internet needed.

The server holds small archives made here and records every request, so the tests can assert
what went over the wire (a re-run fetches nothing), not only what ended up on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
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

from duorec.cli import UsageError
from duorec.data.errors import DataError
from duorec.download import fetch_file, fetch_imdb, fetch_movielens, parse_md5

TEST_TIMEOUT_S = 60
NET = {"timeout": 5.0, "progress": False}

RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n2,1,3.5,1445714835\n"
MOVIES = "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
IMDB_NAMES = ["title.basics", "title.ratings", "title.crew", "title.principals", "name.basics"]


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
class FileServer:
    """In-memory files behind a real socket; ``requests`` lists every path asked for."""

    port: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
    """Serve ``{name}.zip`` and its ``.md5`` the way GroupLens does; return the zip bytes."""
    blob = make_zip(top or name, {"ratings.csv": RATINGS, "movies.csv": MOVIES})
    digest = hashlib.md5(blob).hexdigest()
    server.files[f"/movielens/{name}.zip"] = blob
    server.files[f"/movielens/{name}.zip.md5"] = (
        f"MD5 ({name}.zip) = {digest}\n" if md5_style == "bsd" else f"{digest}  {name}.zip\n"
    ).encode()
    return blob


def serve_imdb(server: FileServer, names: list[str]) -> dict[str, bytes]:
    raw = {n: f"tconst\t{n}\ntt0000001\tx\n".encode() for n in names}
    for n, text in raw.items():
        server.files[f"/imdb/{n}.tsv.gz"] = gzip.compress(text, mtime=0)
    return raw


def tree(folder: Path) -> list[str]:
    """Every path under ``folder``: temp files, hidden unzip dirs and archives included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def closed_port() -> int:
    """A port nothing listens on: grab a free one, then close it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message


# --------------------------------------------------------------------------- md5 listings


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
def test_parse_md5_reads_bsd_gnu_and_bare_forms_for_the_named_file(
    text: str, expected: str | None
) -> None:
    assert parse_md5(text, "ml-1m.zip") == expected


# --------------------------------------------------------------------------- MovieLens


@pytest.mark.parametrize("md5_style", ["bsd", "gnu"])
def test_movielens_is_verified_unpacked_and_the_zip_removed(
    server: FileServer, tmp_path: Path, md5_style: str
) -> None:
    serve_movielens(server, "ml-latest-small", md5_style=md5_style)

    out = fetch_movielens("ml-latest-small", tmp_path, f"{server.url}/movielens", **NET)

    assert out == tmp_path / "ml-latest-small"
    assert (out / "ratings.csv").read_text() == RATINGS
    assert (out / "movies.csv").read_text() == MOVIES
    assert server.requests == [
        "/movielens/ml-latest-small.zip.md5",
        "/movielens/ml-latest-small.zip",
    ]
    assert tree(tmp_path) == [
        "ml-latest-small",
        "ml-latest-small/movies.csv",
        "ml-latest-small/ratings.csv",
    ]


def test_single_top_folder_is_renamed_to_the_dataset_name(
    server: FileServer, tmp_path: Path
) -> None:
    serve_movielens(server, "ml-10m", top="ml-10M100K")

    out = fetch_movielens("ml-10m", tmp_path, f"{server.url}/movielens", **NET)

    assert (out / "ratings.csv").read_text() == RATINGS
    assert tree(tmp_path) == ["ml-10m", "ml-10m/movies.csv", "ml-10m/ratings.csv"]


def test_rerun_sends_no_request_and_keeps_local_files(
    server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    serve_movielens(server, "ml-latest-small")
    base = f"{server.url}/movielens"
    fetch_movielens("ml-latest-small", tmp_path, base, **NET)
    n_requests = len(server.requests)
    (tmp_path / "ml-latest-small" / "ratings.csv").write_text("edited by the user\n")

    with caplog.at_level(logging.INFO, logger="duorec.download"):
        out = fetch_movielens("ml-latest-small", tmp_path, base, **NET)

    assert len(server.requests) == n_requests == 2
    assert "already present, skipping" in caplog.text
    assert (out / "ratings.csv").read_text() == "edited by the user\n"


def test_md5_mismatch_fails_in_one_line_and_leaves_no_target(
    server: FileServer, tmp_path: Path
) -> None:
    actual = hashlib.md5(serve_movielens(server, "ml-latest-small")).hexdigest()
    wrong = "0" * 32
    server.files["/movielens/ml-latest-small.zip.md5"] = f"{wrong}  ml-latest-small.zip".encode()
    base = f"{server.url}/movielens"

    with pytest.raises(DataError) as info:
        fetch_movielens("ml-latest-small", tmp_path, base, **NET)

    message = str(info.value)
    assert_one_line(message)
    assert message.startswith(f"{base}/ml-latest-small.zip: ")
    assert wrong in message and actual in message
    assert tree(tmp_path) == []  # no folder, no zip, no pooch temp file

    serve_movielens(server, "ml-latest-small")  # the server is fixed: the next run succeeds
    out = fetch_movielens("ml-latest-small", tmp_path, base, **NET)
    assert (out / "ratings.csv").read_text() == RATINGS


def test_archive_without_published_md5_is_fetched_with_a_warning(
    server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    serve_movielens(server, "ml-100k")
    del server.files["/movielens/ml-100k.zip.md5"]

    with caplog.at_level(logging.WARNING, logger="duorec.download"):
        out = fetch_movielens("ml-100k", tmp_path, f"{server.url}/movielens", **NET)

    assert (out / "movies.csv").read_text() == MOVIES
    assert "ml-100k.zip.md5: no checksum published" in caplog.text


def test_corrupt_archive_is_deleted_and_leaves_no_folder(tmp_path: Path) -> None:
    archive = tmp_path / "ml-1m.zip"
    archive.write_bytes(make_zip("ml-1m", {"ratings.dat": "1::1::5::0\n"})[:-30])  # cut the tail

    with pytest.raises(DataError, match=r"ml-1m\.zip: corrupt zip archive .*re-run"):
        fetch_movielens("ml-1m", tmp_path, "http://127.0.0.1:9", **NET)
    assert tree(tmp_path) == []


def test_unknown_dataset_is_rejected_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="^movielens=ml-2k: unknown .* ml-latest-small, "):
        fetch_movielens("ml-2k", tmp_path, "http://127.0.0.1:9")


# --------------------------------------------------------------------------- IMDb


def test_imdb_stays_gzipped_and_a_rerun_fetches_nothing(server: FileServer, tmp_path: Path) -> None:
    names = ["title.basics", "title.ratings"]
    raw = serve_imdb(server, names)

    paths = fetch_imdb(tmp_path, f"{server.url}/imdb/", names, **NET)

    assert paths == [tmp_path / "imdb" / f"{n}.tsv.gz" for n in names]
    assert [gzip.decompress(p.read_bytes()) for p in paths] == [raw[n] for n in names]
    assert tree(tmp_path) == ["imdb", "imdb/title.basics.tsv.gz", "imdb/title.ratings.tsv.gz"]
    assert fetch_imdb(tmp_path, f"{server.url}/imdb", names, **NET) == paths
    assert len(server.requests) == 2


def test_error_page_served_as_200_is_rejected_and_deleted(
    server: FileServer, tmp_path: Path
) -> None:
    server.files["/imdb/title.ratings.tsv.gz"] = b"<html>maintenance</html>"

    with pytest.raises(DataError, match="title.ratings.tsv.gz: unexpected content"):
        fetch_imdb(tmp_path, f"{server.url}/imdb", ["title.ratings"], **NET)
    assert tree(tmp_path) == ["imdb"]


# --------------------------------------------------------------------------- network errors


def test_http_404_is_one_line_naming_the_url(server: FileServer, tmp_path: Path) -> None:
    url = f"{server.url}/nope/title.basics.tsv.gz"

    with pytest.raises(UsageError) as info:
        fetch_file(url, tmp_path / "title.basics.tsv.gz", **NET)

    assert str(info.value) == f"{url}: HTTP 404 Not Found"
    assert tree(tmp_path) == []


def test_connection_refused_is_one_line_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/movielens/ml-1m.zip"

    with pytest.raises(UsageError) as info:
        fetch_file(url, tmp_path / "ml-1m.zip", **NET)

    assert str(info.value) == f"{url}: cannot connect (Connection refused)"
    assert tree(tmp_path) == []


# --------------------------------------------------------------------------- CLI


def run_cli(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "duorec.download", "progress=false", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TEST_TIMEOUT_S - 10,
    )


def test_cli_fetches_both_sources_and_a_rerun_downloads_nothing(
    server: FileServer, tmp_path: Path
) -> None:
    serve_movielens(server, "ml-latest-small")
    serve_imdb(server, IMDB_NAMES)
    dest, cwd = tmp_path / "raw", tmp_path / "cwd"
    args = (
        "movielens=ml-latest-small",
        "imdb=true",
        f"dest={dest}",
        f"grouplens_url={server.url}/movielens",
        f"imdb_url={server.url}/imdb",
    )

    first = run_cli(cwd, *args)

    assert first.returncode == 0, first.stderr
    assert (dest / "ml-latest-small" / "ratings.csv").read_text() == RATINGS
    assert sorted(p.name for p in (dest / "imdb").iterdir()) == sorted(
        f"{n}.tsv.gz" for n in IMDB_NAMES
    )
    assert list(cwd.iterdir()) == []  # no outputs/, .hydra/, or log file
    assert len(server.requests) == 2 + len(IMDB_NAMES)

    again = run_cli(cwd, *args)

    assert again.returncode == 0, again.stderr
    assert len(server.requests) == 2 + len(IMDB_NAMES)
    assert again.stdout.count("already present, skipping") == 1 + len(IMDB_NAMES)


@pytest.mark.parametrize("failure", ["404", "md5", "refused"])
def test_cli_failure_is_one_line_exit_1_no_traceback(
    server: FileServer, tmp_path: Path, failure: str
) -> None:
    dest = tmp_path / "raw"
    if failure == "404":
        args = ["movielens=null", "imdb=true", "imdb_files=[title.basics]"]
        args.append(f"imdb_url={server.url}/missing")
        expected = f"{server.url}/missing/title.basics.tsv.gz: HTTP 404 Not Found"
    elif failure == "md5":
        serve_movielens(server, "ml-latest-small")
        server.files["/movielens/ml-latest-small.zip.md5"] = b"0" * 32
        args = ["movielens=ml-latest-small", f"grouplens_url={server.url}/movielens"]
        expected = f"{server.url}/movielens/ml-latest-small.zip: MD5 hash"
    else:
        base = f"http://127.0.0.1:{closed_port()}/movielens"
        args = ["movielens=ml-1m", f"grouplens_url={base}"]
        expected = f"{base}/ml-1m.zip.md5: cannot connect (Connection refused)"

    proc = run_cli(tmp_path / "cwd", f"dest={dest}", *args)

    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert_one_line(proc.stderr.strip())
    assert proc.stderr.startswith(f"duorec.download: error: {expected}")
    assert not dest.exists() or [p for p in dest.rglob("*") if p.is_file()] == []
