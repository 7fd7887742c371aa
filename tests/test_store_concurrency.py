"""Several sources storing the same studies at once: one identifier, one work (issue 18.2).

The pages are derived from the real PubMed records of
``pubmed/efetch_pubmed_50_records_structured_abstracts.xml``: each study as five sources
would describe it (PubMed itself; Crossref with the DOI only; Europe PMC with the PMID and
PMCID but no DOI; OpenAlex with the DOI and an OpenAlex id; Semantic Scholar-like with no
identifier at all, met only by fuzzy matching). Stored one after the other they give one work
per study; stored at once (threads, and on PostgreSQL processes, released together by a
barrier before every page) they must give the same.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from harvester.records import Identifiers, Record
from harvester.sources.base import Window
from harvester.sources.pubmed import parse_efetch
from harvester.store.database import open_engine
from harvester.store.models import Identifier
from harvester.store.repository import Repository
from tests.conftest import require_shared

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(days=7), NOW)
SOURCES = ("pubmed", "crossref", "europepmc", "openalex", "semanticscholar")
PAGE = 8  # studies per page: several pages per source, each colliding with the others'


def studies() -> list[Record]:
    """The real PubMed records with a DOI and a PMID (the study each page describes)."""
    path = require_shared() / "pubmed" / "efetch_pubmed_50_records_structured_abstracts.xml"
    records = parse_efetch(path.read_bytes(), url=str(path)).records
    return [r for r in records if r.ids.doi and r.ids.pmid and r.title and r.year]


def as_source(record: Record, source: str) -> Record:
    """``record`` as ``source`` would describe it (derived; see the module docstring)."""
    ids = record.ids
    bibliographic: dict[str, Any] = {
        "title": record.title,
        "authors": record.authors,
        "venue": record.venue,
        "year": record.year,
        "volume": record.volume,
        "issue": record.issue,
        "pages": record.pages,
        "published": record.published,
        "type": record.type,
    }
    if source == "pubmed":
        return record
    if source == "crossref":
        return Record(
            source=source, source_id=ids.doi, ids=Identifiers(doi=ids.doi), **bibliographic
        )
    if source == "europepmc":
        return Record(
            source=source,
            source_id=f"MED:{ids.pmid}",
            ids=Identifiers(pmid=ids.pmid, pmcid=ids.pmcid),
            abstract=record.abstract,
            **bibliographic,
        )
    if source == "openalex":
        work = f"W{int(ids.pmid or 0) + 4_000_000_000}"
        return Record(
            source=source,
            source_id=work,
            ids=Identifiers(doi=ids.doi, openalex=work),
            **bibliographic,
        )
    assert source == "semanticscholar"
    return Record(source=source, source_id=f"s2:{ids.pmid}", **bibliographic)


def pages_of(source: str) -> list[list[Record]]:
    records = [as_source(r, source) for r in studies()]
    return [records[i : i + PAGE] for i in range(0, len(records), PAGE)]


def store_all(repo: Repository, source: str, wait: Callable[[], object]) -> None:
    run = repo.begin_run("t", source, WINDOW)
    for page in pages_of(source):
        wait()
        repo.store_page(run, "t", page)


def check_one_work_per_study(
    repo: Repository, sequential_works: int, sources: Sequence[str] = SOURCES
) -> None:
    """Every identifier of every description is one row, and a study's rows and its
    identifier-less description are one work; as many works as the sequential run."""
    with repo.engine.connect() as conn:
        rows = conn.execute(sa.select(Identifier.scheme, Identifier.value, Identifier.work_id))
        work_of = {(scheme, value): work_id for scheme, value, work_id in rows}
    for study in studies():
        pairs = {p for source in sources for p in as_source(study, source).ids.items()}
        missing = pairs - set(work_of)
        assert not missing, f"identifier rows lost: {sorted(missing)}"
        assert len({work_of[p] for p in pairs}) == 1, (study.ids, {p: work_of[p] for p in pairs})
    assert repo.count_works() == sequential_works == len(studies())
    assert repo.count_provenance() == len(sources) * len(studies())
    assert repo.count_topic_hits() == sequential_works


def sequential_works(tmp_path: Path, sources: Sequence[str] = SOURCES) -> int:
    engine = open_engine(f"sqlite:///{tmp_path / 'sequential.db'}")
    try:
        repo = Repository(engine, clock=lambda: NOW)
        for source in sources:
            store_all(repo, source, lambda: None)
        check_one_work_per_study(repo, repo.count_works(), sources)
        return repo.count_works()
    finally:
        engine.dispose()


def test_sources_storing_the_same_studies_at_once_give_one_work_per_study(
    database_url: str, tmp_path: Path
) -> None:
    expected = sequential_works(tmp_path)
    engine = open_engine(database_url)
    repo = Repository(engine, clock=lambda: NOW)
    barrier = threading.Barrier(len(SOURCES), timeout=60)
    errors: list[BaseException] = []

    def writer(source: str) -> None:
        try:
            store_all(repo, source, barrier.wait)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(s,)) for s in SOURCES]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not [t for t in threads if t.is_alive()]
        assert errors == []
        check_one_work_per_study(repo, expected)
    finally:
        engine.dispose()


def _process_writer(url: str, source: str, barrier: Any, errors: Any) -> None:
    engine = open_engine(url)
    try:
        store_all(Repository(engine, clock=lambda: NOW), source, barrier.wait)
    except BaseException as e:
        errors.put(f"{source}: {e!r}")
        barrier.abort()
        raise
    finally:
        engine.dispose()


def test_processes_storing_the_same_studies_at_once_give_one_work_per_study_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    # replicas are processes: nothing in-process (the GIL, a Python lock) can serialise them;
    # three sources (a process starts slowly): meeting by identifiers and by fuzzy matching
    sources = ("pubmed", "crossref", "europepmc")
    expected = sequential_works(tmp_path, sources)
    engine = open_engine(postgres_url)  # the schema, before the writers race to create it
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(sources), timeout=120)
    errors = context.Queue()
    processes = [
        context.Process(target=_process_writer, args=(postgres_url, s, barrier, errors))
        for s in sources
    ]
    try:
        for p in processes:
            p.start()
        for p in processes:
            p.join(timeout=180)
        found: Sequence[str] = [errors.get() for _ in range(errors.qsize())]
        assert found == []
        assert [p.exitcode for p in processes] == [0] * len(sources)
        check_one_work_per_study(Repository(engine, clock=lambda: NOW), expected, sources)
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
        engine.dispose()


@pytest.mark.parametrize("other_source", ["crossref", "pubmed"])
def test_a_row_written_meanwhile_without_the_lock_makes_the_page_store_again(
    postgres_url: str, other_source: str
) -> None:
    # A writer that does not take the write lock (an older harvester during an upgrade)
    # stores the same study just before the page's first INSERT: Crossref's description
    # (its DOI row is then another work's) or the very PubMed record (its provenance row
    # exists). The page must not drop the DOI or fail: it is stored again and meets the work.
    from structlog.testing import capture_logs

    from harvester.store.writer import PageWriter

    study = studies()[0]
    engine, other = open_engine(postgres_url), open_engine(postgres_url)
    repo, other_repo = Repository(engine, clock=lambda: NOW), Repository(other, clock=lambda: NOW)
    run = repo.begin_run("t", "pubmed", WINDOW)
    other_run = other_repo.begin_run("t", other_source, WINDOW)
    fired: list[str] = []

    def meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO works") and not fired:
            fired.append(statement)
            with other_repo._session() as session, session.begin():  # no lock_writes
                writer = PageWriter(other_repo, session, other_run, NOW)
                writer.add([as_source(study, other_source)])
                writer.write("t", False)

    sa.event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        with capture_logs() as logs:
            outcome = repo.store_page(run, "t", [study])
        assert fired and outcome.new_works == 0 and outcome.duplicates == 1
        assert [e["event"] for e in logs].count("page write conflict, storing again") == 1
        (work,) = repo.works("t")
        assert set(work.sources) == {"pubmed", other_source}
        assert (work.record.ids.doi, work.record.ids.pmid) == (study.ids.doi, study.ids.pmid)
        assert repo.count_identifiers() == len(study.ids.items())
    finally:
        sa.event.remove(engine, "before_cursor_execute", meanwhile)
        engine.dispose()
        other.dispose()
