"""Every source end to end: one topic, all eight APIs (emulated from real recordings), the store.

The topic's one portable query is chosen from what the recordings hold, so that it accepts
records from every source and rejects some in most (the local evaluation is seen working):

- PubMed and OpenAlex: the recorded NLP / machine-learning searches;
- Europe PMC: the recorded "cancer" core search;
- Crossref: the "ecology" work-list (the other lists are "widget" and a Portuguese publisher);
- Semantic Scholar: the "turing" full-field search;
- arXiv: the "testing" feeds; bioRxiv/medRxiv: listings matched on cancer/testing/learning.

A single query suffices (an OR of those subjects), so one topic covers every source.
The expectation is computed independently of the harvest: the files each emulator module
says it serves (see its docstring) are parsed with the source's own ``parse`` and filtered
with ``Query.match``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from harvester.app import App, build_app
from harvester.config import Settings, parse_settings
from harvester.errors import ParseError
from harvester.harvesting.backfill import backfill
from harvester.query.syntax import parse_query
from harvester.records import ID_SCHEMES, Record
from harvester.sources import SOURCES, Page
from harvester.sources.pubmed import parse_esearch
from harvester.store.models import Provenance
from tests.conftest import FIXTURES, FixedClock, Sleeps, require_shared
from tests.emulator import Emulator
from tests.emulator.biorxiv import BiorxivRoutes
from tests.emulator.crossref import CrossrefRoutes
from tests.emulator.semanticscholar import SemanticScholarRoutes

pytestmark = pytest.mark.integration

QUERY = (
    '"machine learning" OR "deep learning" OR "natural language processing" '
    "OR cancer* OR ecolog* OR turing OR test*"
)
ALL = (
    "pubmed", "europepmc", "crossref", "openalex", "semanticscholar", "arxiv", "biorxiv",
    "medrxiv",
)  # fmt: skip
# After every recorded date (Crossref's `indexed` dates run to June 2026), so that with the
# longest lookback (100 years, back to 1927) one window holds every recorded record.
NOW = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
LOOKBACK_DAYS = 36_500
OPENALEX_KEY_ENV = "HARVESTER_TEST_OPENALEX_KEY"
OPENALEX_KEY = "emulator-key-7f3a"  # the emulator refuses keyless OpenAlex requests
# Small pages so that every source pages several times through its small corpus.
PAGE_SIZES = {"pubmed": 20, "europepmc": 10, "crossref": 25, "openalex": 25, "arxiv": 10}
# Semantic Scholar bulk search and bioRxiv `details` take no page size (1,000 and 100 per
# answer): the emulator is told to answer smaller pages instead.
EMULATED_PAGE_SIZES = {"semanticscholar": 30, "biorxiv": 15, "medrxiv": 2}
FAST = 1000.0  # requests/s: no pacing here; tests/test_harvest_pubmed.py measures pacing

# --- what each emulator serves (its module docstring), read independently ----------------------

SERVED: dict[str, tuple[str, ...]] = {
    # tests/emulator/pubmed.py: every <PubmedArticle> of pubmed/efetch_*.xml
    "pubmed": tuple(
        f"pubmed/{n}"
        for n in (
            "efetch_pubmed_43_authors.xml",
            "efetch_pubmed_50_records_structured_abstracts.xml",
            "efetch_pubmed_collective_author_mathml.xml",
            "efetch_pubmed_collective_author_structured_abstract.xml",
            "efetch_pubmed_empty_articleset.xml",
            "efetch_pubmed_german_vernacular_title_no_abstract.xml",
            "efetch_pubmed_rettype_abstract_2_records.xml",
        )
    ),
    # tests/emulator/europepmc.py: resultType=core is the recorded core search
    "europepmc": ("europepmc/search_cancer_core_abstracts.json",),
    # tests/emulator/crossref.py: every recorded work-list item plus the single work
    "crossref": tuple(
        f"crossref/{n}"
        for n in (
            "works_doi_10.1371_journal.pone.0033693.json",
            "works_query_ecology_rows30_cursor_page1.json",
            "works_query_no_results.json",
            "works_query_publisher_name_jats_abstracts.json",
            "works_query_widget_cursor_page1.json",
            "works_query_widget_cursor_page2.json",
            "works_sample_2_one_untitled.json",
        )
    ),
    # tests/emulator/openalex.py: every work of the recorded listings plus the single work
    "openalex": tuple(
        f"openalex/{n}"
        for n in (
            "work_W4234567890_null_title.json",
            "works_filter_cited_by_cursor_start_38_results.json",
            "works_filter_openalex_ids_cursor_end_empty.json",
            "works_filter_openalex_ids_cursor_start.json",
            "works_search_ml_nlp_2020_2022_page1_per_page50.json",
        )
    ),
    # tests/emulator/semanticscholar.py: a bulk query without "kubernetes" is answered from
    # the full-field relevance recording and the batch recording's papers
    "semanticscholar": (
        "semanticscholar/paper_search_turing_all_fields_with_abstracts.json",
        "semanticscholar/paper_batch_post_with_null_entry.json",
    ),
    # tests/emulator/arxiv.py: every entry of arxiv/query_*.xml with a real arXiv id
    "arxiv": tuple(
        f"arxiv/{n}"
        for n in (
            "query_all_testing_start0_max10.xml",
            "query_all_testing_start10_max10.xml",
            "query_au_del_maestro_2016_format.xml",
            "query_id_list_2104.12255v1_title_is_0.xml",
            "query_id_list_unknown_id_zero_results.xml",
        )
    ),
    # tests/emulator/biorxiv.py: every item of biorxiv/details_*.json, listed by its server
    "biorxiv": tuple(sorted(f"biorxiv/{p.name}" for p in (FIXTURES / "biorxiv").glob("*.json"))),
}
SERVED["medrxiv"] = SERVED["biorxiv"]
SERVER_VENUES = {"biorxiv": "bioRxiv", "medrxiv": "medRxiv"}


def recorded_records(source: str) -> list[Record]:
    """The records the emulator of ``source`` serves, parsed with the source's own parser."""
    fixtures = require_shared()
    records: list[Record] = []
    for name in SERVED[source]:
        page = Page(source=source, url=name, body=(fixtures / name).read_bytes())
        records += SOURCES[source].parse(page).records
    if source in SERVER_VENUES:  # one host lists both servers; each lists its own items
        records = [r for r in records if r.venue == SERVER_VENUES[source]]
    return records


