"""Runs and watermarks: a harvest run's row from begin to finish, the watermark it advances,
backfill checkpoints, and the roll-up of old runs into daily counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from harvester.errors import StoreError
from harvester.sources.base import Window
from harvester.store.base import Store, utc
from harvester.store.models import BackfillSlice, HarvestRun, HarvestRunDay, Watermark
from harvester.store.values import (
    COMPLETED,
    BackfillCoverage,
    RunCounts,
    RunRow,
    RunStatus,
    SliceSpan,
)
from harvester.store.write_lock import lock_writes

SKIP_REASONS_KEPT = 5  # a run keeps its first few skip reasons; every one is in the log


class RunRepository(Store):
    """Harvest runs, watermarks and backfill slices."""

    def begin_run(self, topic: str, source: str, window: Window, *, backfill: bool = False) -> int:
        """Record a new run. Runs of the same kind still marked running were cut short (the
        caller holds the claim, so nobody else runs them): they become 'interrupted'."""
        with self._session() as session, session.begin():
            session.execute(
                update(HarvestRun)
                .where(
                    HarvestRun.topic == topic,
                    HarvestRun.source == source,
                    HarvestRun.backfill.is_(backfill),
                    HarvestRun.status == RunStatus.RUNNING,
                )
                .values(
                    status=RunStatus.INTERRUPTED,
                    error="the process ended before the run finished",
                )
            )
            run = HarvestRun(
                topic=topic,
                source=source,
                window_start=window.start,
                window_end=window.end,
                backfill=backfill,
                started_at=self.clock(),
                status=RunStatus.RUNNING,
            )  # its counts start at the columns' default, zero
            session.add(run)
            session.flush()
            return run.id

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        counts: RunCounts,
        error: str | None = None,
        watermark: datetime | None = None,
        expected: int | None = None,
        skip_reasons: Sequence[str] = (),
    ) -> None:
        """Record a run's outcome; advance its watermark (to a later value only) if given.
        ``expected`` is what the source said it had for the window; ``skip_reasons`` are the
        reasons of the records it skipped (the first few are kept)."""
        reasons = [self.redact(r) for r in skip_reasons[:SKIP_REASONS_KEPT]]
        with self._session() as session, session.begin():
            run = session.get(HarvestRun, run_id)
            if run is None:
                raise StoreError(f"harvest run {run_id} does not exist")
            run.status = RunStatus(status)
            run.finished_at = self.clock()
            run.error = self.redact(error) if error is not None else None
            run.skipped = counts.skipped
            run.skip_reasons = "\n".join(" ".join(r.split()) for r in reasons) or None
            run.requests = counts.requests
            run.pages = counts.pages
            run.records = counts.records
            run.matched = counts.matched
            run.errors = counts.errors
            run.expected = expected
            if watermark is not None:
                self._advance(session, run.topic, run.source, watermark)

    def _advance(self, session: Session, topic: str, source: str, value: datetime) -> None:
        now = self.clock()
        current = session.get(Watermark, (topic, source))
        if current is None:
            session.add(Watermark(topic=topic, source=source, value=value, updated_at=now))
        elif value > current.value or current.value > now:
            # a watermark beyond now was set by a clock that ran ahead: no source has records
            # from the future, so the value a run just proved replaces it
            current.value = value
            current.updated_at = now

    def watermark(self, topic: str, source: str) -> datetime | None:
        with self._session() as session:
            row = session.get(Watermark, (topic, source))
            return row.value if row is not None else None

    def runs(
        self,
        topic: str | None = None,
        source: str | None = None,
        *,
        limit: int = 20,
        backfill: bool | None = None,
    ) -> list[RunRow]:
        """The latest harvest runs, newest first (only backfill slices, or only scheduled
        runs, if ``backfill`` says)."""
        query = select(HarvestRun).order_by(HarvestRun.started_at.desc(), HarvestRun.id.desc())
        if topic is not None:
            query = query.where(HarvestRun.topic == topic)
        if source is not None:
            query = query.where(HarvestRun.source == source)
        if backfill is not None:
            query = query.where(HarvestRun.backfill.is_(backfill))
        with self._session() as session:
            return [_run_row(r) for r in session.execute(query.limit(limit)).scalars()]

    # -- backfill checkpoints -------------------------------------------------------------

    def backfill_coverage(self, topic: str, source: str) -> BackfillCoverage | None:
        """The first start and last end of the backfill's finished slices, if any."""
        with self._session() as session:
            first, last, slices = session.execute(
                select(
                    func.min(BackfillSlice.slice_start),
                    func.max(BackfillSlice.slice_end),
                    func.count(),
                ).where(BackfillSlice.topic == topic, BackfillSlice.source == source)
            ).one()
        if not slices:
            return None
        # aggregates bypass the column type on SQLite: read them back as UTC datetimes
        return BackfillCoverage(utc(first), utc(last), int(slices))

    def finished_slices(self, topic: str, source: str) -> set[SliceSpan]:
        with self._session() as session:
            return {
                SliceSpan(a, b)
                for a, b in session.execute(
                    select(BackfillSlice.slice_start, BackfillSlice.slice_end).where(
                        BackfillSlice.topic == topic, BackfillSlice.source == source
                    )
                )
            }

    def finish_slice(self, topic: str, source: str, window: Window, run_id: int) -> None:
        with self._session() as session, session.begin():
            session.execute(
                self._insert(BackfillSlice)
                .values(
                    topic=topic,
                    source=source,
                    slice_start=window.start,
                    slice_end=window.end,
                    run_id=run_id,
                    finished_at=self.clock(),
                )
                .on_conflict_do_nothing(
                    index_elements=["topic", "source", "slice_start", "slice_end"]
                )
            )

    # -- retention --------------------------------------------------------------------------

    def roll_up_runs(self, before: datetime, *, batch: int = 5000) -> int:
        """Runs that started before ``before`` become daily counts per topic × source (UTC
        day of their start, backfill slices apart) in ``harvest_run_days``, and are deleted;
        returns how many. A run still running, and the latest run of each topic × source
        (of each kind), stay: status and the back-off read them. Batches of ``batch`` runs,
        each one transaction under the store's write lock."""
        total = 0
        while True:
            with self._session() as session, session.begin():
                lock_writes(session)
                runs = _old_runs(session, before, batch)
                if not runs:
                    return total
                days: dict[tuple[str, str, date, bool], list[HarvestRun]] = {}
                for run in runs:
                    day = utc(run.started_at).date()
                    days.setdefault((run.topic, run.source, day, run.backfill), []).append(run)
                for key, group in days.items():
                    _add_to_day(_day_row(session, *key), group)
                session.flush()
                ids = [r.id for r in runs]
                session.execute(delete(HarvestRun).where(HarvestRun.id.in_(ids)))
                total += len(ids)
            if len(runs) < batch:
                return total

    def run_days(self, topic: str, source: str) -> list[dict[str, Any]]:
        """The rolled-up days of ``topic`` × ``source``, oldest first."""
        d = HarvestRunDay
        columns: list[Any] = [d.day, d.backfill, d.runs, d.completed, d.failed, d.requests]
        columns += [d.records, d.new_works, d.new_hits, d.skipped]
        with self._session() as session:
            rows = session.execute(
                select(*columns)
                .where(d.topic == topic, d.source == source)
                .order_by(d.day, d.backfill)
            )
            return [dict(row._mapping) for row in rows]

    def count_runs(self) -> int:
        """How many harvest runs are kept (the older ones are rolled up into days)."""
        return self._count(HarvestRun)

    def count_run_days(self) -> int:
        return self._count(HarvestRunDay)


