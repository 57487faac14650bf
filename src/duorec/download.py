"""Fetch raw MovieLens and IMDb files with pooch: md5-verified, unpacked atomically.

Run it as ``python -m duorec.download movielens=ml-latest-small imdb=true dest=PATH``.

Why it is built the way it is:

* pooch streams each file into a temporary file beside its destination, checks the hash and
  only then moves it into place, so a file at its final name is complete and re-runs can skip
  whatever exists. pooch does not resume: an interrupted transfer starts over on the next run.
* GroupLens publishes an md5 next to every archive; it goes to pooch as ``md5:<hex>``, and a
  mismatch (corrupt or tampered download) deletes the download and fails.
* Archives are extracted into a hidden temp dir and renamed into place, so a crash mid-unzip
  never leaves a folder that later runs would mistake for a complete dataset.
* Failures are one line naming the URL or file (UsageError for the network, DataError for bad
  bytes): the person running this fixes a URL, a network or a disk, not a stack trace.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import hydra
import pooch
import requests
from omegaconf import DictConfig

from duorec.cli import friendly_errors
from duorec.data.errors import DataError
from duorec.data.imdb import IMDB_FILES  # the dumps the catalog needs, served as {name}.tsv.gz
from duorec.errors import UsageError
from duorec.io import atomic_path

log = logging.getLogger(__name__)
# pooch logs every transfer on stderr; we log our own lines, and an error must stay one line.
pooch.get_logger().setLevel(logging.WARNING)

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


GZIP_MAGIC = b"\x1f\x8b"
# "MD5 (ml-1m.zip) = <hex>" (what GroupLens serves), "<hex>  ml-1m.zip" (md5sum) or "<hex>".
_MD5_LINE = re.compile(
    r"^(?:MD5\s*\((?P<bsd>.+)\)\s*=\s*)?(?P<hex>[0-9a-fA-F]{32})(?:\s+\*?(?P<gnu>.+))?$"
)


def fetch_file(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    magic: bytes | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` unless ``dest`` exists; return ``dest``.

    An existing ``dest`` is trusted: it only appears through pooch's move after the checks
    passed. ``magic`` (leading bytes, e.g. the gzip signature) catches an error page served
    with status 200 where no checksum is published; such a file is deleted before raising.
    """
    dest = Path(dest)
    if dest.exists():
        log.info("%s already present, skipping", dest)
        return dest
    log.info("downloading %s", url)
    try:
        pooch.retrieve(
            url,
            known_hash=f"md5:{md5}" if md5 else None,
            fname=dest.name,
            path=dest.parent,
            downloader=pooch.HTTPDownloader(
                progressbar=progress, timeout=timeout, chunk_size=1 << 16
            ),
        )
    except requests.RequestException as exc:
        raise _network_error(url, exc) from None
    except ValueError as exc:  # pooch's hash mismatch; it has deleted the download already
        raise DataError(url, f"{exc} Re-run to fetch again.") from None
    if magic is not None:
        with open(dest, "rb") as fh:
            head = fh.read(len(magic))
        if head != magic:
            dest.unlink()
            raise DataError(
                url, f"unexpected content, does not start with {magic!r} (got {head!r}); deleted"
            )
    return dest


def parse_md5(text: str, filename: str) -> str | None:
    """The md5 for ``filename`` in an md5 listing, or None; lines naming other files are ignored.

    Ignoring them means a multi-file listing can never verify the wrong archive.
    """
    for line in text.splitlines():
        match = _MD5_LINE.match(line.strip())
        if match is None:
            continue
        name = match.group("bsd") or match.group("gnu")
        if name is None or Path(name.strip()).name == filename:
            return match.group("hex").lower()
    return None


