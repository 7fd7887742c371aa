"""One harvest: a topic × source window, from the API to the store.

::

    window  = (watermark - overlap, now]           # or the topic's lookback on its first run
    for page in source.fetch(term, window):         # HTTP only
        records = source.parse(page)                # pure
        matched = [r for r in records if query.match(r)]
        repo.store_page(run, matched, cursor)       # one transaction per page
    repo.finish_run(run, counts, watermark=window.end if nothing failed)

Errors are values: a failed source is recorded with its run and the harvest returns; the
watermark only moves when every record of the window was read and stored.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from structlog.contextvars import bound_contextvars

from harvester.errors import Interrupted, ParseError, SourceError, StoreError
from harvester.query import Query
from harvester.sources.base import Page, Source, Window
from harvester.store.repository import PageOutcome, Repository, RunCounts

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HarvestResult:
    run_id: int
    topic: str
    source: str
    window: Window
    status: str  # ok | partial | failed | interrupted
    counts: RunCounts
    error: str | None = None


class Prefetch:
    """Fetch the next page while this one is parsed and stored.

    The source's generator runs in one background thread, at most ``depth`` pages ahead, so
    the request rate follows the API's limit rather than the store's speed (and a Crossref
    cursor never idles). Errors come out where the page would have. No wait is unbounded:
    the consumer's looks at ``should_stop`` every ``_POLL`` seconds (``Interrupted`` once it
    is true and no page is ready), and ``close`` waits at most ``join_timeout`` seconds for
    the request in flight (every request has its own deadline besides).
    """

    _END = object()
    _POLL = 0.1

    def __init__(
        self,
        pages: Iterator[Page],
        *,
        depth: int = 2,
        should_stop: Callable[[], bool] = lambda: False,
        join_timeout: float = 10.0,
    ) -> None:
        self._pages = pages
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._should_stop = should_stop
        self._join_timeout = join_timeout
        self._context = contextvars.copy_context()  # the run's log context, in the thread
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=self._POLL)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        def run() -> None:
            try:
                for page in self._pages:
                    if not self._put(page):
                        break
                else:
                    self._put(self._END)
            except BaseException as e:  # handed to the consumer, raised there
                self._put(e)
            finally:
                close = getattr(self._pages, "close", None)
                if close is not None:
                    close()

        self._context.run(run)

    def __iter__(self) -> Iterator[Page]:
        while True:
            try:
                item = self._queue.get(timeout=self._POLL)
            except queue.Empty:
                if self._should_stop():
                    raise Interrupted("stopped while waiting for the next page") from None
                if not self._thread.is_alive() and self._queue.empty():
                    # never a silent end: the watermark would move past pages never read
                    raise SourceError("the page fetcher ended without its last page") from None
                continue
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(self._join_timeout)
        if self._thread.is_alive():
            # its request ends by its own deadline; what it fetches is dropped
            log.warning("prefetch left running", waited_s=self._join_timeout)


def plan_window(
    watermark: datetime | None, now: datetime, *, lookback_days: int, overlap: timedelta
) -> Window:
    """The window of a scheduled harvest: from the watermark less an overlap (late-indexed
    records and clock skew), or the topic's lookback on its first run, up to now."""
    if watermark is None:
        return Window(now - timedelta(days=lookback_days), now)
    return Window(min(watermark - overlap, now), now)


