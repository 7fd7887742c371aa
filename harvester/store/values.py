"""The plain values the repositories hand out and take: no SQL, no sessions.

A run's status is a :class:`RunStatus`; the column keeps the same strings. Rows that were
tuples are named tuples, so they still unpack and compare as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from harvester.sources.base import Window


class RunStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    # every page stored, some records skipped as unreadable; the watermark advanced all the same
    PARTIAL = "partial"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped (or the process ended) before the window was done


# the statuses of a run that fetched and stored its window whole
COMPLETED: frozenset[RunStatus] = frozenset({RunStatus.OK, RunStatus.PARTIAL})


@dataclass(frozen=True, slots=True)
class PageOutcome:
    """What storing one page did."""

    stored: int = 0
    new_works: int = 0
    new_hits: int = 0
    duplicates: int = 0


class Stored(Protocol):
    """What storing a page's matched records did: a :class:`PageOutcome`, or one topic's
    share of a shared page."""

    @property
    def new_works(self) -> int: ...
    @property
    def new_hits(self) -> int: ...
    @property
    def duplicates(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RunCounts:
    requests: int = 0
    pages: int = 0
    records: int = 0
    matched: int = 0
    new_works: int = 0
    new_hits: int = 0
    duplicates: int = 0
    errors: int = 0
    skipped: int = 0  # records a parser could not read; they never hold the watermark

    def with_stored(self, matched: int, stored: Stored) -> RunCounts:
        """These counts and one page's: its ``matched`` records and what storing them did."""
        return replace(
            self,
            matched=self.matched + matched,
            new_works=self.new_works + stored.new_works,
            new_hits=self.new_hits + stored.new_hits,
            duplicates=self.duplicates + stored.duplicates,
        )


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    topic: str
    source: str
    window: Window
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    counts: RunCounts
    error: str | None
    expected: int | None = None
    skip_reasons: tuple[str, ...] = ()
    backfill: bool = False


@dataclass(frozen=True, slots=True)
class BackfillCoverage:
    """The checkpointed slices of a topic × source's backfill."""

    start: datetime
    end: datetime
    slices: int


class SliceSpan(NamedTuple):
    """A finished backfill slice: the window it covered."""

    start: datetime
    end: datetime


class VersionLink(NamedTuple):
    """Another version of a work (a preprint, its journal article), and why they are linked."""

    work_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One unsent digest as the outbox keeps it."""

    id: int
    subscription: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    parts_sent: int
    sealed: bool  # may have reached its reader: re-sent as it is, never topped up
    items: int


class UnsentDigest(NamedTuple):
    """A pending digest, in short: whose, which, how often tried, and the last error."""

    subscription: str
    digest_id: int
    attempts: int
    last_error: str | None


class FailedAttempt(NamedTuple):
    """A failed send as recorded: the attempts so far and when the next one is due."""

    attempts: int
    retry_at: datetime


class DaemonBeat(NamedTuple):
    """A daemon's heartbeat row: ``stopped_at`` is set when it shut down cleanly."""

    daemon_id: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
