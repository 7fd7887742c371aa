"""One unreadable record costs that record, not its page, on every source (issue 18: 18.10,
18.11, 18.5). Each page here is DERIVED from a real recorded page in ../shared/fixtures: one
of its records gets one byte replaced by 0xFF, a 5,000-digit integer, 100,000 nested arrays,
or an abstract repeated past the record size cap. Every other record of the page must come
out as it does from the recording; the damaged one is Skipped with its reason (or, for
nesting no decoder can read, the page is a ParseError: never a raw exception).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from harvester.config import parse_settings
from harvester.errors import ConfigError, ParseError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.sources import SOURCES, source_from_settings
from harvester.sources.arxiv import parse_feed
from harvester.sources.base import MAX_RECORD_BYTES, ParseResult, Skipped, Window, record_size
from harvester.sources.biorxiv import parse_details
from harvester.sources.crossref.records import parse_works as parse_crossref
from harvester.sources.envelope import read_json
from harvester.sources.europepmc.records import parse_search
from harvester.sources.openalex import OpenAlexSource
from harvester.sources.openalex import parse_works as parse_openalex
from harvester.sources.pubmed.cutter import parse_efetch
from harvester.sources.pubmed.esearch import parse_esearch
from harvester.sources.semanticscholar import parse_papers
from tests.emulator import FIXTURES_DIR, Emulator

if not FIXTURES_DIR.is_dir():
    pytest.skip(f"recorded responses not found at {FIXTURES_DIR}", allow_module_level=True)

Parse = Callable[..., ParseResult]


@dataclass(frozen=True)
class JsonPage:
    """A recorded JSON page: where its records are and how each names its title."""

    name: str
    file: str
    parse: Parse
    path: tuple[str, ...]
    title: Callable[[dict[str, Any]], str]
    abstract_key: str


JSON_PAGES = (
    JsonPage(
        "openalex",
        "openalex/works_search_ml_nlp_2020_2022_page1_per_page50.json",
        parse_openalex,
        ("results",),
        lambda w: w["title"],
        "abstract_inverted_index",
    ),
    JsonPage(
        "crossref",
        "crossref/works_query_ecology_rows30_cursor_page1.json",
        parse_crossref,
        ("message", "items"),
        lambda w: w["title"][0],
        "abstract",
    ),
    JsonPage(
        "europepmc",
        "europepmc/search_cancer_core_abstracts.json",
        parse_search,
        ("resultList", "result"),
        lambda w: w["title"],
        "abstractText",
    ),
    JsonPage(
        "europepmc-lite",
        "europepmc/search_cancer_lite_page1.json",
        parse_search,
        ("resultList", "result"),
        lambda w: w["title"],
        "title",
    ),
    JsonPage(
        "semanticscholar",
        "semanticscholar/paper_search_turing_all_fields_with_abstracts.json",
        parse_papers,
        ("data",),
        lambda w: w["title"],
        "abstract",
    ),
    JsonPage(
        "biorxiv",
        "biorxiv/details_biorxiv_2020-01-01_2022-12-31_cursor0_collection_truncated.json",
        parse_details,
        ("collection",),
        lambda w: w["title"],
        "abstract",
    ),
)
BY_NAME = {p.name: p for p in JSON_PAGES}


def recorded(file: str) -> bytes:
    return (FIXTURES_DIR / file).read_bytes()


def items_of(data: Any, path: tuple[str, ...]) -> list[Any]:
    for key in path:
        data = data[key]
    assert isinstance(data, list)
    return data


def ids(result: ParseResult) -> list[str | None]:
    return [r.source_id for r in result.records]


def victim(page: JsonPage, body: bytes) -> tuple[int, str]:
    """The index and parsed source id of the record to damage: the first after the first
    whose title is in no other record and whose id is that of one record only."""
    items = items_of(json.loads(body), page.path)
    whole = page.parse(body)
    for index, item in enumerate(items[1:], 1):
        title = page.title(item)
        single = json.loads(body)
        holder = items_of(single, page.path)
        holder[:] = [item]
        found = page.parse(json.dumps(single).encode()).records
        if (
            len(title) > 8
            and title.isascii()
            and title[:40].encode() in body
            and not any(title[:40] in json.dumps(o) for o in items if o is not item)
            and len(found) == 1
            and ids(whole).count(found[0].source_id) == 1
        ):
            assert found[0].source_id is not None
            return index, found[0].source_id
    raise AssertionError(f"no record of {page.file} to damage")


def assert_only_that_record_skipped(
    whole: ParseResult, damaged: ParseResult, source_id: str, reason: str
) -> Skipped:
    assert ids(damaged) == [i for i in ids(whole) if i != source_id]
    assert len(damaged.records) == len(whole.records) - 1
    assert len(damaged.skipped) == len(whole.skipped) + 1
    new = [s for s in damaged.skipped if s not in whole.skipped]
    assert len(new) == 1, damaged.skipped
    assert re.search(reason, new[0].reason), new[0]
    return new[0]


# --- 18.10: one byte that is not UTF-8 ---------------------------------------------------------


@pytest.mark.parametrize("page", JSON_PAGES, ids=lambda p: p.name)
def test_json_a_byte_that_is_not_utf8_skips_its_record_only(page: JsonPage) -> None:
    body = recorded(page.file)
    whole = page.parse(body)
    index, source_id = victim(page, body)
    title = page.title(items_of(json.loads(body), page.path)[index]).encode()
    at = body.index(title[:40]) + 1
    damaged = body[:at] + b"\xff" + body[at + 1 :]  # one byte of its title replaced by 0xFF
    with pytest.raises(UnicodeDecodeError):
        damaged.decode("utf-8")
    result = page.parse(damaged)
    skipped = assert_only_that_record_skipped(whole, result, source_id, "not UTF-8")
    assert skipped.source_id is not None and source_id in skipped.source_id
    # what was read is text every encoder takes (no lone surrogate reaches a Record)
    json.dumps([r.to_json() for r in result.records], ensure_ascii=False).encode("utf-8")


def test_a_damaged_byte_in_the_id_itself_is_shown_escaped() -> None:
    page = BY_NAME["openalex"]
    body = recorded(page.file)
    index, source_id = victim(page, body)
    work = items_of(json.loads(body), page.path)[index]
    at = body.index(json.dumps(work["display_name"])[1:30].encode())
    # the damaged byte sits in the record's display_name; its id stays readable
    damaged = body[:at] + b"\xfe" + body[at + 1 :]
    result = page.parse(damaged)
    skipped = assert_only_that_record_skipped(page.parse(body), result, source_id, "not UTF-8")
    skipped.reason.encode("utf-8")  # no lone surrogate in what is logged
    assert read_json(damaged, "x").degraded and not read_json(body, "x").degraded


@dataclass(frozen=True)
class XmlPage:
    name: str
    file: str
    parse: Parse
    start: bytes
    title: bytes
    abstract: bytes
    id_of: Callable[[bytes], str]


XML_PAGES = (
    XmlPage(
        "pubmed",
        "pubmed/efetch_pubmed_50_records_structured_abstracts.xml",
        parse_efetch,
        b"<PubmedArticle>",
        b"<ArticleTitle>",
        b"<AbstractText",
        lambda a: re.search(rb"<PMID[^>]*>(\d+)</PMID>", a).group(1).decode(),  # type: ignore[union-attr]
    ),
    XmlPage(
        "arxiv",
        "arxiv/query_all_testing_start0_max10.xml",
        parse_feed,
        b"<entry>",
        b"<title>",
        b"<summary>",
        lambda e: (
            re.search(rb"<id>http://arxiv.org/abs/([^<]+?)(?:v\d+)?</id>", e)  # type: ignore[union-attr]
            .group(1)
            .decode()
        ),
    ),
    XmlPage(
        "europepmc-xml",
        "europepmc/search_cancer_lite.xml",
        parse_search,
        b"<result>",
        b"<title>",
        b"<title>",
        lambda r: "{}:{}".format(
            *(
                re.search(rb"<%s>([^<]+)</%s>" % (t, t), r).group(1).decode()  # type: ignore[union-attr]
                for t in (b"source", b"id")
            )
        ),
    ),
)


def nth(body: bytes, tag: bytes, n: int, start: int = 0) -> int:
    at = start - 1
    for _ in range(n):
        at = body.index(tag, at + 1)
    return at


def xml_victim(page: XmlPage, body: bytes) -> tuple[int, int, str]:
    """Where the second record starts and ends, and its id."""
    begin = nth(body, page.start, 2)
    end_tag = b"</" + page.start[1:]
    end = body.index(end_tag, begin) + len(end_tag)
    return begin, end, page.id_of(body[begin:end])


def xml_bodies(page: XmlPage) -> list[tuple[str, bytes]]:
    """The recorded page, and for PubMed the same page with a comment after the first
    article, which the quick piecewise reader leaves to the streaming one: both are tested."""
    body = recorded(page.file)
    found = [("recorded", body)]
    if page.name == "pubmed":
        cut = body.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")
        found.append(("streamed", body[:cut] + b"<!-- a comment -->" + body[cut:]))
    return found


@pytest.mark.parametrize("page", XML_PAGES, ids=lambda p: p.name)
def test_xml_a_byte_that_is_not_utf8_skips_its_record_only(page: XmlPage) -> None:
    for how, body in xml_bodies(page):
        whole = page.parse(body)
        begin, _, source_id = xml_victim(page, body)
        at = body.index(page.title, begin) + len(page.title) + 1
        damaged = body[:at] + b"\xff" + body[at + 1 :]
        result = page.parse(damaged)
        skipped = assert_only_that_record_skipped(whole, result, source_id, "not UTF-8")
        assert skipped.source_id == source_id, how


def test_pubmed_a_bad_byte_outside_every_article_still_refuses_the_page() -> None:
    body = recorded("pubmed/efetch_pubmed_50_records_structured_abstracts.xml")
    at = body.index(b"<PubmedArticleSet>") + 1
    with pytest.raises(ParseError):
        parse_efetch(body[:at] + b"\xff" + body[at + 1 :])


# --- 18.11: a number too long to convert, nesting too deep to decode ---------------------------

PLACEHOLDER = 918273645546372819


def with_value(page: JsonPage, index: int, key: str, replacement: str) -> bytes:
    """The recorded page re-serialized (the values are the API's), record ``index``'s
    ``key`` set to ``replacement`` as raw JSON text."""
    data = json.loads(recorded(page.file))
    items_of(data, page.path)[index][key] = PLACEHOLDER
    text = json.dumps(data)
    assert text.count(str(PLACEHOLDER)) == 1
    return text.replace(str(PLACEHOLDER), replacement).encode()


NUMERIC_FIELDS = {
    "openalex": "publication_year",
    "crossref": "is-referenced-by-count",
    "europepmc": "citedByCount",
    "europepmc-lite": "citedByCount",
    "semanticscholar": "year",
    "biorxiv": "version",  # a string of digits in the recording; a number here
}


@pytest.mark.parametrize("page", JSON_PAGES, ids=lambda p: p.name)
def test_json_a_5000_digit_integer_skips_its_record_only(page: JsonPage) -> None:
    body = recorded(page.file)
    whole = page.parse(body)
    index, source_id = victim(page, body)
    damaged = with_value(page, index, NUMERIC_FIELDS[page.name], "9" * 5000)
    with pytest.raises(ValueError, match="4300"):
        json.loads(damaged)
    result = page.parse(damaged)
    assert_only_that_record_skipped(whole, result, source_id, "5,?000 digits")


@pytest.mark.parametrize("page", JSON_PAGES, ids=lambda p: p.name)
def test_json_nesting_no_decoder_reads_is_a_parse_error(page: JsonPage) -> None:
    index, _ = victim(page, recorded(page.file))
    damaged = with_value(page, index, page.abstract_key, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(RecursionError):
        json.loads(damaged)
    with pytest.raises(ParseError, match="nested too deeply"):
        page.parse(damaged)


def test_pubmed_esearch_json_nesting_and_long_numbers_are_parse_errors() -> None:
    file = "pubmed/esearch_pubmed_retmode_json.json"
    data = json.loads(recorded(file))
    assert parse_esearch(recorded(file)).count > 0
    for value in ("[" * 100_000 + "]" * 100_000, "9" * 5000, '"' + "9" * 5000 + '"'):
        data["esearchresult"]["count"] = PLACEHOLDER
        damaged = json.dumps(data).replace(str(PLACEHOLDER), value).encode()
        with pytest.raises(ParseError):
            parse_esearch(damaged)


@pytest.mark.parametrize("page", XML_PAGES, ids=lambda p: p.name)
def test_xml_deep_nesting_is_a_parse_error(page: XmlPage) -> None:
    for _, body in xml_bodies(page):
        begin, _, _ = xml_victim(page, body)
        at = body.index(page.title, begin) + len(page.title)
        nested = b"<i>" * 100_000 + b"</i>" * 100_000
        with pytest.raises(ParseError):
            page.parse(body[:at] + nested + body[at:])


@pytest.mark.parametrize("page", XML_PAGES, ids=lambda p: p.name)
@pytest.mark.parametrize("tag", [b"sup", b"i", b"span"])
def test_xml_nesting_libxml2_reads_but_python_cannot_recurse_into(
    page: XmlPage, tag: bytes
) -> None:
    # 1,500 levels: within libxml2's limit for huge trees (2,048), past Python's recursion
    for _, body in xml_bodies(page):
        whole = page.parse(body)
        begin, _, source_id = xml_victim(page, body)
        at = body.index(page.title, begin) + len(page.title)
        nested = b"<%s>" % tag * 1500 + b"x" + b"</%s>" % tag * 1500
        try:
            result = page.parse(body[:at] + nested + body[at:])
        except ParseError:
            continue  # the page refused as a whole is fine; a raw RecursionError is not
        if source_id in ids(result):
            assert len(result.records) == len(whole.records)
        else:
            assert_only_that_record_skipped(whole, result, source_id, "nested too deeply")


# --- 18.5: a record over the size cap ---------------------------------------------------------


def enormous(text: str, size: int = MAX_RECORD_BYTES) -> str:
    """The real text repeated past ``size`` characters."""
    return " ".join([text] * (size // len(text) + 2))


@pytest.mark.parametrize("page", JSON_PAGES, ids=lambda p: p.name)
def test_json_a_record_over_the_size_cap_is_skipped(page: JsonPage) -> None:
    body = recorded(page.file)
    whole = page.parse(body)
    index, source_id = victim(page, body)
    data = json.loads(body)
    item = items_of(data, page.path)[index]
    size = len(json.dumps(item))
    real = item.get(page.abstract_key) or page.title(item)
    if page.abstract_key == "abstract_inverted_index":
        # OpenAlex's index of the real abstract (or title) written out, repeated past the cap
        # and indexed again as OpenAlex indexes it
        if isinstance(real, dict):
            real = " ".join(w for _, w in sorted((p, w) for w, ps in real.items() for p in ps))
        index_: dict[str, list[int]] = {}
        for position, word in enumerate(enormous(real, 2 * MAX_RECORD_BYTES).split()):
            index_.setdefault(word, []).append(position)
        item[page.abstract_key] = index_
    else:
        item[page.abstract_key] = enormous(real if isinstance(real, str) else str(real))
    damaged = json.dumps(data).encode()
    assert len(damaged) > len(json.dumps(json.loads(body))) + MAX_RECORD_BYTES
    result = page.parse(damaged)
    assert_only_that_record_skipped(whole, result, source_id, "record size cap of 2,000,000")
    # a cap of one's own
    [original] = [r for r in whole.records if r.source_id == source_id]
    smaller = page.parse(body, max_record_bytes=min(size, record_size(original)) // 2)
    assert source_id not in ids(smaller)
    assert all("size cap" in s.reason for s in smaller.skipped if s not in whole.skipped)


@pytest.mark.parametrize("page", XML_PAGES, ids=lambda p: p.name)
def test_xml_a_record_over_the_size_cap_is_skipped(page: XmlPage) -> None:
    for how, body in xml_bodies(page):
        whole = page.parse(body)
        begin, end, source_id = xml_victim(page, body)
        # the record's abstract text (or title) repeated, inside its own element
        opened = body.index(b">", body.index(page.abstract, begin)) + 1
        closed = body.index(b"</", opened)
        text = body[opened:closed]
        repeated = b" ".join([text] * (MAX_RECORD_BYTES // len(text) + 2))
        damaged = body[:opened] + repeated + body[closed:]
        result = page.parse(damaged)
        skipped = assert_only_that_record_skipped(whole, result, source_id, "size cap")
        assert skipped.source_id == source_id, how
        assert page.parse(body, max_record_bytes=end - begin - 1).records != whole.records


# --- the cap is a setting: [sources.NAME] max_record_bytes ------------------------------------


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_cap_comes_from_the_settings(name: str) -> None:
    table: dict[str, Any] = {"max_record_bytes": 3000}
    settings = parse_settings({"sources": {name: table}}, path="t.toml").source(name)
    if name == "openalex":
        settings = settings.model_copy(update={"api_key": SecretStr("k")})
    with build_client(contact="tests@example.org") as client:
        source, _ = source_from_settings(name, settings, Fetcher(client, RateLimiter()))
        default, _ = source_from_settings(
            name,
            settings.model_copy(update={"max_record_bytes": None}),
            Fetcher(client, RateLimiter()),
        )
    assert (source.max_record_bytes, default.max_record_bytes) == (3000, MAX_RECORD_BYTES)
    with pytest.raises(ConfigError, match="max_record_bytes"):
        parse_settings({"sources": {name: {"max_record_bytes": 0}}}, path="t.toml")


@pytest.mark.integration
def test_pages_carry_the_sources_cap_to_parse(emu: Emulator) -> None:
    with build_client(contact="tests@example.org") as client:
        source = OpenAlexSource(
            Fetcher(client, RateLimiter()), api_key="k", base_url=emu.base_url("openalex")
        )
        source.max_record_bytes = 6000
        pages = list(
            source.fetch(
                "", Window(datetime(2022, 12, 1, tzinfo=UTC), datetime(2022, 12, 31, tzinfo=UTC))
            )
        )
    assert {p.max_record_bytes for p in pages} == {6000}
    result = OpenAlexSource.parse(pages[0])
    assert result.skipped and all("size cap of 6,000" in s.reason for s in result.skipped)
    assert len(result.records) + len(result.skipped) == 50
    assert not OpenAlexSource.parse(replace(pages[0], max_record_bytes=MAX_RECORD_BYTES)).skipped
