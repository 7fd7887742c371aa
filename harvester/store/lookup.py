"""What one page meets in the store, read with one query per table before the page is matched.

Provenance rows of its records, works holding its identifiers, works under its blocking keys
(counted up to ``MAX_BLOCK + 1`` per key, enough to tell a common key, which is skipped; of a
title or author key only the rows within :data:`~harvester.dedup.evidence.MAX_VERSION_YEARS`
of the page's years are read, see :class:`KeyRange`), the year and title of every candidate
(so that :func:`harvester.dedup.rules.beyond_year_window` drops most title-key candidates
without decoding them), the records of the rest and their provenance. Used by
:class:`harvester.store.writer.PageWriter`, which matches and writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BigInteger, any_, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from harvester.dedup.cluster import MAX_BLOCK
from harvester.dedup.evidence import MAX_VERSION_YEARS
from harvester.dedup.features import Features
from harvester.dedup.rules import beyond_year_window
from harvester.records import Record
from harvester.store.models import Identifier, Provenance, Work, WorkMatchKey
from harvester.store.provenance import Prov, provenance_rows

# Rows per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 1000
# A provenance row as the lookups read it: id, source, source_id, work_id, then (added by
# provenance_rows) whether it is held as its work's record, and the record it stands for.
_PROVENANCE_ROW = (Provenance.id, Provenance.source, Provenance.source_id, Provenance.work_id)

# id, source, source_id, record, elided
ProvenanceRow = tuple[int, str, str, dict[str, Any], bool]
_SQLITE_KEY_ROWS = "SELECT work_id, year FROM work_match_keys WHERE key = ? LIMIT ?"
# How many rows a key has (counted up to the limit) and, as a JSON array of [work_id, year], those
# of them within a year range: one pass over the key's index entries, and the rows beyond the
# range are never handed to Python (at 1M works ~90 % of a page's title-key rows, see KeyRange)
_SQLITE_KEY_ROWS_IN = (
    "SELECT count(*), json_group_array(json_array(work_id, year)) "
    "FILTER (WHERE year IS NULL OR year BETWEEN ?2 AND ?3) "
    "FROM (SELECT work_id, year FROM work_match_keys WHERE key = ?1 LIMIT ?4)"
)
_POSTGRES_KEY_ROWS = (
    "SELECT k.key, c.n, m.work_id, m.year "
    "FROM unnest(CAST(:keys AS varchar[]), CAST(:lo AS integer[]), CAST(:hi AS integer[])) "
    "AS k(key, lo, hi) "
    "CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM work_match_keys w "
    "WHERE w.key = k.key LIMIT :n) AS x) AS c "
    "LEFT JOIN LATERAL (SELECT w.work_id, w.year FROM work_match_keys w WHERE w.key = k.key "
    "AND (k.lo IS NULL OR w.year IS NULL OR w.year BETWEEN k.lo AND k.hi) LIMIT :n) AS m "
    "ON true"
)
# (lowest, highest) year of the rows a key's lookup reads; None: every row
KeyRange = tuple[int, int] | None


def provenance_key(record: Record) -> str:
    """The source's own id, or a content hash for a record that has none.

    The hash leaves out ``updates``: a notice the source adds to a record later (or the field's
    arrival in the schema) must not turn the same record into a second provenance."""
    if record.source_id:
        return record.source_id
    content = record.to_json()
    content.pop("updates", None)
    digest = hashlib.sha1(
        json.dumps(content, sort_keys=True).encode("utf-8"), usedforsecurity=False
    )
    return "sha1:" + digest.hexdigest()


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
class Item:
    """A record of the page, its provenance key, its features and blocking keys, and the
    stored works it meets through an identifier (None: not known, see ``PageLookup``)."""

    record: Record
    key: tuple[str, str]
    f: Features
    keys: list[str]
    linked: set[int] | None = None


def id_keys(f: Features) -> list[str]:
    """The record's identifier keys: its identifiers, and a preprint's ``published_doi``."""
    keys = [f"id:{scheme}:{value}"[:255] for scheme, value in f.ids]
    if f.published_doi:
        keys.append(f"id:doi:{f.published_doi}"[:255])
    return keys


def key_ranges(items: Sequence[Item]) -> dict[str, KeyRange]:
    """The keys ``items`` meet the store under, each with the years of the rows to read.

    A stored work more than MAX_VERSION_YEARS from a record's year is beyond the rules' year
    window whatever its title (:func:`~harvester.dedup.rules.beyond_year_window`), so a title
    or author key is read within MAX_VERSION_YEARS of the years of the page's records under
    it (rows without a year too). Read whole: the identifier keys (a shared identifier leads
    past the year window, see ``PageLookup._linked``) and every key of a record without a
    year."""
    ranges: dict[str, KeyRange] = {}
    for item in items:
        year = item.f.year
        whole = set(id_keys(item.f))
        for key in item.keys:
            if key in ranges and ranges[key] is None:
                continue
            if year is None or key in whole:
                ranges[key] = None
                continue
            low, high = year - MAX_VERSION_YEARS, year + MAX_VERSION_YEARS
            known = ranges.get(key)
            if known is not None:
                low, high = min(known[0], low), max(known[1], high)
            ranges[key] = (low, high)
    return ranges


class PageLookup:
    """The store as one page meets it: filled by :meth:`prefetch`, then read (and, for
    ``provs`` and ``ids``, added to by the page) while its records are matched."""

    def __init__(self, session: Session, postgres: bool) -> None:
        self.session = session
        self.postgres = postgres
        self.provs: dict[tuple[str, str], Prov] = {}
        self.ids: dict[tuple[str, str], int] = {}  # first claimant, as the unique index keeps
        # the stored works under a key: every one (at most MAX_BLOCK + 1), or of a key in
        # `ranges`, those whose year is in its range; `counts` how many the key has (at most
        # MAX_BLOCK + 1 counted), which tells a common key
        self.db_keys: dict[str, list[int]] = {}
        self.counts: dict[str, int] = {}
        self.ranges: dict[str, tuple[int, int]] = {}
        self._filed: dict[tuple[str, int], bool] = {}
        self.years: dict[int, tuple[int | None, str | None]] = {}  # year and title
        # works per query: PostgreSQL takes them as one array parameter
        self._chunk = 20_000 if postgres else _CHUNK
        self.loaded: dict[int, dict[str, Any]] = {}
        self.prov_rows: dict[int, list[ProvenanceRow]] = {}

    def prefetch(self, items: Sequence[Item]) -> None:
        s = self.session
        pairs = list(dict.fromkeys(item.key for item in items))
        for source, source_ids in _grouped(pairs):
            for chunk in _chunks(source_ids, 500):
                for pid, src, source_id, work_id, elided, rec in s.execute(
                    provenance_rows(*_PROVENANCE_ROW).where(
                        Provenance.source == source, Provenance.source_id.in_(chunk)
                    )
                ):
                    self.provs[(src, source_id)] = Prov(pid, work_id, rec, elided=elided)
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
        self._read_keys(key_ranges(unmatched))
        for item in unmatched:
            item.linked = self._linked(item)
        # a record whose identifier links are not known decodes every work under its keys,
        # beyond the year window too: those keys are read whole
        self.read_whole([k for item in unmatched if item.linked is None for k in item.keys])
        # the year and title of every stored work a record meets that its keys' year leaves
        # within reach (beyond the year window by year alone is beyond it whatever the title);
        # the whole record only of those they leave a chance of being the same work or a
        # version of it (see skip)
        wanted: dict[int, None] = {}
        for item in unmatched:
            wanted.update(
                (w, None) for w in self._stored_candidates(item) if not self.skip(item, w)
            )
        for chunk in _chunks(list(wanted), self._chunk):
            for work_id, year, title in s.execute(
                select(Work.id, Work.year, Work.title).where(self._among(Work.id, chunk))
            ):
                self.years[work_id] = (year, title)
        needed_set: dict[int, None] = {}
        for item in unmatched:
            for work_id in self._stored_candidates(item):
                if not self.skip(item, work_id):
                    needed_set[work_id] = None
        needed = list(needed_set)
        self.load(needed)
        # the provenance of the works a record may join, for re-merging them
        for chunk in _chunks(needed, self._chunk):
            for pid, source, source_id, work_id, elided, rec in s.execute(
                provenance_rows(*_PROVENANCE_ROW)
                .where(self._among(Provenance.work_id, chunk))
                .order_by(Provenance.id)
            ):
                self.prov_rows.setdefault(work_id, []).append((pid, source, source_id, rec, elided))

    def _linked(self, item: Item) -> set[int] | None:
        """The stored works that share an identifier with the record, or whose DOI is its
        ``published_doi`` or whose ``published_doi`` is its DOI: the works under its ``id:``
        keys (a work is filed under the id keys of each of its records, and its merged record's
        identifiers come from those records) and those holding its identifiers. None when that
        is not known: an id key of more than MAX_BLOCK works (only MAX_BLOCK + 1 were read), or
        blocking keys that no longer file identifiers."""
        out = {self.ids[p] for p in item.record.ids.items() if p in self.ids}
        for key in id_keys(item.f):
            if key not in item.keys or self.count(key) > MAX_BLOCK:
                return None
            out.update(self.db_keys.get(key, ()))
        return out

    def count(self, key: str) -> int:
        """Stored works under ``key``, counted up to MAX_BLOCK + 1."""
        return self.counts.get(key, 0)

    def read_whole(self, keys: Sequence[str]) -> None:
        """Read every row of those of ``keys`` read within a year range only."""
        self._read_keys({k: None for k in keys if k in self.ranges})

    def filed(self, key: str, work_id: int) -> bool:
        """Whether the stored work ``work_id`` is under ``key`` in the store: asked of a key
        read within a year range, where a work beyond it is counted but not in ``db_keys``."""
        if work_id < 0:
            return False
        found = self._filed.get((key, work_id))
        if found is None:
            found = self._filed[(key, work_id)] = (
                self.session.execute(
                    select(literal(1)).where(
                        WorkMatchKey.key == key, WorkMatchKey.work_id == work_id
                    )
                ).first()
                is not None
            )
        return found

    def _read_keys(self, ranges: dict[str, KeyRange]) -> None:
        """Read the rows of ``ranges``' keys (replacing any read before) and their counts."""
        if not ranges:
            return
        years = self.years
        for key, count, rows in self._key_rows(ranges):
            within = ranges[key]
            if within is None:
                self.ranges.pop(key, None)
            else:
                self.ranges[key] = within
            self.counts[key] = count
            self.db_keys[key] = [work_id for work_id, _ in rows]
            for work_id, year in rows:
                if year is not None:
                    years[work_id] = (year, None)

    def skip(self, item: Item, work_id: int) -> bool:
        """True when the stored work ``work_id`` need not be decoded for the record: its year
        (and title) are beyond the rules' year window
        (:func:`~harvester.dedup.rules.beyond_year_window`: one year, three for a paper's venue
        versions under the same title) and it is not among the works only a shared identifier
        or a preprint's ``published_doi`` lead past that window to (``item.linked``). Saves
        decoding the record of most candidates met through a title key (another title with the
        same start, or the same title in another year)."""
        if item.linked is None or work_id in item.linked:
            return False
        year, title = self.years.get(work_id, (None, None))
        return beyond_year_window(item.f, year, title)

    def _among(self, column: Any, values: Sequence[int]) -> Any:
        """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter."""
        if self.postgres:
            return column == any_(literal(list(values), postgresql.ARRAY(BigInteger)))
        return column.in_(values)

    def _key_rows(
        self, ranges: dict[str, KeyRange]
    ) -> Iterator[tuple[str, int, list[tuple[int, int | None]]]]:
        """(key, count, [(work id, the work's year), …]) of each of ``ranges``' keys: the works
        in the key's year range (every one for None), at most MAX_BLOCK + 1, and the key's
        count of rows up to MAX_BLOCK + 1 (a key with more is common and skipped: its other
        rows need not be read)."""
        conn = self.session.connection()
        limit = MAX_BLOCK + 1
        if self.postgres:
            keys = list(ranges)
            for chunk in _chunks(keys, self._chunk):
                bounds = [ranges[k] or (None, None) for k in chunk]
                found: dict[str, tuple[int, list[tuple[int, int | None]]]] = {}
                for key, count, work_id, year in conn.execute(
                    text(_POSTGRES_KEY_ROWS).bindparams(
                        keys=list(chunk),
                        lo=[b[0] for b in bounds],
                        hi=[b[1] for b in bounds],
                        n=limit,
                    )
                ):
                    rows = found.setdefault(key, (count, []))[1]
                    if work_id is not None:
                        rows.append((work_id, year))
                for key, (count, rows) in found.items():
                    yield key, count, rows
            return
        # SQLite: statements per key, each stopping at its LIMIT; row_number() over key IN (…)
        # reads every row of a common key first (a page against 1M works: 1.2-2.6 s, against
        # 0.2-0.6 s so). On the driver's cursor: SQLite statements cost no round trip, and
        # SQLAlchemy's ~0.1 ms each would (0.3 s a page)
        cursor = conn.connection.cursor()
        try:
            for key, within in ranges.items():
                if within is None:
                    cursor.execute(_SQLITE_KEY_ROWS, (key, limit))
                    whole = cast(list[tuple[int, int | None]], cursor.fetchall())
                    yield key, len(whole), whole
                    continue
                cursor.execute(_SQLITE_KEY_ROWS_IN, (key, within[0], within[1], limit))
                ((count, in_range),) = cursor.fetchall()  # an aggregate: one row
                yield key, count, json.loads(in_range) if count else []
        finally:
            cursor.close()

    def _stored_candidates(self, item: Item) -> list[int]:
        """Stored works holding the record's identifiers or under its keys (not common ones)."""
        out: dict[int, None] = dict.fromkeys(
            self.ids[p] for p in item.record.ids.items() if p in self.ids
        )
        for key in item.keys:
            if self.count(key) <= MAX_BLOCK:
                out.update(dict.fromkeys(self.db_keys.get(key, ())))
        return list(out)

    def load(self, work_ids: Sequence[int]) -> None:
        """Read the records of ``work_ids`` not read yet into ``loaded``."""
        for chunk in _chunks([w for w in work_ids if w not in self.loaded], self._chunk):
            for work_id, rec in self.session.execute(
                select(Work.id, Work.record).where(self._among(Work.id, chunk))
            ):
                self.loaded[work_id] = rec

    def provenance(self, work_id: int) -> list[ProvenanceRow]:
        """The provenance of a stored work in storage order (prefetched, or read now)."""
        rows = self.prov_rows.pop(work_id, None)
        if rows is not None:
            return rows
        return [
            (pid, source, source_id, rec, elided)
            for pid, source, source_id, _, elided, rec in self.session.execute(
                provenance_rows(*_PROVENANCE_ROW)
                .where(Provenance.work_id == work_id)
                .order_by(Provenance.id)
            )
        ]
