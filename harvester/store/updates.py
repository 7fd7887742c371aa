"""Retraction and correction notices in the store: per work, pending, and per digest.

::

    a record's updates (a harvested page, or the update job's notices)
      ─▶ facts: target identifiers × kind × notice × who says so × source
      ─▶ target stored?  yes ─▶ work_updates (one row per fact; a repeat adds nothing)
                          no ─▶ pending_updates, one row per identifier of the target
    a page stored ─▶ pending rows under its records' identifiers ─▶ work_updates (applied)
    (what digests announce: harvester.store.update_alerts)

Works are matched by identifier only (the ``identifiers`` index), so applying a day's notices
costs a few indexed queries whatever the number of stored works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from harvester.records import UPDATE_KINDS, Identifiers, Record, Update
from harvester.store.models import Identifier
from harvester.store.update_models import PendingUpdate, WorkUpdate

# Corrections and errata are news of a lower tier: listed, never a reason for an alert.
LOWER_TIER: tuple[str, ...] = ("correction", "erratum")
_CHUNK = 500

# a dialect's ``insert`` (PostgreSQL's or SQLite's, both with ``on_conflict_do_nothing``)
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
    return insert_new(session, insert, WorkUpdate, rows, _WORK_KEY), insert_new(
        session, insert, PendingUpdate, pending, _PENDING_KEY
    )


_WORK_KEY = ["work_id", "kind", "notice_key", "asserted_by", "source"]
_PENDING_KEY = ["scheme", "value", "kind", "notice_key", "asserted_by", "source"]


def insert_new(
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
    return insert_new(session, insert, WorkUpdate, rows, _WORK_KEY)


def store_page_updates(
    session: Session, insert: Insert, records: Sequence[Record], now: datetime
) -> int:
    """The page hook: its records' own updates, then pending notices about its records."""
    applied, _ = apply_facts(session, insert, [f for r in records for f in facts_of(r)], now)
    return applied + resolve_pending(session, insert, records, now)


# -- reading -------------------------------------------------------------------------------


def stored_update(row: WorkUpdate) -> Update:
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
            out.setdefault(row.work_id, []).append(stored_update(row))
    return {w: tuple(sorted(us, key=update_order)) for w, us in out.items()}


def update_order(u: Update) -> tuple[int, str, str]:
    return (UPDATE_KINDS.index(u.kind), u.date or "", notice_key(u.notice))


def with_stored_updates(record: Record, stored: tuple[Update, ...]) -> Record:
    """A work's record with the updates the store holds for it (its own "notice" side kept:
    a notice stays recognisable as one)."""
    own = tuple(u for u in record.updates if u.role == "notice")
    if not stored and not record.updates:
        return record
    return record.with_changes(updates=stored + own)


__all__ = [
    "LOWER_TIER",
    "Fact",
    "apply_facts",
    "event_of",
    "facts_of",
    "insert_new",
    "notice_key",
    "resolve_pending",
    "store_page_updates",
    "stored_update",
    "update_order",
    "updates_of",
    "with_stored_updates",
]
