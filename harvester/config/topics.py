"""A topic: its portable query, the sources it asks, and when it is harvested."""

from __future__ import annotations

import functools
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, field_validator, model_validator

from harvester.config.base import Strict, known_sources, one_or_many
from harvester.errors import QuerySyntaxError
from harvester.query.syntax import Query, parse_query

# besides cron, "every 90s" / "every 15m" / "every 6h" (handy against a local emulator), also
# spelled out: "every 30 minutes", "every 2 hours", "every 90 sec"
_EVERY = re.compile(
    r"^every (?P<n>[1-9]\d*) ?(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)$"
)
EVERY_FORMS = "every 90s, every 30m, every 6h (or every 30 minutes, every 2 hours)"
CRON_FORM = "a cron has 5 fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * *'"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# a topic's query is parsed once, when the configuration is validated; every later
# ``parsed_query`` (each harvest, each digest) is that same parse (a Query is immutable)
_parse_once = functools.cache(parse_query)


class TopicSettings(Strict):
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
            _parse_once(v)
        except QuerySyntaxError as e:
            raise ValueError(f"query syntax error: {e}") from None
        return v

    @field_validator("sources", mode="before")
    @classmethod
    def _one_source(cls, v: Any) -> Any:
        return one_or_many(v)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("a topic needs at least one source")
        return known_sources(v)

    @field_validator("raw_queries")
    @classmethod
    def _raw(cls, v: dict[str, str]) -> dict[str, str]:
        return known_sources(v)

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
        return _parse_once(self.query)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
