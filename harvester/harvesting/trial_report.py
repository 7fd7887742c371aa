"""What `harvester try` found, as values, as JSON (``--json``) and as the plain-text report.

:func:`harvester.harvesting.trial.run_trial` makes a :class:`TrialResult`; nothing here
fetches or stores anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harvester.records import Record
from harvester.sources import Window


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
