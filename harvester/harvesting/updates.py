"""The update job: the notices each source indexed since the last run, applied to stored works.

::

    for each source with a listing of notices (crossref, pubmed):
        window = (watermark − overlap, now]   (first run: LOOKBACK; `--since DATE`: from DATE)
        crossref: /works?filter=from-index-date,until-index-date,update-type:retraction,…
        pubmed:   esearch '"Retraction Notice"[pt] OR …' by Entrez date, then efetch
        each page ─▶ parse (the source's own parser) ─▶ UpdateStore.apply: every notice's
                     target matched by identifier; a target not stored yet waits as pending
        every page applied ─▶ watermark = window end (never past the server's clock)
        a failure ─▶ what was applied stays, the watermark is held: the next run repeats it

The job reads the day's notices, not the stored works: its requests grow with the number of
notices (tens to hundreds a day, a few pages), never with the works or topics stored.
Applying a notice twice changes nothing, so the overlap and a rerun are harmless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from structlog.contextvars import bound_contextvars

from harvester.errors import ConfigError, HarvesterError, Interrupted
from harvester.harvesting.harvest import bounded_watermark, plan_window
from harvester.sources.base import Page, Window
from harvester.store.update_alerts import UpdateStore

if TYPE_CHECKING:
    from harvester.app import App

log = structlog.get_logger(__name__)

# Sources that list notices by the day they were indexed; OpenAlex lists the works it flags
# as retracted by the day their record changed (its bare flag: no notice, no date).
NOTICE_SOURCES: tuple[str, ...] = ("crossref", "pubmed", "openalex")
LOOKBACK = timedelta(days=2)
UPDATE_INTERVAL = timedelta(days=1)
# Crossref update types (the `update-type` filter, one value each; several are ORed).
CROSSREF_UPDATE_TYPES: tuple[str, ...] = (
    "retraction",
    "partial_retraction",
    "withdrawal",
    "removal",
    "expression_of_concern",
    "reinstatement",
    "correction",
    "corrigendum",
    "erratum",
    "addendum",
    "clarification",
)
# PubMed publication types of notices (https://www.nlm.nih.gov/mesh/pubtypes.html); MeSH
# 2025 renamed "Retraction of Publication" to "Retraction Notice", both are asked for.
PUBMED_TERM = " OR ".join(
    f'"{name}"[pt]'
    for name in (
        "Retraction Notice",
        "Retraction of Publication",
        "Retracted Publication",
        "Expression of Concern",
        "Published Erratum",
        "Corrected and Republished Article",
    )
)


@dataclass(frozen=True, slots=True)
class UpdateRun:
    """One source's pass of the update job."""

    source: str
    window: Window
    status: str  # ok | failed | claimed
    requests: int = 0
    pages: int = 0
    notices: int = 0  # records read (notices, and works marked as retracted)
    applied: int = 0  # updates recorded on stored works
    pending: int = 0  # updates waiting for their target
    skipped: int = 0  # records a parser could not read
    error: str | None = None


def notice_pages(app: App, name: str, window: Window) -> Iterator[Page]:
    """The pages of ``name``'s notices indexed in ``window``."""
    from harvester.sources.crossref import CrossrefSource
    from harvester.sources.openalex import OpenAlexSource
    from harvester.sources.pubmed import PubMedSource

    source = app.source(name)
    if isinstance(source, CrossrefSource):
        filters = ",".join(f"update-type:{t}" for t in CROSSREF_UPDATE_TYPES)
        return source.fetch("", window, filters=filters)
    if isinstance(source, PubMedSource):
        return source.fetch(PUBMED_TERM, window)
    if isinstance(source, OpenAlexSource):
        # OpenAlex: from_updated_date (a filter for API-key holders, as harvester's OpenAlex
        # source is) lists the works whose record changed since, such as a new flag
        updated = f"from_updated_date:{window.start.date().isoformat()}"
        return source.fetch("is_retracted:true", window, dates=updated)
    raise ConfigError(f"{name}: this connector lists no notices")


def plan(
    watermark: datetime | None, now: datetime, overlap: timedelta, since: datetime | None
) -> Window:
    """The job's window: from ``since`` if given, else a harvest's window (the watermark less
    the overlap, or the lookback on the first run), up to now."""
    if since is not None:
        return Window(min(since, now), now)
    return plan_window(watermark, now, lookback_days=LOOKBACK.days, overlap=overlap)


