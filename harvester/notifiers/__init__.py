"""Notification channels, by the name a subscription's ``channel`` uses.

Build one per subscription: ``NOTIFIERS[sub.channel].from_settings(settings, sub, client=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from harvester.errors import ConfigError
from harvester.notifiers.base import ChannelError, Notifier, NotifierFactory
from harvester.notifiers.email import EmailNotifier
from harvester.notifiers.slack import SlackNotifier

NOTIFIERS: Mapping[str, NotifierFactory] = {
    "email": EmailNotifier,
    "slack": SlackNotifier,
}


def notifier_class(name: str) -> NotifierFactory:
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
