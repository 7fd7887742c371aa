"""The store of shared harvesting: a source's window fetched once for many topics.

::

    open_window(source, mode, window)         a source_windows row, 'running'
    store_page(window, records, matches, runs) works + provenance for the records some topic
                                               matched, a topic hit per (topic, record), and a
                                               source_records row per record (its JSON only
                                               if no topic matched it): stored once
    close_window(...)                          ok | partial | failed | interrupted
    covering(source, since)                    completed windows a joining topic reads
    stored_records(windows)                    their records, from either table
    begin_runs / finish_runs                   each topic's own harvest_runs row and watermark,
                                               written for all topics in one statement each

One transaction per page, under the store's write lock, as ``Repository.store_page``; the
topics' hits after it, in short transactions of their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, select, update

from harvester.records import Record
from harvester.sources.base import Window
from harvester.store.batch_runs import BatchRuns, chunks
from harvester.store.lookup import provenance_key
from harvester.store.models import SourceRecord, SourceWindow, TopicHit
from harvester.store.works import store_again_on_conflict
from harvester.store.write_lock import lock_writes
from harvester.store.writer import PageWriter

log = structlog.get_logger(__name__)

_CHUNK = 500
_HITS_CHUNK = 1000  # topic hits per transaction
COMPLETE = ("ok", "partial")


@dataclass(frozen=True, slots=True)
class StoredWindow:
    id: int
    start: datetime
    end: datetime


@dataclass(slots=True)
class TopicPage:
    """What one page gave one topic."""

    matched: int = 0
    new_works: int = 0
    new_hits: int = 0
    duplicates: int = 0


class SharedStore(BatchRuns):
    """The shared-harvest writes and reads, beside the :class:`Repository` they extend."""

    # -- windows -----------------------------------------------------------------------------

    def open_window(self, source: str, mode: str, window: Window, topics: int) -> int:
        with self.repo._session() as session, session.begin():
            row = SourceWindow(
                source=source,
                mode=mode,
                window_start=window.start,
                window_end=window.end,
                started_at=self.repo.clock(),
                status="running",
                topics=topics,
                requests=0,
                pages=0,
                records=0,
            )
            session.add(row)
            session.flush()
            return row.id

    def close_window(
        self,
        window_id: int,
        *,
        status: str,
        requests: int,
        pages: int,
        records: int,
        error: str | None = None,
    ) -> None:
        with self.repo._session() as session, session.begin():
            session.execute(
                update(SourceWindow)
                .where(SourceWindow.id == window_id)
                .values(
                    status=status,
                    finished_at=self.repo.clock(),
                    requests=requests,
                    pages=pages,
                    records=records,
                    error=self.repo.redact(error) if error is not None else None,
                )
            )

    def covering(self, source: str, since: datetime) -> list[StoredWindow]:
        """The completed whole-delta windows of ``source`` that end after ``since``."""
        with self.repo._session() as session:
            rows = session.execute(
                select(SourceWindow.id, SourceWindow.window_start, SourceWindow.window_end)
                .where(
                    SourceWindow.source == source,
                    SourceWindow.mode == "window",
                    SourceWindow.status.in_(COMPLETE),
                    SourceWindow.window_end > since,
                )
                .order_by(SourceWindow.window_start)
            ).all()
        return [StoredWindow(i, s, e) for i, s, e in rows]

    def windows(self, source: str | None = None) -> list[SourceWindow]:
        with self.repo._session() as session:
            query = select(SourceWindow).order_by(SourceWindow.id)
            if source is not None:
                query = query.where(SourceWindow.source == source)
            return list(session.execute(query).scalars())

    def stored_records(self, window_ids: Sequence[int]) -> Iterator[tuple[int, Record]]:
        """(window id, record) for every record of those windows, in chunks; a record no
        topic matched from its own row, the others from their provenance (or, held there as
        NULL, their work's record: :mod:`harvester.store.provenance`)."""
        from harvester.store.models import Provenance, Work
        from harvester.store.provenance import RECORD

        for ids in chunks(list(window_ids), 50):
            with self.repo._session() as session:
                rows = session.execute(
                    select(SourceRecord.window_id, SourceRecord.record, RECORD)
                    .outerjoin(
                        Provenance,
                        (Provenance.source == SourceRecord.source)
                        & (Provenance.source_id == SourceRecord.source_id),
                    )
                    .outerjoin(Work, Work.id == Provenance.work_id)
                    .where(SourceRecord.window_id.in_(list(ids)))
                ).all()
            for window_id, own, kept in rows:
                data = own if own is not None else kept
                if data is not None:
                    yield window_id, Record.from_json(data)

    def prune(self, before: datetime) -> int:
        """Windows (and their records) that ended before ``before``: a joining topic fetches
        what is older again."""
        with self.repo._session() as session, session.begin():
            old = list(
                session.execute(
                    select(SourceWindow.id).where(SourceWindow.window_end < before)
                ).scalars()
            )
            for ids in chunks(old):
                session.execute(delete(SourceRecord).where(SourceRecord.window_id.in_(list(ids))))
                session.execute(delete(SourceWindow).where(SourceWindow.id.in_(list(ids))))
        return len(old)

    # -- pages -------------------------------------------------------------------------------

    def store_page(
        self,
        window_id: int | None,
        records: Sequence[Record],
        matches: Sequence[Sequence[str]],
        runs: Mapping[str, int],
    ) -> dict[str, TopicPage]:
        """Store a page fetched for many topics (``window_id``) or records read back from
        the store (``None``): ``matches[i]`` are the topics record ``i`` matched."""
        out, hits = store_again_on_conflict(
            lambda: self._store_page_once(window_id, records, matches, runs),
            "shared page still conflicts",
        )
        # The topics' hits after the page, a short transaction per chunk: at 10,000 topics a
        # page has tens of thousands, and one transaction for all of them held SQLite's one
        # write lock for seconds (the heartbeat waited behind it). A crash between the two
        # repeats the page (its window is still running), and the hits are inserted then.
        for rows in chunks(hits, _HITS_CHUNK):
            with self.repo._session() as session, session.begin():
                new = session.execute(
                    self.repo._insert(TopicHit)
                    .on_conflict_do_nothing(index_elements=["topic", "work_id"])
                    .returning(TopicHit.topic),
                    list(rows),
                ).scalars()
                for topic in new:
                    out[topic].new_hits += 1
        return out

    def _store_page_once(
        self,
        window_id: int | None,
        records: Sequence[Record],
        matches: Sequence[Sequence[str]],
        runs: Mapping[str, int],
    ) -> tuple[dict[str, TopicPage], list[dict[str, Any]]]:
        repo, now = self.repo, self.repo.clock()
        out: dict[str, TopicPage] = {}
        matched = [(r, m) for r, m in zip(records, matches, strict=True) if m]
        with repo._session() as session, session.begin():
            lock_writes(session)
            hits: list[dict[str, Any]] = []
            if matched:
                writer = PageWriter(repo, session, runs[matched[0][1][0]], now)
                writer.add([r for r, _ in matched])
                writer.hits = {}  # the topics' hits are written below, one per topic
                writer.write("", False)
                for record, topics in matched:
                    work_id, created = work_of(writer, record)
                    for topic in topics:
                        page = out.setdefault(topic, TopicPage())
                        page.matched += 1
                        page.new_works += created
                        page.duplicates += not created
                        hits.append(
                            {
                                "topic": topic,
                                "work_id": work_id,
                                "first_seen": now,
                                "backfill": False,
                                "source": record.source,
                                "run_id": runs[topic],
                            }
                        )
            if window_id is not None:
                kept: dict[tuple[str, str], dict[str, Any]] = {}
                for record, topics in zip(records, matches, strict=True):
                    key = (record.source, provenance_key(record)[:255])
                    kept[key] = {
                        "window_id": window_id,
                        "source": key[0],
                        "source_id": key[1],
                        "record": None if topics else record.to_json(),
                    }
                for rows in chunks(list(kept.values())):
                    session.execute(
                        repo._insert(SourceRecord).on_conflict_do_nothing(
                            index_elements=["window_id", "source", "source_id"]
                        ),
                        list(rows),
                    )
            else:
                # records read back that a topic now matched: their JSON is the provenance's
                for record, _ in matched:
                    session.execute(
                        update(SourceRecord)
                        .where(
                            SourceRecord.source == record.source,
                            SourceRecord.source_id == provenance_key(record)[:255],
                            SourceRecord.record.is_not(None),
                        )
                        .values(record=None)
                    )
        return out, hits


def work_of(writer: PageWriter, record: Record) -> tuple[int, bool]:
    """After :meth:`PageWriter.write`: the work ``record`` is stored as, and whether the
    page created it."""
    work_id = writer.lookup.provs[(record.source, provenance_key(record))].work_id
    return (writer.real[work_id], True) if work_id < 0 else (work_id, False)
