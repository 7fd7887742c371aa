"""The page writer's provenance and identifier lookups are answered from their unique indexes.

Issue 13.4: on SQLite ``(source, source_id) IN (VALUES …)`` was planned as ``SCAN provenance``
(0.52 s per 500-record page at 1M works), the identifier lookup likewise. The statements the
writer really sends while storing a page (of real PubMed records) are captured and their
plans read back: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN on tables of 20,000 rows
after ANALYZE (on a near-empty table PostgreSQL rightly prefers a sequential scan).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from harvester.sources.base import Window
from harvester.store.database import open_engine
from harvester.store.repository import Repository
from tests.test_store import pubmed_records

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
FILLER = 20_000  # stored works, each with one provenance row and one identifier


def fill(engine: sa.Engine, count: int) -> None:
    """Rows shaped as a one-record work stores them (a work, its provenance, a DOI)."""
    works = [
        {"id": 10_000_000 + n, "title": f"filler {n}", "year": 2000, "record": "{}", "at": NOW}
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO works (id, title, year, record, created_at, updated_at) "
                "VALUES (:id, :title, :year, :record, :at, :at)"
            ),
            works,
        )
        conn.execute(
            sa.text(
                "INSERT INTO provenance (work_id, source, source_id, fetched_at, record) "
                "VALUES (:id, :source, :sid, :at, '{}')"
            ),
            [
                {"id": w["id"], "source": ("pubmed", "crossref")[n % 2], "sid": f"f{n}", "at": NOW}
                for n, w in enumerate(works)
            ],
        )
        conn.execute(
            sa.text("INSERT INTO identifiers (work_id, scheme, value) VALUES (:id, :s, :v)"),
            [
                {"id": w["id"], "s": ("doi", "pmid")[n % 2], "v": f"10.9999/f{n}"}
                for n, w in enumerate(works)
            ],
        )
        conn.execute(sa.text("ANALYZE"))


def captured_lookups(engine: sa.Engine, repo: Repository) -> list[tuple[str, Any]]:
    """The SELECTs on provenance and identifiers that storing a page sends."""
    seen: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        head = statement.lstrip().upper()
        if head.startswith("SELECT") and ("FROM PROVENANCE" in head or "FROM IDENTIFIERS" in head):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        run = repo.begin_run("nlp", "pubmed", Window(NOW - timedelta(days=1), NOW))
        records = pubmed_records()
        repo.store_page(run, "nlp", records)
        repo.store_page(run, "nlp", records)  # again: now every lookup finds its rows
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
    return seen


def test_provenance_and_identifier_lookups_use_their_indexes(database_url: str) -> None:
    engine = open_engine(database_url)
    try:
        repo = Repository(engine, clock=lambda: NOW)
        fill(engine, FILLER)
        lookups = captured_lookups(engine, repo)
        by_table = {
            table: [q for q in lookups if f"FROM {table}" in q[0].upper().split("WHERE")[0]]
            for table in ("PROVENANCE", "IDENTIFIERS")
        }
        # the lookups by key (a work's provenance rows are read by work_id, another index)
        keyed = {
            "PROVENANCE": [
                q for q in by_table["PROVENANCE"] if "source_id" in q[0].split("WHERE")[1]
            ],
            "IDENTIFIERS": by_table["IDENTIFIERS"],
        }
        assert keyed["PROVENANCE"] and keyed["IDENTIFIERS"], lookups
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for table, queries in keyed.items():
                for statement, parameters in queries:
                    if engine.dialect.name == "sqlite":
                        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
                        assert f"SCAN {table.lower()}" not in plan, plan
                        assert f"SEARCH {table.lower()} USING" in plan and "INDEX" in plan, plan
                    else:
                        cursor.execute("EXPLAIN " + statement, parameters)
                        plan = " | ".join(str(row[0]) for row in cursor.fetchall())
                        assert f"Seq Scan on {table.lower()}" not in plan, plan
                        assert "Index" in plan, plan
        finally:
            raw.close()
    finally:
        engine.dispose()


@pytest.mark.parametrize("pairs", [[("pubmed", "1"), ("doi", "x"), ("pubmed", "2")]])
def test_lookup_pairs_are_grouped_in_first_seen_order(pairs: list[tuple[str, str]]) -> None:
    from harvester.store.lookup import _grouped

    assert _grouped(pairs) == [("pubmed", ["1", "2"]), ("doi", ["x"])]


def test_blocking_key_rows_are_read_from_the_key_index(database_url: str) -> None:
    """The blocking-key lookup (one statement per key on SQLite, a LATERAL join on PostgreSQL)
    searches work_match_keys by its (key, work_id) key, which holds the year too: no scan of
    its 120,000 rows."""
    from harvester.store.lookup import PageLookup

    engine = open_engine(database_url)
    try:
        fill(engine, FILLER)
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO work_match_keys (key, work_id, year) VALUES (:k, :w, 2000)"),
                [
                    {"k": f"{kind}:filler{n % 5000}", "w": 10_000_000 + n}
                    for n in range(FILLER)
                    for kind in ("ts", "te", "tw", "ay", "id", "xx")
                ],
            )
            conn.execute(sa.text("ANALYZE"))
        seen: list[tuple[str, Any]] = []
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if engine.dialect.name == "sqlite":
                from harvester.store.lookup import _SQLITE_KEY_ROWS, _SQLITE_KEY_ROWS_IN

                for statement, parameters in (
                    (_SQLITE_KEY_ROWS, ("ts:filler7", 201)),
                    (_SQLITE_KEY_ROWS_IN, ("ts:filler7", 1999, 2001, 201)),
                ):
                    cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                    plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
                    # the rows are the (key, work_id) index (WITHOUT ROWID): no second lookup
                    assert "SEARCH work_match_keys USING PRIMARY KEY (key=?)" in plan, plan
                    assert "SCAN work_match_keys" not in plan, plan
            else:

                def before(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
                    if "work_match_keys" in statement:
                        seen.append((statement, parameters))

                sa.event.listen(engine, "before_cursor_execute", before)
                with Session(engine) as session:
                    rows = list(
                        PageLookup(session, True)._key_rows(
                            {"ts:filler7": (1999, 2001), "ay:filler8": None}
                        )
                    )
                sa.event.remove(engine, "before_cursor_execute", before)
                # 4 rows a key, all in the range (year 2000)
                got = [(key, count, [year for _, year in found]) for key, count, found in rows]
                assert got == [
                    ("ts:filler7", 4, [2000] * 4),
                    ("ay:filler8", 4, [2000] * 4),
                ]
                ((statement, parameters),) = seen
                cursor.execute("EXPLAIN " + statement, parameters)
                plan = " | ".join(str(row[0]) for row in cursor.fetchall())
                assert "Seq Scan on work_match_keys" not in plan, plan
                assert "work_match_keys_pkey" in plan, plan
        finally:
            raw.close()
    finally:
        engine.dispose()
