"""Scale: a daily tick for many topics, and ingest against a large store.

Usage::

    python benchmarks/scale.py [--topics 10,100,1000] [--speedup 60] [--requests 2]
        [--ingest-works 300000] [--skip-tick] [--skip-ingest]

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

**Ingest.** A SQLite store of ``--ingest-works`` one-record works (a work, its provenance,
a DOI; bulk-loaded rows, no ANALYZE, as a real store is), then one page of 500 real PubMed
records (the fixtures, PMIDs and DOIs offset per copy) through ``Repository.store_page`` on
an empty store and on the large one: records/s. And the provenance lookup of 500 keys in
the two shapes: the row-value ``(source, source_id) IN (VALUES …)`` the writer sent before,
and ``source = ? AND source_id IN (…)`` it sends now, with SQLite's plan of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
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
    joiner = "&" if "?" in url else "?"
    try:
        yield f"{url}{joiner}options=-csearch_path%3D{schema}"
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


def page_records(count: int) -> list:  # type: ignore[type-arg]
    from harvester.records import Identifiers
    from harvester.sources.pubmed import parse_efetch

    shared = ROOT.parent / "shared" / "fixtures" / "pubmed"
    base = [
        r
        for path in sorted(shared.glob("efetch_*.xml"))
        for r in parse_efetch(path.read_bytes()).records
    ]
    out = []
    copy = 0
    while len(out) < count:
        copy += 1
        for r in base:
            if len(out) >= count:
                break
            pmid = str(int(r.ids.pmid or "1") + copy * 10**8)
            doi = f"{r.ids.doi}.p{copy}" if r.ids.doi else None
            ids = Identifiers(pmid=pmid, doi=doi)
            out.append(replace(r, source_id=pmid, ids=ids, title=f"{r.title} p{copy}"))
    return out


def fill(engine, count: int) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    batch = 50_000
    with engine.begin() as conn:
        for first in range(0, count, batch):
            ids = range(10_000_000 + first, 10_000_000 + min(first + batch, count))
            conn.execute(
                sa.text(
                    "INSERT INTO works (id, title, year, record, created_at, updated_at) "
                    "VALUES (:id, 'filler', 2000, '{}', :at, :at)"
                ),
                [{"id": i, "at": NOW} for i in ids],
            )
            conn.execute(
                sa.text(
                    "INSERT INTO provenance (work_id, source, source_id, fetched_at, record) "
                    "VALUES (:id, :s, :sid, :at, '{}')"
                ),
                [
                    {"id": i, "s": ("pubmed", "crossref")[i % 2], "sid": f"f{i}", "at": NOW}
                    for i in ids
                ],
            )
            conn.execute(
                sa.text("INSERT INTO identifiers (work_id, scheme, value) VALUES (:id, 'doi', :v)"),
                [{"id": i, "v": f"10.9999/f{i}"} for i in ids],
            )


def ingest(works: int, page: int = 500) -> list[str]:
    import sqlalchemy as sa

    from harvester.sources.base import Window
    from harvester.store.database import open_engine
    from harvester.store.repository import Repository

    records = page_records(page)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for stored in (0, works):
            url = f"sqlite:///{Path(tmp) / f's{stored}.db'}"
            engine = open_engine(url)
            loaded = time.perf_counter()
            fill(engine, stored)
            loaded = time.perf_counter() - loaded
            repo = Repository(engine, clock=lambda: NOW)
            run = repo.begin_run("t", "pubmed", Window(NOW - timedelta(days=1), NOW))
            began = time.perf_counter()
            repo.store_page(run, "t", records)
            took = time.perf_counter() - began
            lines.append(
                f"| {stored:,} | {loaded:.0f} | {page} | {took:.2f} | {page / took:,.0f} |"
            )
            if stored:
                keys = [("pubmed", f"f{i}") for i in range(10_000_000, 10_000_000 + 500)]
                with engine.connect() as conn:
                    values = ", ".join(f"('{s}', '{k}')" for s, k in keys)
                    ids = ", ".join(f"'{k}'" for _, k in keys)
                    old = (
                        f"SELECT id FROM provenance WHERE (source, source_id) IN (VALUES {values})"
                    )
                    new = (
                        "SELECT id FROM provenance WHERE source = 'pubmed' "
                        f"AND source_id IN ({ids})"
                    )
                    for label, sql in (
                        ("row-value IN (VALUES …) (before)", old),
                        ("source = ? AND source_id IN (…) (now)", new),
                    ):
                        plan = " | ".join(
                            str(r[-1]) for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql))
                        )
                        began = time.perf_counter()
                        found = len(conn.execute(sa.text(sql)).all())
                        took = time.perf_counter() - began
                        lines.append(
                            f"lookup {label}: {took * 1000:.1f} ms, {found} rows; plan: {plan}"
                        )
            engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--topics", default="10,100,1000", help="comma-separated topic counts")
    parser.add_argument("--speedup", type=float, default=60.0, help="time compression")
    parser.add_argument("--requests", type=int, default=2, help="requests per harvest")
    parser.add_argument("--ingest-works", type=int, default=300_000)
    parser.add_argument(
        "--shared-topics", default="10,100,1000,10000", help="topic counts, requests per source"
    )
    parser.add_argument(
        "--volume", type=float, default=0.02, help="daily delta × this (page sizes too)"
    )
    parser.add_argument("--skip-shared", action="store_true")
    parser.add_argument("--skip-tick", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument(
        "--database-url",
        default=None,
        help="the tick on this PostgreSQL database (in a scratch schema, dropped after) "
        "instead of a SQLite file",
    )
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
        print("## Ingest: one page of 500 real PubMed records, SQLite\n")
        print("| stored works | load s | page records | store_page s | records/s |")
        print("|---:|---:|---:|---:|---:|")
        for line in ingest(args.ingest_works):
            print(line)


if __name__ == "__main__":
    main()
