"""The daemon: APScheduler jobs from the config, claims, catch-up, heartbeat, clean stop.

::

    start:  catch up every topic × source whose schedule fired since its watermark
    jobs:   harvest:<topic>:<source>   cron/interval, jitter, coalesce, misfire grace
            digest:<subscription>      the subscription's cadence (and after new hits if
                                       "immediate"): takes the new studies, sends
            retry:<subscription>       every digest_retry_seconds: re-sends unsent digests
                                       only (nothing new is built off the cadence)
            heartbeat                  every 30 s
    stop:   SIGTERM/SIGINT → no new jobs, each running harvest ends after its current page

A job never lets an exception reach APScheduler: a harvest that fails (its source, or the
database gone) logs one structured line and backs off (5 min doubling to 6 h; scheduled
fires inside the back-off are skipped quietly); a heartbeat that fails logs one line and
tries again on the next beat. Each running harvest is tracked, so ``/healthz`` can name one
that has run past ``max_run_seconds``.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from harvester.app import App
from harvester.config import SubscriptionSettings, TopicSettings
from harvester.harvest import HarvestResult
from harvester.store.locks import claims_for

log = structlog.get_logger(__name__)

FAILURE_BACKOFF_BASE = timedelta(minutes=5)
FAILURE_BACKOFF_MAX = timedelta(hours=6)
MAX_RUN_SECONDS = 3 * 3600.0  # a harvest running longer is reported stuck by /healthz


def harvest_trigger(topic: TopicSettings, *, jitter: int | None = None) -> BaseTrigger:
    """The topic's schedule: its cron in its timezone, or a fixed interval."""
    seconds = topic.interval_seconds
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, timezone=topic.zone, jitter=jitter)
    minute, hour, day, month, day_of_week = topic.schedule.split()
    # CronTrigger.from_crontab has no jitter; the fields are the same
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=day_of_week,
        timezone=topic.zone,
        jitter=jitter,
    )


def digest_trigger(subscription: SubscriptionSettings, topic: TopicSettings) -> BaseTrigger | None:
    """When the subscription's digest is due, in its first topic's timezone; None for
    "immediate" (sent after each harvest that found something)."""
    cadence = subscription.parsed_cadence
    if cadence.kind == "immediate":
        return None
    fields: dict[str, Any] = {"hour": cadence.hour, "minute": cadence.minute}
    if cadence.kind == "weekly":
        fields["day_of_week"] = cadence.weekday
    return CronTrigger(timezone=topic.zone, **fields)


def missed_since(trigger: BaseTrigger, watermark: datetime | None, now: datetime) -> bool:
    """Whether a run was due between the last completed window and now (pure)."""
    if watermark is None:
        return True
    if isinstance(trigger, IntervalTrigger):
        period: timedelta = trigger.interval
        return now - watermark >= period
    due: datetime | None = trigger.get_next_fire_time(None, watermark)
    return due is not None and due <= now


def failure_backoff(consecutive_failures: int) -> timedelta:
    """The wait before retrying a failing topic × source: doubles per failure, capped."""
    if consecutive_failures <= 0:
        return timedelta(0)
    return min(FAILURE_BACKOFF_BASE * (1 << (consecutive_failures - 1)), FAILURE_BACKOFF_MAX)


