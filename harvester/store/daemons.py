"""Daemon bookkeeping: each daemon's heartbeat, refreshed while it runs.

On SQLite the beat is a write, so it needs the database's one write lock, which the daemon's
own workers take and release many times a second while they store pages. SQLite's busy
handler sleeps between its tries (up to 100 ms each), so a waiting beat mostly finds the
lock taken again by the next writer and waited 8.8 s at 10,000 topics (benchmarks/
scale_beat.py). The beat tries itself every millisecond instead, and takes the lock in the
first gap between two writers' transactions.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.errors import StoreError
from harvester.store.base import Store
from harvester.store.models import Heartbeat
from harvester.store.values import DaemonBeat

BEAT_POLL_SECONDS = 0.001  # how often a beat tries SQLite's write lock while it waits


class DaemonRepository(Store):
    def beat(
        self,
        daemon_id: str,
        *,
        host: str,
        pid: int,
        stopped: bool = False,
        patience: float = 30.0,
    ) -> None:
        """Create or refresh a daemon's heartbeat (``stopped`` when it shuts down). Waits up
        to ``patience`` seconds for SQLite's write lock, then raises StoreError: a beat
        that cannot be written is a missed beat, never one written later as if on time."""
        with self._session() as session, session.begin():
            take_write_lock(session, patience=patience)
            now = self.clock()  # after the wait: the beat says when it was written
            row = session.get(Heartbeat, daemon_id)
            if row is None:
                session.add(
                    Heartbeat(
                        daemon_id=daemon_id,
                        host=host,
                        pid=pid,
                        started_at=now,
                        beat_at=now,
                        stopped_at=now if stopped else None,
                    )
                )
            else:
                row.beat_at = now
                row.stopped_at = now if stopped else None

    def heartbeats(self) -> list[DaemonBeat]:
        """Every daemon's heartbeat, the latest beat first."""
        with self._session() as session:
            return [
                DaemonBeat(h.daemon_id, h.host, h.pid, h.started_at, h.beat_at, h.stopped_at)
                for h in session.execute(
                    select(Heartbeat).order_by(Heartbeat.beat_at.desc())
                ).scalars()
            ]


def take_write_lock(
    session: Session,
    *,
    patience: float,
    poll: float = BEAT_POLL_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """On SQLite, begin the session's transaction holding the write lock, trying every
    ``poll`` seconds for up to ``patience`` (the connection's own busy timeout is off
    meanwhile, and restored). PostgreSQL has no such lock: nothing to do."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    if raw.in_transaction:
        raise StoreError("take_write_lock needs a session whose transaction has not begun")
    (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute("PRAGMA busy_timeout = 0")
    deadline = monotonic() + patience
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise StoreError(f"database error: {e}") from e
                if monotonic() >= deadline:
                    raise StoreError(
                        f"database is locked: no write lock within {patience:g} s"
                    ) from e
            sleep(poll)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(timeout)}")
