"""Shared test fixtures: the recorded responses, databases (SQLite and PostgreSQL), a clock.

PostgreSQL tests run when HARVESTER_TEST_POSTGRES_URL names a server (``.ci/run`` sets it to
the local one); each test gets a schema of its own, dropped afterwards. Under CI=true a
missing PostgreSQL is an error, not a skip.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.emulator import Emulator
from tests.smtp_server import LoopbackSMTP

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"
POSTGRES_ENV = "HARVESTER_TEST_POSTGRES_URL"


def require_shared() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded API responses not found at {FIXTURES} (../shared is absent)")
    return FIXTURES


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Tests talk to local servers only: a connection anywhere else fails loudly."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host = str(address[0])
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise ConnectionRefusedError(f"tests may only connect to loopback, not {host}")
        real_connect(self, address)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]


@pytest.fixture
def smtp() -> Iterator[LoopbackSMTP]:
    """A real SMTP server (aiosmtpd) on loopback, listening, that keeps what it receives."""
    server = LoopbackSMTP()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fixtures_dir() -> Path:
    return require_shared()


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2025, 1, 15, 12, 0, tzinfo=UTC))


class Sleeps(list[float]):
    """A sleep that records how long it was asked to wait, and does not wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(scope="module")
def running() -> Iterator[Emulator]:
    """One emulator of the APIs over the recorded responses, per test module."""
    with Emulator(require_shared()) as emu:
        yield emu


@pytest.fixture
def emu(running: Emulator) -> Emulator:
    """The module's emulator with faults, rate limits, request log and routes reset."""
    running.reset()
    return running


def _postgres_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: PostgreSQL tests must run in CI")
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV} to run these tests")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = _postgres_url()
    assert base is not None
    import sqlalchemy as sa

    from harvester.store.database import create

    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as e:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {base} not reachable: {e.orig}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'harvester.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
