"""Works: storing a page's records (through the page writer), and reading works and hits.

:meth:`WorkRepository.store_page` commits a page's records, the topic hits and the run's
cursor in one transaction (the run's outcome and watermark are
:meth:`~harvester.store.runs.RunRepository.finish_run`'s, in another): a crash therefore
repeats at most one page, and storing a page twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from harvester.errors import StoreError
from harvester.records import Record, StoredWork
from harvester.store.base import Store, unique_violation
from harvester.store.models import HarvestRun, Identifier, Provenance, TopicHit, Work, WorkLink
from harvester.store.updates import store_page_updates, updates_of, with_stored_updates
from harvester.store.values import PageOutcome, VersionLink
from harvester.store.versions import other_versions
from harvester.store.write_lock import lock_writes
from harvester.store.writer import PageWriter, WriteConflict

log = structlog.get_logger(__name__)

# Times a page is stored before a write conflict that keeps coming back fails its run.
STORE_ATTEMPTS = 3

T = TypeVar("T")


def store_again_on_conflict(write: Callable[[], T], what: str, **context: Any) -> T:
    """``write()``, repeated from a fresh read while it meets a row another writer inserted
    meanwhile (a :class:`WriteConflict`, or a unique index refusing the insert), up to
    ``STORE_ATTEMPTS`` times; then a StoreError says ``what`` (e.g. "page … still conflicts")."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            return write()
        except (WriteConflict, StoreError) as e:
            if not (isinstance(e, WriteConflict) or unique_violation(e)):
                raise
            if attempt == STORE_ATTEMPTS:
                raise StoreError(f"{what} after {attempt} attempts: {e}") from e
            log.warning(
                "page write conflict, storing again", attempt=attempt, error=str(e), **context
            )
    raise AssertionError("unreachable")  # pragma: no cover


class WorkRepository(Store):
    """Works, their identifiers and provenance, and the topics' hits."""

    def store_page(
        self,
        run_id: int,
        topic: str,
        records: Sequence[Record],
        *,
        backfill: bool = False,
        cursor: str | None = None,
    ) -> PageOutcome:
        """Store one page's matching records as works and topic hits, in one transaction.

        The page is written in batches (see :class:`~harvester.store.writer.PageWriter`): a few
        queries find what the page's records meet in the store, the records are then matched
        one after the other in page order (so two records of one page that are the same study
        end as one work), and the rows are written with one statement per table.

        Pages written at once are written one after the other: the transaction begins with
        the store's write lock (:func:`~harvester.store.write_lock.lock_writes`). A row that
        appeared meanwhile all the same (an identifier of another work, a provenance row:
        a writer without the lock) rolls the page back and it is stored again from a fresh
        read, up to ``STORE_ATTEMPTS`` times."""
        return store_again_on_conflict(
            lambda: self._store_page_once(run_id, topic, records, backfill, cursor),
            f"page of run {run_id} still conflicts with another writer",
            run_id=run_id,
        )

    def _store_page_once(
        self,
        run_id: int,
        topic: str,
        records: Sequence[Record],
        backfill: bool,
        cursor: str | None,
    ) -> PageOutcome:
        now = self.clock()
        with self._session() as session, session.begin():
            lock_writes(session)
            writer = PageWriter(self, session, run_id, now)
            new_works, duplicates = writer.add(records)
            new_hits = writer.write(topic, backfill)
            store_page_updates(session, self._insert, records, now)
            session.execute(
                update(HarvestRun)
                .where(HarvestRun.id == run_id)
                .values(
                    cursor=cursor,
                    new_works=HarvestRun.new_works + new_works,
                    new_hits=HarvestRun.new_hits + new_hits,
                    duplicates=HarvestRun.duplicates + duplicates,
                )
            )
        return PageOutcome(len(records), new_works, new_hits, duplicates)

    def links(self, work_id: int) -> list[VersionLink]:
        """The works linked to ``work_id`` as versions of one study, with the reason."""
        with self._session() as session:
            return [
                VersionLink(a if b == work_id else b, reason)
                for a, b, reason in session.execute(
                    select(WorkLink.work_id, WorkLink.other_work_id, WorkLink.reason).where(
                        (WorkLink.work_id == work_id) | (WorkLink.other_work_id == work_id)
                    )
                )
            ]

    def versions(self, work_ids: Sequence[int]) -> dict[int, tuple[Record, ...]]:
        """The other versions of each of ``work_ids`` that has version links (its preprint,
        its conference or journal version), main version first: "also published as …"."""
        with self._session() as session:
            return other_versions(session, work_ids)

    def works(self, topic: str | None = None, *, since: datetime | None = None) -> list[StoredWork]:
        """Stored works (of one topic, first seen since a time, if asked), in storage order."""
        if topic is None:
            all_works = select(Work).order_by(Work.id)
            if since is not None:
                all_works = all_works.where(Work.created_at >= since)
            with self._session() as session:
                rows = list(session.execute(all_works).scalars())
                sources = _sources(session, [w.id for w in rows])
                notes = updates_of(session, [w.id for w in rows])
                return [
                    StoredWork(
                        w.id,
                        with_stored_updates(Record.from_json(w.record), notes.get(w.id, ())),
                        sources.get(w.id, ()),
                    )
                    for w in rows
                ]
        query = (
            select(TopicHit, Work)
            .join(Work, Work.id == TopicHit.work_id)
            .where(TopicHit.topic == topic)
            .order_by(TopicHit.first_seen, TopicHit.id)
        )
        if since is not None:
            query = query.where(TopicHit.first_seen >= since)
        with self._session() as session:
            return stored_hits(session, query)

    def count_works(self) -> int:
        return self._count(Work)

    def count_identifiers(self) -> int:
        return self._count(Identifier)

    def count_provenance(self) -> int:
        """How many source records are kept (one provenance row each)."""
        return self._count(Provenance)

    def count_topic_hits(self) -> int:
        return self._count(TopicHit)


def stored_hits(session: Session, query: Select[TopicHit, Work]) -> list[StoredWork]:
    """The ``(hit, work)`` rows of ``query`` as stored works of their topic, in its order."""
    return _stored(session, [(hit, work) for hit, work in session.execute(query)])


def stored_hits_after(
    session: Session, query: Select[TopicHit, Work]
) -> tuple[list[StoredWork], tuple[datetime, int] | None]:
    """:func:`stored_hits`, with the last hit's ``(first_seen, id)``: where a next page of
    the same order begins (None for no rows)."""
    rows = [(hit, work) for hit, work in session.execute(query)]
    last = (rows[-1][0].first_seen, rows[-1][0].id) if rows else None
    return _stored(session, rows), last


def _stored(session: Session, rows: Sequence[tuple[TopicHit, Work]]) -> list[StoredWork]:
    sources = _sources(session, [w.id for _, w in rows])
    notes = updates_of(session, [w.id for _, w in rows])
    return [
        StoredWork(
            id=w.id,
            record=with_stored_updates(Record.from_json(w.record), notes.get(w.id, ())),
            sources=sources.get(w.id, ()),
            topic=hit.topic,
            first_seen=hit.first_seen,
            backfill=hit.backfill,
        )
        for hit, w in rows
    ]


def _sources(session: Session, work_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for chunk_start in range(0, len(work_ids), 500):
        chunk = work_ids[chunk_start : chunk_start + 500]
        for work_id, source in session.execute(
            select(Provenance.work_id, Provenance.source)
            .where(Provenance.work_id.in_(chunk))
            .distinct()
            .order_by(Provenance.work_id, Provenance.source)
        ):
            out.setdefault(work_id, []).append(source)
    return {k: tuple(v) for k, v in out.items()}
