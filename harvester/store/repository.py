"""The repository: the only code that speaks SQL.

A harvest writes through :meth:`Repository.store_page`, which commits a page's records, the
topic hits and the run's cursor in one transaction, and :meth:`Repository.finish_run`, which
records the outcome and advances the watermark in another. A crash therefore repeats at most
one page, and storing a page twice changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    Engine,
    Select,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from harvester.errors import StoreError
from harvester.records import Record
from harvester.sources.base import Window
from harvester.store.models import (
    BackfillSlice,
    Deployment,
    Digest,
    DigestItem,
    HarvestRun,
    HarvestRunDay,
    Heartbeat,
    Identifier,
    Provenance,
    TopicHit,
    Watermark,
    Work,
    WorkLink,
)
from harvester.store.versions import other_versions
from harvester.store.writer import PageWriter, WriteConflict, lock_writes

log = structlog.get_logger(__name__)

# Times a page is stored before a write conflict that keeps coming back fails its run.
STORE_ATTEMPTS = 3
# The longest a refused digest waits (a Slack Retry-After included): a longer wait is not
# believed, and a stored retry time beyond it was set by a clock that ran ahead.
MAX_RETRY_WAIT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PageOutcome:
    """What storing one page did."""

    stored: int = 0
    new_works: int = 0
    new_hits: int = 0
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class RunCounts:
    requests: int = 0
    pages: int = 0
    records: int = 0
    matched: int = 0
    new_works: int = 0
    new_hits: int = 0
    duplicates: int = 0
    errors: int = 0
    skipped: int = 0  # records a parser could not read; they never hold the watermark


@dataclass(frozen=True, slots=True)
class StoredWork:
    """A work as stored: its merged record, the sources it came from, and (for a topic) its hit."""

    id: int
    record: Record
    sources: tuple[str, ...]
    topic: str | None = None
    first_seen: datetime | None = None
    backfill: bool = False


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    topic: str
    source: str
    window: Window
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: RunCounts
    error: str | None
    expected: int | None = None
    skip_reasons: tuple[str, ...] = ()
    backfill: bool = False


@dataclass(frozen=True, slots=True)
class BackfillCoverage:
    """The checkpointed slices of a topic × source's backfill."""

    start: datetime
    end: datetime
    slices: int


SKIP_REASONS_KEPT = 5  # a run keeps its first few skip reasons; every one is in the log


