"""What a harvest run leaves behind when things go wrong: skipped records, failed pages, a
clock that runs ahead of the servers, exceptions nobody foresaw, secrets an API echoes back.

The pages are real recorded PubMed responses (or derived from them, as each test says),
served by a fake source (tests/recorded_source.py) or by the API emulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.harvesting.backfill import backfill
from harvester.harvesting.harvest import CLOCK_MARGIN, plan_window
from harvester.harvesting.status import render_status
from harvester.sources.base import Page, ParseResult, Window
from tests.conftest import FixedClock
from tests.emulator import Emulator
from tests.recorded_source import (
    NCBI_ERROR,
    TWO_RECORDS_QUERY,
    RecordedSource,
    recorded,
    with_unreadable_pmid,
)

NOW = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def settings(
    database_url: str,
    *,
    query: str = TWO_RECORDS_QUERY,
    base_url: str | None = None,
    lookback_days: int = 2,
):
    pubmed: dict[str, object] = {"email": "t@example.org", "requests_per_second": 50}
    if base_url is not None:
        pubmed["base_url"] = base_url
    return parse_settings(
        {
            "database": {"url": database_url},
            "sources": {"pubmed": pubmed},
            "topics": [
                {"name": "t", "query": query, "sources": ["pubmed"], "lookback_days": lookback_days}
            ],
        },
        path="t.toml",
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def app(database_url: str, clock: FixedClock) -> Iterator[App]:
    built = build_app(settings(database_url), clock=clock, sleep=lambda _s: None)
    yield built
    built.close()


def use(app: App, source: RecordedSource) -> RecordedSource:
    app._sources["pubmed"] = source  # the app's source, as app.source("pubmed") returns it
    return source


# -- 1. a skipped record never holds the watermark -----------------------------------------------


def test_a_skipped_record_does_not_grow_the_window_run_after_run(
    app: App, clock: FixedClock
) -> None:
    """Issue 11.2: one unreadable record made every run partial, a partial run held the
    watermark, and the window grew by a day on every run (2 → 3 → 4 → 5 days)."""
    use(app, RecordedSource(lambda w: [with_unreadable_pmid(recorded())]))
    topic = app.settings.topics[0]
    lengths = []
    for day in range(4):
        clock.now = NOW + timedelta(days=day)
        result = app.harvest(topic, "pubmed")
        assert result.status == "partial", result.error
        assert app.repo.watermark("t", "pubmed") == clock.now
        assert result.complete
        assert (result.counts.records, result.counts.skipped, result.counts.errors) == (1, 1, 0)
        lengths.append(result.window.end - result.window.start)
    # the lookback (2 days) on the first run, then the overlap (2 days) and one new day
    assert lengths == [timedelta(days=2)] + [timedelta(days=3)] * 3

    run = app.repo.runs("t", "pubmed")[0]
    assert run.status == "partial" and run.counts.skipped == 1
    assert run.skip_reasons == ("not-a-pmid: missing or invalid PMID 'not-a-pmid'",)
    status = render_status(app)
    assert "1 records skipped: not-a-pmid: missing or invalid PMID 'not-a-pmid'" in status


def test_a_failed_page_still_holds_the_watermark(app: App, clock: FixedClock) -> None:
    good = recorded()
    source = use(app, RecordedSource(lambda w: [good]))
    topic = app.settings.topics[0]
    assert app.harvest(topic, "pubmed").status == "ok"
    # the next window's second page is NCBI's error document (a real recording)
    source.pages = lambda w: [good, recorded(NCBI_ERROR)]
    clock.now = NOW + timedelta(days=1)
    result = app.harvest(topic, "pubmed")
    assert (result.status, result.complete) == ("failed", False)
    assert "Neither query_key nor id specified" in (result.error or "")
    assert app.repo.watermark("t", "pubmed") == NOW  # not moved past the unread page


def test_backfill_checkpoints_a_slice_with_skips_but_not_one_with_a_failed_page(
    app: App,
) -> None:
    def pages(window: Window) -> list[bytes]:
        if window.end.year == 2024:
            return [with_unreadable_pmid(recorded())]  # every page stored, a record skipped
        return [recorded(), recorded(NCBI_ERROR)]  # the second page cannot be read

    use(app, RecordedSource(pages))
    (result,) = backfill(
        app,
        app.settings.topics[0],
        since=date(2024, 1, 1),
        until=date(2025, 3, 31),  # before NOW: a future --until is refused
        sources=("pubmed",),
        slice_days=365,
    )
    assert [r.status for r in result.runs] == ["partial", "failed"]
    assert not result.complete
    (done,) = app.repo.finished_slices("t", "pubmed")
    assert done == (result.runs[0].window.start, result.runs[0].window.end)


# -- 2. a clock ahead of the servers ------------------------------------------------------------


def test_plan_window_never_makes_an_empty_window_from_a_future_watermark() -> None:
    window = plan_window(NOW + timedelta(days=30), NOW, lookback_days=7, overlap=timedelta(days=2))
    assert window == Window(NOW - timedelta(days=2), NOW)


def test_a_clock_30_days_ahead_leaves_the_watermark_at_the_servers_date(
    running: Emulator, database_url: str
) -> None:
    """Issue 18.9: one run with the clock 30 days ahead set the watermark a month away and
    the next window was (now, now]."""
    running.reset()
    server_now = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
    running.server_now = server_now  # the emulated servers' Date header
    clock = FixedClock(server_now + timedelta(days=30))
    app = build_app(
        # every recorded PubMed record, so the window has pages (and their Date headers)
        settings(
            database_url,
            query="learning",
            base_url=running.base_url("pubmed"),
            lookback_days=20_000,
        ),
        clock=clock,
        sleep=lambda _s: None,
    )
    try:
        topic = app.settings.topics[0]
        with capture_logs() as logs:
            ahead = app.harvest(topic, "pubmed")
        assert ahead.status == "ok", ahead.error
        assert app.repo.watermark("t", "pubmed") == server_now + CLOCK_MARGIN
        (warning,) = [e for e in logs if e["event"] == "clock ahead of the server"]
        assert warning["ahead_seconds"] == 30 * 86400
        assert warning["server_date"] == server_now.isoformat()

        # the clock is put right a day later: the window reaches back over the overlap
        clock.now = server_now + timedelta(days=1)
        running.server_now = clock.now
        after = app.harvest(topic, "pubmed")
        assert after.window == Window(server_now + CLOCK_MARGIN - timedelta(days=2), clock.now)
        assert app.repo.watermark("t", "pubmed") == clock.now
    finally:
        app.close()
        running.server_now = None


def test_a_watermark_stored_in_the_future_is_repaired_by_the_next_run(
    app: App, clock: FixedClock
) -> None:
    """A watermark a clock ahead stored before this guard existed: the next complete run
    replaces it, as no source has records from the future."""
    use(app, RecordedSource(lambda w: [recorded()]))
    topic = app.settings.topics[0]
    clock.now = NOW + timedelta(days=30)
    app.harvest(topic, "pubmed")  # no server date to bound it: the clock is believed
    assert app.repo.watermark("t", "pubmed") == NOW + timedelta(days=30)
    clock.now = NOW + timedelta(days=1)
    result = app.harvest(topic, "pubmed")
    assert result.window == Window(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert app.repo.watermark("t", "pubmed") == NOW + timedelta(days=1)


# -- 3. exceptions nobody foresaw --------------------------------------------------------------


def json_parse(page: Page) -> ParseResult:
    json.loads(page.body)  # what a JSON source's parser does first, unguarded
    return ParseResult(records=())


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        # deeply nested JSON: the decoder recurses until RecursionError
        (b"[" * 200_000 + b"]" * 200_000, "RecursionError"),
        # a 5,000-digit integer: Python refuses to convert it (ValueError, max str digits)
        (b'{"message": {"total-results": ' + b"9" * 5000 + b"}}", "ValueError"),
    ],
    ids=["nested", "huge-integer"],
)
def test_an_unexpected_exception_fails_the_run_instead_of_escaping(
    app: App, body: bytes, error_type: str
) -> None:
    use(app, RecordedSource(lambda w: [body], parse=json_parse))
    with capture_logs() as logs:
        result = app.harvest(app.settings.topics[0], "pubmed")
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith(f"unexpected {error_type}: ")
    (run,) = app.repo.runs("t", "pubmed")
    assert (run.status, run.error) == ("failed", result.error)  # finished, not 'running'
    assert run.finished_at is not None
    assert app.repo.watermark("t", "pubmed") is None
    (crash,) = [e for e in logs if e["event"] == "harvest crashed"]
    assert crash["error_type"] == error_type and crash["log_level"] == "error"


def test_keyboard_interrupt_marks_the_run_interrupted_and_goes_on(app: App) -> None:
    def interrupted(page: Page) -> ParseResult:
        raise KeyboardInterrupt

    use(app, RecordedSource(lambda w: [recorded()], parse=interrupted))
    with pytest.raises(KeyboardInterrupt):
        app.harvest(app.settings.topics[0], "pubmed")
    (run,) = app.repo.runs("t", "pubmed")
    assert (run.status, run.error) == ("interrupted", "interrupted by KeyboardInterrupt")


def test_a_failing_fetch_of_any_kind_fails_the_run(app: App) -> None:
    use(app, RecordedSource(lambda w: [RuntimeError("connection pool exploded")]))
    result = app.harvest(app.settings.topics[0], "pubmed")
    assert result.status == "failed"
    assert result.error == "unexpected RuntimeError: connection pool exploded"


# -- 4. secrets stay out of what is stored --------------------------------------------------------


def test_a_secret_in_an_error_is_redacted_before_it_is_stored(
    database_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "ncbi-key-5f1e9a7c3b"
    monkeypatch.setenv("HV_TEST_NCBI_KEY", secret)
    config = settings(database_url).model_dump()
    config["sources"]["pubmed"]["api_key_env"] = "HV_TEST_NCBI_KEY"
    app = build_app(parse_settings(config, path="t.toml"), clock=clock, sleep=lambda _s: None)
    try:
        # NCBI's real error document, its message changed to echo the key back
        echo = recorded(NCBI_ERROR).replace(
            b"Neither query_key nor id specified", f"API key {secret} is invalid".encode()
        )
        use(app, RecordedSource(lambda w: [echo]))
        result = app.harvest(app.settings.topics[0], "pubmed")
        assert result.status == "failed"
        assert result.error is not None and "API key REDACTED is invalid" in result.error
        (run,) = app.repo.runs("t", "pubmed")
        assert run.error is not None and secret not in run.error and "REDACTED" in run.error
        assert secret not in render_status(app)
    finally:
        app.close()
