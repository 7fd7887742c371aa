"""The view of a digest: what a reader sees of each study, before any format is chosen.

::

    Digest (assemble.assemble_digest) ──▶ view_digest ──▶ DigestView ─ SectionView ─ ItemView:
        per item the linked title, citation, badges, sources, abstract excerpt (AbstractPart,
        Segment) and *why it is here* (Reason: the Query.match hits, highlighted)

The abstract excerpt and the highlighting are :mod:`.excerpt`'s (its Segment and
AbstractPart are re-exported here). render (text, HTML) and blocks (Slack) read these values;
they import nothing back. Pure: no store, no network, no Jinja. URLs are only kept as links
when they are http(s) (:func:`safe_url`), so a record cannot smuggle a ``javascript:`` link
into a digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from harvester.digests.assemble import (
    Digest,
    DigestItem,
    citation_line,
    format_authors,
    record_links,
)
from harvester.digests.excerpt import AbstractPart, Segment, excerpt, highlight, nfc
from harvester.digests.notices import UpdateNote
from harvester.query.match import Hit, Match
from harvester.query.syntax import Query

EXCERPT_CHARS = 1500
"""How much of an abstract the HTML and Slack digests show; the full text is one click away."""

FIELD_NAMES: Mapping[str, str] = {
    "title": "title",
    "abstract": "abstract",
    "keywords": "MeSH/keywords",
}


@dataclass(frozen=True, slots=True)
class Reason:
    """A query term that matched, the fields it matched in, and the record's own words for it
    when they differ from the term (``depress*`` → "depressive", "depression")."""

    term: str
    fields: tuple[str, ...]
    forms: tuple[str, ...]

    @property
    def places(self) -> str:
        """Where it matched, for readers: "title, abstract, MeSH/keywords"."""
        return ", ".join(FIELD_NAMES.get(f, f) for f in self.fields)

    def describe(self) -> str:
        where = self.places
        forms = f" ({', '.join(repr(f) for f in self.forms)})" if self.forms else ""
        return f"{self.term} in {where}{forms}"


@dataclass(frozen=True, slots=True)
class ItemView:
    """What a reader sees of one study."""

    item: DigestItem
    number: int
    title: tuple[Segment, ...]
    url: str | None
    links: tuple[str, ...]
    authors: str
    citation: str
    badges: tuple[str, ...]
    found_in: str
    abstract: tuple[AbstractPart, ...]
    truncated: bool
    reasons: tuple[Reason, ...]
    published_in: str | None
    journal_version: str | None
    also_published_as: tuple[str, ...] = ()

    @property
    def title_text(self) -> str:
        return "".join(s.text for s in self.title)

    @property
    def why(self) -> str:
        """One line: the matched terms and where ("nlp in abstract · …")."""
        return " · ".join(r.describe() for r in self.reasons)


@dataclass(frozen=True, slots=True)
class SectionView:
    topic: str
    query: str | None
    items: tuple[ItemView, ...]
    more: int
    more_until: datetime | None = None
    feed: str | None = None
    next_at: datetime | None = None
    per_digest: int | None = None

    @property
    def heading(self) -> str:
        """ "nlp: 50 new studies (550 more waiting)" """
        text = f"{self.topic}: {_count(len(self.items))}"
        return f"{text} ({self.more} more waiting)" if self.more else text

    @property
    def note(self) -> str | None:
        """What this digest holds back, when it comes and where to read it now (None when
        nothing waits)."""
        return backlog_note(self)


@dataclass(frozen=True, slots=True)
class DigestView:
    subscription: str
    created: datetime
    sections: tuple[SectionView, ...]
    updates: tuple[UpdateNote, ...] = ()  # studies sent before, and what happened to them

    @property
    def waiting(self) -> int:
        return sum(s.more for s in self.sections)

    @property
    def count(self) -> int:
        return sum(len(s.items) for s in self.sections)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(s.topic for s in self.sections)


def view_digest(
    digest: Digest,
    *,
    queries: Mapping[str, Query] | None = None,
    excerpt_chars: int = EXCERPT_CHARS,
) -> DigestView:
    """The digest as readers see it; ``queries`` (topic → query) explain why each item is there."""
    queries = queries or {}
    sections = []
    for section in digest.sections:
        query = queries.get(section.topic)
        items = tuple(
            view_item(item, number=n, query=query, excerpt_chars=excerpt_chars)
            for n, item in enumerate(section.items, start=1)
        )
        sections.append(
            SectionView(
                section.topic,
                query.text if query else None,
                items,
                section.more,
                more_until=section.more_until,
                feed=section.feed if safe_url(section.feed) else None,
                next_at=digest.next_at,
                per_digest=digest.per_digest,
            )
        )
    return DigestView(digest.subscription, digest.created, tuple(sections), digest.updates)


def _count(n: int) -> str:
    return "nothing new" if n == 0 else f"{n} new {'study' if n == 1 else 'studies'}"


def _when(moment: datetime) -> str:
    return f"{moment:%a %d %b %Y %H:%M} {moment.tzname() or ''}".rstrip()


FEED_COMMAND_LIMIT = 200  # `harvester feed`'s default --limit


def feed_command(topic: str, studies: int) -> str:
    """How to read a topic's studies now when no feed is published: the feed command."""
    limit = f" --limit {studies}" if studies > FEED_COMMAND_LIMIT else ""
    return f"harvester feed {topic} -o {topic}.atom{limit}"


