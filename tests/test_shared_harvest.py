"""Issue 13.1: a source's window is fetched once for every topic that uses it.

The emulator serves the real bioRxiv records of the fixtures by their posting date
(tests/emulator/biorxiv.py); its request log says which days each request asked for. A
topic joining a running deployment gets its whole ``lookback_days`` while the days another
topic's harvest already stored are read back from the store, not fetched again.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harvester.app import App, build_app
from harvester.config import Settings, parse_settings
from harvester.harvesting.shared import Member, combine, mode_of, plan_fetches
from harvester.query.syntax import parse_query
from harvester.sources.base import Window
from harvester.store.sharing import SharedStore, StoredWindow
from tests.conftest import FixedClock, Sleeps
from tests.emulator import Emulator

pytestmark = pytest.mark.integration

FIRST = datetime(2020, 3, 31, 12, 0, tzinfo=UTC)
NEXT = FIRST + timedelta(days=1)
EARLY = "cell* OR protein*"
LATE = "cancer* OR learning OR test* OR covid* OR sars*"
_DAYS = re.compile(r"/details/biorxiv/(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})/")


def settings(emu: Emulator, url: str, topics: list[dict[str, Any]]) -> Settings:
    return parse_settings(
        {
            "database": {"url": url},
            "sources": {"biorxiv": {"base_url": emu.base_url("biorxiv")}},
            "topics": [{"sources": ["biorxiv"], **t} for t in topics],
        },
        path="shared.toml",
    )


def asked(emu: Emulator) -> list[tuple[date, date]]:
    """The intervals of days the bioRxiv requests asked for."""
    out = []
    for r in emu.requests:
        found = _DAYS.search(r.path)
        if found:
            out.append((date.fromisoformat(found[1]), date.fromisoformat(found[2])))
    return sorted(set(out))


def hits(app: App, topic: str) -> set[str | None]:
    return {w.record.ids.doi for w in app.repo.works(topic)}


def test_a_topic_joining_later_reads_what_is_stored_and_fetches_only_what_it_lacks(
    emu: Emulator, database_url: str, sleeps: Sleeps, tmp_path: Path
) -> None:
    emu.server_now = NEXT
    early = {"name": "early", "query": EARLY, "lookback_days": 30}
    late = {"name": "late", "query": LATE, "lookback_days": 90}
    clock = FixedClock(FIRST)
    app = build_app(settings(emu, database_url, [early]), clock=clock, sleep=sleeps)
    try:
        (first,) = app.harvest_shared([app.settings.topic("early")], "biorxiv")
        assert first.status == "ok"
        assert asked(emu) == [(date(2020, 3, 1), date(2020, 3, 31))]
        stored = SharedStore(app.repo).windows("biorxiv")
        assert [(w.status, w.mode) for w in stored] == [("ok", "window")]
        # the deployment gains a topic; a day later both are due, one fetch serves both
        emu.clear_requests()
        clock.now = NEXT
        app.settings = settings(emu, database_url, [early, late])
        results = app.harvest_shared([app.settings.topic(n) for n in ("early", "late")], "biorxiv")
        assert {r.topic: r.status for r in results} == {"early": "ok", "late": "ok"}
        # what it lacked (from its lookback to the stored window), and the newest days with
        # the source's overlap (late-indexed records): never the stored March days between
        assert asked(emu) == [
            (date(2020, 1, 2), date(2020, 3, 1)),
            (date(2020, 3, 28), date(2020, 4, 1)),
        ]
        joined, daily = hits(app, "late"), hits(app, "early")
    finally:
        app.close()
    # the same topics harvested each on its own, from scratch, find the same works
    alone = build_app(
        settings(emu, f"sqlite:///{tmp_path / 'alone.db'}", [early, late]),
        clock=FixedClock(NEXT),
        sleep=sleeps,
    )
    try:
        assert alone.harvest(alone.settings.topic("late"), "biorxiv").status == "ok"
        assert hits(alone, "late") == joined and joined
    finally:
        alone.close()
    assert daily  # the daily topic found its own


def test_the_plan_fetches_only_the_spans_no_stored_window_covers() -> None:
    day = timedelta(days=1)
    t0 = datetime(2026, 1, 10, tzinfo=UTC)
    query = parse_query("x")
    members = [
        Member("daily", query, "x", Window(t0 - 2 * day, t0 + day)),
        Member("new", query, "x", Window(t0 - 30 * day, t0 + day)),
    ]
    stored = [StoredWindow(1, t0 - 7 * day, t0 - 3 * day), StoredWindow(2, t0 - 3 * day, t0)]
    gaps, tail = plan_fetches(members, stored, overlap=2 * day)
    assert gaps == [Window(t0 - 30 * day, t0 - 7 * day), Window(t0 - 2 * day, t0 + day)]
    assert tail == gaps[-1]
    # nothing stored: one fetch from the earliest start
    assert plan_fetches(members, [], overlap=day) == (
        [Window(t0 - 30 * day, t0 + day)],
        Window(t0 - 30 * day, t0 + day),
    )


def test_translations_are_combined_up_to_the_api_limit() -> None:
    mode = mode_of("semanticscholar")
    terms = [f"topic{n} + word{n}" for n in range(200)]
    chunks = combine(terms, mode)
    assert all(len(term) <= mode.limit for term, _ in chunks)
    assert sorted(i for _, covered in chunks for i in covered) == list(range(200))
    assert chunks[0][0].startswith("(topic0 + word0) | (topic1 + word1)")
    openalex = mode_of("openalex")
    (one,) = combine(["title_and_abstract.search:a", "title_and_abstract.search:b"], openalex)
    assert one == ("title_and_abstract.search:(a) OR (b)", [0, 1])
    assert combine(["title_and_abstract.search:a"], openalex) == [
        ("title_and_abstract.search:a", [0])
    ]
