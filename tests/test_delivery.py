"""The outbox end to end: real loopback SMTP and Slack-like servers, real PubMed records.

A digest is stored before it is sent and marked sent only after the server accepted it; an
outage leaves it pending, and the next tick after the outage sends it once, whole."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.digests.delivery import deliver, notifier_for, preview, retry_delay
from harvester.sources.base import Window
from harvester.sources.pubmed import parse_efetch
from tests.conftest import FixedClock, require_shared
from tests.emulator import Emulator
from tests.slack_server import SlackWebhookServer
from tests.smtp_server import LoopbackSMTP

pytestmark = pytest.mark.integration

QUERY = '"natural language processing" OR "machine learning"'


def make_app(database_url: str, clock: FixedClock, subscription: dict, channels: dict) -> App:
    settings = parse_settings(
        {
            "database": {"url": database_url},
            "topics": [{"name": "nlp", "query": QUERY, "sources": ["pubmed"]}],
            "subscriptions": [subscription],
            "channels": channels,
        },
        path="delivery.toml",
    )
    return build_app(settings, clock=clock, sleep=lambda _s: None)


def store_fixture_hits(app: App, *, backfill: bool = False) -> int:
    """Store the recorded PubMed records the topic accepts, as a harvest would."""
    path = require_shared() / "pubmed" / "efetch_pubmed_50_records_structured_abstracts.xml"
    query = app.settings.topics[0].parsed_query
    records = [r for r in parse_efetch(path.read_bytes()).records if query.match(r)]
    now = app.clock()
    run = app.repo.begin_run("nlp", "pubmed", Window(now - timedelta(days=1), now))
    app.repo.store_page(run, "nlp", records, backfill=backfill)
    return len(records)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2025, 6, 2, 6, 0, tzinfo=UTC))


@pytest.fixture
def smtp() -> Iterator[LoopbackSMTP]:
    server = LoopbackSMTP()  # bound, not yet listening: connections are refused until start()
    yield server
    if server._thread is not None:  # aiosmtpd's Controller: set while running
        server.stop()
    else:  # never started: release what the constructor opened
        server._sock.close()
        server.loop.close()


def email_app(database_url: str, clock: FixedClock, port: int, **sub: object) -> App:
    return make_app(
        database_url,
        clock,
        {
            "topics": ["nlp"],
            "channel": "email",
            "to": ["team@example.org"],
            "max_items": 500,
            **sub,
        },
        {
            "email": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from": "harvester@example.org",
                "timeout": 2,
            }
        },
    )


def test_smtp_down_for_three_ticks_then_up_sends_one_whole_digest(
    database_url: str, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    app = email_app(database_url, clock, smtp.port)
    sub = app.settings.subscriptions[0]
    notifier = notifier_for(app, sub)
    stored = store_fixture_hits(app)
    assert stored >= 20

    for tick in range(3):  # the server refuses connections
        result = deliver(app, sub, notifier)
        assert result.sent == () and len(result.failed) == 1, tick
        clock.now += retry_delay(tick + 1) + timedelta(seconds=1)
    ((_, _, attempts, error),) = app.repo.pending_digests()
    assert attempts == 3 and error  # one stored digest, three failed attempts, the reason kept

    smtp.start()
    result = deliver(app, sub, notifier)
    assert len(result.sent) == 1 and result.items == stored
    (message,) = smtp.messages
    mail = message.parsed()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert text.count("https://pubmed.ncbi.nlm.nih.gov/") >= stored  # every study, once
    assert app.repo.pending_digests() == []

    again = deliver(app, sub, notifier)  # nothing new: nothing sent
    assert again.sent == () and again.failed == () and len(smtp.messages) == 1
    app.close()


def test_a_digest_is_not_resent_while_backing_off(
    database_url: str, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    app = email_app(database_url, clock, smtp.port)
    sub = app.settings.subscriptions[0]
    store_fixture_hits(app)
    deliver(app, sub, notifier_for(app, sub))  # refused
    smtp.start()
    early = deliver(app, sub, notifier_for(app, sub))  # still inside the backoff window
    assert early.sent == () and smtp.messages == []
    clock.now += retry_delay(1)
    assert len(deliver(app, sub, notifier_for(app, sub)).sent) == 1
    app.close()


def test_backfill_hits_wait_for_notify_and_max_items_keeps_the_rest(
    database_url: str, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    smtp.start()
    app = email_app(database_url, clock, smtp.port, max_items=5)
    sub = app.settings.subscriptions[0]
    store_fixture_hits(app, backfill=True)
    assert deliver(app, sub, notifier_for(app, sub)).sent == ()  # backfill is not news
    with_backfill = deliver(app, sub, notifier_for(app, sub), include_backfill=True)
    assert with_backfill.items == 5  # the first five; the rest stay for the next digest
    assert len(app.repo.pending(sub.key, ["nlp"], include_backfill=True)) > 0
    app.close()


def test_dry_run_preview_stores_and_sends_nothing(
    database_url: str, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    app = email_app(database_url, clock, smtp.port)
    sub = app.settings.subscriptions[0]
    stored = store_fixture_hits(app)
    digest, rendered = preview(app, sub)
    assert len(digest.items) == stored and rendered.count == stored
    assert "<html" in rendered.html.lower() and rendered.slack
    assert app.repo.count_digests() == 0 and smtp.messages == []
    app.close()


def test_slack_outage_then_recovery_posts_every_item_once(
    database_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SlackWebhookServer() as slack:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.url)
        app = make_app(
            database_url,
            clock,
            {"topics": ["nlp"], "channel": "slack", "max_items": 500},
            {"slack": {"webhook_url_env": "TEST_SLACK_WEBHOOK"}},
        )
        sub = app.settings.subscriptions[0]
        stored = store_fixture_hits(app)
        # more 503s than the notifier's attempts for one message: this tick fails
        slack.fail_next(503, "service unavailable", times=5)
        assert deliver(app, sub, notifier_for(app, sub)).failed
        assert slack.posts == []
        clock.now += timedelta(hours=1)
        result = deliver(app, sub, notifier_for(app, sub))
        assert len(result.sent) == 1 and result.items == stored
        posted = "".join(str(p) for p in slack.posts)
        assert posted.count("found in PubMed") == stored  # one context line per study
        assert slack.url not in str(app.repo.pending_digests())
        app.close()


def test_journal_version_of_a_sent_preprint_says_now_published_in(
    database_url: str, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    """A preprint is mailed; later its journal article arrives (linked, not merged): the
    article's entry says where the preprint is now published."""
    smtp.start()
    app = email_app(database_url, clock, smtp.port)
    sub = app.settings.subscriptions[0]
    path = require_shared() / "pubmed" / "efetch_pubmed_50_records_structured_abstracts.xml"
    article = next(
        r
        for r in parse_efetch(path.read_bytes()).records
        if r.ids.doi and r.venue and app.settings.topics[0].parsed_query.match(r)
    )
    # its preprint, derived from the real record: a bioRxiv DOI, no journal details
    preprint = article.with_changes(
        source="biorxiv", source_id="10.1101/2022.01.01.000001",
        ids=article.ids.__class__(doi="10.1101/2022.01.01.000001"), venue=None, volume=None,
        issue=None, pages=None, type="preprint",
    )  # fmt: skip
    now = app.clock()
    window = Window(now - timedelta(days=1), now)
    app.repo.store_page(app.repo.begin_run("nlp", "biorxiv", window), "nlp", [preprint])
    assert len(deliver(app, sub, notifier_for(app, sub)).sent) == 1
    clock.now += timedelta(days=1)
    app.repo.store_page(app.repo.begin_run("nlp", "pubmed", window), "nlp", [article])
    assert len(deliver(app, sub, notifier_for(app, sub)).sent) == 1
    second = smtp.messages[1].parsed()
    text = second.get_body(preferencelist=("plain",)).get_content()
    assert f"now published in {article.venue}" in text
    html = second.get_body(preferencelist=("html",)).get_content()
    assert "now published in" in html
    app.close()


