"""Shared harvesting: one fetch per source and window for every topic that uses it.

::

    window mode   (bioRxiv, medRxiv, PubMed, Europe PMC, Crossref, arXiv: the whole delta)
        earliest = min(topic's window start)                  # watermark - overlap, or lookback
        stored   = completed windows of the source since then (source_windows)
        fetch    (earliest, now] less what is stored, the newest stored end less the overlap
        read     the stored windows a topic's window reaches back to (a topic joining late)
    combined mode (OpenAlex, Semantic Scholar: a search is far smaller than the delta)
        topics with the same window: OR of their translations, cut to the API's length limit

    every record, fetched or read back, is matched against the topics locally (match_topics)
    and stored once (harvester.store.sharing); each topic keeps its own run and watermark.

A fetch that fails fails the topics that needed it (their watermark holds; the daemon backs
off and retries); the others complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import structlog

from harvester.errors import Interrupted, ParseError, SourceError, StoreError
from harvester.harvesting.harvest import (
    HarvestResult,
    Prefetch,
    bounded_watermark,
)
from harvester.query.presearch import TopicIndex
from harvester.query.syntax import Query
from harvester.records import Record
from harvester.sources.base import Source, Window
from harvester.store.batch_runs import RunEnd
from harvester.store.sharing import SharedStore, StoredWindow
from harvester.store.values import COMPLETED, RunCounts

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Mode:
    """How a source is fetched for many topics: its whole window with ``term`` (an API
    without search, or whose daily delta is cheaper than the topics' searches), or one
    search per ``limit`` characters of the topics' translations joined by ``joiner``."""

    kind: Literal["window", "combined"]
    term: str = ""
    joiner: str = " OR "
    limit: int = 4000
    prefix: str = ""  # a field every translation starts with, written once


# Which is cheaper, with the arithmetic: README "Shared harvesting".
MODES: dict[str, Mode] = {
    "pubmed": Mode("window", term="all[sb]"),
    "europepmc": Mode("window"),
    "crossref": Mode("window"),
    "arxiv": Mode("window"),
    "biorxiv": Mode("window"),
    "medrxiv": Mode("window"),
    "openalex": Mode("combined", limit=3000, prefix="title_and_abstract.search:"),
    "semanticscholar": Mode("combined", joiner=" | ", limit=1000),
}
COMBINED = Mode("combined")


def mode_of(source: str) -> Mode:
    return MODES.get(source, COMBINED)


@dataclass(frozen=True, slots=True)
class Member:
    """A topic taking part: its query, its own translation and the window it needs."""

    topic: str
    query: Query
    term: str
    need: Window


def match_topics(members: Sequence[Member]) -> Callable[[Record], list[str]]:
    """The topics a record matches: the members' queries indexed by the words a matching
    record must contain (harvester.query.presearch), each candidate confirmed by its exact
    evaluator, the record tokenized once."""
    index = TopicIndex.build({m.topic: m.query for m in members})
    return index.matching


def combine(terms: Sequence[str], mode: Mode) -> list[tuple[str, list[int]]]:
    """The topics' translations as OR-queries of at most ``mode.limit`` characters, each
    with the indices of the topics it covers; an empty translation (nothing to search for)
    is a query of its own."""
    out: list[tuple[str, list[int]]] = []
    parts: list[str] = []
    members: list[int] = []
    size = 0
    for index, term in enumerate(terms):
        body = term[len(mode.prefix) :] if mode.prefix and term.startswith(mode.prefix) else term
        if not body.strip():
            out.append(("", [index]))
            continue
        piece = f"({body})"
        if parts and size + len(mode.joiner) + len(piece) > mode.limit - len(mode.prefix):
            out.append((mode.prefix + mode.joiner.join(parts), members))
            parts, members, size = [], [], 0
        parts.append(piece)
        members.append(index)
        size += len(piece) + (len(mode.joiner) if len(parts) > 1 else 0)
    if parts:
        whole = parts[0][1:-1] if len(parts) == 1 else mode.joiner.join(parts)
        out.append((mode.prefix + whole, members))
    return out


def plan_fetches(
    members: Sequence[Member], stored: Sequence[StoredWindow], overlap: timedelta
) -> tuple[list[Window], Window | None]:
    """What to fetch of the topics' windows: the spans no stored window covers (the newest
    one's last ``overlap`` again, for late-indexed records), and the tail fetch (the newest
    span), so that a topic reads back only the stored windows before it."""
    earliest = min(m.need.start for m in members)
    end = max(m.need.end for m in members)
    spans: list[list[datetime]] = []
    for w in sorted(stored, key=lambda w: w.start):
        if spans and w.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], w.end)
        else:
            spans.append([w.start, w.end])
    gaps: list[Window] = []
    at = earliest
    for start, stop in spans:
        if stop <= at:
            continue
        if start > at:
            gaps.append(Window(at, min(start, end)))
        at = max(at, stop)
        if at >= end:
            break
    tail = None
    if at < end:
        tail = Window(max(earliest, at - overlap) if spans else at, end)
        gaps.append(tail)
    return gaps, tail


