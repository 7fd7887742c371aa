"""The write path of one page: find what the page meets in the store, match, write.

Used by :meth:`harvester.store.repository.Repository.store_page`; with
:mod:`harvester.store.lookup` (its reads) the only other module that speaks SQL. Which work a
record joins is :mod:`harvester.dedup.rules`'s decision; this module only looks candidates up
and writes.

One identifier, one work, whoever writes at once: a page's transaction first takes the
store's write lock (:func:`~harvester.store.write_lock.lock_writes`), so reading what the page
meets, matching and writing are one step that no other page's write can come between: several
sources (threads of one daemon, replicas on PostgreSQL, a backfill beside the daemon) storing
the same study at once end as they would one after the other. Should a row appear anyway (a
writer that does not take the lock, such as an older harvester during an upgrade), an
identifier that another work holds is a :class:`WriteConflict` and the page is stored again,
never written without the identifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from harvester.dedup.cluster import MAX_BLOCK
from harvester.dedup.features import Features, features, keys_of
from harvester.dedup.merge import merge_records
from harvester.dedup.rules import Link, choose
from harvester.records import Record
from harvester.store.lookup import Item, PageLookup, provenance_key
from harvester.store.models import Identifier, TopicHit, Work, WorkLink, WorkMatchKey
from harvester.store.provenance import Prov, write_provenance

if TYPE_CHECKING:
    from harvester.store.base import Store


class WriteConflict(Exception):
    """A row the page meant to insert appeared meanwhile (another writer): store it again.

    Never leaves :meth:`~harvester.store.repository.Repository.store_page`, which repeats
    the page and raises StoreError only if the conflict persists."""


@dataclass(slots=True)
class _PageWork:
    """A work the page creates or adds a record to: its provenance in storage order and its
    record as the page leaves it (``stored``: as it is in the database, None for a new one)."""

    provs: list[Prov]
    record: dict[str, Any]
    stored: dict[str, Any] | None
    features: Features | None = None

    def feats(self) -> Features:
        if self.features is None:
            self.features = features(Record.from_json(self.record))
        return self.features


def _age(work_id: int) -> int:
    """Stored works by id, then the page's new works (placeholders) in creation order."""
    return work_id if work_id > 0 else (1 << 62) - work_id


