"""Retraction and correction notices in the store: per work, pending, and per digest.

::

    a record's updates (a harvested page, or the update job's notices)
      ─▶ facts: target identifiers × kind × notice × who says so × source
      ─▶ target stored?  yes ─▶ work_updates (one row per fact; a repeat adds nothing)
                          no ─▶ pending_updates, one row per identifier of the target
    a page stored ─▶ pending rows under its records' identifiers ─▶ work_updates (applied)
    a digest taken ─▶ updates of works the subscription was sent, found after they were sent,
                      in no digest of it yet ─▶ digest_updates (the outbox, as for studies)

Works are matched by identifier only (the ``identifiers`` index), so applying a day's notices
costs a few indexed queries whatever the number of stored works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from harvester.records import UPDATE_KINDS, Identifiers, Record, Update
from harvester.store.models import (
    Digest,
    DigestItem,
    DigestUpdate,
    Identifier,
    PendingUpdate,
    WorkUpdate,
)

if TYPE_CHECKING:
    from harvester.store.repository import Repository

# Corrections and errata are news of a lower tier: listed, never a reason for an alert.
LOWER_TIER: tuple[str, ...] = ("correction", "erratum")
_CHUNK = 500
# The update job's watermark lives beside the harvests' under this topic name, which no
# configured topic can take (topic names are slugs).
JOB_TOPIC = "(updates)"

Insert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Fact:
    """One source's statement that a notice of ``kind`` is about the work ``target``."""

    target: Identifiers
    kind: str
    notice: Identifiers
    date: str | None
    asserted_by: str
    source: str


def notice_key(ids: Identifiers) -> str:
    """The notice's first identifier as ``scheme:value`` ("" for a notice nobody names)."""
    items = ids.items()
    return f"{items[0][0]}:{items[0][1]}" if items else ""


def event_of(kind: str, key: str) -> str:
    """What a subscription is told once: a work's retraction (by whichever notice and
    source), or each correction notice of it."""
    return f"{kind} {key}" if kind in LOWER_TIER and key else kind


def facts_of(record: Record) -> list[Fact]:
    """A record's updates with both sides named (its own side is its identifiers)."""
    facts = []
    for u in record.updates:
        if u.kind not in UPDATE_KINDS:
            continue
        target, notice = (record.ids, u.notice) if u.role == "target" else (u.target, record.ids)
        if not target.items():
            continue
        facts.append(
            Fact(
                target=target,
                kind=u.kind,
                notice=notice,
                date=u.date,
                asserted_by=u.asserted_by or record.source,
                source=u.source or record.source,
            )
        )
    return facts


