"""Backfill: date slices, checkpoints, resume, backfill hits kept out of digests, and a
backfill running beside the daemon on one database."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from harvester.app import App, build_app
from harvester.backfill import BackfillResult, backfill, date_slices
from harvester.config import parse_settings
from harvester.scheduler import Daemon
from tests.conftest import FixedClock
from tests.emulator import Emulator
from tests.test_cli import harvester_command
from tests.test_daemon import daemon_config, wait_for, write_config

QUERY = '"natural language processing" OR "machine learning" OR NLP OR "deep learning"'
NOW = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def test_date_slices_cover_every_day_once() -> None:
    slices = list(date_slices(date(2024, 1, 1), date(2024, 3, 15), 30))
    assert [s.start.date() for s in slices] == [
        date(2024, 1, 1),
        date(2024, 1, 31),
        date(2024, 3, 1),
    ]
    assert slices[-1].end.date() == date(2024, 3, 15)
    for a, b in zip(slices, slices[1:], strict=False):
        assert (b.start - a.end).total_seconds() == 1  # 23:59:59 then 00:00:00
    assert list(date_slices(date(2024, 1, 1), date(2024, 1, 1), 7))[0].start.date() == date(
        2024, 1, 1
    )
    with pytest.raises(ValueError):
        list(date_slices(date(2024, 1, 1), date(2024, 1, 2), 0))


@pytest.fixture
def app(emu: Emulator, database_url: str) -> Iterator[App]:
    settings = parse_settings(daemon_config(emu, database_url, schedule="0 6 * * *"), path="b.toml")
    built = build_app(settings, clock=FixedClock(NOW), sleep=lambda _s: None)
    yield built
    built.close()


def pubmed_history(app: App, should_stop: Callable[[], bool] = lambda: False) -> BackfillResult:
    """The first topic's PubMed history, 2018 to March 2025, backfilled in yearly slices."""
    (result,) = backfill(
        app,
        app.settings.topics[0],
        since=date(2018, 1, 1),
        until=date(2025, 3, 31),
        sources=("pubmed",),
        slice_days=365,
        should_stop=should_stop,
    )
    return result


def test_backfill_stores_history_as_backfill_and_leaves_the_watermark(app: App) -> None:
    result = pubmed_history(app)
    assert result.complete and result.slices_total == 8 and result.slices_skipped == 0
    works = app.repo.works("nlp")
    # the recorded PubMed records with an Entrez date in 2018-2025 that the query accepts
    assert len(works) >= 30 and all(w.backfill for w in works)
    assert app.repo.watermark("nlp", "pubmed") is None  # the daily window is not moved
    assert app.repo.pending("any-subscription", ["nlp"]) == []  # not news
    assert len(app.repo.pending("any-subscription", ["nlp"], include_backfill=True)) == len(works)


def test_interrupted_backfill_resumes_where_it_stopped(app: App) -> None:
    calls = {"pages": 0}

    def stop_after_two_pages() -> bool:
        calls["pages"] += 1
        return calls["pages"] >= 2

    first = pubmed_history(app, should_stop=stop_after_two_pages)
    assert not first.complete  # the stop cut a slice short
    stored_before = app.repo.count("works")
    checkpoints = len(app.repo.finished_slices("nlp", "pubmed"))
    assert checkpoints < 8

    second = pubmed_history(app)
    assert second.complete and second.slices_skipped == checkpoints
    assert app.repo.count("works") >= stored_before
    assert app.repo.count("topic_hits") == app.repo.count("works")  # nothing twice
    third = pubmed_history(app)
    assert third.slices_skipped == 8 and third.runs == ()  # all done: no request at all


def test_backfill_notify_makes_hits_digest_material(app: App) -> None:
    topic = app.settings.topics[0]
    backfill(
        app,
        topic,
        since=date(2022, 1, 1),
        until=date(2022, 12, 31),
        sources=("pubmed",),
        notify=True,
        slice_days=365,
    )
    hits = app.repo.works("nlp")
    assert hits and not any(w.backfill for w in hits)
    assert len(app.repo.pending("sub", ["nlp"])) == len(hits)


def test_backfill_runs_beside_the_daemon_on_one_database(emu: Emulator, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = parse_settings(daemon_config(emu, url, schedule="every 1s"), path="s.toml")
    daemon_app = build_app(settings)
    daemon = Daemon(daemon_app, BackgroundScheduler(), jitter=None)
    daemon.schedule()
    daemon.scheduler.start()
    try:
        backfill_app = build_app(settings)
        errors: list[BaseException] = []

        def run_backfill() -> None:
            try:
                backfill(
                    backfill_app,
                    settings.topics[0],
                    since=date(2000, 1, 1),
                    until=date(2025, 3, 31),
                    sources=("pubmed",),
                    slice_days=200,
                )
            except BaseException as e:  # reported to the test thread below
                errors.append(e)

        worker = threading.Thread(target=run_backfill)
        worker.start()
        wait_for(lambda: len(daemon_app.repo.runs("nlp", limit=1000)) >= 6, timeout=60)
        worker.join(timeout=120)
        assert not worker.is_alive() and errors == []
        slices = list(date_slices(date(2000, 1, 1), date(2025, 3, 31), 200))
        assert len(backfill_app.repo.finished_slices("nlp", "pubmed")) == len(slices)
        backfill_app.close()
    finally:
        daemon.stop()
        daemon_app.close()
    assert daemon_app.repo.count("topic_hits") == daemon_app.repo.count("works")


def test_backfill_command_logs_progress_and_resumes(emu: Emulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "b.toml", daemon_config(emu, f"sqlite:///{tmp_path / 'b.db'}"))
    command = [
        *harvester_command(),
        "--config",
        str(config),
        "backfill",
        "nlp",
        "--since",
        "2020-01-01",
        "--until",
        "2025-03-31",
        "--slice-days",
        "400",
    ]
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "nlp × pubmed: complete; 5 slices (0 done before)" in first.stdout
    assert '"backfill progress"' in first.stderr  # log lines, not a bar, off a terminal
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert "5 slices (5 done before), 0 new works" in again.stdout
    bad = subprocess.run(
        [*command[:-2], "--source", "arxiv"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode == 2 and "does not use 'arxiv'" in bad.stderr
