"""Email: a digest as one multipart/alternative message (plain text, then HTML) over SMTP.

Security follows ``[channels.email] security``: ``starttls`` (RFC 3207, port 587), ``tls``
(implicit TLS, RFC 8314, port 465) or ``none`` (a local relay). Credentials come from the
environment through the config and are used only for ``AUTH``; they are never logged.

Every SMTP session has a total ``deadline`` (``[channels.email] deadline``, 120 s) besides the
per-read ``timeout``: a server that answers one byte every few seconds never trips a read
timeout, so a watchdog (:mod:`harvester.notifiers.smtp`) shuts the socket down when the
deadline passes, wherever the session is (connect, banner, EHLO, STARTTLS, AUTH, DATA).

Headers are built by :class:`email.message.EmailMessage` with the default policy, which
folds and RFC 2047-encodes long or non-ASCII values and refuses CR/LF inside a header; record
text that reaches a header (a lone study's title in the Subject) is made one line first.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Self

import structlog
from pydantic import SecretStr

from harvester.digests.render import one_line
from harvester.errors import ConfigError
from harvester.notifiers.base import ChannelError, ChannelNotifier, Wiring
from harvester.notifiers.smtp import Security, Watchdog, connect

if TYPE_CHECKING:
    from harvester.config import Settings
    from harvester.config.subscriptions import SubscriptionSettings
    from harvester.digests.render import RenderedDigest
    from harvester.web.tokens import Signer

log = structlog.get_logger(__name__)

LARGE_BODY = 256 * 1024
"""Above this, bodies are base64 (fast to encode); below, quoted-printable (readable source)."""
DEFAULT_DEADLINE = 120.0
"""Seconds one SMTP session may take in all, from connecting to the server's last reply."""


