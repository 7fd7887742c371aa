"""A source's record stored once: ``provenance.record`` is NULL where it is its work's record.

Most works have one provenance, and the merged record of one record is that record, so the
same JSON sat in ``works.record`` and ``provenance.record`` (~78 % of a SQLite store's
bytes). A provenance row now holds NULL instead when, as the row is written, it is its work's
only provenance and its JSON is byte for byte its work's record (:func:`stored_record`);
readers take ``coalesce(provenance.record, works.record)`` (:func:`provenance_rows`). The
page writer puts the JSON back into such a row (:func:`write_provenance`) before the work
gains a second provenance or its record changes, so a NULL always means "this work's record
as it is now". A work's record is written in one place only, so the works side keeps its
readers (digests, exports, web, dedup) as they were; the provenance side has two (the page
writer's lookups and the shared windows' read-back).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Select, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from harvester.store.models import Provenance, Work

# The record a provenance row stands for: its own JSON, or (NULL) its work's.
RECORD = func.coalesce(Provenance.record, Work.record, type_=JSON)
# True where the row holds NULL (the work's record stands for it).
ELIDED = Provenance.record.is_(None)


@dataclass(slots=True)
class Prov:
    """A provenance row as the page leaves it (id None: inserted by this page); ``elided``:
    stored as NULL, its work's record standing for it; ``record`` is the one it stands for."""

    id: int | None
    work_id: int
    record: dict[str, Any]
    changed: bool = False
    elided: bool = False


def provenance_rows(*columns: Any) -> Select[Any]:
    """``SELECT columns…, elided, record FROM provenance JOIN works`` (add the WHERE)."""
    return select(*columns, ELIDED, RECORD).join(Work, Work.id == Provenance.work_id)


def same_json(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when both serialize to the same JSON text, as the store would write them (dict
    equality is not enough: ``1 == 1.0 == True``, and key order is part of the text)."""
    return a is b or json.dumps(a) == json.dumps(b)


def stored_record(prov: Prov, provs: Sequence[Prov], work_record: dict[str, Any]) -> Any:
    """What ``provenance.record`` holds for ``prov``, one of the work's ``provs`` (all of
    them) whose record will be ``work_record``: None when it is the only one and identical."""
    if len(provs) == 1 and provs[0] is prov and same_json(prov.record, work_record):
        return None
    return prov.record


def write_provenance(
    session: Session,
    insert: Callable[[Any], Any],
    works: Mapping[int, tuple[Sequence[Prov], dict[str, Any]]],
    stored: Iterable[Prov],
    new: Sequence[tuple[tuple[str, str], Prov]],
    rid: Callable[[int], int],
    run_id: int,
    now: datetime,
) -> None:
    """Write the page's provenance rows. ``works``: work id → (its provenance, all of it,
    and its record as the page leaves it) for every work the page adds a record to or
    re-merges; ``stored``: the stored rows the page met; ``new``: the rows it inserts.

    A stored row whose record changed is rewritten (with ``fetched_at``); one held as NULL
    whose work now has another provenance or another record gets its JSON back (the record
    it stood for, read with it), ``fetched_at`` kept."""
    table = cast(Table, Provenance.__table__)

    def value(prov: Prov) -> Any:
        work = works.get(prov.work_id)
        # a work the page did not re-merge keeps its record: the row keeps its own form
        return prov.record if work is None else stored_record(prov, work[0], work[1])

    changed: list[dict[str, Any]] = []
    restored: list[dict[str, Any]] = []
    for prov in stored:
        if prov.id is None:
            continue
        if prov.changed:
            changed.append({"pid": prov.id, "record": value(prov), "fetched_at": now})
        elif prov.elided and prov.work_id in works and value(prov) is not None:
            restored.append({"pid": prov.id, "record": prov.record})
    if changed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values(record=bindparam("record"), fetched_at=bindparam("fetched_at")),
            changed,
        )
    if restored:
        session.execute(
            update(table).where(table.c.id == bindparam("pid")).values(record=bindparam("record")),
            restored,
        )
    if new:
        session.execute(
            insert(Provenance),
            [
                {
                    "work_id": rid(p.work_id),
                    "source": key[0],
                    "source_id": key[1],
                    "fetched_at": now,
                    "run_id": run_id,
                    "record": value(p),
                }
                for key, p in new
            ],
        )
