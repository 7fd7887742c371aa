"""Who is sent what, when: subscriptions, their cadence, and the channels that deliver."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from harvester.config.base import Strict, WithSecrets, one_or_many

CHANNEL_NAMES: tuple[str, ...] = ("email", "slack")

_CADENCE = re.compile(
    r"^(?:(?P<immediate>immediate)|daily (?P<dh>\d{1,2}):(?P<dm>\d{2})"
    r"|weekly (?P<wd>mon|tue|wed|thu|fri|sat|sun) (?P<wh>\d{1,2}):(?P<wm>\d{2}))$"
)


@dataclass(frozen=True, slots=True)
class Cadence:
    """When a subscription's digest is due: ``kind`` is immediate, daily or weekly."""

    kind: Literal["immediate", "daily", "weekly"]
    hour: int = 0
    minute: int = 0
    weekday: str | None = None

    @classmethod
    def parse(cls, text: str) -> Cadence:
        m = _CADENCE.match(text.strip().lower())
        if not m:
            raise ValueError(
                f'invalid cadence {text!r}: use "daily HH:MM", "weekly mon HH:MM" or "immediate"'
            )
        if m["immediate"]:
            return cls("immediate")
        hour, minute = (int(m["dh"]), int(m["dm"])) if m["dh"] else (int(m["wh"]), int(m["wm"]))
        if hour > 23 or minute > 59:
            raise ValueError(f"invalid time of day in cadence {text!r}")
        return cls("daily" if m["dh"] else "weekly", hour, minute, m["wd"])


class SubscriptionSettings(WithSecrets):
    SECRETS = {"webhook_url": "webhook_url_env"}

    name: str | None = None
    topics: tuple[str, ...]
    channel: str
    to: tuple[str, ...] = ()
    webhook_url_env: str | None = None
    webhook_url: SecretStr | None = Field(default=None, exclude=True)
    cadence: str = "daily 08:00"
    max_items: int = Field(default=50, gt=0, le=10000)
    abstracts: bool = True
    send_empty: bool = False
    # previews only: `run` and `digest` send nothing for it (the example config's default,
    # until `to` and [channels.email] are the user's own); `digest --dry-run` shows it
    dry_run: bool = False

    @field_validator("to", "topics", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return one_or_many(v)

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        if v not in CHANNEL_NAMES:
            raise ValueError(f"unknown channel {v!r}; known channels: {', '.join(CHANNEL_NAMES)}")
        return v

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, v: str) -> str:
        Cadence.parse(v)
        return v

    @model_validator(mode="after")
    def _recipients(self) -> SubscriptionSettings:
        if not self.topics:
            raise ValueError("topics: a subscription needs at least one topic")
        if self.channel == "email" and not self.to:
            raise ValueError("to: an email subscription needs at least one recipient")
        for address in self.to:
            if "@" not in address or any(c in address for c in "\r\n,;<> "):
                raise ValueError(f"to: invalid email address {address!r}")
        return self

    @property
    def parsed_cadence(self) -> Cadence:
        return Cadence.parse(self.cadence)

    @property
    def key(self) -> str:
        """A stable identity for delivery bookkeeping (what was sent to whom)."""
        if self.name:
            return self.name
        target = ",".join(self.to) if self.channel == "email" else (self.webhook_url_env or "")
        return f"{self.channel}:{'+'.join(sorted(self.topics))}:{target}"


class EmailChannelSettings(WithSecrets):
    SECRETS = {"username": "username_env", "password": "password_env"}

    host: str = "localhost"
    port: int = Field(default=587, gt=0, lt=65536)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    username: SecretStr | None = Field(default=None, exclude=True)
    password: SecretStr | None = Field(default=None, exclude=True)
    from_: str = Field(default="harvester@localhost", alias="from")
    timeout: float = Field(default=30.0, gt=0)
    # a whole SMTP session (connect to last reply) ends within this, however slow the server
    deadline: float = Field(default=120.0, gt=0)


class SlackChannelSettings(WithSecrets):
    SECRETS = {"webhook_url": "webhook_url_env"}

    webhook_url_env: str | None = None
    webhook_url: SecretStr | None = Field(default=None, exclude=True)


class ChannelsSettings(Strict):
    email: EmailChannelSettings | None = None
    slack: SlackChannelSettings | None = None
