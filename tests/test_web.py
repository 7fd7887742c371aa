"""The web interface over HTTP (Starlette's test client) and the digest's web links, end to
end: a real harvest from the emulator, mails received by the loopback SMTP server."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from harvester.app import App
from harvester.digests.delivery import deliver, notifier_for
from harvester.store import readers
from harvester.web.server import CSP, create_app
from harvester.web.tokens import UNSUBSCRIBE, BadToken, Signer
from tests.emulator import Emulator
from tests.slack_server import SlackWebhookServer
from tests.smtp_server import LoopbackSMTP
from tests.web_fixtures import (
    ADMIN_ENV,
    ADMIN_PASSWORD,
    QUERY,
    READERS,
    SECRET,
    SECRET_ENV,
    free_port,
    links,
    serving,
    web_app,
)

pytestmark = pytest.mark.integration
BASE = "https://harvester.example.org"


@pytest.fixture
def app(
    emu: Emulator, database_url: str, smtp: LoopbackSMTP, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(ADMIN_ENV, ADMIN_PASSWORD)
    built = web_app(emu, database_url, smtp.port, BASE)
    result = built.harvest(built.settings.topic("nlp"), "pubmed")
    assert result.status == "ok" and result.counts.new_hits >= 30
    yield built
    built.close()


def send(app: App) -> None:
    sub = app.settings.subscriptions[0]
    deliver(app, sub, notifier_for(app, sub), ignore_backoff=True)


def client_path(url: str) -> str:
    return url.removeprefix(BASE)


class Site:
    """The app served by uvicorn on loopback; ``client()`` is a fresh visitor (no cookies).
    The app believes it is at BASE (https): its session cookie is Secure, which a client
    over loopback http does not send back, so sessions are carried by hand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: list[httpx.Client] = []

    def client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        self.clients.append(client)
        return client


@pytest.fixture
def site(app: App) -> Iterator[Site]:
    with serving(create_app(app), free_port()) as url:
        made = Site(url)
        yield made
        for client in made.clients:
            client.close()


def carry(client: httpx.Client, response: httpx.Response) -> None:
    """Keep the session cookie the app set (Secure: the jar would not send it over http)."""
    value = response.headers.get("set-cookie", "").split(";")[0]
    if value.startswith("harvester_session="):
        client.headers["cookie"] = value


