"""What digests announce of the stored updates, and the update job's way into the store.

::

    a digest taken ─▶ updates of works the subscription was sent, first found after the work
                      was first sent (before, its digest showed them), in no digest of the
                      subscription yet ─▶ digest_updates (the outbox, as for studies)

An update reaches a subscription once: ``digest_updates`` is unique per subscription × work ×
event, where the event is a work's retraction (whichever notice or source says it) or each
correction notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from harvester.errors import StoreError
from harvester.records import UPDATE_KINDS, Record, Update
from harvester.store.models import Digest, DigestItem, Watermark, Work
from harvester.store.update_models import DigestUpdate, PendingUpdate, WorkUpdate
from harvester.store.updates import (
    Insert,
    apply_facts,
    event_of,
    facts_of,
    insert_new,
    notice_key,
    stored_update,
    update_order,
    updates_of,
    with_stored_updates,
)
from harvester.store.write_lock import lock_writes

# The update job's watermark lives beside the harvests' under this topic name, which no
# configured topic can take (topic names are slugs).
JOB_TOPIC = "(updates)"


# -- digests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """An update a subscription has not been told: the work, the event, and its rows."""

    work_id: int
    event: str
    kind: str
    updates: tuple[Update, ...]


def due_alerts(
    session: Session, subscription: str, kinds: Sequence[str] = UPDATE_KINDS
) -> list[Alert]:
    """Updates of works sent to ``subscription`` that were found after the work was first
    sent (before, its digest carried them as a badge) and are in no digest of it yet."""
    first_sent = (
        select(DigestItem.work_id, func.min(Digest.sent_at).label("sent_at"))
        .join(Digest, Digest.id == DigestItem.digest_id)
        .where(DigestItem.subscription == subscription, Digest.status == "sent")
        .group_by(DigestItem.work_id)
        .subquery()
    )
    rows = session.execute(
        select(WorkUpdate, first_sent.c.sent_at)
        .join(first_sent, first_sent.c.work_id == WorkUpdate.work_id)
        .where(WorkUpdate.kind.in_(list(kinds)))
        .order_by(WorkUpdate.work_id, WorkUpdate.id)
    ).all()
    told = {
        (w, e)
        for w, e in session.execute(
            select(DigestUpdate.work_id, DigestUpdate.event).where(
                DigestUpdate.subscription == subscription,
                DigestUpdate.work_id.in_(list({r.work_id for r, _ in rows}) or [0]),
            )
        )
    }
    events: dict[tuple[int, str], list[tuple[WorkUpdate, datetime]]] = {}
    for row, sent_at in rows:
        events.setdefault((row.work_id, event_of(row.kind, row.notice_key)), []).append(
            (row, _utc(sent_at))
        )
    alerts = []
    for (work_id, event), found in events.items():
        if (work_id, event) in told:
            continue
        first_found = min(_utc(r.found_at) for r, _ in found)
        if first_found <= found[0][1]:
            continue  # known when the work was sent: its digest showed it
        alerts.append(
            Alert(
                work_id,
                event,
                found[0][0].kind,
                tuple(sorted((stored_update(r) for r, _ in found), key=update_order)),
            )
        )
    return alerts


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite returns min() of a datetime column as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def add_alerts(
    session: Session,
    insert: Insert,
    digest_id: int,
    subscription: str,
    alerts: Sequence[Alert],
) -> int:
    """Put ``alerts`` into a digest; one already in a digest of the subscription is left out
    (the unique index decides, so two replicas cannot both take one)."""
    rows = [
        {
            "digest_id": digest_id,
            "subscription": subscription,
            "work_id": a.work_id,
            "event": a.event,
        }
        for a in alerts
    ]
    return insert_new(session, insert, DigestUpdate, rows, ["subscription", "work_id", "event"])


def digest_alerts(session: Session, digest_id: int) -> list[tuple[int, str]]:
    """The (work id, event) pairs a stored digest announces, in the order they were added."""
    return [
        (w, e)
        for w, e in session.execute(
            select(DigestUpdate.work_id, DigestUpdate.event)
            .where(DigestUpdate.digest_id == digest_id)
            .order_by(DigestUpdate.id)
        )
    ]


# -- the update job's watermark and status -------------------------------------------------


def counts_by_day(session: Session, since: datetime) -> list[tuple[str, date, int]]:
    """Updates found per source and UTC day since ``since``: (source, day, count)."""
    out: dict[tuple[str, date], int] = {}
    for source, found_at in session.execute(
        select(WorkUpdate.source, WorkUpdate.found_at).where(WorkUpdate.found_at >= since)
    ):
        key = (source, _utc(found_at).date())
        out[key] = out.get(key, 0) + 1
    return sorted(((s, d, n) for (s, d), n in out.items()), key=lambda t: (t[1], t[0]))


class UpdateStore:
    """The update job's and the digests' way into these tables. ``clock`` gives tz-aware
    UTC now."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self.insert: Insert = dialect.insert

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                if write:
                    with session.begin():
                        yield session
                else:
                    yield session
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e

    def apply(self, records: Sequence[Record]) -> tuple[int, int]:
        """Record the updates ``records`` (notices, retracted works) state: (new updates,
        new pending). Under the store's write lock, so a page stored at once either sees the
        pending rows or its works are seen here."""
        facts = [f for r in records for f in facts_of(r)]
        if not facts:
            return 0, 0
        with self._session(write=True) as session:
            lock_writes(session)
            return apply_facts(session, self.insert, facts, self.clock())

    def watermark(self, source: str) -> datetime | None:
        with self._session() as session:
            row = session.get(Watermark, (JOB_TOPIC, source))
            return row.value if row is not None else None

    def advance(self, source: str, value: datetime) -> None:
        """Move the job's watermark of ``source`` forward to ``value`` (never back, unless
        it stands beyond now: set by a clock that ran ahead)."""
        now = self.clock()
        with self._session(write=True) as session:
            row = session.get(Watermark, (JOB_TOPIC, source))
            if row is None:
                session.add(Watermark(topic=JOB_TOPIC, source=source, value=value, updated_at=now))
            elif value > row.value or row.value > now:
                row.value, row.updated_at = value, now

    def take_alerts(
        self, subscription: str, channel: str, kinds: Sequence[str], digest_id: int | None
    ) -> int:
        """Put the subscription's due alerts of ``kinds`` into the unsent digest
        ``digest_id`` (if it is still unsealed), else into a new digest of their own; returns
        how many were taken."""
        now = self.clock()
        with self._session(write=True) as session:
            alerts = due_alerts(session, subscription, kinds)
            if not alerts:
                return 0
            if digest_id is not None:
                digest = session.get(Digest, digest_id, with_for_update=True)
                if digest is None or not digest.takes_items:
                    digest_id = None
            if digest_id is not None:
                return add_alerts(session, self.insert, digest_id, subscription, alerts)
            digest = Digest.pending(subscription, channel, now)
            session.add(digest)
            session.flush()
            taken = add_alerts(session, self.insert, digest.id, subscription, alerts)
            if not taken:
                session.delete(digest)
            return taken

    def alerts_in(self, digest_id: int) -> list[tuple[Record, Alert]]:
        """The alerts a stored digest carries, each with its work's record (and every update
        known now), in the order they were taken."""
        with self._session() as session:
            return self._with_records(session, digest_alerts(session, digest_id))

    def due(self, subscription: str, kinds: Sequence[str]) -> list[tuple[Record, Alert]]:
        """The alerts the subscription's next digest would take (a preview: nothing is
        taken)."""
        with self._session() as session:
            pairs = [(a.work_id, a.event) for a in due_alerts(session, subscription, kinds)]
            return self._with_records(session, pairs)

    def _with_records(
        self, session: Session, pairs: list[tuple[int, str]]
    ) -> list[tuple[Record, Alert]]:
        ids = [w for w, _ in pairs]
        stored = updates_of(session, ids)
        works = {
            w.id: with_stored_updates(Record.from_json(w.record), stored.get(w.id, ()))
            for w in session.execute(select(Work).where(Work.id.in_(ids or [0]))).scalars()
        }
        out = []
        for work_id, event in pairs:
            if work_id not in works:
                continue
            ups = tuple(
                u
                for u in stored.get(work_id, ())
                if event_of(u.kind, notice_key(u.notice)) == event
            )
            out.append((works[work_id], Alert(work_id, event, event.split(" ", 1)[0], ups)))
        return out

    def counts(self, since: datetime) -> list[tuple[str, date, int]]:
        with self._session() as session:
            return counts_by_day(session, since)

    def pending(self) -> int:
        with self._session() as session:
            return int(
                session.execute(select(func.count()).select_from(PendingUpdate)).scalar_one()
            )


__all__ = [
    "JOB_TOPIC",
    "Alert",
    "UpdateStore",
    "add_alerts",
    "counts_by_day",
    "digest_alerts",
    "due_alerts",
]
