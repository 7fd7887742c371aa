"""arXiv: parsing replayed from the real Atom feeds in ../shared/fixtures/arxiv (see
PROVENANCE.md there), and fetching against the emulator, which serves those same entries.
Where a test needs a body no recording has (markup, a broken entry, an entity bomb), it says
how it derives one from a real feed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from structlog.testing import capture_logs

from harvester.config.sections import SourceSettings
from harvester.errors import ParseError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.query.syntax import parse_query
from harvester.records import Record
from harvester.sources import SOURCES
from harvester.sources.arxiv import ArxivSource, feed_info, parse_feed
from harvester.sources.base import ParseResult, Window
from harvester.text.identifiers import normalize_arxiv, normalize_doi, normalize_orcid
from tests.conftest import Sleeps
from tests.emulator import FIXTURES_DIR, Emulator
from tests.emulator.arxiv import ArxivRoutes, load_corpus

FIXTURES = FIXTURES_DIR / "arxiv"
if not FIXTURES.is_dir():
    pytest.skip(f"recorded responses not found at {FIXTURES}", allow_module_level=True)

PAGE0 = "query_all_testing_start0_max10.xml"
PAGE1 = "query_all_testing_start10_max10.xml"
OLD = "query_au_del_maestro_2016_format.xml"
TOPIC = (
    '("self-help group*" OR "support group*" OR "peer support" OR forum*) '
    "AND (online OR internet) AND (anxiety OR depress*)"
)
EVERYTHING = Window(datetime(1990, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
_PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def records(name: str) -> list[Record]:
    result = parse_feed(body(name), url=name)
    assert result.skipped == ()
    return list(result.records)


def edited(name: str, edit: Any) -> bytes:
    """A real feed, parsed, changed by ``edit(root)`` and serialized again."""
    root = etree.fromstring(body(name), etree.XMLParser(resolve_entities=False, no_network=True))
    edit(root)
    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return result


def assert_valid(record: Record) -> None:
    """The DESIGN.md record schema: no empty strings, canonical ids, integer year, ISO dates."""
    data = record.to_json()
    assert Record.from_json(data) == record
    for key in ("title", "abstract", "venue", "volume", "issue", "pages", "language", "url"):
        assert data[key] is None or (isinstance(data[key], str) and data[key].strip())
    canonical = {"doi": normalize_doi, "arxiv": normalize_arxiv}
    for scheme, value in record.ids.items():
        assert value and (scheme not in canonical or canonical[scheme](value) == value)
    assert record.published_doi is None or normalize_doi(record.published_doi) == (
        record.published_doi
    )
    assert record.year is None or (isinstance(record.year, int) and 1000 <= record.year <= 9999)
    assert record.published is None or _PARTIAL_DATE.match(record.published)
    for author in record.authors:
        assert author.collective or author.family or author.given
        assert author.orcid is None or normalize_orcid(author.orcid) == author.orcid
    assert all(k and k.strip() == k for k in record.keywords)


def assert_parses_or_refuses(result: ParseResult | None) -> None:
    if result is not None:
        for record in result.records:
            assert_valid(record)


# --- golden parses ---------------------------------------------------------------------------


def test_first_page_golden_record() -> None:
    page = records(PAGE0)
    assert len(page) == 10
    first = page[0]
    assert first.source == "arxiv" and first.source_id == "2202.12139"
    assert first.ids.to_json() == {"doi": "10.48550/arxiv.2202.12139", "arxiv": "2202.12139"}
    assert first.title == (
        "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    )
    assert first.abstract is not None
    assert first.abstract.startswith("Deep Learning (DL) has revolutionized the capabilities")
    assert first.abstract.endswith("and discuss its results.")
    assert [(a.family, a.given) for a in first.authors] == [
        ("Ahuja", "Mohit Kumar"),
        ("Gotlieb", "Arnaud"),
        ("Spieker", "Helge"),
    ]
    assert (first.year, first.published, first.type) == (2022, "2022-02-24", "preprint")
    assert first.keywords == ("cs.SE", "cs.LG")
    assert first.url == "https://arxiv.org/abs/2202.12139v1"
    # the journal version's DOI is kept apart from the preprint's own ids
    assert first.published_doi == "10.1109/icstw55395.2022.00035"
    assert first.venue is None  # arxiv:journal_ref is a citation of that version, not kept
    for record in page:
        assert_valid(record)


def test_totals_are_what_the_feed_says() -> None:
    assert feed_info(body(PAGE0)).total == 214881
    info = feed_info(body(PAGE1))
    assert (info.total, info.start, info.entries) == (214881, 10, 10)
    assert feed_info(body(OLD)).total == 31


def test_second_page_keeps_latex_and_versionless_ids() -> None:
    by_id = {r.source_id: r for r in records(PAGE1)}
    assert len(by_id) == 10
    sample = by_id["2403.16981"]
    assert sample.url == "https://arxiv.org/abs/2403.16981v2"
    assert sample.published_doi is None
    assert sample.abstract is not None and "$0 \\le α, β\\le 1/8$" in sample.abstract
    assert sample.keywords == ("math.ST", "cs.IT", "stat.ML")


def test_2016_feed_with_old_ids_and_wrapped_text() -> None:
    page = records(OLD)
    assert len(page) == 10
    old = next(r for r in page if r.source_id == "cond-mat/0412498")
    assert old.ids.doi == "10.48550/arxiv.cond-mat/0412498"
    assert old.published_doi == "10.1103/physrevb.71.184511"
    assert old.url == "http://arxiv.org/abs/cond-mat/0412498v1"
    assert old.abstract is not None and "\n" not in old.abstract
    assert old.abstract.startswith("We present the theory of the effect of thermal")
    assert '"p x p" density wave ordering on the square lattice (p >= 3, integer)' in old.abstract
    assert [a.family for a in old.authors] == ["Maestro", "Sachdev"]


def test_title_zero_is_a_title() -> None:
    (record,) = records("query_id_list_2104.12255v1_title_is_0.xml")
    assert record.title == "0"
    assert record.source_id == "2104.12255" and record.published == "2021-04-20"


def test_zero_results_feed_is_zero_records() -> None:
    name = "query_id_list_unknown_id_zero_results.xml"
    assert records(name) == []
    assert feed_info(body(name)).total == 0


def test_error_feed_is_a_parse_error_with_arxivs_message() -> None:
    with pytest.raises(ParseError, match="incorrect id format for abc"):
        parse_feed(body("query_id_list_malformed_id_error_400.xml"))


# --- hostile and broken input ----------------------------------------------------------------


def test_stray_markup_and_entities_are_removed_but_latex_stays() -> None:
    # The real first entry, with markup and a double-escaped entity put into its title.
    def edit(root: Any) -> None:
        title = root.find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title")
        title.text = "<i>Testing</i> &amp; Deep <sub>2</sub> Models for $n<k$"

    first = parse_feed(edited(PAGE0, edit)).records[0]
    assert first.title == "Testing & Deep ₂ Models for $n<k$"


def test_an_entry_without_id_is_skipped_and_the_rest_kept() -> None:
    # The real page with the <id> of its third entry removed.
    def edit(root: Any) -> None:
        entry = root.findall("{http://www.w3.org/2005/Atom}entry")[2]
        entry.remove(entry.find("{http://www.w3.org/2005/Atom}id"))

    result = parse_feed(edited(PAGE0, edit))
    assert len(result.records) == 9
    (skipped,) = result.skipped
    assert skipped.source_id is None and "no arXiv id" in skipped.reason


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.99])
def test_truncated_feed_is_a_parse_error(cut: float) -> None:
    data = body(PAGE0)
    with pytest.raises(ParseError, match="not well-formed"):
        parse_feed(data[: int(len(data) * cut)])


def test_something_else_than_a_feed_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="expected an Atom <feed>"):
        parse_feed(b"<html><body>Rate exceeded.</body></html>")
    with pytest.raises(ParseError):
        parse_feed(b"")


def test_billion_laughs_is_refused_without_expansion() -> None:
    # The real feed header of PAGE0 with a classic entity bomb declared before it and used
    # in the title: expanded, &lol9; would be 10^9 "lol"s (3 GB).
    real = body(PAGE0).decode()
    header, _, rest = real.partition("\n")
    declarations = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    bomb = f"{header}\n<!DOCTYPE feed [{declarations}]>\n{rest}".replace(
        "<title>arXiv Query", "<title>&lol9; arXiv Query", 1
    )
    began = time.perf_counter()
    with pytest.raises(ParseError, match="entity amplification|DOCTYPE"):
        parse_feed(bomb.encode())
    assert time.perf_counter() - began < 1.0
    # A bomb small enough to pass libxml2's amplification guard is refused for its DOCTYPE
    # (and its entities are never expanded: resolve_entities=False).
    small = bomb.replace("&lol9;", "&lol2;", 1)
    with pytest.raises(ParseError, match="DOCTYPE"):
        parse_feed(small.encode())


def test_external_entities_are_not_fetched(tmp_path: Path) -> None:
    # A local file as the external entity: the parser must neither read it nor the network.
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    header, _, rest = body(PAGE0).decode().partition("\n")
    xxe = f'{header}\n<!DOCTYPE feed [<!ENTITY x SYSTEM "file://{secret}">]>\n{rest}'
    xxe = xxe.replace("<title>Testing Deep", "<title>&x; Testing Deep", 1)
    with pytest.raises(ParseError):
        parse_feed(xxe.encode())


_FEEDS = [PAGE0, PAGE1, OLD, "query_id_list_2104.12255v1_title_is_0.xml"]
_JUNK = st.sampled_from(
    ["<", "&", "&amp;", "</entry>", "<entry>", "<i>", "]]>", "\x00", "é", "<id>x</id>", ""]
) | st.text(max_size=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(_FEEDS),
    start=st.floats(0, 1),
    length=st.integers(0, 400),
    junk=_JUNK,
)
def test_mutated_real_feeds_parse_or_refuse(
    name: str, start: float, length: int, junk: str
) -> None:
    data = body(name)
    at = int(len(data) * start)
    mutated = data[:at] + junk.encode("utf-8", "replace") + data[at + length :]
    try:
        result = parse_feed(mutated)
    except ParseError:
        result = None
    assert_parses_or_refuses(result)


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(0, 9),
    tag=st.sampled_from(["id", "title", "summary", "published", "author", "category", "link"]),
    text=st.text(max_size=40),
)
def test_real_entries_with_a_field_replaced_parse_or_skip(index: int, tag: str, text: str) -> None:
    # One field of one real entry replaced by arbitrary text (XML-escaped, so well-formed).
    cleaned = "".join(ch for ch in text if ch.isprintable())

    def edit(root: Any) -> None:
        entry = root.findall("{http://www.w3.org/2005/Atom}entry")[index]
        for element in entry.findall("{http://www.w3.org/2005/Atom}" + tag):
            for child in list(element):
                element.remove(child)
            element.text = cleaned
            element.attrib.clear()

    result = parse_feed(edited(PAGE0, edit))
    assert len(result.records) + len(result.skipped) == 10
    assert_parses_or_refuses(result)


# --- query -----------------------------------------------------------------------------------


def test_topic_query_translation_and_window(client: httpx.Client) -> None:
    source = ArxivSource(_fetcher(Sleeps(), client))
    term = source.translate(parse_query(TOPIC))
    assert term == (
        '(all:"self-help group" OR all:"support group" OR all:"peer support" OR all:forum)'
        " AND (all:online OR all:internet) AND (all:anxiety OR all:depress)"
    )
    window = Window(
        datetime(2025, 1, 8, 5, 30, tzinfo=UTC), datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    )
    assert source.search_query(term, window) == (
        f"({term}) AND submittedDate:[202501080530 TO 202501151200]"
    )
    assert source.search_query("", window) == "submittedDate:[202501080530 TO 202501151200]"


def test_local_evaluation_picks_the_matching_fixture_records() -> None:
    query = parse_query("(mutation OR metamorphic) AND test*")
    pool = [r for name in (PAGE0, PAGE1, OLD) for r in records(name)]
    assert [r.source_id for r in pool if query.match(r)] == [
        "2202.12139",
        "2301.05651",
        "2301.13615",
        "2407.18756",
    ]


def test_registered_with_the_arxiv_pace(client: httpx.Client) -> None:
    assert SOURCES["arxiv"] is ArxivSource
    assert ArxivSource.rate(SourceSettings()) == pytest.approx(1 / 3)
    assert ArxivSource.rate_key == "arxiv"
    fetcher = _fetcher(Sleeps(), client)
    configured = ArxivSource.from_settings(SourceSettings(page_size=5000), fetcher)
    assert (configured.base_url, configured.page_size) == ("https://export.arxiv.org/api", 2000)


# --- fetching against the emulator -----------------------------------------------------------


def _fetcher(sleeps: Sleeps, client: httpx.Client) -> Fetcher:
    return Fetcher(client, RateLimiter(), sleep=sleeps, max_attempts=6)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with build_client(contact="tests@example.org", timeout=5) as c:
        yield c


def _source(
    emu: Emulator, client: httpx.Client, sleeps: Sleeps, *, page_size: int = 4
) -> ArxivSource:
    # the same injected sleep for the fetcher's retries and the empty-page retries
    fetcher = _fetcher(sleeps, client)
    return ArxivSource(fetcher, base_url=emu.base_url("arxiv"), page_size=page_size, sleep=sleeps)


def _routes(emu: Emulator) -> ArxivRoutes:
    routes = emu.source("arxiv")
    assert isinstance(routes, ArxivRoutes)
    return routes


@pytest.mark.integration
def test_fetch_pages_to_the_end_oldest_first(emu: Emulator, client: httpx.Client) -> None:
    corpus = load_corpus(FIXTURES_DIR)
    assert len(corpus) == 31  # 10 + 10 + 10 + 1 recorded papers, error entry excluded
    sleeps = Sleeps()

    pages = list(_source(emu, client, sleeps).fetch("all:testing", EVERYTHING))

    assert len(pages) == 8  # 31 entries, 4 a page
    assert [p.cursor for p in pages] == [str(n) for n in range(4, 32, 4)] + [None]
    assert {p.total for p in pages} == {31}
    ids = [r.source_id for p in pages for r in ArxivSource.parse(p).records]
    assert ids == [e.arxiv_id for e in corpus]
    first = emu.requests[0].params
    assert first["search_query"] == "(all:testing) AND submittedDate:[199001010000 TO 203001010000]"
    assert (first["sortBy"], first["sortOrder"], first["max_results"]) == (
        "submittedDate",
        "ascending",
        "4",
    )
    assert [r.params["start"] for r in emu.requests] == [str(n) for n in range(0, 32, 4)]
    assert sleeps == []


@pytest.mark.integration
def test_fetch_window_and_resume(emu: Emulator, client: httpx.Client) -> None:
    window = Window(datetime(2020, 1, 1, tzinfo=UTC), datetime(2023, 1, 31, tzinfo=UTC))
    source = _source(emu, client, Sleeps(), page_size=2)
    pages = list(source.fetch("", window))
    ids = [r.source_id for p in pages for r in source.parse(p).records]
    # 2301.13615 was submitted at 13:17 on 2023-01-31, after the window's end at 00:00
    assert ids == ["2004.03322", "2005.14124", "2104.12255", "2202.06271", "2202.12139",
                   "2204.08348", "2301.05651"]  # fmt: skip

    resumed = list(source.fetch("", window, resume=pages[0].cursor))
    assert [r.source_id for p in resumed for r in source.parse(p).records] == ids[2:]


@pytest.mark.integration
def test_unexpectedly_empty_pages_are_retried(emu: Emulator, client: httpx.Client) -> None:
    _routes(emu).empty_pages = 2
    sleeps = Sleeps()
    with capture_logs() as logs:
        pages = list(_source(emu, client, sleeps, page_size=10).fetch("", EVERYTHING))

    records_ = [r for p in pages for r in ArxivSource.parse(p).records]
    assert len(records_) == 31 and len(pages) == 4
    assert sleeps == [3.0, 6.0]  # the empty-page retries, with the injected sleep
    assert [r.params["start"] for r in emu.requests] == ["0", "0", "0", "10", "20", "30"]
    assert sum(e["event"] == "empty page retried" for e in logs) == 2


@pytest.mark.integration
def test_an_empty_page_that_persists_is_believed(emu: Emulator, client: httpx.Client) -> None:
    _routes(emu).empty_pages = 10
    sleeps = Sleeps()
    source = _source(emu, client, sleeps, page_size=10)
    with capture_logs() as logs:
        pages = list(source.fetch("", EVERYTHING))

    assert len(pages) == 1 and pages[0].cursor is None and pages[0].total == 31
    assert len(emu.requests) == source.empty_page_retries + 1
    assert any(e["event"] == "empty page believed" for e in logs)


@pytest.mark.integration
def test_a_run_of_429s_is_survived(emu: Emulator, client: httpx.Client) -> None:
    emu.faults.add(source="arxiv", kind="status", status=429, retry_after=3, times=4)
    sleeps = Sleeps()

    pages = list(_source(emu, client, sleeps, page_size=16).fetch("", EVERYTHING))

    assert sum(len(ArxivSource.parse(p).records) for p in pages) == 31
    assert sleeps == [3.0, 3.0, 3.0, 3.0]  # Retry-After honoured, nothing slept for real
    assert [r.status for r in emu.requests] == [429, 429, 429, 429, 200, 200]


@pytest.mark.integration
def test_an_error_answer_is_a_fetch_error(emu: Emulator, client: httpx.Client) -> None:
    from harvester.errors import FetchError

    emu.faults.add(
        source="arxiv",
        kind="body",
        status=400,
        fixture="arxiv/query_id_list_malformed_id_error_400.xml",
    )
    with pytest.raises(FetchError, match="HTTP 400") as raised:
        list(_source(emu, client, Sleeps()).fetch("", EVERYTHING))
    assert raised.value.status == 400
