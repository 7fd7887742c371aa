"""One harvest: a topic × source window, from the API to the store.

::

    window  = (watermark - overlap, now]           # or the topic's lookback on its first run
    for page in source.fetch(term, window):         # HTTP only
        records = source.parse(page)                # pure
        matched = [r for r in records if query.match(r)]
        repo.store_page(run, matched, cursor)       # one transaction per page
    repo.finish_run(run, counts, watermark=min(window.end, server's Date + margin)
                                 if every page was fetched and stored)

Errors are values: a failed source is recorded with its run and the harvest returns, and so
is any unexpected exception (a parser's RecursionError, a bug): the run ends ``failed``, never
left ``running``. The watermark moves when every page of the window was fetched and stored;
records a parser could not read are skipped, logged and counted (the run is ``partial``)
but do not hold it, or one bad record would make every later window grow without end.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

import structlog
from structlog.contextvars import bound_contextvars

from harvester.errors import Interrupted, ParseError, SourceError, StoreError
from harvester.query.syntax import Query
from harvester.sources.base import Page, Source, Window
from harvester.store.repository import Repository
from harvester.store.runs import SKIP_REASONS_KEPT
from harvester.store.values import COMPLETED, PageOutcome, RunCounts, RunStatus

log = structlog.get_logger(__name__)

# A server's Date is trusted over the local clock beyond this: a watermark is never stored
# later than the newest Date a source sent plus this margin (a clock 30 days ahead once set
# one a month away, and the next window was empty).
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class HarvestResult:
    run_id: int
    topic: str
    source: str
    window: Window
    status: str  # ok | partial | failed | interrupted | claimed (another process ran it)
    counts: RunCounts
    error: str | None = None
    skip_reasons: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every page of the window was fetched and stored (records may have been skipped)."""
        return self.status in COMPLETED


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
    records and clock skew), or the topic's lookback on its first run, up to now. A
    watermark beyond now (stored while the clock ran ahead) counts as now, so the window is
    the overlap before now, never the empty ``(now, now]``."""
    if watermark is None:
        return Window(now - timedelta(days=lookback_days), now)
    if watermark > now:
        log.warning(
            "watermark beyond now; window starts from now",
            watermark=watermark.isoformat(),
            now=now.isoformat(),
        )
        watermark = now
    return Window(watermark - overlap, now)


def bounded_watermark(window: Window, server_date: datetime | None) -> datetime:
    """Where a complete window leaves the watermark: its end, but never later than the
    source's own clock (its newest Date header) plus a margin."""
    if server_date is None or window.end <= server_date + CLOCK_MARGIN:
        return window.end
    return server_date + CLOCK_MARGIN


