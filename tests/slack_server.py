"""A local HTTP server that answers like a Slack incoming webhook.

- ``POST /services/<token>`` with a JSON body: ``200 ok`` and the payload recorded;
- a message that breaks Block Kit's limits: ``400 invalid_blocks`` (50 blocks, 3,000
  characters of section text, 150 of header text, 10 context elements; docs.slack.dev
  Block Kit reference), or ``400 msg_blocks_too_long`` past ~13,000 characters of block text
  (the undocumented limit reported in slackapi/bolt-js#2509); bad JSON: ``400
  invalid_payload``; neither text nor blocks: ``400 no_text``;
- another path: ``404 no_service`` (a revoked or mistyped webhook);
- ``fail_next(status, body, retry_after=…, times=…)`` answers the next requests with 429 and
  ``Retry-After``, 5xx, or anything else, before the normal behaviour resumes;
- ``hold_after(n)``: once ``n`` messages were accepted, the next request is held unanswered
  (``held`` is set) until ``release()``, then answered 503 and not posted: a test kills the
  client while Slack "thinks".

Every request is kept in ``requests`` (status, payload); accepted payloads in ``posts``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
BLOCKS_CHARS = 13_000
BLOCK_TYPES = frozenset(
    {"header", "section", "context", "divider", "image", "actions", "rich_text"}
)


@dataclass(frozen=True)
class Exchange:
    path: str
    status: int
    payload: Any
    reply: str


@dataclass
class _Fault:
    status: int
    body: str
    retry_after: str | None
    times: int


def check_payload(payload: Any) -> str | None:
    """The error Slack would answer for ``payload``, or None if it would post it."""
    if not isinstance(payload, dict):
        return "invalid_payload"
    blocks = payload.get("blocks")
    if blocks is None:
        return None if payload.get("text") else "no_text"
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    chars = 0
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            return "invalid_blocks"
        if kind == "header":
            text = block.get("text") or {}
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= HEADER_TEXT:
                return "invalid_blocks"
            chars += len(text["text"])
        elif kind == "section":
            text = block.get("text") or {}
            if text.get("type") not in ("mrkdwn", "plain_text"):
                return "invalid_blocks"
            if not 0 < len(text.get("text", "")) <= SECTION_TEXT:
                return "invalid_blocks"
            chars += len(text["text"])
        elif kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= CONTEXT_ELEMENTS:
                return "invalid_blocks"
            for element in elements:
                if not 0 < len(element.get("text", "")) <= SECTION_TEXT:
                    return "invalid_blocks"
                chars += len(element["text"])
    if chars > BLOCKS_CHARS:
        return "msg_blocks_too_long"
    return None


class SlackWebhookServer:
    """Runs on 127.0.0.1 and a free port until ``close()``; ``url`` is the webhook URL."""

    def __init__(self, *, token: str = "T0000TEST/B0000TEST/s3cr3tW3bh00kT0k3n") -> None:
        self.token = token
        self.requests: list[Exchange] = []
        self.posts: list[dict[str, Any]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._hold_after: int | None = None
        self.held = threading.Event()
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer._handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output is not the place for access logs

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a short poll interval: shutdown() waits up to one interval, once per test
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/services/{self.token}"

    def fail_next(
        self, status: int, body: str = "", *, retry_after: float | None = None, times: int = 1
    ) -> None:
        with self._lock:
            header = None if retry_after is None else f"{retry_after:g}"
            self._faults.append(_Fault(status, body, header, times))

    def hold_after(self, accepted: int) -> None:
        with self._lock:
            self._hold_after = accepted

    def release(self) -> None:
        with self._lock:
            self._hold_after = None
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlackWebhookServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        headers: dict[str, str] = {}
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        with self._lock:
            hold = self._hold_after is not None and len(self.posts) >= self._hold_after
        if hold:
            self.held.set()
            self._release.wait(timeout=60)
            with self._lock:
                self.requests.append(Exchange(request.path, 503, payload, "held"))
            try:
                request.send_response(503)
                request.send_header("Content-Length", "0")
                request.end_headers()
            except OSError:
                pass  # the client is gone
            return
        with self._lock:
            if request.path != f"/services/{self.token}":
                status, reply = 404, "no_service"
            elif self._faults:
                fault = self._faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(0)
                status, reply = fault.status, fault.body
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
            elif payload is None:
                status, reply = 400, "invalid_payload"
            elif error := check_payload(payload):
                status, reply = 400, error
            else:
                status, reply = 200, "ok"
                self.posts.append(payload)
            self.requests.append(Exchange(request.path, status, payload, reply))
        data = reply.encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/plain; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