class EmailNotifier(ChannelNotifier):
    """Sends digests to ``to`` through one SMTP server."""

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security,
        sender: str,
        to: tuple[str, ...],
        username: SecretStr | None = None,
        password: SecretStr | None = None,
        unsubscribe: str | None = None,
        timeout: float = 30.0,
        deadline: float = DEFAULT_DEADLINE,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        signer: Signer | None = None,
        left: tuple[str, ...] = (),
    ) -> None:
        if not to and not left:
            raise ValueError("an email notifier needs at least one recipient")
        if (username is None) != (password is None):
            raise ValueError("SMTP AUTH needs both a username and a password")
        self.host = host
        self.port = port
        self.security: Security = security
        self.sender = sender
        self.to = to
        self._username = username
        self._password = password
        self.unsubscribe = unsubscribe
        self.timeout = timeout
        self.deadline = deadline
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.clock = clock
        # with a signer, a digest carrying web links goes to each recipient alone, with their
        # own unsubscribe and feedback tokens; ``left`` are those who unsubscribed
        self.signer = signer
        self.left = left

    @classmethod
    def build(cls, settings: Settings, subscription: SubscriptionSettings, wiring: Wiring) -> Self:
        """The notifier for one email subscription (the wiring's client and sleep are unused:
        SMTP retries are the outbox's, on its next tick). Recipients who unsubscribed through
        the web interface are left out by the caller (delivery.notifier_for)."""
        channel = settings.channels.email
        if channel is None:
            raise ConfigError(
                f"{settings.path or 'config'}: an email subscription needs [channels.email]"
            )
        return cls(
            host=channel.host,
            port=channel.port,
            security=channel.security,
            sender=channel.from_,
            to=subscription.to,
            username=channel.username,
            password=channel.password,
            timeout=channel.timeout,
            deadline=channel.deadline,
            clock=wiring.clock or (lambda: datetime.now(UTC)),
            signer=_signer(settings),
        )

    def personal(self, message: RenderedDigest) -> bool:
        """Whether ``message`` goes to each recipient alone (it carries signed web links)."""
        return bool(message.web) and self.signer is not None

    def parts(self, message: RenderedDigest) -> int:
        """What the outbox counts as parts: one message, or one per recipient."""
        return len(self.to) if self.personal(message) else 1

    def compose(
        self,
        message: RenderedDigest,
        *,
        now: datetime | None = None,
        recipient: str | None = None,
    ) -> EmailMessage:
        """The message as it would be sent (also what ``--dry-run`` can show); for one
        ``recipient`` (with their own links) when the digest is personal."""
        base = message.web
        if recipient is not None and self.signer is not None and base:
            from harvester.web.links import personalize, unsubscribe_url

            message = personalize(message, recipient, self.signer)
            unsubscribe: str | None = unsubscribe_url(
                base, self.signer, recipient, message.subscription
            )
        else:
            unsubscribe = self.unsubscribe
        mail = EmailMessage()
        mail["Subject"] = one_line(message.subject)
        mail["From"] = self.sender
        mail["To"] = recipient if recipient is not None else ", ".join(self.to)
        mail["Date"] = format_datetime((now or self.clock()).astimezone(UTC))
        mail["Message-ID"] = message_id(
            message.key if recipient is None else f"{message.key}-{_digest8(recipient)}",
            self.sender,
        )
        mail["List-Unsubscribe"] = list_unsubscribe(unsubscribe, self.sender)
        if unsubscribe is not None and unsubscribe != self.unsubscribe:
            # RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" to our own URL
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        # RFC 3834: machine-generated; stops vacation auto-replies to the sender address
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Harvester-Digest"] = message.key
        big = len(message.html) > LARGE_BODY
        mail.set_content(message.text, subtype="plain", cte="base64" if big else "quoted-printable")
        mail.add_alternative(
            message.html, subtype="html", cte="base64" if big else "quoted-printable"
        )
        return mail

    def send(
        self,
        message: RenderedDigest,
        *,
        skip_parts: int = 0,
        on_part: Callable[[int], None] | None = None,
    ) -> None:
        """Deliver ``message``; return only once the server accepted it for every recipient
        it did not refuse outright (partly refused recipients are logged, not retried, so
        the accepted ones do not get it twice). The whole session ends within ``deadline``.
        A personal digest is one message per recipient in the same session; each accepted
        one is a part (``on_part``), so a retry skips the recipients who already have it."""
        if not self.to:
            log.info("digest not mailed: every recipient unsubscribed", digest=message.key)
            if on_part is not None:
                on_part(1)
            return
        if self.personal(message):
            mails = [self.compose(message, recipient=r) for r in self.to[skip_parts:]]
        else:
            mails = [self.compose(message)]
        watchdog = Watchdog(self.deadline)
        in_transaction = False  # past this point a broken connection may hide an acceptance
        refused: dict[str, object] = {}
        try:
            with self._connect(watchdog) as smtp:
                for n, mail in enumerate(mails):
                    in_transaction = True
                    refused.update(smtp.send_message(mail))
                    in_transaction = False
                    if len(mails) > 1 and on_part is not None:
                        on_part(skip_parts + n + 1)
        except (smtplib.SMTPException, OSError) as e:
            if watchdog.expired.is_set():  # whatever the cut-off read made of it
                raise ChannelError(
                    f"SMTP session with {self.host}:{self.port} exceeded its deadline of "
                    f"{self.deadline:g} s ([channels.email] deadline); the server is too slow "
                    f"or stalling",
                    channel=self.name,
                    retryable=True,
                    status="deadline",
                    ambiguous=in_transaction,
                ) from e
            raise self._failure(e, ambiguous=in_transaction) from e
        finally:
            watchdog.close()
        if on_part is not None and len(mails) == 1:
            on_part(skip_parts + 1 if self.personal(message) else 1)
        if refused:
            log.warning("recipients refused", digest=message.key, refused=sorted(refused))
        log.info(
            "digest mailed",
            digest=message.key,
            studies=message.count,
            recipients=len(self.to) - len(refused),
        )

    def _failure(self, e: smtplib.SMTPException | OSError, *, ambiguous: bool) -> ChannelError:
        """The ChannelError for what the SMTP session raised: whether a retry may help, and
        whether the message may have arrived anyway."""
        if isinstance(e, smtplib.SMTPRecipientsRefused):
            codes = {code for code, _ in e.recipients.values()}
            return ChannelError(
                f"every recipient refused ({', '.join(str(c) for c in sorted(codes))})",
                channel=self.name,
                retryable=all(400 <= c < 500 for c in codes),
                status=min(codes) if codes else None,
            )
        if isinstance(e, smtplib.SMTPResponseException):
            return ChannelError(
                f"SMTP server replied {e.smtp_code}: {_reply(e.smtp_error)}",
                channel=self.name,
                # RFC 5321 §4.2.1: 4yz is a transient failure, 5yz a permanent one
                retryable=400 <= e.smtp_code < 500,
                status=e.smtp_code,
            )
        if isinstance(e, smtplib.SMTPNotSupportedError):
            return ChannelError(
                f"SMTP server does not support what the config asks ({e}); check security",
                channel=self.name,
                retryable=False,
            )
        if isinstance(e, ssl.SSLCertVerificationError):
            return ChannelError(
                f"TLS certificate of {self.host} not trusted: {e.verify_message}",
                channel=self.name,
                retryable=False,
            )
        # refused, reset, timeout, TLS failure
        return ChannelError(
            f"cannot deliver to {self.host}:{self.port}: {type(e).__name__}: {e}",
            channel=self.name,
            retryable=True,
            ambiguous=ambiguous,
        )

    def _connect(self, watchdog: Watchdog) -> smtplib.SMTP:
        return connect(
            self.host,
            self.port,
            self.security,
            watchdog,
            timeout=self.timeout,
            context=self.ssl_context,
            username=self._username,
            password=self._password,
        )


def message_id(key: str, sender: str) -> str:
    """``<digest-KEY@domain>``: the same digest always gets the same Message-ID, so a copy
    re-sent after a failure that the server had in fact accepted is recognisably the same
    message (RFC 5322 §3.6.4: the right side names the sender's domain). ``key`` is the
    rendered digest's message key: it covers the database's deployment id and the digest's
    items, so another database's digest number never gives the same Message-ID."""
    try:
        domain = Address(addr_spec=sender).domain
    except (ValueError, IndexError):
        domain = ""
    return f"<digest-{key}@{domain or 'harvester'}>"


def list_unsubscribe(target: str | None, sender: str) -> str:
    """RFC 2369 List-Unsubscribe: a configured ``mailto:``/``https:`` URI, else a mail to the
    sender with the subject "unsubscribe"."""
    if target:
        uri = one_line(target).replace(" ", "%20")
        if not uri.startswith(("mailto:", "https:", "http:")):
            uri = f"mailto:{uri}"
    else:
        uri = f"mailto:{sender}?subject=unsubscribe"
    return f"<{uri}>"


def _digest8(text: str) -> str:
    return hashlib.sha256(text.lower().encode()).hexdigest()[:8]


def _signer(settings: Settings) -> Signer | None:
    """The web link signer when digests carry web links ([web] base_url and its secret)."""
    web = settings.web
    if not web.links:
        return None
    from harvester.web.tokens import signer_for

    return signer_for(web.secret(), web.token_max_age_days)


def _reply(error: bytes | str) -> str:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    return one_line(text)[:300]
