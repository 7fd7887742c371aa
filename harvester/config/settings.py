"""The whole configuration: every table, the cross-references between them, and which
of the secrets it names are set."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from harvester.config.base import KeyedError, Strict, known_sources
from harvester.config.sections import (
    DaemonSettings,
    DatabaseSettings,
    FeedsSettings,
    HttpSettings,
    SourceSettings,
    WebSettings,
)
from harvester.config.subscriptions import ChannelsSettings, SubscriptionSettings
from harvester.config.topics import TopicSettings
from harvester.errors import ConfigError


@dataclass(frozen=True, slots=True)
class MissingSecret:
    """A key naming an environment variable that is not set; ``used_by`` is "source" (an API
    key) or "channel" (what sending a digest needs)."""

    key: str
    variable: str
    used_by: Literal["source", "channel"]

    def describe(self) -> str:
        return f"{self.key} names the environment variable {self.variable}, which is not set"


class Settings(Strict):
    """The whole configuration, validated; ``path`` is where it was read from."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    topics: tuple[TopicSettings, ...] = ()
    subscriptions: tuple[SubscriptionSettings, ...] = ()
    channels: ChannelsSettings = Field(default_factory=ChannelsSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    feeds: FeedsSettings = Field(default_factory=FeedsSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    path: str | None = Field(default=None, exclude=True)

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, v: dict[str, SourceSettings]) -> dict[str, SourceSettings]:
        return known_sources(v)

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [t.name for t in self.topics]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise KeyedError(f"topics[{i}].name", f"duplicate topic name {name!r}")
        for i, sub in enumerate(self.subscriptions):
            for topic in sub.topics:
                if topic not in names:
                    raise KeyedError(
                        f"subscriptions[{i}].topics",
                        f"unknown topic {topic!r}; topics: {', '.join(names) or '(none)'}",
                    )
            # the variable must be named here; its value is needed only to send
            # (require_channel_secrets), so read-only commands run without it
            if (
                sub.channel == "slack"
                and sub.webhook_url_env is None
                and (self.channels.slack is None or self.channels.slack.webhook_url_env is None)
            ):
                raise KeyedError(
                    f"subscriptions[{i}].channel",
                    "a slack subscription needs [channels.slack] webhook_url_env "
                    "(or webhook_url_env on the subscription)",
                )
            if sub.channel == "email" and self.channels.email is None:
                raise KeyedError(
                    f"subscriptions[{i}].channel", "an email subscription needs [channels.email]"
                )
        return self

    def secret_values(self) -> list[str]:
        """Every secret read from the environment, for the log redactor."""
        found: list[SecretStr | None] = [s.api_key for s in self.sources.values()]
        found += [s.webhook_url for s in self.subscriptions]
        if self.channels.email is not None:
            found += [self.channels.email.username, self.channels.email.password]
        if self.channels.slack is not None:
            found.append(self.channels.slack.webhook_url)
        web = [v for v in (self.web.secret(), self.web.admin_password()) if v]
        return [s.get_secret_value() for s in found if s is not None] + web

    def missing_secrets(self) -> tuple[MissingSecret, ...]:
        """Every key that names an environment variable which is not set."""
        return tuple(self._missing())

    def _missing(self) -> Iterator[MissingSecret]:
        for name, src in self.sources.items():
            if src.api_key_env and src.api_key is None:
                yield MissingSecret(f"sources.{name}.api_key_env", src.api_key_env, "source")
        sending = [s for s in self.subscriptions if not s.dry_run]  # a preview needs none
        email_used = any(s.channel == "email" for s in sending)
        slack_default_used = any(
            s.channel == "slack" and s.webhook_url_env is None for s in sending
        )
        for i, sub in enumerate(self.subscriptions):
            if sub.dry_run:
                continue
            if sub.channel == "slack" and sub.webhook_url_env and sub.webhook_url is None:
                key = f"subscriptions[{i}].webhook_url_env"
                yield MissingSecret(key, sub.webhook_url_env, "channel")
        email = self.channels.email
        if email is not None and email_used:
            for attr in ("username", "password"):
                var = getattr(email, f"{attr}_env")
                if var and getattr(email, attr) is None:
                    yield MissingSecret(f"channels.email.{attr}_env", var, "channel")
        slack = self.channels.slack
        if slack and slack_default_used and slack.webhook_url_env and slack.webhook_url is None:
            key = "channels.slack.webhook_url_env"
            yield MissingSecret(key, slack.webhook_url_env, "channel")

    def require_channel_secrets(self) -> None:
        """Raise a ConfigError naming each secret a digest channel needs that is not set
        (called by the commands that send: `run`, `digest` without --dry-run)."""
        missing = [m for m in self.missing_secrets() if m.used_by == "channel"]
        if missing:
            where = self.path or "config"
            raise ConfigError(
                "\n".join(f"{where}: {m.describe()} (needed to send digests)" for m in missing)
            )

    def source(self, name: str) -> SourceSettings:
        return self.sources.get(name) or SourceSettings()

    def topic(self, name: str) -> TopicSettings:
        for t in self.topics:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.topics) or "(none)"
        raise ConfigError(f"{self.path or 'config'}: unknown topic {name!r}; topics: {known}")