def test_every_mail_has_its_own_one_click_unsubscribe_and_post_unsubscribes(
    app: App, smtp: LoopbackSMTP, site: Site
) -> None:
    send(app)
    mails = [m.parsed() for m in smtp.messages]
    assert sorted(m["To"] for m in mails) == sorted(READERS)  # one mail per reader
    client = site.client()
    for mail in mails:
        header = mail["List-Unsubscribe"]
        assert header.startswith(f"<{BASE}/u/") and header.endswith(">")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = mail.get_body(("html",)).get_content()
        text = mail.get_body(("plain",)).get_content()
        assert f'href="{header[1:-1]}"' in html  # the visible footer link is the same one
        assert header[1:-1] in text
        assert len(links(text, "f")) == 10  # one feedback link per study (max_items 10)
        assert SECRET not in html and SECRET not in text
    ada = next(m for m in mails if m["To"] == READERS[0])
    target = client_path(ada["List-Unsubscribe"][1:-1])
    # a GET (a mail scanner) shows a button and changes nothing
    page = client.get(target)
    assert page.status_code == 200 and 'method="post"' in page.text
    assert page.headers["content-security-policy"] == CSP
    assert readers.unsubscribed(app.repo, "lab") == set()
    # RFC 8058: the provider's POST unsubscribes at once, with no session or CSRF token
    done = site.client().post(target, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "Subscribe again" in done.text
    assert readers.unsubscribed(app.repo, "lab") == {READERS[0]}

    # the next digest goes to bob only
    app.harvest(app.settings.topic("ml"), "pubmed")
    before = len(smtp.messages)
    send(app)
    later = [m.parsed() for m in smtp.messages[before:]]
    assert [m["To"] for m in later] == [READERS[1]]
    assert all(READERS[0] not in m.rcpt_tos for m in smtp.messages[before:])

    # the re-subscribe link (from the unsubscribed page) needs a POST too
    resub = target.replace("/u/", "/r/")
    assert client.get(resub).status_code == 200
    assert readers.unsubscribed(app.repo, "lab") == {READERS[0]}
    assert client.post(resub).status_code == 200
    assert readers.unsubscribed(app.repo, "lab") == set()


def test_forged_altered_and_expired_tokens_are_refused(app: App, site: Site) -> None:
    client = site.client()
    signer = Signer(SECRET, max_age=365 * 86400)
    good = signer.unsubscribe(READERS[0], "lab")
    other = Signer("another-secret", max_age=365 * 86400).unsubscribe(READERS[0], "lab")
    altered = good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")

    real = time.time()
    with pytest.MonkeyPatch.context() as patch:  # signed 400 days ago: past token_max_age_days
        patch.setattr(time, "time", lambda: real - 400 * 86400)
        expired = URLSafeTimedSerializer(SECRET, salt=UNSUBSCRIBE).dumps([READERS[0], "lab"])
    feedback = signer.feedback(READERS[0], "lab", "nlp", 1)  # another purpose
    for token in (other, altered, expired, feedback, "nonsense"):
        assert client.get(f"/u/{token}").status_code == 400
        assert client.post(f"/u/{token}").status_code == 400
    assert readers.unsubscribed(app.repo, "lab") == set()
    with pytest.raises(BadToken):
        signer.check_unsubscribe(expired)
    assert signer.check_unsubscribe(good).recipient == READERS[0]


def test_not_relevant_in_one_topic_leaves_the_study_out_of_the_other_and_relevant_comes_first(
    app: App, smtp: LoopbackSMTP, site: Site
) -> None:
    send(app)  # the nlp digest: 10 studies
    ada = next(m.parsed() for m in smtp.messages if m.parsed()["To"] == READERS[0])
    text = ada.get_body(("plain",)).get_content()
    found = links(text, "f")
    first, last = found[0], found[-1]
    signer = Signer(SECRET, max_age=86400)
    client = site.client()
    # GET alone records nothing
    assert client.get(client_path(first)).status_code == 200
    assert readers.verdicts(app.repo) == []
    no = client.post(client_path(first).split("?")[0], data={"verdict": "not-relevant"})
    yes = client.post(client_path(last).split("?")[0], data={"verdict": "relevant"})
    assert no.status_code == yes.status_code == 200
    said = {v.verdict: v for v in readers.verdicts(app.repo)}
    assert set(said) == {"relevant", "not-relevant"}
    assert said["relevant"].recipient == READERS[0] and said["relevant"].topic == "nlp"

    def order(mail_text: str, topic: str) -> list[int]:
        tokens = [u.split("/f/")[1].split("?")[0] for u in links(mail_text, "f")]
        checked = [signer.check_feedback(t) for t in tokens]
        return [c.work_id for c in checked if c.topic == topic]

    nlp_order = order(text, "nlp")
    assert nlp_order[0] == said["not-relevant"].work_id
    assert nlp_order[-1] == said["relevant"].work_id  # ranked last of ten by the query alone
    # the same studies are found for "ml" next (same query, so the same ranking): the
    # rejected one is left out, the relevant one leads the section
    app.harvest(app.settings.topic("ml"), "pubmed")
    before = len(smtp.messages)
    send(app)
    bob = next(m.parsed() for m in smtp.messages[before:] if m.parsed()["To"] == READERS[1])
    ml_order = order(bob.get_body(("plain",)).get_content(), "ml")
    assert len(ml_order) == 10
    assert said["not-relevant"].work_id not in ml_order
    assert ml_order[0] == said["relevant"].work_id
    assert ml_order[1:] == [w for w in ml_order[1:] if w != said["relevant"].work_id]
    html = bob.get_body(("html",)).get_content()
    # the HTML part agrees (two links per study: relevant, not relevant)
    assert order(html.replace("&amp;", "&"), "ml")[::2] == ml_order


def test_pages_need_a_login_or_a_reading_link_and_forms_need_csrf(app: App, site: Site) -> None:
    client = site.client()
    for path in ("/", "/t/nlp", "/admin", "/w/1"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert r.headers["content-security-policy"] == CSP
    # the login form without its CSRF token is refused, even with the right password
    assert client.post("/login", data={"password": ADMIN_PASSWORD}).status_code == 403
    page = client.get("/login")
    carry(client, page)
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/login", data={"password": "wrong", "csrf": csrf}).status_code == 401
    ok = client.post("/login", data={"password": ADMIN_PASSWORD, "csrf": csrf})
    assert ok.status_code == 303
    carry(client, ok)
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert client.get("/").status_code == 200
    assert client.get("/t/nlp").status_code == 200
    # an admin form without the token is refused
    readers.unsubscribe(app.repo, "lab", READERS[1])
    restore = {"subscription": "lab", "recipient": READERS[1]}
    assert client.post("/admin", data=restore).status_code == 403
    assert client.post("/admin", data={**restore, "csrf": "guessed"}).status_code == 403
    assert readers.unsubscribed(app.repo, "lab") == {READERS[1]}
    # the login gave the session a new token: the one of the admin page's form
    fresh = client.get("/admin").text.split('name="csrf" value="')[1].split('"')[0]
    assert fresh != csrf
    assert client.post("/admin", data={**restore, "csrf": csrf}).status_code == 403
    assert client.post("/admin", data={**restore, "csrf": fresh}).status_code == 303
    assert readers.unsubscribed(app.repo, "lab") == set()
    assert ADMIN_PASSWORD not in client.get("/admin").text

    # a digest's reading link opens that subscription's topics without a login
    reader = site.client()
    token = Signer(SECRET, max_age=86400).read("lab")
    first = reader.get(f"/t/nlp?k={token}")
    assert first.status_code == 200
    carry(reader, first)
    assert reader.get("/t/ml").status_code == 200  # remembered in the signed session
    assert reader.get("/admin").status_code == 303


def test_titles_and_abstracts_are_escaped(app: App, site: Site) -> None:
    from sqlalchemy import select, update

    from harvester.store.models import Work

    with app.repo._session() as session, session.begin():
        work = session.execute(select(Work).order_by(Work.id).limit(1)).scalar_one()
        record = dict(work.record)
        record["title"] = 'machine learning <script>alert("x")</script><img src=x onerror=y>'
        session.execute(update(Work).where(Work.id == work.id).values(record=record))
    client = site.client()
    token = Signer(SECRET, max_age=86400).read("lab")
    page = client.get(f"/t/nlp?k={token}&q=script")
    assert page.status_code == 200
    carry(client, page)
    assert "<script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;" in page.text
    study = client.get(f"/w/{work.id}")
    assert "<script>" not in study.text and "&lt;script&gt;" in study.text


def test_public_read_opens_the_dashboard_and_topic_pages_page_through(
    emu: Emulator, database_url: str, smtp: LoopbackSMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    app = web_app(emu, database_url, smtp.port, BASE, public_read=True)
    try:
        assert app.harvest(app.settings.topic("nlp"), "pubmed").status == "ok"
        with serving(create_app(app), free_port()) as url, httpx.Client(base_url=url) as client:
            dash = client.get("/")
            assert dash.status_code == 200 and 'href="/t/nlp"' in dash.text
            assert "pubmed" in dash.text
            total = len(app.repo.works("nlp"))
            seen: list[str] = []
            for n in range(1, -(-total // 10) + 1):
                page = client.get(f"/t/nlp?page={n}")
                seen += [p.split('"')[0] for p in page.text.split('class="study" id="')[1:]]
            assert len(seen) == len(set(seen)) == total  # every study once, ten a page
            assert client.get("/t/nlp/export.ris").text.count("ER  -") == total
            assert client.get("/healthz").json() == {"ok": True}
    finally:
        app.close()


def test_without_base_url_mails_keep_the_mailto_header(
    emu: Emulator, database_url: str, smtp: LoopbackSMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    app = web_app(emu, database_url, smtp.port, None)  # the secret is set, no base_url
    try:
        app.harvest(app.settings.topic("nlp"), "pubmed")
        send(app)
        (mail,) = [m.parsed() for m in smtp.messages]
        assert mail["List-Unsubscribe"] == "<mailto:harvester@example.org?subject=unsubscribe>"
        assert mail["List-Unsubscribe-Post"] is None
        assert "/f/" not in mail.get_body(("plain",)).get_content()
    finally:
        app.close()


def test_status_shows_the_readers_feedback(app: App) -> None:
    from harvester.harvesting.status import render_status

    assert "feedback" not in render_status(app)
    ids = [w.id for w in app.repo.works("nlp")[:3]]
    readers.record_feedback(app.repo, READERS[0], "lab", "nlp", ids[0], "relevant")
    readers.record_feedback(app.repo, READERS[1], "lab", "nlp", ids[1], "not-relevant")
    readers.record_feedback(app.repo, READERS[1], "lab", "nlp", ids[2], "not-relevant")
    # a reader changing their mind replaces their verdict
    readers.record_feedback(app.repo, READERS[1], "lab", "nlp", ids[2], "relevant")
    assert "\nfeedback\n  nlp: 2 relevant, 1 not relevant\n" in render_status(app)


def test_the_daemon_serves_the_web_interface_and_its_health_on_http_port(
    emu: Emulator, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    from pathlib import Path

    from tests.test_daemon import daemon_config, start_daemon, wait_for, write_config

    assert isinstance(tmp_path, Path)
    monkeypatch.setenv("HARVESTER_WEB_SECRET", SECRET)  # [web] secret_env's default
    port = free_port()
    config = write_config(tmp_path / "d.toml", daemon_config(emu, f"sqlite:///{tmp_path / 'd.db'}"))
    log = tmp_path / "d.log"
    daemon = start_daemon(config, "--http-port", str(port), "--http-host", "127.0.0.1", log=log)
    answers: list[httpx.Response] = []

    def healthy() -> bool:
        try:
            answers.append(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5))
        except httpx.TransportError:
            return False
        return answers[-1].status_code == 200

    try:
        wait_for(healthy, timeout=60)
        assert answers[-1].text == "ok: scheduler running\n"
        assert answers[-1].headers["content-security-policy"] == CSP
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert f"harvester web: http://127.0.0.1:{port}/" in log.read_text()


SlackChannel = Callable[[tuple[str, ...], int], tuple[App, SlackWebhookServer]]


@pytest.fixture
def slack_channel(
    emu: Emulator, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SlackChannel]:
    """Builds, for ``(topics, max_items)``: a Slack-like server and an app with web links
    whose subscription "channel" posts ``topics`` (each on PubMed) there, "nlp" harvested."""
    from harvester.app import build_app
    from harvester.config import parse_settings
    from tests.conftest import FixedClock
    from tests.web_fixtures import NOW

    monkeypatch.setenv(SECRET_ENV, SECRET)
    with contextlib.ExitStack() as stack:

        def build(topics: tuple[str, ...], max_items: int) -> tuple[App, SlackWebhookServer]:
            slack = stack.enter_context(SlackWebhookServer())
            monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.url)
            settings = parse_settings(
                {
                    "database": {"url": database_url},
                    "sources": {"pubmed": {"base_url": emu.base_url("pubmed"), "email": "t@x.org"}},
                    "topics": [
                        {"name": t, "query": QUERY, "sources": ["pubmed"], "lookback_days": 20_000}
                        for t in topics
                    ],
                    "subscriptions": [
                        {
                            "name": "channel",
                            "topics": list(topics),
                            "channel": "slack",
                            "max_items": max_items,
                        }
                    ],
                    "channels": {"slack": {"webhook_url_env": "TEST_SLACK_WEBHOOK"}},
                    "web": {"base_url": BASE, "secret_env": SECRET_ENV},
                },
                path="slack.toml",
            )
            app = build_app(settings, clock=FixedClock(NOW), sleep=lambda _s: None)
            stack.callback(app.close)  # before the server stops, as the app may still post
            assert app.harvest(settings.topic("nlp"), "pubmed").status == "ok"
            return app, slack

        yield build


def test_a_slack_digest_links_each_topic_page_with_a_reading_token(
    slack_channel: SlackChannel,
) -> None:
    app, slack = slack_channel(("nlp",), 60)
    sub = app.settings.subscriptions[0]
    assert deliver(app, sub, notifier_for(app, sub)).sent
    posted = [str(p) for p in slack.posts]
    assert sum(f"{BASE}/t/nlp?k=" in p for p in posted) == 1  # one line, at the end
    assert f"{BASE}/t/nlp?k=" in posted[-1]
    assert "/u/" not in "".join(posted)
    token = posted[-1].split(f"{BASE}/t/nlp?k=")[1].split("|")[0]
    assert Signer(SECRET, max_age=86400).check_read(token) == "channel"
    assert Signer(SECRET, max_age=86400).check_reader(token) == (
        "channel",
        "slack:channel",
    )
    assert all(len(p["blocks"]) <= 50 for p in slack.posts)


def test_harvester_web_prints_its_url_and_serves_the_dashboard(
    emu: Emulator, database_url: str, tmp_path: object, smtp: LoopbackSMTP
) -> None:
    """`harvester web` as a user runs it: no secret set (a process secret, with a warning),
    public_read as the example config has it; the dashboard and the topic at the printed URL."""
    import signal
    import subprocess
    from pathlib import Path

    from tests.test_daemon import harvester_command, wait_for

    assert isinstance(tmp_path, Path)
    app = web_app(emu, database_url, smtp.port, None)
    assert app.harvest(app.settings.topic("nlp"), "pubmed").status == "ok"
    app.close()
    config = tmp_path / "web.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[web]\npublic_read = true\n'
        f'[[topics]]\nname = "nlp"\nquery = """{QUERY}"""\nsources = ["pubmed"]\n'
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("HARVESTER_WEB_SECRET",)}
    env.pop("HARVESTER_DATABASE_URL", None)
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*harvester_command(), "--config", str(config), "web", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(lambda: f"http://127.0.0.1:{port}/" in log.read_text(), timeout=60)

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=60)
        dash = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert dash.status_code == 200 and 'href="/t/nlp"' in dash.text
        topic = httpx.get(f"http://127.0.0.1:{port}/t/nlp", timeout=10)
        assert topic.text.count('class="study"') == 25  # page_size's default
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text()
    assert f"harvester web: http://127.0.0.1:{port}/" in text
    assert "HARVESTER_WEB_SECRET ([web] secret_env) is not set" in text


def test_the_web_secrets_are_redacted_like_every_other(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert {SECRET, ADMIN_PASSWORD} <= set(app.settings.secret_values())


SLACK_FEEDBACK = re.compile(r"<(https://[^|>]+/f/[A-Za-z0-9_.\-]+)\?v=(relevant|not-relevant)\|")


def test_a_slack_digest_carries_signed_feedback_links_and_not_relevant_leaves_the_study_out(
    slack_channel: SlackChannel,
) -> None:
    """Each study of a Slack digest links "relevant" / "not relevant", signed for the
    channel (recipient slack:SUBSCRIPTION); a POST through one records the verdict, and the
    subscription's next digest (the same studies found for the other topic) leaves it out."""
    signer = Signer(SECRET, max_age=86400)
    app, slack = slack_channel(("nlp", "ml"), 10)
    settings = app.settings
    sub = settings.subscriptions[0]
    assert deliver(app, sub, notifier_for(app, sub)).sent
    first = [str(p) for p in slack.posts]
    found = [m for p in first for m in SLACK_FEEDBACK.findall(p)]
    assert len(found) == 20  # two per study, max_items 10
    said = [signer.check_feedback(u.split("/f/")[1]) for u, _v in found]
    assert {(s.recipient, s.subscription, s.topic) for s in said} == {
        ("slack:channel", "channel", "nlp")
    }
    assert [v for _u, v in found] == ["relevant", "not-relevant"] * 10
    assert found[0][0] == found[1][0]  # both verdicts of a study: one token
    assert all(len(p["blocks"]) <= 50 for p in slack.posts)
    rejected = said[1].work_id
    with (
        serving(create_app(app), free_port()) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        path = found[1][0].removeprefix(BASE)
        page = client.get(f"{path}?v=not-relevant")  # a GET only confirms
        assert page.status_code == 200 and 'method="post"' in page.text
        assert readers.verdicts(app.repo) == []
        done = client.post(path, data={"verdict": "not-relevant"})
        assert done.status_code == 200
    [verdict] = readers.verdicts(app.repo)
    assert (verdict.recipient, verdict.subscription, verdict.work_id) == (
        "slack:channel",
        "channel",
        rejected,
    )
    # the same studies are found for "ml": the channel's next digest leaves it out
    assert app.harvest(settings.topic("ml"), "pubmed").status == "ok"
    before = len(slack.posts)
    assert deliver(app, sub, notifier_for(app, sub)).sent
    later = [str(p) for p in slack.posts[before:]]
    shown = [
        signer.check_feedback(u.split("/f/")[1])
        for p in later
        for u, v in SLACK_FEEDBACK.findall(p)
        if v == "relevant"
    ]
    ml = [s for s in shown if s.topic == "ml"]  # (and nlp's next ten)
    assert len(ml) == 10
    assert rejected not in {s.work_id for s in shown}
    assert {s.work_id for s in said} - {rejected} <= {s.work_id for s in ml}
    # a retry renders the digest again (tokens signed anew, a second later): the
    # same parts, each with the same blocks, so the outbox's per-part count holds
    from harvester.digests.delivery import render_stored

    queries = {t: settings.topic(t).parsed_query for t in sub.topics}
    again = render_stored(app, sub, 2, queries)[1].slack
    time.sleep(1.1)
    later_try = render_stored(app, sub, 2, queries)[1].slack
    assert len(again) == len(later_try) == len(later) > 1
    assert [len(p["blocks"]) for p in again] == [len(p["blocks"]) for p in later_try]


def test_a_reader_who_came_through_the_reading_link_votes_on_the_topic_page(
    app: App, smtp: LoopbackSMTP, site: Site
) -> None:
    """The digest's "all studies" link is signed for its recipient: a visitor who opened the
    topic page through it gets the vote buttons (a CSRF-checked form) and votes as that
    recipient; "not relevant" leaves the study out of the subscription's next digest."""
    send(app)
    ada = next(m.parsed() for m in smtp.messages if m.parsed()["To"] == READERS[0])
    text = ada.get_body(("plain",)).get_content()
    signer = Signer(SECRET, max_age=86400)
    nlp_first = signer.check_feedback(links(text, "f")[0].split("/f/")[1].split("?")[0])
    reading = next(u for u in links(text, "t") if "/t/nlp?" in u)
    assert signer.check_reader(reading.split("k=")[1]) == ("lab", READERS[0])

    # a subscription-only reading link (as before) reads but does not vote
    plain = site.client()
    assert 'name="verdict"' not in plain.get(f"/t/nlp?k={signer.read('lab')}").text

    reader = site.client()
    page = reader.get(client_path(reading))
    assert page.status_code == 200 and 'name="verdict" value="not-relevant"' in page.text
    carry(reader, page)
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    vote = {"work_id": str(nlp_first.work_id), "verdict": "not-relevant", "back": "/t/nlp"}
    assert reader.post("/t/nlp/feedback", data=vote).status_code == 403  # no CSRF token
    assert reader.post("/t/nlp/feedback", data={**vote, "csrf": "guessed"}).status_code == 403
    assert plain.post("/t/nlp/feedback", data=vote).status_code == 303  # to the login
    assert readers.verdicts(app.repo) == []
    done = reader.post("/t/nlp/feedback", data={**vote, "csrf": csrf})
    assert done.status_code == 303 and done.headers["location"].startswith("/t/nlp")
    [said] = readers.verdicts(app.repo)
    assert (said.recipient, said.subscription, said.topic, said.work_id, said.verdict) == (
        READERS[0],
        "lab",
        "nlp",
        nlp_first.work_id,
        "not-relevant",
    )
    # the same studies are found for "ml": the next digest leaves the rejected one out
    app.harvest(app.settings.topic("ml"), "pubmed")
    before = len(smtp.messages)
    send(app)
    bob = next(m.parsed() for m in smtp.messages[before:] if m.parsed()["To"] == READERS[1])
    later = [
        signer.check_feedback(u.split("/f/")[1].split("?")[0])
        for u in links(bob.get_body(("plain",)).get_content(), "f")
    ]
    ml = [c.work_id for c in later if c.topic == "ml"]
    assert len(ml) == 10 and nlp_first.work_id not in ml