# -- the cadence, retries and the outbox order (issues 18.1, 11.6) ----------------------------


def store_records(app: App, records: list, *, topic: str = "nlp") -> None:
    now = app.clock()
    run = app.repo.begin_run(topic, "pubmed", Window(now - timedelta(days=1), now))
    app.repo.store_page(run, topic, records)


def fixture_records() -> list:  # type: ignore[type-arg]
    path = require_shared() / "pubmed" / "efetch_pubmed_50_records_structured_abstracts.xml"
    return list(parse_efetch(path.read_bytes()).records)


def test_a_weekly_daemon_sends_nothing_on_its_retry_ticks(
    database_url: str, smtp: LoopbackSMTP, emu: Emulator
) -> None:
    """The daemon as `harvester run` schedules it (its real scheduler and clock), harvesting
    the recorded PubMed responses from the emulator, for a weekly subscriber on a day that is
    not its day, with a retry interval of 0.2 s: in 4 s (20 retry ticks) it sends nothing.
    When the cadence fires, one digest holds the studies. (Before, every retry tick built and
    sent a new digest from the fresh hits: 5 digests in 75 s with the default 300 s.)"""
    from apscheduler.schedulers.background import BackgroundScheduler

    from harvester.digests.delivery import deliverer
    from harvester.harvesting.scheduler import Daemon

    smtp.start()
    # a weekday two days from the real today, so the real cron cannot fire during the test
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(datetime.now(UTC).weekday() + 2) % 7]
    settings = parse_settings(
        {
            "database": {"url": database_url},
            "sources": {"pubmed": {"base_url": emu.base_url("pubmed"), "email": "t@example.org"}},
            "topics": [{"name": "nlp", "query": QUERY, "sources": ["pubmed"],
                        "lookback_days": 20000}],
            "subscriptions": [{"topics": ["nlp"], "channel": "email", "to": ["team@example.org"],
                               "cadence": f"weekly {day} 03:00", "max_items": 5}],
            "channels": {"email": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                   "from": "harvester@example.org"}},
        },
        path="weekly.toml",
    )  # fmt: skip
    app = build_app(settings)
    daemon = Daemon(
        app,
        BackgroundScheduler(),
        deliver=deliverer(app),
        jitter=None,
        heartbeat_seconds=1,
        digest_retry_seconds=0.2,
    )
    ticks: list[str] = []
    daemon.scheduler.add_listener(lambda event: ticks.append(event.job_id), EVENT_JOB_EXECUTED)
    daemon.schedule()  # catches up at once: the first harvest finds the recorded studies
    daemon.scheduler.start()
    try:
        wait_until(lambda: any(r.status == "ok" for r in app.repo.runs("nlp")))
        assert len(app.repo.pending(settings.subscriptions[0].key, ["nlp"])) >= 20
        time.sleep(4)
    finally:
        daemon.scheduler.shutdown(wait=True)
    assert ticks.count(f"retry:{settings.subscriptions[0].key}") >= 10  # it did tick, often
    assert smtp.messages == [] and app.repo.count_digests() == 0
    daemon.digest_job(0)  # the cadence fires
    (message,) = smtp.messages
    assert str(message.parsed()["Subject"]).startswith("harvester: 5 new studies (")
    daemon.stop()
    app.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_the_daemon_schedule_has_a_retry_job_that_only_resends(
    database_url: str, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    """The jobs Daemon.schedule() makes: the retry job re-sends an unsent digest (and only
    it); new hits that arrived meanwhile wait for the cadence."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from harvester.digests.delivery import deliverer
    from harvester.harvesting.scheduler import Daemon

    app = email_app(database_url, clock, smtp.port, cadence="weekly sun 03:00", max_items=5)
    records = fixture_records()
    store_records(app, records[:10])
    daemon = Daemon(app, BackgroundScheduler(), deliver=deliverer(app), jitter=None)
    daemon.digest_job(0)  # the cadence: the server is down, the digest stays unsent
    ((_, digest_id, _, _),) = app.repo.pending_digests()
    assert len(app.repo.digest_works(digest_id)) == 5
    smtp.start()
    store_records(app, records[10:20])  # a later harvest
    clock.now += timedelta(minutes=5)
    daemon.retry_job(0)
    daemon.retry_job(0)
    (message,) = smtp.messages
    assert message.parsed()["X-Harvester-Digest"]
    assert app.repo.count_digests() == 1 and app.repo.pending_digests() == []
    assert len(app.repo.pending(app.settings.subscriptions[0].key, ["nlp"])) == 15
    app.close()


# -- the real command, beside another process (issues 18.6, 18.7, 18.4, 11.6) ------------------


def command_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    return {**env, **extra}


def email_config(database_url: str, port: int, **email: object) -> dict:
    return {
        "database": {"url": database_url},
        "topics": [{"name": "nlp", "query": QUERY, "sources": ["pubmed"]}],
        "subscriptions": [
            {"topics": ["nlp"], "channel": "email", "to": ["team@example.org"],
             "cadence": "weekly sun 03:00", "max_items": 500}
        ],
        "channels": {"email": {"host": "127.0.0.1", "port": port, "security": "none",
                               "from": "harvester@example.org", **email}},
    }  # fmt: skip


def test_a_killed_slack_delivery_resumes_after_the_last_posted_part(
    tmp_path: Path, clock: FixedClock
) -> None:
    """`harvester digest` is SIGKILLed while Slack holds part 3 of a multi-part digest; the
    next `harvester digest` posts parts 3.. only: every part reaches the channel once.
    (Before, accepted parts were recorded only when a later part failed, so all were posted
    again.)"""
    from tests.test_cli import harvester_command
    from tests.test_daemon import write_config

    with SlackWebhookServer() as slack:
        env = command_env(TEST_SLACK_WEBHOOK=slack.url)
        url = f"sqlite:///{tmp_path / 'h.db'}"
        config = {
            "database": {"url": url},
            "topics": [{"name": "nlp", "query": QUERY, "sources": ["pubmed"]}],
            "subscriptions": [{"topics": ["nlp"], "channel": "slack", "max_items": 500,
                               "webhook_url_env": "TEST_SLACK_WEBHOOK"}],
        }  # fmt: skip
        path = write_config(tmp_path / "h.toml", config)
        os.environ["TEST_SLACK_WEBHOOK"] = slack.url
        try:
            app = build_app(parse_settings(config, path=str(path)), clock=clock)
        finally:
            del os.environ["TEST_SLACK_WEBHOOK"]
        records = fixture_records()
        # the 50 real records and a second copy under other identifiers (derived: new DOIs
        # and PMIDs, so they stay separate works): a digest of many Slack messages
        copies = [
            r.with_changes(
                ids=replace(r.ids, doi=f"10.5555/copy.{n}", pmid=str(90000000 + n)),
                source_id=str(90000000 + n),
            )
            for n, r in enumerate(records)
        ]
        store_records(app, records + copies)
        app.close()
        command = [*harvester_command(), "--config", str(path), "digest"]
        slack.hold_after(2)
        log = tmp_path / "first.log"
        with log.open("wb") as out:
            first = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            assert slack.held.wait(60), log.read_text()
            first.kill()  # SIGKILL: no handler runs, nothing is cleaned up
            first.wait(timeout=10)
        finally:
            slack.release()
        assert len(slack.posts) == 2
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        total = int(slack.posts[0]["text"].rsplit(" of ", 1)[1].rstrip(")"))
        assert total >= 4
        labels = [p["text"].rsplit("(part ", 1)[1] for p in slack.posts]
        assert labels == [f"{k} of {total})" for k in range(1, total + 1)]  # each part once
        posted = "".join(str(p) for p in slack.posts)
        assert posted.count("found in PubMed") == len(records) * 2


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_digest_commands_at_once_send_each_pending_digest_once(
    backend: str, tmp_path: Path, clock: FixedClock, request: pytest.FixtureRequest
) -> None:
    """Two `harvester digest` processes at once (as one beside the daemon would be) on three
    pending digests, with an SMTP server that takes 1 s per message: each digest arrives once.
    (Before, commands took no claim: both processes sent every pending digest.)"""
    from tests.test_cli import harvester_command
    from tests.test_daemon import write_config

    url = (
        f"sqlite:///{tmp_path / 'h.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    smtp = LoopbackSMTP()
    smtp.handler.delay = 1.0
    smtp.start()
    try:
        config = email_config(url, smtp.port)
        path = write_config(tmp_path / "h.toml", config)
        app = build_app(parse_settings(config, path=str(path)), clock=FixedClock(datetime.now(UTC)))
        store_records(app, fixture_records()[:30])
        sub = app.settings.subscriptions[0]
        works = app.repo.pending(sub.key, ["nlp"])
        for chunk in (works[:10], works[10:20], works[20:30]):
            app.repo.create_digest(sub.key, "email", [("nlp", w.id) for w in chunk])
        app.close()
        command = [*harvester_command(), "--config", str(path), "digest"]
        procs = [
            subprocess.Popen(command, env=command_env(), stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        keys = [m.parsed()["X-Harvester-Digest"] for m in smtp.messages]
        assert len(keys) == 3 and len(set(keys)) == 3, outputs
        assert any("another harvester process" in o or "nothing to send" in o for o in outputs)
    finally:
        smtp.stop()


def test_a_tarpit_smtp_server_ends_the_digest_command_at_its_deadline(
    tmp_path: Path, clock: FixedClock
) -> None:
    """An SMTP server that sends its banner one byte a second: `harvester digest` with
    `[channels.email] deadline = 3` ends within seconds with the reason, the digest stays
    unsent. (Before, each byte reset the 30 s read timeout: the command hung for minutes.)"""
    from tests.smtp_server import TarpitSMTP
    from tests.test_cli import harvester_command
    from tests.test_daemon import write_config

    with TarpitSMTP(interval=1.0) as tarpit:
        url = f"sqlite:///{tmp_path / 'h.db'}"
        config = email_config(url, tarpit.port, timeout=30, deadline=3)
        path = write_config(tmp_path / "h.toml", config)
        app = build_app(parse_settings(config, path=str(path)), clock=FixedClock(datetime.now(UTC)))
        store_records(app, fixture_records()[:5])
        started = time.monotonic()
        done = subprocess.run(
            [*harvester_command(), "--config", str(path), "digest"],
            env=command_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        took = time.monotonic() - started
        assert done.returncode == 1, done.stdout + done.stderr
        assert took < 20  # the deadline is 3 s; start-up takes about 1 s
        assert "deadline of 3 s" in done.stdout
        assert "still unsent" in done.stdout and "retries it at" in done.stdout
        assert tarpit.connections == 1
        ((_, _, attempts, error),) = app.repo.pending_digests()
        assert attempts == 1 and "deadline" in (error or "")
        app.close()


# -- Message-ID, Retry-After, the outbox after an outage (18.8, 18.13, 11.6) ---------------------


def test_message_ids_differ_across_databases_and_stay_for_a_resent_digest(
    tmp_path: Path, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    """Digest #1 of two databases (other studies, or the same ones) never shares a
    Message-ID; a digest whose acceptance the client never heard of (the server kept it and cut
    the connection) is re-sent unchanged with its Message-ID, and the studies found meanwhile
    come after it, in a digest of their own. (Before, the Message-ID was a hash of the
    subscription and the digest number only.)"""
    smtp.start()
    records = fixture_records()
    ids = []
    for name, chosen in (("a", records[:5]), ("b", records[5:10]), ("c", records[:5])):
        app = email_app(f"sqlite:///{tmp_path / name}.db", clock, smtp.port)
        store_records(app, chosen)
        only = app.settings.subscriptions[0]
        result = deliver(app, only, notifier_for(app, only))
        assert result.sent == (1,)
        ids.append(smtp.messages[-1].parsed()["Message-ID"])
        app.close()
    assert len(set(ids)) == 3, ids

    app = email_app(f"sqlite:///{tmp_path / 'd'}.db", clock, smtp.port)
    sub = app.settings.subscriptions[0]
    store_records(app, records[:5])
    smtp.handler.drop_after = 1  # accepted, then the connection is cut before the reply
    assert deliver(app, sub, notifier_for(app, sub)).failed == (1,)
    store_records(app, records[5:8])  # a later harvest
    clock.now += timedelta(minutes=2)
    result = deliver(app, sub, notifier_for(app, sub))
    assert result.sent == (1, 2)
    kept, again, later = (m.parsed() for m in smtp.messages[-3:])
    assert kept["Message-ID"] == again["Message-ID"] != later["Message-ID"]
    assert again["Subject"] == kept["Subject"] == "harvester: 5 new studies — nlp"
    assert later["Subject"] == "harvester: 3 new studies — nlp"
    app.close()


def test_a_slack_retry_after_above_five_minutes_is_honoured(
    database_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack answers 429 with Retry-After: 3600; the digest waits an hour, not a minute."""
    with SlackWebhookServer() as slack:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.url)
        app = make_app(
            database_url,
            clock,
            {"topics": ["nlp"], "channel": "slack", "max_items": 5},
            {"slack": {"webhook_url_env": "TEST_SLACK_WEBHOOK"}},
        )
        sub = app.settings.subscriptions[0]
        store_fixture_hits(app)
        slack.fail_next(429, "rate_limited", retry_after=3600)
        assert deliver(app, sub, notifier_for(app, sub)).failed
        assert app.repo.due_digests(sub.key, clock.now + timedelta(minutes=59)) == []
        assert len(app.repo.due_digests(sub.key, clock.now + timedelta(seconds=3600))) == 1
        app.close()


