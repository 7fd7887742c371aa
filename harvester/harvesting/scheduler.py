"""The daemon: APScheduler jobs from the config, claims, catch-up, heartbeat, clean stop.

::

    start:  catch up every topic × source whose schedule fired since its watermark
    harvests: a planner thread turns each schedule's fire time into due windows, one per
            topic × source, put on that source's queue; one worker thread per source drains
            its queue (waiting for the source's pace there, never in a scheduler thread).
            A window never misfires: one still queued when its topic fires again is
            coalesced with it (one harvest, up to now). Replicas run the same queues: a
            window is claimed (advisory lock on PostgreSQL) and dropped when a run that
            started after its fire time already completed it; one claimed elsewhere is
            looked at again a little later.
    jobs:   digest:<subscription>      the subscription's cadence (and after new hits if
                                       "immediate"): takes the new studies, sends
            retry:<subscription>       every digest_retry_seconds: re-sends unsent digests
                                       only (nothing new is built off the cadence)
            retry:<topic>:<source>     a failed harvest, queued again after its back-off
            rollup                     every 6 h: runs older than run_retention_days become
                                       daily counts per topic × source
    heartbeat: a thread of its own, every 30 s
    stop:   SIGTERM/SIGINT → no new jobs, each running harvest ends after its current page

A job never lets an exception reach APScheduler: a harvest that fails (its source, or the
database gone) logs one structured line and backs off (5 min doubling to 6 h; scheduled
fires inside the back-off are skipped quietly); a heartbeat that fails logs one line and
tries again on the next beat. Each running harvest is tracked, so ``/healthz`` can name one
that has run past ``max_run_seconds``.
"""

from __future__ import annotations

import functools
import gc
import os
import random
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType

import structlog
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from harvester.app import App
from harvester.config.topics import TopicSettings
from harvester.harvesting.queues import (
    FAILURE_BACKOFF_BASE,
    FAILURE_BACKOFF_MAX,
    INTERVAL_ANCHOR,
    Due,
    SourceQueue,
    digest_trigger,
    failure_backoff,
    first_due_after,
    harvest_trigger,
    latest_fire,
    missed_since,
)
from harvester.harvesting.updates import add_update_job
from harvester.harvesting.workers import DONE_STATUSES, HarvestWorkers
from harvester.store.daemons import MISSED_BEATS
from harvester.store.sharing import SharedStore

log = structlog.get_logger(__name__)

__all__ = [
    "FAILURE_BACKOFF_BASE",
    "FAILURE_BACKOFF_MAX",
    "INTERVAL_ANCHOR",
    "DONE_STATUSES",
    "Daemon",
    "Due",
    "SourceQueue",
    "digest_trigger",
    "failure_backoff",
    "first_due_after",
    "harvest_trigger",
    "latest_fire",
    "missed_since",
]

MAX_RUN_SECONDS = 3 * 3600.0  # a harvest running longer is reported stuck by /healthz
CLAIMED_RECHECK_SECONDS = 10.0  # a window another process holds is looked at again after this
SWITCH_INTERVAL = 0.001  # seconds: see Daemon._start_threads
ROLLUP_HOURS = 6  # how often runs past the retention are rolled up into daily counts


