"""Scale: a daily tick for many topics, and ingest against a large store.

Usage::

    python benchmarks/scale.py [--topics 10,100,1000] [--speedup 60] [--requests 2]
        [--ingest-works 1000000] [--ingest-pages 4] [--ingest-page 500] [--ingest-repeat 5]
        [--database-url URL] [--ingest-keep DIR] [--skip-tick] [--skip-ingest]

**Daily tick.** N topics share one daily cron fire time (``M H * * *``, the next whole
minute at least 20 s away, so the run waits for it as the daemon would wait for 06:00) on
every source that needs no key, each a paced fake (tests/paced_source.py: the real recorded
two-record PubMed page, ``--requests`` rate-limited requests per harvest) at the source's
published (default) rate. Time is compressed by ``--speedup``: rates × S, the daemon's
defaults (heartbeat 30 s, misfire grace 3600 s) ÷ S; the store's own work is not compressed,
which only makes the tick longer than it would be. The daemon is the real one (``Daemon`` on
a ``BackgroundScheduler``, a SQLite file), each topic seeded with a completed run so that
the tick is the schedule's, not a catch-up. Prints per N: windows due (N × sources), windows
harvested and skipped (no run started after the fire time once the daemon has been idle for
a while), the drain time, and the heartbeat's worst lateness (the longest gap between beats
less the interval) in real seconds and × S. Pace waits never delay the heartbeat now; what
does is the store (SQLite's one writer, busy with the workers' pages) and the GIL, neither
compressed: × S overstates that lateness at real speed, where the same writes are S times
sparser and the interval is 30 s.

**Requests per source** (benchmarks/scale_shared.py): N generated topics (real title
vocabulary) on every source of the emulator, which serves a daily delta synthesized from
the real fixtures' records; per source the requests of one daily tick, the wall time they
take at the published rate, records fetched and topic matches, against the per-topic
harvests of before (measured at 10 topics).

**Ingest.** Per backend (SQLite; PostgreSQL too with ``--database-url``, a schema per store),
an empty store and one of ``--ingest-works`` works, bulk-loaded as benchmarks/dedup_incremental.py
loads them (copies of the real records of ../shared/dedup and the PubMed fixtures, each a
one-record work with the rows store_page writes: works, provenance, identifiers,
work_match_keys; COPY on PostgreSQL, then VACUUM (ANALYZE) as autovacuum would; SQLite
ANALYZE), not through store_page. Then
``--ingest-pages`` pages of ``--ingest-page`` new records (copies of the same real records
beyond the stored ones: they meet the store's works through their blocking keys) through
the per-topic page writer (``Repository.store_page``) and through the shared-window write
(``SharedStore.store_page``, five topics, each record matched by none to three), each in a
transaction rolled back afterwards (so no final COMMIT is timed, and both meet the same
store): records/s of the best of ``--ingest-repeat`` rounds, the two stores taking turns round
by round, and the rate against the large store as a share of the empty one's.
``--ingest-keep DIR`` keeps the filled stores (SQLite files in DIR, PostgreSQL schemas
``ingest_N``) for the next run, which migrates one found at an older schema first and prints
the migration's time and the store's bytes before and after (compacted with VACUUM).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


# --- the daily tick ------------------------------------------------------------------------------


def tick(
    topics: int,
    speedup: float,
    requests: int,
    *,
    database_url: str | None = None,
    trace: Any = None,
) -> dict[str, float | int | str]:
    from apscheduler.schedulers.background import BackgroundScheduler

    from harvester.app import build_app
    from harvester.config import parse_settings
    from harvester.harvesting.scheduler import Daemon
    from harvester.sources import SOURCES, missing_key
    from harvester.sources.base import Window
    from harvester.store.batch_runs import RunEnd
    from harvester.store.sharing import SharedStore
    from harvester.store.values import RunCounts
    from tests.paced_source import PacedSource
    from tests.recorded_source import TWO_RECORDS_QUERY

    # building the settings and seeding the runs of 10,000 topics takes about a minute
    start = datetime.now(UTC) + timedelta(seconds=20 + topics * 0.008)
    fire = (start + timedelta(minutes=1)).replace(second=0, microsecond=0)
    probe = parse_settings({"topics": [{"name": "p", "query": "x"}]}, path="p.toml")
    sources = [n for n in SOURCES if missing_key(n, probe.source(n)) is None]
    with tempfile.TemporaryDirectory() as tmp, scratch_schema(database_url) as url:
        settings = parse_settings(
            {
                "database": {"url": url or f"sqlite:///{Path(tmp) / 'tick.db'}"},
                "topics": [
                    {
                        "name": f"t{n:05d}",
                        "query": TWO_RECORDS_QUERY,
                        "sources": sources,
                        "schedule": f"{fire.minute} {fire.hour} * * *",
                        "timezone": "UTC",
                    }
                    for n in range(topics)
                ],
                "daemon": {"jitter_seconds": 0},
            },
            path="tick.toml",
        )
        app = build_app(settings)
        for name in sources:
            spec = SOURCES[name]
            rate = spec.rate(settings.source(name)) * speedup
            paced = PacedSource(app.limiter, host=spec.rate_key, requests_per_second=rate)
            paced.name = name
            pages = paced.fetch

            def fetch(term, window, *, resume=None, _pages=pages, _paced=paced):  # type: ignore[no-untyped-def]
                for _ in range(requests - 1):
                    _paced.limiter.acquire(_paced.host)
                yield from _pages(term, window, resume=resume)

            paced.fetch = fetch  # type: ignore[method-assign]
            app._sources[name] = paced
        now = datetime.now(UTC)
        store = SharedStore(app.repo)
        names = [t.name for t in settings.topics]
        for name in sources:  # a completed run of every topic × source (in bulk)
            runs = store.begin_runs(name, {t: Window(now - timedelta(days=1), now) for t in names})
            store.finish_runs(
                name, runs, {t: RunEnd("ok", RunCounts(), watermark=now) for t in names}
            )
        interval = 30.0 / speedup
        daemon = Daemon(
            app,
            BackgroundScheduler(),
            jitter=None,
            misfire_grace=max(1, round(3600 / speedup)),
            heartbeat_seconds=interval,
        )
        beats: list[float] = []
        original = daemon.beat

        def beat(**kwargs: object) -> None:
            original(**kwargs)  # type: ignore[arg-type]
            beats.append(time.monotonic())

        daemon.beat = beat  # type: ignore[method-assign]
        if trace is not None:
            trace.install(app, daemon)
        daemon.schedule()
        daemon.scheduler.start()
        due = topics * len(sources)
        try:
            while datetime.now(UTC) < fire:
                time.sleep(0.2)
            fired = time.monotonic()
            last, last_change, done = -1, time.monotonic(), 0
            idle = max(60.0, 3 * interval)
            while True:
                time.sleep(1.0)
                done, running = harvested_since(app, fire)
                if done != last:
                    last, last_change = done, time.monotonic()
                if done >= due and not running:
                    break
                if time.monotonic() - last_change > idle and not running:
                    break  # nothing more will run: the rest was skipped
            drained = (last_change if done < due else time.monotonic()) - fired
            gaps = [b - a for a, b in zip(beats, beats[1:], strict=False) if b >= fired - interval]
        finally:
            daemon.stop()
            app.close()
    late = max(gaps, default=0.0) - interval
    return {
        "topics": topics,
        "sources": len(sources),
        "due": due,
        "harvested": done,
        "skipped": due - done,
        "drain_s": round(drained, 1),
        "beat_late_s": round(max(late, 0.0), 2),
        "beat_late_compressed_s": round(max(late, 0.0) * speedup, 1),
        "interval_s": round(interval, 3),
        "fired_at": fired,
    }


@contextmanager
def scratch_schema(url: str | None) -> Iterator[str | None]:
    """A PostgreSQL URL whose tables live in a schema of their own, dropped afterwards, so
    the benchmark leaves the database as it found it (None: SQLite, a temporary file)."""
    if url is None:
        yield None
        return
    import sqlalchemy as sa

    schema = f"scale_tick_{os.getpid()}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    from benchmarks.dedup_incremental import _schema_url

    try:
        yield _schema_url(url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def harvested_since(app, fire: datetime) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(topic × source windows completed by a run started at or after ``fire``, runs running)."""
    import sqlalchemy as sa

    from harvester.store.models import HarvestRun

    with app.engine.connect() as conn:
        done = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(HarvestRun.topic, HarvestRun.source)
                .where(HarvestRun.started_at >= fire, HarvestRun.status.in_(("ok", "partial")))
                .distinct()
                .subquery()
            )
        ).scalar_one()
        running = conn.execute(
            sa.select(sa.func.count()).where(HarvestRun.status == "running")
        ).scalar_one()
    return int(done), int(running)


