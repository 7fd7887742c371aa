"""The daemon: schedules, catch-up, clean stop, one daemon per SQLite file, replicas on
PostgreSQL, crash safety under SIGKILL. Processes are the real `harvester` command."""

from __future__ import annotations

import json
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
from harvester.harvesting.scheduler import (
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
        works = repo.count_works()
        assert works >= 30 and repo.count_topic_hits() == works
        # every study was mailed exactly once, whichever replica sent it
        mailed = [m.parsed() for m in smtp.messages]
        assert sum(1 for _ in mailed) == repo.count_digests()
        assert repo.count_digest_items() == works
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

    from harvester.query.syntax import parse_query
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
    assert repo.count_works() == len(expected) == repo.count_topic_hits()
    assert repo.count_provenance() == len(expected)
    ok_runs = [r for r in repo.runs("nlp", limit=1000) if r.status == "ok"]
    assert ok_runs, "the final harvest completed"
    assert repo.watermark("nlp", "pubmed") == max(r.window.end for r in ok_runs)
    # the next run marks the killed ones as interrupted; none moved the watermark
    runs = repo.runs("nlp", limit=1000)
    assert not [r for r in runs if r.status == "running"]
    # (a kill during start-up, before the run began, leaves no run at all)
    assert {r.status for r in runs} == {"ok", "interrupted"}
    engine.dispose()


# -- failures the daemon must survive quietly ------------------------------------------------------


def fake_app(database_url: str, *, clock=None, **daemon: object):
    """An app whose one topic (``t``, on PubMed) is served by a RecordedSource."""
    from tests.recorded_source import TWO_RECORDS_QUERY

    settings = parse_settings(
        {
            "database": {"url": database_url},
            "topics": [
                {
                    "name": "t",
                    "query": TWO_RECORDS_QUERY,
                    "sources": ["pubmed"],
                    "schedule": "0 6 * * *",
                }
            ],
            "daemon": {"jitter_seconds": 0, **daemon},
        },
        path="f.toml",
    )
    return build_app(settings, clock=clock or (lambda: datetime.now(UTC)), sleep=lambda _s: None)


def test_a_run_that_raises_recursionerror_is_failed_and_backed_off(tmp_path: Path) -> None:
    """Issue 18.11: a RecursionError escaped run_harvest: traceback, the run left running,
    no back-off. Now the run fails and the daemon retries it later."""
    from harvester.sources.base import ParseResult
    from tests.recorded_source import RecordedSource, recorded

    def nested(page: object) -> ParseResult:
        import json

        json.loads(b"[" * 200_000 + b"]" * 200_000)
        return ParseResult(records=())

    app = fake_app(f"sqlite:///{tmp_path / 'r.db'}")
    app._sources["pubmed"] = RecordedSource(lambda w: [recorded()], parse=nested)
    daemon = Daemon(app, BackgroundScheduler(), jitter=None)
    try:
        result = daemon.harvest_job("t", "pubmed")
        assert result is not None and result.status == "failed"
        assert "RecursionError" in (result.error or "")
        (run,) = app.repo.runs("t", "pubmed")
        assert run.status == "failed" and run.finished_at is not None
        retry = daemon.scheduler.get_job("retry:t:pubmed")
        assert retry is not None  # the back-off applies: 5 minutes after the first failure
        assert retry.trigger.run_date - datetime.now(UTC) > timedelta(minutes=4)
        # a scheduled fire inside the back-off does nothing (and fetches nothing)
        fetched = len(app._sources["pubmed"].windows)
        assert daemon.harvest_job("t", "pubmed") is None
        assert len(app._sources["pubmed"].windows) == fetched
    finally:
        app.close()


def test_status_marks_a_daemon_whose_heartbeat_lapsed_as_stale(tmp_path: Path) -> None:
    """Issue 18.13: a daemon killed with -9 stayed listed as running."""
    from harvester.harvesting.status import render_status
    from tests.conftest import FixedClock

    clock = FixedClock(VIENNA_NOON)
    app = fake_app(f"sqlite:///{tmp_path / 's.db'}", clock=clock, heartbeat_seconds=30)
    try:
        app.repo.beat("alive-1", host="h1", pid=11)
        app.repo.beat("killed-2", host="h2", pid=22)
        clock.now = VIENNA_NOON + timedelta(seconds=100)  # three beats (90 s) missed
        app.repo.beat("alive-1", host="h1", pid=11)
        out = render_status(app).split("daemons\n", 1)[1]
        assert "alive-1 on h1 (pid 11), up since" in out
        assert "killed-2 on h2 (pid 22): stale, no heartbeat since 2025-03-03 11:00 UTC" in out
        assert "killed-2 on h2 (pid 22), up since" not in out
        clock.now = VIENNA_NOON + timedelta(days=2)  # a day later it is no longer listed
        assert "killed-2" not in render_status(app)
    finally:
        app.close()


def test_healthz_reports_a_harvest_stuck_past_its_deadline(tmp_path: Path) -> None:
    """Issue 18.4: /healthz said ok while a harvest hung (and max_instances=1 kept the
    topic × source blocked until a restart)."""
    import threading
    import urllib.error
    import urllib.request

    from harvester.health import HealthServer, daemon_check
    from tests.recorded_source import RecordedSource, recorded

    app = fake_app(f"sqlite:///{tmp_path / 'h.db'}")
    gate = threading.Event()  # the source never answers until the test lets it
    source = RecordedSource(lambda w: [recorded()], gate=gate)
    app._sources["pubmed"] = source
    daemon = Daemon(app, BackgroundScheduler(), jitter=None, max_run_seconds=0.5)
    health = HealthServer(daemon_check(daemon, app.engine), host="127.0.0.1", port=0)
    health.start()

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health.port}/healthz") as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    try:
        daemon.schedule()  # the first harvest is a catch-up, due now
        daemon.scheduler.start()
        assert source.fetching.wait(20)
        assert get() == (200, "ok: scheduler running\n")  # running, not yet past 0.5 s
        wait_for(lambda: get()[0] == 503, timeout=10)
        status, body = get()
        assert body.startswith("unhealthy: stuck: harvest:t:pubmed running for ")
        assert body.rstrip().endswith("(limit 0 s)")
        gate.set()  # the server answers at last; the run ends and health comes back
        wait_for(lambda: get()[0] == 200, timeout=20)
        assert app.repo.runs("t", "pubmed")[0].status == "ok"
    finally:
        gate.set()
        health.stop()
        daemon.stop()
        app.close()


