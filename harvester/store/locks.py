"""Claims: who may run a harvest window or send a digest right now.

On PostgreSQL several daemon replicas share one database; each unit of work is claimed with a
session-level advisory lock held for as long as the work runs, so it never runs twice at once
and a crashed replica's claims vanish with its connection. SQLite serves one daemon, but a
command (`harvester digest`) may run beside it: claims are lock files beside the database
file (:class:`FileClaims`), one per claim key, so they hold across processes, and the kernel
drops them when a process dies (no stale lease to expire, no write to the database, which
SQLite's single writer would make wait). :class:`DaemonLock` keeps a second daemon off the
same file.

A claim is exclusive, or shared (``shared=True``: any number of shared holders, no exclusive
one). A daily window has two keys: the daemon's batch holds its source's key
(:func:`source_key`) exclusively for every window it drains; a single window
(:func:`claim_window`: `harvester harvest`, a topic harvested alone) holds the source's key
shared and its own (:func:`window_key`) exclusively. So a command never runs a window while a
daemon drains its source, and two commands on different topics of one source run side by side.
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
    def claim(self, key: str, *, shared: bool = False) -> AbstractContextManager[bool]:
        """A context in which ``True`` means this process holds ``key`` (exclusively, or
        ``shared`` with other shared holders); ``False``: someone else does, skip the work."""
        ...


def source_key(source: str) -> str:
    """The claim on every daily window of ``source`` (a daemon's batch holds it)."""
    return f"harvest-source:{source}"


def window_key(topic: str, source: str) -> str:
    """The claim on one topic's daily window of ``source``."""
    return f"harvest:{topic}:{source}"


@contextmanager
def claim_window(claims: Claims, topic: str, source: str) -> Iterator[bool]:
    """One topic's daily window of ``source`` on its own: the source's claim shared, so not
    while a daemon's batch drains the source (whose windows the batch's exclusive claim
    covers), and the window's own claim."""
    with claims.claim(source_key(source), shared=True) as free:
        if not free:
            yield False
            return
        with claims.claim(window_key(topic, source)) as mine:
            yield mine


def lock_id(key: str) -> int:
    """A stable signed 64-bit id for an advisory lock (PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresClaims:
    """``pg_try_advisory_lock`` on a connection of its own, held while the work runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def claim(self, key: str, *, shared: bool = False) -> Iterator[bool]:
        ident = lock_id(key)
        mode = "_shared" if shared else ""
        with self.engine.connect() as conn:
            got = bool(
                conn.execute(text(f"SELECT pg_try_advisory_lock{mode}(:k)"), {"k": ident}).scalar()
            )
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text(f"SELECT pg_advisory_unlock{mode}(:k)"), {"k": ident})
                    conn.commit()


class LocalClaims:
    """In-process claims, for a single daemon (SQLite): per key, the number of shared
    holders, or -1 for an exclusive one."""

    def __init__(self) -> None:
        self._holders: dict[str, int] = {}
        self._guard = threading.Lock()

    @contextmanager
    def claim(self, key: str, *, shared: bool = False) -> Iterator[bool]:
        with self._guard:
            held = self._holders.get(key, 0)
            got = held == 0 or (shared and held > 0)
            if got:
                self._holders[key] = held + 1 if shared else -1
        try:
            yield got
        finally:
            if got:
                with self._guard:
                    left = self._holders[key] - 1 if shared else 0
                    if left:
                        self._holders[key] = left
                    else:
                        del self._holders[key]


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
    def claim(self, key: str, *, shared: bool = False) -> Iterator[bool]:
        path = self.path(key)
        try:
            fh = path.open("a+")
        except OSError as e:
            raise StoreError(f"cannot create the claim file {path}: {e}") from e
        with fh:
            try:
                fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
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
    """One daemon per SQLite database file, whatever name the file is reached by.

    The lock is taken on the database file itself (``flock``): the kernel keeps it with
    the file, not with a name, so a hard link, a symlink or another relative path to the
    same file meets it. Beside the file, ``<database>.daemon.lock`` (named after the
    resolved path) is locked too and names the holder; it also keeps off a daemon of an
    older harvester, which locks only that file. The kernel drops both locks when the
    process dies, so a crash never leaves them stuck.

    Closing any descriptor of a file drops the POSIX locks that SQLite holds on it in the
    same process: acquire before the process opens the database (a refused ``acquire``
    closes its descriptor at once) and release after its engine is disposed.
    """

    def __init__(self, database: Path) -> None:
        self.database = database.resolve()
        self.path = self.database.with_name(self.database.name + ".daemon.lock")
        self._db_fd: int | None = None
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        # the database file may not exist yet: SQLite takes an empty file as a new database
        try:
            fd = os.open(self.database, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"cannot open the SQLite database {self.database}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._refused(self._holder()) from None
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise self._refused(holder) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._db_fd, self._fh = fd, fh

    def _holder(self) -> str:
        """Who holds the file, as its lock file says (when it was started by this name)."""
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def _refused(self, holder: str) -> StoreError:
        return StoreError(
            f"another harvester daemon ({holder}) already runs on this SQLite database "
            f"({self.database}, perhaps by another name: a hard link or a symlink; lock "
            f"file {self.path}); SQLite serves one daemon: stop the other one, or use "
            "PostgreSQL for several replicas"
        )

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
        if self._db_fd is not None:
            fcntl.flock(self._db_fd, fcntl.LOCK_UN)
            os.close(self._db_fd)
            self._db_fd = None
