"""Retraction and correction alerts end to end: the emulator, the store, the outbox, SMTP and
a Slack-like server (issue 16, "Done when").

The emulator serves the notices by index date as Crossref and PubMed page them. No recorded
Crossref listing for the ``update-type`` filter exists: the emulator builds it from the
recorded single-work bodies of ../shared/fixtures/updates/crossref in Crossref's work-list
envelope (tests/emulator/notices.py says how). The recorded bodies of the retracted works were
captured after their retraction; a work "harvested earlier, before the notice" is that
recorded record with its update fields left out (``before_the_notice``), stored as a harvest
stores a page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.digests.delivery import DeliveryResult, deliver, deliverer, notifier_for, preview
from harvester.harvesting.scheduler import Daemon
from harvester.harvesting.updates import run_updates, update_job
from harvester.records import Record
from harvester.sources.base import Window
from harvester.sources.crossref import parse_works
from harvester.sources.pubmed import parse_efetch
from harvester.store.update_alerts import UpdateStore
from tests.conftest import FixedClock, require_shared
from tests.emulator import Emulator
from tests.slack_server import SlackWebhookServer
from tests.smtp_server import LoopbackSMTP

pytestmark = pytest.mark.integration

LANCET = "10.1016/s0140-6736(20)31180-6"
LANCET_NOTICE = "10.1016/s0140-6736(20)31324-6"
QUERY = "hydroxychloroquine OR chitosan OR autism"
SECTION = "Updates to studies you were sent"


def recorded(path: str) -> Record:
    body = (require_shared() / "updates" / path).read_bytes()
    parse = parse_efetch if path.endswith(".xml") else parse_works
    return parse(body).records[0]


def before_the_notice(record: Record) -> Record:
    """The record as the source served it before the notice: without its update fields."""
    return record.with_changes(updates=())


def lancet() -> Record:
    return recorded(
        "crossref/works_doi_10.1016_s0140-6736_20_31180-6_updated_by_rw_retraction_eoc_correction.json"
    )


def make_app(
    database_url: str, clock: FixedClock, emu: Emulator, subscriptions: list[dict[str, Any]],
    *, port: int = 25, sources: tuple[str, ...] = ("crossref",),
) -> App:  # fmt: skip
    channels: dict[str, Any] = {
        "email": {"host": "127.0.0.1", "port": port, "security": "none",
                  "from": "harvester@example.org", "timeout": 5},
    }  # fmt: skip
    settings = parse_settings(
        {
            "database": {"url": database_url},
            "sources": {
                "crossref": {"base_url": emu.base_url("crossref"), "mailto": "t@example.org",
                             "requests_per_second": 1000},
                "pubmed": {"base_url": emu.base_url("pubmed"), "email": "t@example.org",
                           "requests_per_second": 1000},
                "openalex": {"base_url": emu.base_url("openalex"), "mailto": "t@example.org",
                             "api_key_env": "HV_TEST_OPENALEX_KEY", "requests_per_second": 1000},
            },
            "topics": [
                {"name": "covid", "query": QUERY, "sources": list(sources)},
                {"name": "other", "query": "zebrafish", "sources": list(sources)},
            ],
            "subscriptions": subscriptions,
            "channels": channels,
        },
        path="updates.toml",
    )  # fmt: skip
    app = build_app(settings, clock=clock, sleep=lambda _s: None)
    _APPS.append(app)
    return app


_APPS: list[App] = []


def email_sub(name: str, topic: str = "covid", **more: Any) -> dict[str, Any]:
    return {"name": name, "topics": [topic], "channel": "email", "to": [f"{name}@example.org"],
            **more}  # fmt: skip


def store(app: App, topic: str, *records: Record) -> None:
    """Store ``records`` as a harvest of ``topic`` stores a page."""
    now = app.clock()
    run = app.repo.begin_run(topic, "crossref", Window(now - timedelta(days=1), now))
    app.repo.store_page(run, topic, list(records))


def send(app: App, name: str) -> DeliveryResult:
    sub = next(s for s in app.settings.subscriptions if s.key == name)
    return deliver(app, sub, notifier_for(app, sub))


def mails_to(smtp: LoopbackSMTP, name: str) -> list[EmailMessage]:
    return [m.parsed() for m in smtp.messages if f"{name}@example.org" in m.rcpt_tos]


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def html_of(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 9, 21, 6, 0, tzinfo=UTC))


def test_delivered_then_retracted_appears_once_for_every_subscription_that_received_it(
    database_url: str, clock: FixedClock, emu: Emulator, smtp: LoopbackSMTP
) -> None:
    subs = [email_sub("alice"), email_sub("bob"),
            email_sub("carol", topic="other")]  # fmt: skip
    app = make_app(database_url, clock, emu, subs, port=smtp.port)
    store(app, "covid", before_the_notice(lancet()))
    for name in ("alice", "bob", "carol"):
        send(app, name)
    assert [len(mails_to(smtp, n)) for n in ("alice", "bob", "carol")] == [1, 1, 0]
    assert SECTION not in text_of(mails_to(smtp, "alice")[0])

    # three days later Crossref indexes the notices (2026-09-22 and -23 as recorded)
    clock.now += timedelta(days=3)
    emu.source("crossref").include_updates()  # type: ignore[attr-defined]
    (run,) = run_updates(app, since=datetime(2026, 9, 22, tzinfo=UTC))
    assert run.status == "ok" and run.notices >= 2
    assert run.applied == 7  # the work's seven updates; its notice repeats two of them
    listing = [r for r in emu.requests if r.path.endswith("/works")]
    assert "update-type:retraction" in listing[0].params["filter"]

    clock.now += timedelta(hours=2)
    # `digest --dry-run` shows what is due and takes nothing
    _, shown = preview(app, app.settings.subscriptions[0])
    assert SECTION in shown.text and "RETRACTED 2020-05-22" in shown.text
    for name in ("alice", "bob", "carol"):
        send(app, name)
    assert [len(mails_to(smtp, n)) for n in ("alice", "bob", "carol")] == [2, 2, 0]
    for name in ("alice", "bob"):
        mail = mails_to(smtp, name)[1]
        text = text_of(mail)
        assert mail["Subject"].startswith("harvester: 6 updates to studies you were sent")
        assert text.count(SECTION) == 1
        head, _, lower = text.partition("Corrections and errata")
        assert "* RETRACTED 2020-05-22: RETRACTED: Hydroxychloroquine or chloroquine" in head
        assert f"notice: https://doi.org/{LANCET_NOTICE}" in head
        assert "source: the publisher (via Crossref), Retraction Watch (via Crossref)" in head
        assert "* EXPRESSION OF CONCERN 2020-06-03" in head
        # corrections and errata: the lower tier, after the rest
        assert "* Corrected 2020-05-30: RETRACTED: Hydroxychloroquine" in lower
        assert lower.count("* Erratum published") == 3
        html = html_of(mail)
        assert SECTION in html and "Corrections and errata" in html
        assert f'href="https://doi.org/{LANCET_NOTICE}"' in html

    # never again: the next digests, a second update run, the digests after it
    clock.now += timedelta(days=1)
    for name in ("alice", "bob"):
        assert send(app, name).sent == ()
    again = run_updates(app, since=datetime(2026, 9, 22, tzinfo=UTC))
    assert [(r.applied, r.pending) for r in again] == [(0, 0)]  # idempotent
    for name in ("alice", "bob"):
        assert send(app, name).sent == ()
    assert [len(mails_to(smtp, n)) for n in ("alice", "bob", "carol")] == [2, 2, 0]


def test_retracted_before_first_sent_goes_out_with_the_badge_and_no_alert_after(
    database_url: str, clock: FixedClock, emu: Emulator, smtp: LoopbackSMTP
) -> None:
    app = make_app(database_url, clock, emu, [email_sub("dan")], port=smtp.port)
    store(app, "covid", lancet())  # harvested with its updated-by entries
    send(app, "dan")
    (mail,) = mails_to(smtp, "dan")
    text, html = text_of(mail), html_of(mail)
    assert "[retracted]" in text and "[expression of concern]" in text
    assert "Retracted 2020-05-22: https://doi.org/10.1016/s0140-6736(20)31174-0 " in text
    assert SECTION not in text
    assert 'background:#ffebe6;color:#bf2600;">retracted</span>' in html
    assert f"https://doi.org/{LANCET_NOTICE}" in html  # the notice beside the study

    clock.now += timedelta(days=3)
    emu.source("crossref").include_updates()  # type: ignore[attr-defined]
    run_updates(app, since=datetime(2026, 9, 22, tzinfo=UTC))
    clock.now += timedelta(hours=2)
    assert send(app, "dan").sent == ()  # it was shown with the study: nothing to announce
    assert len(mails_to(smtp, "dan")) == 1


def test_a_notice_found_before_its_target_is_applied_when_the_target_arrives(
    database_url: str, clock: FixedClock, emu: Emulator
) -> None:
    clock.now = datetime(2026, 10, 9, 6, 0, tzinfo=UTC)
    app = make_app(database_url, clock, emu, [])
    emu.source("crossref").include_updates()  # type: ignore[attr-defined]
    (run,) = run_updates(app, since=datetime(2026, 10, 8, tzinfo=UTC))
    # the trimmed bodies (indexed the day they were captured): the ACS notice, the concern
    # and the correction notices, whose targets no harvest has stored
    assert run.applied == 0 and run.pending == 3
    store_ = UpdateStore(app.engine, clock=app.clock)
    assert store_.pending() == 3

    clock.now += timedelta(days=5)
    target = before_the_notice(recorded(
        "crossref/works_doi_10.1021_am300292v_updated_by_rw_retraction_trimmed.json"
    ))  # fmt: skip
    store(app, "covid", target)
    (work,) = app.repo.works("covid")
    assert [(u.kind, u.notice.doi, u.asserted_by, u.source) for u in work.record.updates] == [
        ("retraction", "10.1021/acsami.9b11759", "retraction-watch", "crossref")
    ]
    assert work.record.retracted
    assert store_.pending() == 2
    again = run_updates(app, since=datetime(2026, 10, 8, tzinfo=UTC))
    assert [(r.applied, r.pending) for r in again] == [(0, 0)]


def test_immediate_sends_a_short_message_for_a_retraction_and_off_sends_nothing(
    database_url: str, clock: FixedClock, emu: Emulator, smtp: LoopbackSMTP
) -> None:
    subs = [email_sub("erin", updates="immediate"),
            email_sub("frank", updates="off")]  # fmt: skip
    app = make_app(database_url, clock, emu, subs, port=smtp.port)
    store(app, "covid", before_the_notice(lancet()))
    send(app, "erin"), send(app, "frank")
    clock.now += timedelta(days=3)
    emu.source("crossref").include_updates()  # type: ignore[attr-defined]
    # the daemon's job, called as its scheduler would: reads the notices, then sends the
    # immediate messages
    daemon = Daemon(app, scheduler=None, deliver=deliverer(app))  # type: ignore[arg-type]
    update_job(daemon)
    short = mails_to(smtp, "erin")[1]
    subject = " ".join(str(short["Subject"]).split())  # unfolded
    assert subject.startswith("harvester: Retracted: RETRACTED: Hydroxychloroquine or chloroquine")
    assert subject.endswith("…") and len(subject) <= 140
    text = text_of(short)
    assert "RETRACTED 2020-05-22" in text and "Corrections and errata" not in text
    assert "Nothing new" not in text
    # the rest (concern, corrections) in the next digest, the retraction not again
    clock.now += timedelta(hours=2)
    send(app, "erin")
    rest = text_of(mails_to(smtp, "erin")[2])
    assert "EXPRESSION OF CONCERN" in rest and "RETRACTED 2020" not in rest
    send(app, "frank")
    assert len(mails_to(smtp, "frank")) == 1


def test_slack_digest_has_the_updates_section(
    database_url: str, clock: FixedClock, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SlackWebhookServer() as slack:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.url)
        subs = [{"name": "lab", "topics": ["covid"], "channel": "slack",
                 "webhook_url_env": "TEST_SLACK_WEBHOOK"}]  # fmt: skip
        app = make_app(database_url, clock, emu, subs)
        store(app, "covid", before_the_notice(lancet()))
        send(app, "lab")
        clock.now += timedelta(days=3)
        emu.source("crossref").include_updates()  # type: ignore[attr-defined]
        run_updates(app, since=datetime(2026, 9, 22, tzinfo=UTC))
        clock.now += timedelta(hours=2)
        send(app, "lab")
        posted = slack.posts[-1]
        texts = [b.get("text", {}).get("text", "") for b in posted["blocks"] if "text" in b]
        assert SECTION in texts
        first = next(t for t in texts if t.startswith(":warning: *Retracted"))
        assert f"<https://doi.org/{LANCET_NOTICE}|notice>" in first
        assert any(t.startswith(":pencil2: *Corrected") for t in texts)


def test_pubmed_notices_by_entrez_date(
    database_url: str, clock: FixedClock, emu: Emulator, smtp: LoopbackSMTP
) -> None:
    pair = "pubmed/efetch_pubmed_retracted_and_retraction_notice_pair_9500320_20137807.xml"
    wakefield = recorded(pair)
    subs = [email_sub("gina")]
    app = make_app(database_url, clock, emu, subs, port=smtp.port, sources=("pubmed",))
    store(app, "covid", before_the_notice(wakefield))
    send(app, "gina")
    clock.now += timedelta(days=2)
    pubmed = emu.source("pubmed")
    pubmed.include_updates()  # type: ignore[attr-defined]
    pubmed.enter("20137807", datetime(2026, 9, 22, 9, 30))  # type: ignore[attr-defined]
    (run,) = run_updates(app)  # the first run: the last two days
    assert run.status == "ok" and run.notices == 1 and run.applied == 1 and run.requests == 2
    (search,) = [r for r in emu.requests if r.path.endswith("esearch.fcgi")]
    assert '"Retraction Notice"[pt]' in search.params["term"]
    assert search.params["datetype"] == "edat"
    clock.now += timedelta(hours=1)
    send(app, "gina")
    text = text_of(mails_to(smtp, "gina")[1])
    assert "* RETRACTED 2010-02-06: Ileal-lymphoid-nodular hyperplasia" in text
    assert "notice: https://doi.org/10.1016/s0140-6736(10)60175-4" in text
    assert "source: PubMed" in text


@pytest.fixture(autouse=True)
def _closed(emu: Emulator) -> Iterator[None]:
    yield
    while _APPS:
        _APPS.pop().close()
    emu.reset()


def test_the_updates_command_is_idempotent_and_status_counts_per_source_and_day(
    tmp_path: Path, emu: Emulator
) -> None:
    from tests.test_cli import run

    emu.source("crossref").include_updates()  # type: ignore[attr-defined]
    (tmp_path / "h.toml").write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "h.db"}"
[sources.crossref]
base_url = "{emu.base_url("crossref")}"
mailto = "t@example.org"
[[topics]]
name = "covid"
query = "hydroxychloroquine"
sources = ["crossref"]
""",
        encoding="utf-8",
    )
    first = run("--config", "h.toml", "updates", "--since", "2026-09-22", cwd=tmp_path)
    line = first.stdout.strip().splitlines()[-1]
    # no work stored: every update waits for its study (the Lancet work was listed too: the
    # publisher lists its notices as its update-to; its seven updates wait for it)
    assert line.startswith("crossref: ok; 5 notices read (2026-09-22 00:00 → ")
    assert "0 new updates to stored works, 11 waiting for their study, 2 requests" in line
    second = run("--config", "h.toml", "updates", "--since", "2026-09-22", cwd=tmp_path)
    assert "0 new updates to stored works, 0 waiting for their study" in second.stdout
    status = run("--config", "h.toml", "status", cwd=tmp_path).stdout
    assert "updates (retractions, corrections; found per day, last 14 days)" in status
    assert "  crossref: notices read up to " in status
    assert "  11 updates wait for their study to be harvested" in status
    bad = run("--config", "h.toml", "updates", "--source", "arxiv", cwd=tmp_path, check=2)
    assert "--source: 'arxiv' lists no notices" in bad.stderr


