"""Email digests delivered to a real SMTP server (aiosmtpd) on 127.0.0.1, then parsed back.

Digests are built from the real PubMed records of ../shared/fixtures (see test_render.py);
the header-injection case edits one real record's title and says so.
"""

from __future__ import annotations

import os
import shutil
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr

from harvester.config import parse_settings
from harvester.digests.render import RenderedDigest, render_digest
from harvester.errors import ConfigError, NotifyError
from harvester.notifiers import NOTIFIERS, ChannelError, EmailNotifier, notifier_class
from tests.smtp_server import (
    LoopbackSMTP,
    client_context,
    self_signed_certificate,
    server_context,
)
from tests.test_render import REVIEW, STRUCTURED, hostile, real_digest, record

SENT_AT = datetime(2025, 1, 15, 8, 0, 5, tzinfo=UTC)
TO = ("team@example.org", "lead@example.org")


def rendered(*, digest_id: str = "1", max_items: int = 5) -> RenderedDigest:
    digest, queries = real_digest(
        [record(STRUCTURED), record(REVIEW), *real_digest_records()], max_items=max_items
    )
    return render_digest(digest, queries=queries, digest_id=digest_id)


def real_digest_records() -> list:  # type: ignore[type-arg]
    from tests.test_render import pubmed_records

    return pubmed_records()[:10]


