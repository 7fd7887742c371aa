"""Issue 13.3: a scheduler that never skips work.

Before, every topic × source was an APScheduler job holding one of ten pool threads while it
waited for its source's pace: topics sharing a fire time started later than the misfire grace
and were skipped, and the heartbeat job (in the same pool) was skipped with them. Now each
source has a queue of due windows drained by a worker of its own, and the heartbeat a thread
of its own. The sources here are paced fakes (tests/paced_source.py: a real recorded page, a
real rate limit); the replicas share a real PostgreSQL.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.harvesting.scheduler import INTERVAL_ANCHOR, Daemon, first_due_after, harvest_trigger
from harvester.sources.base import Window
from harvester.store.database import open_engine
from harvester.store.repository import Repository
from harvester.store.values import RunCounts
from tests.emulator import Emulator
from tests.paced_source import PacedSource
from tests.recorded_source import TWO_RECORDS_QUERY
from tests.test_daemon import daemon_config, start_daemon, wait_for, write_config


def many_topics_app(database_url: str, topics: int, every: int, *, rate: float) -> App:
    settings = parse_settings(
        {
            "database": {"url": database_url},
            "topics": [
                {
                    "name": f"t{n:03d}",
                    "query": TWO_RECORDS_QUERY,
                    "sources": ["pubmed"],
                    "schedule": f"every {every}s",
                }
                for n in range(topics)
            ],
            "daemon": {"jitter_seconds": 0},
        },
        path="many.toml",
    )
    app = build_app(settings)
    app._sources["pubmed"] = PacedSource(app.limiter, host="paced", requests_per_second=rate)
    return app


def seed_runs(app: App) -> None:
    """A completed run of every topic just now: no catch-up, the ticks are the schedule's."""
    now = datetime.now(UTC)
    for topic in app.settings.topics:
        run = app.repo.begin_run(topic.name, "pubmed", Window(now - timedelta(days=1), now))
        app.repo.finish_run(run, status="ok", counts=RunCounts(), watermark=now)


