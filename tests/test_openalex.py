"""OpenAlex: parsing replayed from the real responses in ../shared/fixtures/openalex (see
PROVENANCE.md there), fetching against the emulator. Where a test needs a body no recording
has (a broken work, markup in a title), it derives it from a real work and says how.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from structlog.testing import capture_logs

from harvester.config.sections import SourceSettings
from harvester.errors import ConfigError, FetchError, ParseError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.query.syntax import parse_query
from harvester.query.translate import to_openalex
from harvester.records import Author, Record
from harvester.sources import SOURCES
from harvester.sources.base import ParseResult, Window
from harvester.sources.openalex import (
    OpenAlexSource,
    abstract_from_inverted_index,
    credit_pace,
    parse_works,
    smaller_page_size,
)
from harvester.text.identifiers import normalize_orcid
from tests.conftest import Sleeps
from tests.emulator import FIXTURES_DIR, Emulator
from tests.emulator.openalex import OpenAlexRoutes
from tests.mutation import (
    assert_canonical_record,
    assert_parses_or_refuses,
    json_values,
    mutated_json,
    one_in,
)

FIXTURES = FIXTURES_DIR / "openalex"
if not FIXTURES.is_dir():
    pytest.skip(f"recorded responses not found at {FIXTURES}", allow_module_level=True)

TWO = "works_filter_openalex_ids_cursor_start.json"
CITED_BY = "works_filter_cited_by_cursor_start_38_results.json"
FIFTY = "works_search_ml_nlp_2020_2022_page1_per_page50.json"
NULL_TITLE = "work_W4234567890_null_title.json"
TOPIC = (
    '("self-help group*" OR "support group*" OR "peer support" OR forum*) '
    "AND (online OR internet) AND (anxiety OR depress*)"
)
SECRET = "oa-s3cr3t-k3y"
DECEMBER_2022 = Window(datetime(2022, 12, 1, tzinfo=UTC), datetime(2022, 12, 31, tzinfo=UTC))


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def records(name: str) -> dict[str, Record]:
    result = parse_works(body(name), url=name)
    assert result.skipped == ()
    return {r.source_id or "": r for r in result.records}


def edited(name: str, edit: Any) -> bytes:
    """A real fixture, loaded, changed by ``edit(data)`` and serialized again."""
    data = json.loads(body(name))
    edit(data)
    return json.dumps(data).encode()


# --- golden parses ---------------------------------------------------------------------------


def test_conference_paper_with_abstract_rebuilt_from_the_inverted_index() -> None:
    work = records(TWO)["W3046863325"]
    assert work.ids.to_json() == {"doi": "10.1145/3383583.3398584", "openalex": "W3046863325"}
    assert (
        work.title == "Trends of Publications' Citations and Altmetrics Based on Open Access Types"
    )
    assert work.abstract is not None
    assert work.abstract.startswith(
        "This paper analyzes trends of citation and altmetrics with respect to different OA "
        "types (e.g., gold, hybrid, green)."
    )
    assert work.abstract.endswith("bronze articles receive the most mentions.")
    assert work.authors == (
        Author(family="Nishioka", given="Chifumi", orcid="0000-0002-1853-3038"),
        Author(family="Färber", given="Michael", orcid="0000-0001-5458-8645"),
    )
    # primary_location.source is null here: the venue comes from raw_source_name
    assert work.venue == "Proceedings of the ACM/IEEE Joint Conference on Digital Libraries in 2020"
    assert (work.year, work.published, work.pages) == (2020, "2020-08-01", "503-504")
    assert (work.volume, work.issue) == (None, None)
    assert (work.type, work.language) == ("journal-article", "en")
    assert work.url == "https://doi.org/10.1145/3383583.3398584"
    assert work.keywords[:3] == ("Altmetrics", "License", "Social media")
    assert "scientometrics and bibliometrics research" in work.keywords  # a topic


def test_arxiv_preprint_gets_its_arxiv_id_from_the_datacite_doi() -> None:
    work = records(TWO)["W3045921891"]
    assert work.ids.doi == "10.48550/arxiv.2007.14454"
    assert work.ids.arxiv == "2007.14454"
    assert (work.type, work.venue) == ("preprint", "arXiv (Cornell University)")
    assert [a.family for a in work.authors] == ["Ravenscroft", "Clare", "Liakata"]


def test_single_work_with_null_title_is_still_a_record() -> None:
    (work,) = parse_works(body(NULL_TITLE)).records
    assert work.source_id == "W4234567890"
    assert (work.title, work.abstract) == (None, None)
    assert work.ids.doi == "10.4018/jnn.20180101"
    assert work.venue == "Journal of Nanotoxicology and Nanomedicine"
    assert (work.volume, work.issue, work.pages) == ("3", "1", None)
    assert (work.type, work.language, work.year) == ("paratext", "ng", 2018)
    assert work.authors == (Author(family="Rasulev", given="Bakhtiyor"),)


def test_cited_by_page_pmids_conference_papers_and_thesis() -> None:
    works = records(CITED_BY)
    assert len(works) == 38
    peerj = works["W2741809807"]
    assert (peerj.ids.pmid, peerj.ids.doi) == ("29456894", "10.7717/peerj.4375")
    textrank = works["W1525595230"]
    assert textrank.type == "proceedings-article"  # an "article" in a conference source
    assert textrank.venue == "Empirical Methods in Natural Language Processing"
    # the thesis' raw_source_name is a URL, which is not a venue
    assert works["W205532704"].type == "dissertation"
    assert works["W205532704"].venue is None
    assert sum(1 for w in works.values() if w.abstract) == 30  # 8 have no inverted index


def test_fifty_work_page_types_and_languages() -> None:
    works = records(FIFTY)
    assert len(works) == 50
    kinds = [w.type for w in works.values()]
    assert kinds.count("journal-article") == 44
    assert (kinds.count("review"), kinds.count("book-chapter")) == (2, 2)
    assert works["W4381429144"].language == "hu"
    nelta = works["W4327510205"]
    assert (nelta.venue, nelta.volume, nelta.issue, nelta.pages) == (
        "Journal of NELTA",
        "27",
        "1-2",
        "202-212",
    )


def test_last_cursor_page_is_empty() -> None:
    assert parse_works(body("works_filter_openalex_ids_cursor_end_empty.json")) == ParseResult(())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("works_400_invalid_filter_field.json", "DOESNTEXIST is not a valid field"),
        ("work_400_invalid_select_field.json", "DOESNTEXIST is not a valid select field"),
    ],
)
def test_error_bodies_raise_with_the_api_message(name: str, message: str) -> None:
    with pytest.raises(ParseError, match="Invalid query parameters error") as caught:
        parse_works(body(name), url=name)
    assert message in str(caught.value)


def test_group_by_answer_is_not_a_works_listing() -> None:
    with pytest.raises(ParseError, match="not a works listing: a group_by response"):
        parse_works(body("works_group_by_type.json"))


# --- broken input ----------------------------------------------------------------------------


def test_a_broken_work_is_skipped_and_the_rest_of_the_page_kept() -> None:
    # The 2-work page with the first work's authorships replaced by a string.
    def edit(data: dict[str, Any]) -> None:
        data["results"][0]["authorships"] = "Nishioka C"

    result = parse_works(edited(TWO, edit))
    assert [r.source_id for r in result.records] == ["W3045921891"]
    (skipped,) = result.skipped
    assert skipped.source_id == "W3046863325"
    assert skipped.reason == "results[0].authorships: expected an array, got a string"


def test_truncated_and_non_json_bodies_raise() -> None:
    with pytest.raises(ParseError, match="malformed or truncated JSON"):
        parse_works(body(TWO)[:5000])
    with pytest.raises(ParseError, match="expected a JSON object, got list"):
        parse_works(b"[]")


def test_markup_and_entities_in_titles_and_abstract_words() -> None:
    # The first real work, its title and two abstract words given markup as publishers send it.
    def edit(data: dict[str, Any]) -> None:
        work = data["results"][0]
        work["title"] = "Trends of <i>Citations</i> &amp; Altmetrics of H<sub>2</sub>O"
        work["abstract_inverted_index"] = {"<p>This": [0], "paper": [1], "&lt;works&gt;</p>": [2]}

    work = parse_works(edited(TWO, edit)).records[0]
    assert work.title == "Trends of Citations & Altmetrics of H₂O"
    assert work.abstract == "This paper <works>"


def test_inverted_index_order_repeats_and_bad_positions() -> None:
    index = {"world": [1, 3], "hello": [0, 2], "again": [10**12]}
    assert abstract_from_inverted_index(index, "x") == "hello world hello world again"
    assert abstract_from_inverted_index({}, "x") is None
    assert abstract_from_inverted_index(None, "x") is None
    with pytest.raises(ValueError, match=r"x\['a'\]: positions must be whole numbers"):
        abstract_from_inverted_index({"a": [-1]}, "x")


# --- property: mutated real fixtures give ParseError or valid records ------------------------


def assert_valid(record: Record) -> None:
    """What DESIGN.md's Record schema promises, checked on one record."""
    assert_canonical_record(
        record,
        source="openalex",
        text_fields=("title", "abstract", "venue", "volume", "issue", "pages", "language", "url"),
    )
    assert record.ids.openalex is None or re.match(r"^W\d+$", record.ids.openalex)
    for author in record.authors:
        assert author.orcid is None or normalize_orcid(author.orcid) == author.orcid
    assert all(isinstance(k, str) and k for k in record.keywords)