def test_after_an_outage_a_manual_digest_sends_the_pending_one_first_with_every_study(
    tmp_path: Path, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    """Two digest runs fail (the SMTP server is down; a harvest in between found more); the
    server comes back; a person runs `harvester digest` within the retry delay: one email
    holds every study, and the command says what it sent. (Before, the command said "nothing
    to send" while the digests waited for their back-off, and a second digest had been made
    beside the first.)"""
    from tests.test_cli import harvester_command
    from tests.test_daemon import write_config

    url = f"sqlite:///{tmp_path / 'h.db'}"
    config = email_config(url, smtp.port)
    path = write_config(tmp_path / "h.toml", config)
    app = build_app(parse_settings(config, path=str(path)), clock=FixedClock(datetime.now(UTC)))
    records = fixture_records()
    store_records(app, records[:12])
    command = [*harvester_command(), "--config", str(path), "digest"]

    def digest_command() -> subprocess.CompletedProcess[str]:
        env = command_env()
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    first = digest_command()
    store_records(app, records[12:20])  # the next harvest, while the server is still down
    second = digest_command()
    smtp.start()
    up = digest_command()
    assert up.returncode == 0, up.stdout + up.stderr
    (message,) = smtp.messages
    mail = message.parsed()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    for record in records[:20]:
        assert f"https://pubmed.ncbi.nlm.nih.gov/{record.ids.pmid}/" in text
    assert mail["Subject"] == "harvester: 20 new studies — nlp"
    assert app.repo.pending_digests() == [] and app.repo.count_digests() == 1
    # what each command said: the unsent digest, its studies, when it is retried
    assert first.returncode == second.returncode == 1
    assert "digest #1 (12 studies) still unsent" in first.stdout
    assert "retries it at" in first.stdout and "ConnectionRefusedError" in first.stdout
    assert "digest #1 (20 studies) still unsent" in second.stdout
    assert "sent 1 digest(s), 20 studies" in up.stdout
    app.close()


# -- what a digest holds back (11.5) ------------------------------------------------------------


def six_hundred_studies() -> list:  # type: ignore[type-arg]
    """600 studies derived from the real PubMed records with the longest abstracts (over
    1,500 characters): each copied under new identifiers (a DOI and a PMID of its own, so
    they stay separate works), with its real title, authors and abstract."""
    long = [r for r in fixture_records() if len(r.abstract or "") > 1500]
    out = []
    for n in range(600):
        base = long[n % len(long)]
        out.append(
            base.with_changes(
                ids=replace(base.ids, doi=f"10.5555/held.{n}", pmid=str(80000000 + n)),
                source_id=str(80000000 + n),
            )
        )
    return out


def test_a_digest_says_how_many_wait_when_they_come_and_where_to_read_them(
    database_url: str, clock: FixedClock, smtp: LoopbackSMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 new studies, 50 a week: the email's subject, text and HTML and the Slack message
    say that 550 wait, when the next digest comes (Sun 8 Jun 03:00), when the last of them
    will have come (11 weeks on) and how to read them now; the HTML of 50 long abstracts stays
    under Gmail's clipping size. (Before: "50 new studies" and 140 KB of HTML.)"""
    smtp.start()
    with SlackWebhookServer() as slack:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.url)
        settings = parse_settings(
            {
                "database": {"url": database_url},
                "topics": [{"name": "nlp", "query": QUERY, "sources": ["pubmed"]}],
                "subscriptions": [
                    {"topics": ["nlp"], "channel": "email", "to": ["team@example.org"],
                     "cadence": "weekly sun 03:00"},
                    {"topics": ["nlp"], "channel": "slack", "cadence": "weekly sun 03:00",
                     "webhook_url_env": "TEST_SLACK_WEBHOOK"},
                ],
                "channels": {
                    "email": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                              "from": "harvester@example.org"},
                    "slack": {"webhook_url_env": "TEST_SLACK_WEBHOOK"},
                },
                "feeds": {"base_url": "https://feeds.example.org/harvester"},
            },
            path="held.toml",
        )  # fmt: skip
        app = build_app(settings, clock=clock, sleep=lambda _s: None)
        store_records(app, six_hundred_studies())
        email_sub, slack_sub = settings.subscriptions
        assert deliver(app, email_sub, notifier_for(app, email_sub)).items == 50
        assert deliver(app, slack_sub, notifier_for(app, slack_sub)).items == 50

        (message,) = smtp.messages
        mail = message.parsed()
        assert mail["Subject"] == "harvester: 50 new studies (550 more waiting) — nlp"
        text = " ".join(mail.get_body(preferencelist=("plain",)).get_content().split())
        note = (
            "550 more studies wait for later digests: the next one (Sun 08 Jun 2025 03:00 UTC) "
            "brings up to 50, the last of them comes by Sun 17 Aug 2025 03:00 UTC. Read them "
            "all now: https://feeds.example.org/harvester/nlp.atom"
        )
        assert text.startswith("nlp: 50 new studies (550 more waiting) ====")
        assert note in text
        html_part = mail.get_body(preferencelist=("html",))
        html = html_part.get_content()
        assert " ".join(html.split()).count(note) == 1
        assert '<a href="https://feeds.example.org/harvester/nlp.atom"' in html
        # Gmail clips past ~102 KB: the decoded HTML and its encoded form on the wire
        assert len(html.encode("utf-8")) < 102_000
        assert len(html_part.as_bytes()) < 102_000
        assert html.count('href="https://pubmed.ncbi.nlm.nih.gov/') == 50  # none dropped
        # shortened, each abstract excerpt still shows the term the "why" line points at
        studies = html.split('<tr><td style="padding:12px 24px;border-bottom')[1:]
        assert len(studies) == 50
        for study in studies:
            excerpt = study.split('<div style="margin-top:8px;font-size:14px', 1)[1]
            assert "<mark" in excerpt.split("</div>", 1)[0]

        first = slack.posts[0]
        assert first["text"].startswith("harvester: 50 new studies (550 more waiting) — nlp")
        contexts = [e["text"] for p in slack.posts for b in p["blocks"]
                    for e in b.get("elements", ())]  # fmt: skip
        (held,) = [c for c in contexts if "wait for later digests" in c]
        assert "Sun 17 Aug 2025" in held
        assert held.endswith("<https://feeds.example.org/harvester/nlp.atom|the feed>")
        app.close()


def test_without_a_published_feed_the_digest_names_the_command(
    tmp_path: Path, clock: FixedClock, smtp: LoopbackSMTP
) -> None:
    smtp.start()
    app = email_app(f"sqlite:///{tmp_path / 'h.db'}", clock, smtp.port, max_items=10)
    store_records(app, fixture_records())
    deliver(app, app.settings.subscriptions[0], notifier_for(app, app.settings.subscriptions[0]))
    text = smtp.messages[0].parsed().get_body(preferencelist=("plain",)).get_content()
    assert "40 more studies wait for later digests" in " ".join(text.split())
    assert "Read them all now: harvester feed nlp -o nlp.atom" in " ".join(text.split())
    app.close()