class Daemon:
    """Schedules every topic's harvests and every subscription's digests on ``scheduler``."""

    def __init__(
        self,
        app: App,
        scheduler: BaseScheduler,
        *,
        deliver: Callable[..., object] | None = None,
        jitter: int | None = 60,
        misfire_grace: int = 3600,
        heartbeat_seconds: float = 30.0,
        digest_retry_seconds: float = 300.0,
        daemon_id: str | None = None,
        max_run_seconds: float = MAX_RUN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.scheduler = scheduler
        self.deliver = deliver
        self.jitter = jitter
        self.misfire_grace = misfire_grace
        self.heartbeat_seconds = heartbeat_seconds
        self.digest_retry_seconds = digest_retry_seconds
        self.daemon_id = daemon_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        if app.claims is None:
            app.claims = claims_for(app.engine)
        self.claims = app.claims  # the same claims as `harvester harvest` beside the daemon
        self.stopping = threading.Event()
        self.max_run_seconds = max_run_seconds
        self._monotonic = monotonic
        self._running: dict[str, float] = {}  # job → when it started (monotonic)
        self._running_lock = threading.Lock()
        self._failures: dict[tuple[str, str], int] = {}  # consecutive, for a database outage
        self._not_before: dict[tuple[str, str], datetime] = {}  # back-off of a failing harvest
        self._beat_failures = 0

    # -- set-up ------------------------------------------------------------------------------

    def schedule(self) -> None:
        """Add every job; catch up on windows missed while no daemon ran."""
        settings = self.app.settings
        now = self.app.clock()
        for topic in settings.topics:
            trigger = harvest_trigger(topic, jitter=self.jitter)
            for source in self.app.usable_sources(topic):
                job_id = f"harvest:{topic.name}:{source}"
                self.scheduler.add_job(
                    self.harvest_job,
                    trigger,
                    args=(topic.name, source),
                    id=job_id,
                    name=job_id,
                    coalesce=True,
                    misfire_grace_time=self.misfire_grace,
                    max_instances=1,
                    replace_existing=True,
                )
                watermark = self.app.repo.watermark(topic.name, source)
                if missed_since(harvest_trigger(topic), watermark, now):
                    log.info(
                        "catching up",
                        topic=topic.name,
                        source=source,
                        watermark=watermark.isoformat() if watermark else None,
                    )
                    self._once(
                        f"catch-up:{topic.name}:{source}",
                        self.harvest_job,
                        (topic.name, source),
                        now,
                    )
        for index, sub in enumerate(settings.subscriptions):
            first_topic = settings.topic(sub.topics[0])
            job_id = f"digest:{sub.key}"
            trigger = digest_trigger(sub, first_topic)
            self.scheduler.add_job(
                self.digest_job,
                trigger
                if trigger is not None
                else IntervalTrigger(seconds=self.digest_retry_seconds),
                args=(index,),
                id=job_id,
                name=job_id,
                coalesce=True,
                misfire_grace_time=self.misfire_grace,
                max_instances=1,
                replace_existing=True,
            )
            # unsent digests (the channel was down) are retried between the regular ticks
            self.scheduler.add_job(
                self.retry_job,
                IntervalTrigger(seconds=self.digest_retry_seconds),
                args=(index,),
                id=f"retry:{sub.key}",
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
        self.scheduler.add_job(
            self.beat_job,
            IntervalTrigger(seconds=self.heartbeat_seconds),
            id="heartbeat",
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )
        self.beat()

    def _once(
        self, job_id: str, func: Callable[..., object], args: tuple[Any, ...], when: datetime
    ) -> None:
        self.scheduler.add_job(
            func,
            DateTrigger(run_date=when),
            args=args,
            id=job_id,
            name=job_id,
            misfire_grace_time=None,
            replace_existing=True,
        )

    # -- jobs --------------------------------------------------------------------------------

    def harvest_job(
        self, topic_name: str, source: str, retry: bool = False
    ) -> HarvestResult | None:
        if self.stopping.is_set():
            return None
        key = (topic_name, source)
        not_before = self._not_before.get(key)
        if not retry and not_before is not None and self.app.clock() < not_before:
            # the retry job is due at not_before; a scheduled fire before it adds nothing
            log.debug("harvest backing off", topic=topic_name, source=source)
            return None
        job = f"harvest:{topic_name}:{source}"
        try:
            with self.tracked(job):
                result = self._harvest(topic_name, source)
        except Exception as e:
            # the database went away (or worse): one line, no traceback, and the back-off
            self._retry_later(topic_name, source, error=f"{type(e).__name__}: {_short(e)}")
            return None
        if result is None:
            return None
        if result.status == "failed":
            self._retry_later(topic_name, source)
        else:
            self._failures.pop(key, None)
            self._not_before.pop(key, None)
            if result.counts.new_hits:
                self._notify_immediately(topic_name)
        return result

    def _harvest(self, topic_name: str, source: str) -> HarvestResult | None:
        topic = self.app.settings.topic(topic_name)
        with self.claims.claim(f"harvest:{topic_name}:{source}") as mine:
            if not mine:
                log.info("harvest claimed elsewhere", topic=topic_name, source=source)
                return None
            return self.app.harvest(topic, source, should_stop=self.stopping.is_set)

    def _retry_later(self, topic: str, source: str, *, error: str | None = None) -> None:
        key = (topic, source)
        self._failures[key] = self._failures.get(key, 0) + 1
        failures = self._failures[key]
        if error is None:  # a failed run is recorded: count the failures in a row there
            try:
                recorded = 0
                for run in self.app.repo.runs(topic, source, limit=20, backfill=False):
                    if run.status != "failed":
                        break
                    recorded += 1
                failures = max(failures, recorded)
            except Exception as e:  # the database went away meanwhile: the count we have
                error = f"{type(e).__name__}: {_short(e)}"
        delay = failure_backoff(failures)
        when = self.app.clock() + delay
        self._not_before[key] = when
        fields: dict[str, Any] = {
            "topic": topic,
            "source": source,
            "consecutive_failures": failures,
            "retry_in_seconds": int(delay.total_seconds()),
        }
        if error is not None:
            log.error("harvest job failed; retrying later", error=error, **fields)
        else:
            log.warning("harvest failed; retrying later", **fields)
        if not self.stopping.is_set():
            self._once(f"retry:{topic}:{source}", self.harvest_job, (topic, source, True), when)

    @contextmanager
    def tracked(self, job: str) -> Iterator[None]:
        """Mark ``job`` running while the block runs, for :meth:`overdue`."""
        with self._running_lock:
            self._running[job] = self._monotonic()
        try:
            yield
        finally:
            with self._running_lock:
                self._running.pop(job, None)

    def overdue(self) -> list[tuple[str, float]]:
        """The jobs running longer than ``max_run_seconds``: (job, seconds so far)."""
        now = self._monotonic()
        with self._running_lock:
            running = list(self._running.items())
        return sorted(
            (job, now - started) for job, started in running if now - started > self.max_run_seconds
        )

    def _notify_immediately(self, topic: str) -> None:
        for index, sub in enumerate(self.app.settings.subscriptions):
            if topic in sub.topics and sub.parsed_cadence.kind == "immediate":
                self._once(f"immediate:{sub.key}", self.digest_job, (index,), self.app.clock())

    def digest_job(self, index: int) -> None:
        """The cadence is due (or new hits for "immediate"): new studies go out."""
        self._send(index, fresh=True)

    def retry_job(self, index: int) -> None:
        """Unsent digests only: a weekly subscriber gets nothing new on a Tuesday."""
        self._send(index, fresh=False)

    def _send(self, index: int, *, fresh: bool) -> None:
        """``deliver(subscription, fresh=…)`` under the subscription's digest claim."""
        if self.deliver is None or self.stopping.is_set():
            return
        sub = self.app.settings.subscriptions[index]
        with self.claims.claim(f"digest:{sub.key}") as mine:
            if not mine:
                log.info("digest claimed elsewhere", subscription=sub.key)
                return
            self.deliver(sub, fresh=fresh)

    def beat(self, *, stopped: bool = False) -> None:
        self.app.repo.beat(
            self.daemon_id, host=socket.gethostname(), pid=os.getpid(), stopped=stopped
        )

    def beat_job(self) -> None:
        """The heartbeat job: a failure is one line, and the next beat tries again."""
        try:
            self.beat()
        except Exception as e:
            self._beat_failures += 1
            log.error(
                "heartbeat failed",
                error=f"{type(e).__name__}: {_short(e)}",
                consecutive_failures=self._beat_failures,
            )
            return
        if self._beat_failures:
            log.info("heartbeat recovered", failures=self._beat_failures)
            self._beat_failures = 0

    # -- running -----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def stop(self) -> None:
        """No new jobs; running harvests end after their current page; then return."""
        self.stopping.set()
        self.app.stopping.set()  # back-off waits and requests in flight end now
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def run(self) -> None:
        """Schedule everything and block until stopped (the scheduler must be blocking)."""
        self.schedule()
        log.info("daemon started", daemon_id=self.daemon_id, jobs=len(self.scheduler.get_jobs()))
        try:
            self.scheduler.start()
        finally:
            self.stopping.set()
            try:
                self.beat(stopped=True)
            except Exception as e:  # the database is gone: status will call the beat stale
                log.error("last heartbeat failed", error=f"{type(e).__name__}: {_short(e)}")
            log.info("daemon stopped", daemon_id=self.daemon_id)


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    return text if len(text) <= limit else text[:limit] + "…"