# --- ingest --------------------------------------------------------------------------------------


def ingest_stores(args: argparse.Namespace) -> list[str]:
    """The ingest section: per backend, an empty store and one of ``--ingest-works``, both
    open at once and measured in alternating rounds (see :func:`ingest_rates`)."""
    from benchmarks.dedup_incremental import SHARED, base_records

    base = base_records(SHARED, 13)
    lines = [
        "| backend | stored works | load s | store MB | path | pages × records | s | "
        "records/s | vs empty |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    backends = ["sqlite"] + (["postgresql"] if args.database_url else [])
    sizes = (0, args.ingest_works)
    for backend in backends:
        with contextlib.ExitStack() as stack:
            stores = [
                stack.enter_context(ingest_store(args, backend, n, base, notes)) for n in sizes
            ]
            engines = [engine for engine, _, _ in stores]
            records = args.ingest_pages * args.ingest_page
            for path, seconds in ingest_rates(engines, base, args):
                for stored, (_, load_s, size), took in zip(sizes, stores, seconds, strict=True):
                    lines.append(
                        f"| {backend} | {stored:,} | {load_s} | {size / 1e6:,.0f} | {path} | "
                        f"{args.ingest_pages} × {args.ingest_page} | {took:.2f} | "
                        f"{records / took:,.0f} | {seconds[0] / took:.0%} |"
                    )
                    print(lines[-1], file=sys.stderr, flush=True)
    return lines + [""] + notes


def store_bytes(engine) -> int:  # type: ignore[no-untyped-def]
    """The store's size: the SQLite file (WAL checkpointed), or the tables of its schema with
    their indexes and TOAST (pg_total_relation_size)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            return int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        return int(
            conn.execute(
                sa.text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            ).scalar_one()
        )


@contextlib.contextmanager
def ingest_store(args, backend, stored, base, notes):  # type: ignore[no-untyped-def]
    """A store of ``stored`` works (bulk-loaded as dedup_incremental.load does), kept and
    reused under ``--ingest-keep``; one kept at an older schema is migrated first (timed, and
    its bytes before and after, compacted, noted)."""
    import uuid

    import sqlalchemy as sa

    from benchmarks.dedup_incremental import _schema_url, load
    from harvester.store.database import create, current_revision, head_revision, upgrade

    keep = args.ingest_keep
    admin = None
    if backend == "sqlite":
        folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ingest-"))
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"ingest_{stored}.db"
        fresh = not file.exists()
        engine = create(f"sqlite:///{file}")
    else:
        # kept: a name the next run finds; else one of this run's own, dropped afterwards
        schema = f"ingest_{stored}" if keep else f"ingest_{stored}_{uuid.uuid4().hex[:8]}"
        admin = create(args.database_url)
        with admin.begin() as conn:
            fresh = not conn.execute(
                sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
            ).first()
            if fresh:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine = create(_schema_url(args.database_url, schema))
    try:
        load_s = "reused"
        if fresh:
            upgrade(engine)
            load_s = f"{load(engine, base, stored):.0f}" if stored else "0"
        elif current_revision(engine) != head_revision():
            before = store_bytes(engine)
            began = time.perf_counter()
            upgrade(engine)
            took = time.perf_counter() - began
            compacted = compact(engine)
            notes.append(
                f"{backend}, {stored:,} works: migrated to {head_revision()} in {took:.1f} s; "
                f"{before / 1e6:,.1f} MB before, {compacted / 1e6:,.1f} MB after (compacted)"
            )
        elif backend == "postgresql":
            # the rolled-back rounds of earlier runs left dead rows (the empty store had grown
            # to 128 MB and slowed by a quarter): cleared as autovacuum would
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
        yield engine, load_s, store_bytes(engine)
    finally:
        engine.dispose()
        if admin is not None:
            if not keep:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        elif not keep:
            for leftover in file.parent.glob(file.name + "*"):
                leftover.unlink()


def compact(engine) -> int:  # type: ignore[no-untyped-def]
    """VACUUM (SQLite: the whole file; PostgreSQL: VACUUM FULL of the schema's tables), then
    the store's bytes: what the same rows take written afresh."""
    import sqlalchemy as sa

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("VACUUM")
        else:
            tables = conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
            for table in list(tables):
                conn.exec_driver_sql(f'VACUUM FULL ANALYZE "{table}"')
    return store_bytes(engine)


def ingest_pages(base, works: int, pages: int, size: int) -> list:  # type: ignore[no-untyped-def]
    """``pages`` pages of new works: copies of the base records beyond every stored copy
    (another title word, year, volume and identifiers), so the pages are the same whatever
    the store holds, and meet its works through their blocking keys."""
    from benchmarks.dedup_incremental import copy_of

    first = works // len(base) + 2  # beyond the copies in the large store
    out = []
    for n in range(pages * size):
        record = copy_of(base[n % len(base)], first + n // len(base))
        out.append(record.with_changes(source="crossref", source_id=f"ingest-{n}"))
    return [out[i : i + size] for i in range(0, len(out), size)]


def ingest_rates(engines, base, args):  # type: ignore[no-untyped-def]
    """(path, [seconds per store]) of the per-topic page writer (Repository.store_page) and of
    the shared-window write (SharedStore.store_page: each record matched by one to three of
    five topics, one in four by none), each in a transaction rolled back afterwards, so every
    round meets the same store; the best of ``--ingest-repeat`` rounds per store (the first
    pays for reading the store into the caches). The stores take turns round by round, each
    round after a full garbage collection, so that a slower spell of a shared machine falls
    on both (measured apart, the empty store's own rate swung by a third between runs)."""
    import gc

    pages = ingest_pages(base, args.ingest_works, args.ingest_pages, args.ingest_page)
    for path in ("per-topic page", "shared window"):
        best = [float("inf")] * len(engines)
        for _ in range(args.ingest_repeat):
            for n, engine in enumerate(engines):
                gc.collect()
                best[n] = min(best[n], ingest_once(engine, path, pages))
        yield path, best


def ingest_once(engine, path: str, pages) -> float:  # type: ignore[no-untyped-def]
    """Seconds to store ``pages`` by ``path``, in a transaction rolled back afterwards."""
    from typing import cast

    from sqlalchemy import Engine

    from harvester.sources.base import Window
    from harvester.store.repository import Repository
    from harvester.store.sharing import SharedStore

    topics = [f"topic{i}" for i in range(5)]
    window = Window(NOW - timedelta(days=1), NOW)
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            repo = Repository(cast(Engine, conn), clock=lambda: NOW)
            shared = SharedStore(repo)
            run = repo.begin_run(topics[0], "crossref", window)
            runs = shared.begin_runs("crossref", dict.fromkeys(topics, window))
            window_id = shared.open_window("crossref", "window", window, len(topics))
            began = time.perf_counter()
            for page in pages:
                if path == "per-topic page":
                    repo.store_page(run, topics[0], page)
                else:
                    matches = [topics[: n % 4] for n in range(len(page))]
                    shared.store_page(window_id, page, matches, runs)
            return time.perf_counter() - began
        finally:
            outer.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--topics", default="10,100,1000", help="comma-separated topic counts")
    parser.add_argument("--speedup", type=float, default=60.0, help="time compression")
    parser.add_argument("--requests", type=int, default=2, help="requests per harvest")
    parser.add_argument("--ingest-works", type=int, default=1_000_000)
    parser.add_argument("--ingest-pages", type=int, default=4, help="pages stored per path")
    parser.add_argument("--ingest-page", type=int, default=500, help="records per page")
    parser.add_argument("--ingest-repeat", type=int, default=5, help="rounds, the best kept")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database: the tick runs there instead of a SQLite file (a scratch "
        "schema, dropped after), and ingest is measured there as well as on SQLite (schemas)",
    )
    parser.add_argument(
        "--ingest-keep",
        metavar="DIR",
        help="keep the filled stores (SQLite files in DIR, "
        "PostgreSQL schemas ingest_N) and reuse them on the next run, migrated if older",
    )
    parser.add_argument(
        "--shared-topics", default="10,100,1000,10000", help="topic counts, requests per source"
    )
    parser.add_argument(
        "--volume", type=float, default=0.02, help="daily delta × this (page sizes too)"
    )
    parser.add_argument("--skip-shared", action="store_true")
    parser.add_argument("--skip-tick", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    import logging

    from harvester.logs import configure_logging

    configure_logging("json", level=logging.WARNING)  # the figures, not the daemon's lines
    if not args.skip_shared:
        from benchmarks.scale_shared import per_day_note, report

        print("## Requests per daily tick and source: N topics, one fetch per source\n")
        print(f"(daily deltas synthesized from the real fixtures' records: {per_day_note()})\n")
        for line in report([int(x) for x in args.shared_topics.split(",")], args.volume):
            print(line, flush=True)
        print()
    if not args.skip_tick:
        print("## A daily tick: N topics on one cron fire time, every keyless source\n")
        print(
            "| topics | sources | windows due | harvested | skipped | drain s (real) | "
            "heartbeat late s (real / compressed) | beat interval s |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in (int(x) for x in args.topics.split(",")):
            r = tick(n, args.speedup, args.requests, database_url=args.database_url)
            print(
                f"| {r['topics']:,} | {r['sources']} | {r['due']:,} | {r['harvested']:,} | "
                f"{r['skipped']:,} | {r['drain_s']} | {r['beat_late_s']} / "
                f"{r['beat_late_compressed_s']} | {r['interval_s']} |",
                flush=True,
            )
        print(
            f"\n(time × {args.speedup:g}: published rates × {args.speedup:g}, "
            "heartbeat and grace ÷ it)\n"
        )
    if not args.skip_ingest:
        print(
            f"## Ingest: {args.ingest_pages} pages of {args.ingest_page} new records, "
            f"an empty store and {args.ingest_works:,} works\n"
        )
        for line in ingest_stores(args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
