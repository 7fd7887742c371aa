"""Where the heartbeat waits during a daily tick: scale.py's tick, with the beat traced.

Usage::

    python benchmarks/scale_beat.py [--topics 10000] [--speedup 60] [--database-url URL]

Runs one daily tick of ``benchmarks/scale.py`` (same daemon, same paced sources) and, for the
beats around the longest gap between two beats, splits the gap into its parts:

- **wake**: how much later than asked the beat loop's wait returned (the thread was runnable
  but had no GIL, or no core);
- **checkout**: from the beat's start to the pool handing it a connection;
- **statements**: each statement's wall time, and which other threads held the database's
  write lock meanwhile (from their first write statement to their commit or rollback: on
  SQLite the one writer, on PostgreSQL row locks);
- **lock**: on SQLite, the beat's wait for the write lock (``take_write_lock``), and which
  other threads held it meanwhile;
- **gc**: the garbage collector's passes during the gap (each one stops every thread);
- **cpu**: the beat thread's own CPU time; wall time not spent in a statement, a checkout,
  the lock or on the CPU is time waiting for the GIL.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE", "SELECT PG_ADVISORY_XACT_LOCK")


@dataclass(slots=True)
class Beat:
    started: float
    wake_late: float = 0.0
    checkout: float | None = None
    ended: float = 0.0
    cpu: float = 0.0
    lock: tuple[float, float] | None = None
    statements: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass(slots=True)
class Hold:
    thread: str
    start: float
    end: float
    first: str
    waited: float  # the first write statement's own time: waiting for the lock, mostly


class TracedEvent(threading.Event):
    """The daemon's stop event, timing the heartbeat thread's waits on it."""

    def __init__(self, wakes: dict[int, float]) -> None:
        super().__init__()
        self._wakes = wakes

    def wait(self, timeout: float | None = None) -> bool:
        asked = time.monotonic()
        got = super().wait(timeout)
        if timeout is not None and threading.current_thread().name == "heartbeat":
            self._wakes[threading.get_ident()] = time.monotonic() - asked - timeout
        return got


class BeatTrace:
    """Hooks on the engine and on the daemon's beat; :meth:`report` after the tick."""

    def __init__(self) -> None:
        self.beats: list[Beat] = []
        self.holds: list[Hold] = []
        self._open: dict[int, Hold] = {}  # DBAPI connection id → its open write hold
        self._wakes: dict[int, float] = {}
        self._current: Beat | None = None
        self._lock = threading.Lock()
        self.collections: list[tuple[float, float, int]] = []  # start, end, generation
        self._gc_began = 0.0

    def install(self, app: Any, daemon: Any) -> None:
        from sqlalchemy import event

        engine = app.engine
        daemon.stopping = TracedEvent(self._wakes)
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)
        original: Callable[[], None] = daemon.beat_job

        def beat_job() -> None:
            beat = Beat(time.monotonic(), self._wakes.pop(threading.get_ident(), 0.0))
            cpu = time.thread_time()
            self._current = beat
            try:
                original()
            finally:
                self._current = None
                beat.ended = time.monotonic()
                beat.cpu = time.thread_time() - cpu
                self.beats.append(beat)

        daemon.beat_job = beat_job
        from harvester.store import daemons

        take = daemons.take_write_lock

        def take_write_lock(session: Any, **kwargs: Any) -> None:
            began = time.monotonic()
            try:
                take(session, **kwargs)
            finally:
                if self._current is not None:
                    self._current.lock = (began, time.monotonic())

        daemons.take_write_lock = take_write_lock  # type: ignore[assignment]
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_began = time.monotonic()
        else:
            self.collections.append((self._gc_began, time.monotonic(), info["generation"]))

    def _mine(self) -> Beat | None:
        return self._current if threading.current_thread().name == "heartbeat" else None

    def _checkout(self, _dbapi: Any, _record: Any, _proxy: Any) -> None:
        beat = self._mine()
        if beat is not None and beat.checkout is None:
            beat.checkout = time.monotonic() - beat.started

    def _before(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        conn.info["traced_at"] = time.monotonic()

    def _after(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        now = time.monotonic()
        at = conn.info.pop("traced_at", now)
        words = " ".join(statement.split()[:3])
        beat = self._mine()
        if beat is not None:
            beat.statements.append((at, now, words))
        key = id(conn.connection.dbapi_connection)
        if statement.lstrip().upper().startswith(_WRITES) and key not in self._open:
            # the write lock is this connection's once its first write statement returns
            with self._lock:
                self._open[key] = Hold(threading.current_thread().name, now, 0.0, words, now - at)

    def _end(self, conn: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        with self._lock:
            hold = self._open.pop(key, None)
            if hold is not None:
                hold.end = time.monotonic()
                self.holds.append(hold)

    def report(self, interval: float, since: float, worst: int = 3) -> list[str]:
        beats = [b for b in self.beats if b.ended >= since - interval]
        pairs = sorted(
            zip(beats, beats[1:], strict=False),
            key=lambda p: p[1].ended - p[0].ended,
            reverse=True,
        )[:worst]
        lines = []
        for before, beat in pairs:
            late = beat.ended - before.ended - interval
            wall = beat.ended - beat.started
            in_sql = sum(e - s for s, e, _ in beat.statements)
            checkout = beat.checkout or 0.0
            lock = beat.lock[1] - beat.lock[0] if beat.lock else 0.0
            rest = max(0.0, wall - in_sql - checkout - lock - beat.cpu)
            paused = [
                (s, e, g) for s, e, g in self.collections if e > before.ended and s < beat.ended
            ]
            lines.append(
                f"gap {beat.ended - before.ended:.3f} s (late {late:.3f}): previous beat took "
                f"{before.ended - before.started:.3f}, this one woke {beat.wake_late:.3f} late "
                f"and took {wall:.3f} (checkout {checkout:.3f}, lock {lock:.3f}, statements "
                f"{in_sql:.3f}, cpu {beat.cpu:.3f}, the rest {rest:.3f}); gc in the gap: "
                f"{len(paused)} passes, {sum(e - s for s, e, _ in paused):.3f} s, longest "
                + ", ".join(
                    f"gen {g} {e - s:.3f} s"
                    for s, e, g in sorted(paused, key=lambda c: c[0] - c[1])[:2]
                )
            )
            spans = list(beat.statements)
            if beat.lock:
                spans.insert(0, (*beat.lock, "write lock"))
            for start, end, text in spans:
                held = [
                    h
                    for h in self.holds
                    if h.thread != "heartbeat" and h.start < end and h.end > start
                ]
                who = ", ".join(
                    f"{h.thread} {h.first} held {h.end - h.start:.3f} s" for h in held[:4]
                )
                lines.append(
                    f"    {text}: {end - start:.3f} s" + (f"; writers: {who}" if who else "")
                )
        holds = sorted((h for h in self.holds if h.end >= since), key=lambda h: h.start - h.end)
        passes = [(s, e, g) for s, e, g in self.collections if e >= since]
        lines.append(
            f"gc during the tick: {len(passes)} passes, {sum(e - s for s, e, _ in passes):.2f} s; "
            "longest: "
            + ", ".join(
                f"gen {g} {e - s:.3f} s"
                for s, e, g in sorted(passes, key=lambda c: c[0] - c[1])[:5]
            )
        )
        lines.append("longest write holds during the tick:")
        for h in holds[:5]:
            lines.append(
                f"    {h.thread} {h.first}: {h.end - h.start:.3f} s (after waiting {h.waited:.3f})"
            )
        return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--speedup", type=float, default=60.0)
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="as scale.py's (default: SQLite)")
    args = parser.parse_args()
    import logging

    from benchmarks.scale import tick
    from harvester.logs import configure_logging

    configure_logging("json", level=logging.WARNING)
    trace = BeatTrace()
    result = tick(
        args.topics, args.speedup, args.requests, database_url=args.database_url, trace=trace
    )
    print(result)
    for line in trace.report(float(result["interval_s"]), float(result["fired_at"])):
        print(line)


if __name__ == "__main__":
    main()
