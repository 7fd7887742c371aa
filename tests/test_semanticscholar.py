"""Semantic Scholar: parsing replayed from the real Graph API responses in
../shared/fixtures/semanticscholar (see PROVENANCE.md there), fetching against the emulator.
Where a test needs a body no recording has, it derives it from a real paper and says how.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from structlog.testing import capture_logs

from harvester.config.sections import SourceSettings
from harvester.errors import FetchError, ParseError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.query.syntax import parse_query
from harvester.query.translate import to_semanticscholar
from harvester.records import Author, Record
from harvester.sources import SOURCES
from harvester.sources.base import ParseResult, Skipped, Window
from harvester.sources.semanticscholar import FIELDS, SemanticScholarSource, parse_papers
from tests.conftest import Sleeps
from tests.emulator import FIXTURES_DIR, Emulator
from tests.mutation import (
    assert_canonical_record,
    assert_parses_or_refuses,
    json_values,
    mutated_json,
    one_in,
)

FIXTURES = FIXTURES_DIR / "semanticscholar"
if not FIXTURES.is_dir():
    pytest.skip(f"recorded responses not found at {FIXTURES}", allow_module_level=True)

FULL = "paper_search_turing_all_fields_with_abstracts.json"
BATCH = "paper_batch_post_with_null_entry.json"
BULK = (
    "paper_search_bulk_kubernetes_page1_token.json",
    "paper_search_bulk_kubernetes_page2_token.json",
    "paper_search_bulk_kubernetes_page3_last_no_token.json",
)
TOPIC = (
    '("self-help group*" OR "support group*" OR "peer support" OR forum*) '
    "AND (online OR internet) AND (anxiety OR depress*)"
)
SECRET = "s2-s3cr3t-k3y"
WINDOW = Window(datetime(2014, 1, 1, tzinfo=UTC), datetime(2015, 12, 31, tzinfo=UTC))


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def records(name: str) -> dict[str, Record]:
    result = parse_papers(body(name), url=name)
    assert result.skipped == ()
    return {r.source_id or "": r for r in result.records}


# --- golden parses ---------------------------------------------------------------------------


def test_full_field_paper_with_every_identifier() -> None:
    paper = records(FULL)["d6a59868ed67dc581b3a721824c130490ea74566"]
    assert paper.ids.to_json() == {
        "doi": "10.1098/rsta.2020.0268",
        "pmid": "34743603",
        "pmcid": "PMC8580451",
        "arxiv": "2106.08375",
        "s2": "d6a59868ed67dc581b3a721824c130490ea74566",
    }
    assert paper.venue == "Philosophical Transactions of the Royal Society A"
    assert (paper.volume, paper.year, paper.published) == ("379", 2021, "2021-06-15")
    assert (
        paper.url
        == "https://www.semanticscholar.org/paper/d6a59868ed67dc581b3a721824c130490ea74566"
    )


def test_arxiv_paper_drops_the_corr_pseudo_volume() -> None:
    paper = records(FULL)["7cbc2a7843411a1768ab762930707af0a3c33a19"]
    assert paper.title == (
        "Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, "
        "A Large-Scale Generative Language Model"
    )
    assert paper.ids.arxiv == "2201.11990"
    assert (paper.venue, paper.volume, paper.type) == ("arXiv.org", None, "journal-article")
    assert paper.authors[:2] == (
        Author(family="Smith", given="Shaden"),
        Author(family="Patwary", given="M."),
    )
    assert paper.abstract is not None and paper.abstract.startswith(
        "Pretrained general-purpose language models can achieve state-of-the-art accuracies"
    )


def test_pages_are_tidied_but_not_guessed() -> None:
    papers = records(FULL)
    assert papers["9cd1dfaa3c86c71ae74b4c02ebc59cb56c4a396d"].pages == "518-521"  # "518 - 521"
    assert papers["6b0f06617d9f5256a80ed62d9398acb92a55a6bd"].pages == "117-97"  # as recorded
    jmlr = papers["c4cb90a67f45e7cbacb5286e934b309e89843922"]
    assert (jmlr.pages, jmlr.published, jmlr.year) == ("75:1-75:35", "2021", 2021)  # no date


def test_types_and_null_abstracts() -> None:
    papers = list(records(FULL).values())
    kinds = [p.type for p in papers]
    assert (len(papers), kinds.count("review"), kinds.count("proceedings-article")) == (100, 5, 8)
    assert kinds.count(None) == 28  # publicationTypes null
    assert sum(1 for p in papers if p.abstract is None) == 28


def test_batch_null_entry_is_skipped() -> None:
    result = parse_papers(body(BATCH))
    assert result.skipped == (Skipped(None, "[0]: null (an id Semantic Scholar does not know)"),)
    first = result.records[0]
    assert first.ids.to_json() == {
        "doi": "10.2139/ssrn.288970",
        "s2": "c31c87c591a25c64fbaa82e8ac6a81831b6ac7ce",
    }
    assert first.title == "How Much Should We Trust Differences-in-Differences Estimates?"
    assert (first.type, first.published) == ("review", "2001-10-01")
    assert [a.family for a in first.authors] == ["Bertrand", "Duflo", "Mullainathan"]


def test_bulk_and_relevance_pages() -> None:
    counts = [len(parse_papers(body(name)).records) for name in BULK]
    assert counts == [1000, 1000, 674]
    first = parse_papers(body(BULK[0])).records[0]
    assert (first.source_id, first.title) == (
        "0018ce3db8f9957b520d6b7e0cec84abfa230e1c",
        "Kubernetes Cluster for Automating Software Production Environment",
    )
    relevance = parse_papers(body("paper_search_turing_offset100_limit100.json")).records
    assert relevance[0].title == "How to Run Turing Machines on Encrypted Data"
    assert len(relevance) == 100


def test_empty_search_has_no_records() -> None:
    assert parse_papers(body("paper_search_no_results.json")) == ParseResult(())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("paper_400_unrecognized_field.json", r"Unrecognized or unsupported fields: \[unknown\]"),
        ("paper_404_not_found.json", "Paper with id 0 not found"),
    ],
)
def test_error_bodies_raise_with_the_api_message(name: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_papers(body(name))


def test_broken_paper_skipped_rest_kept_and_markup_removed() -> None:
    # The batch recording, its second paper given a numeric title and its third stray markup.
    data = json.loads(body(BATCH))
    data[1]["title"] = 42
    data[2]["title"] = "The <i>Miracle</i> of Microfinance? Evidence &amp; Evaluation"
    result = parse_papers(json.dumps(data).encode())
    assert [s.reason for s in result.skipped][1:] == ["[1].title: expected a string, got a number"]
    assert result.skipped[1].source_id == "c31c87c591a25c64fbaa82e8ac6a81831b6ac7ce"
    assert result.records[0].title == "The Miracle of Microfinance? Evidence & Evaluation"
    assert len(result.records) == 2


def test_truncated_body_raises() -> None:
    with pytest.raises(ParseError, match="malformed or truncated JSON"):
        parse_papers(body(BATCH)[:3000])
    with pytest.raises(ParseError, match="'data' is not an array"):
        parse_papers(b'{"total": 1, "data": {"paperId": "x"}}')


# --- property: mutated real fixtures give ParseError or valid records ------------------------


def assert_valid(record: Record) -> None:
    """What DESIGN.md's Record schema promises, checked on one record."""
    assert_canonical_record(
        record,
        source="semanticscholar",
        text_fields=("title", "abstract", "venue", "volume", "pages", "url"),
    )
    assert record.ids.s2 is None or (record.ids.s2.strip() == record.ids.s2 != "")


