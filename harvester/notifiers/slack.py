"""Slack: a digest posted to an incoming webhook as Block Kit messages, in order.

The payloads are built and split by :mod:`harvester.digests.blocks` (through ``render_digest``);
this module only posts them. Slack's webhook answers (docs.slack.dev, "Sending messages
using incoming webhooks" and "Rate limits"): ``200 ok``; ``400 invalid_blocks`` /
``invalid_payload`` / ``no_text`` for a message it will never accept; ``403``/``404``/``410``
for a revoked hook or archived channel; ``429`` with ``Retry-After`` (seconds) when posting
faster than about one message a second; ``5xx`` when Slack itself fails.

The webhook URL is a secret (anyone holding it can post): it is never logged and never put in
an exception's text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

import httpx
import structlog
from pydantic import SecretStr

from harvester.digests.render import one_line
from harvester.errors import ConfigError
from harvester.notifiers.base import ChannelError, ChannelNotifier, Wiring

if TYPE_CHECKING:
    from harvester.config import Settings
    from harvester.config.subscriptions import SubscriptionSettings
    from harvester.digests.render import RenderedDigest

log = structlog.get_logger(__name__)


class SlackNotifier(ChannelNotifier):
    """Posts digests to one incoming webhook; retries 429 (honouring Retry-After), 5xx and
    network failures with exponential backoff through the injected ``sleep``."""

    name = "slack"

    def __init__(
        self,
        *,
        webhook_url: SecretStr,
        client: httpx.Client,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,
    ) -> None:
        self._url = webhook_url
        self.client = client
        self.sleep = sleep
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after

    @classmethod
    def build(cls, settings: Settings, subscription: SubscriptionSettings, wiring: Wiring) -> Self:
        """The notifier for one Slack subscription: its own webhook, else ``[channels.slack]``'s.
        The wiring's ``client`` (the app's shared httpx client) is required."""
        url = subscription.webhook_url or (
            settings.channels.slack.webhook_url if settings.channels.slack else None
        )
        if url is None:
            raise ConfigError(
                f"{settings.path or 'config'}: subscription {subscription.key!r} has no Slack "
                "webhook (set webhook_url_env on it or in [channels.slack])"
            )
        if wiring.client is None:
            raise ValueError("SlackNotifier needs the app's httpx client")
        return cls(webhook_url=url, client=wiring.client, sleep=wiring.sleep)

    def send(
        self,
        message: RenderedDigest,
        *,
        skip_parts: int = 0,
        on_part: Callable[[int], None] | None = None,
    ) -> None:
        """Post every payload of ``message`` in order, from ``skip_parts`` on (a retry after a
        :class:`ChannelError` with ``parts_sent=n`` passes ``skip_parts=n`` so the channel does
        not see the first parts twice). ``on_part(n)`` runs as soon as part ``n`` is accepted,
        so a process killed between two parts resumes after the last one posted."""
        total = len(message.slack)
        for number in range(skip_parts, total):
            try:
                self.post(message.slack[number])
            except ChannelError as e:
                e.parts_sent = number
                raise
            log.info("slack message posted", digest=message.key, part=number + 1, parts=total)
            if on_part is not None:
                on_part(number + 1)

    def post(self, payload: Mapping[str, Any]) -> None:
        """One payload, with retries; raises :class:`ChannelError` when Slack will not take it."""
        attempt = 0
        unclear = False

        def failure(message: str, *, retryable: bool, **more: Any) -> ChannelError:
            return ChannelError(
                message, channel=self.name, retryable=retryable, ambiguous=unclear, **more
            )

        while True:
            attempt += 1
            wait: float | None
            try:
                response = self.client.post(self._url.get_secret_value(), json=payload)
            except httpx.TransportError as e:
                # httpx errors carry the request and so the secret URL: report the kind only
                problem = f"{type(e).__name__}: {self._scrub(str(e))}"
                status: int | str = "network"
                wait = self._backoff(attempt)
                # a request that was sent may have been posted although no answer came
                unclear = unclear or not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
            else:
                if response.status_code == 200:
                    return
                status = response.status_code
                problem = f"HTTP {status} {self._scrub(one_line(response.text))[:200]}"
                if status == 429:
                    wait = _retry_after(response) or self._backoff(attempt)
                    if wait > self.max_retry_after:
                        # too long to sleep here: the outbox retries after that time
                        raise failure(
                            f"rate limited for {wait:.0f} s",
                            retryable=True,
                            status=status,
                            retry_after=wait,
                        )
                elif status >= 500:
                    wait = self._backoff(attempt)
                else:
                    # 400 invalid_blocks, 403 action_prohibited, 404 no_service, 410
                    # channel_is_archived: the same message will be refused again
                    raise failure(
                        f"Slack refused the message: {problem}", retryable=False, status=status
                    )
            if attempt >= self.max_attempts:
                raise failure(
                    f"gave up after {attempt} attempts: {problem}", retryable=True, status=status
                )
            log.warning("slack post retried", status=status, attempt=attempt, wait_s=wait)
            self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    def _scrub(self, text: str) -> str:
        url = self._url.get_secret_value()
        path = httpx.URL(url).path
        text = text.replace(url, "<webhook>")
        return text.replace(path, "<webhook>") if len(path) > 1 else text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date: Slack sends seconds; fall back to backoff