class PageWriter:
    """Stores one page with a handful of queries, keeping the one-record-at-a-time semantics.

    Before matching, one query per table finds what the page meets in the store
    (:class:`~harvester.store.lookup.PageLookup`). The records are then matched in page order
    against the stored works and against what earlier records of the page created or merged
    (kept in memory), each with :func:`harvester.dedup.rules.choose`, and :meth:`write` writes
    every row in one statement per table. New works get placeholder ids (negative) until they
    are inserted.
    """

    def __init__(self, repo: Store, session: Session, run_id: int, now: datetime) -> None:
        self.repo = repo
        self.session = session
        self.run_id = run_id
        self.now = now
        self.lookup = PageLookup(session, repo.engine.dialect.name == "postgresql")
        self.page_keys: dict[str, dict[int, None]] = {}
        self.works: dict[int, _PageWork] = {}
        self.new_order: list[int] = []
        self.new_provs: list[tuple[tuple[str, str], Prov, Record]] = []
        self.new_ids: list[tuple[int, str, str]] = []
        self.new_keys: dict[tuple[str, int], None] = {}
        self.new_links: dict[tuple[int, int], tuple[str, str]] = {}
        self.hits: dict[int, str] = {}
        self.real: dict[int, int] = {}

    # -- matching, in page order -----------------------------------------------------------

    def add(self, records: Sequence[Record]) -> tuple[int, int]:
        """Match every record; returns (new works, duplicates)."""
        items: list[Item] = []
        for record in records:
            f = features(record)
            keys = list(dict.fromkeys(k[:255] for k in keys_of(f)))
            items.append(Item(record, (record.source, provenance_key(record)), f, keys))
        self.lookup.prefetch(items)
        new_works = duplicates = 0
        for item in items:
            created, duplicate = self._add(item)
            new_works += created
            duplicates += duplicate
        return new_works, duplicates

    def _add(self, item: Item) -> tuple[bool, bool]:
        record, key, keys = item.record, item.key, item.keys
        provs, ids = self.lookup.provs, self.lookup.ids
        payload = record.to_json()
        prov = provs.get(key)
        created = False
        if prov is not None:
            work_id, duplicate = prov.work_id, True
            changed = prov.record != payload
            if changed:
                prov.record = payload
                prov.changed = True
        else:
            existing, versions = self._match(item)
            duplicate = existing is not None
            prov = Prov(None, 0, payload)
            if existing is None:
                work_id = -(len(self.new_order) + 1)
                self.new_order.append(work_id)
                self.works[work_id] = _PageWork([prov], payload, None)
                created = True
            else:
                work_id = existing
                self._touch(work_id).provs.append(prov)
            prov.work_id = work_id
            provs[key] = prov
            self.new_provs.append((key, prov, record))
            for other, link in versions:
                if other != work_id:
                    self.new_links.setdefault((work_id, other), link)
            changed = True
        for pair in record.ids.items():
            if pair not in ids:
                ids[pair] = work_id
                self.new_ids.append((work_id, *pair))
        for k in keys:
            self.page_keys.setdefault(k, {})[work_id] = None
            self.new_keys[(k, work_id)] = None
        if not created and changed:
            # an unchanged record leaves the merge of its work's records as it is
            self._remerge(work_id)
        self.hits.setdefault(work_id, record.source)
        return created, duplicate

    def _match(self, item: Item) -> tuple[int | None, list[tuple[int, tuple[str, str]]]]:
        """The candidates, as before the batching: works sharing an identifier, then works
        under a key shared by at most MAX_BLOCK works (at most 4·MAX_BLOCK of them); which one
        the record joins and which it links as versions is :func:`dedup.rules.choose`'s (the
        best-scoring duplicate, then the oldest work)."""
        record, lookup = item.record, self.lookup
        candidates: dict[int, None] = {}
        for pair in record.ids.items():
            if pair in lookup.ids:
                candidates[lookup.ids[pair]] = None
        by_key, unread = self._by_key(item)
        if len(by_key) + unread > 4 * MAX_BLOCK:
            # past the cap, which works are kept depends on the rows beyond the year range too
            lookup.read_whole(item.keys)
            by_key, _ = self._by_key(item)
        for work_id in list(by_key)[: 4 * MAX_BLOCK]:
            candidates.setdefault(work_id, None)
        judged = (
            (work_id, other)
            for work_id in candidates
            if (other := self._features(work_id, item)) is not None
        )
        choice = choose(item.f, judged, order=_age)
        return choice.joins, [
            (work_id, (d.reason, str(d.link or Link.PREPRINT))) for work_id, d in choice.versions
        ]

    def _by_key(self, item: Item) -> tuple[dict[int, None], int]:
        """The works under the record's keys that are not common (shared by more than
        MAX_BLOCK stored and page works), stored ones first per key, and how many stored ones
        were not read (beyond a key's year range: never candidates, but counted)."""
        lookup = self.lookup
        counts, db_keys, page_keys = lookup.counts, lookup.db_keys, self.page_keys
        by_key: dict[int, None] = {}
        unread = 0
        for key in item.keys:
            count = counts.get(key, 0)
            if count > MAX_BLOCK:
                continue
            stored = db_keys.get(key, ())
            on_page = page_keys.get(key)
            page = [
                w for w in on_page
                if w not in stored and not (count > len(stored) and lookup.filed(key, w))
            ] if on_page else []  # fmt: skip
            if count + len(page) > MAX_BLOCK:
                continue
            by_key.update(dict.fromkeys(stored))
            by_key.update(dict.fromkeys(page))
            unread += count - len(stored)
        return by_key, unread

    def _features(self, work_id: int, item: Item) -> Features | None:
        page_work = self.works.get(work_id)
        if page_work is not None:
            return page_work.feats()
        if self.lookup.skip(item, work_id):
            return None
        if work_id not in self.lookup.loaded:
            self.lookup.load([work_id])
        rec = self.lookup.loaded.get(work_id)
        if rec is None:
            return None
        # the decoded stored work is kept: another record of the page may meet it too
        page_work = _PageWork([], rec, rec)
        self.works[work_id] = page_work
        return page_work.feats()

    def _touch(self, work_id: int) -> _PageWork:
        """The in-memory state of a stored work the page adds a record to, with its
        provenance (read once)."""
        page_work = self.works.get(work_id)
        if page_work is None:
            self.lookup.load([work_id])
            rec = self.lookup.loaded[work_id]
            page_work = self.works[work_id] = _PageWork([], rec, rec)
        if work_id > 0 and not page_work.provs:
            for pid, source, source_id, rec, elided in self.lookup.provenance(work_id):
                prov = self.lookup.provs.setdefault(
                    (source, source_id), Prov(pid, work_id, rec, elided=elided)
                )
                page_work.provs.append(prov)
        return page_work

    def _year(self, work_id: int) -> Any:
        """The year a work leaves the page with; None where the page did not read it."""
        page_work = self.works.get(work_id)
        return None if page_work is None else page_work.record.get("year")

    def _remerge(self, work_id: int) -> None:
        page_work = self._touch(work_id)
        merged = merge_records([Record.from_json(p.record) for p in page_work.provs]).to_json()
        if merged != page_work.record:
            page_work.record = merged
            page_work.features = None

    # -- writing, one statement per table --------------------------------------------------

    def write(self, topic: str, backfill: bool) -> int:
        """Write the page's rows; returns the topic hits that are new."""
        s, now, insert = self.session, self.now, self.repo._insert
        real: dict[int, int] = {}
        if self.new_order:
            rows = [
                {
                    "title": w.record.get("title"),
                    "year": w.record.get("year"),
                    "record": w.record,
                    "created_at": now,
                    "updated_at": now,
                }
                for w in (self.works[p] for p in self.new_order)
            ]
            ids = (
                s.execute(insert(Work).returning(Work.id, sort_by_parameter_order=True), rows)
                .scalars()
                .all()
            )
            real = dict(zip(self.new_order, ids, strict=True))
        self.real = real  # placeholder → inserted id (store.sharing writes hits beside)

        def rid(work_id: int) -> int:
            return real[work_id] if work_id < 0 else work_id

        changed = [
            {
                "wid": work_id,
                "record": w.record,
                "title": w.record.get("title"),
                "year": w.record.get("year"),
                "updated_at": now,
            }
            for work_id, w in self.works.items()
            if work_id > 0 and w.stored is not None and w.record != w.stored
        ]
        works = cast(Table, Work.__table__)
        if changed:
            s.execute(
                update(works)
                .where(works.c.id == bindparam("wid"))
                .values(
                    record=bindparam("record"),
                    title=bindparam("title"),
                    year=bindparam("year"),
                    updated_at=bindparam("updated_at"),
                ),
                changed,
            )
        write_provenance(
            s,
            insert,
            {w: (page_work.provs, page_work.record) for w, page_work in self.works.items()
             if page_work.provs},
            self.lookup.provs.values(),
            [(key, p) for key, p, _ in self.new_provs],
            rid,
            self.run_id,
            now,
        )  # fmt: skip
        if self.new_ids:
            # every identifier the page gives a work was free when the page read the store;
            # one that is taken now belongs to another work: the page must meet that work
            inserted = s.execute(
                insert(Identifier)
                .on_conflict_do_nothing(index_elements=["scheme", "value"])
                .returning(Identifier.scheme, Identifier.value),
                [
                    {"work_id": rid(w), "scheme": scheme, "value": value}
                    for w, scheme, value in self.new_ids
                ],
            ).all()
            if len(inserted) != len(self.new_ids):
                taken = sorted(
                    {(sc, v) for _, sc, v in self.new_ids} - {tuple(r) for r in inserted}
                )
                raise WriteConflict(f"identifiers taken by another writer: {taken[:5]}")
        if self.new_keys:
            s.execute(
                insert(WorkMatchKey).on_conflict_do_nothing(index_elements=["key", "work_id"]),
                [{"key": k, "work_id": rid(w), "year": self._year(w)} for k, w in self.new_keys],
            )
        moved = [
            {"wid": w, "year": pw.record.get("year")}
            for w, pw in self.works.items()
            if w > 0 and pw.stored is not None and pw.record.get("year") != pw.stored.get("year")
        ]
        if moved:  # the keys carry their work's year: they move with it
            keys = cast(Table, WorkMatchKey.__table__)
            s.execute(
                update(keys)
                .where(keys.c.work_id == bindparam("wid"))
                .values(year=bindparam("year")),
                moved,
            )
        links: dict[tuple[int, int], tuple[str, str]] = {}
        for (a, b), link in self.new_links.items():
            low, high = sorted((rid(a), rid(b)))
            links.setdefault((low, high), link)
        if links:
            s.execute(
                insert(WorkLink).on_conflict_do_nothing(
                    index_elements=["work_id", "other_work_id"]
                ),
                [
                    {"work_id": a, "other_work_id": b, "reason": r, "kind": k, "created_at": now}
                    for (a, b), (r, k) in links.items()
                ],  # fmt: skip
            )
        new_hits = 0
        if self.hits:
            result = s.execute(
                insert(TopicHit)
                .on_conflict_do_nothing(index_elements=["topic", "work_id"])
                .returning(TopicHit.id),
                [
                    {
                        "topic": topic,
                        "work_id": rid(w),
                        "first_seen": now,
                        "backfill": backfill,
                        "source": source,
                        "run_id": self.run_id,
                    }
                    for w, source in self.hits.items()
                ],
            )
            new_hits = len(result.all())
        return new_hits
