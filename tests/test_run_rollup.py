"""Issue 13.4: harvest_runs grew by one row per topic × source × tick forever. Runs older than
the retention are rolled up into daily counts per topic × source and deleted; the latest run
of each topic × source, and a run still running, stay (status and the back-off read them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from harvester.sources.base import Window
from harvester.store.database import current_revision, head_revision, open_engine
from harvester.store.repository import Repository
from harvester.store.values import RunCounts
from tests.conftest import FixedClock

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def add_run(repo: Repository, clock: FixedClock, topic: str, source: str, started: datetime,
            status: str | None, *, requests: int = 2, records: int = 10,
            backfill: bool = False) -> int:  # fmt: skip
    clock.now = started
    run = repo.begin_run(
        topic, source, Window(started - timedelta(days=1), started), backfill=backfill
    )
    if status is not None:
        counts = RunCounts(requests=requests, records=records, new_works=1, new_hits=1)
        repo.finish_run(run, status=status, counts=counts)
    return run


def test_old_runs_become_daily_counts_and_recent_ones_stay(database_url: str) -> None:
    clock = FixedClock(NOW)
    engine = open_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        repo = Repository(engine, clock=clock)
        old_day = NOW - timedelta(days=100)
        # three runs a day, 100 and 99 days ago, one of them failed; a backfill slice
        for day in (old_day, old_day + timedelta(days=1)):
            for hour, status in ((1, "ok"), (7, "failed"), (13, "ok")):
                add_run(repo, clock, "t", "pubmed", day.replace(hour=hour), status)
        add_run(repo, clock, "t", "pubmed", old_day.replace(hour=20), "ok", backfill=True)
        # a topic whose only (so latest) run is old; a run cut short (the next run marks it
        # interrupted) counts as a run that did not complete
        add_run(repo, clock, "quiet", "arxiv", old_day, "ok")
        add_run(repo, clock, "u", "crossref", old_day, None)
        add_run(repo, clock, "u", "crossref", NOW - timedelta(days=1), "ok")
        recent = add_run(repo, clock, "t", "pubmed", NOW - timedelta(days=2), "ok")
        clock.now = NOW
        before = repo.count_runs()

        rolled = repo.roll_up_runs(NOW - timedelta(days=90), batch=2)  # several batches
        assert rolled == 7  # t × pubmed's six scheduled runs, u's interrupted one
        assert repo.count_runs() == before - 7
        kept = {(r.topic, r.source, r.status, r.backfill) for r in repo.runs(limit=100)}
        assert ("quiet", "arxiv", "ok", False) in kept  # its latest run, however old
        assert [(d["runs"], d["completed"]) for d in repo.run_days("u", "crossref")] == [(1, 0)]
        assert ("t", "pubmed", "ok", True) in kept  # the latest backfill slice
        assert repo.runs("t", "pubmed", backfill=False)[0].id == recent
        days = repo.run_days("t", "pubmed")
        assert [(d["day"], d["runs"], d["completed"], d["failed"]) for d in days] == [
            (date(2026, 2, 21), 3, 2, 1),
            (date(2026, 2, 22), 3, 2, 1),
        ]
        assert all(d["requests"] == 6 and d["records"] == 30 for d in days)
        assert repo.roll_up_runs(NOW - timedelta(days=90)) == 0  # nothing left to roll up
    finally:
        engine.dispose()


def test_the_daemon_rolls_up_runs_past_its_retention(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harvester.harvesting.scheduler import Daemon
    from tests.test_daemon import fake_app

    clock = FixedClock(NOW)
    app = fake_app(f"sqlite:///{tmp_path / 'r.db'}", clock=clock)
    try:
        for days in (40, 39, 1):
            add_run(app.repo, clock, "t", "pubmed", NOW - timedelta(days=days), "ok")
        clock.now = NOW
        daemon = Daemon(app, BackgroundScheduler(), jitter=None, run_retention_days=30)
        assert daemon.rollup_job() == 2
        assert len(app.repo.runs("t", "pubmed")) == 1
        assert sum(d["runs"] for d in app.repo.run_days("t", "pubmed")) == 2
        off = Daemon(app, BackgroundScheduler(), jitter=None, run_retention_days=0)
        assert off.rollup_job() == 0
    finally:
        app.close()
