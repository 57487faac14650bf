"""`python -m duorec.serve [ckpt_path=PATH] [host=127.0.0.1] [port=8000]`: the HTTP service and
the web page (`duorec.service`; docs/serving.md).

The model and its index are loaded once, here, before the port opens; uvicorn then serves
the app in this one process (a single worker: a second would hold a second copy of the model).
The first line printed names the run and the data set served, as `duorec.recommend` does, so
a model picked by "newest run" is never a surprise. Bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
from typing import Any

import hydra
from omegaconf import DictConfig

from duorec.cli import friendly_errors
from duorec.data.exports import ReadLimits
from duorec.errors import UsageError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
log = logging.getLogger("duorec.serve")


def check_config(cfg: DictConfig) -> tuple[ReadLimits, Any]:
    """The settings this command adds, refused in one line before the model is loaded."""
    from duorec.service.engine import ServiceOptions

    host, port = cfg.get("host"), cfg.get("port")
    if not isinstance(host, str) or not host.strip():
        raise UsageError(f"host={host!r} is not allowed: expected an address, e.g. 127.0.0.1")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"port={port!r} is not allowed: expected an integer in 0..65535")
    if cfg.get("log_level") not in LOG_LEVELS:
        raise UsageError(
            f"log_level={cfg.get('log_level')!r} is not allowed: expected one of "
            + ", ".join(LOG_LEVELS)
        )
    if not isinstance(cfg.get("access_log"), bool):
        raise UsageError(
            f"access_log={cfg.get('access_log')!r} is not allowed: expected true or false"
        )
    try:
        limits = ReadLimits.from_config(cfg.get("people_limits"))
        options = ServiceOptions.from_config(cfg.get("service"))
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    return limits, options


def serve(cfg: DictConfig) -> None:
    """Check the settings, load the model once, serve until Ctrl-C."""
    import uvicorn

    from duorec.service import create_app
    from duorec.serving.recommender import Recommender

    limits, options = check_config(cfg)
    recommender = Recommender.load(
        cfg.get("ckpt_path"),
        cfg.paths.log_dir,
        cfg.paths.cache_dir,
        cfg.get("data"),
        announce=lambda line: print(line, flush=True),  # the first line, before loading
    )
    app = create_app(recommender, limits, options)
    # Everything loaded so far (the data set's frames, the catalogue's names and titles,
    # millions of objects) lives as long as the process: frozen, the collector stops walking
    # it. Before, a full collection every few hundred requests stalled one of them for
    # 100-300 ms (p99 138 ms for pairs at 100 requests/s, p50 6 ms; benchmarks/serve_load.py).
    gc.collect()
    gc.freeze()
    host, port = str(cfg.host), int(cfg.port)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {recommender.name} at http://{shown}:{port}/ (API docs at /docs)", flush=True)
    if not _loopback(host):
        print(
            f"note: host={host} is reachable from other machines; there is no login or TLS",
            flush=True,
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=1,
        log_level=str(cfg.log_level),
        access_log=bool(cfg.access_log),
        server_header=False,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@hydra.main(version_base="1.3", config_path="../../conf", config_name="serve")
@friendly_errors("duorec.serve")
def main(cfg: DictConfig) -> None:
    serve(cfg)


if __name__ == "__main__":
    from duorec.overrides import run_checked

    run_checked(main, "serve", "duorec.serve")
