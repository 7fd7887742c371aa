"""``/healthz`` for container orchestrators: 200 while the scheduler runs, the database
answers and no job has run past its deadline; 503 otherwise, naming what is wrong (a harvest
stuck on a server that never answers keeps its topic × source blocked, since a job runs one
at a time: a restart is what frees it)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Engine, text

if TYPE_CHECKING:
    from harvester.harvesting.scheduler import Daemon

log = structlog.get_logger(__name__)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"


def daemon_check(daemon: Daemon, engine: Engine) -> Callable[[], tuple[bool, str]]:
    """The daemon's health: the database answers, the scheduler runs, no job is overdue."""

    def check() -> tuple[bool, str]:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        if not daemon.scheduler.running or daemon.stopping.is_set():
            return False, "scheduler stopped"
        dead = daemon.dead_threads()
        if dead:
            return False, f"threads ended: {', '.join(dead)}"
        overdue = daemon.overdue()
        if overdue:
            limit = _duration(daemon.max_run_seconds)
            jobs = ", ".join(f"{job} running for {_duration(s)}" for job, s in overdue)
            return False, f"stuck: {jobs} (limit {limit})"
        return True, "scheduler running"

    return check


class HealthServer:
    """A tiny HTTP server in a background thread; ``check`` returns (healthy, detail)."""

    def __init__(
        self, check: Callable[[], tuple[bool, str]], *, host: str = "0.0.0.0", port: int
    ) -> None:
        self.check = check
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?", 1)[0] != "/healthz":
                    self.send_error(404)
                    return
                try:
                    healthy, detail = outer.check()
                except Exception as e:  # a failing check is an unhealthy answer, not a crash
                    healthy, detail = False, f"check failed: {e}"
                body = (("ok" if healthy else "unhealthy") + f": {detail}\n").encode()
                self.send_response(200 if healthy else 503)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="healthz"
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("health endpoint listening", port=self.port, path="/healthz")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