def run_updates(
    app: App,
    *,
    sources: Sequence[str] | None = None,
    since: datetime | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[UpdateRun]:
    """One pass of the update job over ``sources`` (default: those of the configured topics
    that list notices). Each source under its own claim, as harvests are."""
    names = sources or notice_sources(app)
    return [_run_one(app, name, since, should_stop) for name in names]


def notice_sources(app: App) -> tuple[str, ...]:
    """The configured topics' sources that list notices and can run (OpenAlex needs its
    key: without it, it is left out with the harvests' warning)."""
    used = {s for t in app.settings.topics for s in app.usable_sources(t)}
    return tuple(n for n in NOTICE_SOURCES if n in used)


def _run_one(
    app: App, name: str, since: datetime | None, should_stop: Callable[[], bool]
) -> UpdateRun:
    store = UpdateStore(app.engine, clock=app.clock)
    window = plan(store.watermark(name), app.clock(), app.overlap(name), since)
    with bound_contextvars(job="updates", source=name), app.claim_for(f"updates:{name}") as ok:
        if not ok:
            log.info("updates claimed by another process, skipped")
            return UpdateRun(name, window, "claimed")
        pages = notices = applied = pending = skipped = 0
        server_date: datetime | None = None
        with app.fetcher.counting() as requests:
            try:
                for page in notice_pages(app, name, window):
                    if should_stop():
                        raise Interrupted("stopping")
                    result = app.source(name).parse(page)
                    new, waiting = store.apply(result.records)
                    pages += 1
                    notices += len(result.records)
                    applied += new
                    pending += waiting
                    skipped += len(result.skipped)
                    server_date = page.server_date or server_date
                    log.info("notices applied", page=pages, notices=len(result.records), new=new)
            except HarvesterError as e:  # a stop (Interrupted) included
                log.warning("update job failed; watermark held", error=str(e))
                return UpdateRun(
                    name, window, "failed", requests(), pages, notices, applied, pending, skipped,
                    app.repo.redact(str(e)),
                )  # fmt: skip
        store.advance(name, bounded_watermark(window, server_date))
        log.info("updates done", notices=notices, applied=applied, pending=pending)
        return UpdateRun(name, window, "ok", requests(), pages, notices, applied, pending, skipped)


class _Daemon(Protocol):
    """What the update job needs of :class:`harvester.harvesting.scheduler.Daemon`."""

    app: App
    scheduler: Any
    stopping: threading.Event

    def retry_job(self, index: int) -> None: ...


def add_update_job(daemon: _Daemon) -> None:
    """Schedule the daily update job on a daemon, at once when a day passed since the last
    run (or it never ran)."""
    from apscheduler.triggers.interval import IntervalTrigger

    names = notice_sources(daemon.app)
    if not names:
        return
    store = UpdateStore(daemon.app.engine, clock=daemon.app.clock)
    now = daemon.app.clock()
    due = any((m := store.watermark(n)) is None or now - m >= UPDATE_INTERVAL for n in names)
    daemon.scheduler.add_job(
        update_job,
        IntervalTrigger(seconds=UPDATE_INTERVAL.total_seconds()),
        args=(daemon,),
        id="updates",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
        **({"next_run_time": now} if due else {}),
    )


def update_job(daemon: _Daemon) -> list[UpdateRun]:
    """The daemon's job: one pass, then the immediate messages of the subscriptions that
    ask for them (sent through the outbox under each subscription's digest claim)."""
    from harvester.digests.updates import take_immediate

    if daemon.stopping.is_set():
        return []
    try:
        runs = run_updates(daemon.app, should_stop=daemon.stopping.is_set)
        for index, sub in enumerate(daemon.app.settings.subscriptions):
            if take_immediate(daemon.app, sub):
                daemon.retry_job(index)
    except HarvesterError as e:  # the database is away: the next tick tries again
        log.error("update job failed", error=str(e))
        return []
    return runs


STATUS_DAYS = 14


def status_lines(
    app: App, now: datetime, when: Callable[[datetime | None, datetime], str]
) -> list[str]:
    """`harvester status`: the update job's last window per source, the updates found per
    source and day (of the last STATUS_DAYS), and the notices waiting for their study."""
    store = UpdateStore(app.engine, clock=app.clock)
    lines = ["", f"updates (retractions, corrections; found per day, last {STATUS_DAYS} days)"]
    counts = store.counts(now - timedelta(days=STATUS_DAYS))
    sources = dict.fromkeys([*notice_sources(app), *(s for s, _, _ in counts)])
    if not sources:
        lines.append("  (no source lists notices)")
    for source in sources:
        line = f"  {source}:"
        if source in NOTICE_SOURCES:
            line += f" notices read up to {when(store.watermark(source), now)};"
        days = [f"{day.isoformat()} {n}" for s, day, n in counts if s == source]
        line += " " + (", ".join(days) if days else "none found")
        lines.append(line)
    waiting = store.pending()
    if waiting:
        lines.append(f"  {waiting} updates wait for their study to be harvested")
    return lines


__all__ = [
    "status_lines",
    "add_update_job",
    "update_job",
    "CROSSREF_UPDATE_TYPES",
    "NOTICE_SOURCES",
    "PUBMED_TERM",
    "UpdateRun",
    "notice_pages",
    "notice_sources",
    "plan",
    "run_updates",
]