def notifier(server: LoopbackSMTP, **kwargs: object) -> EmailNotifier:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "sender": "harvester@example.org",
        "to": TO,
        "clock": lambda: SENT_AT,
        "timeout": 5.0,
    }
    options.update(kwargs)
    return EmailNotifier(**options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def parts(mail: EmailMessage) -> tuple[str, str]:
    plain = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    # the wire has CRLF line ends (RFC 5322); a reader's mail client shows them as newlines
    return (
        plain.get_content().replace("\r\n", "\n"),
        html.get_content().replace("\r\n", "\n"),
    )


def test_plain_smtp_delivers_multipart_text_and_html_with_the_headers(smtp: LoopbackSMTP) -> None:
    message = rendered()
    notifier(smtp).send(message)
    (received,) = smtp.messages
    assert received.mail_from == "harvester@example.org"
    assert received.rcpt_tos == TO
    mail = received.parsed()
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Subject"] == "harvester: 5 new studies (7 more waiting) — ml-nlp"
    assert mail["From"] == "harvester@example.org"
    assert mail["To"] == "team@example.org, lead@example.org"
    assert mail["Date"] == "Wed, 15 Jan 2025 08:00:05 +0000"
    assert mail["Message-ID"] == f"<digest-{message.key}@example.org>"
    assert mail["List-Unsubscribe"] == "<mailto:harvester@example.org?subject=unsubscribe>"
    assert mail["Auto-Submitted"] == "auto-generated"
    text, html = parts(mail)
    assert text == message.text
    assert html == message.html
    assert "    OBJECTIVES: Using natural language processing (NLP)" in text
    assert ">CONCLUSIONS</b>" in html
    assert "found in PubMed · Crossref" in text and "found in PubMed · Crossref" in html


def test_record_text_cannot_inject_headers_or_markup(smtp: LoopbackSMTP) -> None:
    # one real record whose title was edited to hold <script> and "\r\nBcc: …"
    digest, queries = real_digest([hostile(record(STRUCTURED))])
    message = render_digest(digest, queries=queries, digest_id="9")
    notifier(smtp).send(message)
    (received,) = smtp.messages
    assert received.rcpt_tos == TO  # no Bcc smuggled into the envelope
    mail = received.parsed()
    assert mail["Bcc"] is None
    assert "\n" not in str(mail["Subject"]) and "\r" not in str(mail["Subject"])
    assert str(mail["Subject"]).startswith("harvester: 1 new study — ml-nlp: <script>")
    text, html = parts(mail)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert "[1] <script>alert('x')</script> Can Natural" in text  # plain text shows it as text


def test_message_id_is_the_same_when_a_digest_is_sent_again(smtp: LoopbackSMTP) -> None:
    sender = notifier(smtp)
    sender.send(rendered(digest_id="17"))
    sender.send(rendered(digest_id="17"))  # the outbox retrying after an unclear failure
    sender.send(rendered(digest_id="18"))
    first, again, other = (m.parsed()["Message-ID"] for m in smtp.messages)
    assert first == again != other


def test_configured_unsubscribe_uri_is_used(smtp: LoopbackSMTP) -> None:
    notifier(smtp, unsubscribe="https://example.org/unsubscribe?s=team").send(rendered())
    assert smtp.messages[0].parsed()["List-Unsubscribe"] == (
        "<https://example.org/unsubscribe?s=team>"
    )


def test_auth_over_starttls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = LoopbackSMTP(starttls=server_context(cert, key), credentials=("digest", "pa55word!"))
    server.start()
    try:
        sender = notifier(
            server,
            security="starttls",
            username=SecretStr("digest"),
            password=SecretStr("pa55word!"),
            ssl_context=client_context(cert),
        )
        with structlog.testing.capture_logs() as logs:
            sender.send(rendered())
        (received,) = server.messages
        assert received.login == "digest"
        assert received.tls
        assert parts(received.parsed())[0].startswith("ml-nlp: 5 new studies")
        assert "pa55word!" not in repr(logs)
        assert logs[-1]["event"] == "digest mailed"
    finally:
        server.stop()


def test_wrong_password_is_a_permanent_failure_without_the_password(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server = LoopbackSMTP(starttls=server_context(cert, key), credentials=("digest", "pa55word!"))
    server.start()
    try:
        sender = notifier(
            server,
            security="starttls",
            username=SecretStr("digest"),
            password=SecretStr("wrong-secret"),
            ssl_context=client_context(cert),
        )
        with pytest.raises(ChannelError) as caught:
            sender.send(rendered())
        assert caught.value.status == 535
        assert caught.value.retryable is False
        assert "wrong-secret" not in str(caught.value)
        assert server.messages == []
    finally:
        server.stop()


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = LoopbackSMTP(implicit_tls=server_context(cert, key))
    server.start()
    try:
        notifier(server, security="tls", ssl_context=client_context(cert)).send(rendered())
        (received,) = server.messages
        assert received.parsed()["Subject"] == "harvester: 5 new studies (7 more waiting) — ml-nlp"
    finally:
        server.stop()


def test_an_untrusted_certificate_is_refused(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = LoopbackSMTP(starttls=server_context(cert, key))
    server.start()
    try:
        # the default context trusts the system CAs only, not the test's self-signed cert
        with pytest.raises(ChannelError, match="not trusted") as caught:
            notifier(server, security="starttls").send(rendered())
        assert caught.value.retryable is False
        assert server.messages == []
    finally:
        server.stop()


def test_starttls_required_but_not_offered_is_a_config_problem(smtp: LoopbackSMTP) -> None:
    with pytest.raises(ChannelError, match="check security") as caught:
        notifier(smtp, security="starttls").send(rendered())
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("451 4.3.0 Try again later", True), ("554 5.6.0 Message refused", False)],
)
def test_smtp_replies_decide_whether_to_retry(
    smtp: LoopbackSMTP, reply: str, retryable: bool
) -> None:
    smtp.handler.reject.append(reply)
    with pytest.raises(NotifyError) as caught:
        notifier(smtp).send(rendered())
    assert isinstance(caught.value, ChannelError)
    assert caught.value.retryable is retryable
    assert caught.value.status == int(reply[:3])
    assert reply[4:] in str(caught.value)


def test_a_server_that_is_down_is_a_retryable_failure() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = EmailNotifier(
        host="127.0.0.1", port=port, security="none", sender="h@example.org", to=TO, timeout=2.0
    )
    with pytest.raises(ChannelError) as caught:
        sender.send(rendered())
    assert caught.value.retryable is True
    assert "ConnectionRefusedError" in str(caught.value)


def test_from_settings_reads_the_channel_and_the_subscription(
    smtp: LoopbackSMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_USER", "digest")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "pa55word!")
    settings = parse_settings(
        {
            "topics": [{"name": "ml-nlp", "query": "nlp"}],
            "subscriptions": [{"topics": ["ml-nlp"], "channel": "email", "to": list(TO)}],
            "channels": {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "security": "none",
                    "from": "digests@example.net",
                    "username_env": "TEST_SMTP_USER",
                    "password_env": "TEST_SMTP_PASSWORD",
                }
            },
        }
    )
    (subscription,) = settings.subscriptions
    built = notifier_class("email").from_settings(settings, subscription)
    assert isinstance(built, EmailNotifier)
    assert (built.host, built.port, built.security, built.to) == (
        "127.0.0.1",
        smtp.port,
        "none",
        TO,
    )
    mail = built.compose(rendered(), now=SENT_AT)
    assert mail["From"] == "digests@example.net"
    assert mail["Message-ID"].endswith("@example.net>")
    assert "pa55word!" not in repr(built.__dict__)


def test_registry_names_every_notifier_once() -> None:
    assert dict(NOTIFIERS) == {"email": EmailNotifier, "slack": NOTIFIERS["slack"]}
    assert len(set(NOTIFIERS.values())) == len(NOTIFIERS)
    with pytest.raises(ConfigError, match="known channels: email, slack"):
        notifier_class("pigeon")


def test_a_tarpit_banner_ends_the_session_at_its_deadline() -> None:
    """A server that drips its banner a byte a second never trips the 30 s read timeout; the
    2 s deadline ends the session with a retryable error that says so."""
    import time

    from tests.smtp_server import TarpitSMTP

    with TarpitSMTP(interval=1.0) as tarpit:
        sender = EmailNotifier(
            host="127.0.0.1", port=tarpit.port, security="none", sender="h@example.org",
            to=TO, timeout=30.0, deadline=2.0,
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(ChannelError, match="exceeded its deadline of 2 s") as caught:
            sender.send(rendered())
        assert time.monotonic() - started < 10
        assert caught.value.retryable is True and caught.value.ambiguous is False


def test_a_deadline_during_starttls_also_ends_the_session(certificate: tuple[Path, Path]) -> None:
    """The deadline holds across the TLS handshake too (the socket is replaced there): a
    server that takes 3 s per message, with a 1.5 s deadline, is cut off mid-DATA; the
    message may have arrived, so the error says so (ambiguous)."""
    import time

    cert, key = certificate
    server = LoopbackSMTP(starttls=server_context(cert, key))
    server.handler.delay = 3.0
    server.start()
    try:
        sender = notifier(
            server, security="starttls", ssl_context=client_context(cert), deadline=1.5
        )
        started = time.monotonic()
        with pytest.raises(ChannelError, match="deadline") as caught:
            sender.send(rendered())
        assert time.monotonic() - started < 10
        assert caught.value.ambiguous is True
    finally:
        server.stop()


def test_email_reports_its_one_part_once_accepted(smtp: LoopbackSMTP) -> None:
    parts: list[int] = []
    notifier(smtp).send(rendered(), on_part=parts.append)
    assert parts == [1] and len(smtp.messages) == 1


def test_a_delivered_digest_reads_right_in_a_browser(smtp: LoopbackSMTP, tmp_path: Path) -> None:
    """The HTML part of a real digest mail, as the SMTP server received it, rendered by
    headless Chromium: what a reader sees says how many studies there are and how many wait,
    when the next digest comes, and separates the citation with a middle dot."""
    import re
    from zoneinfo import ZoneInfo

    from harvester.config.subscriptions import Cadence
    from harvester.digests.assemble import with_backlog

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":  # .ci/run installs it: missing there is a failure
            pytest.fail("CI=true but no Chromium (apt-get install -y chromium)")
        pytest.skip("no Chromium on this machine (apt-get install -y chromium)")
    digest, queries = real_digest(max_items=12)
    digest = with_backlog(
        digest,
        {"ml-nlp": 38},
        cadence=Cadence.parse("daily 08:00"),
        zone=ZoneInfo("Europe/Vienna"),
        per_digest=12,
        feeds={"ml-nlp": "https://feeds.example.org/ml-nlp.atom"},
    )
    notifier(smtp).send(render_digest(digest, queries=queries, digest_id="5"))
    _, html = parts(smtp.messages[0].parsed())
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.abort())  # a mail loads nothing from outside
            page.set_content(html)
            seen = page.inner_text("body")
            headings = [page.inner_text(h) for h in ("h1", "h2")]
            page.screenshot(path=str(tmp_path / "digest.png"), full_page=False)
        finally:
            browser.close()
    assert headings[0] == "12 new studies (38 more waiting)"
    assert " ".join(headings[1].split()) == "ml-nlp · 12 new (38 more waiting)"
    flat = " ".join(seen.split())
    assert (
        "38 more studies wait for later digests: the next one (Thu 16 Jan 2025 08:00 CET) "
        "brings up to 12, the last of them comes by Sun 19 Jan 2025 08:00 CET. Read them all "
        "now: https://feeds.example.org/ml-nlp.atom Open the feed"
    ) in flat
    assert re.search(r"\w · 20\d\d · \d+\(\d+\) · pp \d+", flat)
    assert "◽" not in seen
