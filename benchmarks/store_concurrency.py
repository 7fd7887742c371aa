"""Write throughput with several sources storing the same studies at once.

Usage::

    python benchmarks/store_concurrency.py [--copies 20] [--page 50] [--postgres URL]
        [--no-sqlite] [--no-postgres] [--processes]

The studies are the real PubMed records of
``pubmed/efetch_pubmed_50_records_structured_abstracts.xml`` with a DOI and a PMID, plus
``--copies`` copies of each (another study: DOI + ``.c<k>``, PMID + k·10⁸, year - 2k). Each
study is described by five sources as in tests/test_store_concurrency.py (PubMed, Crossref
with the DOI, Europe PMC with the PMID, OpenAlex with the DOI and an OpenAlex id, and one with
no identifier). Every source's records are stored in pages of ``--page`` through
:meth:`Repository.store_page`, into a new store:

* sequential: one source after the other, in one thread;
* concurrent: the five sources at once, one thread each (with ``--processes`` on
  PostgreSQL, one process each).

Prints seconds, records/s and the works stored against the studies (one work per study
is right; more are duplicates).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the derivation lives in tests/

import sqlalchemy as sa  # noqa: E402

from harvester.records import Identifiers, Record  # noqa: E402
from harvester.store.database import create, open_engine  # noqa: E402
from harvester.store.repository import Repository  # noqa: E402
from tests.test_store_concurrency import NOW, SOURCES, WINDOW, as_source, studies  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def all_studies(copies: int) -> list[Record]:
    out: list[Record] = []
    for k in range(copies + 1):
        for r in studies():
            if k == 0:
                out.append(r)
                continue
            year = (r.year or 0) - 2 * k
            out.append(
                r.with_changes(
                    source_id=f"{r.source_id}#{k}",
                    ids=Identifiers(
                        doi=f"{r.ids.doi}.c{k}", pmid=str(int(r.ids.pmid or 0) + k * 10**8)
                    ),
                    year=year,
                    published=str(year),
                )
            )
    return out


def pages(source: str, copies: int, size: int) -> list[list[Record]]:
    records = [as_source(r, source) for r in all_studies(copies)]
    return [records[i : i + size] for i in range(0, len(records), size)]


def store(url: str, source: str, copies: int, size: int, wait: Callable[[], object]) -> None:
    engine = open_engine(url)
    try:
        repo = Repository(engine, clock=lambda: NOW)
        run = repo.begin_run("bench", source, WINDOW)
        todo = pages(source, copies, size)
        wait()
        for page in todo:
            repo.store_page(run, "bench", page)
    finally:
        engine.dispose()


def _process(url: str, source: str, copies: int, size: int, barrier: Any) -> None:
    store(url, source, copies, size, barrier.wait)


def measure(url: str, mode: str, copies: int, size: int) -> tuple[float, int]:
    """(seconds, works) for storing every source's pages in ``mode``."""
    open_engine(url).dispose()  # the schema first
    if mode == "sequential":
        start = time.perf_counter()
        for source in SOURCES:
            store(url, source, copies, size, lambda: None)
    elif mode == "threads":
        barrier = threading.Barrier(len(SOURCES) + 1)
        threads = [
            threading.Thread(target=store, args=(url, s, copies, size, barrier.wait))
            for s in SOURCES
        ]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
    else:
        context = multiprocessing.get_context("spawn")
        pbarrier = context.Barrier(len(SOURCES) + 1)
        procs = [
            context.Process(target=_process, args=(url, s, copies, size, pbarrier)) for s in SOURCES
        ]
        for p in procs:
            p.start()
        pbarrier.wait()
        start = time.perf_counter()
        for p in procs:
            p.join()
    seconds = time.perf_counter() - start
    engine = create(url)
    try:
        with engine.connect() as conn:
            works = conn.execute(sa.text("SELECT count(*) FROM works")).scalar_one()
    finally:
        engine.dispose()
    return seconds, int(works)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--page", type=int, default=50)
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--processes", action="store_true")
    args = parser.parse_args(argv)
    n_studies = len(all_studies(args.copies))
    n_records = n_studies * len(SOURCES)
    print("| backend | writers | seconds | records/s | works | studies | duplicates |")
    print("|---|---|---:|---:|---:|---:|---:|")
    targets: list[tuple[str, Callable[[], tuple[str, Callable[[], None]]]]] = []
    if not args.no_sqlite:

        def sqlite_url() -> tuple[str, Callable[[], None]]:
            folder = tempfile.mkdtemp()
            return f"sqlite:///{folder}/bench.db", lambda: None

        targets.append(("sqlite", sqlite_url))
    if not args.no_postgres:

        def postgres_url() -> tuple[str, Callable[[], None]]:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = create(args.postgres)
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

            def drop() -> None:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

            base = args.postgres
            return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}", drop

        targets.append(("postgresql", postgres_url))
    for backend, make in targets:
        modes = ["sequential", "threads"]
        if backend == "postgresql" and args.processes:
            modes.append("processes")
        for mode in modes:
            url, cleanup = make()
            try:
                seconds, works = measure(url, mode, args.copies, args.page)
            finally:
                cleanup()
            label = "1 (one source after another)" if mode == "sequential" else f"5 {mode}"
            print(
                f"| {backend} | {label} | {seconds:.2f} | {n_records / seconds:,.0f} | "
                f"{works:,} | {n_studies:,} | {works - n_studies:,} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
