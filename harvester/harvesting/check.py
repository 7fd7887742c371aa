"""`harvester check`: is this configuration ready to run, and can it reach what it needs?

::

    load_settings                    # what the daemon rejects: exit 2 (the CLI prints it)
    config_items(settings)           # secrets resolved, warnings the daemon would log
    connect_items(settings, ...)     # --connect: one cheap request per source, SMTP up to
                                     # AUTH (no mail), each Slack webhook probed without a post
    send_tests(settings, ...)        # --send-test: one short Slack message, one test email

Each item is one line, ✓ / ✗ / ⚠ (a warning: the daemon runs, but probably not as meant).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal

import httpx

from harvester.config import Settings
from harvester.errors import ParseError, SourceError
from harvester.harvesting.trial import Connectors
from harvester.sources import Window, missing_key

Status = Literal["ok", "fail", "warn"]
MARKS = {"ok": "✓", "fail": "✗", "warn": "⚠"}
PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net")


@dataclass(frozen=True, slots=True)
class Item:
    status: Status
    label: str
    detail: str

    def line(self) -> str:
        return f"{MARKS[self.status]} {self.label}: {self.detail}"


def is_placeholder(address: str | None) -> bool:
    """An address at a reserved example domain (RFC 2606), as the example config has."""
    return bool(address) and str(address).lower().rsplit("@", 1)[-1] in PLACEHOLDER_DOMAINS


def config_items(settings: Settings, *, connect: bool = False) -> list[Item]:
    """The configuration's own checks: it parsed, its secrets, and what the daemon would warn
    about. A channel secret that is not set is ✗ with ``connect`` (sending needs it), else ⚠."""
    items = [
        Item(
            "ok",
            "config",
            f"{settings.path}: valid ({len(settings.topics)} topics, "
            f"{len(settings.subscriptions)} subscriptions)",
        )
    ]
    items += list(_secret_items(settings, connect=connect))
    used = dict.fromkeys(n for t in settings.topics for n in t.sources)
    for name in used:
        variable = missing_key(name, settings.source(name))
        if variable is not None:
            items.append(
                Item("warn", f"sources.{name}", f"skipped: it needs an API key (export {variable})")
            )
        src = settings.sources.get(name)
        contact = src.contact if src else None
        if is_placeholder(contact):
            key = "email" if src and src.email else "mailto"
            items.append(
                Item(
                    "warn",
                    f"sources.{name}.{key}",
                    f"{contact} is a placeholder: put your own address, so the API can reach "
                    "you before it blocks a misbehaving client",
                )
            )
    items += list(_subscription_items(settings))
    return items


def _secret_items(settings: Settings, *, connect: bool) -> Iterator[Item]:
    missing = {m.key: m for m in settings.missing_secrets()}
    for m in missing.values():
        if m.used_by == "source":
            yield Item("warn", m.key, f"{m.variable} is not set: the source runs without its key")
        else:
            yield Item("fail" if connect else "warn", m.key, f"{m.variable} is not set")
    named: list[tuple[str, str | None]] = [
        (f"sources.{n}.api_key_env", s.api_key_env) for n, s in settings.sources.items()
    ]
    named += [
        (f"subscriptions[{i}].webhook_url_env", s.webhook_url_env)
        for i, s in enumerate(settings.subscriptions)
    ]
    if settings.channels.email is not None:
        named += [
            ("channels.email.username_env", settings.channels.email.username_env),
            ("channels.email.password_env", settings.channels.email.password_env),
        ]
    if settings.channels.slack is not None:
        named.append(("channels.slack.webhook_url_env", settings.channels.slack.webhook_url_env))
    for key, variable in named:
        if variable and key not in missing:
            yield Item("ok", key, f"{variable} is set")


def _subscription_items(settings: Settings) -> Iterator[Item]:
    zones = {t.name: t.timezone for t in settings.topics}
    subscribed = {name for s in settings.subscriptions for name in s.topics}
    for i, sub in enumerate(settings.subscriptions):
        first = zones[sub.topics[0]]
        others = sorted({f"{t} ({zones[t]})" for t in sub.topics if zones[t] != first})
        if others and sub.parsed_cadence.kind != "immediate":
            yield Item(
                "warn",
                f"subscriptions[{i}].cadence",
                f"{sub.cadence!r} is read in {first}, the first topic's timezone, but "
                f"{', '.join(others)} differ: put the topic whose clock you mean first",
            )
        if sub.dry_run:
            yield Item(
                "warn",
                f"subscriptions[{i}].dry_run",
                "previews only (`harvester digest --dry-run`): nothing is sent until you "
                "delete `dry_run = true`",
            )
        fake = [a for a in sub.to if is_placeholder(a)]
        if fake and not sub.dry_run:
            yield Item(
                "warn", f"subscriptions[{i}].to", f"{', '.join(fake)}: a placeholder address"
            )
    if settings.subscriptions:
        for t in settings.topics:
            if t.name not in subscribed:
                yield Item(
                    "warn",
                    f"topics.{t.name}",
                    "in no subscription: its studies are stored but never sent",
                )


def connect_items(
    settings: Settings, connectors: Connectors, *, now: datetime, timeout: float = 10.0
) -> list[Item]:
    """One cheap request to each source in use, the SMTP server, each Slack webhook."""
    items: list[Item] = []
    for topic in settings.topics:
        for name in topic.sources:
            if any(i.label == f"connect {name}" for i in items):
                continue
            if missing_key(name, settings.source(name)) is not None:
                continue
            items.append(_source_item(connectors, name, topic.parsed_query, now))
    if settings.channels.email is not None and any(
        s.channel == "email" and not s.dry_run for s in settings.subscriptions
    ):
        items.append(smtp_item(settings))
    for label, url in _webhooks(settings):
        items.append(slack_item(label, url, connectors.client, timeout=timeout))
    return items


def _source_item(connectors: Connectors, name: str, query: object, now: datetime) -> Item:
    from harvester.query.syntax import Query

    assert isinstance(query, Query)
    label = f"connect {name}"
    base = connectors.settings.source(name).base_url or "its API"
    try:
        source = connectors.source(name)
        pages = source.fetch(source.translate(query), Window(now - timedelta(days=1), now))
        try:
            page = next(pages, None)  # the first page only: one search, no paging
            if page is not None:
                source.parse(page)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
    except (SourceError, ParseError) as e:
        return Item("fail", label, str(e))
    announced = "" if page is None or page.total is None else f", {page.total} results for a day"
    return Item("ok", label, f"{base} answered{announced}")


def smtp_item(settings: Settings, *, send_to: tuple[str, ...] = ()) -> Item:
    """EHLO, STARTTLS or TLS, AUTH if configured; with ``send_to``, one test email."""
    email = settings.channels.email
    assert email is not None
    label = f"smtp {email.host}:{email.port}"
    steps = ["EHLO"]
    try:
        server: smtplib.SMTP
        if email.security == "tls":
            server = smtplib.SMTP_SSL(
                email.host, email.port, timeout=email.timeout, context=ssl.create_default_context()
            )
            steps.insert(0, "TLS")
        else:
            server = smtplib.SMTP(email.host, email.port, timeout=email.timeout)
        with server:
            server.ehlo()
            if email.security == "starttls":
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
                steps.append("STARTTLS")
            if email.username is not None and email.password is not None:
                server.login(email.username.get_secret_value(), email.password.get_secret_value())
                steps.append("AUTH")
            if send_to:
                msg = EmailMessage()
                msg["From"] = email.from_
                msg["To"] = ", ".join(send_to)
                msg["Subject"] = "harvester check: test message"
                msg["Message-ID"] = make_msgid(domain="harvester.harvesting.check")
                msg.set_content("harvester check --send-test: this server accepts mail from us.")
                server.send_message(msg)
                steps.append(f"test email sent to {', '.join(send_to)}")
    except (OSError, smtplib.SMTPException) as e:
        return Item("fail", label, f"{type(e).__name__}: {e} (after {' '.join(steps[:-1])})"
                    if len(steps) > 1 else f"{type(e).__name__}: {e}")  # fmt: skip
    return Item("ok", label, " ".join(steps) + " ok" if not send_to else ", ".join(steps))


def _webhooks(settings: Settings) -> list[tuple[str, str]]:
    """(label, URL) of each Slack webhook a subscription uses, once each."""
    out: dict[str, tuple[str, str]] = {}
    slack = settings.channels.slack
    for i, sub in enumerate(settings.subscriptions):
        if sub.channel != "slack" or sub.dry_run:
            continue
        secret = sub.webhook_url or (slack.webhook_url if slack else None)
        variable = sub.webhook_url_env or (slack.webhook_url_env if slack else None)
        if secret is not None:
            url = secret.get_secret_value()
            out.setdefault(url, (f"slack {variable} (subscriptions[{i}])", url))
    return list(out.values())


def slack_item(
    label: str, url: str, client: httpx.Client, *, timeout: float, text: str | None = None
) -> Item:
    """Probe a webhook with an empty message, which Slack refuses without posting (400
    no_text: the webhook exists; 404 no_service / 403 / 410: it does not); with ``text``,
    post it."""
    try:
        response = client.post(url, json={"text": text} if text else {}, timeout=timeout)
    except httpx.HTTPError as e:
        return Item("fail", label, f"unreachable: {type(e).__name__}: {e}")
    body = response.text[:80].strip()
    if text:
        if response.is_success:
            return Item("ok", label, "test message posted")
        return Item("fail", label, f"{response.status_code} {body}")
    if response.status_code == 400 or response.is_success:
        return Item("ok", label, f"webhook exists ({response.status_code} {body}; nothing posted)")
    return Item("fail", label, f"{response.status_code} {body}")


def send_tests(settings: Settings, connectors: Connectors, *, timeout: float = 10.0) -> list[Item]:
    """--send-test: one short message to each Slack webhook, one email to every recipient."""
    items = [
        slack_item(label, url, connectors.client, timeout=timeout,
                   text="harvester check --send-test: this webhook works.")
        for label, url in _webhooks(settings)
    ]  # fmt: skip
    recipients = tuple(
        dict.fromkeys(
            a
            for s in settings.subscriptions
            if s.channel == "email" and not s.dry_run
            for a in s.to
        )
    )
    if recipients and settings.channels.email is not None:
        items.append(smtp_item(settings, send_to=recipients))
    elif any(s.channel == "email" for s in settings.subscriptions):
        items.append(
            Item("warn", "test email", "not sent: every email subscription is dry_run = true")
        )
    return items