def _works_by_id(session: Session, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    grouped: dict[str, list[str]] = {}
    for scheme, value in dict.fromkeys(pairs):
        grouped.setdefault(scheme, []).append(value)
    found: dict[tuple[str, str], int] = {}
    for scheme, values in grouped.items():
        for start in range(0, len(values), _CHUNK):
            rows = session.execute(
                select(Identifier.scheme, Identifier.value, Identifier.work_id).where(
                    Identifier.scheme == scheme,
                    Identifier.value.in_(values[start : start + _CHUNK]),
                )
            )
            found.update({(s, v): w for s, v, w in rows})
    return found


def _row(fact: Fact, work_id: int, now: datetime) -> dict[str, Any]:
    return {
        "work_id": work_id,
        "kind": fact.kind,
        "notice_key": notice_key(fact.notice),
        "notice": fact.notice.to_json(),
        "date": fact.date,
        "asserted_by": fact.asserted_by[:32],
        "source": fact.source[:32],
        "found_at": now,
    }


def apply_facts(
    session: Session, insert: Insert, facts: Sequence[Fact], now: datetime
) -> tuple[int, int]:
    """Record ``facts``: on their stored target, else as pending. Returns (new updates, new
    pending); a fact already recorded adds nothing."""
    if not facts:
        return 0, 0
    works = _works_by_id(session, (p for f in facts for p in f.target.items()))
    rows: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for fact in facts:
        work_id = next((works[p] for p in fact.target.items() if p in works), None)
        if work_id is not None:
            rows.append(_row(fact, work_id, now))
            continue
        target = "|".join(f"{s}:{v}" for s, v in fact.target.items())[:600]
        for scheme, value in fact.target.items():
            row = _row(fact, 0, now)
            del row["work_id"]
            pending.append({**row, "scheme": scheme, "value": value[:255], "target": target})
    return _insert_new(session, insert, WorkUpdate, rows, _WORK_KEY), _insert_new(
        session, insert, PendingUpdate, pending, _PENDING_KEY
    )


_WORK_KEY = ["work_id", "kind", "notice_key", "asserted_by", "source"]
_PENDING_KEY = ["scheme", "value", "kind", "notice_key", "asserted_by", "source"]


def _insert_new(
    session: Session, insert: Insert, table: Any, rows: list[dict[str, Any]], key: list[str]
) -> int:
    unique = list({tuple(r[k] for k in key): r for r in rows}.values())
    if not unique:
        return 0
    result = session.execute(
        insert(table).on_conflict_do_nothing(index_elements=key).returning(table.id), unique
    )
    return len(result.all())


def resolve_pending(
    session: Session, insert: Insert, records: Sequence[Record], now: datetime
) -> int:
    """Apply the pending notices whose target is among ``records`` (stored in this
    transaction); returns how many updates that adds."""
    pairs = list(dict.fromkeys(p for r in records for p in r.ids.items()))
    if not pairs:
        return 0
    grouped: dict[str, list[str]] = {}
    for scheme, value in pairs:
        grouped.setdefault(scheme, []).append(value)
    found: list[PendingUpdate] = []
    for scheme, values in grouped.items():
        for start in range(0, len(values), _CHUNK):
            found.extend(
                session.execute(
                    select(PendingUpdate).where(
                        PendingUpdate.scheme == scheme,
                        PendingUpdate.value.in_(values[start : start + _CHUNK]),
                    )
                ).scalars()
            )
    if not found:
        return 0
    works = _works_by_id(session, ((p.scheme, p.value) for p in found))
    rows = []
    for p in found:
        work_id = works.get((p.scheme, p.value))
        if work_id is None:
            continue
        rows.append(
            {
                "work_id": work_id,
                "kind": p.kind,
                "notice_key": p.notice_key,
                "notice": p.notice,
                "date": p.date,
                "asserted_by": p.asserted_by,
                "source": p.source,
                "found_at": now,
            }
        )
        session.execute(
            delete(PendingUpdate).where(
                PendingUpdate.target == p.target,
                PendingUpdate.kind == p.kind,
                PendingUpdate.notice_key == p.notice_key,
                PendingUpdate.asserted_by == p.asserted_by,
                PendingUpdate.source == p.source,
            )
        )
    return _insert_new(session, insert, WorkUpdate, rows, _WORK_KEY)


def store_page_updates(
    session: Session, insert: Insert, records: Sequence[Record], now: datetime
) -> int:
    """The page hook: its records' own updates, then pending notices about its records."""
    applied, _ = apply_facts(session, insert, [f for r in records for f in facts_of(r)], now)
    return applied + resolve_pending(session, insert, records, now)


# -- reading -------------------------------------------------------------------------------


def _update(row: WorkUpdate) -> Update:
    return Update(
        kind=row.kind,
        role="target",
        notice=Identifiers.from_json(row.notice),
        date=row.date,
        asserted_by=row.asserted_by,
        source=row.source,
    )


def updates_of(session: Session, work_ids: Sequence[int]) -> dict[int, tuple[Update, ...]]:
    """Each work's stored updates, the graver kinds first, then by date."""
    out: dict[int, list[Update]] = {}
    ids = list(dict.fromkeys(work_ids))
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(WorkUpdate).where(WorkUpdate.work_id.in_(ids[start : start + _CHUNK]))
        ).scalars()
        for row in rows:
            out.setdefault(row.work_id, []).append(_update(row))
    return {w: tuple(sorted(us, key=_order)) for w, us in out.items()}


