"""Engines and migrations.

``open_engine(url)`` gives a ready engine: SQLite in WAL mode with a busy timeout, PostgreSQL
through psycopg 3. A database with no tables is migrated on first use; an older schema on
PostgreSQL asks for ``harvester db upgrade`` (several replicas must not race to migrate it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from harvester.errors import ConfigError, StoreError

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x6861727665737400  # "harvest\0": the advisory lock id migrations hold


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


_SQLITE_CACHE_KIB = 64 * 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the daemon read while a backfill writes; the busy timeout waits for the writer
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # SQLite's default page cache is 2 MB: against a large store every index probe of a page's
    # lookups and key inserts then re-reads its B-tree pages through the OS (see README, ingest)
    cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
    cursor.close()


def create(url: str) -> Engine:
    """An engine for ``url`` (no migration). ``postgresql://`` means psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, SQLAlchemyError) as e:
        raise StoreError(f"cannot use database URL {_safe(url)}: {e}") from e
    return engine


# PostgreSQL's FATAL message for a connection to a database that was never created
_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')


def _create_hint(engine: Engine, name: str) -> str:
    """A database the URL names but the server does not have: the user's to create (it is a
    configuration problem, exit 2), so say how."""
    u = engine.url
    opts = " ".join(
        o for o in (f"-h {u.host}" if u.host else "", f"-p {u.port}" if u.port else "",
                    f"-U {u.username}" if u.username else "") if o
    )  # fmt: skip
    return (
        f"database {name!r} does not exist on {u.host or 'localhost'}:{u.port or 5432}; "
        f"create it with `createdb {opts + ' ' if opts else ''}{name}` "
        f'(or `CREATE DATABASE "{name}";` in psql), then run `harvester db upgrade`'
    )


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Apply the pending migrations up to ``revision``; returns the revision now in force."""
    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # replicas started together (systemd on several hosts) migrate one at a time;
                # the lock ends with the transaction, and the next finds nothing to do
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as e:
        raise StoreError(f"migration failed on {_safe(str(engine.url))}: {e}") from e
    return head_revision() if revision == "head" else revision


def open_engine(url: str) -> Engine:
    """An engine whose schema is current: new databases are created, SQLite files upgraded."""
    engine = create(url)
    try:
        current = current_revision(engine)
        if current == head_revision():
            return engine
        empty = not inspect(engine).get_table_names()
    except OperationalError as e:
        missing = _MISSING_DATABASE.search(str(e.orig))
        if missing and engine.dialect.name == "postgresql":
            raise ConfigError(_create_hint(engine, missing[1])) from e
        raise StoreError(f"cannot open database {_safe(url)}: {e.orig}") from e
    if empty or engine.dialect.name == "sqlite":
        log.info("database migrated", url=_safe(url), from_revision=current)
        upgrade(engine)
        return engine
    raise StoreError(
        f"database {_safe(url)} is at schema revision {current}, this harvester needs "
        f"{head_revision()}: run `harvester db upgrade`"
    )
