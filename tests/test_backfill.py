"""Backfill: date slices, checkpoints, resume, backfill hits kept out of digests, and a
backfill running beside the daemon on one database."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyte
import pytest
import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.digests.delivery import deliver, notifier_for
from harvester.errors import ConfigError
from harvester.harvesting.backfill import BackfillResult, backfill, backfill_window, date_slices
from harvester.harvesting.backfill import Progress as BackfillProgress
from harvester.harvesting.progress import progress_reporter
from harvester.harvesting.scheduler import Daemon
from harvester.logs import configure_logging
from tests.conftest import FixedClock
from tests.emulator import Emulator
from tests.smtp_server import LoopbackSMTP
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
    stored_before = app.repo.count_works()
    checkpoints = len(app.repo.finished_slices("nlp", "pubmed"))
    assert checkpoints < 8

    second = pubmed_history(app)
    assert second.complete and second.slices_skipped == checkpoints
    assert app.repo.count_works() >= stored_before
    assert app.repo.count_topic_hits() == app.repo.count_works()  # nothing twice
    third = pubmed_history(app)
    assert third.slices_skipped == 8 and third.runs == ()  # all done: no request at all


@pytest.fixture
def mail_app(emu: Emulator, database_url: str, smtp: LoopbackSMTP) -> Iterator[App]:
    """The app of :func:`app`, with an email subscription to nlp sent to ``smtp``."""
    config = daemon_config(emu, database_url, smtp_port=smtp.port, schedule="0 6 * * *")
    built = build_app(parse_settings(config, path="b.toml"), clock=FixedClock(NOW))
    yield built
    built.close()


def backfill_2022(app: App, *, notify: bool) -> BackfillResult:
    (result,) = backfill(
        app,
        app.settings.topics[0],
        since=date(2022, 1, 1),
        until=date(2022, 12, 31),
        sources=("pubmed",),
        notify=notify,
        slice_days=365,
    )
    return result


def test_a_notify_backfill_is_recorded_as_one_and_its_hits_are_delivered(
    mail_app: App, smtp: LoopbackSMTP
) -> None:
    """--notify decides only what digests send: its runs are backfill runs, like any
    backfill's (not the scheduled runs `harvester status` and the dashboard list), and its
    studies go out in the next digest."""
    result = backfill_2022(mail_app, notify=True)
    assert result.complete and result.runs
    runs = mail_app.repo.runs("nlp", "pubmed", limit=50)
    assert runs and all(r.backfill for r in runs)
    assert {r.id for r in runs} == {r.run_id for r in result.runs}
    assert mail_app.repo.runs("nlp", "pubmed", limit=50, backfill=False) == []

    hits = mail_app.repo.works("nlp")
    assert hits and not any(w.backfill for w in hits)
    subscription = mail_app.settings.subscriptions[0]
    sent = deliver(mail_app, subscription, notifier_for(mail_app, subscription))
    assert sent.items == len(hits) and len(sent.sent) == 1
    (message,) = smtp.messages
    text = message.parsed().get_body(preferencelist=("plain",)).get_content()
    for work in hits:
        assert " ".join((work.record.title or "").split())[:40] in " ".join(text.split())


def test_a_plain_backfill_is_recorded_as_one_and_its_hits_are_not_delivered(
    mail_app: App, smtp: LoopbackSMTP
) -> None:
    result = backfill_2022(mail_app, notify=False)
    assert result.complete
    runs = mail_app.repo.runs("nlp", "pubmed", limit=50)
    assert runs and all(r.backfill for r in runs)
    hits = mail_app.repo.works("nlp")
    assert hits and all(w.backfill for w in hits)
    subscription = mail_app.settings.subscriptions[0]
    sent = deliver(mail_app, subscription, notifier_for(mail_app, subscription))
    assert sent.items == 0 and sent.sent == ()
    assert smtp.messages == []


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
    assert daemon_app.repo.count_topic_hits() == daemon_app.repo.count_works()


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


# -- backfill windows: history is the past ------------------------------------------------------


def test_backfill_window_refuses_the_future_and_defaults_to_today() -> None:
    today = date(2026, 12, 1)
    assert backfill_window(date(2026, 1, 1), None, today=today) == (date(2026, 1, 1), today)
    assert backfill_window(date(2026, 1, 1), today, today=today) == (date(2026, 1, 1), today)
    with pytest.raises(ConfigError, match=r"^--since 2026-12-25 is in the future \(today is"):
        backfill_window(date(2026, 12, 25), None, today=today)
    with pytest.raises(ConfigError, match=r"^--since 2026-12-25 is in the future"):
        backfill_window(date(2026, 12, 25), date(2027, 1, 31), today=today)
    with pytest.raises(ConfigError, match=r"^--until 2027-01-31 is in the future"):
        backfill_window(date(2026, 11, 1), date(2027, 1, 31), today=today)
    with pytest.raises(ConfigError, match=r"^--until 2026-01-01 is before --since 2026-02-01$"):
        backfill_window(date(2026, 2, 1), date(2026, 1, 1), today=today)


def test_backfill_refuses_a_window_in_the_future(app: App) -> None:
    for since, until in (
        (date(2025, 4, 2), date(2025, 5, 31)),
        (date(2025, 1, 1), date(2025, 5, 1)),
    ):
        with pytest.raises(ConfigError, match="is in the future"):
            backfill(app, app.settings.topics[0], since=since, until=until, sources=("pubmed",))
    assert app.repo.finished_slices("nlp", "pubmed") == set()  # nothing checkpointed
    assert app.repo.runs("nlp", limit=10) == []  # and no run started


def test_the_slice_holding_the_run_start_ends_there(app: App) -> None:
    """--until today: the last slice is fetched up to the run's start and checkpointed only
    that far, so a later run (a later clock) fetches it again instead of skipping it."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    topic = app.settings.topics[0]
    kwargs = dict(since=date(2025, 3, 1), until=NOW.date(), sources=("pubmed",), slice_days=20)
    (first,) = backfill(app, topic, **kwargs)  # type: ignore[arg-type]
    assert first.complete and first.slices_total == 2
    ends = sorted(end for _start, end in app.repo.finished_slices("nlp", "pubmed"))
    assert ends[0] == datetime(2025, 3, 20, 23, 59, 59, tzinfo=UTC)
    assert ends[-1] == NOW  # not 2025-04-01 23:59:59, half a day not yet fetched
    assert all(end <= NOW for end in ends)

    clock.now = NOW + timedelta(hours=6)
    (later,) = backfill(app, topic, **kwargs)  # type: ignore[arg-type]
    assert later.slices_skipped == 1 and len(later.runs) == 1  # the last slice again
    assert max(end for _s, end in app.repo.finished_slices("nlp", "pubmed")) == clock.now