# Real documents: the batch array, and the first 6 papers of the full-field search page
# (re-serialized with its total/offset/next, values unchanged).
_BASES: list[Any] = [
    json.loads(body(BATCH)),
    {**json.loads(body(FULL)), "data": json.loads(body(FULL))["data"][:6]},
]
_MARKUP = ["<i>x</i>", "&amp; &lt;b&gt;", "<p>Back</p> text", "a < b", "$n<k$", "&#x2013;", ""]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_json(_BASES, values=json_values(_MARKUP), max_edits=3, truncate=one_in(10)))
def test_mutated_real_responses_give_parse_error_or_valid_records(raw: bytes) -> None:
    assert_parses_or_refuses(parse_papers, raw, assert_valid)


def test_every_recorded_paper_is_schema_valid() -> None:
    for name in (FULL, BATCH, *BULK):
        for record in parse_papers(body(name)).records:
            assert_valid(record)


# --- the source: settings, query, fetch against the emulator ---------------------------------


@pytest.fixture
def fetcher(sleeps: Sleeps) -> Iterator[Fetcher]:
    with build_client(contact="tests@example.org") as client:
        yield Fetcher(client, RateLimiter(), sleep=sleeps)


def source(emu: Emulator, fetcher: Fetcher, key: str | None = SECRET) -> SemanticScholarSource:
    return SemanticScholarSource(fetcher, base_url=emu.base_url("semanticscholar"), api_key=key)