# Real documents small enough to mutate quickly: the 2-work page, the single work, and the
# first 4 works of the cited-by page (re-serialized, values unchanged).
_BASES = [
    json.loads(body(TWO)),
    json.loads(body(NULL_TITLE)),
    {**json.loads(body(CITED_BY)), "results": json.loads(body(CITED_BY))["results"][:4]},
]
_MARKUP = ["<i>x</i>", "&amp; &lt;b&gt;", "<p>Back</p> text", "a < b", "</sub>", "&#x2013;", ""]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_json(_BASES, values=json_values(_MARKUP), max_edits=3, truncate=one_in(10)))
def test_mutated_real_responses_give_parse_error_or_valid_records(raw: bytes) -> None:
    assert_parses_or_refuses(parse_works, raw, assert_valid)


def test_every_recorded_work_is_schema_valid() -> None:
    for name in (TWO, CITED_BY, FIFTY, NULL_TITLE):
        for record in parse_works(body(name)).records:
            assert_valid(record)


# --- the source: settings, query, fetch against the emulator ---------------------------------


@pytest.fixture
def fetcher(sleeps: Sleeps) -> Iterator[Fetcher]:
    with build_client(contact="tests@example.org") as client:
        yield Fetcher(client, RateLimiter(), sleep=sleeps)