class Daemon(HarvestWorkers):
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
        claimed_recheck_seconds: float = CLAIMED_RECHECK_SECONDS,
        run_retention_days: int = 90,
    ) -> None:
        self.app = app
        self.scheduler = scheduler
        self.deliver = deliver
        self.jitter = jitter
        self.misfire_grace = misfire_grace
        self.heartbeat_seconds = heartbeat_seconds
        self.digest_retry_seconds = digest_retry_seconds
        self.daemon_id = daemon_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.max_run_seconds = max_run_seconds
        self._monotonic = monotonic
        self._running: dict[str, float] = {}  # job → when it started (monotonic)
        self._running_lock = threading.Lock()
        self._failures: dict[tuple[str, str], int] = {}  # consecutive, for a database outage
        self._not_before: dict[tuple[str, str], datetime] = {}  # back-off of a failing harvest
        self._beat_failures = 0
        self.claimed_recheck = timedelta(seconds=claimed_recheck_seconds)
        self.queues: dict[str, SourceQueue] = {}
        # schedule (cron or interval, timezone) → its trigger and its topics
        self._groups: dict[tuple[str, str], tuple[BaseTrigger, list[str]]] = {}
        self._threads: list[threading.Thread] = []
        self._random = random.Random()
        self.run_retention_days = run_retention_days

    # -- set-up ------------------------------------------------------------------------------

    def schedule(self) -> None:
        """Add every job; catch up on windows missed while no daemon ran."""
        settings = self.app.settings
        now = self.app.clock()
        by_source: dict[str, list[TopicSettings]] = {}
        for topic in settings.topics:
            key = (topic.schedule, str(topic.zone))
            if key not in self._groups:
                self._groups[key] = (harvest_trigger(topic), [])
            self._groups[key][1].append(topic.name)
            for source in self.app.usable_sources(topic):
                by_source.setdefault(source, []).append(topic)
        for source, topics in by_source.items():
            marks = SharedStore(self.app.repo).watermarks(source, [t.name for t in topics])
            late = []
            for topic in topics:
                watermark = marks.get(topic.name)
                if missed_since(self._groups[(topic.schedule, str(topic.zone))][0], watermark, now):
                    log.info(
                        "catching up",
                        topic=topic.name,
                        source=source,
                        watermark=watermark.isoformat() if watermark else None,
                    )
                    late.append(Due(topic.name, now, now))
            self.queue(source).put_many(late)
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
        if self.run_retention_days > 0:
            self.scheduler.add_job(
                self.rollup_job,
                IntervalTrigger(hours=ROLLUP_HOURS),
                id="rollup",
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
        add_update_job(self)  # the daily retraction / correction notices (issue 16)
        self.beat()
        self._start_threads()

    def _start_threads(self) -> None:
        """The heartbeat, the planner and one worker per source: threads of their own, so
        neither a source's pace nor a crowd of due windows delays another."""
        if self._threads:
            return
        # A thread back from SQLite or a socket waits up to a switch interval for the GIL
        # while workers match records, each time: a writer holding SQLite's write lock (which
        # the heartbeat waits for) does so once per row. Shorter (5 ms → 1 ms) keeps it going.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        # A full garbage collection stops every thread, the heartbeat's too, while it scans
        # every object (0.84 s at 10,000 topics in benchmarks/scale_beat.py). What exists
        # now (the settings, the topics' parsed queries, the triggers) lives as long as the
        # daemon: kept out of those scans, once the garbage among it is collected.
        gc.collect()
        gc.freeze()
        targets: list[tuple[str, Callable[[], None]]] = [
            ("heartbeat", self._beat_loop),
            ("planner", self._plan_loop),
        ]
        for source, queue in self.queues.items():
            targets.append((f"harvest:{source}", functools.partial(self._drain, queue)))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _beat_loop(self) -> None:
        interval = self.heartbeat_seconds
        next_at = self._monotonic() + interval
        while not self.stopping.wait(max(0.0, next_at - self._monotonic())):
            self.beat_job()
            next_at += interval
            if next_at < self._monotonic():  # the database held a beat up: no burst after it
                next_at = self._monotonic() + interval

    def _plan_loop(self) -> None:
        """Put each schedule's windows on their sources' queues when it fires."""
        upcoming: dict[tuple[str, str], datetime | None] = {}
        now = self.app.clock()
        for key, (trigger, _topics) in self._groups.items():
            upcoming[key] = trigger.get_next_fire_time(None, now)
        while not self.stopping.is_set():
            now = self.app.clock()
            for key, fire in upcoming.items():
                if fire is not None and fire <= now:
                    trigger, topics = self._groups[key]
                    due, upcoming[key] = latest_fire(trigger, fire, now)
                    try:
                        self.fire(topics, due)
                    except Exception as e:  # e.g. the database gone while reading a setting
                        log.error("planning failed", error=f"{type(e).__name__}: {_short(e)}")
            soonest = min((f for f in upcoming.values() if f is not None), default=None)
            wait = 30.0 if soonest is None else (soonest - self.app.clock()).total_seconds()
            self.stopping.wait(min(max(wait, 0.01), 30.0))

    def fire(self, topics: list[str], due: datetime) -> None:
        """The windows of ``topics`` fell due at ``due``: queue them (jittered)."""
        queued = 0
        by_name = {t.name: t for t in self.app.settings.topics}
        batches: dict[str, list[Due]] = {}
        for name in topics:
            for source in self.app.usable_sources(by_name[name]):
                delay = self._random.uniform(0, self.jitter) if self.jitter else 0.0
                batches.setdefault(source, []).append(
                    Due(name, due, due + timedelta(seconds=delay))
                )
                queued += 1
        for source, items in batches.items():  # at once: a worker takes them as one batch
            self.queue(source).put_many(items)
        log.info(
            "harvests due",
            due=due.isoformat(),
            windows=queued,
            queued={s: len(q) for s, q in self.queues.items()},
        )

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
        with self.app.claim_for(f"digest:{sub.key}") as mine:
            if not mine:
                log.info("digest claimed elsewhere", subscription=sub.key)
                return
            self.deliver(sub, fresh=fresh)

    def rollup_job(self) -> int:
        """Runs older than the retention become daily counts, and shared windows older than
        it are dropped with their records (one replica at a time)."""
        if self.stopping.is_set() or self.run_retention_days <= 0:
            return 0
        try:
            with self.app.claim_for("rollup:harvest_runs") as mine:
                if not mine:
                    return 0
                before = self.app.clock() - timedelta(days=self.run_retention_days)
                rolled = self.app.repo.roll_up_runs(before)
                pruned = SharedStore(self.app.repo).prune(before)
        except Exception as e:
            log.error("run rollup failed", error=f"{type(e).__name__}: {_short(e)}")
            return 0
        if rolled or pruned:
            log.info("runs rolled up", runs=rolled, windows=pruned, before=before.isoformat())
        return rolled

    def beat(self, *, stopped: bool = False) -> None:
        # a beat waits for the database while `status` would still call the daemon alive
        # (three intervals); past that it is a missed beat, logged
        self.app.repo.beat(
            self.daemon_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            stopped=stopped,
            patience=MISSED_BEATS * self.heartbeat_seconds,
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
        for queue in self.queues.values():
            queue.wake()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)

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