def expected_provenance(sources: tuple[str, ...] = ALL) -> set[tuple[str, str]]:
    """(source, source id) of every served record the topic's query accepts."""
    query = parse_query(QUERY)
    found = set()
    for source in sources:
        for record in recorded_records(source):
            if query.match(record) is not None:
                assert record.source_id is not None, record
                found.add((source, record.source_id))
    return found


def expected_work_count(sources: tuple[str, ...] = ALL) -> int:
    """Accepted records grouped into studies: records sharing any identifier are one study."""
    query = parse_query(QUERY)
    parent: dict[object, object] = {}

    def root(node: object) -> object:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    studies = set()
    for source in sources:
        for record in recorded_records(source):
            if query.match(record) is None:
                continue
            study = (source, record.source_id)
            studies.add(study)
            for pair in record.ids.items():
                parent[root(pair)] = root(study)
    return len({root(s) for s in studies})


# --- the app against the emulator -------------------------------------------------------------


@pytest.fixture
def emu(running: Emulator) -> Emulator:
    running.reset()
    for name, size in EMULATED_PAGE_SIZES.items():
        routes = running.source(name)
        if isinstance(routes, SemanticScholarRoutes):
            routes.bulk_page_size = size
        elif isinstance(routes, BiorxivRoutes):
            routes.page_size = size
    return running


def settings_for(
    emu: Emulator, database_url: str, *, sources: tuple[str, ...] = ALL, openalex_key: bool = True
) -> Settings:
    tables: dict[str, dict[str, Any]] = {}
    for name in sources:
        table: dict[str, Any] = {"base_url": emu.base_url(name), "requests_per_second": FAST}
        if name in PAGE_SIZES:
            table["page_size"] = PAGE_SIZES[name]
        tables[name] = table
    tables.setdefault("pubmed", {})["email"] = "tests@example.org"
    tables.setdefault("crossref", {})["mailto"] = "tests@example.org"
    if openalex_key:
        tables.setdefault("openalex", {})["api_key_env"] = OPENALEX_KEY_ENV
    topic = {"name": "everywhere", "query": QUERY, "sources": list(sources),
             "lookback_days": LOOKBACK_DAYS}  # fmt: skip
    return parse_settings(
        {"database": {"url": database_url}, "sources": tables, "topics": [topic]},
        path="test.toml",
    )


