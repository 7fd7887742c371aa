"""Crossref: parsing the recorded /works answers, and fetching from the emulator."""

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
from harvester.errors import FetchError, ParseError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.query.syntax import parse_query
from harvester.records import Record, Section
from harvester.sources import SOURCES
from harvester.sources.base import ParseResult, Window
from harvester.sources.crossref import CrossrefSource, parse_works
from harvester.sources.crossref.records import is_running_head
from tests.conftest import Sleeps, require_shared
from tests.emulator import FIXTURES_DIR, Emulator
from tests.emulator.crossref import CrossrefRoutes, load_corpus
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


if not (FIXTURES_DIR / "crossref").is_dir():  # the module reads real pages at import
    pytest.skip(f"recorded responses not found at {FIXTURES_DIR}", allow_module_level=True)


def fixture(name: str) -> bytes:
    return (require_shared() / "crossref" / name).read_bytes()


def parse(name: str) -> ParseResult:
    return parse_works(fixture(name), url=name)


def by_doi(name: str) -> dict[str, Record]:
    return {r.ids.doi or "": r for r in parse(name).records}


def assert_schema_valid(record: Record) -> None:
    """The DESIGN.md Record contract: None not "", canonical ids, int year, ISO partial date."""
    assert_record_contract(record)
    assert record.ids.doi is not None and record.ids.doi == record.ids.doi.lower()


# --- parsing: golden values from the recordings ----------------------------------------------


def test_single_work_golden_values() -> None:
    [record] = parse("works_doi_10.1371_journal.pone.0033693.json").records
    assert record.source_id == record.ids.doi == "10.1371/journal.pone.0033693"
    assert record.title == (
        "Methylphenidate Exposure Induces Dopamine Neuron Loss and Activation of Microglia in "
        "the Basal Ganglia of Mice"
    )
    assert [a.display for a in record.authors][:3] == ["Sadasivan S", "Pond BB", "Pani AK"]
    assert (record.venue, record.volume, record.issue, record.pages) == (
        "PLoS ONE",
        "7",
        "3",
        "e33693",
    )
    assert (record.year, record.published, record.type) == (2012, "2012-03-21", "journal-article")
    assert (record.language, record.url) == ("en", "https://doi.org/10.1371/journal.pone.0033693")


def test_work_list_subtitles_partial_dates_and_orcids() -> None:
    records = by_doi("works_query_widget_cursor_page2.json")
    assert len(records) == 20
    widget = records["10.1145/3027385.3027428"]
    assert widget.title == (
        "Widget, widget as you lead, I am performing well indeed!: using results from an "
        "exploratory offline study to inform an empirical online study about a learning "
        "analytics widget in a collaborative learning environment"
    )
    assert widget.type == "proceedings-article" and widget.pages == "289-298"
    assert records["10.21326/ksdt.2008..18.018"].published == "2008-02"  # [[2008, 2]]
    assert records["10.1016/b978-155860700-2/50013-6"].published == "2002"
    assert records["10.1007/978-1-4302-0386-5_8"].published is None  # no date at all
    shiny = records["10.32614/cran.package.shinytime"]
    assert shiny.type == "dataset" and shiny.authors[0].orcid == "0000-0003-1062-5576"
    blog = records["10.59350/895qm-mnq80"]  # posted-content, subtype "other": not a preprint
    assert blog.type == "posted-content" and blog.venue == "Front Matter"
    assert blog.abstract == (
        "In addition to this Swing-based screenshot of JChemPaint , here's a SWT widget in "
        "action (lower right corner):"
    )


# --- running heads deposited as subtitles (issue 11.9) ---------------------------------------

DKA = "Do doctors cause or prevent cerebral edema in children with diabetic ketoacidosis?"