@dataclass(slots=True)
class _Tally:
    counts: RunCounts = field(default_factory=RunCounts)
    status: str = "ok"
    error: str | None = None
    server: datetime | None = None
    reasons: list[str] = field(default_factory=list)

    def fail(self, status: str, error: str) -> None:
        order = ("ok", "partial", "interrupted", "failed")
        if order.index(status) > order.index(self.status):
            self.status, self.error = status, error


class SharedHarvest:
    """One batch of topics due on one source, fetched once (see the module docstring)."""

    def __init__(
        self,
        *,
        source: Source,
        store: SharedStore,
        members: Sequence[Member],
        overlap: timedelta,
        request_count: Callable[[], int] = lambda: 0,
        should_stop: Callable[[], bool] = lambda: False,
        mode: Mode | None = None,
    ) -> None:
        self.source, self.store, self.members = source, store, list(members)
        self.overlap = overlap
        self.request_count, self.should_stop = request_count, should_stop
        self.mode = mode or mode_of(source.name)
        self.tallies = {m.topic: _Tally() for m in self.members}
        self.runs: dict[str, int] = {}
        self.fetches = 0

    def run(self) -> list[HarvestResult]:
        if not self.members:
            return []
        name = self.source.name
        self.runs = self.store.begin_runs(name, {m.topic: m.need for m in self.members})
        try:
            if self.mode.kind == "window":
                self._whole_windows()
            else:
                self._combined()
        except StoreError as e:  # the database went away: every topic's run fails
            for tally in self.tallies.values():
                tally.fail("failed", str(e))
        return self._finish()

    # -- window mode -------------------------------------------------------------------------

    def _whole_windows(self) -> None:
        earliest = min(m.need.start for m in self.members)
        stored = self.store.covering(self.source.name, earliest)
        gaps, tail = plan_fetches(self.members, stored, self.overlap)
        for gap in gaps:
            takers = [m for m in self.members if m.need.start < gap.end]
            self._fetch(gap, self.mode.term, takers)
        cut = tail.start if tail is not None else max(m.need.end for m in self.members)
        readers = {
            w.id: [m for m in self.members if m.need.start < min(w.end, cut)]
            for w in stored
            if w.start < cut
        }
        readers = {k: v for k, v in readers.items() if v}
        if readers:
            self._read_back(readers)

    def _read_back(self, readers: dict[int, list[Member]]) -> None:
        """The stored windows' records, matched against the topics that reach back to them."""
        matchers = {wid: match_topics(ms) for wid, ms in readers.items()}
        seen: set[tuple[str, str | None, str | None]] = set()
        batch: list[Record] = []
        matches: list[list[str]] = []
        examined: dict[str, int] = {}
        for wid, record in self.store.stored_records(list(readers)):
            key = (record.source, record.source_id, record.title if not record.source_id else "")
            topics = matchers[wid](record)
            for m in readers[wid]:
                examined[m.topic] = examined.get(m.topic, 0) + 1
            if key in seen and not topics:
                continue
            seen.add(key)
            if topics:
                batch.append(record)
                matches.append(topics)
            if len(batch) >= 500:
                self._store(None, batch, matches)
                batch, matches = [], []
        if batch:
            self._store(None, batch, matches)
        for topic, count in examined.items():
            t = self.tallies[topic]
            t.counts = replace(t.counts, records=t.counts.records + count)
        log.info("read back from the store", windows=len(readers), records=sum(examined.values()))

    # -- combined mode -----------------------------------------------------------------------

    def _combined(self) -> None:
        groups: dict[tuple[datetime, datetime], list[Member]] = {}
        for m in self.members:
            groups.setdefault((m.need.start, m.need.end), []).append(m)
        for (start, end), members in groups.items():
            for term, indices in combine([m.term for m in members], self.mode):
                self._fetch(Window(start, end), term, [members[i] for i in indices])

    # -- one fetch ---------------------------------------------------------------------------

    def _fetch(self, window: Window, term: str, takers: list[Member]) -> None:
        if not takers:
            return
        if self.should_stop():
            for m in takers:
                self.tallies[m.topic].fail("interrupted", "stopped before the window was fetched")
            return
        name, before = self.source.name, self.request_count()
        window_id = self.store.open_window(name, self.mode.kind, window, len(takers))
        self.fetches += 1
        matching = match_topics(takers)
        status, error, pages, records = "ok", None, 0, 0
        newest: datetime | None = None
        log.info(
            "shared fetch started",
            source=name,
            mode=self.mode.kind,
            topics=len(takers),
            window_start=window.start.isoformat(),
            window_end=window.end.isoformat(),
        )
        stream = Prefetch(self.source.fetch(term, window), should_stop=self.should_stop)
        try:
            for page in stream:
                pages += 1
                if page.server_date is not None:
                    newest = max(newest or page.server_date, page.server_date)
                try:
                    result = self.source.parse(page)
                except ParseError as e:
                    log.error("page unreadable", page=page.number, url=page.url, error=str(e))
                    status, error = "failed", str(e)
                    break
                records += len(result.records)
                matches = [matching(r) for r in result.records]
                for m in takers:
                    t = self.tallies[m.topic]
                    t.counts = replace(
                        t.counts,
                        pages=t.counts.pages + 1,
                        records=t.counts.records + len(result.records),
                        skipped=t.counts.skipped + len(result.skipped),
                    )
                    for s in result.skipped[: max(0, 5 - len(t.reasons))]:
                        t.reasons.append(f"{s.source_id}: {s.reason}" if s.source_id else s.reason)
                if result.skipped and status == "ok":
                    status = "partial"
                self._store(window_id, list(result.records), matches)
                if self.should_stop():
                    status, error = "interrupted", "stopped before the window was complete"
                    break
        except Interrupted as e:
            status, error = "interrupted", str(e)
        except (SourceError, StoreError) as e:
            log.error("shared fetch failed", source=name, error=str(e))
            status, error = "failed", str(e)
        except Exception as e:  # a parser's or the store's unforeseen error: the fetch fails
            status, error = "failed", f"unexpected {type(e).__name__}: {e}"[:300]
            log.error("shared fetch crashed", source=name, error=error)
        finally:
            stream.close()
        requests = self.request_count() - before
        self.store.close_window(
            window_id, status=status, requests=requests, pages=pages, records=records, error=error
        )
        share, extra = divmod(requests, len(takers))
        for index, m in enumerate(takers):
            t = self.tallies[m.topic]
            t.counts = replace(
                t.counts,
                requests=t.counts.requests + share + (index < extra),
                errors=t.counts.errors + (status == "failed"),
            )
            if newest is not None:
                t.server = max(t.server or newest, newest)
            if status != "ok":
                t.fail(status, error or "")
        if status == "interrupted":  # the event operators (and `harvest`'s own path) know
            log.info("harvest interrupted", source=name, topics=len(takers), error=error)
        log.info("shared fetch finished", source=name, status=status, requests=requests)

    def _store(
        self, window_id: int | None, records: list[Record], matches: list[list[str]]
    ) -> None:
        outcome = self.store.store_page(window_id, records, matches, self.runs)
        for topic, page in outcome.items():
            t = self.tallies[topic]
            t.counts = t.counts.with_stored(page.matched, page)

    # -- the end -----------------------------------------------------------------------------

    def _finish(self) -> list[HarvestResult]:
        ends: dict[str, RunEnd] = {}
        for m in self.members:
            t = self.tallies[m.topic]
            mark = bounded_watermark(m.need, t.server) if t.status in COMPLETED else None
            ends[m.topic] = RunEnd(t.status, t.counts, t.error, mark, None, t.reasons)
        self.store.finish_runs(self.source.name, self.runs, ends)
        redact = self.store.repo.redact
        return [
            HarvestResult(
                self.runs[m.topic],
                m.topic,
                self.source.name,
                m.need,
                ends[m.topic].status,
                ends[m.topic].counts,
                redact(ends[m.topic].error or "") or None,
                tuple(redact(r) for r in ends[m.topic].skip_reasons),
            )
            for m in self.members
        ]