def _unchanged(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One unsent digest as the outbox keeps it."""

    id: int
    subscription: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    parts_sent: int
    sealed: bool  # may have reached its reader: re-sent as it is, never topped up
    items: int


class Repository:
    """Reads and writes works, hits, runs and watermarks. ``clock`` gives tz-aware UTC now;
    ``redact`` cleans any text the store keeps from a source (errors, skip reasons), since
    an API may echo a secret back in an error body."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime],
        redact: Callable[[str], str] = _unchanged,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.redact = redact

    # -- writing -----------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def begin_run(self, topic: str, source: str, window: Window, *, backfill: bool = False) -> int:
        """Record a new run. Runs of the same kind still marked running were cut short (the
        caller holds the claim, so nobody else runs them): they become 'interrupted'."""
        with self._session() as session, session.begin():
            session.execute(
                update(HarvestRun)
                .where(
                    HarvestRun.topic == topic,
                    HarvestRun.source == source,
                    HarvestRun.backfill.is_(backfill),
                    HarvestRun.status == "running",
                )
                .values(status="interrupted", error="the process ended before the run finished")
            )
            run = HarvestRun(
                topic=topic,
                source=source,
                window_start=window.start,
                window_end=window.end,
                backfill=backfill,
                started_at=self.clock(),
                status="running",
                requests=0,
                pages=0,
                records=0,
                matched=0,
                new_works=0,
                new_hits=0,
                duplicates=0,
                errors=0,
            )
            session.add(run)
            session.flush()
            return run.id

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
        the store's write lock (:func:`~harvester.store.writer.lock_writes`). A row that
        appeared meanwhile all the same (an identifier of another work, a provenance row:
        a writer without the lock) rolls the page back and it is stored again from a fresh
        read, up to ``STORE_ATTEMPTS`` times."""
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return self._store_page_once(run_id, topic, records, backfill, cursor)
            except (WriteConflict, StoreError) as e:
                if not (isinstance(e, WriteConflict) or _unique_violation(e)):
                    raise
                if attempt == STORE_ATTEMPTS:
                    raise StoreError(
                        f"page of run {run_id} still conflicts with another writer after "
                        f"{attempt} attempts: {e}"
                    ) from e
                log.warning(
                    "page write conflict, storing again",
                    run_id=run_id,
                    attempt=attempt,
                    error=str(e),
                )
        raise AssertionError("unreachable")  # pragma: no cover

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

    def links(self, work_id: int) -> list[tuple[int, str]]:
        """The works linked to ``work_id`` as versions of one study, with the reason."""
        with self._session() as session:
            return [
                (a if b == work_id else b, reason)
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

    def sent_versions(self, subscription: str, work_ids: Sequence[int]) -> set[int]:
        """Of ``work_ids``, those that are another version (a journal article, a preprint) of
        a work already sent to ``subscription``: their digest says "now published in …"."""
        if not work_ids:
            return set()
        ids = list(work_ids)
        with self._session() as session:
            pairs = session.execute(
                select(WorkLink.work_id, WorkLink.other_work_id).where(
                    WorkLink.work_id.in_(ids) | WorkLink.other_work_id.in_(ids)
                )
            ).all()
            if not pairs:
                return set()
            wanted = set(ids)
            partner: dict[int, set[int]] = {}
            for a, b in pairs:
                if a in wanted:
                    partner.setdefault(b, set()).add(a)
                if b in wanted:
                    partner.setdefault(a, set()).add(b)
            sent = session.execute(
                select(DigestItem.work_id)
                .join(Digest, Digest.id == DigestItem.digest_id)
                .where(
                    DigestItem.subscription == subscription,
                    Digest.status == "sent",
                    DigestItem.work_id.in_(list(partner)),
                )
            ).scalars()
            return {new for old in sent for new in partner[old]}

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        counts: RunCounts,
        error: str | None = None,
        watermark: datetime | None = None,
        expected: int | None = None,
        skip_reasons: Sequence[str] = (),
    ) -> None:
        """Record a run's outcome; advance its watermark (to a later value only) if given.
        ``expected`` is what the source said it had for the window; ``skip_reasons`` are the
        reasons of the records it skipped (the first few are kept)."""
        reasons = [self.redact(r) for r in skip_reasons[:SKIP_REASONS_KEPT]]
        with self._session() as session, session.begin():
            run = session.get(HarvestRun, run_id)
            if run is None:
                raise StoreError(f"harvest run {run_id} does not exist")
            run.status = status
            run.finished_at = self.clock()
            run.error = self.redact(error) if error is not None else None
            run.skipped = counts.skipped
            run.skip_reasons = "\n".join(" ".join(r.split()) for r in reasons) or None
            run.requests = counts.requests
            run.pages = counts.pages
            run.records = counts.records
            run.matched = counts.matched
            run.errors = counts.errors
            run.expected = expected
            if watermark is not None:
                self._advance(session, run.topic, run.source, watermark)

    def _advance(self, session: Session, topic: str, source: str, value: datetime) -> None:
        now = self.clock()
        current = session.get(Watermark, (topic, source))
        if current is None:
            session.add(Watermark(topic=topic, source=source, value=value, updated_at=now))
        elif value > current.value or current.value > now:
            # a watermark beyond now was set by a clock that ran ahead: no source has records
            # from the future, so the value a run just proved replaces it
            current.value = value
            current.updated_at = now

    # -- the outbox -------------------------------------------------------------------------

    def create_digest(
        self, subscription: str, channel: str, items: Iterable[tuple[str, int]]
    ) -> int | None:
        """Store a digest and its ``(topic, work id)`` items before anything is sent.

        Items already in another digest of the subscription are left out (the unique index
        decides, so two replicas cannot both take one); with nothing left, no digest is made.
        """
        now = self.clock()
        with self._session() as session, session.begin():
            digest = Digest(
                subscription=subscription,
                channel=channel,
                created_at=now,
                status="pending",
                attempts=0,
                parts_sent=0,
                next_attempt_at=now,
                sealed=False,
            )
            session.add(digest)
            session.flush()
            taken = 0
            for topic, work_id in items:
                result = session.execute(
                    self._insert(DigestItem)
                    .values(
                        digest_id=digest.id, subscription=subscription, topic=topic, work_id=work_id
                    )
                    .on_conflict_do_nothing(index_elements=["subscription", "topic", "work_id"])
                    .returning(DigestItem.id)
                )
                taken += result.first() is not None
            if not taken:
                session.delete(digest)
                return None
            return digest.id

    def top_up_digest(
        self, digest_id: int, subscription: str, items: Iterable[tuple[str, int]]
    ) -> int:
        """Add ``(topic, work id)`` items to a pending digest that was never possibly seen
        (not sealed); returns how many were added (0 if it is sealed, sent or gone). Items
        already in a digest of the subscription are left out, as in :meth:`create_digest`."""
        with self._session() as session, session.begin():
            digest = session.get(Digest, digest_id, with_for_update=True)
            if digest is None or digest.status != "pending" or digest.sealed:
                return 0
            added = 0
            for topic, work_id in items:
                result = session.execute(
                    self._insert(DigestItem)
                    .values(
                        digest_id=digest_id,
                        subscription=subscription,
                        topic=topic,
                        work_id=work_id,
                    )
                    .on_conflict_do_nothing(index_elements=["subscription", "topic", "work_id"])
                    .returning(DigestItem.id)
                )
                added += result.first() is not None
            return added

    def due_digests(
        self, subscription: str, now: datetime, *, ignore_backoff: bool = False
    ) -> list[int]:
        """Pending digests of ``subscription`` whose (next) attempt is due, oldest first;
        with ``ignore_backoff`` every pending one (a person asked for them now)."""
        query = select(Digest.id).where(
            Digest.subscription == subscription, Digest.status == "pending"
        )
        if not ignore_backoff:
            # a retry time further ahead than any wait harvester sets was set by a clock that
            # ran ahead (issue 18.9): due now, not a month from now
            query = query.where(
                or_(
                    Digest.next_attempt_at <= now,
                    Digest.next_attempt_at > now + MAX_RETRY_WAIT,
                )
            )
        with self._session() as session:
            return list(session.execute(query.order_by(Digest.id)).scalars())

    def outbox(self, subscription: str | None = None) -> list[OutboxEntry]:
        """The unsent digests (of one subscription, if given), oldest first."""
        items = (
            select(func.count(DigestItem.id))
            .where(DigestItem.digest_id == Digest.id)
            .correlate(Digest)
            .scalar_subquery()
        )
        query = select(Digest, items).where(Digest.status == "pending").order_by(Digest.id)
        if subscription is not None:
            query = query.where(Digest.subscription == subscription)
        with self._session() as session:
            return [
                OutboxEntry(
                    id=d.id,
                    subscription=d.subscription,
                    created_at=d.created_at,
                    attempts=d.attempts,
                    next_attempt_at=d.next_attempt_at,
                    last_error=d.last_error,
                    parts_sent=d.parts_sent,
                    sealed=d.sealed,
                    items=int(n),
                )
                for d, n in session.execute(query)
            ]

    def waiting(
        self, subscription: str, topics: Sequence[str], *, include_backfill: bool = False
    ) -> dict[str, int]:
        """Per topic, how many hits are in no digest of ``subscription`` yet (a count, so a
        backlog of thousands costs one query, not their records)."""
        delivered = (
            select(DigestItem.id)
            .where(
                DigestItem.subscription == subscription,
                DigestItem.topic == TopicHit.topic,
                DigestItem.work_id == TopicHit.work_id,
            )
            .exists()
        )
        query = (
            select(TopicHit.topic, func.count(TopicHit.id))
            .where(TopicHit.topic.in_(list(topics)), ~delivered)
            .group_by(TopicHit.topic)
        )
        if not include_backfill:
            query = query.where(TopicHit.backfill.is_(False))
        with self._session() as session:
            counts = {topic: int(n) for topic, n in session.execute(query)}
        return {t: counts.get(t, 0) for t in topics}

    def seal_digest(self, digest_id: int) -> None:
        """Before a send: from now on the digest may reach its reader, so its items are fixed
        (a crash between the server's acceptance and :meth:`mark_sent` re-sends the same)."""
        with self._session() as session, session.begin():
            session.execute(update(Digest).where(Digest.id == digest_id).values(sealed=True))

    def record_part_sent(self, digest_id: int, parts: int) -> None:
        """The channel accepted the first ``parts`` messages of a multi-part digest; recorded
        as each is accepted, so a process killed after part 2 of 5 resumes at part 3."""
        with self._session() as session, session.begin():
            session.execute(
                update(Digest)
                .where(Digest.id == digest_id, Digest.parts_sent < parts)
                .values(parts_sent=parts)
            )

    def deployment_id(self) -> str:
        """This database's own random id, made on first use and kept (Message-IDs use it)."""
        # two processes may race to make it: both then use the oldest row
        oldest = select(Deployment.id).order_by(Deployment.created_at, Deployment.id).limit(1)
        with self._session() as session, session.begin():
            found = session.execute(oldest).scalar()
            if found is not None:
                return str(found)
            session.add(Deployment(id=uuid.uuid4().hex, created_at=self.clock()))
        with self._session() as session:
            return str(session.execute(oldest).scalar_one())

    def pending_digests(self) -> list[tuple[str, int, int, str | None]]:
        """Every unsent digest: (subscription, digest id, attempts, last error)."""
        with self._session() as session:
            return [
                (d.subscription, d.id, d.attempts, d.last_error)
                for d in session.execute(
                    select(Digest).where(Digest.status == "pending").order_by(Digest.id)
                ).scalars()
            ]

    def digest_works(self, digest_id: int) -> list[StoredWork]:
        """The works of a stored digest with their topic, in the order they were added."""
        query = (
            select(TopicHit, Work)
            .join(Work, Work.id == TopicHit.work_id)
            .join(
                DigestItem,
                (DigestItem.work_id == TopicHit.work_id) & (DigestItem.topic == TopicHit.topic),
            )
            .where(DigestItem.digest_id == digest_id)
            .order_by(DigestItem.id)
        )
        return self._hits(query)

    def mark_sent(self, digest_id: int) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(Digest)
                .where(Digest.id == digest_id)
                .values(
                    status="sent",
                    sent_at=self.clock(),
                    attempts=Digest.attempts + 1,
                    last_error=None,
                )
            )

    def parts_sent(self, digest_id: int) -> int:
        """How many messages of a multi-part digest the channel already accepted."""
        with self._session() as session:
            digest = session.get(Digest, digest_id)
            return digest.parts_sent if digest is not None else 0

    def mark_attempt_failed(
        self,
        digest_id: int,
        error: str,
        delay: Callable[[int], timedelta],
        *,
        parts_sent: int = 0,
        not_before: datetime | None = None,
        unseal: bool = False,
    ) -> tuple[int, datetime]:
        """Record a failed send; the digest stays pending for ``delay(attempts)``, and at
        least until ``not_before`` (a channel's Retry-After). ``parts_sent`` counts the
        messages accepted so far (a retry skips them). ``unseal``: the channel refused the
        digest before any of it could reach a reader, so it may still take newer studies.
        Returns the attempts so far and when the next one is due."""
        with self._session() as session, session.begin():
            digest = session.get(Digest, digest_id)
            if digest is None:
                raise StoreError(f"digest {digest_id} does not exist")
            digest.parts_sent = max(parts_sent, digest.parts_sent or 0)
            digest.attempts += 1
            digest.last_error = error
            now = self.clock()
            retry_at = now + delay(digest.attempts)
            if not_before is not None and not_before > retry_at:
                retry_at = not_before
            retry_at = min(retry_at, now + MAX_RETRY_WAIT)  # no Retry-After is worth a day
            digest.next_attempt_at = retry_at
            if unseal and digest.parts_sent == 0:
                digest.sealed = False
            return digest.attempts, retry_at

    # -- daemon bookkeeping -------------------------------------------------------------------

    def beat(self, daemon_id: str, *, host: str, pid: int, stopped: bool = False) -> None:
        """Create or refresh a daemon's heartbeat (``stopped`` when it shuts down)."""
        now = self.clock()
        with self._session() as session, session.begin():
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

    def heartbeats(self) -> list[tuple[str, str, int, datetime, datetime, datetime | None]]:
        with self._session() as session:
            return [
                (h.daemon_id, h.host, h.pid, h.started_at, h.beat_at, h.stopped_at)
                for h in session.execute(
                    select(Heartbeat).order_by(Heartbeat.beat_at.desc())
                ).scalars()
            ]

    def backfill_coverage(self, topic: str, source: str) -> BackfillCoverage | None:
        """The first start and last end of the backfill's finished slices, if any."""
        with self._session() as session:
            first, last, slices = session.execute(
                select(
                    func.min(BackfillSlice.slice_start),
                    func.max(BackfillSlice.slice_end),
                    func.count(),
                ).where(BackfillSlice.topic == topic, BackfillSlice.source == source)
            ).one()
        if not slices:
            return None
        # aggregates bypass the column type on SQLite: read them back as UTC datetimes
        return BackfillCoverage(_utc(first), _utc(last), int(slices))

    def finished_slices(self, topic: str, source: str) -> set[tuple[datetime, datetime]]:
        with self._session() as session:
            return {
                (a, b)
                for a, b in session.execute(
                    select(BackfillSlice.slice_start, BackfillSlice.slice_end).where(
                        BackfillSlice.topic == topic, BackfillSlice.source == source
                    )
                )
            }

    def finish_slice(self, topic: str, source: str, window: Window, run_id: int) -> None:
        with self._session() as session, session.begin():
            session.execute(
                self._insert(BackfillSlice)
                .values(
                    topic=topic,
                    source=source,
                    slice_start=window.start,
                    slice_end=window.end,
                    run_id=run_id,
                    finished_at=self.clock(),
                )
                .on_conflict_do_nothing(
                    index_elements=["topic", "source", "slice_start", "slice_end"]
                )
            )

    # -- reading -----------------------------------------------------------------------------

    def watermark(self, topic: str, source: str) -> datetime | None:
        with self._session() as session:
            row = session.get(Watermark, (topic, source))
            return row.value if row is not None else None

    def pending(
        self,
        subscription: str,
        topics: Sequence[str],
        *,
        include_backfill: bool = False,
        limit: int | None = None,
    ) -> list[StoredWork]:
        """Hits of ``topics`` in no digest of ``subscription`` yet, oldest first."""
        delivered = (
            select(DigestItem.id)
            .where(
                DigestItem.subscription == subscription,
                DigestItem.topic == TopicHit.topic,
                DigestItem.work_id == TopicHit.work_id,
            )
            .exists()
        )
        query = (
            select(TopicHit, Work)
            .join(Work, Work.id == TopicHit.work_id)
            .where(TopicHit.topic.in_(topics), ~delivered)
            .order_by(TopicHit.first_seen, TopicHit.id)
        )
        if not include_backfill:
            query = query.where(TopicHit.backfill.is_(False))
        if limit is not None:
            query = query.limit(limit)
        return self._hits(query)

    def works(self, topic: str | None = None, *, since: datetime | None = None) -> list[StoredWork]:
        """Stored works (of one topic, first seen since a time, if asked), in storage order."""
        if topic is None:
            all_works = select(Work).order_by(Work.id)
            if since is not None:
                all_works = all_works.where(Work.created_at >= since)
            with self._session() as session:
                rows = list(session.execute(all_works).scalars())
                sources = self._sources(session, [w.id for w in rows])
                return [
                    StoredWork(w.id, Record.from_json(w.record), sources.get(w.id, ()))
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
        return self._hits(query)

    def _hits(self, query: Select[TopicHit, Work]) -> list[StoredWork]:
        with self._session() as session:
            rows = [(hit, work) for hit, work in session.execute(query)]
            sources = self._sources(session, [w.id for _, w in rows])
            return [
                StoredWork(
                    id=w.id,
                    record=Record.from_json(w.record),
                    sources=sources.get(w.id, ()),
                    topic=hit.topic,
                    first_seen=hit.first_seen,
                    backfill=hit.backfill,
                )
                for hit, w in rows
            ]

    def _sources(self, session: Session, work_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
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

    def runs(
        self,
        topic: str | None = None,
        source: str | None = None,
        *,
        limit: int = 20,
        backfill: bool | None = None,
    ) -> list[RunRow]:
        """The latest harvest runs, newest first (only backfill slices, or only scheduled
        runs, if ``backfill`` says)."""
        query = select(HarvestRun).order_by(HarvestRun.started_at.desc(), HarvestRun.id.desc())
        if topic is not None:
            query = query.where(HarvestRun.topic == topic)
        if source is not None:
            query = query.where(HarvestRun.source == source)
        if backfill is not None:
            query = query.where(HarvestRun.backfill.is_(backfill))
        with self._session() as session:
            return [
                RunRow(
                    id=r.id,
                    topic=r.topic,
                    source=r.source,
                    window=Window(r.window_start, r.window_end),
                    status=r.status,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    counts=RunCounts(
                        r.requests,
                        r.pages,
                        r.records,
                        r.matched,
                        r.new_works,
                        r.new_hits,
                        r.duplicates,
                        r.errors,
                        r.skipped or 0,
                    ),
                    error=r.error,
                    expected=r.expected,
                    skip_reasons=tuple(r.skip_reasons.splitlines()) if r.skip_reasons else (),
                    backfill=bool(r.backfill),
                )
                for r in session.execute(query.limit(limit)).scalars()
            ]

    def roll_up_runs(self, before: datetime, *, batch: int = 5000) -> int:
        """Runs that started before ``before`` become daily counts per topic × source (UTC
        day of their start, backfill slices apart) in ``harvest_run_days``, and are deleted;
        returns how many. A run still running, and the latest run of each topic × source
        (of each kind), stay: status and the back-off read them. Batches of ``batch`` runs,
        each one transaction under the store's write lock."""
        total = 0
        while True:
            with self._session() as session, session.begin():
                lock_writes(session)
                latest = (
                    select(func.max(HarvestRun.id))
                    .group_by(HarvestRun.topic, HarvestRun.source, HarvestRun.backfill)
                    .scalar_subquery()
                )
                runs = (
                    session.execute(
                        select(HarvestRun)
                        .where(
                            HarvestRun.started_at < before,
                            HarvestRun.status != "running",
                            HarvestRun.id.not_in(latest),
                        )
                        .order_by(HarvestRun.id)
                        .limit(batch)
                    )
                    .scalars()
                    .all()
                )
                if not runs:
                    return total
                days: dict[tuple[str, str, date, bool], list[HarvestRun]] = {}
                for run in runs:
                    day = _utc(run.started_at).date()
                    days.setdefault((run.topic, run.source, day, run.backfill), []).append(run)
                for (topic, source, day, backfill), group in days.items():
                    row = session.execute(
                        select(HarvestRunDay).where(
                            HarvestRunDay.topic == topic,
                            HarvestRunDay.source == source,
                            HarvestRunDay.day == day,
                            HarvestRunDay.backfill.is_(backfill),
                        )
                    ).scalar_one_or_none()
                    if row is None:
                        row = HarvestRunDay(
                            topic=topic, source=source, day=day, backfill=backfill,
                            runs=0, completed=0, failed=0, requests=0, records=0,
                            new_works=0, new_hits=0, skipped=0,
                        )  # fmt: skip
                        session.add(row)
                    row.runs += len(group)
                    row.completed += sum(r.status in ("ok", "partial") for r in group)
                    row.failed += sum(r.status == "failed" for r in group)
                    row.requests += sum(r.requests for r in group)
                    row.records += sum(r.records for r in group)
                    row.new_works += sum(r.new_works for r in group)
                    row.new_hits += sum(r.new_hits for r in group)
                    row.skipped += sum(r.skipped for r in group)
                session.flush()
                ids = [r.id for r in runs]
                session.execute(delete(HarvestRun).where(HarvestRun.id.in_(ids)))
                total += len(ids)
            if len(runs) < batch:
                return total

    def run_days(self, topic: str, source: str) -> list[dict[str, Any]]:
        """The rolled-up days of ``topic`` × ``source``, oldest first."""
        d = HarvestRunDay
        columns: list[Any] = [d.day, d.backfill, d.runs, d.completed, d.failed, d.requests]
        columns += [d.records, d.new_works, d.new_hits, d.skipped]
        with self._session() as session:
            rows = session.execute(
                select(*columns)
                .where(d.topic == topic, d.source == source)
                .order_by(d.day, d.backfill)
            )
            return [dict(row._mapping) for row in rows]

    def count(self, what: str) -> int:
        """Row count of one table (works, identifiers, provenance, topic_hits, digests, …)."""
        models = {
            "works": Work,
            "identifiers": Identifier,
            "provenance": Provenance,
            "topic_hits": TopicHit,
            "digests": Digest,
            "digest_items": DigestItem,
            "harvest_runs": HarvestRun,
            "harvest_run_days": HarvestRunDay,
        }
        with self._session() as session:
            return int(session.execute(select(func.count()).select_from(models[what])).scalar_one())

    def _session(self) -> _GuardedSession:
        return _GuardedSession(self.engine)


def _unique_violation(error: StoreError) -> bool:
    """A StoreError from a unique index (PostgreSQL "violates unique constraint", SQLite
    "UNIQUE constraint failed"): a row another writer inserted meanwhile."""
    cause = error.__cause__
    return isinstance(cause, IntegrityError) and "unique" in str(cause.orig).lower()


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite returns min()/max() of a datetime column as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _GuardedSession(Session):
    """A session whose database errors come out as StoreError."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, expire_on_commit=False)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        super().__exit__(exc_type, exc, tb)
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"database error: {exc}") from exc
