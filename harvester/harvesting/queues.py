"""What the daemon schedules by: triggers from the config, and each source's queue of due
windows (one per topic, a later fire coalescing into a waiting one).

Pure but for the queue's lock: nothing here touches the store or the network.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from harvester.config.subscriptions import SubscriptionSettings
from harvester.config.topics import TopicSettings

FAILURE_BACKOFF_BASE = timedelta(minutes=5)
FAILURE_BACKOFF_MAX = timedelta(hours=6)
# "every N" schedules fire at whole multiples of N from this moment (a Monday, 00:00 UTC),
# so every replica (and `status`) sees the same fire times
INTERVAL_ANCHOR = datetime(2000, 1, 3, tzinfo=UTC)


def harvest_trigger(topic: TopicSettings, *, jitter: int | None = None) -> BaseTrigger:
    """The topic's schedule: its cron in its timezone, or a fixed interval."""
    seconds = topic.interval_seconds
    if seconds is not None:
        return IntervalTrigger(
            seconds=seconds, start_date=INTERVAL_ANCHOR, timezone=topic.zone, jitter=jitter
        )
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


def latest_fire(
    trigger: BaseTrigger, fire: datetime, now: datetime
) -> tuple[datetime, datetime | None]:
    """From a fire time that has come, the latest one not after ``now`` (the missed ones
    coalesced into it) and the next one after ``now`` (pure)."""
    due = fire
    while True:
        after: datetime | None = trigger.get_next_fire_time(due, now)
        if after is None or after > now:
            return due, after
        due = after


def first_due_after(
    trigger: BaseTrigger, started: datetime | None, now: datetime
) -> datetime | None:
    """When a topic × source whose last completed run started at ``started`` fell due again,
    if it has by ``now``: its next fire time after that start (None: not due)."""
    if started is None:
        return now
    due: datetime | None = trigger.get_next_fire_time(None, started)
    if due is not None and due <= started:
        due = trigger.get_next_fire_time(due, started + timedelta(microseconds=1))
    return due if due is not None and due <= now else None


@dataclass(slots=True)
class Due:
    """A topic's window waiting on a source's queue."""

    topic: str
    due: datetime  # the fire time it answers: a run started at or after it completes it
    not_before: datetime  # jitter, or when a window claimed elsewhere is looked at again
    retry: bool = False  # after a failure's back-off
    seq: int = 0


class SourceQueue:
    """One source's due windows, one per topic (a later fire coalesces into a waiting one),
    taken earliest first; ties in an order of the daemon's own, so replicas draining the
    same windows mostly meet different ones."""

    def __init__(self, source: str, salt: str) -> None:
        self.source = source
        self.salt = salt
        self._waiting: dict[str, Due] = {}
        self._heap: list[tuple[datetime, int, int, str]] = []
        self._cond = threading.Condition()
        self._seq = 0
        self.running: str | None = None
        self.done = 0  # windows harvested (or found done elsewhere) since the start

    def put(self, item: Due) -> None:
        self.put_many([item])

    def put_many(self, items: list[Due]) -> None:
        """Queue ``items`` under one lock, so a waiting worker wakes to all of them."""
        with self._cond:
            for item in items:
                self._put(item)
            self._cond.notify()

    def _put(self, item: Due) -> None:
        have = self._waiting.get(item.topic)
        if have is not None:
            have.due = max(have.due, item.due)
            have.retry = have.retry or item.retry
            if item.not_before >= have.not_before:
                return
            have.not_before = item.not_before
            item = have
        else:
            self._waiting[item.topic] = item
        self._seq += 1
        item.seq = self._seq
        order = hash((self.salt, item.topic)) & 0xFFFFFFFF
        heapq.heappush(self._heap, (item.not_before, order, item.seq, item.topic))

    def take(self, clock: Callable[[], datetime], stopping: threading.Event) -> Due | None:
        """The next window whose time has come; None once ``stopping`` is set."""
        with self._cond:
            while not stopping.is_set():
                while self._heap:
                    not_before, _order, seq, topic = self._heap[0]
                    item = self._waiting.get(topic)
                    if item is None or item.seq != seq:
                        heapq.heappop(self._heap)  # coalesced into a newer entry
                        continue
                    break
                wait = 5.0
                if self._heap:
                    wait = (self._heap[0][0] - clock()).total_seconds()
                    if wait <= 0:
                        topic = heapq.heappop(self._heap)[3]
                        return self._waiting.pop(topic)
                self._cond.wait(min(max(wait, 0.01), 5.0))
            return None

    def take_ready(self, clock: Callable[[], datetime], limit: int = 100_000) -> list[Due]:
        """Every other window whose time has come too (earliest first, up to ``limit``): a
        worker harvests them together, one fetch for all."""
        out: list[Due] = []
        with self._cond:
            now = clock()
            while self._heap and len(out) < limit:
                not_before, _order, seq, topic = self._heap[0]
                item = self._waiting.get(topic)
                if item is None or item.seq != seq:
                    heapq.heappop(self._heap)
                    continue
                if not_before > now:
                    break
                heapq.heappop(self._heap)
                out.append(self._waiting.pop(topic))
        return out

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._waiting)

    def oldest(self) -> datetime | None:
        with self._cond:
            return min((d.due for d in self._waiting.values()), default=None)


def failure_backoff(consecutive_failures: int) -> timedelta:
    """The wait before retrying a failing topic × source: doubles per failure, capped."""
    if consecutive_failures <= 0:
        return timedelta(0)
    return min(FAILURE_BACKOFF_BASE * (1 << (consecutive_failures - 1)), FAILURE_BACKOFF_MAX)
