"""The daemon's harvest side: each source's worker draining its queue, a batch of due
windows harvested together under the source's claim, failures backed off, running
harvests tracked for ``/healthz``. A part of :class:`~harvester.harvesting.scheduler.Daemon`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger

from harvester.app import App
from harvester.harvesting.harvest import HarvestResult
from harvester.harvesting.queues import Due, SourceQueue, failure_backoff
from harvester.store.locks import source_key
from harvester.store.sharing import SharedStore

log = structlog.get_logger(__name__)

DONE_STATUSES = ("ok", "partial")  # a run that completed its window


class HarvestWorkers:
    """What the daemon's harvests need of it, and what they do."""

    app: App
    scheduler: BaseScheduler
    stopping: threading.Event
    claimed_recheck: timedelta
    max_run_seconds: float
    _monotonic: Callable[[], float]
    _running: dict[str, float]
    _running_lock: threading.Lock
    _failures: dict[tuple[str, str], int]
    _not_before: dict[tuple[str, str], datetime]
    _threads: list[threading.Thread]

    queues: dict[str, SourceQueue]
    daemon_id: str
    digest_job: Callable[[int], None]

    def queue(self, source: str) -> SourceQueue:
        if source not in self.queues:
            self.queues[source] = SourceQueue(source, self.daemon_id)
        return self.queues[source]

    def _drain(self, queue: SourceQueue) -> None:
        """A source's worker: its due windows, every one whose time has come at once (one
        fetch for all of them), until stopped."""
        while True:
            item = queue.take(self.app.clock, self.stopping)
            if item is None:
                return
            items = [item, *queue.take_ready(self.app.clock)]
            queue.running = item.topic if len(items) == 1 else f"{len(items)} topics"
            try:
                self.harvest_batch(queue.source, items)
            except Exception as e:  # harvest_batch keeps its own; a bug must not end the worker
                log.error(
                    "harvest worker error",
                    source=queue.source,
                    error=f"{type(e).__name__}: {_short(e)}",
                )
            finally:
                queue.running = None
                queue.done += len(items)

    def _retry_due(self, topic: str, source: str) -> None:
        """A failed window's back-off is over: back on its source's queue."""
        now = self.app.clock()
        self.queue(source).put(Due(topic, now, now, retry=True))

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
        self, topic_name: str, source: str, retry: bool = False, *, due: datetime | None = None
    ) -> HarvestResult | None:
        """One harvest of ``topic_name`` × ``source`` under its claim. With ``due`` (a queued
        window): none if a run started since ``due`` completed it (another replica did)."""
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
                result = self._harvest(topic_name, source, due)
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

    def harvest_batch(self, source: str, items: list[Due]) -> list[HarvestResult]:
        """The due windows ``items`` of one source, harvested together under the source's
        claim: those a run started since their fire time completed (another replica) are
        dropped, those backing off after a failure wait for their retry."""
        if self.stopping.is_set():
            return []
        now = self.app.clock()
        ready = []
        for item in items:
            not_before = self._not_before.get((item.topic, source))
            if not item.retry and not_before is not None and now < not_before:
                log.debug("harvest backing off", topic=item.topic, source=source)
                continue
            ready.append(item)
        if not ready:
            return []
        try:
            job = f"harvest:{ready[0].topic}:{source}" if len(ready) == 1 else f"harvest:{source}"
            with self.tracked(job):
                results = self._harvest_together(source, ready)
        except Exception as e:
            # the database went away (or worse): one line, no traceback, and the back-off
            for item in ready:
                self._retry_later(item.topic, source, error=f"{type(e).__name__}: {_short(e)}")
            return []
        notify: set[str] = set()
        for result in results:
            key = (result.topic, source)
            if result.status == "failed":
                self._retry_later(result.topic, source)
                continue
            self._failures.pop(key, None)
            self._not_before.pop(key, None)
            if result.counts.new_hits:
                notify.add(result.topic)
        for topic in sorted(notify):
            self._notify_immediately(topic)
        return results

    def _harvest_together(self, source: str, items: list[Due]) -> list[HarvestResult]:
        # exclusive: no command runs one of the source's windows while the batch drains it
        with self.app.claim_for(source_key(source)) as mine:
            if not mine:
                log.info("harvest claimed elsewhere", source=source, topics=len(items))
                if not self.stopping.is_set():
                    again = self.app.clock() + self.claimed_recheck
                    self.queue(source).put_many([Due(i.topic, i.due, again) for i in items])
                return []
            done = SharedStore(self.app.repo).done_since(source, {i.topic: i.due for i in items})
            by_name = {t.name: t for t in self.app.settings.topics}
            topics = [by_name[i.topic] for i in items if i.topic not in done]
            if done:
                log.debug("harvests done elsewhere", source=source, topics=len(done))
            if not topics:
                return []
            return self.app.harvest_shared(topics, source, should_stop=self.stopping.is_set)

    def _harvest(
        self, topic_name: str, source: str, due: datetime | None = None
    ) -> HarvestResult | None:
        topic = self.app.settings.topic(topic_name)
        with self.app.claim_window(topic_name, source) as mine:
            if not mine:
                log.info("harvest claimed elsewhere", topic=topic_name, source=source)
                if due is not None and not self.stopping.is_set():
                    # the holder may be running an older window (a command, a replica's
                    # late one): look again later, and drop it then if it was done
                    again = self.app.clock() + self.claimed_recheck
                    self.queue(source).put(Due(topic_name, due, again))
                return None
            if due is not None and self.done_since(topic_name, source, due):
                log.debug("harvest done elsewhere", topic=topic_name, source=source)
                return None
            return self.app.harvest(topic, source, should_stop=self.stopping.is_set)

    def done_since(self, topic: str, source: str, due: datetime) -> bool:
        """Whether a run that started at or after ``due`` completed its window."""
        return any(
            run.status in DONE_STATUSES and run.started_at >= due
            for run in self.app.repo.runs(topic, source, limit=5, backfill=False)
        )

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
            self._once(f"retry:{topic}:{source}", self._retry_due, (topic, source), when)

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

    def dead_threads(self) -> list[str]:
        """The daemon's threads (heartbeat, planner, a source's worker) that ended while it
        runs: a bug, since each catches its own failures; /healthz names them."""
        if self.stopping.is_set():
            return []
        return [t.name for t in self._threads if not t.is_alive()]

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


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    return text if len(text) <= limit else text[:limit] + "…"
