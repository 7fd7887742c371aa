"""Digests: what is due for a subscription, as a value, and its rendering.

Pure: :func:`assemble_digest` turns stored works into a ranked digest value, which
:mod:`harvester.digests.render` renders and :mod:`harvester.digests.delivery` stores, sends
or previews.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from harvester.config.subscriptions import Cadence
from harvester.dedup.features import is_preprint
from harvester.query.match import Match
from harvester.query.syntax import Query
from harvester.records import Author, Record, StoredWork
from harvester.registry import SOURCE_LABELS

# U+00B7 MIDDLE DOT: in every mail font (U+25FD, used before, showed as a hollow box)
SEPARATOR = " · "
WRAP = 76
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PAGE_RANGE = re.compile(r"\s*[-\u2010-\u2015]\s*")
_SHORT_PAGE = re.compile(r"[1-9][0-9]{0,3}|[ivxlcdm]+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One study in a digest, with the fields a reader needs to decide whether to read it."""

    work_id: int
    topic: str
    record: Record
    sources: tuple[str, ...]
    score: float
    match: Match | None = None  # why it is here (kept so rendering need not match again)
    published_in: str | None = None  # "now published in …" for a preprint sent before
    # "also published as …": the study's other versions (a preprint, a conference paper)
    also_published_as: tuple[str, ...] = ()

    @property
    def authors(self) -> str:
        return format_authors(self.record.authors)

    @property
    def citation(self) -> str:
        return citation_line(self.record)

    @property
    def links(self) -> tuple[str, ...]:
        return record_links(self.record)

    @property
    def found_in(self) -> str:
        return " · ".join(SOURCE_LABELS.get(s, s) for s in self.sources)

    @property
    def badges(self) -> tuple[str, ...]:
        kinds = {"preprint": "preprint", "review": "review", "retraction": "retracted"}
        return tuple(label for kind, label in kinds.items() if self.record.type == kind)

    @property
    def abstract_paragraphs(self) -> tuple[str, ...]:
        return abstract_paragraphs(self.record)


@dataclass(frozen=True, slots=True)
class DigestSection:
    """One topic's studies in a digest. ``more``: the topic's studies held back (waiting for
    later digests); ``more_until``: when the last of them comes at this pace; ``feed``: where
    they can all be read now (the topic's published Atom feed), if configured."""

    topic: str
    items: tuple[DigestItem, ...]
    more: int = 0
    more_until: datetime | None = None
    feed: str | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    """``next_at``: when the subscription's next digest is due; ``per_digest``: how many of a
    topic's studies one digest carries (``max_items``)."""

    subscription: str
    created: datetime
    sections: tuple[DigestSection, ...]
    next_at: datetime | None = None
    per_digest: int | None = None

    @property
    def items(self) -> tuple[DigestItem, ...]:
        return tuple(i for s in self.sections for i in s.items)

    @property
    def empty(self) -> bool:
        return not any(s.items for s in self.sections)


def format_authors(authors: Sequence[Author], *, first: int = 3) -> str:
    """ "Yip JWC, Chan KL, Lee A, et al." – the first three, then et al."""
    names = [a.display for a in authors[:first]]
    if len(authors) > first:
        names.append("et al.")
    return ", ".join(names)


def pages_label(pages: str) -> str:
    """ "pp 262-269", "p 37", or "article 026002" for an article number (a journal that
    numbers articles instead of paging them: e33693, 026002, 110671 are not page counts)."""
    pages = pages.strip()
    if len(_PAGE_RANGE.split(pages)) == 2:
        return f"pp {pages}"
    if _SHORT_PAGE.fullmatch(pages):
        return f"p {pages}"
    return f"article {pages}"


def citation_line(record: Record) -> str:
    """Venue · year · vol(issue) · pp pages (or the article number), leaving out what is
    unknown."""
    parts: list[str] = []
    if record.venue:
        parts.append(record.venue)
    if record.year:
        parts.append(str(record.year))
    if record.volume or record.issue:
        parts.append(
            f"{record.volume or ''}({record.issue})" if record.issue else record.volume or ""
        )
    if record.pages:
        parts.append(pages_label(record.pages))
    return SEPARATOR.join(parts)


def record_links(record: Record) -> tuple[str, ...]:
    """The DOI link first (the version of record), then PubMed / PMC / arXiv pages."""
    ids = record.ids
    links = []
    if ids.doi:
        links.append(f"https://doi.org/{ids.doi}")
    if ids.pmid:
        links.append(f"https://pubmed.ncbi.nlm.nih.gov/{ids.pmid}/")
    if ids.arxiv:
        links.append(f"https://arxiv.org/abs/{ids.arxiv}")
    if not links and record.url:
        links.append(record.url)
    return tuple(links)


def abstract_paragraphs(record: Record, *, width: int = WRAP) -> tuple[str, ...]:
    """The abstract, one wrapped paragraph per section, headings kept ("METHODS: …")."""
    if record.abstract_sections:
        texts = [f"{s.label}: {s.text}" if s.label else s.text for s in record.abstract_sections]
    elif record.abstract:
        texts = record.abstract.split("\n\n")
    else:
        return ()
    return tuple(
        textwrap.fill(
            t, width=width, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False
        )
        for t in texts
        if t.strip()
    )


