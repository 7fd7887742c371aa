"""Serving the web app from a thread of another process (the daemon's ``--http-port``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger(__name__)


class WebServer:
    """uvicorn serving ``asgi`` on ``host``:``port`` in a background thread; ``port=0`` picks
    a free one (``.port`` once started)."""

    def __init__(self, asgi: Any, *, host: str = "127.0.0.1", port: int) -> None:
        config = uvicorn.Config(
            asgi, host=host, port=port, log_level="warning", proxy_headers=True, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        # the daemon keeps its own SIGTERM handler: uvicorn installs none outside the main
        # thread
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="web")
        self.host = host
        self.port = port

    def start(self, timeout: float = 20.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the web server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        servers = getattr(self._server, "servers", [])
        if servers and servers[0].sockets:
            self.port = int(servers[0].sockets[0].getsockname()[1])
        log.info("web interface listening", host=self.host, port=self.port)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