def test_openalex_flags_by_update_date(
    database_url: str, clock: FixedClock, emu: Emulator, smtp: LoopbackSMTP,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("HV_TEST_OPENALEX_KEY", "test-key")
    pair = "pubmed/efetch_pubmed_retracted_and_retraction_notice_pair_9500320_20137807.xml"
    subs = [email_sub("hana")]
    app = make_app(database_url, clock, emu, subs, port=smtp.port, sources=("openalex",))
    store(app, "covid", before_the_notice(recorded(pair)))  # PubMed's record, as harvested
    send(app, "hana")
    clock.now += timedelta(days=1)
    emu.source("openalex").include_updates()  # type: ignore[attr-defined]
    (run,) = run_updates(app, since=datetime(2026, 9, 1, tzinfo=UTC))
    assert (run.source, run.status, run.notices, run.applied) == ("openalex", "ok", 1, 1)
    listing = [r for r in emu.requests if r.path.endswith("/works")]  # the cursor's pages
    assert {r.params["filter"] for r in listing} == {
        "is_retracted:true,from_updated_date:2026-09-01"
    }
    clock.now += timedelta(hours=1)
    send(app, "hana")
    text = text_of(mails_to(smtp, "hana")[1])
    assert "* RETRACTED: Ileal-lymphoid-nodular hyperplasia" in text  # the flag has no date
    assert "source: OpenAlex" in text and "notice:" not in text
