"""The composition root: the one place that builds clients, the engine and the sources.

Everything else receives what it needs as arguments; importing a module does nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from sqlalchemy import Engine

from harvester.config import Settings
from harvester.config.topics import TopicSettings
from harvester.errors import ConfigError
from harvester.harvesting.harvest import HarvestResult, plan_window, run_harvest
from harvester.harvesting.shared import Member, SharedHarvest
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.logs import SecretRedactor
from harvester.sources import SOURCES, Source, Window, missing_key, source_from_settings
from harvester.sources.base import Page
from harvester.store.database import open_engine
from harvester.store.locks import Claims, claim_window, claims_for
from harvester.store.repository import Repository
from harvester.store.sharing import SharedStore
from harvester.store.values import PageOutcome, RunCounts

log = structlog.get_logger(__name__)

PACING_MARGIN = 0.97


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    """The built service: settings plus the live parts made from them."""

    settings: Settings
    engine: Engine
    repo: Repository
    client: httpx.Client
    limiter: RateLimiter
    fetcher: Fetcher
    clock: Callable[[], datetime]
    sleep: Callable[[float], None] = time.sleep
    # set to stop: no new request starts, back-off waits and reads in flight end (Daemon.stop)
    stopping: threading.Event = field(default_factory=threading.Event)
    claims: Claims | None = None  # who runs which window now; claims_for(engine) if None
    _sources: dict[str, Source] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)

    def source(self, name: str) -> Source:
        """The connector for ``name``, built once with its rate limit registered."""
        if name not in self._sources:
            self._sources[name] = connect_source(name, self.settings, self.fetcher)
        return self._sources[name]

    def overlap(self, name: str) -> timedelta:
        configured = self.settings.source(name).overlap_days
        if configured is not None:
            return timedelta(days=configured)
        return SOURCES[name].DEFAULT_OVERLAP

    def harvest(
        self,
        topic: TopicSettings,
        source_name: str,
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> HarvestResult:
        """One scheduled harvest: from the watermark (or the lookback) to now."""
        self.source(source_name)  # an unknown source is a ConfigError before anything is read
        window = plan_window(
            self.repo.watermark(topic.name, source_name),
            self.clock(),
            lookback_days=topic.lookback_days,
            overlap=self.overlap(source_name),
        )
        return self.harvest_window(topic, source_name, window, should_stop=should_stop)

    def harvest_window(
        self,
        topic: TopicSettings,
        source_name: str,
        window: Window,
        *,
        backfill: bool = False,
        notify: bool = False,
        advance_watermark: bool = True,
        should_stop: Callable[[], bool] = lambda: False,
        on_page: Callable[[Page, PageOutcome], None] | None = None,
    ) -> HarvestResult:
        """One run of ``topic`` on a source over ``window`` (a scheduled run's, a backfill
        slice's, whose hits digests send only with ``notify``), with the topic's raw query for
        the source if it has one."""
        source = self.source(source_name)
        query = topic.parsed_query
        term = topic.raw_queries.get(source_name) or source.translate(query)
        with self.fetcher.counting() as requests:  # this run's own, whatever runs beside it
            return run_harvest(
                topic=topic.name,
                query=query,
                term=term,
                source=source,
                repo=self.repo,
                window=window,
                backfill=backfill,
                notify=notify,
                advance_watermark=advance_watermark,
                request_count=requests,
                should_stop=should_stop,
                on_page=on_page,
            )

    def harvest_shared(
        self,
        topics: Sequence[TopicSettings],
        source_name: str,
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> list[HarvestResult]:
        """The scheduled harvests of ``topics`` on one source, fetched once for all of them
        (harvester.harvesting.shared); a topic with its own raw query for the source runs
        alone, as :meth:`harvest`."""
        source = self.source(source_name)
        alone = [t for t in topics if t.raw_queries.get(source_name)]
        together = [t for t in topics if not t.raw_queries.get(source_name)]
        results = [self.harvest(t, source_name, should_stop=should_stop) for t in alone]
        store = SharedStore(self.repo)
        marks = store.watermarks(source_name, [t.name for t in together])
        now, overlap = self.clock(), self.overlap(source_name)
        members = [
            Member(
                t.name,
                t.parsed_query,
                source.translate(t.parsed_query),
                plan_window(marks.get(t.name), now, lookback_days=t.lookback_days, overlap=overlap),
            )
            for t in together
        ]
        with self.fetcher.counting() as requests:
            shared = SharedHarvest(
                source=source,
                store=store,
                members=members,
                overlap=overlap,
                request_count=requests,
                should_stop=should_stop,
            )
            return results + shared.run()

    def usable_sources(self, topic: TopicSettings) -> tuple[str, ...]:
        """The topic's sources that can run; one warning for each that needs a missing key."""
        usable = []
        for name in topic.sources:
            variable = missing_key(name, self.settings.source(name))
            if variable is None:
                usable.append(name)
            elif name not in self._warned:
                self._warned.add(name)
                log.warning(
                    "source skipped: it needs an API key",
                    source=name,
                    set_variable=variable,
                    hint=f"export {variable}=... and set [sources.{name}] api_key_env = "
                    f'"{variable}"',
                )
        return tuple(usable)

    def claim_for(self, key: str, *, shared: bool = False) -> AbstractContextManager[bool]:
        """The claim on ``key`` (``harvest-source:SOURCE``, ``digest:SUB``) that the daemon
        and every command take, so none runs one window or digest twice at once."""
        return self._claims().claim(key, shared=shared)

    def claim_window(self, topic: str, source: str) -> AbstractContextManager[bool]:
        """The claim on one topic's daily window of ``source`` run on its own (not while a
        daemon's batch drains the source: harvester.store.locks)."""
        return claim_window(self._claims(), topic, source)

    def _claims(self) -> Claims:
        if self.claims is None:
            self.claims = claims_for(self.engine)
        return self.claims

    def harvest_all(
        self, topics: Iterable[TopicSettings], only_source: str | None = None
    ) -> list[HarvestResult]:
        """One harvest of each topic × usable source, each under the daemon's claim: one
        that another process holds comes back with status ``claimed`` and no run."""
        results = []
        for topic in topics:
            for name in self.usable_sources(topic):
                if only_source is None or name == only_source:
                    with self.claim_window(topic.name, name) as mine:
                        if mine:
                            results.append(self.harvest(topic, name))
                            continue
                    log.info("harvest claimed elsewhere", topic=topic.name, source=name)
                    now = self.clock()
                    results.append(
                        HarvestResult(0, topic.name, name, Window(now, now), "claimed", RunCounts())
                    )
        return results

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()


def build_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> App:
    """Build the service from validated settings.

    ``sleep`` (back-off waits; by default a wait that a stop request ends) may be replaced
    by a test's; the rate limiter always waits for real, and also ends on a stop request.
    """
    engine = open_engine(settings.database.url)
    redactor = SecretRedactor(settings.secret_values())
    http = build_http(settings, sleep=sleep, transport=transport)
    return App(
        settings=settings,
        engine=engine,
        repo=Repository(engine, clock=clock, redact=redactor.redact),
        client=http.client,
        limiter=http.limiter,
        fetcher=http.fetcher,
        clock=clock,
        sleep=http.sleep,
        stopping=http.stopping,
        claims=claims_for(engine),
    )


@dataclass(frozen=True)
class Http:
    """What talks to the APIs: one client, one per-API pace, one fetcher, one stop event."""

    client: httpx.Client
    limiter: RateLimiter
    fetcher: Fetcher
    sleep: Callable[[float], None]
    stopping: threading.Event


def build_http(
    settings: Settings,
    *,
    sleep: Callable[[float], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Http:
    """The HTTP side of the service with the ``[http]`` limits (also ``harvester try``'s)."""
    contact = next((s.contact for s in settings.sources.values() if s.contact), None)
    stopping = threading.Event()

    def pause(seconds: float) -> None:
        stopping.wait(seconds)

    limits = settings.http
    caps = [s.max_response_bytes for s in settings.sources.values() if s.max_response_bytes]
    client = build_client(
        contact=contact,
        transport=transport,
        timeout=limits.timeout_seconds,
        deadline=limits.request_deadline_seconds,
        # on the wire, the largest cap any source has; each source's own (decoded) is the
        # fetcher's
        max_response_bytes=max([limits.max_response_bytes, *caps]),
        stop=stopping,
    )
    limiter = RateLimiter(sleep=pause)
    sleep = sleep if sleep is not None else pause
    fetcher = Fetcher(
        client,
        limiter,
        sleep=sleep,
        max_response_bytes=limits.max_response_bytes,
        stop=stopping,
    )
    return Http(client, limiter, fetcher, sleep, stopping)


def connect_source(name: str, settings: Settings, fetcher: Fetcher) -> Source:
    """The connector for ``name``, its rate, concurrency and size cap registered with the
    fetcher's limiter."""
    if name not in SOURCES:
        raise ConfigError(
            f"{settings.path}: source {name!r} is not available; available: {', '.join(SOURCES)}"
        )
    source, rate = source_from_settings(name, settings.source(name), fetcher)
    # a little under the published limit: arrival jitter must never cross it
    fetcher.limiter.set_rate(SOURCES[name].rate_key, rate * PACING_MARGIN)
    in_flight = SOURCES[name].INFO.in_flight(settings.source(name).contact)
    if in_flight is not None:
        fetcher.limiter.set_concurrency(SOURCES[name].rate_key, in_flight)
    max_bytes = settings.source(name).max_response_bytes
    if max_bytes is not None:
        fetcher.set_max_bytes(SOURCES[name].rate_key, max_bytes)
    return source
