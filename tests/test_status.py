"""`harvester status`, as text, on a fixed clock: the last scheduled run apart from the
backfill, and why a source never ran. (Stale daemons: tests/test_daemon.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.harvesting.backfill import backfill
from harvester.harvesting.status import render_status
from harvester.sources.base import Window
from tests.conftest import FixedClock
from tests.recorded_source import (
    NCBI_ERROR,
    TWO_RECORDS_QUERY,
    RecordedSource,
    recorded,
)

NOW = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    settings = parse_settings(
        {
            "database": {"url": database_url},
            "topics": [
                {
                    "name": "t",
                    "query": TWO_RECORDS_QUERY,
                    "sources": ["pubmed", "openalex", "europepmc"],
                    "schedule": "0 6 * * *",
                    "timezone": "UTC",
                }
            ],
        },
        path="s.toml",
    )
    built = build_app(settings, clock=FixedClock(NOW), sleep=lambda _s: None)

    def pages(window: Window) -> list[bytes]:
        # the backfill's 2025 slice meets NCBI's error document (a real recording)
        if window.start.year == 2025 and window.end < NOW - timedelta(days=3):
            return [recorded(NCBI_ERROR)]
        return [recorded()]

    built._sources["pubmed"] = RecordedSource(pages)
    yield built
    built.close()


def pubmed_lines(text: str, source: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"  {source}: ")))
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return lines[start:end]


def test_status_shows_the_last_scheduled_run_and_the_backfill_apart(app: App) -> None:
    """Issue 11.9: status showed the last backfill slice as the last run."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    topic = app.settings.topics[0]
    assert app.harvest(topic, "pubmed").status == "ok"  # the scheduled run, at 12:00
    clock.now = NOW + timedelta(hours=1)
    backfill(
        app,
        topic,
        since=date(2024, 1, 1),
        until=date(2024, 12, 31),
        sources=("pubmed",),
        slice_days=200,
    )
    clock.now = NOW + timedelta(hours=2)
    lines = pubmed_lines(render_status(app), "pubmed")
    assert lines[0].startswith("  pubmed: last run: 2025-04-01 12:00 UTC (2 h ago), ok; ")
    assert lines[1] == "    covered up to 2025-04-01 12:00 UTC (2 h ago)"
    assert lines[2] == "    backfill: 2024-01-01 through 2024-12-31 (2 slices)"

    # a slice that failed is named beside what the backfill covers
    backfill(app, topic, since=date(2025, 1, 1), until=date(2025, 3, 1), sources=("pubmed",))
    lines = pubmed_lines(render_status(app), "pubmed")
    assert lines[0].startswith("  pubmed: last run: 2025-04-01 12:00 UTC (2 h ago), ok; ")
    assert lines[2].startswith(
        "    backfill: 2024-01-01 through 2024-12-31 (2 slices); "
        "last slice (2025-01-01…) failed 2025-04-01 14:00 UTC"
    )
    assert "Neither query_key nor id specified" in lines[2]


def test_a_source_that_never_ran_says_why(app: App) -> None:
    """Issue 11.9: OpenAlex said 'last run: never' with no reason."""
    text = render_status(app)
    assert pubmed_lines(text, "openalex")[0] == (
        "  openalex: last run: never (skipped: needs an API key; set OPENALEX_API_KEY)"
    )
    assert pubmed_lines(text, "europepmc")[0] == (
        "  europepmc: last run: never (not yet scheduled: next run at "
        "2025-04-02 06:00 UTC (18 h from now))"
    )