MakeApp = Callable[..., App]


@pytest.fixture
def make_app(
    emu: Emulator, database_url: str, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeApp]:
    monkeypatch.setenv(OPENALEX_KEY_ENV, OPENALEX_KEY)
    # the emulated servers live at NOW too: harvester never stores a watermark beyond a
    # server's own Date, and NOW lies after every recorded date (and after today)
    emu.server_now = NOW
    built: list[App] = []

    def make(**kwargs: Any) -> App:
        app = build_app(
            settings_for(emu, database_url, **kwargs), clock=FixedClock(NOW), sleep=sleeps
        )
        built.append(app)
        return app

    yield make
    for app in built:
        app.close()


def stored_provenance(app: App) -> list[tuple[str, str]]:
    with app.engine.connect() as conn:
        rows = conn.execute(sa.select(Provenance.source, Provenance.source_id))
        return sorted((source, source_id) for source, source_id in rows)


def table_counts(app: App) -> dict[str, int]:
    repo = app.repo
    return {
        "works": repo.count_works(),
        "provenance": repo.count_provenance(),
        "topic_hits": repo.count_topic_hits(),
        "identifiers": repo.count_identifiers(),
    }


# --- the tests --------------------------------------------------------------------------------


def test_every_source_harvests_its_records_once_and_a_second_run_adds_nothing(
    make_app: MakeApp, emu: Emulator, sleeps: Sleeps
) -> None:
    app = make_app()
    topic = app.settings.topics[0]
    expected = expected_provenance()
    per_source = {s: sum(1 for src, _ in expected if src == s) for s in ALL}
    assert all(per_source.values()), per_source  # the query finds something everywhere

    with capture_logs(processors=[merge_contextvars]) as logs:
        first = {r.source: r for r in app.harvest_all([topic])}
    assert set(first) == set(ALL)
    for name, result in first.items():
        assert result.status == "ok", (name, result.error)
        assert result.counts.pages >= 3, (name, result.counts)  # several pages each
        assert result.counts.errors == 0
        assert result.counts.new_hits == result.counts.new_works
        assert app.repo.watermark(topic.name, name) == NOW
    # some records of most sources are rejected by the local query (Crossref's "widget"
    # list, arXiv's condensed-matter feed, ...): local evaluation did its work
    assert sum(r.counts.records > r.counts.matched for r in first.values()) >= 6

    stored = stored_provenance(app)
    assert len(stored) == len(set(stored))  # one provenance per source record
    assert set(stored) == expected
    counts = table_counts(app)
    assert counts["works"] == counts["topic_hits"] == expected_work_count()
    assert sum(r.counts.new_works for r in first.values()) == counts["works"]
    assert sleeps == []  # nothing failed, nothing was retried

    # what each source announced is recorded beside what it gave (issue 3, "completeness")
    # (bioRxiv/medRxiv announce a total of versions, not of records: nothing to compare)
    for run in app.repo.runs(topic.name, limit=len(ALL)):
        if run.source in ("biorxiv", "medrxiv"):
            assert run.expected is None, run
        else:
            assert run.expected is not None and run.expected >= run.counts.records, run
    # the OpenAlex key went to the API but never into a log line or a stored URL
    assert any(r.params.get("api_key") == OPENALEX_KEY for r in emu.requests)
    assert OPENALEX_KEY not in repr(logs)

    # A second scheduled run: from each watermark less its overlap; nothing new.
    second = app.harvest_all([topic])
    assert {r.source: (r.status, r.counts.new_works, r.counts.new_hits) for r in second} == {
        name: ("ok", 0, 0) for name in ALL
    }
    # Every record again: the whole first window re-read (as an overlap or a repeated page
    # would bring them back) adds no work, provenance or topic hit.
    start = min(r.window.start for r in first.values()).date()
    again = backfill(
        app, topic, since=start, until=NOW.date(), sources=ALL, slice_days=LOOKBACK_DAYS + 2
    )
    for refill in again:
        (rerun,) = refill.runs
        before = first[refill.source].counts
        assert rerun.status == "ok", (refill.source, rerun.error)
        assert (rerun.counts.records, rerun.counts.matched) == (before.records, before.matched)
        assert (rerun.counts.new_works, rerun.counts.new_hits) == (0, 0)
        assert rerun.counts.duplicates == rerun.counts.matched
    assert table_counts(app) == counts
    assert stored_provenance(app) == stored


