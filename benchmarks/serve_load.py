"""How fast does `python -m duorec.serve` answer at a steady 100 requests/s? Measured.

Why: the service promises p99 <= 50 ms at 100 requests/s for pairs and groups given by user
id, and <= 300 ms for a request that folds in two uploaded exports. This starts the real
server (`python -m duorec.serve`, a separate process, bound to 127.0.0.1 on a free port) on a
trained checkpoint, sends a bounded open-loop load to it and stops it:

1. `pair`: two random user ids of the data set, `--rate` requests/s for `--duration` s;
2. `group4`: four random user ids, the same load;
3. `upload`: one uploaded export (`--export-a`, an IMDb ratings CSV) beside a random user id,
   `--upload-rate` requests/s for `--duration` s (an upload is folded into the model per
   request: it costs ~10x a pair);
4. `two_exports`: both exports (`--export-a`, `--export-b`) uploaded, no load around it: one
   request at a time, `--upload-requests` of them, `--runs` runs; the median of the runs'
   p50 and p99.

Open loop: request i is due at start + i / rate whatever the answers before it (a slow
server does not slow the load down) and goes out on the first free connection of a pool of
16 keep-alive connections; its latency runs from that due time to the whole answer, so time
spent queued anywhere, the client included, counts. The requests are encoded before the
clock starts and written as bytes over asyncio streams: an HTTP client library costs a few ms
of CPU per request, which on 2 cores would be taken from the server. Every answer must be a
200 with ten picks; anything else is counted as an error. The machine's load average
(`os.getloadavg`) is printed before and after each phase: on a shared 2-core machine, other
work shows there.

    DUOREC_DATA=/work/shared/data .venv/bin/python benchmarks/serve_load.py \\
        --ckpt PATH/TO/ml-latest-small/run [--rate 100 --duration 60] [--json out.json] \\
        [--set paths.cache_dir=DIR]      # any duorec.serve override

User ids are drawn from the data set's MovieLens ratings.csv (`--movielens-dir`, default
$DUOREC_DATA/ml-latest-small).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx  # only to wait for /health
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, markdown_table, save_json

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "people"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """A process's resident memory (MB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb(pid: int) -> float:
    """Its high-water mark (MB): loading the checkpoint and data set sets it, at startup."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """`python -m duorec.serve` in a child process, stopped (SIGINT, then SIGKILL) on exit."""

    def __init__(self, ckpt: str, threads: int, extra: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable,
            "-m",
            "duorec.serve",
            f"ckpt_path={ckpt}",
            "host=127.0.0.1",
            f"port={self.port}",
            "log_level=warning",
            f"threads={threads}",
            "hydra.run.dir=/tmp/duorec-serve-load",
            *extra,
        ]
        self.log = open("/tmp/duorec-serve-load.log", "w")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited: see {self.log.name}")
            try:
                return httpx.get(f"{self.url}/health", timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.5)
        raise SystemExit(f"the server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def http_request(url: str, path: str, body: bytes, content_type: str) -> bytes:
    """One POST, encoded once: the load loop only writes bytes (an HTTP client library costs
    a few ms of CPU per request, which on 2 cores is taken from the server)."""
    host = url.removeprefix("http://")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def json_request(url: str, members: list[dict[str, Any]]) -> bytes:
    body = json.dumps({"members": members}).encode()
    return http_request(url, "/api/recommend", body, "application/json")


def upload_request(url: str, files: list[Path], users: list[int]) -> bytes:
    """A multipart form: the JSON in `request`, each file in its own field."""
    members = [{"file": f"f{i}"} for i in range(len(files))] + [{"user": u} for u in users]
    boundary = "duorec-load-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n'.encode()
        + json.dumps({"members": members}).encode()
        + b"\r\n"
    ]
    for i, path in enumerate(files):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"; '
            f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
            + path.read_bytes()
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return http_request(
        url, "/api/recommend/upload", body, f"multipart/form-data; boundary={boundary}"
    )


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read the whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _ok(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    try:
        return len(json.loads(body)["picks"]) == 10
    except (ValueError, KeyError):
        return False


async def open_loop(
    url: str, requests: list[bytes], rate: float, connections: int = 16
) -> dict[str, Any]:
    """Send `requests` at `rate`/s (open loop: request i is due at start + i / rate, whatever
    came before) over a pool of keep-alive connections; a request due while every connection
    is busy waits for one, and that wait counts in its latency."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(url))
    start = time.perf_counter() + 0.2

    async def one(i: int, request: bytes) -> tuple[float, bool]:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        connection = await pool.get()
        try:
            status, body = await asyncio.wait_for(connection.send(request), 60)
            ok = _ok(status, body)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            connection.close()
            connection, ok = await Connection.open(url), False
        pool.put_nowait(connection)
        return time.perf_counter() - due, ok

    results = await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return summarise([r[0] for r in results], [r[1] for r in results], elapsed)