def run_harvest(
    *,
    topic: str,
    query: Query,
    term: str,
    source: Source,
    repo: Repository,
    window: Window,
    backfill: bool = False,
    notify: bool = False,
    advance_watermark: bool = True,
    request_count: Callable[[], int] = lambda: 0,
    should_stop: Callable[[], bool] = lambda: False,
    on_page: Callable[[Page, PageOutcome], None] | None = None,
) -> HarvestResult:
    """Fetch, parse, match and store one window; record the run; never raise a SourceError.

    ``should_stop`` is asked after each stored page (a daemon shutting down ends the run
    there, with the watermark held); ``on_page`` reports progress. A backfill passes
    ``advance_watermark=False``: history must not move the daily harvest's window. Its run is
    recorded as a backfill run either way; ``notify`` stores its hits as news, which digests
    send, instead of as backfill hits, which they skip. Any
    exception but KeyboardInterrupt and SystemExit ends the run ``failed``; those two mark
    it ``interrupted`` and go on.
    """
    run_id = repo.begin_run(topic, source.name, window, backfill=backfill)
    counts = RunCounts()
    requests_before = request_count()
    status, error = RunStatus.OK, None
    expected: int | None = None
    reasons: list[str] = []
    newest_server: datetime | None = None
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
                if page.server_date is not None:
                    newest_server = max(newest_server or page.server_date, page.server_date)
                try:
                    result = source.parse(page)
                except ParseError as e:
                    # an unreadable page stops the window: what follows it cannot be trusted
                    # and the watermark must stay before the records it held
                    log.error("page unreadable", page=page.number, url=page.url, error=str(e))
                    counts = replace(counts, errors=counts.errors + 1)
                    status, error = RunStatus.FAILED, str(e)
                    break
                for skipped in result.skipped:
                    log.warning(
                        "record skipped",
                        page=page.number,
                        url=page.url,
                        source_id=skipped.source_id,
                        reason=skipped.reason,
                    )
                    if len(reasons) < SKIP_REASONS_KEPT:
                        reasons.append(
                            f"{skipped.source_id}: {skipped.reason}"
                            if skipped.source_id
                            else skipped.reason
                        )
                matched = [r for r in result.records if query.match(r) is not None]
                outcome = repo.store_page(
                    run_id, topic, matched, backfill=backfill and not notify, cursor=page.cursor
                )
                counts = replace(
                    counts,
                    records=counts.records + len(result.records),
                    skipped=counts.skipped + len(result.skipped),
                ).with_stored(len(matched), outcome)
                if result.skipped and status == RunStatus.OK:
                    status = RunStatus.PARTIAL  # the page is stored: skipped records never hold it
                log.info(
                    "page stored",
                    page=page.number,
                    total=page.total,
                    records=len(result.records),
                    matched=len(matched),
                    skipped=len(result.skipped),
                    new_works=outcome.new_works,
                    new_hits=outcome.new_hits,
                )
                if on_page is not None:
                    on_page(page, outcome)
                if should_stop():
                    status, error = RunStatus.INTERRUPTED, "stopped before the window was complete"
                    log.info("harvest interrupted", page=page.number)
                    break
        except Interrupted as e:
            # a stop request, not a failure of the source: the watermark holds
            log.info("harvest interrupted", error=str(e))
            status, error = RunStatus.INTERRUPTED, str(e)
        except SourceError as e:
            log.error("source failed", error=str(e))
            counts = replace(counts, errors=counts.errors + 1)
            status, error = RunStatus.FAILED, str(e)
        except StoreError as e:
            log.error("store failed", error=str(e))
            counts = replace(counts, errors=counts.errors + 1)
            status, error = RunStatus.FAILED, str(e)
        except Exception as e:
            # a parser or the store met what nobody foresaw (a RecursionError from deeply
            # nested JSON, a ValueError from a 5,000-digit integer, a bug): the run fails
            # like any failed source, with its reason, instead of escaping as a traceback
            # and leaving the run 'running' with no back-off
            error = f"unexpected {type(e).__name__}: {_short(e)}"
            log.error("harvest crashed", error_type=type(e).__name__, error=_short(e))
            counts = replace(counts, errors=counts.errors + 1)
            status = RunStatus.FAILED
        except BaseException as e:  # KeyboardInterrupt, SystemExit: record, then let it go
            _finish_interrupted(repo, run_id, counts, f"interrupted by {type(e).__name__}")
            raise
        finally:
            pages.close()
        counts = replace(counts, requests=request_count() - requests_before)
        complete = status in COMPLETED
        if complete and expected is not None and counts.records + counts.skipped < expected:
            # the source announced more than it gave: worth a look, but not a failure (some
            # APIs' totals are estimates); recorded with the run and shown by `status`
            error = f"shortfall: retrieved {counts.records} of {expected} announced"
            log.warning("shortfall", retrieved=counts.records, expected=expected)
        watermark = None
        if complete and advance_watermark:
            watermark = bounded_watermark(window, newest_server)
            if watermark < window.end:
                assert newest_server is not None
                log.warning(
                    "clock ahead of the server",
                    clock=window.end.isoformat(),
                    server_date=newest_server.isoformat(),
                    ahead_seconds=int((window.end - newest_server).total_seconds()),
                    watermark=watermark.isoformat(),
                )
        repo.finish_run(
            run_id,
            status=status,
            counts=counts,
            error=error,
            watermark=watermark,
            expected=expected,
            skip_reasons=reasons,
        )
        log.info(
            "harvest finished",
            status=status,
            **asdict(counts),
            expected=expected,
            watermark="advanced" if watermark is not None else "held",
        )
    return HarvestResult(
        run_id,
        topic,
        source.name,
        window,
        status,
        counts,
        repo.redact(error) if error is not None else None,
        tuple(repo.redact(r) for r in reasons),
    )


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    return text if len(text) <= limit else text[:limit] + "…"


def _finish_interrupted(repo: Repository, run_id: int, counts: RunCounts, reason: str) -> None:
    log.warning("harvest interrupted", reason=reason)
    try:
        repo.finish_run(run_id, status=RunStatus.INTERRUPTED, counts=counts, error=reason)
    except Exception as e:  # the interruption goes on; the next run marks this one anyway
        log.error("run not recorded as interrupted", error=_short(e))
