"""Backfill: a topic's history, in date slices, on the same path as a harvest.

::

    for source in sources:
        for slice in date_slices(since, until):         # oldest first
            if slice is checkpointed: continue           # a rerun continues where it stopped
            run_harvest(slice, backfill=True, notify=notify, advance_watermark=False)
            checkpoint(slice) if the run was complete, else stop this source

Its runs are always recorded as backfill runs; its hits are marked as backfill, so digests
skip them, unless ``--notify`` (then they are sent like a harvest's). The daily watermark is
never moved, so a backfill and the daemon can run side by side on one database.

History is the past: a window reaching beyond today is refused, and the slice that holds the
moment the run began ends at that moment, so its checkpoint never claims a future that was
not fetched (a rerun fetches that slice again, up to its own start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import structlog

from harvester.app import App
from harvester.config.topics import TopicSettings
from harvester.errors import ConfigError
from harvester.harvesting.harvest import HarvestResult
from harvester.sources.base import Page, Window
from harvester.store.values import PageOutcome

log = structlog.get_logger(__name__)


def date_slices(since: date, until: date, days: int) -> Iterator[Window]:
    """``[since, until]`` cut into windows of ``days`` days, oldest first (UTC midnights)."""
    if days < 1:
        raise ValueError("a slice is at least one day")
    start = since
    while start <= until:
        end = min(start + timedelta(days=days - 1), until)
        yield Window(
            datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end, time.max, tzinfo=UTC).replace(microsecond=0),
        )
        start = end + timedelta(days=1)


def backfill_window(since: date, until: date | None, *, today: date) -> tuple[date, date]:
    """``(since, until)`` checked against ``today`` (UTC); ``until`` defaults to today.

    Raises ConfigError naming the option: a day after today has nothing to fetch yet, and a
    checkpoint for it would make a later run skip it for good.
    """
    if since > today:
        raise ConfigError(f"--since {since.isoformat()} is in the future (today is {today} UTC)")
    if until is None:
        return since, today
    if until > today:
        raise ConfigError(
            f"--until {until.isoformat()} is in the future (today is {today} UTC); "
            "leave --until out to backfill up to now"
        )
    if until < since:
        raise ConfigError(f"--until {until.isoformat()} is before --since {since.isoformat()}")
    return since, until


@dataclass
class Progress:
    """What a backfill has done so far, per source, for a progress display."""

    source: str
    slices_total: int
    slices_done: int = 0
    pages: int = 0
    records: int = 0
    new_works: int = 0


@dataclass(frozen=True, slots=True)
class BackfillResult:
    source: str
    slices_total: int
    slices_skipped: int
    runs: tuple[HarvestResult, ...]

    @property
    def complete(self) -> bool:
        # a slice is complete when every page was fetched and stored: records skipped as
        # unreadable (a 'partial' run) do not make it incomplete, a failed page does
        return all(r.complete for r in self.runs)


def backfill(
    app: App,
    topic: TopicSettings,
    *,
    since: date,
    until: date,
    sources: tuple[str, ...],
    notify: bool = False,
    slice_days: int = 30,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[Progress], None] | None = None,
) -> list[BackfillResult]:
    """Harvest ``topic``'s history between two dates; resumable, one checkpoint per slice.

    Raises ConfigError for a window in the future (see :func:`backfill_window`).
    """
    started = app.clock().astimezone(UTC).replace(microsecond=0)
    since, until = backfill_window(since, until, today=started.date())
    # the last slice ends when the run began: only that much of it is fetched and checkpointed
    slices = [
        w if w.end <= started else Window(w.start, started)
        for w in date_slices(since, until, slice_days)
    ]
    results = []
    for name in sources:
        app.source(name)  # a source that cannot be built fails before anything is claimed
        done = app.repo.finished_slices(topic.name, name)
        progress = Progress(name, len(slices))
        runs: list[HarvestResult] = []
        skipped = 0
        with app.claim_for(f"backfill:{topic.name}:{name}") as mine:
            if not mine:
                log.warning("backfill already running elsewhere", topic=topic.name, source=name)
                results.append(BackfillResult(name, len(slices), len(slices), ()))
                continue
            for window in slices:
                if (window.start, window.end) in done:
                    skipped += 1
                    progress.slices_done += 1
                    continue
                if should_stop():
                    break

                def page_done(page: Page, outcome: PageOutcome, p: Progress = progress) -> None:
                    p.pages += 1
                    p.records += outcome.stored
                    p.new_works += outcome.new_works
                    if on_progress is not None:
                        on_progress(p)

                result = app.harvest_window(
                    topic,
                    name,
                    window,
                    backfill=True,
                    notify=notify,
                    advance_watermark=False,
                    should_stop=should_stop,
                    on_page=page_done,
                )
                runs.append(result)
                if result.complete:
                    app.repo.finish_slice(topic.name, name, window, result.run_id)
                    progress.slices_done += 1
                    if on_progress is not None:
                        on_progress(progress)
                else:
                    # the slice is not checkpointed: a rerun starts from it again
                    log.warning(
                        "backfill stopped",
                        topic=topic.name,
                        source=name,
                        slice_start=window.start.date().isoformat(),
                        status=result.status,
                    )
                    break
        log.info(
            "backfill source finished",
            topic=topic.name,
            source=name,
            slices=len(slices),
            skipped=skipped,
            runs=len(runs),
            new_works=progress.new_works,
        )
        results.append(BackfillResult(name, len(slices), skipped, tuple(runs)))
    return results