def run_harvest(
    *,
    topic: str,
    query: Query,
    term: str,
    source: Source,
    repo: Repository,
    window: Window,
    backfill: bool = False,
    advance_watermark: bool = True,
    request_count: Callable[[], int] = lambda: 0,
    should_stop: Callable[[], bool] = lambda: False,
    on_page: Callable[[Page, PageOutcome], None] | None = None,
) -> HarvestResult:
    """Fetch, parse, match and store one window; record the run; never raise a SourceError.

    ``should_stop`` is asked after each stored page (a daemon shutting down ends the run
    there, with the watermark held); ``on_page`` reports progress. A backfill passes
    ``advance_watermark=False``: history must not move the daily harvest's window.
    """
    run_id = repo.begin_run(topic, source.name, window, backfill=backfill)
    counts = RunCounts()
    requests_before = request_count()
    status, error = "ok", None
    expected: int | None = None
    with bound_contextvars(topic=topic, source=source.name, run_id=run_id):
        log.info(
            "harvest started",
            window_start=window.start.isoformat(),
            window_end=window.end.isoformat(),
            backfill=backfill,
        )
        pages = Prefetch(source.fetch(term, window), should_stop=should_stop)
        try:
            for page in pages:
                counts = replace(counts, pages=counts.pages + 1)
                if page.total is not None:
                    expected = max(expected or 0, page.total)
                try:
                    result = source.parse(page)
                except ParseError as e:
                    # an unreadable page stops the window: what follows it cannot be trusted
                    # and the watermark must stay before the records it held
                    log.error("page unreadable", page=page.number, url=page.url, error=str(e))
                    counts = replace(counts, errors=counts.errors + 1)
                    status, error = "failed", str(e)
                    break
                for skipped in result.skipped:
                    log.warning(
                        "record skipped",
                        page=page.number,
                        url=page.url,
                        source_id=skipped.source_id,
                        reason=skipped.reason,
                    )
                matched = [r for r in result.records if query.match(r) is not None]
                outcome = repo.store_page(
                    run_id, topic, matched, backfill=backfill, cursor=page.cursor
                )
                counts = replace(
                    counts,
                    records=counts.records + len(result.records),
                    matched=counts.matched + len(matched),
                    new_works=counts.new_works + outcome.new_works,
                    new_hits=counts.new_hits + outcome.new_hits,
                    duplicates=counts.duplicates + outcome.duplicates,
                    errors=counts.errors + len(result.skipped),
                )
                if result.skipped:
                    status, error = "partial", f"{counts.errors} record(s) could not be read"
                log.info(
                    "page stored",
                    page=page.number,
                    total=page.total,
                    records=len(result.records),
                    matched=len(matched),
                    new_works=outcome.new_works,
                    new_hits=outcome.new_hits,
                )
                if on_page is not None:
                    on_page(page, outcome)
                if should_stop():
                    status, error = "interrupted", "stopped before the window was complete"
                    log.info("harvest interrupted", page=page.number)
                    break
        except Interrupted as e:
            # a stop request, not a failure of the source: the watermark holds
            log.info("harvest interrupted", error=str(e))
            status, error = "interrupted", str(e)
        except SourceError as e:
            log.error("source failed", error=str(e))
            counts = replace(counts, errors=counts.errors + 1)
            status, error = "failed", str(e)
        except StoreError as e:
            log.error("store failed", error=str(e))
            counts = replace(counts, errors=counts.errors + 1)
            status, error = "failed", str(e)
        finally:
            pages.close()
        counts = replace(counts, requests=request_count() - requests_before)
        if status == "ok" and expected is not None and counts.records < expected:
            # the source announced more than it gave: worth a look, but not a failure (some
            # APIs' totals are estimates); recorded with the run and shown by `status`
            error = f"shortfall: retrieved {counts.records} of {expected} announced"
            log.warning("shortfall", retrieved=counts.records, expected=expected)
        repo.finish_run(
            run_id,
            status=status,
            counts=counts,
            error=error,
            watermark=window.end if status == "ok" and advance_watermark else None,
            expected=expected,
        )
        log.info(
            "harvest finished",
            status=status,
            requests=counts.requests,
            pages=counts.pages,
            records=counts.records,
            matched=counts.matched,
            new_works=counts.new_works,
            new_hits=counts.new_hits,
            duplicates=counts.duplicates,
            errors=counts.errors,
            expected=expected,
            watermark="advanced" if status == "ok" else "held",
        )
    return HarvestResult(run_id, topic, source.name, window, status, counts, error)