def test_an_expired_crossref_cursor_and_runs_of_429s_are_survived(
    make_app: MakeApp, emu: Emulator, sleeps: Sleeps
) -> None:
    # Three 429s with Retry-After in the middle of every source's harvest (after its first
    # request), each source with its own wait so the recorded sleeps can be told apart.
    waits = {name: float(i + 1) for i, name in enumerate(ALL)}
    for name, wait in waits.items():
        emu.faults.add(source=name, kind="status", status=429, retry_after=wait, times=3, after=1)
    crossref = emu.source("crossref")
    assert isinstance(crossref, CrossrefRoutes)
    app = make_app()
    topic = app.settings.topics[0]
    pages = {"crossref": 0}

    def expire_after_second_page() -> bool:
        # asked after each stored page: the cursor dies as if the harvest had paused for
        # longer than Crossref keeps cursors (five minutes)
        pages["crossref"] += 1
        if pages["crossref"] == 2:
            crossref.expire_cursors()
        return False

    with capture_logs() as logs:
        results = {
            name: app.harvest(
                topic, name, should_stop=expire_after_second_page if name == "crossref" else bool
            )
            for name in app.usable_sources(topic)
        }
    for name, result in results.items():
        assert result.status == "ok", (name, result.error)
    assert sorted(sleeps) == sorted(w for w in waits.values() for _ in range(3))
    statuses = {name: [r.status for r in emu.requests if r.source == name] for name in ALL}
    assert all(s.count(429) == 3 for s in statuses.values()), statuses
    assert statuses["crossref"].count(404) == 1  # the expired cursor, once
    assert [e["event"] for e in logs].count("cursor expired, window restarted") == 1
    # Crossref read its first pages twice; dedup absorbed the repeats
    assert results["crossref"].counts.duplicates > 0
    assert set(stored_provenance(app)) == expected_provenance()
    assert app.repo.count_works() == expected_work_count()


def test_a_source_without_its_key_is_skipped_with_one_warning_and_the_others_go_on(
    make_app: MakeApp, emu: Emulator
) -> None:
    app = make_app(openalex_key=False)
    topic = app.settings.topics[0]
    with capture_logs() as logs:
        results = app.harvest_all([topic]) + app.harvest_all([topic])
    warnings = [e for e in logs if e["log_level"] == "warning" and e.get("source") == "openalex"]
    assert len(warnings) == 1
    assert warnings[0]["set_variable"] == "OPENALEX_API_KEY"  # OpenAlex's documented name
    assert "OPENALEX_API_KEY" in warnings[0]["hint"]
    others = tuple(n for n in ALL if n != "openalex")
    assert sorted({r.source for r in results}) == sorted(others)
    assert all(r.status == "ok" for r in results)
    assert not [r for r in emu.requests if r.source == "openalex"]
    assert set(stored_provenance(app)) == expected_provenance(others)


