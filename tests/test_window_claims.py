"""Issue 13: `harvester harvest` beside a daemon draining the same source.

The daemon harvests a source's due windows as one batch under the source's claim, while a
command claimed each topic × source window on its own key: the two never met, so a command
ran a topic's window while the daemon's batch was fetching it (two runs of one window at
once, each marking the other's run 'interrupted' as if its process had died). A window run
on its own now also holds the source's claim, shared: not while a batch holds it, and a
batch not while a command does. Two apps on one database are two processes as far as the
claims go (lock files on SQLite, advisory locks on PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.harvesting.harvest import HarvestResult
from harvester.harvesting.queues import Due
from harvester.harvesting.scheduler import Daemon
from harvester.store.locks import (
    Claims,
    FileClaims,
    LocalClaims,
    PostgresClaims,
    claim_window,
    source_key,
)
from tests.recorded_source import TWO_RECORDS_QUERY, RecordedSource, recorded


def two_topic_app(database_url: str, gate: threading.Event | None = None) -> App:
    settings = parse_settings(
        {
            "database": {"url": database_url},
            "topics": [
                {"name": name, "query": TWO_RECORDS_QUERY, "sources": ["pubmed"]}
                for name in ("t", "u")
            ],
            "daemon": {"jitter_seconds": 0},
        },
        path="claims.toml",
    )
    app = build_app(settings, sleep=lambda _s: None)
    app._sources["pubmed"] = RecordedSource(lambda _w: [recorded()], gate=gate)
    return app


def fake(app: App) -> RecordedSource:
    source = app._sources["pubmed"]
    assert isinstance(source, RecordedSource)
    return source


@pytest.fixture
def apps(database_url: str) -> Iterator[tuple[App, App, threading.Event]]:
    """A daemon's app and a command's, on one database; the first one's source waits for
    the gate."""
    gate = threading.Event()
    daemon_app, command_app = two_topic_app(database_url, gate), two_topic_app(database_url)
    try:
        yield daemon_app, command_app, gate
    finally:
        gate.set()
        daemon_app.close()
        command_app.close()


def test_a_harvest_command_while_the_daemon_drains_the_source_is_skipped(
    apps: tuple[App, App, threading.Event],
) -> None:
    daemon_app, command_app, gate = apps
    daemon = Daemon(daemon_app, BackgroundScheduler(), jitter=None)
    due = datetime.now(UTC)
    batch: list[HarvestResult] = []
    worker = threading.Thread(
        target=lambda: batch.extend(
            daemon.harvest_batch("pubmed", [Due("t", due, due), Due("u", due, due)])
        )
    )
    worker.start()
    try:
        assert fake(daemon_app).fetching.wait(30)  # the batch holds the source, fetching
        results = command_app.harvest_all(command_app.settings.topics, only_source="pubmed")
    finally:
        gate.set()
        worker.join(30)
    assert [(r.topic, r.status) for r in results] == [("t", "claimed"), ("u", "claimed")]
    assert fake(command_app).windows == []  # the command fetched nothing
    assert sorted((r.topic, r.status) for r in batch) == [("t", "ok"), ("u", "ok")]
    repo = command_app.repo
    for topic in ("t", "u"):
        (run,) = repo.runs(topic, "pubmed", limit=10)  # one run of the window: the batch's
        assert run.status == "ok"
        assert repo.watermark(topic, "pubmed") == run.window.end


def test_the_daemon_waits_for_a_command_and_then_drops_the_window_it_ran(
    apps: tuple[App, App, threading.Event],
) -> None:
    """The other way round: a command is harvesting ``t`` when ``t`` and ``u`` fall due.
    The batch waits (queued again), then drops ``t`` (a run started after it fell due
    completed it) and harvests ``u``: each window once, none lost."""
    command_app, daemon_app, gate = apps  # here the command's source waits for the gate
    daemon = Daemon(daemon_app, BackgroundScheduler(), jitter=None, claimed_recheck_seconds=0)
    due = datetime.now(UTC) - timedelta(seconds=1)
    command: list[HarvestResult] = []
    topic_t = command_app.settings.topic("t")
    worker = threading.Thread(
        target=lambda: command.extend(command_app.harvest_all([topic_t], only_source="pubmed"))
    )
    worker.start()
    try:
        assert fake(command_app).fetching.wait(30)
        assert daemon.harvest_batch("pubmed", [Due("t", due, due), Due("u", due, due)]) == []
        assert fake(daemon_app).windows == []  # the batch fetched nothing beside the command
    finally:
        gate.set()
        worker.join(30)
    assert [(r.topic, r.status) for r in command] == [("t", "ok")]
    requeued = daemon.queue("pubmed").take_ready(daemon_app.clock)
    assert sorted(d.topic for d in requeued) == ["t", "u"]
    results = daemon.harvest_batch("pubmed", requeued)
    assert [(r.topic, r.status) for r in results] == [("u", "ok")]
    repo = daemon_app.repo
    for topic in ("t", "u"):
        (run,) = repo.runs(topic, "pubmed", limit=10)
        assert run.status == "ok"
        assert repo.watermark(topic, "pubmed") == run.window.end


def claims_of(kind: str, tmp_path: Path, postgres: str | None) -> Claims:
    from harvester.store.database import create

    if kind == "local":
        return LocalClaims()
    if kind == "file":
        return FileClaims(tmp_path / "h.db")
    assert postgres is not None
    return PostgresClaims(create(postgres))


@pytest.mark.parametrize("kind", ["local", "file", "postgres"])
def test_a_window_claim_shares_its_source_with_other_windows_but_not_with_a_batch(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres = request.getfixturevalue("postgres_url") if kind == "postgres" else None
    claims = claims_of(kind, tmp_path, postgres)
    try:
        window_and_batch_claims(claims)
    finally:
        if isinstance(claims, PostgresClaims):
            claims.engine.dispose()


def window_and_batch_claims(claims: Claims) -> None:
    with claim_window(claims, "t", "pubmed") as t:
        assert t
        with claim_window(claims, "u", "pubmed") as u, claim_window(claims, "t", "arxiv") as a:
            assert u and a  # other topics of the source, the topic on another source
        with claim_window(claims, "t", "pubmed") as again:
            assert not again  # the window itself is taken
        with claims.claim(source_key("pubmed")) as batch:
            assert not batch  # a batch waits for the commands
        with claims.claim(source_key("arxiv")) as other:
            assert other
    with claims.claim(source_key("pubmed")) as batch:
        assert batch
        with claim_window(claims, "u", "pubmed") as u:
            assert not u  # no command while the batch drains the source
    with claim_window(claims, "u", "pubmed") as u:
        assert u  # every claim was given back
