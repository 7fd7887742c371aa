"""PubMed end to end: the app harvests the emulator (real recorded records) into the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.sources.pubmed import parse_efetch
from tests.conftest import FixedClock, Sleeps, require_shared
from tests.emulator import Emulator
from tests.emulator.pubmed import PubMedRoutes

pytestmark = pytest.mark.integration

# Matches most of the recorded PubMed records (NLP / machine learning papers); checked locally.
QUERY = '"natural language processing" OR "machine learning" OR NLP OR "deep learning"'
NOW = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def emu(running: Emulator) -> Emulator:
    running.reset()
    routes = running.source("pubmed")
    assert isinstance(routes, PubMedRoutes)
    routes.max_retrievable = 9_999
    return running


def settings_for(
    emu: Emulator,
    database_url: str,
    *,
    lookback_days: int = 20_000,
    query: str = QUERY,
    requests_per_second: float | None = 50.0,
):
    return parse_settings(
        {
            "database": {"url": database_url},
            "sources": {
                "pubmed": {
                    "base_url": emu.base_url("pubmed"),
                    "email": "tests@example.org",
                    # fast in tests; the pacing test keeps NCBI's own default
                    **({"requests_per_second": requests_per_second} if requests_per_second else {}),
                }
            },
            "topics": [
                {
                    "name": "nlp",
                    "query": query,
                    "sources": ["pubmed"],
                    "lookback_days": lookback_days,
                }
            ],
        },
        path="test.toml",
    )


@pytest.fixture
def make_app(emu: Emulator, database_url: str, sleeps: Sleeps) -> Iterator:
    built: list[App] = []

    def make(clock: FixedClock | None = None, **kwargs: object) -> App:
        app = build_app(
            settings_for(emu, database_url, **kwargs),  # type: ignore[arg-type]
            clock=clock or FixedClock(NOW),
            sleep=sleeps,
        )
        built.append(app)
        return app

    yield make
    for app in built:
        app.close()


def expected_records() -> list:
    """Every recorded PubMed record the local query accepts (read straight from the fixtures)."""
    from harvester.query.syntax import parse_query

    query = parse_query(QUERY)
    out = []
    for path in sorted((require_shared() / "pubmed").glob("efetch_*.xml")):
        out += [r for r in parse_efetch(path.read_bytes()).records if query.match(r)]
    return out


def test_harvest_stores_the_recorded_records_and_a_second_run_adds_nothing(make_app) -> None:
    app = make_app()
    topic = app.settings.topics[0]
    expected = expected_records()
    assert len(expected) >= 30  # the query is meant to match most of the recordings

    with capture_logs(processors=[merge_contextvars]) as logs:
        first = app.harvest(topic, "pubmed")
    assert first.status == "ok", first.error
    assert first.counts.new_works == first.counts.new_hits == len(expected)
    assert first.counts.records == 56 and first.counts.matched == len(expected)  # 56 recorded
    assert {w.record.ids.pmid for w in app.repo.works("nlp")} == {r.ids.pmid for r in expected}
    assert app.repo.watermark("nlp", "pubmed") == NOW
    (run,) = app.repo.runs("nlp", "pubmed")
    assert (run.expected, run.counts.records, run.error) == (56, 56, None)  # all it announced

    # every line of the run carries its topic, source and run id; one line ends it with counts
    run_lines = [e for e in logs if e.get("run_id") == first.run_id]
    assert run_lines and all(e["topic"] == "nlp" and e["source"] == "pubmed" for e in run_lines)
    finished = [e for e in run_lines if e["event"] == "harvest finished"]
    assert len(finished) == 1
    assert {k: finished[0][k] for k in ("new_works", "new_hits", "errors")} == {
        "new_works": len(expected),
        "new_hits": len(expected),
        "errors": 0,
    }
    assert finished[0]["requests"] == first.counts.requests >= 2

    second = app.harvest(topic, "pubmed")
    assert second.status == "ok"
    assert (second.counts.new_works, second.counts.new_hits) == (0, 0)
    assert app.repo.count_works() == len(expected)


def test_window_starts_at_watermark_less_overlap(make_app, emu: Emulator) -> None:
    clock = FixedClock(NOW)
    app = make_app(clock)
    topic = app.settings.topics[0]
    app.harvest(topic, "pubmed")
    clock.now = NOW + timedelta(days=10)
    emu.clear_requests()
    second = app.harvest(topic, "pubmed")
    assert second.window.start == NOW - timedelta(days=2)  # PubMed's default overlap
    searches = [r for r in emu.requests if r.path.endswith("esearch.fcgi")]
    assert searches[0].params["mindate"] == "2025/03/30"
    assert searches[0].params["maxdate"] == "2025/04/11"
    assert searches[0].params["datetype"] == "edat"
    assert searches[0].params["usehistory"] == "y"
    assert searches[0].params["tool"] == "harvester"
    assert searches[0].params["email"] == "tests@example.org"
    assert "[tiab]" in searches[0].params["term"]


def test_first_harvest_covers_lookback_days(make_app, emu: Emulator) -> None:
    app = make_app(lookback_days=7)
    result = app.harvest(app.settings.topics[0], "pubmed")
    assert result.window.start == NOW - timedelta(days=7)
    search = next(r for r in emu.requests if r.path.endswith("esearch.fcgi"))
    assert (search.params["mindate"], search.params["maxdate"]) == ("2025/03/25", "2025/04/01")
    assert result.counts.records == 0 and result.status == "ok"


def test_large_window_is_split_so_nothing_is_cut_off(make_app, emu: Emulator) -> None:
    routes = emu.source("pubmed")
    assert isinstance(routes, PubMedRoutes)
    routes.max_retrievable = 8  # stands in for NCBI's 9,999 so the recordings overflow it
    app = make_app()
    source = app.source("pubmed")
    source.max_per_search = 8  # type: ignore[attr-defined]
    source.batch_size = 5  # type: ignore[attr-defined]
    with capture_logs() as logs:
        result = app.harvest(app.settings.topics[0], "pubmed")
    assert result.status == "ok", result.error
    assert result.counts.new_works == len(expected_records())
    assert any(e["event"] == "window split" for e in logs)
    searches = [r for r in emu.requests if r.path.endswith("esearch.fcgi")]
    assert len(searches) > 3


def test_server_errors_are_retried(make_app, emu: Emulator, sleeps: Sleeps) -> None:
    emu.faults.add(source="pubmed", kind="status", status=503, path_suffix="efetch.fcgi", times=2)
    emu.faults.add(source="pubmed", kind="truncate", path_suffix="efetch.fcgi", times=1)
    app = make_app()
    result = app.harvest(app.settings.topics[0], "pubmed")
    assert result.status == "ok", result.error
    assert result.counts.new_works == len(expected_records())
    assert len(sleeps) >= 3  # two 503s and a truncated body, each backed off


def test_ncbi_error_body_fails_the_run_and_keeps_what_was_stored(make_app, emu: Emulator) -> None:
    app = make_app()
    source = app.source("pubmed")
    source.batch_size = 10  # type: ignore[attr-defined]
    # the first efetch page is fine; the second is NCBI's error document (a real recording)
    emu.faults.add(
        source="pubmed",
        kind="body",
        path_suffix="efetch.fcgi",
        after=1,
        fixture="pubmed/esummary_error_no_id.xml",
    )
    with capture_logs() as logs:
        result = app.harvest(app.settings.topics[0], "pubmed")
    assert result.status == "failed"
    assert "Neither query_key nor id specified" in (result.error or "")
    first_page = result.counts.matched  # records of the first page that are on topic
    assert result.counts.records == 10 and 0 < first_page == result.counts.new_works
    assert app.repo.count_works() == first_page  # the first page stayed stored
    assert app.repo.watermark("nlp", "pubmed") is None  # never past records not stored
    (run,) = app.repo.runs("nlp", "pubmed")
    assert run.status == "failed" and run.error == result.error
    assert any(e["event"] == "page unreadable" and "efetch.fcgi" in e["url"] for e in logs)

    # the next run reads the window again and completes it; nothing is stored twice
    again = app.harvest(app.settings.topics[0], "pubmed")
    assert again.status == "ok"
    assert app.repo.count_works() == len(expected_records())


def test_requests_are_paced_to_ncbi_limit(make_app, emu: Emulator) -> None:
    emu.set_rate_limit("pubmed", ncbi=True)  # 3/s without a key, 429 beyond
    app = make_app(requests_per_second=None)
    source = app.source("pubmed")
    source.batch_size = 10  # type: ignore[attr-defined]
    result = app.harvest(app.settings.topics[0], "pubmed")
    assert result.status == "ok"
    statuses = [r.status for r in emu.requests if r.source == "pubmed"]
    assert 429 not in statuses and len(statuses) >= 5
    times = [r.time for r in emu.requests if r.source == "pubmed"]
    assert times[-1] - times[0] >= (len(times) - 1) / 3 * 0.9


def test_no_results_is_a_clean_empty_run(make_app, emu: Emulator) -> None:
    app = make_app(lookback_days=1)
    result = app.harvest(app.settings.topics[0], "pubmed")
    assert (result.status, result.counts.pages, result.counts.records) == ("ok", 0, 0)
    assert [r.path.rsplit("/", 1)[1] for r in emu.requests if r.source == "pubmed"] == [
        "esearch.fcgi"
    ]
    assert app.repo.watermark("nlp", "pubmed") == NOW


def test_a_page_with_one_byte_that_is_not_utf8_is_stored_without_that_record(
    make_app, emu: Emulator
) -> None:
    # Derived from the real 50-record efetch page: one byte of its second article's title
    # replaced by 0xFF. libxml2 refuses such a page whole (the run failed on every retry);
    # harvester skips that one article with its reason, counts it and stores the rest
    # (issue 18.10).
    page = (
        require_shared() / "pubmed/efetch_pubmed_50_records_structured_abstracts.xml"
    ).read_bytes()
    second = page.index(b"<PubmedArticle>", page.index(b"<PubmedArticle>") + 1)
    at = page.index(b"<ArticleTitle>", second) + len(b"<ArticleTitle>") + 1
    damaged = page[:at] + b"\xff" + page[at + 1 :]
    emu.faults.add(source="pubmed", kind="body", path_suffix="efetch.fcgi", body=damaged)
    app = make_app()
    with capture_logs() as logs:
        result = app.harvest(app.settings.topics[0], "pubmed")
    # "partial": the run is complete but for the record it could not read, which is counted
    # as skipped and never holds the watermark (issue 11.2); the fault serves this one page
    # for every efetch, so fewer come back than esearch announced
    assert result.status == "partial" and result.complete
    assert (result.counts.skipped, result.counts.errors, result.counts.records) == (1, 0, 49)
    assert app.repo.watermark("nlp", "pubmed") == result.window.end
    skipped = [e for e in logs if e["event"] == "record skipped"]
    assert len(skipped) == 1 and "not UTF-8" in skipped[0]["reason"]
    assert app.repo.count_works() == result.counts.new_works > 0
