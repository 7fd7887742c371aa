"""The notifier seam: a channel that delivers a :class:`~harvester.digests.render.RenderedDigest`.

A notifier only transports. What a digest says is decided by :mod:`harvester.digests.render`; what
was delivered is remembered by the store (the outbox), never by the notifier.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, Self

from harvester.errors import NotifyError

if TYPE_CHECKING:
    import httpx

    from harvester.config import Settings
    from harvester.config.subscriptions import SubscriptionSettings
    from harvester.digests.render import RenderedDigest


class ChannelError(NotifyError):
    """A channel did not accept a digest.

    ``retryable`` tells the outbox whether the same message may succeed later (server down,
    429, 5xx, a 4xx SMTP reply) or will fail the same way until someone changes something
    (Slack 400 ``invalid_blocks``, 404 ``no_service``, a 5xx SMTP reply, bad credentials).
    ``parts_sent`` counts the messages of a multi-part digest (Slack) that were accepted
    before the failure, so a retry can resume after them. ``retry_after`` is how long the
    channel asked to wait (Slack's 429 ``Retry-After``): the outbox waits at least that.
    ``ambiguous`` means the message may have reached the receiver although the send failed
    (the connection broke after the message data went out): the outbox then re-sends the same
    digest, never a topped-up one. The message never holds a secret (webhook URL, password).
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        retryable: bool,
        status: int | str | None = None,
        parts_sent: int = 0,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.retryable = retryable
        self.status = status
        self.parts_sent = parts_sent
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class Notifier(Protocol):
    """Sends one rendered digest; raises :class:`ChannelError` (a ``NotifyError``) on failure.

    Returning means the server accepted every part of the message.
    """

    name: str

    def send(
        self,
        message: RenderedDigest,
        *,
        skip_parts: int = 0,
        on_part: Callable[[int], None] | None = None,
    ) -> None:
        """``skip_parts``: messages of this digest the channel accepted on an earlier try;
        ``on_part(n)`` is called as soon as the first ``n`` messages are accepted (the outbox
        records it then, not only when a later part fails)."""
        ...


@dataclass(frozen=True, slots=True)
class Wiring:
    """The app's live parts a channel may use: its httpx client (Slack posts through it), its
    back-off ``sleep``, and its ``clock`` (email dates its messages by it)."""

    client: httpx.Client | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] | None = None


class ChannelNotifier(Notifier, ABC):
    """What the registry holds: a channel class (a :class:`Notifier`), built from the settings
    of one subscription by :meth:`from_settings`; each channel says how in :meth:`build`."""

    name: str

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        subscription: SubscriptionSettings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
    ) -> Self:
        return cls.build(settings, subscription, Wiring(client, sleep, clock))

    @classmethod
    @abstractmethod
    def build(cls, settings: Settings, subscription: SubscriptionSettings, wiring: Wiring) -> Self:
        """The notifier for ``subscription``, from its settings and the app's ``wiring``."""