def _wiley_item_with(title: str, subtitle: str) -> bytes:
    """A real Wiley work of a recorded page with the title and subtitle of another Wiley
    work (the one issue 11.9 quotes, whose running head Wiley deposited as its subtitle)."""
    data = json.loads(fixture("works_query_ecology_rows30_cursor_page1.json"))
    [item] = [i for i in data["message"]["items"] if "Wiley" in i.get("publisher", "")][:1]
    item["title"], item["subtitle"] = [title], [subtitle]
    data["message"]["items"] = [item]
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("title", "subtitle", "expected"),
    [
        # a running head that abbreviates the title, after a question: dropped
        (DKA, "Cerebral edema in DKA", DKA),
        # one that abbreviates a title that is no question (stems, an acronym): dropped
        (
            "Cognitive behavioural therapy for insomnia in older adults with diabetes",
            "CBT for insomnia in diabetic adults",
            "Cognitive behavioural therapy for insomnia in older adults with diabetes",
        ),
        # after a question, a subtitle that opens like one stays
        (DKA, "A retrospective cohort study", f"{DKA}: A retrospective cohort study"),
        # a genuine subtitle with words of its own stays
        (
            "Ecological networks",
            "Structure and dynamics of pollination webs",
            "Ecological networks: Structure and dynamics of pollination webs",
        ),
    ],
)
def test_running_heads_are_not_subtitles(title: str, subtitle: str, expected: str) -> None:
    [record] = parse_works(_wiley_item_with(title, subtitle)).records
    assert record.title == expected


def test_real_subtitles_stay() -> None:
    # Every real subtitle of the recorded pages is kept (the widget one is asserted in full
    # in test_work_list_subtitles_partial_dates_and_orcids).
    for path in sorted(FIXTURES_DIR.glob("crossref/*.json")):
        data = json.loads(path.read_bytes())
        message = data.get("message")
        items = message.get("items", []) if isinstance(message, dict) else []
        for item in items:
            subtitle = (item.get("subtitle") or [""])[0]
            title = (item.get("title") or [""])[0]
            if subtitle and title and subtitle.lower() not in title.lower():
                assert not is_running_head(title, subtitle), (path.name, title, subtitle)


def test_jats_abstracts_and_missing_language() -> None:
    records = by_doi("works_query_publisher_name_jats_abstracts.json")
    assert len(records) == 20
    record = records["10.5902/2179460x37440"]
    assert record.abstract_sections == (
        Section(
            label=None,
            text="This paper presents a review of some methods to infer wind components from "
            "airborne radar Doppler data. The methods presented are COPLAN, MANDOP and "
            "CARTESIANO (000, quad-Doppler and EODD). Here are presented the essential bases "
            "of the methods and its advantages and limitations.",
        ),
    )
    assert all(r.language is None for r in records.values())  # "language" absent on every item
    assert sum(r.abstract is not None for r in records.values()) == 19


def test_untitled_item_is_still_a_record() -> None:
    titled, untitled = parse("works_sample_2_one_untitled.json").records
    assert titled.title == "Icônes"  # subtitle [""] adds nothing
    assert untitled.title is None and untitled.type == "journal-issue"
    assert untitled.venue == "Journal of Physical Education and Sport"


def test_structured_jats_abstract_with_sections() -> None:
    # Derived from the real item 10.59350/7mtwq-q3661: its one <jats:p> abstract rewritten
    # in the sectioned JATS shape other publishers deposit.
    data = json.loads(fixture("works_query_widget_cursor_page1.json"))
    item = next(i for i in data["message"]["items"] if i["DOI"] == "10.59350/7mtwq-q3661")
    item["abstract"] = (
        "<jats:title>Abstract</jats:title><jats:sec><jats:title>Background</jats:title>"
        "<jats:p>A <jats:italic>Swing</jats:italic> screenshot &amp; more.</jats:p></jats:sec>"
        "<jats:sec><jats:title>Results:</jats:title><jats:p>An SWT widget.</jats:p></jats:sec>"
    )
    record = next(
        r for r in parse_works(json.dumps(data).encode()).records if r.ids.doi == item["DOI"]
    )
    assert record.abstract_sections == (
        Section(label="Background", text="A Swing screenshot & more."),
        Section(label="Results", text="An SWT widget."),
    )
    assert record.abstract == "Background: A Swing screenshot & more.\n\nResults: An SWT widget."


