"""The configuration: TOML in, validated frozen settings out.

Every error names the file, the key path and the problem, e.g.::

    config/harvester.toml: topics[0].schedule: invalid cron "* * *": Wrong number of fields

Secrets never live in the file: it names environment variables (``api_key_env``), whose values
are read here once and kept as :class:`pydantic.SecretStr` so they never print.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from harvester.errors import ConfigError, QuerySyntaxError
from harvester.query.syntax import Query, parse_query

DEFAULT_DATABASE_URL = "sqlite:///harvester.db"
DEFAULT_CONFIG_PATH = Path("config/harvester.toml")
SOURCE_NAMES: tuple[str, ...] = (
    "pubmed",
    "europepmc",
    "crossref",
    "openalex",
    "arxiv",
    "biorxiv",
    "medrxiv",
    "semanticscholar",
)
CHANNEL_NAMES: tuple[str, ...] = ("email", "slack")

_CADENCE = re.compile(
    r"^(?:(?P<immediate>immediate)|daily (?P<dh>\d{1,2}):(?P<dm>\d{2})"
    r"|weekly (?P<wd>mon|tue|wed|thu|fri|sat|sun) (?P<wh>\d{1,2}):(?P<wm>\d{2}))$"
)
_FIELD_FIRST = re.compile(r"^(?P<key>[a-z_]+): (?P<rest>.*)$", re.DOTALL)
# besides cron, "every 90s" / "every 15m" / "every 6h" (handy against a local emulator), also
# spelled out: "every 30 minutes", "every 2 hours", "every 90 sec"
_EVERY = re.compile(
    r"^every (?P<n>[1-9]\d*) ?(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)$"
)
EVERY_FORMS = "every 90s, every 30m, every 6h (or every 30 minutes, every 2 hours)"
CRON_FORM = "a cron has 5 fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * *'"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _env_secret(var: str | None, *, key: str) -> SecretStr | None:
    """The value of the environment variable named by ``key``, None when it is not set.

    A named but unset variable is not an error here: it is one only where the secret is used
    (:meth:`Settings.require_channel_secrets` for the commands that send; a source without its
    key is skipped or runs keyless, with a warning), so `status`, `export`, `try` and friends
    work before any secret exists. :meth:`Settings.missing_secrets` lists what is unset."""
    if var is None:
        return None
    value = os.environ.get(var)
    return SecretStr(value) if value else None


def _one_or_many(v: Any) -> Any:
    """A single string where a list is expected (``to = "a@b.org"``) is a list of one."""
    return (v,) if isinstance(v, str) else v


@dataclass(frozen=True, slots=True)
class MissingSecret:
    """A key naming an environment variable that is not set; ``used_by`` is "source" (an API
    key) or "channel" (what sending a digest needs)."""

    key: str
    variable: str
    used_by: Literal["source", "channel"]

    def describe(self) -> str:
        return f"{self.key} names the environment variable {self.variable}, which is not set"


class DatabaseSettings(_Strict):
    url: str = DEFAULT_DATABASE_URL


class SourceSettings(_Strict):
    """Per-source settings; every key optional, each source has its real default."""

    base_url: str | None = None
    email: str | None = None
    mailto: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True)
    requests_per_second: float | None = Field(default=None, gt=0)
    overlap_days: int | None = Field(default=None, ge=0, le=365)
    page_size: int | None = Field(default=None, gt=0)
    # decoded bytes one response may have; None: [http] max_response_bytes
    max_response_bytes: int | None = Field(default=None, gt=0)
    # the largest record read; a larger one is skipped (sources/base.py MAX_RECORD_BYTES)
    max_record_bytes: int | None = Field(default=None, ge=1000)

    @model_validator(mode="before")
    @classmethod
    def _read_key(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            if "api_key" in data:
                raise ValueError(
                    "api_key must not be written in the file; set api_key_env to the name of "
                    "an environment variable that holds it"
                )
            data = dict(data)
            data["api_key"] = _env_secret(data.get("api_key_env"), key="api_key_env")
        return data

    @property
    def contact(self) -> str | None:
        return self.email or self.mailto


class TopicSettings(_Strict):
    name: str
    query: str
    sources: tuple[str, ...] = ("pubmed",)
    schedule: str = "0 6 * * *"
    timezone: str = "UTC"
    lookback_days: int = Field(default=7, ge=0, le=36500)
    raw_queries: dict[str, str] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"invalid topic name {v!r}: use letters, digits, '.', '_' or '-'")
        return v

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        try:
            parse_query(v)
        except QuerySyntaxError as e:
            raise ValueError(f"query syntax error: {e}") from None
        return v

    @field_validator("sources", mode="before")
    @classmethod
    def _one_source(cls, v: Any) -> Any:
        return _one_or_many(v)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("a topic needs at least one source")
        for name in v:
            if name not in SOURCE_NAMES:
                raise ValueError(
                    f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}"
                )
        return v

    @field_validator("raw_queries")
    @classmethod
    def _raw(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if name not in SOURCE_NAMES:
                raise ValueError(
                    f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}"
                )
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {v!r} (use an IANA name like Europe/Vienna)"
            ) from None
        return v

    @model_validator(mode="after")
    def _cron(self) -> TopicSettings:
        schedule = self.schedule.strip()
        if _EVERY.match(schedule.lower()):
            return self
        if schedule.lower().startswith("every"):
            raise ValueError(f"schedule: invalid interval {self.schedule!r}: use {EVERY_FORMS}")
        try:
            CronTrigger.from_crontab(self.schedule, timezone=ZoneInfo(self.timezone))
        except ValueError as e:
            raise ValueError(
                f"schedule: invalid cron {self.schedule!r}: {e} ({CRON_FORM}; or {EVERY_FORMS})"
            ) from None
        return self

    @property
    def interval_seconds(self) -> int | None:
        """For ``schedule = "every 30s"`` (also m, h, spelled out): the period; None for a
        cron schedule."""
        m = _EVERY.match(self.schedule.strip().lower())
        if m is None:
            return None
        return int(m["n"]) * {"s": 1, "m": 60, "h": 3600}[m["unit"][0]]

    @property
    def parsed_query(self) -> Query:
        return parse_query(self.query)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


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


class SubscriptionSettings(_Strict):
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
    # retractions and corrections of studies it was sent: in the next digest, a retraction
    # also at once as a short message, or not at all
    updates: Literal["digest", "immediate", "off"] = "digest"

    @model_validator(mode="before")
    @classmethod
    def _read_webhook(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("webhook_url_env"):
            data = dict(data)
            data["webhook_url"] = _env_secret(data["webhook_url_env"], key="webhook_url_env")
        return data

    @field_validator("to", "topics", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return _one_or_many(v)

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


class EmailChannelSettings(_Strict):
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

    @model_validator(mode="before")
    @classmethod
    def _read_credentials(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            data["username"] = _env_secret(data.get("username_env"), key="username_env")
            data["password"] = _env_secret(data.get("password_env"), key="password_env")
        return data


class SlackChannelSettings(_Strict):
    webhook_url_env: str | None = None
    webhook_url: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _read_webhook(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            data["webhook_url"] = _env_secret(data.get("webhook_url_env"), key="webhook_url_env")
        return data


class DaemonSettings(_Strict):
    """How `harvester run` schedules (all optional)."""

    jitter_seconds: int = Field(default=60, ge=0)  # spreads replicas' and topics' start times
    misfire_grace_seconds: int = Field(default=3600, gt=0)
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    digest_retry_seconds: float = Field(default=300.0, gt=0)  # how often unsent digests retry
    # a harvest running longer is reported by /healthz (503, naming the job): 3 h
    max_run_seconds: float = Field(default=10800.0, gt=0)
    # harvest runs older than this are rolled up into daily counts per topic × source
    # (harvest_run_days) every few hours; 0 keeps every run
    run_retention_days: int = Field(default=90, ge=0)


class HttpSettings(_Strict):
    """Limits of every HTTP request the app makes (API pages and Slack posts)."""

    timeout_seconds: float = Field(default=30.0, gt=0)  # per connect / read / write
    request_deadline_seconds: float = Field(default=120.0, gt=0)  # per attempt, in total
    max_response_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # decoded, per response


class FeedsSettings(_Strict):
    """Where the topics' Atom feeds (`harvester feed`) are published, if anywhere: digests
    link the studies they hold back to ``base_url``/TOPIC.atom (or ``base_url`` with
    ``{topic}`` replaced)."""

    base_url: str | None = None

    def url(self, topic: str) -> str | None:
        if not self.base_url:
            return None
        if "{topic}" in self.base_url:
            return self.base_url.replace("{topic}", topic)
        return f"{self.base_url.rstrip('/')}/{topic}.atom"


class WebSettings(_Strict):
    """The web interface (`harvester web`): its public address, where its secrets come from,
    and whether reading needs a login. Links in digests (unsubscribe, feedback, topic pages)
    are built from ``base_url`` only when it is set and the signing secret is in the
    environment; the secrets are read when used, never stored in the settings."""

    base_url: str | None = None
    secret_env: str = "HARVESTER_WEB_SECRET"
    admin_password_env: str = "HARVESTER_WEB_ADMIN_PASSWORD"
    public_read: bool = False
    token_max_age_days: int = Field(default=365, gt=0, le=3650)
    page_size: int = Field(default=25, gt=0, le=500)

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for loopback)")
        return v.rstrip("/") if v else v

    def secret(self) -> str | None:
        """The signing secret from ``secret_env`` (None when unset or empty)."""
        return os.environ.get(self.secret_env) or None

    def admin_password(self) -> str | None:
        return os.environ.get(self.admin_password_env) or None

    @property
    def links(self) -> bool:
        """Whether digests carry signed web links (a base URL and a secret are both there)."""
        return bool(self.base_url) and self.secret() is not None


class ChannelsSettings(_Strict):
    email: EmailChannelSettings | None = None
    slack: SlackChannelSettings | None = None


class Settings(_Strict):
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
        for name in v:
            if name not in SOURCE_NAMES:
                raise ValueError(
                    f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}"
                )
        return v

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [t.name for t in self.topics]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise _KeyedError(f"topics[{i}].name", f"duplicate topic name {name!r}")
        for i, sub in enumerate(self.subscriptions):
            for topic in sub.topics:
                if topic not in names:
                    raise _KeyedError(
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
                raise _KeyedError(
                    f"subscriptions[{i}].channel",
                    "a slack subscription needs [channels.slack] webhook_url_env "
                    "(or webhook_url_env on the subscription)",
                )
            if sub.channel == "email" and self.channels.email is None:
                raise _KeyedError(
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


class _KeyedError(ValueError):
    """A cross-reference error that knows its own key path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap(tp: Any) -> Any:
    """``X | None`` → X."""
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys valid in the table at ``loc`` (the location of an unknown key), for a
    "did you mean" hint; empty when the location cannot be followed."""
    tp: Any = Settings
    for part in loc[:-1]:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if origin in (tuple, list, dict):
            args = [a for a in get_args(tp) if a is not Ellipsis]
            tp = args[-1] if args else None
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return []
            tp = field.annotation
        else:
            return []
    tp = _unwrap(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return []
    return [f.alias or n for n, f in tp.model_fields.items() if not f.exclude and n != "path"]


_TYPE_WORDS = {
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "string_type": "a string in quotes",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
_TOML_TYPES = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "a table",
}


def _describe(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        loc = tuple(error.get("loc", ()))
        near = difflib.get_close_matches(str(loc[-1]) if loc else "", _keys_at(loc), n=1)
        return "unknown key" + (f"; did you mean {near[0]!r}?" if near else "")
    if kind == "missing":
        return "missing required key"
    if kind in _TYPE_WORDS:
        got = error.get("input")
        given = _TOML_TYPES.get(type(got), type(got).__name__)
        shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:59] + "…"
        example = ' (write ["…", "…"])' if _TYPE_WORDS[kind] == "a list" else ""
        return f"expected {_TYPE_WORDS[kind]}, got {given} {shown}{example}"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _format_validation(path: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        keyed = ctx.get("error")
        if isinstance(keyed, _KeyedError):
            lines.append(f"{path}: {keyed.path}: {keyed.message}")
            continue
        where, problem = _loc_to_path(tuple(err["loc"])), _describe(err)
        # a whole-table check names its key first ("schedule: invalid cron …"): join it to the path
        if m := _FIELD_FIRST.match(problem):
            where, problem = f"{where}.{m['key']}", m["rest"]
        lines.append(f"{path}: {where}: {problem}")
    return "\n".join(lines)


def parse_settings(data: Mapping[str, Any], *, path: str = "<config>") -> Settings:
    """Validate an already-parsed TOML document."""
    try:
        settings = Settings.model_validate(dict(data))
    except ValidationError as e:
        raise ConfigError(_format_validation(path, e)) from None
    except _KeyedError as e:  # raised outside pydantic's wrapping in some versions
        raise ConfigError(f"{path}: {e.path}: {e.message}") from None
    return settings.model_copy(update={"path": path})


def load_settings(path: Path, *, database_url: str | None = None) -> Settings:
    """Read and validate ``path``; ``database_url`` (or $HARVESTER_DATABASE_URL) wins over
    the file's."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such configuration file (create one with `harvester init`, "
            "or pass --config / set HARVESTER_CONFIG)"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")  # TOML: "A TOML file must be a valid UTF-8 encoded document"
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table and gives up at Python's
        # stack limit (a few hundred levels); no configuration nests more than a few
        line = _too_deep_line(text)
        where = f" (line {line})" if line else ""
        raise ConfigError(
            f"{path}: not valid TOML: arrays or inline tables nested too deeply{where}"
        ) from None
    settings = parse_settings(data, path=str(path))
    url = database_url or os.environ.get("HARVESTER_DATABASE_URL")
    if url:
        settings = settings.model_copy(update={"database": DatabaseSettings(url=url)})
    return settings


def _too_deep_line(text: str, limit: int = 100) -> int | None:
    """The line where ``[``/``{`` nesting outside strings and comments first passes ``limit``
    (only to name the line in an error; tomllib itself decides what is too deep)."""
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                if text[i] == "\\" and c == '"':
                    i += 1  # an escaped character (a quote, or a line-ending backslash)
                if i < n and text[i] == "\n":
                    line += 1
                i += 1
            i += len(quote)
            continue
        elif c in "[{":
            depth += 1
            if depth > limit:
                return line
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None


def default_config_path() -> Path:
    return Path(os.environ.get("HARVESTER_CONFIG") or DEFAULT_CONFIG_PATH)