def _backfill_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    return subprocess.run(
        [*harvester_command(), "--config", str(config), "backfill", "nlp", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_backfill_command_refuses_future_windows(emu: Emulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "b.toml", daemon_config(emu, f"sqlite:///{tmp_path / 'b.db'}"))
    today = datetime.now(UTC).date()
    soon, later = today + timedelta(days=24), today + timedelta(days=61)
    alone = _backfill_cli(config, "--since", soon.isoformat())
    assert alone.returncode == 2, alone.stderr
    assert alone.stderr == (
        f"harvester: --since {soon.isoformat()} is in the future (today is {today} UTC)\n"
    )
    both = _backfill_cli(config, "--since", soon.isoformat(), "--until", later.isoformat())
    assert both.returncode == 2 and f"--since {soon.isoformat()} is in the future" in both.stderr
    reaching = _backfill_cli(
        config, "--since", (today - timedelta(days=5)).isoformat(), "--until", later.isoformat()
    )
    assert reaching.returncode == 2
    assert f"--until {later.isoformat()} is in the future" in reaching.stderr
    assert not (tmp_path / "b.db").exists()  # refused before anything was opened


# -- progress on a terminal: the bar and the log lines do not mix -------------------------------


class _Terminal(io.StringIO):
    """What the process writes to a terminal, kept to be drawn by a terminal emulator."""

    def isatty(self) -> bool:
        return True


def _screen(output: str, *, columns: int, rows: int = 300) -> list[str]:
    """The rows a VT100 terminal shows after ``output`` (a tty turns "\\n" into CR LF)."""
    screen = pyte.Screen(columns, rows)
    pyte.Stream(screen).feed(output.replace("\r\n", "\n").replace("\n", "\r\n"))
    return [row.rstrip() for row in screen.display if row.strip()]


def test_log_lines_print_above_the_bar_not_into_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the width rich draws for on a non-real terminal
    saved = structlog.get_config()
    terminal = _Terminal()
    configure_logging("console", stream=terminal)
    logger = structlog.get_logger("test")
    try:
        with progress_reporter(terminal) as report:
            for n in range(1, 6):
                report(BackfillProgress("pubmed", 5, slices_done=n - 1, pages=n, records=9 * n))
                logger.info("page stored", page=n)
                time.sleep(0.25)  # the bar redraws (10 times a second) between the lines
    finally:
        structlog.configure(**saved)
    rows = _screen(terminal.getvalue(), columns=100)
    pages = [row for row in rows if "page stored" in row]
    assert [re.search(r"page=(\d)", row)[1] for row in pages] == list("12345")  # type: ignore[index]
    assert not [row for row in pages if "slices" in row]  # no log line inside a bar
    bars = [row for row in rows if "slices ·" in row]
    assert len(bars) == 1 and rows[-1] == bars[0]  # one bar, below every log line
    assert "5 pages · 45 records" in bars[0]


def test_backfill_command_on_a_terminal_keeps_log_lines_whole(
    emu: Emulator, tmp_path: Path
) -> None:
    """`harvester backfill` in a pseudo-terminal, drawn by a terminal emulator: every log line
    is on a row of its own, the bar once, at the bottom. The PubMed rate is lowered to
    5 requests/s so that the bar redraws between pages."""
    settings = daemon_config(emu, f"sqlite:///{tmp_path / 't.db'}")
    settings["sources"]["pubmed"]["requests_per_second"] = 5
    config = write_config(tmp_path / "t.toml", settings)
    columns = 400  # wider than a log line, so the terminal wraps none
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 60, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("HARVESTER_DATABASE_URL", "COLUMNS")}
    proc = subprocess.Popen(
        [
            *harvester_command(),
            "--config",
            str(config),
            "backfill",
            "nlp",
            "--since",
            "2021-01-01",
            "--until",
            "2025-03-31",
            "--slice-days",
            "400",
        ],  # fmt: skip
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**env, "TERM": "xterm-256color"},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=120) == 0
    rows = _screen(b"".join(chunks).decode("utf-8", "replace"), columns=columns)
    logged = [row for row in rows if "page stored" in row or "harvest finished" in row]
    assert len([row for row in logged if "harvest finished" in row]) == 4  # a line per slice
    assert not [row for row in logged if "slices ·" in row]
    bars = [row for row in rows if "slices ·" in row]
    assert len(bars) == 1 and "4/4" in bars[0]
    assert rows[-1].startswith("nlp × pubmed: complete; 4 slices")
