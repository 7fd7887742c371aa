"""Benchmark: the update job's requests for one day of notices, at 10k and 1M stored works.

The job reads the day's notices (Crossref's ``update-type`` listing by index date, PubMed's
notice publication types by Entrez date) and matches their targets by identifier, so its
request count must not depend on how many works are stored. Against the local emulator
(tests/emulator, serving the real recordings of ../shared/fixtures, with the notice listings
built from the recorded single-work bodies of updates/, see tests/emulator/notices.py), every
recorded notice is put on one day (re-indexed / entered on BENCH_DAY), and the job runs over
that day on a store of N works.

The stored works are SYNTHESIZED from real records: the recorded Crossref and PubMed records
of ../shared/fixtures, copied with their DOI and PMID suffixed by the copy number (so the
identifier index holds N DOIs and N PMIDs of real shapes), inserted in bulk with a compact
record (identifiers, title, year); the real targets of the notices (the Lancet, ACS and
Wakefield studies, as recorded but without their update fields) are stored as a harvest
stores them, so the day's notices find them.

Run: ``python benchmarks/updates.py [--works 10000,1000000]``. It prints, per store size and
source: requests, pages, notices read, updates applied, updates left pending, seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulator lives in tests/

from harvester.app import App, build_app  # noqa: E402
from harvester.config import parse_settings  # noqa: E402
from harvester.harvesting.updates import run_updates  # noqa: E402
from harvester.logs import configure_logging  # noqa: E402
from harvester.records import Record  # noqa: E402
from harvester.sources.base import Window  # noqa: E402
from harvester.sources.crossref import parse_works  # noqa: E402
from harvester.sources.pubmed import parse_efetch  # noqa: E402
from tests.emulator import Emulator  # noqa: E402
from tests.emulator.notices import crossref_items, pubmed_articles  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
BENCH_DAY = datetime(2026, 11, 3, tzinfo=UTC)
TARGETS = (
    "crossref/works_doi_10.1016_s0140-6736_20_31180-6_updated_by_rw_retraction_eoc_correction.json",
    "crossref/works_doi_10.1021_am300292v_updated_by_rw_retraction_trimmed.json",
    "pubmed/efetch_pubmed_retracted_and_retraction_notice_pair_9500320_20137807.xml",
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def real_records() -> list[Record]:
    records: list[Record] = []
    for path in sorted((FIXTURES / "crossref").glob("works_*.json")):
        try:
            records += parse_works(path.read_bytes()).records
        except Exception:  # the recorded error bodies  # noqa: BLE001, S112
            continue
    for path in sorted((FIXTURES / "pubmed").glob("efetch_*.xml")):
        records += parse_efetch(path.read_bytes()).records
    unique = {
        (r.ids.doi, r.ids.pmid): r for r in records if r.ids.pmid is None or len(r.ids.pmid) < 9
    }
    return list(unique.values())


def fill(app: App, count: int, base: list[Record]) -> None:
    """``count`` works synthesized from ``base`` (ids suffixed by the copy), in bulk."""
    import sqlalchemy as sa

    batch = 20_000
    now = app.clock()
    with app.engine.begin() as conn:
        for first in range(0, count, batch):
            works, ids = [], []
            for n in range(first, min(first + batch, count)):
                r = base[n % len(base)]
                copy = n // len(base) + 1
                wid = 10_000_000 + n
                # unique per work: the copy's DOI suffix, the PMID shifted by the copy number
                doi = f"{r.ids.doi or '10.9999/x'}.s{n}"
                pmid = str(int(r.ids.pmid) + copy * 10**8) if r.ids.pmid else str(10**12 + n)
                record = {"source": r.source, "ids": {"doi": doi, "pmid": pmid},
                          "title": r.title, "year": r.year}  # fmt: skip
                works.append({"id": wid, "title": r.title, "year": r.year,
                              "record": json.dumps(record), "at": now})  # fmt: skip
                ids += [{"w": wid, "s": "doi", "v": doi}, {"w": wid, "s": "pmid", "v": pmid}]
            conn.execute(
                sa.text(
                    "INSERT INTO works (id, title, year, record, created_at, updated_at) "
                    "VALUES (:id, :title, :year, :record, :at, :at)"
                ),
                works,
            )
            conn.execute(
                sa.text("INSERT INTO identifiers (work_id, scheme, value) VALUES (:w, :s, :v)"),
                ids,
            )


def targets() -> list[Record]:
    out = []
    for name in TARGETS:
        body = (FIXTURES / "updates" / name).read_bytes()
        parse = parse_efetch if name.endswith(".xml") else parse_works
        out.append(parse(body).records[0].with_changes(updates=()))
    return out


def one_day(emu: Emulator) -> None:
    """Every recorded notice indexed (Crossref) / entered (PubMed) on BENCH_DAY."""
    crossref: Any = emu.source("crossref")
    crossref.include_updates()
    for item in crossref_items(FIXTURES):
        crossref.reindex(item["DOI"], f"{BENCH_DAY:%Y-%m-%d}T06:00:00Z")
    pubmed: Any = emu.source("pubmed")
    pubmed.include_updates()
    for pmid, _, _ in pubmed_articles(FIXTURES):
        pubmed.enter(pmid, BENCH_DAY.replace(tzinfo=None, hour=9))


def run(emu: Emulator, works: int, base: list[Record], directory: Path) -> list[str]:
    emu.reset()
    one_day(emu)
    settings = parse_settings(
        {
            "database": {"url": f"sqlite:///{directory / f'bench_{works}.db'}"},
            "sources": {
                "crossref": {"base_url": emu.base_url("crossref"), "mailto": "b@example.org",
                             "requests_per_second": 1000},
                "pubmed": {"base_url": emu.base_url("pubmed"), "email": "b@example.org",
                           "requests_per_second": 1000},
            },
            "topics": [{"name": "t", "query": "x", "sources": ["crossref", "pubmed"]}],
        },
        path="bench.toml",
    )  # fmt: skip
    clock = Clock(BENCH_DAY + timedelta(days=1))
    app = build_app(settings, clock=clock, sleep=lambda _s: None)
    try:
        started = time.perf_counter()
        fill(app, works - len(TARGETS), base)
        run_id = app.repo.begin_run(
            "t", "crossref", Window(clock.now - timedelta(days=1), clock.now)
        )
        app.repo.store_page(run_id, "t", targets())
        stored = app.repo.count_works()
        filled = time.perf_counter() - started
        started = time.perf_counter()
        results = run_updates(app, since=BENCH_DAY)
        took = time.perf_counter() - started
    finally:
        app.close()
    lines = [f"{stored:>9,} stored works (filled in {filled:.0f} s)"]
    for r in results:
        lines.append(
            f"    {r.source:<8} {r.status}: {r.requests} requests, {r.pages} pages, "
            f"{r.notices} notices read, {r.applied} updates applied, {r.pending} pending"
        )
    lines.append(f"    job: {took:.2f} s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--works", default="10000,1000000", help="store sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.works.split(",") if s.strip()]
    configure_logging("console")
    logging.disable(logging.INFO)
    base = real_records()
    print(f"one day of notices ({BENCH_DAY:%Y-%m-%d}); {len(base)} real records copied")
    with Emulator(FIXTURES) as emu, tempfile.TemporaryDirectory() as tmp:
        for works in sizes:
            for line in run(emu, works, base, Path(tmp)):
                print(line, flush=True)


if __name__ == "__main__":
    main()