def backlog_note(section: SectionView) -> str | None:
    """ "550 more studies wait for later digests: the next one (Sun 08 Jun 2025 03:00 CEST)
    brings up to 50, the last of them comes by Sun 24 Aug 2025 03:00 CEST. Read them all now:
    URL" — or, with no feed published, the command that writes it."""
    if not section.more:
        return None
    n = section.more
    text = f"{n} more {'study waits' if n == 1 else 'studies wait'} for later digests"
    if section.next_at is not None:
        text += f": the next one ({_when(section.next_at)})"
        if section.per_digest:
            text += f" brings up to {section.per_digest}"
        if section.more_until is not None and section.more_until != section.next_at:
            text += f", the last of them comes by {_when(section.more_until)}"
    text += ". Read them all now: "
    total = n + len(section.items)
    return text + (section.feed or feed_command(section.topic, total))


def view_item(
    item: DigestItem,
    *,
    number: int = 1,
    query: Query | None = None,
    excerpt_chars: int = EXCERPT_CHARS,
) -> ItemView:
    record = item.record
    hits = _hits(item, query)
    links = tuple(u for u in record_links(record) if safe_url(u))
    abstract, truncated = excerpt(record, _matched(hits, "abstract"), excerpt_chars)
    published_in: str | None = getattr(item, "published_in", None)  # a later DigestItem field
    journal_version = (
        f"https://doi.org/{record.published_doi}"
        if record.published_doi and record.published_doi != record.ids.doi
        else None
    )
    return ItemView(
        item=item,
        number=number,
        title=highlight(nfc(record.title) or "(untitled)", _matched(hits, "title")),
        url=links[0] if links else None,
        links=links,
        authors=format_authors(record.authors),
        citation=citation_line(record),
        badges=item.badges,
        found_in=item.found_in,
        abstract=abstract,
        truncated=truncated,
        reasons=_reasons(hits),
        published_in=published_in,
        journal_version=journal_version,
        also_published_as=item.also_published_as,
    )


def abstract_excerpt(
    item: DigestItem, query: Query | None, excerpt_chars: int
) -> tuple[tuple[AbstractPart, ...], bool]:
    """The abstract excerpt :func:`view_item` shows, alone (fit.py sizes each step's)."""
    return excerpt(item.record, _matched(_hits(item, query), "abstract"), excerpt_chars)


def _hits(item: DigestItem, query: Query | None) -> tuple[Hit, ...]:
    # assemble_digest already matched the record; a DigestItem that keeps the Match saves the
    # second evaluation (the costliest step of rendering a large digest)
    match: Match | None = item.match
    if match is None and query is not None:
        match = query.match(item.record)
    return match.hits if match is not None else ()


def safe_url(url: str | None) -> bool:
    """Only http(s) URLs become links (a record's ``url`` could say ``javascript:…``)."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _matched(hits: Iterable[Hit], field: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(h.matched for h in hits if h.field == field))


def _reasons(hits: Iterable[Hit]) -> tuple[Reason, ...]:
    fields: dict[str, list[str]] = {}
    forms: dict[str, list[str]] = {}
    for hit in hits:  # in query order, then title, abstract, keywords (Match.hits)
        fields.setdefault(hit.term, [])
        if hit.field not in fields[hit.term]:
            fields[hit.term].append(hit.field)
        form = hit.matched.lower()
        bare = hit.term.strip('"').rstrip("*").lower()
        if form != bare and form not in forms.setdefault(hit.term, []):
            forms[hit.term].append(form)
    return tuple(Reason(t, tuple(f), tuple(forms.get(t, ()))) for t, f in fields.items())


__all__ = [
    "EXCERPT_CHARS",
    "AbstractPart",
    "DigestView",
    "ItemView",
    "Reason",
    "Segment",
    "SectionView",
    "abstract_excerpt",
    "backlog_note",
    "feed_command",
    "highlight",
    "safe_url",
    "view_digest",
    "view_item",
]