def rank(items: Sequence[DigestItem]) -> list[DigestItem]:
    """Most relevant first (title matches above abstract matches), then the newest."""
    newest_first = sorted(items, key=lambda i: i.record.published or "", reverse=True)
    return sorted(newest_first, key=lambda i: i.score, reverse=True)  # stable: keeps dates


def work_item(
    work: StoredWork,
    topic: str,
    query: Query,
    *,
    published_in: str | None = None,
    versions: Sequence[Record] = (),
) -> DigestItem:
    """A stored work as an item of ``topic``, scored by the topic's query (digests and the
    web's topic pages alike); ``versions``: the records of its study's other versions."""
    match = query.match(work.record)
    return DigestItem(
        work_id=work.id,
        topic=topic,
        record=work.record,
        sources=work.sources,
        score=match.score if match is not None else 0.0,
        match=match,
        published_in=published_in,
        also_published_as=tuple(dict.fromkeys(version_label(v) for v in versions)),
    )


def version_label(record: Record) -> str:
    """How a digest names another version of a study: "The VLDB Journal (2002)", "bioRxiv
    (2020)", "a preprint (2022)"."""
    preprint = is_preprint(record)
    name = record.venue or ("a preprint" if preprint else "another version")
    if preprint and record.venue and "rxiv" not in record.venue.lower():
        name += " preprint"
    return f"{name} ({record.year})" if record.year else name


def assemble_digest(
    subscription: str,
    works: Sequence[StoredWork],
    *,
    queries: Mapping[str, Query],
    now: datetime,
    max_items: int | None = None,
    published: Collection[int] = (),
    versions: Mapping[int, Sequence[Record]] | None = None,
) -> Digest:
    """Group ``works`` (with their topics) into ranked sections, one per topic of ``queries``.

    ``published``: works whose other version (their preprint) was sent before; they carry a
    "now published in <venue>" note. ``versions``: the other versions of works that have them
    (:meth:`~harvester.store.repository.Repository.versions`), for "also published as …"."""
    versions = versions or {}
    sections = []
    for topic, query in queries.items():
        items = []
        for work in works:
            if work.topic != topic:
                continue
            items.append(
                work_item(
                    work,
                    topic,
                    query,
                    published_in=(work.record.venue or "a journal")
                    if work.id in published and work.record.type != "preprint"
                    else None,
                    versions=versions.get(work.id, ()),
                )
            )
        ranked = rank(items)
        keep = len(ranked) if max_items is None else max_items
        sections.append(DigestSection(topic, tuple(ranked[:keep]), max(0, len(ranked) - keep)))
    return Digest(subscription=subscription, created=now, sections=tuple(sections))


def next_due(
    cadence: Cadence,
    zone: ZoneInfo,
    after: datetime,
    *,
    count: int = 1,
    interval: timedelta | None = None,
) -> list[datetime]:
    """The next ``count`` times (after ``after``) a digest of ``cadence`` is due, tz-aware in
    ``zone``. "immediate" digests go out as the daemon finds studies, every ``interval``
    (its digest tick) at the latest; without an interval their times are unknown (empty)."""
    if cadence.kind == "immediate":
        if interval is None:
            return []
        return [(after + interval * k).astimezone(zone) for k in range(1, count + 1)]
    local = after.astimezone(zone)
    day = local.date()
    out: list[datetime] = []
    while len(out) < count:
        candidate = datetime(
            day.year, day.month, day.day, cadence.hour, cadence.minute, tzinfo=zone
        )
        weekday_ok = cadence.kind == "daily" or (
            cadence.weekday is not None and WEEKDAYS[candidate.weekday()] == cadence.weekday[:3]
        )
        if weekday_ok and candidate > after:
            out.append(candidate)
        day += timedelta(days=1)
    return out


def with_backlog(
    digest: Digest,
    waiting: Mapping[str, int],
    *,
    cadence: Cadence,
    zone: ZoneInfo,
    per_digest: int,
    feeds: Mapping[str, str | None] | None = None,
    interval: timedelta | None = None,
) -> Digest:
    """``digest`` saying, per topic, how many studies wait after it (``waiting``), when the
    next digest comes and when the last of them will have come at ``per_digest`` a digest,
    and where to read them all now (``feeds``: topic → its feed URL)."""
    feeds = feeds or {}
    upcoming = next_due(cadence, zone, digest.created, interval=interval)
    sections = []
    for section in digest.sections:
        more = waiting.get(section.topic, section.more)
        until = None
        if more:
            needed = -(-more // per_digest)
            times = next_due(cadence, zone, digest.created, count=needed, interval=interval)
            until = times[-1] if times else None
        sections.append(
            DigestSection(section.topic, section.items, more, until, feeds.get(section.topic))
        )
    return Digest(
        digest.subscription,
        digest.created,
        tuple(sections),
        next_at=upcoming[0] if upcoming else None,
        per_digest=per_digest,
    )
