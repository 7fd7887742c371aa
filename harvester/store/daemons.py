"""Daemon bookkeeping: each daemon's heartbeat, refreshed while it runs.

On SQLite the beat is a write, so it needs the database's one write lock, which the daemon's
own workers take and release many times a second while they store pages and runs. A writer
waiting in SQLite's busy handler sleeps longer and longer between its tries (up to 100 ms
each), so a beat waiting there mostly found the lock taken again by the next writer: seconds
late at 10,000 topics (benchmarks/scale_beat.py). The beat waits in short busy timeouts
instead (tries 1, 2 and 5 ms apart, again and again), and takes the lock in the first gap
between two writers' transactions.
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

MISSED_BEATS = 3  # beats a daemon may miss before `status` calls it stale
# SQLite's busy handler tries again after 1, 2, 5, 10 … ms: a timeout of 10 ms is four quick
# tries, in C, without the GIL (which the workers' matching keeps busy)
BEAT_BUSY_MS = 10


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
    busy_ms: int = BEAT_BUSY_MS,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """On SQLite, begin the session's transaction holding the write lock, waiting in busy
    timeouts of ``busy_ms`` again and again for up to ``patience`` seconds (the connection's
    own timeout is restored after). PostgreSQL has no such lock: nothing to do."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    if raw.in_transaction:
        raise StoreError("take_write_lock needs a session whose transaction has not begun")
    (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
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
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(timeout)}")
