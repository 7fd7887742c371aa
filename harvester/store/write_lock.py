"""The store's write lock: one page (or alert batch, or run roll-up) writes at a time.

Taken first in every transaction that matches records against the store and writes, so that
reading what the page meets and writing it are one step (see :mod:`harvester.store.writer`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# The write lock on PostgreSQL: pg_advisory_xact_lock(class, hashtext(current_schema())), so
# two stores in two schemas of one database do not wait for each other. The class ("hvw")
# keeps it apart from the claims' and the migrations' one-argument (bigint) locks.
WRITE_LOCK_CLASS = 0x687677
# How long a page waits for the write lock on PostgreSQL before its run fails (and is
# retried later); SQLite waits its busy timeout (30 s, database.py).
WRITE_LOCK_TIMEOUT = "120s"


def lock_writes(session: Session) -> None:
    """Take the store's write lock for the session's transaction; the first statement.

    PostgreSQL: a transaction-scoped advisory lock, released by the commit or rollback (a
    crashed writer's lock goes with its connection). SQLite has one writer at a time
    anyway, but the page's reads must come after that writer is done: ``BEGIN IMMEDIATE``
    takes the write lock before the first read (the driver would otherwise begin the
    transaction only at the first INSERT, after the reads)."""
    if session.get_bind().dialect.name == "postgresql":
        # SET LOCAL both; jit off: the page's statements are index lookups whose estimated
        # cost can pass jit_above_cost (a table not vacuumed yet), and compiling one took
        # 0.3 s where the lookup itself took 0.2 s
        session.execute(
            text("SELECT set_config('lock_timeout', :t, true), set_config('jit', 'off', true)"),
            {"t": WRITE_LOCK_TIMEOUT},
        )
        session.execute(
            # (no schema on the search path: '', never NULL, which would take no lock)
            text("SELECT pg_advisory_xact_lock(:cls, hashtext(coalesce(current_schema(), '')))"),
            {"cls": WRITE_LOCK_CLASS},
        )
        return
    conn = session.connection()
    if conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        # inside a transaction the caller began (an outer one, as the benchmark's): a write,
        # even of nothing, takes the write lock now
        conn.exec_driver_sql("DELETE FROM work_match_keys WHERE 0")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