def test_the_same_study_from_two_sources_is_one_work_with_two_provenances(
    make_app: MakeApp, emu: Emulator
) -> None:
    # The recordings share no DOI, PMID, PMCID or arXiv id across sources (checked over
    # every fixture), so Crossref's description of one recorded PubMed study is derived:
    # a real Crossref item (the recorded PLOS ONE work) given that study's DOI and title.
    # (Crossref often has no abstract: a study whose title alone satisfies the query.)
    query = parse_query(QUERY)
    study = next(
        r
        for r in recorded_records("pubmed")
        if r.ids.doi and query.match(Record(source="crossref", title=r.title)) is not None
    )
    recorded = json.loads(
        (require_shared() / "crossref/works_doi_10.1371_journal.pone.0033693.json").read_text()
    )["message"]
    derived = {**recorded, "DOI": study.ids.doi.upper(), "title": [study.title]}  # type: ignore[union-attr]
    crossref = emu.source("crossref")
    assert isinstance(crossref, CrossrefRoutes)
    crossref.corpus = (derived, *crossref.corpus)

    app = make_app(sources=("pubmed", "crossref"))
    results = app.harvest_all(app.settings.topics)
    assert [r.status for r in results] == ["ok", "ok"]
    (work,) = [w for w in app.repo.works("everywhere") if w.record.ids.doi == study.ids.doi]
    assert work.sources == ("crossref", "pubmed")
    assert work.record.ids.pmid == study.ids.pmid  # merged: PubMed's PMID on the one work
    stored = stored_provenance(app)
    assert ("crossref", study.ids.doi) in stored and ("pubmed", study.source_id) in stored
    assert app.repo.count_works() == app.repo.count_provenance() - 1
    assert app.repo.count_topic_hits() == app.repo.count_works()


# --- every recorded response parses to schema-valid Records ----------------------------------

# Recorded responses that are not result pages a connector reads; each must raise ParseError
# whose message says why (the reason below is a substring of it).
NOT_RECORDS: dict[str, str] = {
    "pubmed/epost_error_invalid_db.xml": "NCBI error: Invalid db name specified",
    "pubmed/esummary_error_no_id.xml": "NCBI error: Neither query_key nor id specified",
    # ESearch answers hold ids, not records: parse_esearch reads them (checked below)
    "pubmed/esearch_no_results_phrase_not_found.xml": "got <eSearchResult>",
    "pubmed/esearch_pubmed_term_biopython.xml": "got <eSearchResult>",
    "pubmed/esearch_pubmed_usehistory.xml": "got <eSearchResult>",
    "pubmed/esearch_pubmed_retmode_json.json": "expected XML, got JSON",
    # ESummary is not used by harvester (EFetch gives the full record)
    "pubmed/esummary_pubmed_2_records.xml": "got <eSummaryResult>",
    # format=dc flattens journal/volume/pages into one string; idlist has no title/abstract
    "europepmc/search_cancer_dublin_core.xml": "Dublin Core",
    "europepmc/search_cancer_idlist.json": "resultType=idlist",
    "crossref/works_400_field_query_not_allowed_on_doi.json": "parameter-not-allowed",
    "crossref/works_400_rows_over_limit.json": "integer-not-valid",
    "crossref/works_404_cursor_invalid.json": "cursor-invalid",
    "crossref/works_doi_404_resource_not_found.txt": "Resource not found.",
    "openalex/work_400_invalid_select_field.json": "OpenAlex error",
    "openalex/works_400_invalid_filter_field.json": "DOESNTEXIST is not a valid field",
    "openalex/works_group_by_type.json": "group_by",
    "semanticscholar/paper_400_unrecognized_field.json": "Unrecognized or unsupported fields",
    "semanticscholar/paper_404_not_found.json": "Paper with id 0 not found",
    "arxiv/query_id_list_malformed_id_error_400.xml": "incorrect id format for abc",
}
_TEXT_FIELDS = (
    "title", "abstract", "venue", "volume", "issue", "pages", "published", "type", "language",
    "url", "source_id", "published_doi",
)  # fmt: skip
_JSON_KEYS = {
    "source", "ids", "abstract_sections", "authors", "year", "other_abstracts", "keywords",
    *_TEXT_FIELDS,
}  # fmt: skip
_ID_SHAPES = {
    "doi": re.compile(r"^10\.\d{4,9}/\S+$"),
    "pmid": re.compile(r"^[1-9]\d*$"),
    "pmcid": re.compile(r"^PMC\d+$"),
    "arxiv": re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})$"),
    "openalex": re.compile(r"^W\d+$"),
    "s2": re.compile(r"^[0-9a-f]{40}$"),
}
_PARTIAL_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
_ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


def _source_for(path: Path) -> str:
    if path.parent.name == "biorxiv":
        return "medrxiv" if path.name.startswith("details_medrxiv") else "biorxiv"
    return path.parent.name


def _optional_text(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() != "")


