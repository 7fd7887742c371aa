"""`harvester try`: what a query would bring, per source and merged, without storing anything.

::

    for source in sources:                           # one after another, each at its API's pace
        term = raw query or source.translate(query)  # what is sent, and why it may be broader
        for page in source.fetch(term, window):      # at most `pages` pages (the request budget)
            records = source.parse(page)
            matched += [r for r in records if query.match(r)]
    works = cluster(matched)                         # the dedup engine, on Records in memory
    rank(works) → the first N with their "why" line  # digest order (digest.rank, render)
    ≈ per week = works / window days × 7, scaled up for what the budget left unread

No database is opened or created, nothing is sent, no watermark moves: the HTTP client, the
rate limiter and the connectors are built here from the settings, not by ``app.build_app``
(which opens the store).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from harvester.app import build_http, connect_source
from harvester.config import Settings
from harvester.dedup.cluster import cluster
from harvester.dedup.merge import merge_records
from harvester.digests.assemble import DigestItem, rank
from harvester.digests.view import view_item
from harvester.errors import ParseError, SourceError
from harvester.http.fetcher import Fetcher
from harvester.http.ratelimit import RateLimiter
from harvester.query.syntax import Query
from harvester.records import Record
from harvester.sources import Source, Window, missing_key

log = structlog.get_logger(__name__)

DEFAULT_PAGES = 3
DEFAULT_DAYS = 30

# Why a translation may fetch more than the portable query selects (translate.py's rule: an
# API query may be broader, never narrower); local matching filters the difference.
_BROADER: dict[str, str] = {
    "crossref": "free text ranked by relevance, no AND/OR/NOT: any record sharing a word",
    "biorxiv": "no search: every preprint of the window is listed",
    "medrxiv": "no search: every preprint of the window is listed",
    "arxiv": "terms searched in all fields, stems sent without truncation",
}
_TRUNCATED_PHRASES = {"europepmc", "semanticscholar"}


@dataclass(frozen=True, slots=True)
class SourceTrial:
    """What one source did for the query in the window."""

    source: str
    term: str
    raw: bool = False
    broader: tuple[str, ...] = ()
    announced: int | None = None
    fetched: int = 0
    matched: int = 0
    pages: int = 0
    requests: int = 0
    complete: bool = False
    unreadable: int = 0
    error: str | None = None

    @property
    def coverage(self) -> float | None:
        """The share of the window's results read: 1 when every page was fetched, else
        fetched / announced (None when the API announces no total)."""
        if self.complete:
            return 1.0
        if self.announced:
            return min(1.0, self.fetched / self.announced)
        return None

    @property
    def not_fetched(self) -> int | None:
        if self.complete or self.announced is None:
            return None
        return max(0, self.announced - self.fetched)


@dataclass(frozen=True, slots=True)
class Study:
    """One merged work, in digest order, with why it matched."""

    record: Record
    sources: tuple[str, ...]
    score: float
    why: str


@dataclass(frozen=True, slots=True)
class TrialResult:
    query: str
    window: Window
    pages_budget: int
    sources: tuple[SourceTrial, ...]
    skipped: tuple[tuple[str, str], ...]  # (source, why it did not run)
    studies: tuple[Study, ...]  # every merged work, digest order
    limit: int

    @property
    def days(self) -> float:
        return max((self.window.end - self.window.start).total_seconds() / 86400, 1e-9)

    @property
    def matched(self) -> int:
        return sum(s.matched for s in self.sources)

    @property
    def lower_bound(self) -> bool:
        """True when some source stopped early without saying how much it left."""
        return any(s.coverage is None and s.error is None for s in self.sources)

    @property
    def per_week(self) -> float | None:
        """≈ new studies per week: merged works per day of the window × 7, each source's
        matches scaled by 1 / coverage when the budget stopped it early."""
        if not self.sources:
            return None
        seen = sum(s.matched for s in self.sources)
        works = len(self.studies)
        if seen:
            scaled = sum(s.matched / (s.coverage or 1.0) for s in self.sources)
            works_estimate = works * scaled / seen
        else:
            works_estimate = 0.0
        return works_estimate / self.days * 7

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "pages_per_source": self.pages_budget,
            "sources": [
                {
                    "source": s.source,
                    "sent": s.term,
                    "raw_query": s.raw,
                    "broader": list(s.broader),
                    "announced": s.announced,
                    "fetched": s.fetched,
                    "matched": s.matched,
                    "pages": s.pages,
                    "requests": s.requests,
                    "complete": s.complete,
                    "coverage": s.coverage,
                    "not_fetched": s.not_fetched,
                    "unreadable_records": s.unreadable,
                    "error": s.error,
                }
                for s in self.sources
            ],
            "skipped": [{"source": n, "reason": r} for n, r in self.skipped],
            "matched_records": self.matched,
            "studies_total": len(self.studies),
            "per_week": self.per_week,
            "per_week_is_lower_bound": self.lower_bound,
            "studies": [
                {**s.record.to_json(), "found_in": list(s.sources), "score": s.score, "why": s.why}
                for s in self.studies[: self.limit]
            ],
        }


def broader_notes(source: str, query: Query, term: str) -> tuple[str, ...]:
    """Why ``term`` (the translation sent to ``source``) may select more than ``query``."""
    notes = [_BROADER[source]] if source in _BROADER else []
    truncated = [t for t in query.positive_terms() if t.truncated]
    if source in _TRUNCATED_PHRASES and any(t.phrase for t in truncated):
        notes.append("a truncated phrase is sent as its words AND the stem*")
    if source == "openalex" and truncated:
        notes.append("truncated terms sent as their stems (OpenAlex matches whole words)")
    positive = set(query.positive_terms())
    dropped = [t for t in query.terms() if t not in positive and t.text.lower() not in term.lower()]
    if dropped and source not in ("biorxiv", "medrxiv", "crossref"):
        notes.append("NOT " + ", ".join(t.text for t in dropped) + " left out")
    return tuple(notes)


@dataclass
class Connectors:
    """The HTTP client, the per-API rate limiter and the sources, built from the settings
    (the part of ``app.App`` that talks to APIs, without its database)."""

    settings: Settings
    client: httpx.Client
    limiter: RateLimiter
    fetcher: Fetcher
    _sources: dict[str, Source] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> Connectors:
        http = build_http(settings, sleep=sleep, transport=transport)
        return cls(settings, http.client, http.limiter, http.fetcher)

    def source(self, name: str) -> Source:
        if name not in self._sources:
            self._sources[name] = connect_source(name, self.settings, self.fetcher)
        return self._sources[name]

    def close(self) -> None:
        self.client.close()


def try_source(
    connectors: Connectors,
    name: str,
    query: Query,
    window: Window,
    *,
    raw_query: str | None = None,
    pages: int = DEFAULT_PAGES,
) -> tuple[SourceTrial, list[tuple[Record, Any]]]:
    """Fetch at most ``pages`` pages of ``name`` for ``query`` in ``window``; the matched
    records come back with their Match."""
    source = connectors.source(name)
    term = raw_query or source.translate(query)
    notes = () if raw_query else broader_notes(name, query, term)
    before = connectors.fetcher.requests
    announced: int | None = None
    fetched = count = unreadable = 0
    complete = False
    error: str | None = None
    matched: list[tuple[Record, Any]] = []
    iterator = source.fetch(term, window)
    try:
        for page in iterator:
            count += 1
            if page.total is not None:
                announced = max(announced or 0, page.total)
            try:
                result = source.parse(page)
            except ParseError as e:
                error = f"page {page.number} unreadable: {e}"
                break
            fetched += len(result.records)
            unreadable += len(result.skipped)
            for record in result.records:
                match = query.match(record)
                if match is not None:
                    matched.append((record, match))
            if page.cursor is None:
                complete = True
                break
            if count >= pages:
                break  # the budget: the next page is never requested
        else:
            complete = True
    except SourceError as e:
        error = str(e)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    trial = SourceTrial(
        source=name,
        term=term,
        raw=raw_query is not None,
        broader=notes,
        announced=announced,
        fetched=fetched,
        matched=len(matched),
        pages=count,
        requests=connectors.fetcher.requests - before,
        # a cursor API hands out a cursor with its last page too: all announced is all
        complete=error is None and (complete or (announced is not None and fetched >= announced)),
        unreadable=unreadable,
        error=error,
    )
    log.info(
        "source tried",
        source=name,
        announced=announced,
        fetched=fetched,
        matched=len(matched),
        pages=count,
        requests=trial.requests,
        complete=trial.complete,
    )
    return trial, matched


def merge_studies(query: Query, found: Sequence[tuple[Record, Any]]) -> tuple[Study, ...]:
    """The matched records as works (the dedup engine, in memory), in digest order."""
    records = [r for r, _ in found]
    groups: dict[int, list[Record]] = defaultdict(list)
    for i, kept in enumerate(cluster(records).kept):
        groups[kept].append(records[i])
    items = []
    for n, members in enumerate(groups.values()):
        record = merge_records(members)
        match = query.match(record) or query.match(members[0])
        sources = tuple(dict.fromkeys(m.source for m in members))
        items.append(
            DigestItem(
                work_id=n,
                topic="try",
                record=record,
                sources=sources,
                score=match.score if match is not None else 0.0,
                match=match,
            )
        )
    return tuple(
        Study(item.record, item.sources, item.score, view_item(item, query=query).why)
        for item in rank(items)
    )


def run_trial(
    connectors: Connectors,
    query: Query,
    sources: Sequence[str],
    window: Window,
    *,
    raw_queries: dict[str, str] | None = None,
    pages: int = DEFAULT_PAGES,
    limit: int = 10,
) -> TrialResult:
    """Try ``query`` on each of ``sources``; a source that needs a missing key is skipped."""
    trials, skipped, found = [], [], []
    for name in sources:
        variable = missing_key(name, connectors.settings.source(name))
        if variable is not None:
            skipped.append((name, f"needs an API key: export {variable}=..."))
            continue
        trial, matched = try_source(
            connectors, name, query, window, raw_query=(raw_queries or {}).get(name), pages=pages
        )
        trials.append(trial)
        found.extend(matched)
    return TrialResult(
        query=query.text,
        window=window,
        pages_budget=pages,
        sources=tuple(trials),
        skipped=tuple(skipped),
        studies=merge_studies(query, found),
        limit=limit,
    )


def trial_window(now: datetime, *, days: int | None, since: datetime | None) -> Window:
    if since is not None:
        return Window(min(since, now), now)
    return Window(now - timedelta(days=days or DEFAULT_DAYS), now)


def _percent(x: float) -> str:
    return f"{round(100 * x)} %"


def render_trial(result: TrialResult) -> str:
    """The plain-text report `harvester try` prints."""
    from harvester.digests.assemble import citation_line, format_authors, record_links
    from harvester.digests.render import fill
    from harvester.registry import SOURCE_LABELS

    w = result.window
    out = [
        f"query: {result.query}",
        f"window: {w.start:%Y-%m-%d %H:%M} → {w.end:%Y-%m-%d %H:%M} UTC "
        f"({result.days:.0f} days); budget: {result.pages_budget} pages per source; "
        "nothing is stored or sent",
        "",
    ]
    for s in result.sources:
        out.append(f"{s.source}:")
        sent = "raw query (raw_queries)" if s.raw else "sent"
        out.append(f"  {sent}: {s.term or '(no search parameter)'}")
        if s.broader:
            out.append("  broader than the query: " + "; ".join(s.broader))
        announced = "?" if s.announced is None else f"{s.announced:,}"
        share = f" ({_percent(s.matched / s.fetched)})" if s.fetched else ""
        out.append(
            f"  announced {announced} · fetched {s.fetched:,} "
            f"({_n(s.pages, 'page')}, {_n(s.requests, 'request')}) · matched locally "
            f"{s.matched:,}{share}"
        )
        if s.error is not None:
            out.append(f"  ✗ stopped: {s.error}")
        elif s.complete:
            out.append("  covered: the whole window")
        else:
            cov = "an unknown share" if s.coverage is None else f"≈ {_percent(s.coverage)}"
            left = (
                f"{s.not_fetched:,} announced records not fetched"
                if s.not_fetched is not None
                else "the rest not fetched"
            )
            out.append(
                f"  covered: {cov} of the window (stopped at the budget of "
                f"{result.pages_budget} pages: {left}; raise --pages to read more)"
            )
        if s.unreadable:
            out.append(f"  {s.unreadable} records could not be read (skipped)")
    for name, reason in result.skipped:
        out.append(f"{name}: skipped: {reason}")
    out.append("")
    out.append(
        f"merged: {len(result.studies):,} studies after dedup ({result.matched:,} matched records)"
    )
    per_week = result.per_week
    if per_week is not None:
        sign = "≥" if result.lower_bound else "≈"
        out.append(f"{sign} {per_week:.1f} new studies per week (from {result.days:.0f} days)")
    shown = result.studies[: result.limit]
    if shown:
        out.append("")
        out.append(f"first {len(shown)} in digest order:")
    for n, study in enumerate(shown, start=1):
        r = study.record
        out.append("")
        out.append(f"[{n}] {r.title or '(untitled)'}")
        for line in (format_authors(r.authors), citation_line(r)):
            if line:
                out.append(f"    {line}")
        out.extend(f"    {link}" for link in record_links(r)[:2])
        out.append("    found in " + " · ".join(SOURCE_LABELS.get(s, s) for s in study.sources))
        if study.why:
            out.append("    why: " + fill(study.why, indent=" " * 9).lstrip())
    return "\n".join(out) + "\n"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
