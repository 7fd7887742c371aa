"""Digests: what is due for a subscription, as a value, and its rendering.

Pure: :func:`assemble_digest` turns stored works into a ranked digest value, which
:mod:`harvester.render` renders and :mod:`harvester.delivery` stores, sends or previews.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from harvester.query import Match, Query
from harvester.records import Author, Record
from harvester.store.repository import StoredWork

SOURCE_LABELS: Mapping[str, str] = {
    "pubmed": "PubMed",
    "europepmc": "Europe PMC",
    "crossref": "Crossref",
    "openalex": "OpenAlex",
    "arxiv": "arXiv",
    "biorxiv": "bioRxiv",
    "medrxiv": "medRxiv",
    "semanticscholar": "Semantic Scholar",
}
SEPARATOR = " ◽ "
WRAP = 76


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
    topic: str
    items: tuple[DigestItem, ...]
    more: int = 0


@dataclass(frozen=True, slots=True)
class Digest:
    subscription: str
    created: datetime
    sections: tuple[DigestSection, ...]

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


def citation_line(record: Record) -> str:
    """Venue ◽ year ◽ vol(issue) ◽ pp pages, leaving out what is unknown."""
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
        parts.append(f"pp {record.pages}")
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


def assemble_digest(
    subscription: str,
    works: Sequence[StoredWork],
    *,
    queries: Mapping[str, Query],
    now: datetime,
    max_items: int | None = None,
    published: Collection[int] = (),
) -> Digest:
    """Group ``works`` (with their topics) into ranked sections, one per topic of ``queries``.

    ``published``: works whose other version (their preprint) was sent before; they carry a
    "now published in <venue>" note."""
    sections = []
    for topic, query in queries.items():
        items = []
        for work in works:
            if work.topic != topic:
                continue
            match = query.match(work.record)
            items.append(
                DigestItem(
                    work_id=work.id,
                    topic=topic,
                    record=work.record,
                    sources=work.sources,
                    score=match.score if match is not None else 0.0,
                    match=match,
                    published_in=(work.record.venue or "a journal")
                    if work.id in published and work.record.type != "preprint"
                    else None,
                )
            )
        ranked = rank(items)
        keep = len(ranked) if max_items is None else max_items
        sections.append(DigestSection(topic, tuple(ranked[:keep]), max(0, len(ranked) - keep)))
    return Digest(subscription=subscription, created=now, sections=tuple(sections))