async def closed_loop(url: str, request: bytes, n: int) -> dict[str, Any]:
    """`n` requests one after another (nothing else in flight)."""
    connection = await Connection.open(url)
    times, oks = [], []
    start = time.perf_counter()
    for _ in range(n):
        sent = time.perf_counter()
        status, body = await connection.send(request)
        times.append(time.perf_counter() - sent)
        oks.append(_ok(status, body))
    connection.close()
    return summarise(times, oks, time.perf_counter() - start)


def summarise(seconds: list[float], oks: list[bool], elapsed: float) -> dict[str, Any]:
    ms = np.array(seconds) * 1000
    return {
        "requests": len(ms),
        "errors": int(len(oks) - sum(oks)),
        "rps": round(len(ms) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def load() -> str:
    one_, five, fifteen = os.getloadavg()
    return f"{one_:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="run folder or .ckpt (ml-latest-small)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s for ids")
    parser.add_argument("--upload-rate", type=float, default=5.0, help="requests/s, uploads")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--upload-requests", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--phases", nargs="+", default=["pair", "group4", "upload", "two_exports"])
    data = Path(os.environ.get("DUOREC_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--movielens-dir", type=Path, default=data / "ml-latest-small")
    parser.add_argument("--export-a", type=Path, default=EXAMPLES / "alice.csv")
    parser.add_argument("--export-b", type=Path, default=EXAMPLES / "bob.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a duorec.serve override (repeatable), e.g. --set paths.cache_dir=DIR",
    )
    args = parser.parse_args(argv)

    users = np.unique(
        np.loadtxt(args.movielens_dir / "ratings.csv", delimiter=",", skiprows=1, usecols=0)
    ).astype(np.int64)
    rng = np.random.default_rng(args.seed)
    n = int(args.rate * args.duration)
    n_upload = int(args.upload_rate * args.duration)
    print(f"load average before starting the server: {load()}", flush=True)
    server = Server(str(args.ckpt), args.threads, args.set)
    rows: list[dict[str, Any]] = []
    try:
        health = server.wait()
        print(health["source"], flush=True)
        rss_start = rss_mb(server.proc.pid)
        for phase in args.phases:
            before = load()
            if phase in ("pair", "group4"):
                size = 2 if phase == "pair" else 4
                requests = [
                    json_request(
                        server.url,
                        [{"user": int(u)} for u in rng.choice(users, size, replace=False)],
                    )
                    for _ in range(n)
                ]
                result = asyncio.run(open_loop(server.url, requests, args.rate))
                result["rate"] = args.rate
            elif phase == "upload":
                requests = [
                    upload_request(server.url, [args.export_a], [int(rng.choice(users))])
                    for _ in range(n_upload)
                ]
                result = asyncio.run(open_loop(server.url, requests, args.upload_rate))
                result["rate"] = args.upload_rate
            elif phase == "two_exports":
                request = upload_request(server.url, [args.export_a, args.export_b], [])
                runs = [
                    asyncio.run(closed_loop(server.url, request, args.upload_requests))
                    for _ in range(args.runs)
                ]
                result = {
                    "requests": sum(r["requests"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                    "rps": float(np.median([r["rps"] for r in runs])),
                    "p50_ms": float(np.median([r["p50_ms"] for r in runs])),
                    "p90_ms": float(np.median([r["p90_ms"] for r in runs])),
                    "p99_ms": float(np.median([r["p99_ms"] for r in runs])),
                    "max_ms": max(r["max_ms"] for r in runs),
                    "rate": "one at a time",
                    "runs_p99_ms": [r["p99_ms"] for r in runs],
                }
            else:
                raise SystemExit(f"unknown phase {phase!r}")
            result = {"phase": phase, **result, "load_before": before, "load_after": load()}
            rows.append(result)
            print(markdown_table([result]), flush=True)
        rss_end, peak = rss_mb(server.proc.pid), peak_mb(server.proc.pid)
    finally:
        server.stop()
    print()
    print(markdown_table(rows))
    print(
        f"\nserver memory: {rss_start:.0f} MB after start, {rss_end:.0f} MB at the end, "
        f"peak {peak:.0f} MB"
    )
    payload = {
        "machine": machine_info(),
        "ckpt": str(args.ckpt),
        "source": health["source"],
        "phases": rows,
        "server_rss_mb": {"start": rss_start, "end": rss_end, "peak": peak},
    }
    save_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