def _run_row(r: HarvestRun) -> RunRow:
    return RunRow(
        id=r.id,
        topic=r.topic,
        source=r.source,
        window=Window(r.window_start, r.window_end),
        status=RunStatus(r.status),
        started_at=r.started_at,
        finished_at=r.finished_at,
        counts=RunCounts(
            r.requests,
            r.pages,
            r.records,
            r.matched,
            r.new_works,
            r.new_hits,
            r.duplicates,
            r.errors,
            r.skipped or 0,
        ),
        error=r.error,
        expected=r.expected,
        skip_reasons=tuple(r.skip_reasons.splitlines()) if r.skip_reasons else (),
        backfill=bool(r.backfill),
    )


def _old_runs(session: Session, before: datetime, batch: int) -> Sequence[HarvestRun]:
    """Up to ``batch`` finished runs started before ``before``, the latest of each topic ×
    source × kind left out."""
    latest = (
        select(func.max(HarvestRun.id))
        .group_by(HarvestRun.topic, HarvestRun.source, HarvestRun.backfill)
        .scalar_subquery()
    )
    return (
        session.execute(
            select(HarvestRun)
            .where(
                HarvestRun.started_at < before,
                HarvestRun.status != RunStatus.RUNNING,
                HarvestRun.id.not_in(latest),
            )
            .order_by(HarvestRun.id)
            .limit(batch)
        )
        .scalars()
        .all()
    )


def _day_row(session: Session, topic: str, source: str, day: date, backfill: bool) -> HarvestRunDay:
    """The day's roll-up row, made (with zero counts) if it is not there yet."""
    row = session.execute(
        select(HarvestRunDay).where(
            HarvestRunDay.topic == topic,
            HarvestRunDay.source == source,
            HarvestRunDay.day == day,
            HarvestRunDay.backfill.is_(backfill),
        )
    ).scalar_one_or_none()
    if row is None:
        row = HarvestRunDay(
            topic=topic, source=source, day=day, backfill=backfill,
            runs=0, completed=0, failed=0, requests=0, records=0,
            new_works=0, new_hits=0, skipped=0,
        )  # fmt: skip
        session.add(row)
    return row


def _add_to_day(row: HarvestRunDay, group: Sequence[HarvestRun]) -> None:
    row.runs += len(group)
    row.completed += sum(r.status in COMPLETED for r in group)
    row.failed += sum(r.status == RunStatus.FAILED for r in group)
    row.requests += sum(r.requests for r in group)
    row.records += sum(r.records for r in group)
    row.new_works += sum(r.new_works for r in group)
    row.new_hits += sum(r.new_hits for r in group)
    row.skipped += sum(r.skipped for r in group)