def routes(emu: Emulator) -> OpenAlexRoutes:
    found = emu.source("openalex")
    assert isinstance(found, OpenAlexRoutes)
    return found


def source(emu: Emulator, fetcher: Fetcher, per_page: int = 20) -> OpenAlexSource:
    return OpenAlexSource(
        fetcher,
        api_key=SECRET,
        base_url=emu.base_url("openalex"),
        mailto="tests@example.org",
        per_page=per_page,
    )


def test_registered_with_key_requirement_and_generous_overlap() -> None:
    assert SOURCES["openalex"] is OpenAlexSource
    assert (OpenAlexSource.REQUIRES_KEY, OpenAlexSource.KEY_ENV) == (True, "OPENALEX_API_KEY")
    assert OpenAlexSource.DEFAULT_OVERLAP.days == 30
    assert OpenAlexSource.rate(SourceSettings()) == 10.0


def test_from_settings_without_a_key_names_the_variable(fetcher: Fetcher) -> None:
    with pytest.raises(ConfigError, match="OPENALEX_API_KEY"):
        OpenAlexSource.from_settings(SourceSettings(), fetcher)


def test_topic_query_translation() -> None:
    assert to_openalex(parse_query(TOPIC)) == (
        'title_and_abstract.search:("self-help group" OR "support group" OR "peer support" '
        "OR forum) AND (online OR internet) AND (anxiety OR depress)"
    )