def test_preprint_with_journal_version_and_collective_author() -> None:
    # Derived from the real posted-content item 10.59350/7mtwq-q3661: made a preprint
    # (subtype "preprint", as bioRxiv deposits) with relation.is-preprint-of and a
    # group author ({"name": ...}).
    data = json.loads(fixture("works_query_widget_cursor_page1.json"))
    item = next(i for i in data["message"]["items"] if i["DOI"] == "10.59350/7mtwq-q3661")
    item["subtype"] = "preprint"
    item["relation"] = {
        "is-preprint-of": [{"id-type": "doi", "id": "10.1000/J.X.1", "asserted-by": "subject"}]
    }
    item["author"].append({"name": "The CDK Consortium", "sequence": "additional"})
    record = next(
        r for r in parse_works(json.dumps(data).encode()).records if r.ids.doi == item["DOI"]
    )
    assert record.type == "preprint" and record.published_doi == "10.1000/j.x.1"
    assert record.authors[-1].collective == "The CDK Consortium"
    assert record.venue == "Front Matter"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("works_400_rows_over_limit.json", "integer-not-valid '200': Integer specified as 200"),
        ("works_400_field_query_not_allowed_on_doi.json", "parameter-not-allowed"),
        ("works_404_cursor_invalid.json", "cursor-invalid 'thing'"),
        ("works_doi_404_resource_not_found.txt", "answered 'Resource not found.'"),
    ],
)
def test_error_bodies_raise_parse_error_with_their_message(name: str, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        parse(name)


def test_every_recorded_file_parses_or_raises_parse_error() -> None:
    recordings = require_shared() / "crossref"
    assert parse_every_recording(recordings, parse_works, assert_schema_valid) == 7


def test_one_broken_item_is_skipped_and_the_page_kept() -> None:
    # Derived from the real page: item 1's author list made a string, item 2's title a
    # number list, item 3's DOI removed.
    data = json.loads(fixture("works_query_widget_cursor_page2.json"))
    items = data["message"]["items"]
    items[0]["author"] = "Maren Scheffel"
    items[1]["title"] = [42]
    del items[2]["DOI"]
    result = parse_works(json.dumps(data).encode())
    assert len(result.records) == 17
    assert [(s.source_id, s.reason) for s in result.skipped] == [
        ("10.1145/3027385.3027428", "author is a str, expected a list"),
        ("10.21326/ksdt.2008..18.018", "title #1 is a int, expected text"),
        (None, "no valid DOI (None)"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"status":"ok","message-type":"work-list","message":{"items":[{"DO', "truncated"),
        (b'{"status":"ok","message":{"items":"none"}}', "message.items is a str"),
        (b'{"status":"ok","message":[]}', "message is a list"),
        (b"<html>Bad gateway</html>", "answered '<html>Bad gateway</html>'"),
    ],
)
def test_unreadable_pages_raise_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_works(body)


# --- property-based: mutated real records ----------------------------------------------------

_PAGES = [
    json.loads((FIXTURES_DIR / "crossref" / name).read_text())
    for name in (
        "works_query_widget_cursor_page1.json",
        "works_query_ecology_rows30_cursor_page1.json",
        "works_sample_2_one_untitled.json",
    )
]
_SWAPS: list[Any] = [None, "", "text", 7, 2.5, True, [], ["x"], [None], {}, {"a": "b"}]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_json(_PAGES, values=st.sampled_from(_SWAPS), max_edits=6, truncate=st.booleans()))
def test_mutated_pages_give_parse_error_or_valid_records(body: bytes) -> None:
    assert_parses_or_refuses(parse_works, body, assert_schema_valid)


# --- query and local evaluation --------------------------------------------------------------


def test_topic_query_translation() -> None:
    with httpx.Client() as client:
        source = CrossrefSource(Fetcher(client, RateLimiter()))
    # Crossref ranks free text: the distinct words of the positive terms, stems bare.
    assert source.translate(parse_query(TOPIC)) == (
        "self-help group support peer forum online internet anxiety depress"
    )


def test_local_evaluation_on_parsed_records() -> None:
    records = parse("works_query_ecology_rows30_cursor_page1.json").records
    query = parse_query('"fire ecology" OR (disease AND infect*)')
    matched = {r.ids.doi for r in records if query.match(r) is not None}
    assert matched == {"10.1093/obo/9780199830060-0026", "10.1093/obo/9780199830060-0128"}
    widgets = parse("works_query_widget_cursor_page2.json").records
    online = parse_query("widget AND online")
    assert [r.ids.doi for r in widgets if online.match(r)] == ["10.1145/3027385.3027428"]


# --- fetching from the emulator --------------------------------------------------------------


@pytest.fixture
def fetcher(sleeps: Sleeps) -> Iterator[Fetcher]:
    with build_client(contact="tests@example.org", timeout=5) as client:
        yield Fetcher(client, RateLimiter(), sleep=sleeps)


def make_source(emu: Emulator, fetcher: Fetcher, **options: Any) -> CrossrefSource:
    config = SourceSettings(base_url=emu.base_url("crossref"), mailto="tests@example.org")
    return CrossrefSource(
        fetcher,
        base_url=config.base_url or "",
        mailto=config.contact,
        rows=options.pop("rows", 10),
        **options,
    )


def routes(emu: Emulator) -> CrossrefRoutes:
    found = emu.source("crossref")
    assert isinstance(found, CrossrefRoutes)
    return found


SPRING_2025 = Window(datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 31, tzinfo=UTC))


def spring_dois() -> list[str]:
    return [
        w["DOI"].lower()
        for w in load_corpus(FIXTURES_DIR)
        if "2025-02-01" <= w["indexed"]["date-time"][:10] <= "2025-03-31"
    ]


@pytest.mark.integration
def test_fetch_pages_with_the_cursor_until_items_are_empty(emu: Emulator, fetcher: Fetcher) -> None:
    source = make_source(emu, fetcher)
    pages = list(source.fetch("widget ecology", SPRING_2025))
    assert len(spring_dois()) == 29
    assert [p.number for p in pages] == [1, 2, 3]
    assert {p.total for p in pages} == {29}
    assert [r.ids.doi for p in pages for r in source.parse(p).records] == spring_dois()
    sent = [r.params for r in emu.requests]
    assert len(sent) == 4  # the fourth answer has no items: the end
    assert sent[0]["cursor"] == "*" and sent[1]["cursor"] == pages[0].cursor
    assert sent[0]["filter"] == "from-index-date:2025-02-01,until-index-date:2025-03-31"
    assert (sent[0]["query.bibliographic"], sent[0]["rows"]) == ("widget ecology", "10")
    assert sent[0]["mailto"] == "tests@example.org"


@pytest.mark.integration
def test_an_expired_cursor_restarts_the_window(emu: Emulator, fetcher: Fetcher) -> None:
    source = make_source(emu, fetcher)
    pages = source.fetch("", SPRING_2025)
    seen = [r.ids.doi for r in source.parse(next(pages)).records]
    routes(emu).expire_cursors()  # as if the harvest had paused for more than five minutes
    with capture_logs() as logs:
        seen += [r.ids.doi for p in pages for r in source.parse(p).records]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "cursor expired, window restarted"
    ]
    assert len(seen) == 39 and set(seen) == set(spring_dois())  # dedup absorbs 10
    assert [r.status for r in emu.requests].count(404) == 1


@pytest.mark.integration
def test_cursors_that_keep_expiring_raise(emu: Emulator, fetcher: Fetcher) -> None:
    source = make_source(emu, fetcher, max_restarts=1)
    pages = source.fetch("", SPRING_2025)
    next(pages)
    routes(emu).expire_cursors()
    next(pages)  # restarted from *
    routes(emu).expire_cursors()
    with pytest.raises(FetchError, match="cursor-invalid") as raised:
        next(pages)
    assert raised.value.status == 404


@pytest.mark.integration
def test_fetch_survives_a_run_of_429s(emu: Emulator, fetcher: Fetcher, sleeps: Sleeps) -> None:
    emu.faults.add(source="crossref", kind="status", status=429, retry_after=1, times=4)
    source = make_source(emu, fetcher, rows=1000)
    with capture_logs() as logs:
        pages = list(source.fetch("", SPRING_2025))
    assert [len(source.parse(p).records) for p in pages] == [29]
    assert sleeps == [1.0, 1.0, 1.0, 1.0]
    assert [e["status"] for e in logs if e["event"] == "request retried"] == [429] * 4


@pytest.mark.integration
def test_rate_follows_the_announced_limit(emu: Emulator, fetcher: Fetcher) -> None:
    routes(emu).rate_limit = 3
    fetcher.limiter.set_rate("crossref", CrossrefSource.RATE_POLITE)
    list(make_source(emu, fetcher, rows=1000).fetch("", SPRING_2025))
    assert fetcher.limiter.rate("crossref") == pytest.approx(3.0)


@pytest.mark.integration
def test_rows_over_the_limit_is_refused_by_the_emulator(emu: Emulator) -> None:
    with httpx.Client(timeout=5) as client:
        answer = client.get(emu.base_url("crossref") + "/works", params={"rows": 1001})
    assert answer.status_code == 400
    with pytest.raises(ParseError, match="integer-not-valid"):
        parse_works(answer.content)


def test_registry_and_rate() -> None:
    assert SOURCES["crossref"] is CrossrefSource
    assert CrossrefSource.rate(SourceSettings()) == 5.0
    assert CrossrefSource.rate(SourceSettings(mailto="a@example.org")) == 10.0
    assert CrossrefSource.rate(SourceSettings(requests_per_second=1)) == 1.0