def schema_problems(data: dict[str, Any], source: str) -> list[str]:
    """What is wrong with one Record.to_json() object against DESIGN.md's Record schema."""
    problems = []
    if set(data) != _JSON_KEYS:
        problems.append(f"keys {sorted(set(data) ^ _JSON_KEYS)}")
        return problems
    if data["source"] != source:
        problems.append(f"source {data['source']!r}")
    ids = data["ids"]
    if not isinstance(ids, dict) or not set(ids) <= set(ID_SCHEMES):
        problems.append(f"ids {ids!r}")
    else:
        problems += [f"ids.{k} {v!r}" for k, v in ids.items() if not _ID_SHAPES[k].match(str(v))]
        if "doi" in ids and ids["doi"] != ids["doi"].lower():
            problems.append("doi not lower case")
    problems += [f"{k} {data[k]!r}" for k in _TEXT_FIELDS if not _optional_text(data[k])]
    year = data["year"]
    if year is not None and (type(year) is not int or not 1000 <= year <= 2100):
        problems.append(f"year {year!r}")
    published = data["published"]
    if published is not None and not _PARTIAL_DATE.match(published):
        problems.append(f"published {published!r}")
    if published is not None and year is not None and int(published[:4]) != year:
        problems.append(f"published {published!r} but year {year!r}")
    for i, author in enumerate(data["authors"]):
        if set(author) == {"collective"}:
            ok = _optional_text(author["collective"]) and author["collective"] is not None
        else:
            ok = set(author) == {"family", "given", "orcid"} and all(
                _optional_text(v) for v in author.values()
            )
            ok = ok and (author["family"] or author["given"]) is not None
            ok = ok and (author["orcid"] is None or bool(_ORCID.match(author["orcid"])))
        if not ok:
            problems.append(f"authors[{i}] {author!r}")
    for i, section in enumerate(
        [*data["abstract_sections"]]
        + [s for other in data["other_abstracts"] for s in other["sections"]]
    ):
        if (
            set(section) != {"label", "text"}
            or not _optional_text(section["label"])
            or not (isinstance(section["text"], str) and section["text"].strip())
        ):
            problems.append(f"section {i} {section!r}")
    if data["abstract_sections"] and data["abstract"] is None:
        problems.append("sections without an abstract")
    for other in data["other_abstracts"]:
        if not (set(other) == {"language", "text", "sections"} and other["text"].strip()):
            problems.append(f"other abstract {other!r}")
    if not all(isinstance(k, str) and k.strip() for k in data["keywords"]):
        problems.append(f"keywords {data['keywords']!r}")
    return problems


def test_every_recorded_response_parses_to_schema_valid_records_or_is_a_known_error() -> None:
    fixtures = require_shared()
    files = sorted(
        p for d in sorted(fixtures.iterdir()) if d.is_dir() for p in d.iterdir() if p.is_file()
    )
    assert {p.parent.name for p in files} == set(SOURCES) - {"medrxiv"}
    parsed, refused = 0, set()
    problems: dict[str, list[str]] = {}
    for path in files:
        name = f"{path.parent.name}/{path.name}"
        source = _source_for(path)
        page = Page(source=source, url=name, body=path.read_bytes())
        if name in NOT_RECORDS:
            with pytest.raises(ParseError, match=re.escape(NOT_RECORDS[name])):
                SOURCES[source].parse(page)
            refused.add(name)
            continue
        result = SOURCES[source].parse(page)
        for record in result.records:
            data = record.to_json()
            json.dumps(data)  # serializable as the JSON line `harvester parse` writes
            if found := schema_problems(data, source):
                problems.setdefault(name, []).extend(found)
        parsed += len(result.records)
        # the one recorded null entry of a batch answer is the only record skipped
        assert len(result.skipped) == (
            name == "semanticscholar/paper_batch_post_with_null_entry.json"
        )
    assert problems == {}
    assert refused == set(NOT_RECORDS)  # the list names no file that is gone
    assert parsed > 4000  # the recordings hold thousands of records; all were checked
    # the ESearch answers refused above are read by the ESearch parser instead
    for name in [n for n in NOT_RECORDS if "/esearch_" in n]:
        search = parse_esearch((fixtures / name).read_bytes(), url=name)
        assert len(search.ids) == search.retmax <= search.count, name
