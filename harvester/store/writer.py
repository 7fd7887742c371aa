"""The write path of one page: find what the page meets in the store, match, write.

Used by :meth:`harvester.store.repository.Repository.store_page`; the only other module
that speaks SQL.

One identifier, one work, whoever writes at once: a page's transaction first takes the
store's write lock (:func:`lock_writes`), so reading what the page meets, matching and
writing are one step that no other page's write can come between: several sources (threads
of one daemon, replicas on PostgreSQL, a backfill beside the daemon) storing the same study
at once end as they would one after the other. Should a row appear anyway (a writer that
does not take the lock, such as an older harvester during an upgrade), an identifier that
another work holds is a :class:`WriteConflict` and the page is stored again, never written
without the identifier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BigInteger,
    Table,
    any_,
    bindparam,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from harvester.dedup.cluster import MAX_BLOCK, Verdict, decide, merge_records
from harvester.dedup.features import Features, features, keys_of
from harvester.records import Record
from harvester.store.models import (
    Identifier,
    Provenance,
    TopicHit,
    Work,
    WorkLink,
    WorkMatchKey,
)

if TYPE_CHECKING:
    from harvester.store.repository import Repository


# The write lock on PostgreSQL: pg_advisory_xact_lock(class, hashtext(current_schema())), so
# two stores in two schemas of one database do not wait for each other. The class ("hvw")
# keeps it apart from the claims' and the migrations' one-argument (bigint) locks.
WRITE_LOCK_CLASS = 0x687677
# How long a page waits for the write lock on PostgreSQL before its run fails (and is
# retried later); SQLite waits its busy timeout (30 s, database.py).
WRITE_LOCK_TIMEOUT = "120s"


class WriteConflict(Exception):
    """A row the page meant to insert appeared meanwhile (another writer): store it again.

    Never leaves :meth:`~harvester.store.repository.Repository.store_page`, which repeats
    the page and raises StoreError only if the conflict persists."""


def lock_writes(session: Session) -> None:
    """Take the store's write lock for the session's transaction; the first statement.

    PostgreSQL: a transaction-scoped advisory lock, released by the commit or rollback (a
    crashed writer's lock goes with its connection). SQLite has one writer at a time
    anyway, but the page's reads must come after that writer is done: ``BEGIN IMMEDIATE``
    takes the write lock before the first read (the driver would otherwise begin the
    transaction only at the first INSERT, after the reads)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = '{WRITE_LOCK_TIMEOUT}'"))
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


def provenance_key(record: Record) -> str:
    """The source's own id, or a content hash for a record that has none."""
    if record.source_id:
        return record.source_id
    digest = hashlib.sha1(
        json.dumps(record.to_json(), sort_keys=True).encode("utf-8"), usedforsecurity=False
    )
    return "sha1:" + digest.hexdigest()


# Rows per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 1000
# A provenance row as the lookups read it: id, source, source_id, work_id, record.
_PROVENANCE_ROW = (
    Provenance.id,
    Provenance.source,
    Provenance.source_id,
    Provenance.work_id,
    Provenance.record,
)


def _grouped(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(first, second) pairs as (first, [second, …]) in first-seen order. The lookups ask
    ``first = ? AND second IN (…)`` per group, which both databases answer from the unique
    (first, second) index; SQLite plans a row-value ``(a, b) IN (VALUES …)`` as a full scan
    (measured: 0.52 s per 500-record page at 1M works)."""
    groups: dict[str, list[str]] = {}
    for first, second in pairs:
        groups.setdefault(first, []).append(second)
    return list(groups.items())


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class _Item:
    """A record of the page, its provenance key, its features and blocking keys, and the
    stored works it meets through an identifier (None: not known, see ``PageWriter``)."""

    record: Record
    key: tuple[str, str]
    f: Features
    keys: list[str]
    linked: set[int] | None = None


@dataclass(slots=True)
class _Prov:
    """A provenance row as the page leaves it (id None: inserted by this page)."""

    id: int | None
    work_id: int
    record: dict[str, Any]
    changed: bool = False


@dataclass(slots=True)
class _PageWork:
    """A work the page creates or adds a record to: its provenance in storage order and its
    record as the page leaves it (``stored``: as it is in the database, None for a new one)."""

    provs: list[_Prov]
    record: dict[str, Any]
    stored: dict[str, Any] | None
    features: Features | None = None

    def feats(self) -> Features:
        if self.features is None:
            self.features = features(Record.from_json(self.record))
        return self.features


class PageWriter:
    """Stores one page with a handful of queries, keeping the one-record-at-a-time semantics.

    Before matching, one query per table finds what the page meets in the store: provenance
    rows of its records, works holding its identifiers, works under its blocking keys (at most
    ``MAX_BLOCK + 1`` per key, enough to tell a common key, which is skipped), the year and
    identifiers of every candidate (:func:`_cannot_match` drops most title-key candidates
    without decoding them) and the records of the rest. The records are then matched in page
    order against the stored works and against what earlier records of the page created or
    merged (kept in memory), and :meth:`write` writes every row in one statement per table.
    New works get placeholder ids (negative) until they are inserted.
    """

    def __init__(self, repo: Repository, session: Session, run_id: int, now: datetime) -> None:
        self.repo = repo
        self.session = session
        self.run_id = run_id
        self.now = now
        self.postgres = repo.engine.dialect.name == "postgresql"
        self.provs: dict[tuple[str, str], _Prov] = {}
        self.ids: dict[tuple[str, str], int] = {}  # first claimant, as the unique index keeps
        self.db_keys: dict[str, list[int]] = {}
        self.page_keys: dict[str, dict[int, None]] = {}
        self.years: dict[int, int | None] = {}
        # works per query: PostgreSQL takes them as one array parameter
        self._chunk = 20_000 if self.postgres else _CHUNK
        self.loaded: dict[int, dict[str, Any]] = {}
        self.prov_rows: dict[int, list[tuple[int, str, str, dict[str, Any]]]] = {}
        self.works: dict[int, _PageWork] = {}
        self.new_order: list[int] = []
        self.new_provs: list[tuple[tuple[str, str], _Prov, Record]] = []
        self.new_ids: list[tuple[int, str, str]] = []
        self.new_keys: dict[tuple[str, int], None] = {}
        self.new_links: dict[tuple[int, int], str] = {}
        self.hits: dict[int, str] = {}
        self.real: dict[int, int] = {}

    # -- lookups, one query per table ------------------------------------------------------

    def _prefetch(self, items: Sequence[_Item]) -> None:
        s = self.session
        pairs = list(dict.fromkeys(item.key for item in items))
        for source, source_ids in _grouped(pairs):
            for chunk in _chunks(source_ids, 500):
                for pid, src, source_id, work_id, rec in s.execute(
                    select(*_PROVENANCE_ROW).where(
                        Provenance.source == source, Provenance.source_id.in_(chunk)
                    )
                ):
                    self.provs[(src, source_id)] = _Prov(pid, work_id, rec)
        unmatched = [item for item in items if item.key not in self.provs]
        id_pairs = list(dict.fromkeys(p for item in items for p in item.record.ids.items()))
        for scheme, values in _grouped(id_pairs):
            for chunk in _chunks(values, 500):
                for found, value, work_id in s.execute(
                    select(Identifier.scheme, Identifier.value, Identifier.work_id).where(
                        Identifier.scheme == scheme, Identifier.value.in_(chunk)
                    )
                ):
                    self.ids[(found, value)] = work_id
        keys = list(dict.fromkeys(k for item in unmatched for k in item.keys))
        for chunk in _chunks(keys, self._chunk):
            for key, work_id in s.execute(self._key_query(chunk)):
                self.db_keys.setdefault(key, []).append(work_id)
        # the years of every stored work a record meets; the whole record only of those the
        # year leaves a chance of being the same work (see _skip)
        wanted: dict[int, None] = {}
        for item in unmatched:
            item.linked = self._linked(item)
            wanted.update(dict.fromkeys(self._stored_candidates(item)))
        for chunk in _chunks(list(wanted), self._chunk):
            for work_id, year in s.execute(
                select(Work.id, Work.year).where(self._among(Work.id, chunk))
            ):
                self.years[work_id] = year
        needed_set: dict[int, None] = {}
        for item in unmatched:
            for work_id in self._stored_candidates(item):
                if not self._skip(item, work_id):
                    needed_set[work_id] = None
        needed = list(needed_set)
        self._load(needed)
        # the provenance of the works a record may join, for re-merging them
        for chunk in _chunks(needed, self._chunk):
            for pid, source, source_id, work_id, rec in s.execute(
                select(*_PROVENANCE_ROW)
                .where(self._among(Provenance.work_id, chunk))
                .order_by(Provenance.id)
            ):
                self.prov_rows.setdefault(work_id, []).append((pid, source, source_id, rec))

    def _linked(self, item: _Item) -> set[int] | None:
        """The stored works that share an identifier with the record, or whose DOI is its
        ``published_doi`` or whose ``published_doi`` is its DOI: the works under its ``id:``
        keys (a work is filed under the id keys of each of its records, and its merged record's
        identifiers come from those records) and those holding its identifiers. None when that
        is not known: an id key of more than MAX_BLOCK works (only MAX_BLOCK + 1 were read), or
        blocking keys that no longer file identifiers."""
        f = item.f
        id_keys = [f"id:{scheme}:{value}"[:255] for scheme, value in f.ids]
        if f.published_doi:
            id_keys.append(f"id:doi:{f.published_doi}"[:255])
        out = {self.ids[p] for p in item.record.ids.items() if p in self.ids}
        for key in id_keys:
            rows = self.db_keys.get(key, ())
            if key not in item.keys or len(rows) > MAX_BLOCK:
                return None
            out.update(rows)
        return out

    def _skip(self, item: _Item, work_id: int) -> bool:
        """True when :func:`dedup.decide` can only call the record and stored work ``work_id``
        DISTINCT, judged from the work's year: years more than one apart fail its fuzzy rule,
        and only a shared identifier or a preprint's ``published_doi`` lead past that rule
        without comparing years (``item.linked`` holds those works). Saves decoding the record
        of most candidates met through a title key (the same title in another year)."""
        if item.linked is None or work_id in item.linked or item.f.year is None:
            return False
        year = self.years.get(work_id)
        return year is not None and abs(item.f.year - year) > 1

    def _among(self, column: Any, values: Sequence[int]) -> Any:
        """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter."""
        if self.postgres:
            return column == any_(literal(list(values), postgresql.ARRAY(BigInteger)))
        return column.in_(values)

    def _key_query(self, keys: Sequence[str]) -> Any:
        """(key, work id) rows of ``keys``, at most MAX_BLOCK + 1 per key: a key with more is
        common and skipped, and its other rows need not be read."""
        if self.postgres:
            return text(
                "SELECT k.key, m.work_id FROM unnest(CAST(:keys AS varchar[])) AS k(key) "
                "CROSS JOIN LATERAL (SELECT w.work_id FROM work_match_keys w "
                "WHERE w.key = k.key LIMIT :n) AS m"
            ).bindparams(keys=list(keys), n=MAX_BLOCK + 1)
        numbered = (
            select(
                WorkMatchKey.key,
                WorkMatchKey.work_id,
                func.row_number().over(partition_by=WorkMatchKey.key).label("n"),
            )
            .where(WorkMatchKey.key.in_(keys))
            .subquery()
        )
        return select(numbered.c.key, numbered.c.work_id).where(numbered.c.n <= MAX_BLOCK + 1)

    def _stored_candidates(self, item: _Item) -> list[int]:
        """Stored works holding the record's identifiers or under its keys (not common ones)."""
        out: dict[int, None] = dict.fromkeys(
            self.ids[p] for p in item.record.ids.items() if p in self.ids
        )
        for key in item.keys:
            rows = self.db_keys.get(key, ())
            if len(rows) <= MAX_BLOCK:
                out.update(dict.fromkeys(rows))
        return list(out)

    def _load(self, work_ids: Sequence[int]) -> None:
        for chunk in _chunks([w for w in work_ids if w not in self.loaded], self._chunk):
            for work_id, rec in self.session.execute(
                select(Work.id, Work.record).where(self._among(Work.id, chunk))
            ):
                self.loaded[work_id] = rec

    # -- matching, in page order -----------------------------------------------------------

    def add(self, records: Sequence[Record]) -> tuple[int, int]:
        """Match every record; returns (new works, duplicates)."""
        items: list[_Item] = []
        for record in records:
            f = features(record)
            keys = list(dict.fromkeys(k[:255] for k in keys_of(f)))
            items.append(_Item(record, (record.source, provenance_key(record)), f, keys))
        self._prefetch(items)
        new_works = duplicates = 0
        for item in items:
            created, duplicate = self._add(item)
            new_works += created
            duplicates += duplicate
        return new_works, duplicates

    def _add(self, item: _Item) -> tuple[bool, bool]:
        record, key, keys = item.record, item.key, item.keys
        payload = record.to_json()
        prov = self.provs.get(key)
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
            prov = _Prov(None, 0, payload)
            if existing is None:
                work_id = -(len(self.new_order) + 1)
                self.new_order.append(work_id)
                self.works[work_id] = _PageWork([prov], payload, None)
                created = True
            else:
                work_id = existing
                self._touch(work_id).provs.append(prov)
            prov.work_id = work_id
            self.provs[key] = prov
            self.new_provs.append((key, prov, record))
            for other, reason in versions:
                if other != work_id:
                    self.new_links.setdefault((work_id, other), reason)
            changed = True
        for pair in record.ids.items():
            if pair not in self.ids:
                self.ids[pair] = work_id
                self.new_ids.append((work_id, *pair))
        for k in keys:
            self.page_keys.setdefault(k, {})[work_id] = None
            self.new_keys[(k, work_id)] = None
        if not created and changed:
            # an unchanged record leaves the merge of its work's records as it is
            self._remerge(work_id)
        self.hits.setdefault(work_id, record.source)
        return created, duplicate

    def _match(self, item: _Item) -> tuple[int | None, list[tuple[int, str]]]:
        """As before the batching: works sharing an identifier, then works under a key shared
        by at most MAX_BLOCK works (at most 4·MAX_BLOCK of them), each judged with
        :func:`dedup.decide`; the best-scoring duplicate (then the oldest) wins."""
        record, f, keys = item.record, item.f, item.keys
        candidates: dict[int, None] = {}
        for pair in record.ids.items():
            if pair in self.ids:
                candidates[self.ids[pair]] = None
        by_key: dict[int, None] = {}
        for key in keys:
            stored = self.db_keys.get(key, [])
            page = [w for w in self.page_keys.get(key, ()) if w not in stored]
            if len(stored) + len(page) > MAX_BLOCK:
                continue
            by_key.update(dict.fromkeys(stored))
            by_key.update(dict.fromkeys(page))
        for work_id in list(by_key)[: 4 * MAX_BLOCK]:
            candidates.setdefault(work_id, None)
        best: tuple[float, int, int] | None = None
        versions: list[tuple[int, str]] = []
        for work_id in candidates:
            other = self._features(work_id, item)
            if other is None:
                continue
            decision = decide(f, other)
            if decision.verdict == Verdict.DUPLICATE:
                # new works (placeholders) come after every stored one, in creation order
                order = work_id if work_id > 0 else (1 << 62) - work_id
                if best is None or (decision.score, -order) > (best[0], -best[1]):
                    best = (decision.score, order, work_id)
            elif decision.verdict == Verdict.VERSION:
                versions.append((work_id, decision.reason))
        return (best[2] if best else None), versions

    def _features(self, work_id: int, item: _Item) -> Features | None:
        page_work = self.works.get(work_id)
        if page_work is not None:
            return page_work.feats()
        if self._skip(item, work_id):
            return None
        if work_id not in self.loaded:
            self._load([work_id])
        rec = self.loaded.get(work_id)
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
            self._load([work_id])
            rec = self.loaded[work_id]
            page_work = self.works[work_id] = _PageWork([], rec, rec)
        if work_id > 0 and not page_work.provs:
            rows = self.prov_rows.pop(work_id, None)
            if rows is None:
                rows = list(
                    self.session.execute(
                        select(
                            Provenance.id,
                            Provenance.source,
                            Provenance.source_id,
                            Provenance.record,
                        )
                        .where(Provenance.work_id == work_id)
                        .order_by(Provenance.id)
                    )
                )
            for pid, source, source_id, rec in rows:
                prov = self.provs.setdefault((source, source_id), _Prov(pid, work_id, rec))
                page_work.provs.append(prov)
        return page_work

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
        self.real = real  # placeholder → inserted id, for hits written beside the page's

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
        provenance = cast(Table, Provenance.__table__)
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
        updated = [
            {"pid": p.id, "record": p.record, "fetched_at": now}
            for p in self.provs.values()
            if p.id is not None and p.changed
        ]
        if updated:
            s.execute(
                update(provenance)
                .where(provenance.c.id == bindparam("pid"))
                .values(record=bindparam("record"), fetched_at=bindparam("fetched_at")),
                updated,
            )
        if self.new_provs:
            s.execute(
                insert(Provenance),
                [
                    {
                        "work_id": rid(p.work_id),
                        "source": key[0],
                        "source_id": key[1],
                        "fetched_at": now,
                        "run_id": self.run_id,
                        "record": p.record,
                    }
                    for key, p, _ in self.new_provs
                ],
            )
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
                [{"key": k, "work_id": rid(w)} for k, w in self.new_keys],
            )
        links: dict[tuple[int, int], str] = {}
        for (a, b), reason in self.new_links.items():
            low, high = sorted((rid(a), rid(b)))
            links.setdefault((low, high), reason)
        if links:
            s.execute(
                insert(WorkLink).on_conflict_do_nothing(
                    index_elements=["work_id", "other_work_id"]
                ),
                [
                    {"work_id": a, "other_work_id": b, "reason": r, "created_at": now}
                    for (a, b), r in links.items()
                ],
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


def work_of(writer: PageWriter, record: Record) -> tuple[int, bool]:
    """After :meth:`PageWriter.write`: the work ``record`` is stored as, and whether the
    page created it."""
    work_id = writer.provs[(record.source, provenance_key(record))].work_id
    return (writer.real[work_id], True) if work_id < 0 else (work_id, False)
