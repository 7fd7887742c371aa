"""Notification channels, by the name a subscription's ``channel`` uses.

Build one per subscription: ``NOTIFIERS[sub.channel].from_settings(settings, sub, client=...)``.

- ``base``: the seam (the ``Notifier`` protocol, ``ChannelError``);
- ``email``: a digest as one multipart message over SMTP; ``smtp``: the session under a deadline;
- ``slack``: Block Kit payloads to an incoming webhook.

A notifier transports a :class:`~harvester.digests.render.RenderedDigest` and imports from
digests only its render types and ``one_line``; it never imports delivery or the store. The
email notifier signs per-recipient web links through :mod:`harvester.web` when they are on.
"""

from __future__ import annotations

from collections.abc import Mapping

from harvester.errors import ConfigError
from harvester.notifiers.base import ChannelError, ChannelNotifier, Notifier
from harvester.notifiers.email import EmailNotifier
from harvester.notifiers.slack import SlackNotifier

NOTIFIERS: Mapping[str, type[ChannelNotifier]] = {
    "email": EmailNotifier,
    "slack": SlackNotifier,
}


def notifier_class(name: str) -> type[ChannelNotifier]:
    """The factory for channel ``name``; an unknown name is a config error listing the known."""
    try:
        return NOTIFIERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown channel {name!r}; known channels: {', '.join(NOTIFIERS)}"
        ) from None


__all__ = [
    "NOTIFIERS",
    "ChannelError",
    "EmailNotifier",
    "Notifier",
    "SlackNotifier",
    "notifier_class",
]