def published_md5(url: str, *, timeout: float = 60.0) -> str | None:
    """Fetch and parse ``{url}.md5``; None (with a warning) when the server has none.

    A 404 only means "not published", so the archive is fetched unverified; any other failure
    is raised, since the archive download would fail too. An unparsable checksum file is an
    error: verification that quietly stops happening is worse than none.
    """
    md5_url = f"{url}.md5"
    try:
        response = requests.get(md5_url, timeout=timeout)
        if response.status_code == 404:
            log.warning("%s: no checksum published (HTTP 404), not verifying", md5_url)
            return None
        response.raise_for_status()
    except requests.RequestException as exc:
        raise _network_error(md5_url, exc) from None
    digest = parse_md5(response.text, url.rsplit("/", 1)[-1])
    if digest is None:
        raise DataError(
            md5_url, "no md5 for the archive in the checksum file; pass verify_md5=false to skip"
        )
    return digest


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

    Skips everything when ``dest/name`` exists (it only appears through an atomic rename of a
    fully extracted archive). The zip is removed after unpacking (it would double the disk use
    of ml-32m) unless ``keep_archive``; one left by a run that died before unpacking is reused.
    """
    if name not in MOVIELENS_DATASETS:
        raise UsageError(
            f"movielens={name}: unknown MovieLens dataset; "
            f"choose one of: {', '.join(MOVIELENS_DATASETS)}"
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
        fetch_file(url, archive, md5=md5, timeout=timeout, progress=progress)
    unpack_zip(archive, target)
    if not keep_archive:
        archive.unlink()
    log.info("%s ready", target)
    return target


def unpack_zip(archive: str | Path, target: str | Path) -> Path:
    """Extract ``archive`` so that its contents end up directly in ``target``.

    The archives wrap everything in one top folder whose name need not match the dataset
    (ml-10m.zip holds ``ml-10M100K/``), so a single top folder becomes ``target``; otherwise
    the whole archive does. ``target`` appears in one rename (:func:`duorec.io.atomic_path`).
    A corrupt archive (or an error page saved as one) is deleted so the next run refetches it.
    """
    archive, target = Path(archive), Path(target)
    try:
        with zipfile.ZipFile(archive) as zf, atomic_path(target) as staged:
            if not zf.namelist():
                raise zipfile.BadZipFile("archive is empty")
            root = staged.with_name("unzip")
            zf.extractall(root)  # extractall refuses absolute paths and ".." components
            entries = [p for p in root.iterdir() if p.name != "__MACOSX"]
            os.replace(entries[0] if len(entries) == 1 and entries[0].is_dir() else root, staged)
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
    publishes no checksums (and rebuilds the dumps daily), so the gzip signature is the check.
    """
    base = base_url.rstrip("/")
    paths = []
    for name in files:
        filename = name if name.endswith(".tsv.gz") else f"{name}.tsv.gz"
        paths.append(
            fetch_file(
                f"{base}/{filename}",
                Path(dest) / "imdb" / filename,
                magic=GZIP_MAGIC,
                timeout=timeout,
                progress=progress,
            )
        )
    return paths


def _network_error(url: str, exc: requests.RequestException) -> UsageError:
    """One line for a failed request: the HTTP status, or the socket-level reason."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return UsageError(f"{url}: HTTP {exc.response.status_code} {exc.response.reason}")
    what = "cannot connect" if isinstance(exc, requests.ConnectionError) else "download failed"
    cause: BaseException | None = exc
    while cause is not None:  # requests -> urllib3 -> socket: the innermost errno says most
        if isinstance(cause, OSError) and cause.strerror:
            return UsageError(f"{url}: {what} ({cause.strerror})")
        cause = cause.__cause__ or cause.__context__ or getattr(cause, "reason", None)
    return UsageError(f"{url}: {what} ({type(exc).__name__})")


def run(cfg: DictConfig) -> list[Path]:
    """Do what the config asks; return the dataset folders and files now present."""
    dest = Path(os.path.expanduser(str(cfg.dest))).resolve()
    options = {"timeout": float(cfg.get("timeout", 60)), "progress": bool(cfg.get("progress"))}
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
                keep_archive=bool(cfg.get("keep_archive")),
                **options,
            )
        )
    if cfg.imdb:
        files = [str(f) for f in cfg.imdb_files]
        done.extend(fetch_imdb(dest, str(cfg.imdb_url), files, **options))
    return done


@hydra.main(version_base="1.3", config_path="../../conf", config_name="download")
@friendly_errors("duorec.download")
def main(cfg: DictConfig) -> None:
    """Thin CLI wrapper: known failures become one line on stderr and exit status 1."""
    run(cfg)


if __name__ == "__main__":
    from duorec.overrides import run_checked

    run_checked(main, "download", "duorec.download")