@pytest.mark.integration
def test_fetch_pages_to_the_end_with_the_topic_filter(emu: Emulator, fetcher: Fetcher) -> None:
    term = to_openalex(parse_query(TOPIC))
    pages = list(source(emu, fetcher).fetch(term, DECEMBER_2022))
    # 50 recorded works dated December 2022, 20 a page, then the empty page that ends it
    assert [len(OpenAlexSource.parse(p).records) for p in pages] == [20, 20, 10, 0]
    assert [p.total for p in pages] == [50] * 4
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert [p.cursor is None for p in pages] == [False, False, False, True]
    sent = [r.params for r in emu.requests]
    assert sent[0]["filter"] == (
        f"{term},from_publication_date:2022-12-01,to_publication_date:2022-12-31"
    )
    assert [s["cursor"] for s in sent[1:]] == [p.cursor for p in pages[:3]]
    assert sent[0]["cursor"] == "*"
    assert {(s["per_page"], s["mailto"], s["api_key"]) for s in sent} == {
        ("20", "tests@example.org", SECRET)
    }
    assert all(SECRET not in p.url and "api_key=REDACTED" in p.url for p in pages)


@pytest.mark.integration
def test_resume_continues_after_the_committed_page(emu: Emulator, fetcher: Fetcher) -> None:
    first = next(iter(source(emu, fetcher).fetch("", DECEMBER_2022)))
    rest = list(source(emu, fetcher).fetch("", DECEMBER_2022, resume=first.cursor))
    assert [len(OpenAlexSource.parse(p).records) for p in rest] == [20, 10, 0]
    ids = {r.source_id for p in [first, *rest] for r in OpenAlexSource.parse(p).records}
    assert len(ids) == 50


@pytest.mark.integration
def test_accepted_page_size_is_read_back(emu: Emulator, fetcher: Fetcher) -> None:
    routes(emu).max_per_page = 25
    with capture_logs() as logs:
        pages = list(source(emu, fetcher, per_page=200).fetch("", DECEMBER_2022))
    # 200 asked for is the documented maximum, 100; the server accepts 25 of it
    assert [r.params["per_page"] for r in emu.requests] == ["100", "25", "25"]
    assert [len(OpenAlexSource.parse(p).records) for p in pages] == [25, 25, 0]
    assert {"event": "page size lowered", "requested": 100, "accepted": 25} in [
        {k: e[k] for k in ("event", "requested", "accepted") if k in e} for e in logs
    ]


# --- page size: the current docs' per_page 1-100, and a 400 that names the page size ----------


def test_default_page_size_and_spelling_are_the_current_docs(fetcher: Fetcher) -> None:
    # developers.openalex.org, "Page through results": per_page, 1-100 (was per-page 1-200)
    assert (OpenAlexSource.PER_PAGE, OpenAlexSource.PAGE_SIZE_PARAM) == (100, "per_page")
    settings = SourceSettings(page_size=200).model_copy(update={"api_key": SecretStr("k")})
    assert OpenAlexSource.from_settings(settings, fetcher).per_page == 100


@pytest.mark.integration
def test_default_page_size_is_accepted_by_a_server_enforcing_the_documented_range(
    emu: Emulator, fetcher: Fetcher
) -> None:
    assert routes(emu).per_page_limit == 100  # the emulator enforces the current docs
    default = OpenAlexSource(fetcher, api_key=SECRET, base_url=emu.base_url("openalex"))
    with capture_logs() as logs:
        pages = list(default.fetch("", DECEMBER_2022))
    assert [r.status for r in emu.requests] == [200, 200]
    assert [r.params["per_page"] for r in emu.requests] == ["100", "100"]
    assert [len(OpenAlexSource.parse(p).records) for p in pages] == [50, 0]
    assert not [e for e in logs if e["event"] == "page size lowered"]


