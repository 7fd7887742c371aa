"""Issue 13: the heartbeat on time while the daemon's workers write.

At 10,000 topics the beat was written up to 8.8 s late (benchmarks/scale_beat.py): not for
the GIL, but waiting in SQLite's busy handler for the one write lock, which the workers'
page and run writes took again and again; the handler sleeps up to 100 ms between tries
and mostly found the lock taken by the next writer. The beat now tries every millisecond
and takes the lock in the first gap; one it cannot take within its patience is a missed
beat (an error), never a beat written late as if on time.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harvester.errors import StoreError
from harvester.store.database import open_engine
from harvester.store.repository import Repository


def busy_writer(path: Path, stop: threading.Event, *, hold: float, gap: float) -> None:
    """Another writer of the file (a worker storing pages): the write lock held ``hold``
    seconds at a time, taken again ``gap`` seconds after each commit."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE heartbeats SET pid = pid WHERE daemon_id = 'other'")
            time.sleep(hold)
            conn.execute("COMMIT")
            time.sleep(gap)
    finally:
        conn.close()


def test_a_beat_is_written_between_another_writers_transactions(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    engine = open_engine(f"sqlite:///{path}")
    repo = Repository(engine, clock=lambda: datetime.now(UTC))
    repo.beat("other", host="h", pid=1)
    stop = threading.Event()
    writer = threading.Thread(
        target=busy_writer, args=(path, stop), kwargs={"hold": 0.05, "gap": 0.005}
    )
    writer.start()
    took = []
    try:
        time.sleep(0.2)
        for _ in range(10):
            began = time.monotonic()
            repo.beat("d", host="h", pid=2, patience=5)
            took.append(time.monotonic() - began)
            time.sleep(0.03)
    finally:
        stop.set()
        writer.join(10)
    # the lock is free 5 ms of every 55: a beat waits out at most about one hold
    assert max(took) < 0.5, took
    (beat,) = [b for b in repo.heartbeats() if b.daemon_id == "d"]
    assert beat.stopped_at is None
    engine.dispose()


def test_a_beat_that_cannot_get_the_lock_in_time_fails_and_leaves_the_connection_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.db"
    engine = open_engine(f"sqlite:///{path}")
    repo = Repository(engine, clock=lambda: datetime.now(UTC))
    repo.beat("d", host="h", pid=2)
    first = repo.heartbeats()[0].beat_at
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer that keeps the lock (a long transaction)
    try:
        began = time.monotonic()
        with pytest.raises(StoreError, match=r"no write lock within 0\.3 s"):
            repo.beat("d", host="h", pid=2, patience=0.3)
        assert 0.3 <= time.monotonic() - began < 2.0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert repo.heartbeats()[0].beat_at == first  # the missed beat left no trace
    with engine.connect() as conn:  # the pool's connection waits as configured again
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    repo.beat("d", host="h", pid=2)
    assert repo.heartbeats()[0].beat_at > first
    engine.dispose()
