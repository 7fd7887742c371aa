"""Europe PMC: parsing the recorded search answers, and fetching from the emulator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from harvester.config.sections import SourceSettings
from harvester.errors import ParseError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.query.syntax import parse_query
from harvester.records import Record
from harvester.sources import SOURCES
from harvester.sources.base import ParseResult, Window
from harvester.sources.europepmc import EuropePMCSource, parse_search
from harvester.sources.europepmc.fields import vancouver_author
from tests.conftest import Sleeps, require_shared
from tests.emulator import FIXTURES_DIR, Emulator
from tests.emulator.europepmc import EuropePMCRoutes, load_corpus
from tests.mutation import (
    assert_parses_or_refuses,
    assert_record_contract,
    mutated_json,
    parse_every_recording,
)

TOPIC = (
    '("self-help group*" OR "support group*" OR "peer support" OR forum*) '
    "AND (online OR internet) AND (anxiety OR depress*)"
)


if not (FIXTURES_DIR / "europepmc").is_dir():  # the module reads real pages at import
    pytest.skip(f"recorded responses not found at {FIXTURES_DIR}", allow_module_level=True)


def fixture(name: str) -> bytes:
    return (require_shared() / "europepmc" / name).read_bytes()


def parse(name: str) -> ParseResult:
    return parse_search(fixture(name), url=name)


def assert_schema_valid(record: Record) -> None:
    """The DESIGN.md Record contract: None not "", canonical ids, int year, ISO partial date."""
    assert_record_contract(record)
    for scheme, value in record.to_json()["ids"].items():
        assert value and value == value.strip(), scheme
    if record.ids.doi:
        assert record.ids.doi == record.ids.doi.lower() and record.ids.doi.startswith("10.")


# --- parsing: golden values from the recordings ----------------------------------------------


def test_core_page_golden_values() -> None:
    result = parse("search_cancer_core_abstracts.json")
    assert len(result.records) == 25 and result.skipped == ()
    first = result.records[0]
    assert first.source_id == "MED:39709209"
    assert first.ids.doi == "10.1016/s0140-6736(24)02600-x" and first.ids.pmid == "39709209"
    assert first.title == (
        "Abscopal response in a patient with fibrolamellar hepatocellular carcinoma "
        "following radiotherapy."
    )
    assert [a.display for a in first.authors] == ["Schoenfeld JD", "Haas-Kogan DA", "O'Neill AF"]
    assert first.authors[0].given == "Jonathan D"
    assert (first.venue, first.volume, first.issue, first.pages) == (
        "Lancet (London, England)",
        "404",
        "10471",
        "2603-2604",
    )
    # dateOfPublication "2025 Dec": printPublicationDate's "-01" is padding, not a day.
    assert (first.year, first.published) == (2025, "2025-12")
    assert (first.type, first.language) == ("journal-article", "en")
    assert first.url == "https://europepmc.org/article/MED/39709209"
    assert result.records[1].type == "erratum"  # pubType "Published Erratum"
    for record in result.records:
        assert_schema_valid(record)


def test_structured_abstract_becomes_labelled_sections() -> None:
    record = next(
        r
        for r in parse("search_cancer_core_abstracts.json").records
        if r.source_id == "MED:40464630"
    )
    assert [s.label for s in record.abstract_sections] == [
        "Background",
        "Methods",
        "Results",
        "Conclusion",
    ]
    assert record.abstract_sections[0].text == (
        "Patients with cancer suffer from cancer- and treatment-specific, psychosocial and "
        "care-related stress and mental disturbances."
    )
    assert record.abstract is not None and record.abstract.startswith("Background: Patients")
    assert record.type == "review"


def test_plain_abstract_is_one_section_and_inline_markup_is_removed() -> None:
    records = {r.source_id: r for r in parse("search_cancer_core_abstracts.json").records}
    plain = records["MED:40516981"]
    assert len(plain.abstract_sections) == 1 and plain.abstract_sections[0].label is None
    assert plain.abstract_sections[0].text.startswith("The management of prostate cancer")
    sulfide = records["MED:40511629"]  # "Hydrogen sulfide (H<sub>2</sub>S)"
    assert sulfide.abstract is not None and "Hydrogen sulfide (H₂S)" in sulfide.abstract
    assert "<" not in sulfide.abstract


def test_orcids_and_keywords() -> None:
    records = {r.source_id: r for r in parse("search_cancer_core_abstracts.json").records}
    act = records["MED:40468710"]
    orcids = {a.family: a.orcid for a in act.authors if a.orcid}
    assert orcids == {"Al-Abbadey": "0000-0002-6307-9196", "McCracken": "0000-0002-9734-0153"}
    assert act.keywords[:2] == ("Cancer", "Acceptance And Commitment Therapy")
    screening = records["MED:40437959"]  # author keywords, then MeSH descriptors
    assert screening.keywords[:2] == ("Chinese", "Cancer Screening")
    assert {"Humans", "Neoplasms"} <= set(screening.keywords)


def test_lite_pages_preprints_and_pmc_records() -> None:
    records = {r.source_id: r for r in parse("search_cancer_pagesize100_cursor_page1.json").records}
    assert len(records) == 100
    preprint = records["PPR:PPR1036674"]
    assert preprint.type == "preprint" and preprint.venue == "medRxiv"
    assert preprint.ids.doi == "10.1101/2025.06.13.25329599"
    assert preprint.url == "https://europepmc.org/article/PPR/PPR1036674"
    pmc = records["PMC:PMC12175493"]
    assert pmc.ids.pmcid == "PMC12175493" and pmc.type == "review"
    lite = parse("search_cancer_lite_page1.json").records[0]
    # lite: authors from authorString (Vancouver), no abstract
    assert [(a.family, a.given) for a in lite.authors][:2] == [
        ("Schoenfeld", "JD"),
        ("Haas-Kogan", "DA"),
    ]
    assert lite.abstract is None and lite.venue == "Lancet"


def test_lite_xml_gives_the_same_records_as_lite_json() -> None:
    # The two recordings answer the same request (query=cancer, lite, first page) in XML
    # and in JSON.
    xml = parse("search_cancer_lite.xml")
    assert len(xml.records) == 25
    assert xml.records == parse("search_cancer_lite_page1.json").records


# --- lite authorString: long and non-ASCII initials, groups (issue 11.4) ---------------------

LITE_PAGES = (
    "search_cancer_lite_page1.json",
    "search_cancer_lite.xml",
    "search_cancer_pagesize100_cursor_page1.json",
    "search_cancer_pagesize100_cursor_page2.json",
)


def _record_by_author_string(name: str, part: str) -> tuple[Record, str]:
    data = json.loads(fixture(name))
    [result] = [r for r in data["resultList"]["result"] if part in (r.get("authorString") or "")]
    [record] = [
        r for r in parse(name).records if r.source_id == f"{result['source']}:{result['id']}"
    ]
    return record, result["authorString"]


def test_lite_author_strings_keep_long_initials_with_the_family_name() -> None:
    record, text = _record_by_author_string(
        "search_cancer_pagesize100_cursor_page2.json", "van Gelder MMHJ"
    )
    names = [(a.family, a.given, a.collective) for a in record.authors]
    assert len(names) == len(text.rstrip(".").split(","))  # one author per name
    assert ("van Gelder", "MMHJ", None) in names
    assert ("Hermens", "RPMG", None) in names
    assert ("van Bommel", "MHD", None) in names
    assert (None, None, "TUBA-WISP II consortium") in names  # a group, not "consortium, TUBA-WISP"
    record, _ = _record_by_author_string("search_cancer_pagesize100_cursor_page1.json", "Bos MEMM")
    assert ("Bos", "MEMM", None) in [(a.family, a.given, a.collective) for a in record.authors]
    record, _ = _record_by_author_string("search_cancer_pagesize100_cursor_page1.json", "Tseng H-")
    assert ("Tseng", "H") in [(a.family, a.given) for a in record.authors]


def test_lite_author_string_group_names_are_collective_authors() -> None:
    name = "Genitourinary Oncology Committee of Chinese Anti-cancer Association"
    record, _ = _record_by_author_string("search_cancer_pagesize100_cursor_page1.json", name)
    assert [a.to_json() for a in record.authors] == [{"collective": name}]


@pytest.mark.parametrize("name", LITE_PAGES)
def test_every_lite_author_is_a_family_name_with_initials_or_a_group(name: str) -> None:
    # Every name of these real lite pages is "Family INITIALS" or a group: no initials read as
    # a family name, no family name read as initials.
    authors = [a for r in parse(name).records for a in r.authors]
    assert len(authors) > 20
    for author in authors:
        if author.collective is not None:
            assert author.family is None and author.given is None
            continue
        assert author.family and author.given, author
        assert author.given.replace("-", "").isupper(), author
        assert not author.family.islower(), author  # not "consortium" or a lone particle


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # issue 11.4's examples
        ("de Miranda NFCC", ("de Miranda", "NFCC", None)),
        ("Rodríguez-Perea Á", ("Rodríguez-Perea", "Á", None)),
        ("van Gelder MMHJ", ("van Gelder", "MMHJ", None)),
        ("Şen Ş", ("Şen", "Ş", None)),
        ("Editorial Office", (None, None, "Editorial Office")),
        ("TUBA-WISP II consortium", (None, None, "TUBA-WISP II consortium")),
        ("ESMO Guidelines Working Group", (None, None, "ESMO Guidelines Working Group")),
        (
            "American Cancer Society Association",
            (None, None, "American Cancer Society Association"),
        ),
        # the lite page's own
        ("Öztürk Fincan GS", ("Öztürk Fincan", "GS", None)),
        ("O'Neill AF", ("O'Neill", "AF", None)),
        ("Van der Meer L", ("Van der Meer", "L", None)),
        # a one-word family name that happens to be a group word is still a person
        ("Board A", ("Board", "A", None)),
        ("Smith JA Jr", ("Smith", "JA", None)),
    ],
)
def test_vancouver_author(name: str, expected: tuple[str | None, ...]) -> None:
    author = vancouver_author(name)
    assert author is not None
    assert (author.family, author.given, author.collective) == expected
    assert vancouver_author(" et al. ") is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("search_cancer_idlist.json", "resultType=idlist has identifiers only"),
        ("search_cancer_dublin_core.xml", "Dublin Core"),
    ],
)
def test_idlist_and_dublin_core_are_refused_with_a_clear_message(name: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(name)


def test_every_recorded_file_parses_or_raises_parse_error() -> None:
    recordings = require_shared() / "europepmc"
    assert len(list(recordings.iterdir())) >= 8
    assert parse_every_recording(recordings, parse_search, assert_schema_valid) == 6


def test_no_results_page() -> None:
    assert parse("search_no_results.json") == ParseResult(records=())


def test_one_broken_record_is_skipped_and_the_page_kept() -> None:
    # Derived from the real core page: record 3's authorList.author made a string,
    # record 5's title an object, record 7 replaced by a bare string.
    data = json.loads(fixture("search_cancer_core_abstracts.json"))
    results = data["resultList"]["result"]
    results[2]["authorList"]["author"] = "Al-Abbadey M"
    results[4]["title"] = {"text": "x"}
    results[6] = "garbage"
    result = parse_search(json.dumps(data).encode())
    assert len(result.records) == 22
    reasons = {s.source_id: s.reason for s in result.skipped}
    assert reasons["MED:40468710"] == "authorList.author is a str, expected a list"
    assert reasons["MED:40493882"] == "title is a dict, expected text"
    assert reasons[None] == "result #7 is a str, not an object"


def test_entities_and_stray_markup_in_titles() -> None:
    data = json.loads(fixture("search_cancer_lite_page1.json"))
    data["resultList"]["result"][0]["title"] = "Tumour &amp; <i>in vivo</i> p<0.05 &lt;b&gt;"
    record = parse_search(json.dumps(data).encode()).records[0]
    assert record.title == "Tumour & in vivo p<0.05 <b>"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "6.9", "hitCount": 3, "resultList": {"res', "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"errCode": 400, "errMsg": "Invalid query"}', "no resultList: Invalid query"),
        (b'{"resultList": {"result": "none"}}', "resultList.result is a str"),
        (b"<responseWrapper><hitCount>1", "malformed or truncated XML"),
    ],
)
def test_unreadable_pages_raise_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_search(body)


# --- property-based: mutated real records ----------------------------------------------------

_CORE = json.loads((FIXTURES_DIR / "europepmc" / "search_cancer_core_abstracts.json").read_text())
_LITE = json.loads((FIXTURES_DIR / "europepmc" / "search_cancer_lite_page1.json").read_text())
_SWAPS: list[Any] = [None, "", "text", 7, 2.5, True, [], ["x"], {}, {"a": "b"}]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutated_json(
        [_CORE, _LITE], values=st.sampled_from(_SWAPS), max_edits=6, truncate=st.booleans()
    )
)
def test_mutated_pages_give_parse_error_or_valid_records(body: bytes) -> None:
    assert_parses_or_refuses(parse_search, body, assert_schema_valid)


# --- query and local evaluation --------------------------------------------------------------


def test_topic_query_translation() -> None:
    with httpx.Client() as client:
        source = EuropePMCSource(Fetcher(client, RateLimiter()))
    term = source.translate(parse_query(TOPIC))
    assert term.startswith(
        '(((TITLE_ABS:"self help" AND TITLE_ABS:group*) OR (KW:"self help" AND KW:group*))'
    )
    assert '(TITLE_ABS:"peer support" OR KW:"peer support")' in term
    assert "(TITLE_ABS:forum* OR KW:forum*)" in term
    assert "(TITLE_ABS:depress* OR KW:depress*)" in term
    window = Window(datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 19, 8, tzinfo=UTC))
    assert source.search_query("x", window) == "(x) AND FIRST_IDATE:[2025-06-01 TO 2025-06-19]"


def test_local_evaluation_on_parsed_records() -> None:
    records = parse("search_cancer_core_abstracts.json").records
    query = parse_query("(anxiety OR depress*) AND cancer")
    matched = {r.source_id for r in records if query.match(r) is not None}
    assert "MED:40464630" in matched  # "anxiety and depression" in its Results section
    assert "MED:39709209" not in matched  # the Lancet case report: no abstract
    assert 0 < len(matched) < len(records)
    assert parse_query(TOPIC).match(records[3]) is None


# --- fetching from the emulator --------------------------------------------------------------


@pytest.fixture
def fetcher(sleeps: Sleeps) -> Iterator[Fetcher]:
    with build_client(contact="tests@example.org", timeout=5) as client:
        yield Fetcher(client, RateLimiter(), sleep=sleeps)


def make_source(emu: Emulator, fetcher: Fetcher, **settings: Any) -> EuropePMCSource:
    config = SourceSettings(base_url=emu.base_url("europepmc"), email="tests@example.org")
    return EuropePMCSource.from_settings(config.model_copy(update=settings), fetcher)


JUNE_2025 = Window(datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 30, tzinfo=UTC))


@pytest.mark.integration
@pytest.mark.parametrize("end", ["same", "absent"])
def test_fetch_pages_through_the_window_to_the_cursor_end(
    emu: Emulator, fetcher: Fetcher, end: str
) -> None:
    routes = emu.source("europepmc")
    assert isinstance(routes, EuropePMCRoutes)
    routes.end = "same" if end == "same" else "absent"
    in_june = [r for r in load_corpus(FIXTURES_DIR)["core"] if r["firstIndexDate"] >= "2025-06"]
    source = make_source(emu, fetcher, page_size=5)
    pages = list(source.fetch("cancer", JUNE_2025))
    assert len(in_june) == 16
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert {p.total for p in pages} == {16}
    assert all(p.cursor for p in pages[:-1])
    # "absent": the last page says it is the last; "same": only the next answer can tell,
    # so the last page's cursor resumes into that (empty) answer.
    assert (pages[-1].cursor is None) == (end == "absent")
    ids = [r.source_id for p in pages for r in source.parse(p).records]
    assert ids == [f"{r['source']}:{r['id']}" for r in in_june]
    first = emu.requests[0].params
    assert first["query"] == "(cancer) AND FIRST_IDATE:[2025-06-01 TO 2025-06-30]"
    assert (first["resultType"], first["format"], first["cursorMark"]) == ("core", "json", "*")
    assert first["email"] == "tests@example.org" and first["pageSize"] == "5"
    # "same": one more request sees the repeated cursor; "absent": the last page says it.
    assert len(emu.requests) == (5 if end == "same" else 4)


@pytest.mark.integration
def test_fetch_resumes_from_a_page_cursor(emu: Emulator, fetcher: Fetcher) -> None:
    source = make_source(emu, fetcher, page_size=5)
    first = next(iter(source.fetch("cancer", JUNE_2025)))
    rest = list(source.fetch("cancer", JUNE_2025, resume=first.cursor))
    assert [p.number for p in rest] == [1, 2, 3]
    assert sum(len(source.parse(p).records) for p in rest) == 11


@pytest.mark.integration
def test_fetch_survives_a_run_of_429s(emu: Emulator, fetcher: Fetcher, sleeps: Sleeps) -> None:
    emu.faults.add(source="europepmc", kind="status", status=429, retry_after=2, times=3)
    source = make_source(emu, fetcher, page_size=10)
    with capture_logs() as logs:
        pages = list(source.fetch("cancer", JUNE_2025))
    assert sum(len(source.parse(p).records) for p in pages) == 16
    assert sleeps == [2.0, 2.0, 2.0]
    assert [e["status"] for e in logs if e["event"] == "request retried"] == [429, 429, 429]


@pytest.mark.integration
def test_an_empty_window_gives_one_empty_page(emu: Emulator, fetcher: Fetcher) -> None:
    window = Window(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    source = make_source(emu, fetcher)
    pages = list(source.fetch("cancer", window))
    assert [(p.total, p.cursor) for p in pages] == [(0, None)]
    assert source.parse(pages[0]).records == ()


def test_registry_and_rate() -> None:
    assert SOURCES["europepmc"] is EuropePMCSource
    assert EuropePMCSource.rate(SourceSettings()) == pytest.approx(500 / 60)
    assert EuropePMCSource.rate(SourceSettings(requests_per_second=2)) == 2
