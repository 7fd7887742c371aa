"""Shared set-up of the web tests: a real harvest from the emulator (PubMed's recorded
records) into the test database, two topics over the same records (so feedback in one topic
acts on the other), one email subscription to two readers over the loopback SMTP server."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn

from harvester.app import App, build_app
from harvester.config import parse_settings
from tests.conftest import FixedClock
from tests.emulator import Emulator
from tests.emulator.pubmed import PubMedRoutes

SECRET_ENV = "HARVESTER_TEST_WEB_SECRET"
ADMIN_ENV = "HARVESTER_TEST_WEB_ADMIN"
SECRET = "test-web-secret-7c1e0b9a4f"
ADMIN_PASSWORD = "admin-pass-3e8d"
QUERY = '"natural language processing" OR "machine learning" OR NLP OR "deep learning"'
NOW = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)
READERS = ("ada@example.org", "bob@example.org")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def web_app(
    emu: Emulator, database_url: str, smtp_port: int, base_url: str | None, **web: Any
) -> App:
    routes = emu.source("pubmed")
    assert isinstance(routes, PubMedRoutes)
    routes.max_retrievable = 9_999
    settings = parse_settings(
        {
            "database": {"url": database_url},
            "sources": {
                "pubmed": {
                    "base_url": emu.base_url("pubmed"),
                    "email": "tests@example.org",
                    "requests_per_second": 50.0,
                }
            },
            "topics": [
                {"name": "nlp", "query": QUERY, "sources": ["pubmed"], "lookback_days": 20_000},
                {"name": "ml", "query": QUERY, "sources": ["pubmed"], "lookback_days": 20_000},
            ],
            "subscriptions": [
                {
                    "name": "lab",
                    "topics": ["nlp", "ml"],
                    "channel": "email",
                    "to": list(READERS),
                    "cadence": "immediate",
                    "max_items": 10,
                }
            ],
            "channels": {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "security": "none",
                    "from": "harvester@example.org",
                }
            },
            "web": {
                **({"base_url": base_url} if base_url else {}),
                "secret_env": SECRET_ENV,
                "admin_password_env": ADMIN_ENV,
                "page_size": 10,
                **web,
            },
        },
        path="web.toml",
    )
    return build_app(settings, clock=FixedClock(NOW), sleep=lambda _s: None)


def links(mail_text: str, kind: str) -> list[str]:
    """The web links of one kind (u: unsubscribe, f: feedback, t: topic) in a mail's text."""
    return re.findall(rf"https?://[^\s\"<>]+/{kind}/[A-Za-z0-9_.\-%?=&]+", mail_text)


@contextmanager
def serving(asgi: Any, port: int) -> Iterator[str]:
    """The ASGI app served by uvicorn on loopback, in a thread, for the test's duration."""
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
