"""The daemon: schedules, catch-up, clean stop, one daemon per SQLite file, replicas on
PostgreSQL, crash safety under SIGKILL. Processes are the real `harvester` command."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from harvester.app import build_app
from harvester.config import parse_settings
from harvester.scheduler import (
    Daemon,
    digest_trigger,
    failure_backoff,
    harvest_trigger,
    missed_since,
)
from harvester.store.database import open_engine
from harvester.store.repository import Repository
from tests.conftest import require_shared
from tests.emulator import Emulator
from tests.smtp_server import LoopbackSMTP
from tests.test_cli import harvester_command

QUERY = '"natural language processing" OR "machine learning" OR NLP OR "deep learning"'
VIENNA_NOON = datetime(2025, 3, 3, 11, 0, tzinfo=UTC)  # a Monday, 12:00 in Vienna


def topic_settings(schedule: str = "0 6 * * *", cadence: str = "daily 08:00"):
    return parse_settings(
        {
            "topics": [
                {"name": "t", "query": "x", "schedule": schedule, "timezone": "Europe/Vienna"}
            ],
            "subscriptions": [
                {"topics": ["t"], "channel": "email", "to": ["a@b.org"], "cadence": cadence}
            ],
            "channels": {"email": {"host": "localhost"}},
        },
        path="t.toml",
    )


# -- pure scheduling rules ---------------------------------------------------------------------


def test_cron_schedule_runs_in_the_topic_timezone() -> None:
    topic = topic_settings().topics[0]
    nxt = harvest_trigger(topic).get_next_fire_time(None, VIENNA_NOON)
    assert nxt is not None and nxt.astimezone(UTC) == datetime(2025, 3, 4, 5, 0, tzinfo=UTC)


def test_missed_window_is_detected_from_the_watermark() -> None:
    trigger = harvest_trigger(topic_settings().topics[0])
    assert missed_since(trigger, None, VIENNA_NOON)  # never harvested
    # last harvest yesterday 07:00 Vienna; today's 06:00 run was missed
    assert missed_since(trigger, VIENNA_NOON - timedelta(days=1, hours=5), VIENNA_NOON)
    # harvested today at 07:00 Vienna (after the 06:00 run): nothing missed until tomorrow
    assert not missed_since(trigger, VIENNA_NOON - timedelta(hours=5), VIENNA_NOON)
    every = harvest_trigger(topic_settings("every 10m").topics[0])
    assert missed_since(every, VIENNA_NOON - timedelta(minutes=11), VIENNA_NOON)
    assert not missed_since(every, VIENNA_NOON - timedelta(minutes=9), VIENNA_NOON)


def test_digest_cadences() -> None:
    settings = topic_settings(cadence="weekly fri 09:30")
    trigger = digest_trigger(settings.subscriptions[0], settings.topics[0])
    assert trigger is not None
    nxt = trigger.get_next_fire_time(None, VIENNA_NOON)
    assert nxt is not None and nxt.astimezone(UTC) == datetime(2025, 3, 7, 8, 30, tzinfo=UTC)
    immediate = topic_settings(cadence="immediate")
    assert digest_trigger(immediate.subscriptions[0], immediate.topics[0]) is None


def test_failure_backoff_grows_and_is_capped() -> None:
    delays = [failure_backoff(n) for n in range(1, 10)]
    assert delays[0] == timedelta(minutes=5) and delays[1] == timedelta(minutes=10)
    assert delays == sorted(delays) and delays[-1] == timedelta(hours=6)


def test_bad_schedule_forms() -> None:
    from harvester.errors import ConfigError

    # "every 5 minutes" is understood since issue 14 (tests/test_config.py); an interval that
    # does not parse names the accepted forms rather than "a cron with 3 fields"
    for bad, problem in (("every 0s", "invalid interval"), ("*/5 * * *", "invalid cron")):
        with pytest.raises(ConfigError, match=f"schedule: {problem}"):
            topic_settings(bad)
    assert topic_settings("every 5 minutes").topics[0].interval_seconds == 300


# -- in-process daemon against the emulator ------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(require_shared()) as emu:
        yield emu


def daemon_config(
    emu: Emulator, database_url: str, *, smtp_port: int | None = None, schedule: str = "every 1s"
) -> dict:
    config: dict = {
        "database": {"url": database_url},
        "sources": {
            "pubmed": {
                "base_url": emu.base_url("pubmed"),
                "email": "t@example.org",
                "requests_per_second": 50,
            }
        },
        "topics": [
            {
                "name": "nlp",
                "query": QUERY,
                "sources": ["pubmed"],
                "schedule": schedule,
                "lookback_days": 20000,
            }
        ],
        "daemon": {"jitter_seconds": 0, "heartbeat_seconds": 1, "digest_retry_seconds": 1},
    }
    if smtp_port is not None:
        config["subscriptions"] = [
            {
                "topics": ["nlp"],
                "channel": "email",
                "to": ["team@example.org"],
                "cadence": "immediate",
                "max_items": 500,
            }
        ]
        config["channels"] = {
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from": "h@example.org",
            }
        }
    return config


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def test_daemon_harvests_on_schedule_and_restarts_without_gaps(
    emulator: Emulator, database_url: str
) -> None:
    emulator.reset()
    settings = parse_settings(daemon_config(emulator, database_url), path="d.toml")

    def start() -> tuple[Daemon, object]:
        app = build_app(settings)
        daemon = Daemon(app, BackgroundScheduler(), jitter=None, heartbeat_seconds=1)
        daemon.schedule()
        daemon.scheduler.start()
        return daemon, app

    daemon, app = start()
    wait_for(lambda: len([r for r in app.repo.runs("nlp") if r.status == "ok"]) >= 3)
    daemon.stop()
    daemon.beat(stopped=True)
    app.close()
    time.sleep(1.5)  # the daemon is down across at least one scheduled tick

    daemon, app = start()  # catch-up runs at once
    before = len(app.repo.runs("nlp", limit=1000))
    wait_for(lambda: len(app.repo.runs("nlp", limit=1000)) >= before + 2)
    daemon.stop()
    runs = sorted(app.repo.runs("nlp", limit=1000), key=lambda r: r.started_at)
    app.close()
    ok = [r for r in runs if r.status == "ok"]
    assert ok[0].counts.new_works >= 30 and all(r.counts.new_works == 0 for r in ok[1:])
    # windows are contiguous: each starts at (or before) the end of the previous one
    for previous, current in zip(ok, ok[1:], strict=False):
        assert current.window.start <= previous.window.end
    # never two harvests of one window at once
    for previous, current in zip(runs, runs[1:], strict=False):
        assert previous.finished_at is not None and previous.finished_at <= current.started_at


# -- the real command --------------------------------------------------------------------------


def write_config(path: Path, config: dict) -> Path:
    lines: list[str] = []

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    for key in ("database", "daemon"):
        if key in config:
            lines.append(f"[{key}]")
            lines += [f"{k} = {value(v)}" for k, v in config[key].items()]
    for name, table in config.get("sources", {}).items():
        lines.append(f"[sources.{name}]")
        lines += [f"{k} = {value(v)}" for k, v in table.items()]
    for name, table in config.get("channels", {}).items():
        lines.append(f"[channels.{name}]")
        lines += [f"{k} = {value(v)}" for k, v in table.items()]
    for array in ("topics", "subscriptions"):
        for table in config.get(array, []):
            lines.append(f"[[{array}]]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_daemon(config: Path, *extra: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [*harvester_command(), "--config", str(config), "--log-format", "json", "run", *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def test_sigterm_stops_cleanly_and_sqlite_refuses_a_second_daemon(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.reset()
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "h.toml", daemon_config(emulator, f"sqlite:///{db}"))
    first = start_daemon(config, "--health-port", "0", log=tmp_path / "first.log")
    try:
        engine = open_engine(f"sqlite:///{db}")
        repo = Repository(engine, clock=lambda: datetime.now(UTC))
        wait_for(lambda: any(r.status == "ok" for r in repo.runs("nlp")), timeout=30)
        second = subprocess.run(
            [*harvester_command(), "--config", str(config), "run"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "another harvester daemon" in second.stderr and "PostgreSQL" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, (tmp_path / "first.log").read_text()[-3000:]
    (beat,) = repo.heartbeats()
    assert beat[5] is not None  # stopped_at recorded
    statuses = {r.status for r in repo.runs("nlp", limit=1000)}
    assert statuses <= {"ok", "interrupted"}, statuses
    assert '"daemon stopped"' in (tmp_path / "first.log").read_text()
    engine.dispose()


def test_two_replicas_share_work_on_postgres(
    emulator: Emulator, postgres_url: str, tmp_path: Path
) -> None:
    emulator.reset()
    smtp = LoopbackSMTP()
    smtp.start()
    try:
        config = write_config(
            tmp_path / "r.toml", daemon_config(emulator, postgres_url, smtp_port=smtp.port)
        )
        replicas = [start_daemon(config, log=tmp_path / f"r{i}.log") for i in range(2)]
        engine = open_engine(postgres_url)
        repo = Repository(engine, clock=lambda: datetime.now(UTC))
        try:
            wait_for(lambda: len(repo.runs("nlp", limit=1000)) >= 8, timeout=60)
            wait_for(lambda: len(smtp.messages) >= 1, timeout=30)
            time.sleep(2)
        finally:
            for p in replicas:
                p.send_signal(signal.SIGTERM)
            for i, p in enumerate(replicas):
                assert p.wait(timeout=30) == 0, (tmp_path / f"r{i}.log").read_text()[-3000:]
        runs = sorted(repo.runs("nlp", limit=1000), key=lambda r: r.started_at)
        # both replicas were alive, yet no two harvests of the topic overlapped in time
        assert len({b[0] for b in repo.heartbeats()}) == 2
        for previous, current in zip(runs, runs[1:], strict=False):
            assert previous.finished_at is not None and previous.finished_at <= current.started_at
        works = repo.count("works")
        assert works >= 30 and repo.count("topic_hits") == works
        # every study was mailed exactly once, whichever replica sent it
        mailed = [m.parsed() for m in smtp.messages]
        assert sum(1 for _ in mailed) == repo.count("digests")
        assert repo.count("digest_items") == works
        ids = [m["Message-ID"] for m in mailed]
        assert len(ids) == len(set(ids))
        engine.dispose()
    finally:
        smtp.stop()


def test_sigkill_at_random_points_loses_nothing(emulator: Emulator, tmp_path: Path) -> None:
    """SIGKILL a harvest 20 times at random moments, then let one finish: every recorded
    record is stored once, hits are unique and the watermark matches a complete run."""
    emulator.reset()
    db = tmp_path / "k.db"
    config_dict = daemon_config(emulator, f"sqlite:///{db}")
    config_dict["sources"]["pubmed"]["page_size"] = 5  # many pages, many commit points
    config = write_config(tmp_path / "k.toml", config_dict)
    # each efetch answers slowly so kills land between and inside page commits
    emulator.faults.add(
        source="pubmed", kind="slow", path_suffix="efetch.fcgi", delay=0.3, times=None
    )
    rng = random.Random(20261125)
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    command = [*harvester_command(), "--config", str(config), "harvest"]
    try:
        kills = 0
        while kills < 20:
            proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
            time.sleep(rng.uniform(0.5, 4.5))  # start-up takes ~1 s, the harvest ~4 s
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
        final = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert final.returncode == 0, final.stdout + final.stderr
    finally:
        emulator.faults.clear()

    from harvester.query import parse_query
    from harvester.sources.pubmed import parse_efetch

    query = parse_query(QUERY)
    expected = {
        r.ids.pmid
        for path in (require_shared() / "pubmed").glob("efetch_*.xml")
        for r in parse_efetch(path.read_bytes()).records
        if query.match(r)
    }
    engine = open_engine(f"sqlite:///{db}")
    repo = Repository(engine, clock=lambda: datetime.now(UTC))
    stored = {w.record.ids.pmid for w in repo.works("nlp")}
    assert stored == expected
    assert repo.count("works") == len(expected) == repo.count("topic_hits")
    assert repo.count("provenance") == len(expected)
    ok_runs = [r for r in repo.runs("nlp", limit=1000) if r.status == "ok"]
    assert ok_runs, "the final harvest completed"
    assert repo.watermark("nlp", "pubmed") == max(r.window.end for r in ok_runs)
    # the next run marks the killed ones as interrupted; none moved the watermark
    runs = repo.runs("nlp", limit=1000)
    assert not [r for r in runs if r.status == "running"]
    # (a kill during start-up, before the run began, leaves no run at all)
    assert {r.status for r in runs} == {"ok", "interrupted"}
    engine.dispose()
