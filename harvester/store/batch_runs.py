"""Each topic's own harvest_runs row and watermark, for a batch of topics harvested
together: one statement per table, not one transaction per topic (a shared window may
serve 10,000 topics)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update

from harvester.sources.base import Window
from harvester.store.models import HarvestRun, Watermark
from harvester.store.repository import Repository
from harvester.store.values import RunCounts

COMPLETE = ("ok", "partial")
_CHUNK = 500
# topics per write transaction: each holds SQLite's one write lock, which a heartbeat waits
# for (500 held it up to 1 s at 10,000 topics with seven sources' workers writing)
_WRITE_CHUNK = 100


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


@dataclass(slots=True)
class RunEnd:
    """How a topic's run ended: its status, counts, error and the watermark to advance to."""

    status: str
    counts: RunCounts
    error: str | None = None
    watermark: datetime | None = None
    expected: int | None = None
    skip_reasons: Sequence[str] = field(default_factory=tuple)


class BatchRuns:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- the topics' runs --------------------------------------------------------------------

    def begin_runs(self, source: str, windows: Mapping[str, Window]) -> dict[str, int]:
        """A 'running' harvest_runs row per topic (its runs still 'running' were cut short),
        a transaction per chunk of topics, so no write holds the store long (a heartbeat
        waits for SQLite's one writer)."""
        now = self.repo.clock()
        out: dict[str, int] = {}
        for names in chunks(list(windows), _WRITE_CHUNK):
            with self.repo._session() as session, session.begin():
                session.execute(
                    update(HarvestRun)
                    .where(
                        HarvestRun.source == source,
                        HarvestRun.topic.in_(list(names)),
                        HarvestRun.backfill.is_(False),
                        HarvestRun.status == "running",
                    )
                    .values(status="interrupted", error="the process ended before the run finished")
                )
                rows = [
                    {
                        "topic": t,
                        "source": source,
                        "window_start": windows[t].start,
                        "window_end": windows[t].end,
                        "backfill": False,
                        "started_at": now,
                        "status": "running",
                        **dict.fromkeys(_ZEROS, 0),
                    }
                    for t in names
                ]
                ids = session.execute(
                    self.repo._insert(HarvestRun).returning(
                        HarvestRun.id, sort_by_parameter_order=True
                    ),
                    rows,
                ).scalars()
                out.update(zip(names, ids, strict=True))
        return out

    def finish_runs(self, source: str, runs: Mapping[str, int], ends: Mapping[str, RunEnd]) -> None:
        """Every topic's run outcome, and its watermark advanced (to a later value only, or
        over one a clock ahead of time left beyond now): a topic's run and watermark in one
        transaction, a transaction per chunk of topics."""
        for names in chunks(list(runs), _WRITE_CHUNK):
            self._finish_chunk(source, {t: runs[t] for t in names}, ends)

    def _finish_chunk(
        self, source: str, runs: Mapping[str, int], ends: Mapping[str, RunEnd]
    ) -> None:
        repo, now = self.repo, self.repo.clock()
        rows = []
        for topic, run_id in runs.items():
            end = ends[topic]
            c = end.counts
            reasons = [repo.redact(r) for r in end.skip_reasons[:5]]
            rows.append(
                {
                    "rid": run_id,
                    "status": end.status,
                    "finished_at": now,
                    "error": repo.redact(end.error) if end.error is not None else None,
                    "skipped": c.skipped,
                    "skip_reasons": "\n".join(" ".join(r.split()) for r in reasons) or None,
                    "requests": c.requests,
                    "pages": c.pages,
                    "records": c.records,
                    "matched": c.matched,
                    "new_works": c.new_works,
                    "new_hits": c.new_hits,
                    "duplicates": c.duplicates,
                    "errors": c.errors,
                    "expected": end.expected,
                }
            )
        marks = {t: ends[t].watermark for t in runs if ends[t].watermark is not None}
        with repo._session() as session, session.begin():
            if rows:
                table = cast(Table, HarvestRun.__table__)
                session.execute(
                    update(table)
                    .where(table.c.id == bindparam("rid"))
                    .values({k: bindparam(k) for k in rows[0] if k != "rid"}),
                    rows,
                )
            current = {
                w.topic: w
                for w in session.execute(
                    select(Watermark).where(
                        Watermark.source == source, Watermark.topic.in_(list(marks))
                    )
                ).scalars()
            }
            for topic, value in marks.items():
                assert value is not None
                have = current.get(topic)
                if have is None:
                    session.add(Watermark(topic=topic, source=source, value=value, updated_at=now))
                elif value > have.value or have.value > now:
                    have.value, have.updated_at = value, now

    def done_since(self, source: str, due: Mapping[str, datetime]) -> set[str]:
        """The topics whose latest completed scheduled run of ``source`` started at or after
        their ``due`` (another replica ran the window)."""
        done: set[str] = set()
        with self.repo._session() as session:
            for names in chunks(list(due)):
                for topic, started in session.execute(
                    select(HarvestRun.topic, func.max(HarvestRun.started_at))
                    .where(
                        HarvestRun.source == source,
                        HarvestRun.topic.in_(list(names)),
                        HarvestRun.backfill.is_(False),
                        HarvestRun.status.in_(COMPLETE),
                    )
                    .group_by(HarvestRun.topic)
                ):
                    if started is not None and _aware(started) >= due[topic]:
                        done.add(topic)
        return done

    def watermarks(self, source: str, topics: Sequence[str]) -> dict[str, datetime]:
        marks: dict[str, datetime] = {}
        with self.repo._session() as session:
            for names in chunks(list(topics)):
                for topic, value in session.execute(
                    select(Watermark.topic, Watermark.value).where(
                        Watermark.source == source, Watermark.topic.in_(list(names))
                    )
                ):
                    marks[topic] = value
        return marks


_ZEROS = (
    "requests",
    "pages",
    "records",
    "matched",
    "new_works",
    "new_hits",
    "duplicates",
    "errors",
    "skipped",
)


def _aware(value: datetime | str) -> datetime:

    if isinstance(value, str):  # SQLite returns max() of a datetime column as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