@pytest.mark.integration
@pytest.mark.parametrize("spelling", ["per_page", "per-page"])
def test_a_400_naming_the_page_size_lowers_it_once_and_the_same_page_is_asked_again(
    emu: Emulator, fetcher: Fetcher, spelling: str
) -> None:
    routes(emu).per_page_limit = 20  # a server stricter than the docs
    oa = source(emu, fetcher, per_page=100)
    oa.PAGE_SIZE_PARAM = spelling  # type: ignore[misc]
    with capture_logs() as logs:
        pages = list(oa.fetch("", DECEMBER_2022))
    sent = [(r.status, r.params[spelling], r.params["cursor"]) for r in emu.requests]
    assert sent[:2] == [(400, "100", "*"), (200, "20", "*")]  # the same page, smaller
    assert [s[:2] for s in sent[2:]] == [(200, "20")] * 3
    assert [len(OpenAlexSource.parse(p).records) for p in pages] == [20, 20, 10, 0]
    assert sum(len(OpenAlexSource.parse(p).records) for p in pages) == 50
    lowered = [e for e in logs if e["event"] == "page size lowered"]
    assert [(e["requested"], e["accepted"]) for e in lowered] == [(100, 20)]
    # remembered: the next window starts at the lowered size, with no 400 and no log
    emu.clear_requests()
    with capture_logs() as later:
        list(oa.fetch("", DECEMBER_2022))
    assert {(r.status, r.params[spelling]) for r in emu.requests} == {(200, "20")}
    assert not [e for e in later if e["event"] == "page size lowered"]


@pytest.mark.integration
@pytest.mark.parametrize("spelling", ["per_page", "per-page"])
def test_emulator_takes_both_spellings_and_answers_openalex_400_beyond_the_limit(
    emu: Emulator, fetcher: Fetcher, spelling: str
) -> None:
    url = emu.base_url("openalex") + "/works"
    ok = fetcher.client.get(url, params={spelling: "100", "cursor": "*", "api_key": SECRET})
    assert ok.status_code == 200 and ok.json()["meta"]["per_page"] == 100
    refused = fetcher.client.get(url, params={spelling: "200", "cursor": "*", "api_key": SECRET})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "Invalid query parameters error.",
        "message": f"{spelling} parameter must be between 1 and 100",
    }
    routes(emu).per_page_limit = 200  # the older API
    older = fetcher.client.get(url, params={spelling: "200", "cursor": "*", "api_key": SECRET})
    assert older.status_code == 200


def test_smaller_page_size_reads_the_maximum_or_halves() -> None:
    def refused(message: str, status: int = 400) -> FetchError:
        return FetchError(f"HTTP {status}: {message}", url="u", status=status)

    named = '{"error": "Invalid query parameters error.", "message": "per-page parameter must be between 1 and 100"}'  # noqa: E501
    assert smaller_page_size(refused(named), 200) == 100
    assert smaller_page_size(refused("per_page is too large"), 100) == 50
    assert smaller_page_size(refused("per_page must be at most 25"), 100) == 25
    # the maximum named is not below what was asked: halved, so it still gets smaller
    assert smaller_page_size(refused("per_page must be between 1 and 200"), 100) == 50
    assert smaller_page_size(refused("per_page is too large"), 1) is None
    assert smaller_page_size(refused("nonsense is not a valid field"), 100) is None
    assert smaller_page_size(refused("per_page parameter must be <= 100", 500), 200) is None