def next_fire(every: int, after: datetime) -> datetime:
    seconds = (after - INTERVAL_ANCHOR).total_seconds()
    return INTERVAL_ANCHOR + timedelta(seconds=(int(seconds // every) + 1) * every)


def record_beats(daemon: Daemon) -> list[float]:
    beats: list[float] = []
    original: Callable[..., None] = daemon.beat

    def beat(**kwargs: Any) -> None:
        original(**kwargs)
        beats.append(time.monotonic())

    daemon.beat = beat  # type: ignore[method-assign]
    return beats


def scheduled_runs(repo: Repository, topic: str) -> list[Any]:
    return [r for r in repo.runs(topic, "pubmed", limit=100, backfill=False)]


def test_many_topics_sharing_a_fire_time_are_each_harvested_once_per_tick(tmp_path: Path) -> None:
    """80 topics fire at once on a source paced at 40 requests/s (2 s of pace per tick),
    with a 1 s misfire grace: the old pool skipped the topics that started over 1 s late
    and starved the heartbeat; now every topic is harvested once on each tick and the
    heartbeat (every 0.5 s) never lapses past twice its interval."""
    topics, every, interval = 80, 6, 0.5
    app = many_topics_app(f"sqlite:///{tmp_path / 'q.db'}", topics, every, rate=40)
    seed_runs(app)
    daemon = Daemon(
        app, BackgroundScheduler(), jitter=None, misfire_grace=1, heartbeat_seconds=interval
    )
    beats = record_beats(daemon)
    # the planner starts before the first fire (asserted below), so it is the first tick
    first = next_fire(every, datetime.now(UTC) + timedelta(seconds=2))
    ticks = [first, first + timedelta(seconds=every)]
    names = [t.name for t in app.settings.topics]

    def harvested(tick: datetime) -> bool:
        return all(
            any(r.started_at >= tick and r.status == "ok" for r in scheduled_runs(app.repo, n))
            for n in names
        )

    try:
        daemon.schedule()
        daemon.scheduler.start()
        assert datetime.now(UTC) < first
        wait_for(lambda: harvested(ticks[1]), timeout=every * 2 + 60)
    finally:
        daemon.stop()
    try:
        for name in names:
            runs = [r for r in scheduled_runs(app.repo, name) if r.started_at >= ticks[0]]
            assert [r.status for r in runs] == ["ok", "ok"], (name, runs)
            # one run on each tick: the second began at or after the second fire time
            started = sorted(r.started_at for r in runs)
            assert ticks[0] <= started[0] < ticks[1] <= started[1], (name, started)
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        assert len(gaps) >= (every / interval), gaps
        assert max(gaps) <= 2 * interval, max(gaps)
    finally:
        app.close()


def test_two_replicas_on_postgres_harvest_each_window_once(postgres_url: str) -> None:
    """Two daemons (each its own engine, limiter and queue) on one PostgreSQL, 200 topics,
    three ticks: every topic is harvested exactly once per tick, by one replica or the
    other, never twice and never skipped; and (shared harvesting) each tick's window of
    the source is fetched once for all 200 topics, by whichever replica claimed it."""
    topics, every = 200, 8
    apps = [many_topics_app(postgres_url, topics, every, rate=500) for _ in range(2)]
    seed_runs(apps[0])
    daemons = [
        Daemon(app, BackgroundScheduler(), jitter=None, claimed_recheck_seconds=1.0) for app in apps
    ]
    first = next_fire(every, datetime.now(UTC) + timedelta(seconds=3))
    ticks = [first + timedelta(seconds=k * every) for k in range(3)]
    names = [t.name for t in apps[0].settings.topics]
    repo = apps[0].repo

    def harvested(tick: datetime) -> bool:
        since = [r for r in repo.runs(None, "pubmed", limit=5000) if r.started_at >= tick]
        return len({r.topic for r in since if r.status == "ok"}) == topics

    try:
        for daemon in daemons:
            daemon.schedule()
            daemon.scheduler.start()
        assert datetime.now(UTC) < first  # both planners wait for the first tick
        wait_for(lambda: harvested(ticks[2]), timeout=every * 3 + 90)
    finally:
        stoppers = [threading.Thread(target=d.stop) for d in daemons]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
    try:
        for name in names:
            runs = [r for r in scheduled_runs(repo, name) if r.started_at >= ticks[0]]
            started = sorted(r.started_at for r in runs)
            assert [r.status for r in runs] == ["ok"] * 3, (name, runs)
            assert ticks[0] <= started[0] < ticks[1] <= started[1] < ticks[2] <= started[2]
            ordered = sorted(runs, key=lambda r: r.started_at)
            for previous, current in zip(ordered, ordered[1:], strict=False):
                assert previous.finished_at is not None
                assert previous.finished_at <= current.started_at
        # the ticks' windows only: on a loaded machine a fire time can pass between seeding
        # the runs and scheduling, and the catch-up window it causes ends before the first tick
        fetched = [
            sum(1 for w in app._sources["pubmed"].windows if w.end >= ticks[0])  # type: ignore[attr-defined]
            for app in apps
        ]
        assert sum(fetched) == 3, fetched  # one fetch per tick for every topic
        assert len({b[0] for b in repo.heartbeats()}) == 2  # both replicas ran throughout
    finally:
        for app in apps:
            app.close()


def test_sigterm_stops_the_daemon_within_seconds_while_a_source_is_retrying(
    tmp_path: Path,
) -> None:
    """PubMed answers 503 with Retry-After: 120 to every request: the daemon's harvest is
    waiting to retry when SIGTERM comes, and the daemon still stops at once, cleanly."""
    from tests.conftest import require_shared

    with Emulator(require_shared()) as emu:
        emu.faults.add(source="pubmed", kind="status", status=503, retry_after=120, times=None)
        db = tmp_path / "s.db"
        config = write_config(tmp_path / "s.toml", daemon_config(emu, f"sqlite:///{db}"))
        log = tmp_path / "s.log"
        proc = start_daemon(config, log=log)
        engine = open_engine(f"sqlite:///{db}")
        repo = Repository(engine, clock=lambda: datetime.now(UTC))
        try:
            wait_for(lambda: any(r.status == "running" for r in repo.runs("nlp")), timeout=60)
            wait_for(lambda: "503" in log.read_text(), timeout=30)  # a retry is waiting
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
            engine.dispose()
        assert code == 0, log.read_text()[-3000:]
        assert took < 10, took
        assert '"daemon stopped"' in log.read_text()


def test_a_window_due_since_its_last_completed_run() -> None:
    settings = parse_settings(
        {"topics": [{"name": "t", "query": "x", "schedule": "0 6 * * *", "timezone": "UTC"}]},
        path="t.toml",
    )
    trigger = harvest_trigger(settings.topics[0])
    day = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert first_due_after(trigger, None, day) == day  # never run: due now
    # the last run started yesterday at 06:00:03: today's 06:00 is due
    last = datetime(2026, 3, 1, 6, 0, 3, tzinfo=UTC)
    assert first_due_after(trigger, last, day) == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    # started today at 06:00 exactly: that fire is answered, nothing due until tomorrow
    assert first_due_after(trigger, datetime(2026, 3, 2, 6, 0, tzinfo=UTC), day) is None


def test_status_shows_the_queue_per_source(tmp_path: Path) -> None:
    """`status` lists, per source, the windows due (fired since their last completed run),
    the oldest fire among them, and those running now; the same on every replica, since it
    is read from the store."""
    from harvester.harvesting.status import render_status
    from tests.conftest import FixedClock

    noon = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    clock = FixedClock(noon)
    settings = parse_settings(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'st.db'}"},
            "topics": [
                {
                    "name": name,
                    "query": TWO_RECORDS_QUERY,
                    "sources": ["pubmed", "europepmc"],
                    "schedule": "0 6 * * *",
                    "timezone": "UTC",
                }
                for name in ("a", "b", "c")
            ],
        },
        path="st.toml",
    )
    app = build_app(settings, clock=clock)
    try:

        def run(topic: str, source: str, started: datetime, status: str | None) -> None:
            clock.now = started
            rid = app.repo.begin_run(topic, source, Window(started - timedelta(days=1), started))
            if status is not None:
                app.repo.finish_run(rid, status=status, counts=RunCounts(), watermark=started)

        today, yesterday = noon.replace(hour=6, second=5), noon.replace(day=1, hour=6)
        for topic in ("a", "b", "c"):
            run(topic, "europepmc", today, "ok")  # every window of today's tick is done
        run("a", "pubmed", today, "ok")
        run("b", "pubmed", yesterday, "ok")
        run("b", "pubmed", today, "failed")  # a failed run does not answer the fire
        run("c", "pubmed", yesterday, "ok")
        run("c", "pubmed", today, None)  # running now
        clock.now = noon
        text = render_status(app)
        queues = text.split("queues\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert queues == [
            "  pubmed: 1 window due, the oldest since 2026-03-02 06:00 UTC (6 h ago); 1 running",
            "  europepmc: nothing due",
        ]
    finally:
        app.close()


def test_healthz_names_a_daemon_thread_that_ended(tmp_path: Path) -> None:
    """The heartbeat, the planner and each source's worker are threads of their own now: one
    that ended (a bug: each catches its own failures) makes /healthz unhealthy, by name."""
    from harvester.health import daemon_check

    app = many_topics_app(f"sqlite:///{tmp_path / 'h.db'}", 2, 3600, rate=50)
    daemon = Daemon(app, BackgroundScheduler(), jitter=None)
    try:
        daemon.schedule()
        daemon.scheduler.start()
        check = daemon_check(daemon, app.engine)
        assert check() == (True, "scheduler running")
        assert sorted(t.name for t in daemon._threads) == [
            "harvest:pubmed",
            "heartbeat",
            "planner",
        ]
        ended = threading.Thread(target=lambda: None, name="harvest:pubmed")
        ended.start()
        ended.join()
        daemon._threads[[t.name for t in daemon._threads].index("harvest:pubmed")] = ended
        assert check() == (False, "threads ended: harvest:pubmed")
    finally:
        daemon.stop()
        app.close()
