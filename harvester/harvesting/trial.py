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
(which opens the store). What the run found, its JSON and its text report are in
:mod:`harvester.harvesting.trial_report`.
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
from harvester.harvesting.trial_report import SourceTrial, Study, TrialResult
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
