"""Incremental matching: one page of new records stored against a large store of works.

Usage::

    python benchmarks/dedup_incremental.py [--works 1000000] [--sqlite-works 100000]
        [--page 1000] [--postgres URL] [--keep SCHEMA | --reuse SCHEMA] [--no-sqlite]
        [--no-postgres] [--seed 13] [--repeat 1]

The store is built from the REAL records of ``../shared/dedup/*/records.csv`` (one record per
labelled cluster, read with :func:`harvester.dedup.files.record_from_fields`, records without a year
left out) and ``../shared/fixtures/pubmed/efetch_*.xml`` (the PubMed parser). Copy k of a base
record is made a different work: its title gets a copy word appended (``k<letters>``), its year
moves by 40·k, its volume is suffixed with k and its identifiers are made distinct (DOI suffix
``.c<k>``, PMID + k·10⁸). The store is bulk-loaded (PostgreSQL ``COPY``, SQLite
``executemany``) with exactly the rows :meth:`Repository.store_page` would write for a
one-record work (works.record, identifiers, provenance, work_match_keys from
:func:`blocking_keys`), not through ``store_page``; then ``ANALYZE`` (PostgreSQL: ``VACUUM
(ANALYZE)``, as autovacuum would).

Then one page of new records goes through :meth:`Repository.store_page`, timed:

* ~30 % true duplicates of stored works without any identifier (another source; title
  lower-cased / with a trailing period / a colon turned into a dash; given names as initials;
  no abstract),
* ~10 % sharing an identifier (DOI or PMID) with a stored work, title varied the same way,
* the rest new works (copies of base records beyond the stored ones), ~5 % of which come twice
  in the page from two sources (a within-page duplicate: must end as one new work).

The page is stored inside an outer transaction that is rolled back afterwards, so the store can
be reused (``--keep``/``--reuse``) and every run sees the same store; the timing therefore has
no final COMMIT (a few ms on PostgreSQL for a page's rows).
Prints a markdown table: seconds, records/s, duplicates found / planted, false merges.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import Engine

from harvester.dedup.features import blocking_keys
from harvester.dedup.files import read_csv
from harvester.records import Author, Identifiers, Record
from harvester.sources.base import Window
from harvester.sources.pubmed.cutter import parse_efetch
from harvester.store.database import create, current_revision, open_engine
from harvester.store.lookup import provenance_key
from harvester.store.repository import Repository

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TARGET_SECONDS = 5.0


# --- the base records ----------------------------------------------------------------------------


def base_records(shared: Path, seed: int) -> list[Record]:
    """One real record per labelled cluster of every dataset, plus the PubMed fixtures."""
    out: list[Record] = []
    for labels_path in sorted((shared / "dedup").glob("*/labels.csv")):
        folder = labels_path.parent
        _, entries = read_csv((folder / "records.csv").read_text(encoding="utf-8"), folder.name)
        with labels_path.open(encoding="utf-8", newline="") as f:
            cluster_of = {row["record_id"]: row["cluster_id"] for row in csv.DictReader(f)}
        seen: set[str] = set()
        for e in entries:
            cluster_id = cluster_of.get(e.record_id, e.record_id)
            if cluster_id in seen or e.record.year is None or not e.record.title:
                continue
            seen.add(cluster_id)
            out.append(e.record.with_changes(source=folder.name, source_id=e.record_id))
    for path in sorted((shared / "fixtures" / "pubmed").glob("efetch_pubmed_*.xml")):
        out.extend(r for r in parse_efetch(path.read_bytes()).records if r.year and r.title)
    random.Random(seed).shuffle(out)
    return out


def _tag(k: int) -> str:
    letters = ""
    while True:
        k, r = divmod(k, 26)
        letters += chr(ord("a") + r)
        if k == 0:
            return "k" + letters


def copy_of(record: Record, k: int) -> Record:
    """Copy k of a base record, a different work from every other copy (see the module doc)."""
    if k == 0:
        return record
    ids = record.ids
    changes: dict[str, Any] = {}
    if ids.doi:
        changes["doi"] = f"{ids.doi}.c{k}"
    if ids.pmid and ids.pmid.isdigit():
        changes["pmid"] = str(int(ids.pmid) + k * 100_000_000)
    if ids.pmcid:
        changes["pmcid"] = f"{ids.pmcid}{k}"
    volume = re.search(r"\d+", record.volume or "")
    return record.with_changes(
        source_id=f"{record.source_id}#{k}",
        ids=Identifiers(**{**ids.to_json(), **changes}) if changes else ids,
        title=f"{record.title} {_tag(k)}",
        year=record.year + 40 * k if record.year else None,
        volume=f"{volume.group(0) if volume else ''}{k}",
    )


def variant(
    record: Record,
    rng: random.Random,
    *,
    source: str,
    source_id: str,
    keep_ids: Identifiers | None = None,
) -> Record:
    """The same study as another database would describe it (see the module doc)."""
    title = record.title or ""
    how = rng.randrange(3)
    if how == 0:
        title = title.lower()
    elif how == 1:
        title = title.rstrip(".") + "."
    else:
        title = title.replace(": ", " - ") if ": " in title else title.upper()
    authors = tuple(
        Author(
            family=a.family, given=(a.given[0] + ".") if a.given else None, collective=a.collective
        )
        for a in record.authors
    )
    return Record(
        source=source,
        source_id=source_id,
        ids=keep_ids or Identifiers(),
        title=title,
        authors=authors,
        venue=record.venue,
        year=record.year,
        volume=record.volume,
        issue=record.issue,
        pages=record.pages,
        type=record.type,
    )


# --- the page ------------------------------------------------------------------------------------


@dataclass
class Plan:
    records: list[Record] = field(default_factory=list)
    # (source, provenance key) -> the stored work id it must join, or None: a new work
    expected: dict[tuple[str, str], int | None] = field(default_factory=dict)
    pairs: list[tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=list)
    planted_fuzzy: int = 0
    planted_id: int = 0


def stored(base: Sequence[Record], i: int) -> Record:
    """Stored work i (id i + 1) is copy i // len(base) of base record i % len(base)."""
    return copy_of(base[i % len(base)], i // len(base))


def plan_page(base: Sequence[Record], n_works: int, size: int, seed: int) -> Plan:
    rng = random.Random(seed)
    plan = Plan()
    n_fuzzy, n_id = round(size * 0.30), round(size * 0.10)
    n_new = size - n_fuzzy - n_id
    n_pairs = round(n_new * 0.05)
    targets = rng.sample(range(n_works), n_fuzzy)
    for j, i in enumerate(targets):
        r = variant(stored(base, i), rng, source="crossref", source_id=f"bench-dup-{j}")
        plan.records.append(r)
        plan.expected[(r.source, provenance_key(r))] = i + 1
    plan.planted_fuzzy = n_fuzzy
    with_id = [
        i
        for i in rng.sample(range(n_works), min(n_works, 20 * n_id))
        if stored(base, i).ids.doi or stored(base, i).ids.pmid
    ]
    for j, i in enumerate(with_id[:n_id]):
        original = stored(base, i)
        shared_id = (
            Identifiers(doi=original.ids.doi)
            if original.ids.doi
            else Identifiers(pmid=original.ids.pmid)
        )
        r = variant(
            original, rng, source="europepmc", source_id=f"bench-id-{j}", keep_ids=shared_id
        )
        plan.records.append(r)
        plan.expected[(r.source, provenance_key(r))] = i + 1
    plan.planted_id = min(n_id, len(with_id))
    first_new_copy = n_works // len(base) + 2
    new_ids = rng.sample(range(len(base) * 50), n_new - n_pairs)
    for j, flat in enumerate(new_ids):
        r = copy_of(base[flat % len(base)], first_new_copy + flat // len(base))
        r = r.with_changes(source="openalex", source_id=f"bench-new-{j}")
        plan.records.append(r)
        plan.expected[(r.source, provenance_key(r))] = None
        if j < n_pairs:
            twin = variant(r, rng, source="semanticscholar", source_id=f"bench-twin-{j}")
            plan.records.append(twin)
            plan.expected[(twin.source, provenance_key(twin))] = None
            plan.pairs.append(((r.source, provenance_key(r)), (twin.source, provenance_key(twin))))
    rng.shuffle(plan.records)
    return plan


# --- bulk load -----------------------------------------------------------------------------------


@dataclass
class Rows:
    works: list[tuple[int, str, int | None, str]] = field(default_factory=list)
    identifiers: list[tuple[int, int, str, str]] = field(default_factory=list)
    provenance: list[tuple[int, int, str, str, str | None]] = field(default_factory=list)
    keys: list[tuple[str, int, int | None]] = field(default_factory=list)


def rows_for(
    base: Sequence[Record], start: int, stop: int, next_ident: int, *, once: bool = True
) -> Rows:
    """The rows store_page writes for works start+1 … stop (one record each); ``once``: the
    provenance row's record is NULL, being its work's (schema 0011 on)."""
    out = Rows()
    for i in range(start, stop):
        work_id = i + 1
        record = stored(base, i)
        payload = json.dumps(record.to_json())
        out.works.append((work_id, record.title or "", record.year, payload))
        out.provenance.append(
            (work_id, work_id, record.source, provenance_key(record), None if once else payload)
        )
        for scheme, value in record.ids.items():
            out.identifiers.append((next_ident, work_id, scheme, value))
            next_ident += 1
        for key in dict.fromkeys(k[:255] for k in blocking_keys(record)):
            out.keys.append((key, work_id, record.year))
    return out


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy(cursor: Any, table: str, columns: str, rows: Sequence[tuple[object, ...]]) -> None:
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join(_copy_text(v) for v in row))
        buf.write("\n")
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(buf.getvalue())


def load(engine: Engine, base: Sequence[Record], n: int, chunk: int = 20_000) -> float:
    """Bulk-load n works; returns seconds."""
    start = time.perf_counter()
    pg = engine.dialect.name == "postgresql"
    revision = current_revision(engine) or ""
    once = revision >= "0011"
    # the keys' year column (schema 0012 on), or only (key, work_id)
    key_columns = "key, work_id, year" if revision >= "0012" else "key, work_id"
    width = len(key_columns.split(", "))
    stamp = NOW.isoformat() if pg else NOW.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if pg:
            cur.execute("SET synchronous_commit = off")
        next_ident = 1
        for lo in range(0, n, chunk):
            rows = rows_for(base, lo, min(n, lo + chunk), next_ident, once=once)
            next_ident += len(rows.identifiers)
            works = [(w, t, y, p, stamp, stamp) for w, t, y, p in rows.works]
            prov = [(p, w, s, k, stamp, r) for p, w, s, k, r in rows.provenance]
            if pg:
                _copy(cur, "works", "id, title, year, record, created_at, updated_at", works)
                _copy(cur, "provenance", "id, work_id, source, source_id, fetched_at, record", prov)
                _copy(cur, "identifiers", "id, work_id, scheme, value", rows.identifiers)
                _copy(cur, "work_match_keys", key_columns, [k[:width] for k in rows.keys])
            else:
                cur.executemany(
                    "INSERT INTO works (id, title, year, record, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    works,
                )
                cur.executemany(
                    "INSERT INTO provenance (id, work_id, source, source_id, "
                    "fetched_at, record) VALUES (?, ?, ?, ?, ?, ?)",
                    prov,
                )
                cur.executemany(
                    "INSERT INTO identifiers (id, work_id, scheme, value) VALUES (?, ?, ?, ?)",
                    rows.identifiers,
                )
                cur.executemany(
                    f"INSERT INTO work_match_keys ({key_columns}) "
                    f"VALUES ({', '.join('?' * width)})",
                    [k[:width] for k in rows.keys],
                )
            raw.commit()
            done = min(n, lo + chunk)
            if done % 100_000 == 0 or done == n:
                print(
                    f"  loaded {done:,} works ({time.perf_counter() - start:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        if pg:
            for table in ("works", "provenance", "identifiers"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            raw.commit()
            # what autovacuum (on by default; after inserts too since PostgreSQL 13) does to a
            # table this size after the load: the visibility map the key lookup's index-only
            # scans need (without it every key row is a heap fetch: 4.3 s a page against 0.18 s
            # at 1M works). The test server runs with autovacuum off, so the load does it.
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            cur.execute("VACUUM (ANALYZE)")
            raw.driver_connection.autocommit = False  # type: ignore[union-attr]
        else:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


# --- the measured step ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    backend: str
    works: int
    load_seconds: float | None
    seconds: float
    records: int
    planted: int
    found: int
    false_merges: int
    pairs: int
    pairs_joined: int
    reported_duplicates: int


def measure(
    engine: Engine, plan: Plan, n_works: int, backend: str, load_seconds: float | None
) -> Result:
    """Store the page through Repository.store_page inside a transaction rolled back after."""
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            repo = Repository(cast(Engine, conn), clock=lambda: NOW)
            run_id = repo.begin_run("bench", "mixed", Window(NOW.replace(year=2025), NOW))
            start = time.perf_counter()
            outcome = repo.store_page(run_id, "bench", plan.records)
            seconds = time.perf_counter() - start
            rows = conn.execute(
                sa.text("SELECT source, source_id, work_id FROM provenance WHERE run_id = :r"),
                {"r": run_id},
            ).all()
        finally:
            outer.rollback()
    work_of = {(s, k): w for s, k, w in rows}
    found = false = 0
    for key, target in plan.expected.items():
        got = work_of[key]
        if target is not None:
            found += got == target
            false += got != target and got <= n_works
        else:
            false += got <= n_works
    joined = sum(work_of[a] == work_of[b] for a, b in plan.pairs)
    return Result(
        backend,
        n_works,
        load_seconds,
        seconds,
        len(plan.records),
        plan.planted_fuzzy + plan.planted_id,
        found,
        false,
        len(plan.pairs),
        joined,
        outcome.duplicates,
    )


def table(results: Sequence[Result], how: str) -> str:
    lines = [
        "| backend | stored works | load s | page records | store_page s | records/s "
        "| duplicates found / planted | false merges | within-page pairs joined | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        target = ""
        if r.backend == "postgresql" and r.works >= 1_000_000:
            ok = r.seconds <= TARGET_SECONDS and r.false_merges == 0
            target = f"{'met' if ok else 'NOT met'} (≤ {TARGET_SECONDS:.0f} s)"
        load = f"{r.load_seconds:.0f}" if r.load_seconds is not None else "reused"
        lines.append(
            f"| {r.backend} | {r.works:,} | {load} | {r.records:,} | {r.seconds:.2f} "
            f"| {r.records / r.seconds:,.0f} | {r.found} / {r.planted} | {r.false_merges} "
            f"| {r.pairs_joined} / {r.pairs} | {target} |"
        )
    return "\n".join(lines) + "\n\n" + how


def _schema_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def run_postgres(args: argparse.Namespace, base: Sequence[Record], plan: Plan) -> list[Result]:
    admin = create(args.postgres)
    schema = args.reuse or args.keep or f"bench_{uuid.uuid4().hex[:10]}"
    try:
        load_seconds: float | None = None
        if not args.reuse:
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine = open_engine(_schema_url(args.postgres, schema))
        try:
            if not args.reuse:
                load_seconds = load(engine, base, args.works)
            else:
                with engine.connect() as conn:
                    have = conn.execute(sa.text("SELECT count(*) FROM works")).scalar_one()
                if have != args.works:
                    raise SystemExit(f"schema {schema} holds {have} works, not {args.works}")
            return [
                measure(engine, plan, args.works, "postgresql", load_seconds if i == 0 else None)
                for i in range(args.repeat)
            ]
        finally:
            engine.dispose()
    finally:
        if not (args.keep or args.reuse):
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_sqlite(args: argparse.Namespace, base: Sequence[Record], plan: Plan) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{os.path.join(tmp, 'bench.db')}")
        try:
            load_seconds = load(engine, base, args.sqlite_works)
            return [
                measure(engine, plan, args.sqlite_works, "sqlite", load_seconds if i == 0 else None)
                for i in range(args.repeat)
            ]
        finally:
            engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--sqlite-works", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument(
        "--postgres", default=os.environ.get("HARVESTER_BENCH_POSTGRES_URL", DEFAULT_PG)
    )
    parser.add_argument("--keep", metavar="SCHEMA", help="load into SCHEMA and keep it")
    parser.add_argument("--reuse", metavar="SCHEMA", help="measure on a kept SCHEMA, no load")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--shared", type=Path, default=SHARED)
    args = parser.parse_args(argv)
    base = base_records(args.shared, args.seed)
    print(f"{len(base):,} base records", file=sys.stderr)
    results: list[Result] = []
    if not args.no_postgres:
        results += run_postgres(args, base, plan_page(base, args.works, args.page, args.seed))
    if not args.no_sqlite:
        results += run_sqlite(args, base, plan_page(base, args.sqlite_works, args.page, args.seed))
    how = (
        f"Store built from {len(base):,} real records (one per labelled cluster of "
        f"../shared/dedup/*/records.csv with a year, and the PubMed fixtures); copy k of a record: "
        f"title + copy word k<letters>, year + 40·k, volume suffixed k, DOI + '.c<k>', "
        f"PMID + k·10⁸. Bulk-loaded with COPY (PostgreSQL) / executemany (SQLite) as the rows "
        f"store_page writes (works, provenance, identifiers, work_match_keys), not through "
        f"store_page; ANALYZE after. The page: 30 % true duplicates without identifiers, 10 % "
        f"sharing a DOI/PMID, the rest new (5 % of them twice, from two sources), stored with "
        f"one Repository.store_page call in a transaction rolled back afterwards.\n"
    )
    print(table(results, how))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