@pytest.mark.integration
def test_harvest_command_with_openalex_succeeds_against_the_documented_limit(
    emu: Emulator, tmp_path: Path
) -> None:
    assert routes(emu).per_page_limit == 100
    config = tmp_path / "harvester.toml"
    config.write_text(
        f"""[database]
url = "sqlite:///{tmp_path}/h.db"

[sources.openalex]
base_url = "{emu.base_url("openalex")}"
api_key_env = "OPENALEX_API_KEY"
requests_per_second = 50

[[topics]]
name = "ml"
query = '"machine learning" OR "natural language processing"'
sources = ["openalex"]
lookback_days = 20000
"""
    )
    env = {**os.environ, "OPENALEX_API_KEY": SECRET}
    env.pop("HARVESTER_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "harvester.cli", "--config", str(config), "harvest"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ml × openalex: ok" in done.stdout
    assert {r.status for r in emu.requests} == {200}
    assert {r.params["per_page"] for r in emu.requests} == {"100"}


@pytest.mark.integration
def test_429s_are_survived_and_the_key_never_logged(
    emu: Emulator, fetcher: Fetcher, sleeps: Sleeps
) -> None:
    emu.faults.add(source="openalex", kind="status", status=429, retry_after=2, times=2)
    with capture_logs() as logs:
        pages = list(source(emu, fetcher).fetch("", DECEMBER_2022))
    assert sleeps == [2.0, 2.0]
    assert sum(len(OpenAlexSource.parse(p).records) for p in pages) == 50
    assert [r.status for r in emu.requests][:3] == [429, 429, 200]
    retried = [e for e in logs if e["event"] == "request retried"]
    assert len(retried) == 2
    assert SECRET not in repr(logs)


@pytest.mark.integration
def test_api_error_is_a_fetch_error_with_the_message_and_without_the_key(
    emu: Emulator, fetcher: Fetcher
) -> None:
    # A raw per-source query with an unknown filter field: the recorded 400 answer.
    with pytest.raises(FetchError, match="nonsense is not a valid field") as caught:
        list(source(emu, fetcher).fetch("nonsense:1", DECEMBER_2022))
    assert caught.value.status == 400
    assert SECRET not in str(caught.value)


@pytest.mark.integration
def test_low_credits_lower_the_pace(emu: Emulator, fetcher: Fetcher) -> None:
    routes(emu).credits_left = 50
    fetcher.limiter.set_rate("openalex", 10)
    next(iter(source(emu, fetcher).fetch("", DECEMBER_2022)))
    rate = fetcher.limiter.rate("openalex")
    assert rate is not None and rate < 10  # 49 requests spread until the daily reset


def test_credit_pace_reads_the_documented_headers() -> None:
    plenty = {"x-ratelimit-remaining": "99000", "x-ratelimit-reset": "3600"}
    assert credit_pace(plenty, low=100) is None
    low = {
        "x-ratelimit-remaining": "500",
        "x-ratelimit-credits-used": "10",
        "x-ratelimit-reset": "600",
    }
    assert credit_pace(low, low=100) == (50, 600.0)
    assert credit_pace({"x-ratelimit-remaining": "abc", "x-ratelimit-reset": "1"}, low=100) is None
    assert credit_pace({}, low=100) is None


@pytest.mark.integration
def test_emulator_refuses_a_request_without_key(emu: Emulator, fetcher: Fetcher) -> None:
    response = fetcher.client.get(emu.base_url("openalex") + "/works", params={"cursor": "*"})
    assert response.status_code == 429
    assert "API key is required" in response.json()["message"]


@pytest.mark.integration
def test_emulator_serves_a_recorded_listing_in_recorded_order(
    emu: Emulator, fetcher: Fetcher
) -> None:
    params = {
        "filter": "cited_by:W3046863325|W3045921891",
        "per_page": "100",
        "cursor": "*",
        "api_key": SECRET,
    }
    served = fetcher.client.get(emu.base_url("openalex") + "/works", params=params).json()
    recorded = json.loads(body(CITED_BY))
    assert [w["id"] for w in served["results"]] == [w["id"] for w in recorded["results"]]
    assert served["meta"]["count"] == 38


# --- local evaluation ------------------------------------------------------------------------


def test_topic_query_evaluated_locally_on_parsed_records() -> None:
    works = parse_works(body(FIFTY)).records
    query = parse_query('(sentiment OR emotion*) AND ("natural language processing" OR nlp)')
    matched = {w.source_id for w in works if query.match(w)}
    assert matched == {
        "W4362644626",  # Sentiment Analysis with Dynamics 365 Customer Insights
        "W4317106139",
        "W4387423069",
        "W4320503016",
        "W4316673150",
        "W4313550068",
    }
    assert "W4327510205" not in matched  # ELT in the Age of Artificial Intelligence
