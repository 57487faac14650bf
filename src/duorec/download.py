"""Fetch raw MovieLens and IMDb files: resumable, checksum-verified, unpacked atomically.

Run it as ``python -m duorec.download movielens=ml-latest-small imdb=true dest=PATH``.

Why it is built the way it is:

* The archives are large (ml-32m is ~240 MB, the IMDb dumps ~1.5 GB together) and home or
  CI connections drop, so every transfer streams into ``X.part`` and a re-run asks the server
  for the rest with ``Range``. The final name only ever appears via one ``os.replace``, so a
  file at its final name is always complete and verified; that is what makes re-runs skip.
* GroupLens publishes an md5 next to every archive; a mismatch means a corrupt or tampered
  download, so it is deleted (resuming corrupt bytes would only reproduce the corruption) and
  the error says so.
* Archives are extracted into a hidden temporary directory and renamed into place, so a crash
  mid-unzip never leaves a folder that later runs would mistake for a complete dataset.
* Errors are one line naming the URL or file and what went wrong (HTTP status, md5 values):
  the person running this fixes a URL, a network or a disk, not a stack trace.

Only the standard library (urllib) does the networking: no new dependencies.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import hydra
from omegaconf import DictConfig

from duorec import __version__
from duorec.cli import friendly_errors
from duorec.data.errors import DataError
from duorec.data.imdb import IMDB_FILES  # the dumps the catalog needs, served as {name}.tsv.gz
from duorec.io import atomic_path

log = logging.getLogger(__name__)

#: Dataset names GroupLens serves as ``{name}.zip`` (with ``{name}.zip.md5``).
MOVIELENS_DATASETS: tuple[str, ...] = (
    "ml-latest-small",
    "ml-latest",
    "ml-100k",
    "ml-1m",
    "ml-10m",
    "ml-20m",
    "ml-25m",
    "ml-32m",
)

ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)
_MD5_BSD = re.compile(r"^MD5\s*\((?P<name>.+)\)\s*=\s*(?P<hex>[0-9a-fA-F]{32})$")
_MD5_GNU = re.compile(r"^(?P<hex>[0-9a-fA-F]{32})(?:\s+\*?(?P<name>.+))?$")


class DownloadError(RuntimeError):
    """A transfer failed (unreachable host, HTTP error, dropped connection).

    Kept apart from :class:`DataError` because the remedy differs: check the URL or the
    network and re-run (partial downloads are kept and resumed), rather than fix a file.
    """

    def __init__(self, url: str, problem: str, status: int | None = None):
        self.url = url
        self.problem = problem
        self.status = status
        super().__init__(f"{url}: {problem}")


# --------------------------------------------------------------------------- single files


def download_file(
    url: str,
    dest: str | Path,
    *,
    expected_md5: str | None = None,
    magic: bytes | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if an earlier run left one.

    Returns ``dest``. If ``dest`` already exists it is trusted and nothing is fetched: it can
    only have got there through the final rename below, after the transfer completed and the
    checks passed. ``expected_md5`` (hex) and ``magic`` (leading bytes, e.g. the zip or gzip
    signature, which catches an HTML error page served with status 200) are checked before
    that rename; on failure the download is deleted so the next run starts clean.

    Raises :class:`DownloadError` for network/HTTP problems (the ``.part`` is kept for resuming)
    and :class:`DataError` when the bytes arrived but fail a check.
    """
    dest = Path(dest)
    if dest.exists():
        log.info("%s already present, skipping", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _transfer(url, part, timeout=timeout, progress=progress, label=dest.name)

    problem = _check_download(part, expected_md5=expected_md5, magic=magic)
    if problem is not None:
        _discard(part)
        raise DataError(
            dest, f"{problem} (downloaded from {url}); deleted the download, re-run to fetch again"
        )
    os.replace(part, dest)
    _validator_path(part).unlink(missing_ok=True)
    return dest


def _transfer(
    url: str, part: Path, *, timeout: float, progress: bool, label: str, retried: bool = False
) -> None:
    """Bring ``part`` up to the full content of ``url``, appending when the server allows it.

    A 206 answer appends to the existing bytes; a 200 answer (server ignores ``Range``, or the
    ``If-Range`` validator says the remote file changed) rewrites from zero. The remote file's
    ETag/Last-Modified is stored next to the ``.part`` and sent back as ``If-Range``, because
    IMDb regenerates its dumps daily and gluing yesterday's head to today's tail would produce
    a silently corrupt file.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"duorec/{__version__} (+urllib)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = _read_validator(part)
        if validator:
            headers["If-Range"] = validator
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset and not retried:
            # Our range starts at or past the end: either the .part is already complete (a
            # previous run died between the last byte and the rename) or it is stale.
            total = _parse_content_range(exc.headers.get("Content-Range"))[2]
            if total == offset:
                return
            log.info("%s: partial download does not match the server's file, restarting", url)
            _discard(part)
            _transfer(url, part, timeout=timeout, progress=progress, label=label, retried=True)
            return
        raise DownloadError(url, f"HTTP {exc.code} {exc.reason}", status=exc.code) from None
    except URLError as exc:
        raise DownloadError(url, f"cannot connect ({_reason(exc.reason)})") from None
    except OSError as exc:  # timeouts, resets during the handshake
        raise DownloadError(url, f"cannot connect ({_reason(exc)})") from None

    with response:
        length = _int_or_none(response.headers.get("Content-Length"))
        if response.status == 206:
            start, _end, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                if retried:
                    raise DownloadError(url, "server sent a byte range we did not ask for")
                log.info("%s: server resumed at the wrong offset, restarting from zero", url)
                _discard(part)
                _transfer(url, part, timeout=timeout, progress=progress, label=label, retried=True)
                return
            mode = "ab"
            log.info("%s: resuming at byte %d", url, offset)
        else:
            if offset:
                log.info("%s: server sent the whole file (no resume), restarting from zero", url)
            offset, mode = 0, "wb"
            total = length
            _write_validator(
                part, response.headers.get("ETag"), response.headers.get("Last-Modified")
            )

        received = 0
        try:
            with open(part, mode) as fh, _progress_bar(label, total, offset, progress) as advance:
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    advance(len(chunk))
        except OSError as exc:  # timeout, connection reset, disk full
            raise DownloadError(
                url, _interrupted(part, f"transfer failed ({_reason(exc)})")
            ) from None
        except http.client.HTTPException as exc:  # IncompleteRead, bad chunked encoding
            raise DownloadError(url, _interrupted(part, f"transfer failed ({exc!r})")) from None
        if length is not None and received < length:
            have = offset + received
            of = f" of {total}" if total is not None else ""
            raise DownloadError(
                url, _interrupted(part, f"connection closed after {have}{of} bytes")
            )


def _check_download(path: Path, *, expected_md5: str | None, magic: bytes | None) -> str | None:
    """Return what is wrong with a finished download, or None if it passes the checks."""
    if magic is not None:
        with open(path, "rb") as fh:
            head = fh.read(len(magic))
        if head != magic:
            return f"unexpected content, does not start with {magic!r} (got {head!r})"
    if expected_md5 is not None:
        actual = file_md5(path)
        if actual != expected_md5.lower():
            return f"md5 mismatch: expected {expected_md5.lower()}, got {actual}"
    return None


def file_md5(path: str | Path) -> str:
    """Hex md5 of a file, read in chunks so a multi-GB archive never sits in memory."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_md5(text: str, filename: str | None = None) -> str | None:
    """Extract the md5 for ``filename`` from an md5 listing, or None if there is none.

    Accepts the BSD form GroupLens uses (``MD5 (ml-1m.zip) = <hex>``), the GNU ``md5sum``
    form (``<hex>  ml-1m.zip``, optionally ``*`` for binary) and a bare hex digest. A line
    naming another file is ignored, so a multi-file listing cannot verify the wrong archive.
    """
    for raw in text.splitlines():
        line = raw.strip()
        match = _MD5_BSD.match(line) or _MD5_GNU.match(line)
        if match is None:
            continue
        name = match.group("name")
        if filename is None or name is None or Path(name.strip()).name == filename:
            return match.group("hex").lower()
    return None


def published_md5(url: str, *, timeout: float = 60.0) -> str | None:
    """Fetch and parse ``{url}.md5``; None (with a warning) when the server has no checksum.

    A 404 only means "not published", so the caller proceeds unverified; any other failure
    (unreachable, 5xx) is raised, because then the archive download would fail too. A checksum
    file we cannot parse is an error rather than a silent skip: verification that quietly
    stops happening is worse than none.
    """
    md5_url = f"{url}.md5"
    try:
        with urlopen(Request(md5_url, headers={"User-Agent": "duorec"}), timeout=timeout) as r:
            text = r.read(64 * 1024).decode("utf-8", errors="replace")
    except HTTPError as exc:
        exc.close()
        if exc.code == 404:
            log.warning("%s: no checksum published (HTTP 404), not verifying", md5_url)
            return None
        raise DownloadError(md5_url, f"HTTP {exc.code} {exc.reason}", status=exc.code) from None
    except URLError as exc:
        raise DownloadError(md5_url, f"cannot connect ({_reason(exc.reason)})") from None
    except OSError as exc:
        raise DownloadError(md5_url, f"cannot connect ({_reason(exc)})") from None
    digest = parse_md5(text, url.rsplit("/", 1)[-1])
    if digest is None:
        raise DataError(
            md5_url,
            "no md5 for the archive found in the checksum file; pass verify_md5=false "
            "to skip verification",
        )
    return digest


# --------------------------------------------------------------------------- datasets


def fetch_movielens(
    name: str,
    dest: str | Path,
    base_url: str,
    verify_md5: bool = True,
    *,
    timeout: float = 60.0,
    progress: bool = True,
    keep_archive: bool = False,
) -> Path:
    """Download and unpack MovieLens ``name`` into ``dest/name``; return that folder.

    Skips everything when ``dest/name`` exists: the folder only ever appears through an atomic
    rename of a fully extracted archive. The zip is removed after unpacking (it would double the
    disk use of ml-32m) unless ``keep_archive``; if a run dies after the download but before
    the unpack, the verified zip is reused instead of fetched again.
    """
    if name not in MOVIELENS_DATASETS:
        raise DataError(
            f"movielens={name}",
            f"unknown MovieLens dataset; choose one of: {', '.join(MOVIELENS_DATASETS)}",
        )
    dest = Path(dest)
    target = dest / name
    if target.is_dir():
        log.info("%s already present, skipping", target)
        return target
    archive = dest / f"{name}.zip"
    if not archive.exists():
        url = f"{base_url.rstrip('/')}/{name}.zip"
        md5 = published_md5(url, timeout=timeout) if verify_md5 else None
        download_file(
            url, archive, expected_md5=md5, magic=ZIP_MAGIC, timeout=timeout, progress=progress
        )
    unpack_zip(archive, target)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    log.info("%s ready", target)
    return target


def unpack_zip(archive: str | Path, target: str | Path) -> Path:
    """Extract ``archive`` so that its contents end up directly in ``target``.

    The archives wrap everything in one top folder whose name need not match the dataset
    (ml-10m.zip holds ``ml-10M100K/``), so a single top folder is renamed to ``target``;
    an archive with several top-level entries becomes ``target`` as a whole. Extraction goes
    to a hidden sibling temp dir first, and ``target`` appears in one rename. A corrupt archive
    is deleted so the next run downloads it again.
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            zipfile.ZipFile(archive) as zf,
            tempfile.TemporaryDirectory(prefix=f".{target.name}.unzip.", dir=target.parent) as tmp,
        ):
            if not zf.namelist():
                raise zipfile.BadZipFile("archive is empty")
            root = Path(tmp) / "x"
            zf.extractall(root)  # extractall refuses absolute paths and ".." components
            entries = [p for p in root.iterdir() if p.name != "__MACOSX"]
            if len(entries) == 1 and entries[0].is_dir():
                root = entries[0]
            with atomic_path(target) as staged:
                os.replace(root, staged)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        archive.unlink(missing_ok=True)
        raise DataError(
            archive, f"corrupt zip archive ({exc}); deleted it, re-run to download again"
        ) from None
    return target


def fetch_imdb(
    dest: str | Path,
    base_url: str,
    files: Iterable[str] = IMDB_FILES,
    *,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[Path]:
    """Download the IMDb dumps into ``dest/imdb/{name}.tsv.gz``; return their paths.

    They stay gzipped: the readers accept ``.tsv.gz`` and unpacked they are ~5x larger. IMDb
    publishes no checksums, so each file is checked for the gzip signature instead, which at
    least catches an error page served in place of the data.
    """
    folder = Path(dest) / "imdb"
    base = base_url.rstrip("/")
    paths = []
    for name in files:
        filename = name if name.endswith(".tsv.gz") else f"{name}.tsv.gz"
        paths.append(
            download_file(
                f"{base}/{filename}",
                folder / filename,
                magic=GZIP_MAGIC,
                timeout=timeout,
                progress=progress,
            )
        )
    return paths


# --------------------------------------------------------------------------- helpers


def _interrupted(part: Path, what: str) -> str:
    return f"{what}; the partial download is kept at {part}, re-run to resume"


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _validator_path(part).unlink(missing_ok=True)


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".etag")


def _read_validator(part: Path) -> str | None:
    try:
        return _validator_path(part).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _write_validator(part: Path, etag: str | None, last_modified: str | None) -> None:
    """Remember what identifies this version of the remote file, for ``If-Range`` on resume.

    A weak ETag (``W/...``) may not be used with If-Range, so Last-Modified is the fallback.
    """
    validator = etag if etag and not etag.startswith("W/") else last_modified
    path = _validator_path(part)
    if validator:
        path.write_text(validator, encoding="utf-8")
    else:
        path.unlink(missing_ok=True)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(start, end, total) from ``bytes 10-99/100`` or ``bytes */100``; None where absent."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None, None, None
    start, end, total = match.groups()
    return _int_or_none(start), _int_or_none(end), _int_or_none(total)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reason(reason: object) -> str:
    """A short human reason from whatever urllib/socket put in an exception."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


@contextmanager
def _progress_bar(
    label: str, total: int | None, done: int, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback; a rich bar on stderr when the size is known."""
    if not enabled or total is None:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)


# --------------------------------------------------------------------------- entry point


def run(cfg: DictConfig) -> list[Path]:
    """Do what the config asks; return the dataset folders and files now present."""
    dest = Path(os.path.expanduser(str(cfg.dest))).resolve()
    timeout = float(cfg.get("timeout", 60))
    progress = bool(cfg.get("progress", True))
    done: list[Path] = []
    if not cfg.movielens and not cfg.imdb:
        log.warning("nothing to download: set movielens=NAME and/or imdb=true")
    if cfg.movielens:
        done.append(
            fetch_movielens(
                str(cfg.movielens),
                dest,
                str(cfg.grouplens_url),
                bool(cfg.verify_md5),
                timeout=timeout,
                progress=progress,
                keep_archive=bool(cfg.get("keep_archive")),
            )
        )
    if cfg.imdb:
        files = [str(f) for f in cfg.imdb_files]
        done.extend(fetch_imdb(dest, str(cfg.imdb_url), files, timeout=timeout, progress=progress))
    return done


@hydra.main(version_base="1.3", config_path="../../conf", config_name="download")
@friendly_errors("duorec.download", DownloadError)
def main(cfg: DictConfig) -> None:
    """Thin CLI wrapper: known failures become one line on stderr and exit status 1."""
    run(cfg)


if __name__ == "__main__":
    main()
