"""Claims: who may run a harvest window or send a digest right now.

On PostgreSQL several daemon replicas share one database; each unit of work is claimed with a
session-level advisory lock held for as long as the work runs, so it never runs twice at once
and a crashed replica's claims vanish with its connection. SQLite serves one daemon, but a
command (`harvester digest`) may run beside it: claims are lock files beside the database
file (:class:`FileClaims`), one per claim key, so they hold across processes, and the kernel
drops them when a process dies (no stale lease to expire, no write to the database, which
SQLite's single writer would make wait). :class:`DaemonLock` keeps a second daemon off the
same file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Engine, text

from harvester.errors import StoreError


class Claims(Protocol):
    def claim(self, key: str) -> AbstractContextManager[bool]:
        """A context in which ``True`` means this process holds ``key``; ``False``: someone
        else does, skip the work."""
        ...


def lock_id(key: str) -> int:
    """A stable signed 64-bit id for an advisory lock (PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresClaims:
    """``pg_try_advisory_lock`` on a connection of its own, held while the work runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        ident = lock_id(key)
        with self.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ident}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ident})
                    conn.commit()


class LocalClaims:
    """In-process claims, for a single daemon (SQLite)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()


class FileClaims:
    """``flock`` on a lock file per claim key beside a SQLite database file.

    flock locks belong to an open file, so they also keep two threads of one process apart,
    and they vanish when the holder dies (even by SIGKILL)."""

    def __init__(self, database: Path) -> None:
        self.database = database

    def path(self, key: str) -> Path:
        digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
        return self.database.with_name(f"{self.database.name}.claim-{digest}.lock")

    @contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        path = self.path(key)
        try:
            fh = path.open("a+")
        except OSError as e:
            raise StoreError(f"cannot create the claim file {path}: {e}") from e
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def claims_for(engine: Engine) -> PostgresClaims | FileClaims | LocalClaims:
    """Advisory locks on PostgreSQL; lock files beside a SQLite file; in-process locks for an
    in-memory SQLite database (which no other process can open)."""
    if engine.dialect.name == "postgresql":
        return PostgresClaims(engine)
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file::memory:"):
        return FileClaims(Path(database).resolve())
    return LocalClaims()


class DaemonLock:
    """An exclusive lock file beside a SQLite database: one daemon per file.

    The kernel drops the lock when the process dies, so a crash never leaves it stuck.
    """

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".daemon.lock")
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StoreError(
                f"another harvester daemon ({holder}) already runs on this SQLite database "
                f"(lock file {self.path}); SQLite serves one daemon: stop the other one, or use "
                "PostgreSQL for several replicas"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
