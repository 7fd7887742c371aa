"""bioRxiv/medRxiv: parsing replayed from the real api.biorxiv.org answers in
../shared/fixtures/biorxiv (see PROVENANCE.md: the interval listing was truncated to 50 of
its 100 items by its collector), and fetching against the emulator serving those items.
Where a test needs a body no recording has, it says how it derives one from a real answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.config.sections import SourceSettings
from harvester.errors import ParseError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.query.syntax import parse_query
from harvester.records import Record
from harvester.sources import SOURCES
from harvester.sources.base import Page, Window
from harvester.sources.biorxiv import BiorxivSource, MedrxivSource, page_info, parse_details
from tests.conftest import Sleeps
from tests.emulator import FIXTURES_DIR, Emulator
from tests.emulator.biorxiv import BiorxivRoutes, load_corpus
from tests.mutation import assert_parses_or_refuses, json_values
from tests.test_arxiv import assert_valid

FIXTURES = FIXTURES_DIR / "biorxiv"
if not FIXTURES.is_dir():
    pytest.skip(f"recorded responses not found at {FIXTURES}", allow_module_level=True)

LISTING = "details_biorxiv_2020-01-01_2022-12-31_cursor0_collection_truncated.json"
MED3 = "details_medrxiv_doi_10.1101_2021.12.11.21267504_3_versions.json"
BIO2 = "details_biorxiv_doi_10.1101_2021.09.30.462652_2_versions.json"
WINDOW = Window(datetime(2020, 1, 1, tzinfo=UTC), datetime(2022, 12, 31, 12, tzinfo=UTC))


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def data(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(body(name))
    return loaded


def records(name: str, source: str = "biorxiv") -> list[Record]:
    result = parse_details(body(name), source=source, url=name)
    assert result.skipped == ()
    return list(result.records)


def all_records() -> list[Record]:
    return [
        r
        for path in sorted(FIXTURES.glob("details_*.json"))
        for r in records(path.name, "medrxiv" if "_medrxiv_" in path.name else "biorxiv")
    ]


# --- golden parses ---------------------------------------------------------------------------


def test_truncated_listing_keeps_the_latest_version_of_each_doi() -> None:
    listed = data(LISTING)["collection"]
    page = records(LISTING)
    assert len(listed) == 50 and len(page) == 40  # 10 DOIs are listed in two versions
    assert len({r.source_id for r in page}) == 40
    twice = {r.source_id: r for r in page}["10.1101/008326"]
    assert twice.url == "https://www.biorxiv.org/content/10.1101/008326v4"
    assert twice.published_doi == "10.1093/bioinformatics/btab717"
    for record in page:
        assert_valid(record)


def test_listing_golden_record() -> None:
    first = records(LISTING)[0]
    assert first.source == "biorxiv" and first.source_id == "10.1101/001768"
    assert first.ids.to_json() == {"doi": "10.1101/001768"}
    assert first.title == (
        "Characterization of cell-to-cell variation in nuclear transport rates and "
        "identification of its sources"
    )
    assert first.abstract is not None
    assert first.abstract.startswith("Nuclear transport is an essential part of eukaryotic")
    assert [(a.family, a.given) for a in first.authors][:5] == [
        ("Durrieu", "L."),
        ("Bush", "A."),
        ("Grande", "A."),
        ("Johansson", "R."),
        ("Janzen", "D. L. I."),
    ]
    assert len(first.authors) == 9 and first.authors[-1].family == "Colman-Lerner"
    assert (first.year, first.published, first.type) == (2022, "2022-06-24", "preprint")
    assert (first.venue, first.keywords) == ("bioRxiv", ("systems biology",))
    assert first.url == "https://www.biorxiv.org/content/10.1101/001768v2"
    assert first.published_doi == "10.1016/j.isci.2022.105906"


def test_listing_messages_are_recorded_as_sent() -> None:
    info = page_info(body(LISTING))
    # count 100 although the collector kept 50 items; total arrives as a string
    assert (info.status, info.count, info.total, info.items) == ("ok", 100, 152918, 50)


def test_na_published_is_no_journal_doi() -> None:
    by_doi = {r.source_id: r for r in records(LISTING)}
    assert by_doi["10.1101/010553"].published_doi is None


def test_medrxiv_three_versions_become_the_latest() -> None:
    (record,) = records(MED3, "medrxiv")
    assert record.source == "medrxiv" and record.venue == "medRxiv"
    assert record.source_id == record.ids.doi == "10.1101/2021.12.11.21267504"
    assert record.published == "2022-04-07"  # version 3's date
    assert record.url == "https://www.medrxiv.org/content/10.1101/2021.12.11.21267504v3"
    assert record.published_doi == "10.1016/j.jbi.2022.104265"
    assert record.keywords == ("pharmacology and therapeutics",)
    assert record.abstract is not None and record.abstract.count("\n\n") == 1  # 2 paragraphs


def test_biorxiv_two_versions_and_single_answers() -> None:
    (two,) = records(BIO2)
    assert two.url is not None and two.url.endswith("v2")
    for record in all_records():
        assert_valid(record)
        assert record.type == "preprint" and record.source_id == record.ids.doi


# --- broken input ----------------------------------------------------------------------------


def _listing_with(edit: Any) -> bytes:
    """The real listing, changed by ``edit(parsed json)``."""
    loaded = data(LISTING)
    edit(loaded)
    return json.dumps(loaded).encode()


def test_broken_items_are_skipped_with_the_reason() -> None:
    # Real items 0-2 of the listing, broken three ways: a wrong type, no DOI, not an object.
    def edit(loaded: dict[str, Any]) -> None:
        items = loaded["collection"]
        items[0]["authors"] = ["Durrieu, L."]
        del items[1]["doi"]
        items[2] = "10.1101/008326"

    result = parse_details(_listing_with(edit))
    reasons = sorted(s.reason for s in result.skipped)
    assert reasons == [
        "item 0: authors is list, expected a string",
        "item 1: missing or invalid doi None",
        "item 2: expected an object, got str",
    ]
    assert result.skipped[0].source_id == "10.1101/001768"
    # 40 DOIs less 001768 and 006965; item 2 was 008326's version 3, and its version 4 stays
    assert len(result.records) == 38


def test_markup_and_entities_in_a_real_item() -> None:
    def edit(loaded: dict[str, Any]) -> None:
        item = loaded["collection"][0]
        item["title"] = "Nuclear <i>transport</i> &amp; rates in H<sub>2</sub>O, p<0.05"
        item["abstract"] = "<p>First &lt;part&gt;.</p>\n\n<p>Second with $n<k$.</p>"

    first = parse_details(_listing_with(edit)).records[0]
    assert first.title == "Nuclear transport & rates in H₂O, p<0.05"
    assert first.abstract == "First <part>.\n\nSecond with $n<k$."


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"[]", b'"ok"', b'{"collection": {"a": 1}}', b"<html>Bad gateway</html>"],
)
def test_unreadable_bodies_are_parse_errors(payload: bytes) -> None:
    with pytest.raises(ParseError):
        parse_details(payload)


def test_truncated_listing_is_a_parse_error() -> None:
    listing = body(LISTING)
    with pytest.raises(ParseError, match="not valid JSON"):
        parse_details(listing[: len(listing) // 2])


def test_end_of_listing_is_zero_records() -> None:
    end = b'{"messages": [{"status": "no posts found"}], "collection": []}'
    assert parse_details(end).records == ()
    assert page_info(end).items == 0


_JSON_VALUES = json_values(text_size=30, key_size=8)
_FIELDS = ["title", "authors", "doi", "date", "version", "category", "abstract", "published",
           "server", "type"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, 49), key=st.sampled_from(_FIELDS), value=_JSON_VALUES)
def test_a_real_item_with_any_value_in_any_field_parses_or_is_skipped(
    index: int, key: str, value: Any
) -> None:
    def edit(loaded: dict[str, Any]) -> None:
        loaded["collection"][index][key] = value

    result = parse_details(_listing_with(edit))
    assert len(result.skipped) <= 1
    for record in result.records:
        assert_valid(record)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from([LISTING, MED3, BIO2]),
    start=st.floats(0, 1),
    length=st.integers(0, 300),
    junk=st.sampled_from(['"', "{", "}", "[", "]", ",", "null", "\\u0000", "<b>", ""])
    | st.text(max_size=10),
)
def test_mutated_real_answers_parse_or_refuse(
    name: str, start: float, length: int, junk: str
) -> None:
    raw = body(name)
    at = int(len(raw) * start)
    mutated = raw[:at] + junk.encode() + raw[at + length :]
    assert_parses_or_refuses(parse_details, mutated, assert_valid)


# --- query -----------------------------------------------------------------------------------


def test_no_search_translation_and_local_evaluation(client: httpx.Client) -> None:
    fetcher = Fetcher(client, RateLimiter())
    for cls in (BiorxivSource, MedrxivSource):
        assert cls(fetcher).translate(parse_query('"peer support" AND depress*')) == ""
    query = parse_query('"natural language processing" OR "language model*"')
    assert [r.source_id for r in all_records() if query.match(r)] == [
        "10.1101/2020.07.11.198606",
        "10.1101/2022.08.02.502236",
        "10.1101/2021.07.13.21260449",
        "10.1101/2021.12.05.21267037",
        "10.1101/2021.12.11.21267504",
    ]
    narrower = parse_query("(psychiatr* OR depress*) AND (language OR speech)")
    assert [r.source_id for r in all_records() if narrower.match(r)] == [
        "10.1101/2021.12.05.21267037"
    ]


def test_registered_both_servers_on_one_pace() -> None:
    assert SOURCES["biorxiv"] is BiorxivSource and SOURCES["medrxiv"] is MedrxivSource
    assert BiorxivSource.rate_key == MedrxivSource.rate_key == "biorxiv"
    assert (BiorxivSource.name, MedrxivSource.name) == ("biorxiv", "medrxiv")


# --- fetching against the emulator -----------------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with build_client(contact="tests@example.org", timeout=5) as c:
        yield c


def _source(
    cls: type[BiorxivSource], emu: Emulator, client: httpx.Client, sleeps: Sleeps
) -> BiorxivSource:
    fetcher = Fetcher(client, RateLimiter(), sleep=sleeps, max_attempts=6)
    return cls.from_settings(SourceSettings(base_url=emu.base_url(cls.name)), fetcher)


def _routes(emu: Emulator, name: str = "biorxiv") -> BiorxivRoutes:
    routes = emu.source(name)
    assert isinstance(routes, BiorxivRoutes)
    return routes


def _ids(pages: list[Page]) -> list[str | None]:
    return [r.source_id for p in pages for r in BiorxivSource.parse(p).records]


@pytest.mark.integration
def test_fetch_every_page_to_the_empty_collection(emu: Emulator, client: httpx.Client) -> None:
    _routes(emu).page_size = 7
    listed = [
        i for i in load_corpus(FIXTURES_DIR)["biorxiv"] if "2020" <= i["date"] <= "2022-12-31"
    ]
    sleeps = Sleeps()

    pages = list(_source(BiorxivSource, emu, client, sleeps).fetch("", WINDOW))

    assert len(listed) == 56  # the listing's 50 and the 6 versions of the per-DOI answers
    assert len(pages) == 9  # 8 pages of up to 7, then the empty collection
    assert [p.cursor for p in pages] == [str(n) for n in range(7, 63, 7)] + [None]
    assert [r.path for r in emu.requests] == [
        f"/biorxiv/details/biorxiv/2020-01-01/2022-12-31/{n}" for n in range(0, 63, 7)
    ]
    # the announced total counts versions, not the records a page keeps: never reported
    assert {p.total for p in pages} == {None}
    assert set(_ids(pages)) == {i["doi"] for i in listed}
    assert sleeps == []


@pytest.mark.integration
def test_a_lying_total_is_not_believed(emu: Emulator, client: httpx.Client) -> None:
    routes = _routes(emu)
    routes.page_size, routes.total_override = 10, 12  # says 12, lists 56
    pages = list(_source(BiorxivSource, emu, client, Sleeps()).fetch("", WINDOW))
    assert {p.total for p in pages} == {None}  # not reported, and paging ignores it
    assert len(pages) == 7 and pages[-1].cursor is None


@pytest.mark.integration
def test_resume_continues_at_the_cursor(emu: Emulator, client: httpx.Client) -> None:
    _routes(emu).page_size = 20
    source = _source(BiorxivSource, emu, client, Sleeps())
    whole = list(source.fetch("", WINDOW))
    emu.clear_requests()
    resumed = list(source.fetch("", WINDOW, resume=whole[0].cursor))
    assert emu.requests[0].path.endswith("/2020-01-01/2022-12-31/20")
    assert [p.body for p in resumed] == [p.body for p in whole[1:]]


@pytest.mark.integration
def test_medrxiv_lists_its_own_server(emu: Emulator, client: httpx.Client) -> None:
    window = Window(datetime(2021, 7, 1, tzinfo=UTC), datetime(2022, 6, 30, tzinfo=UTC))
    pages = list(_source(MedrxivSource, emu, client, Sleeps()).fetch("", window))

    assert [r.path for r in emu.requests] == [
        "/medrxiv/details/medrxiv/2021-07-01/2022-06-30/0",
        "/medrxiv/details/medrxiv/2021-07-01/2022-06-30/5",
    ]
    parsed = [r for p in pages for r in MedrxivSource.parse(p).records]
    assert {r.source for r in parsed} == {"medrxiv"}
    assert {r.venue for r in parsed} == {"medRxiv"}
    # the 3-version DOI's versions all fall in the window: one record, the latest
    assert sorted(r.source_id or "" for r in parsed) == [
        "10.1101/2021.07.13.21260449",
        "10.1101/2021.12.05.21267037",
        "10.1101/2021.12.11.21267504",
    ]


@pytest.mark.integration
def test_a_run_of_429s_is_survived(emu: Emulator, client: httpx.Client) -> None:
    _routes(emu).page_size = 30
    emu.faults.add(source="biorxiv", kind="status", status=429, retry_after=2, times=3)
    sleeps = Sleeps()

    pages = list(_source(BiorxivSource, emu, client, sleeps).fetch("", WINDOW))

    assert sleeps == [2.0, 2.0, 2.0]
    assert [r.status for r in emu.requests] == [429, 429, 429, 200, 200, 200]
    assert len(pages) == 3 and pages[-1].cursor is None