def test_registered_with_documented_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SOURCES["semanticscholar"] is SemanticScholarSource
    assert SemanticScholarSource.REQUIRES_KEY is False
    assert SemanticScholarSource.rate(SourceSettings()) == pytest.approx(1 / 3)
    monkeypatch.setenv("S2_API_KEY", SECRET)
    assert SemanticScholarSource.rate(SourceSettings(api_key_env="S2_API_KEY")) == 1.0


def test_topic_query_translation() -> None:
    assert to_semanticscholar(parse_query(TOPIC)) == (
        '(("self help" + group*) | (support + group*) | "peer support" | forum*) '
        "+ (online | internet) + (anxiety | depress*)"
    )


@pytest.mark.integration
def test_bulk_token_paging_over_the_recorded_pages(emu: Emulator, fetcher: Fetcher) -> None:
    pages = list(source(emu, fetcher).fetch("kubernetes", WINDOW))
    assert [len(SemanticScholarSource.parse(p).records) for p in pages] == [1000, 1000, 674]
    assert [p.total for p in pages] == [2674] * 3
    recorded = [json.loads(body(name))["token"] for name in BULK]
    assert [p.cursor for p in pages] == recorded  # the last one null
    sent = [r.params for r in emu.requests]
    assert [s.get("token") for s in sent] == [None, *recorded[:2]]
    assert {(s["publicationDateOrYear"], s["fields"]) for s in sent} == {
        ("2014-01-01:2015-12-31", FIELDS)
    }
    assert {r.headers.get("x-api-key") for r in emu.requests} == {SECRET}


@pytest.mark.integration
def test_topic_query_fetch_resume_and_local_evaluation(emu: Emulator, fetcher: Fetcher) -> None:
    routes = emu.source("semanticscholar")
    routes.bulk_page_size = 20  # type: ignore[attr-defined]
    term = to_semanticscholar(parse_query(TOPIC))
    pages = list(source(emu, fetcher, key=None).fetch(term, WINDOW))
    # 38 recorded full-field papers of 2014-2015 (34 dated, 4 with a year only), 20 a page
    assert [len(SemanticScholarSource.parse(p).records) for p in pages] == [20, 18]
    assert emu.requests[0].params["query"] == term
    assert "x-api-key" not in emu.requests[0].headers
    rest = list(source(emu, fetcher).fetch(term, WINDOW, resume=pages[0].cursor))
    assert [p.body for p in rest] == [pages[1].body]
    found = [r for p in pages for r in SemanticScholarSource.parse(p).records]
    assert all(r.year in (2014, 2015) for r in found)
    query = parse_query('"neural turing machine*" NOT reinforcement')
    assert {r.source_id for r in found if query.match(r)} == {
        "c3823aacea60bc1f2cabb9283144690a3d015db5"  # Neural Turing Machines
    }  # not "Reinforcement Learning Neural Turing Machines" (and its revision)
    assert sum(1 for r in found if parse_query('"neural turing machine*"').match(r)) == 3


@pytest.mark.integration
def test_429s_are_survived_and_the_key_never_logged(
    emu: Emulator, fetcher: Fetcher, sleeps: Sleeps
) -> None:
    emu.faults.add(source="semanticscholar", kind="status", status=429, retry_after=3, times=2)
    with capture_logs() as logs:
        pages = list(source(emu, fetcher).fetch("kubernetes", WINDOW))
    assert sleeps == [3.0, 3.0]
    assert len(pages) == 3
    assert [r.status for r in emu.requests][:3] == [429, 429, 200]
    assert len([e for e in logs if e["event"] == "request retried"]) == 2
    assert SECRET not in repr(logs)
    assert all(SECRET not in p.url for p in pages)


@pytest.mark.integration
def test_stale_token_is_a_fetch_error_with_the_api_message(emu: Emulator, fetcher: Fetcher) -> None:
    # Fetcher treats any "token" parameter as a secret, so even the API's echo is redacted.
    with pytest.raises(FetchError, match="Invalid token: REDACTED") as caught:
        list(source(emu, fetcher).fetch("kubernetes", WINDOW, resume="not-a-token"))
    assert caught.value.status == 400
    assert SECRET not in str(caught.value)