def _order(u: Update) -> tuple[int, str, str]:
    return (UPDATE_KINDS.index(u.kind), u.date or "", notice_key(u.notice))


def with_stored_updates(record: Record, stored: tuple[Update, ...]) -> Record:
    """A work's record with the updates the store holds for it (its own "notice" side kept:
    a notice stays recognisable as one)."""
    own = tuple(u for u in record.updates if u.role == "notice")
    if not stored and not record.updates:
        return record
    return record.with_changes(updates=stored + own)


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
        if first_found < found[0][1]:
            continue  # known when the work was sent: its digest showed it
        alerts.append(
            Alert(
                work_id,
                event,
                found[0][0].kind,
                tuple(sorted((_update(r) for r, _ in found), key=_order)),
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
    return _insert_new(session, insert, DigestUpdate, rows, ["subscription", "work_id", "event"])


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


def pending_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(PendingUpdate)).scalar_one())


class UpdateStore:
    """The update job's and the digests' way into these tables, over a repository's engine."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def apply(self, records: Sequence[Record]) -> tuple[int, int]:
        """Record the updates ``records`` (notices, retracted works) state: (new updates,
        new pending). Under the store's write lock, so a page stored at once either sees the
        pending rows or its works are seen here."""
        from harvester.store.writer import lock_writes

        facts = [f for r in records for f in facts_of(r)]
        if not facts:
            return 0, 0
        with self.repo._session() as session, session.begin():
            lock_writes(session)
            return apply_facts(session, self.repo._insert, facts, self.repo.clock())

    def watermark(self, source: str) -> datetime | None:
        return self.repo.watermark(JOB_TOPIC, source)

    def advance(self, source: str, value: datetime) -> None:
        with self.repo._session() as session, session.begin():
            self.repo._advance(session, JOB_TOPIC, source, value)

    def take_alerts(
        self, subscription: str, channel: str, kinds: Sequence[str], digest_id: int | None
    ) -> int:
        """Put the subscription's due alerts of ``kinds`` into the unsent digest
        ``digest_id`` (never sealed), or into a new digest of their own; returns how many."""
        now = self.repo.clock()
        with self.repo._session() as session, session.begin():
            alerts = due_alerts(session, subscription, kinds)
            if not alerts:
                return 0
            if digest_id is not None:
                digest = session.get(Digest, digest_id, with_for_update=True)
                if digest is None or digest.status != "pending" or digest.sealed:
                    digest_id = None
            if digest_id is None:
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
                digest_id = digest.id
                taken = add_alerts(session, self.repo._insert, digest_id, subscription, alerts)
                if not taken:
                    session.delete(digest)
                return taken
            return add_alerts(session, self.repo._insert, digest_id, subscription, alerts)

    def alerts_in(self, digest_id: int) -> list[Alert]:
        """The alerts a stored digest carries, with the updates known now."""
        with self.repo._session() as session:
            pairs = digest_alerts(session, digest_id)
            stored = updates_of(session, [w for w, _ in pairs])
        out = []
        for work_id, event in pairs:
            ups = tuple(
                u
                for u in stored.get(work_id, ())
                if event_of(u.kind, notice_key(u.notice)) == event
            )
            kind = event.split(" ", 1)[0]
            out.append(Alert(work_id, event, kind, ups))
        return out

    def counts(self, since: datetime) -> list[tuple[str, date, int]]:
        with self.repo._session() as session:
            return counts_by_day(session, since)

    def pending(self) -> int:
        with self.repo._session() as session:
            return pending_count(session)


__all__ = [
    "UpdateStore",
    "JOB_TOPIC",
    "LOWER_TIER",
    "Alert",
    "Fact",
    "add_alerts",
    "apply_facts",
    "counts_by_day",
    "digest_alerts",
    "due_alerts",
    "event_of",
    "facts_of",
    "notice_key",
    "pending_count",
    "resolve_pending",
    "store_page_updates",
    "updates_of",
    "with_stored_updates",
]
