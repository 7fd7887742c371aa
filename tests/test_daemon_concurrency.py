"""The daemon harvesting four sources of one topic at once: the works of a sequential
harvest, one per study (issue 18.2), on SQLite and PostgreSQL.

The recordings share no identifier across sources, so the emulator's Crossref, OpenAlex and
Europe PMC corpora are derived here from the real PubMed records the PubMed emulator serves
(``pubmed/efetch_*.xml``): each study whose title the topic's query accepts is given to each
API in its own format, built on one real recorded item of that API (its other fields kept)
with the study's DOI, title, authors, journal, year, volume, issue and pages; Crossref and
OpenAlex with its DOI (OpenAlex with an OpenAlex id of its own), Europe PMC with its PMID
and no DOI. A study therefore reaches the store four times, by identifiers and, between
Europe PMC's and Crossref's descriptions, by fuzzy matching only.

For the sources' writes to meet often, the three derived corpora also hold ``COPIES`` copies
of every study, each another study (DOI + ``.c<k>``, PMID + k·10⁸, year - 2k: two years
apart, which fuzzy matching never joins), and list the studies in one order (indexed one
day apart), so the sources' harvests go through the same studies at the same time. Every
statement reaches the database ``LATENCY`` seconds late, as it would on another host.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from harvester.app import App, build_app
from harvester.config import Settings, parse_settings
from harvester.harvesting.scheduler import Daemon
from harvester.query.syntax import parse_query
from harvester.records import Author, Identifiers, Record
from harvester.sources.pubmed import parse_efetch
from harvester.store.models import Identifier, Provenance
from tests.conftest import require_shared
from tests.emulator import Emulator
from tests.emulator.crossref import CrossrefRoutes
from tests.emulator.europepmc import EuropePMCRoutes
from tests.emulator.openalex import OpenAlexRoutes

pytestmark = pytest.mark.integration

QUERY = '"natural language processing" OR "machine learning" OR NLP OR "deep learning"'
SOURCES = ("pubmed", "crossref", "openalex", "europepmc")
PAGE_SIZE = 10
KEY_ENV = "HARVESTER_TEST_OPENALEX_KEY"
COPIES = 10
# one pace for every source, so that they go through the same studies at the same time
RATE = 20.0
LATENCY = 0.003


def studies() -> list[Record]:
    """The served PubMed records with a DOI and a PMID whose title the query accepts."""
    query = parse_query(QUERY)
    found: dict[str, Record] = {}
    for path in sorted((require_shared() / "pubmed").glob("efetch_*.xml")):
        for r in parse_efetch(path.read_bytes(), url=path.name).records:
            title_only = Record(source="pubmed", title=r.title)
            if r.ids.doi and r.ids.pmid and r.year and query.match(title_only) is not None:
                found.setdefault(r.ids.pmid, r)
    return list(found.values())


def descriptions() -> list[Record]:
    """Every study the derived corpora describe: the PubMed studies and their copies."""
    out = []
    for k in range(COPIES + 1):
        for r in studies():
            if k == 0:
                out.append(r)
                continue
            year = (r.year or 0) - 2 * k
            out.append(
                r.with_changes(
                    source_id=None,
                    ids=Identifiers(
                        doi=f"{r.ids.doi}.c{k}", pmid=str(int(r.ids.pmid or 0) + k * 10**8)
                    ),
                    year=year,
                    published=str(year),
                )
            )
    return out


def indexed(position: int) -> str:
    """The day a derived item was "indexed": one day per study, in the corpus order."""
    return (date(2025, 1, 1) + timedelta(days=position)).isoformat()


def _fixture_json(name: str) -> Any:
    return json.loads((require_shared() / name).read_text(encoding="utf-8"))


def _date_parts(record: Record) -> list[int]:
    return [int(p) for p in (record.published or str(record.year)).split("-")]


def _padded(record: Record) -> str:
    parts = _date_parts(record) + [1, 1]
    return f"{parts[0]:04d}-{parts[1]:02d}-{parts[2]:02d}"


def _person(author: Author) -> tuple[str | None, str | None]:
    return author.family, author.given


def crossref_item(record: Record, template: dict[str, Any], position: int) -> dict[str, Any]:
    dropped = {"abstract", "subtitle", "relation", "subject", "original-title", "short-title",
               "published-print", "published-online", "issued", "posted", "updated-by",
               "language", "journal-issue"}  # fmt: skip
    item = {k: v for k, v in template.items() if k not in dropped}
    authors = [
        {"name": a.collective}
        if a.collective
        else {"given": a.given, "family": a.family, "sequence": "additional"}
        for a in record.authors
    ]
    item.update(
        {
            "DOI": record.ids.doi,
            "URL": f"https://doi.org/{record.ids.doi}",
            "title": [record.title],
            "author": authors,
            "container-title": [record.venue] if record.venue else [],
            "published": {"date-parts": [_date_parts(record)]},
            "volume": record.volume,
            "issue": record.issue,
            "page": record.pages,
            "type": "journal-article",
            "indexed": {"date-time": f"{indexed(position)}T00:00:00Z"},
        }
    )
    return item


def openalex_work(record: Record, template: dict[str, Any]) -> dict[str, Any]:
    dropped = {"abstract_inverted_index", "keywords", "topics", "primary_topic", "concepts",
               "mesh", "host_venue", "language", "locations", "best_oa_location"}  # fmt: skip
    work = {k: v for k, v in template.items() if k not in dropped}
    work_id = f"W{4_000_000_000 + int(record.ids.pmid or 0)}"
    first, _, last = (record.pages or "").partition("-")
    work.update(
        {
            "id": f"https://openalex.org/{work_id}",
            "doi": f"https://doi.org/{record.ids.doi}",
            "title": record.title,
            "display_name": record.title,
            "ids": {
                "openalex": f"https://openalex.org/{work_id}",
                "doi": f"https://doi.org/{record.ids.doi}",
                "pmid": f"https://pubmed.ncbi.nlm.nih.gov/{record.ids.pmid}",
            },
            "authorships": [
                {
                    "author": {
                        "display_name": a.collective or f"{a.family}, {a.given or ''}".strip(", "),
                        "orcid": None,
                    }
                }
                for a in record.authors
            ],
            "publication_year": record.year,
            "publication_date": _padded(record),
            "biblio": {
                "volume": record.volume,
                "issue": record.issue,
                "first_page": first or None,
                "last_page": last or None,
            },
            "primary_location": {
                "landing_page_url": None,
                "source": {"display_name": record.venue, "type": "journal"},
            },
            "type": "article",
        }
    )
    return work


def europepmc_result(record: Record, template: dict[str, Any], position: int) -> dict[str, Any]:
    dropped = {"abstractText", "pmcid", "doi", "keywordList", "meshHeadingList", "authorString",
               "fullTextIdList", "electronicPublicationDate", "firstPublicationDate",
               "language", "journalTitle"}  # fmt: skip
    result = {k: v for k, v in template.items() if k not in dropped}
    pmid = record.ids.pmid
    result.update(
        {
            "id": pmid,
            "source": "MED",
            "pmid": pmid,
            "title": record.title,
            "authorList": {
                "author": [
                    {"collectiveName": a.collective}
                    if a.collective
                    else {"lastName": a.family, "firstName": a.given}
                    for a in record.authors
                ]
            },
            "journalInfo": {
                "volume": record.volume,
                "issue": record.issue,
                "yearOfPublication": record.year,
                "printPublicationDate": _padded(record),
                "journal": {"title": record.venue},
            },
            "pageInfo": record.pages,
            "pubYear": str(record.year),
            "firstIndexDate": indexed(position),
            "pubTypeList": {"pubType": ["Journal Article"]},
        }
    )
    return result


def derive_corpora(emu: Emulator) -> None:
    """Give the Crossref, OpenAlex and Europe PMC emulators the derived descriptions."""
    found = descriptions()
    crossref = emu.source("crossref")
    openalex = emu.source("openalex")
    europepmc = emu.source("europepmc")
    assert isinstance(crossref, CrossrefRoutes)
    assert isinstance(openalex, OpenAlexRoutes)
    assert isinstance(europepmc, EuropePMCRoutes)
    template = _fixture_json("crossref/works_doi_10.1371_journal.pone.0033693.json")["message"]
    crossref.corpus = tuple(crossref_item(r, template, i) for i, r in enumerate(found))
    work = _fixture_json("openalex/works_search_ml_nlp_2020_2022_page1_per_page50.json")
    openalex.corpus = tuple(openalex_work(r, work["results"][0]) for r in found)
    core = _fixture_json("europepmc/search_cancer_core_abstracts.json")
    result = core["resultList"]["result"][0]
    europepmc.corpus = {
        **europepmc.corpus,
        "core": tuple(europepmc_result(r, result, i) for i, r in enumerate(found)),
    }


def settings_for(emu: Emulator, database_url: str) -> Settings:
    tables: dict[str, dict[str, Any]] = {
        name: {
            "base_url": emu.base_url(name),
            "requests_per_second": RATE,
            "page_size": PAGE_SIZE,
        }
        for name in SOURCES
    }
    tables["pubmed"]["email"] = "tests@example.org"
    tables["crossref"]["mailto"] = "tests@example.org"
    tables["openalex"]["api_key_env"] = KEY_ENV
    topic = {"name": "nlp", "query": QUERY, "sources": list(SOURCES), "lookback_days": 36_500,
             "schedule": "0 6 * * *"}  # fmt: skip
    return parse_settings(
        {"database": {"url": database_url}, "sources": tables, "topics": [topic],
         "daemon": {"jitter_seconds": 0}},
        path="test.toml",
    )  # fmt: skip


def works_as_provenance(app: App) -> set[frozenset[tuple[str, str]]]:
    """Each stored work as the set of source records it holds."""
    with app.engine.connect() as conn:
        rows = conn.execute(sa.select(Provenance.work_id, Provenance.source, Provenance.source_id))
        groups: dict[int, set[tuple[str, str]]] = {}
        for work_id, source, source_id in rows:
            groups.setdefault(work_id, set()).add((source, source_id))
    return {frozenset(g) for g in groups.values()}


def identifier_owners(app: App) -> dict[tuple[str, str], int]:
    with app.engine.connect() as conn:
        rows = conn.execute(sa.select(Identifier.scheme, Identifier.value, Identifier.work_id))
        return {(scheme, value): work_id for scheme, value, work_id in rows}


@pytest.fixture
def emu(running: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setenv(KEY_ENV, "emulator-key-7f3a")
    running.reset()
    derive_corpora(running)
    yield running
    running.reset()


def wait_for(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_the_daemon_harvesting_four_sources_at_once_stores_the_works_of_a_sequential_harvest(
    emu: Emulator, database_url: str, tmp_path: Path
) -> None:
    found = studies()
    assert len(found) >= 15  # enough studies for the sources' pages to meet

    sequential = build_app(settings_for(emu, f"sqlite:///{tmp_path / 'sequential.db'}"))
    try:
        results = sequential.harvest_all(sequential.settings.topics)
        assert [r.status for r in results] == ["ok"] * len(SOURCES), [r.error for r in results]
        expected = works_as_provenance(sequential)
        expected_ids = identifier_owners(sequential)
    finally:
        sequential.close()
    # the sequential harvest itself: each study is one work of four descriptions (three
    # for a copy, which PubMed does not serve)
    for study in descriptions():
        (work,) = [w for w in expected if ("crossref", study.ids.doi) in w]
        wanted = set(SOURCES) if study.source_id else set(SOURCES) - {"pubmed"}
        assert {source for source, _ in work} == wanted, work

    app = build_app(settings_for(emu, database_url))

    def network(*_: object) -> None:
        time.sleep(LATENCY)

    sa.event.listen(app.engine, "before_cursor_execute", network)
    # every source's first page waits until all four have one, so their writes meet even when
    # a loaded machine starts the jobs far apart (one finished before the last began)
    gate = threading.Barrier(len(SOURCES), timeout=60)
    first_pages: set[int] = set()
    guard = threading.Lock()
    store_page = app.repo.store_page

    def gated_store_page(run_id: int, *args: Any, **kwargs: Any) -> Any:
        with guard:
            first = run_id not in first_pages
            first_pages.add(run_id)
        if first:
            gate.wait()
        return store_page(run_id, *args, **kwargs)

    app.repo.store_page = gated_store_page  # type: ignore[method-assign]
    daemon = Daemon(app, BackgroundScheduler(), jitter=None, heartbeat_seconds=60)
    try:
        daemon.schedule()  # no watermark yet: every source catches up at once
        daemon.scheduler.start()
        wait_for(lambda: len([r for r in app.repo.runs("nlp") if r.finished_at]) == len(SOURCES))
    finally:
        daemon.stop()
    try:
        runs = app.repo.runs("nlp")
        assert sorted(r.source for r in runs) == sorted(SOURCES)
        assert all(r.status == "ok" for r in runs), [(r.source, r.error) for r in runs]
        # the sources' harvests overlapped in time: the writes met
        assert max(r.started_at for r in runs) < min(r.finished_at for r in runs if r.finished_at)
        assert works_as_provenance(app) == expected
        owners = identifier_owners(app)
        assert set(owners) == set(expected_ids)  # no identifier row lost
        assert app.repo.count_works() == len(expected) == app.repo.count_topic_hits()
    finally:
        app.close()