def structured_stderr(text: str) -> list[dict]:
    """Every line of a daemon's output, as JSON; any line that is not (a raw traceback)
    fails the test."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a structured line: {line!r}\n{text[-3000:]}") from None
    return lines


def test_a_database_that_goes_away_gives_one_structured_line_per_failure(
    emulator: Emulator, database_url: str, tmp_path: Path
) -> None:
    """Issue 18.13: a 60 s PostgreSQL outage printed 69 raw tracebacks. The database goes
    away under a running daemon (PostgreSQL: its schema dropped and made anew, empty;
    SQLite: its tables renamed away); every line stays structured, each failing job says
    so once per failure, and the failing harvest backs off instead of failing every second."""
    import sqlalchemy as sa

    emulator.reset()
    config = write_config(tmp_path / "o.toml", daemon_config(emulator, database_url))
    log_path = tmp_path / "o.log"
    daemon = start_daemon(config, log=log_path)
    engine = open_engine(database_url)
    repo = Repository(engine, clock=lambda: datetime.now(UTC))
    try:
        wait_for(lambda: any(r.status == "ok" for r in repo.runs("nlp")), timeout=60)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        else:
            with engine.begin() as conn:
                for table in ("heartbeats", "harvest_runs", "watermarks"):
                    conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {table}_gone"))
        time.sleep(5)  # the heartbeat (1 s) and the harvest (every 1 s) keep firing
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
        engine.dispose()
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text
    lines = structured_stderr(text)
    beats = [e for e in lines if e["event"] == "heartbeat failed"]
    harvests = [e for e in lines if e["event"] == "harvest job failed; retrying later"]
    assert 2 <= len(beats) <= 8, [e["event"] for e in lines]
    assert all(e["level"] == "error" and e["error"] for e in beats + harvests)
    # one failure, then the back-off (5 minutes) holds the every-second schedule
    assert len(harvests) == 1, [e["event"] for e in lines]
    assert harvests[0]["retry_in_seconds"] == 300
    assert not [e for e in lines if e.get("logger", "").startswith("apscheduler")]


def test_a_harvest_command_beside_another_skips_the_claimed_window(
    emulator: Emulator, database_url: str, tmp_path: Path
) -> None:
    """Issue 18.7: `harvester harvest` ran the same window as the daemon at the same moment.
    Two processes harvest one topic × source at once: one runs it, the other skips it. On
    SQLite the claim is a lock file beside the database (the daemon takes the same one)."""
    emulator.reset()
    emulator.faults.add(
        source="pubmed", kind="slow", path_suffix="efetch.fcgi", delay=1.0, times=None
    )
    config_dict = daemon_config(emulator, database_url)
    config_dict["sources"]["pubmed"]["page_size"] = 5  # a dozen slow pages: ~12 s
    config = write_config(tmp_path / "c.toml", config_dict)
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    command = [*harvester_command(), "--config", str(config), "--log-format", "json", "harvest"]
    engine = open_engine(database_url)
    repo = Repository(engine, clock=lambda: datetime.now(UTC))
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        wait_for(lambda: any(r.status == "running" for r in repo.runs("nlp")), timeout=60)
        second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
        emulator.faults.clear()
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout == "nlp × pubmed: claimed by another process, skipped\n"
    assert first.returncode == 0, out + err
    assert out.startswith("nlp × pubmed: ok; ")
    (run,) = repo.runs("nlp", limit=10)  # the second process recorded no run at all
    assert run.status == "ok"
    engine.dispose()


def test_an_apscheduler_job_exception_is_one_structured_redacted_line() -> None:
    """Issue 18.12: APScheduler's job tracebacks went to stderr raw and unredacted. They go
    through structlog now: one JSON line, the traceback a field, the secret REDACTED."""
    import sys

    secret = "slack-hook-b5e0c94d7a"
    script = (
        "import sys, time\n"
        "from apscheduler.schedulers.background import BackgroundScheduler\n"
        "from harvester.logs import configure_logging\n"
        "configure_logging('json', secrets=[sys.argv[1]])\n"
        "def job():\n"
        "    raise RuntimeError('the webhook said: ' + sys.argv[1] + ' is not valid')\n"
        "scheduler = BackgroundScheduler()\n"
        "scheduler.add_job(job, id='digest:team', name='digest:team')\n"
        "scheduler.start()\n"
        "time.sleep(1.5)\n"
        "scheduler.shutdown()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, secret], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout + proc.stderr
    (line,) = structured_stderr(proc.stderr)
    assert line["level"] == "error" and line["logger"].startswith("apscheduler")
    assert 'Job "digest:team' in line["event"] and "raised an exception" in line["event"]
    assert "RuntimeError: the webhook said: REDACTED is not valid" in line["exception"]


def test_the_daemon_skips_a_window_that_a_command_holds(tmp_path: Path) -> None:
    """The daemon and `harvester harvest` take one claim per topic × source; on SQLite it is
    a lock file beside the database, so it holds between processes (the in-process locks
    of before did not)."""
    from harvester.store.locks import FileClaims, claims_for
    from tests.recorded_source import RecordedSource, recorded

    app = fake_app(f"sqlite:///{tmp_path / 'l.db'}")
    source = RecordedSource(lambda w: [recorded()])
    app._sources["pubmed"] = source
    daemon = Daemon(app, BackgroundScheduler(), jitter=None)
    command = claims_for(app.engine)  # what a command in another process builds
    assert isinstance(command, FileClaims)
    assert command.database == (tmp_path / "l.db").resolve()
    try:
        with command.claim("harvest:t:pubmed") as mine:
            assert mine
            assert daemon.harvest_job("t", "pubmed") is None
        assert source.windows == []  # nothing was fetched while the command held it
        result = daemon.harvest_job("t", "pubmed")
        assert result is not None and result.status == "ok"
    finally:
        app.close()
