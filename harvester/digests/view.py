"""The view of a digest: what a reader sees of each study, before any format is chosen.

::

    Digest (assemble.assemble_digest) ──▶ view_digest ──▶ DigestView ─ SectionView ─ ItemView:
        per item the linked title, citation, badges, sources, abstract excerpt (AbstractPart,
        Segment) and *why it is here* (Reason: the Query.match hits, highlighted)

render (text, HTML) and blocks (Slack) read these values; they import nothing back. Pure: no
store, no network, no Jinja. URLs are only kept as links when they are http(s)
(:func:`safe_url`), so a record cannot smuggle a ``javascript:`` link into a digest.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

from harvester.digests.assemble import (
    Digest,
    DigestItem,
    citation_line,
    format_authors,
    record_links,
)
from harvester.query.syntax import Hit, Match, Query
from harvester.records import Record

EXCERPT_CHARS = 1500
"""How much of an abstract the HTML and Slack digests show; the full text is one click away."""
MIN_PART = 60
"""An abstract section with less room left than this is dropped, not cut to a stub."""

FIELD_NAMES: Mapping[str, str] = {
    "title": "title",
    "abstract": "abstract",
    "keywords": "MeSH/keywords",
}


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of text; ``hit`` when it is what a query term matched (shown highlighted)."""

    text: str
    hit: bool = False


@dataclass(frozen=True, slots=True)
class AbstractPart:
    """One section of the abstract excerpt: its heading (None if unlabelled) and its text."""

    label: str | None
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


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
    return DigestView(digest.subscription, digest.created, tuple(sections))


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
    # assemble_digest already matched the record; a DigestItem that keeps the Match saves the
    # second evaluation (the costliest step of rendering a large digest)
    match: Match | None = item.match
    if match is None and query is not None:
        match = query.match(record)
    hits = match.hits if match is not None else ()
    links = tuple(u for u in record_links(record) if safe_url(u))
    abstract, truncated = _excerpt(record, _matched(hits, "abstract"), excerpt_chars)
    published_in: str | None = getattr(item, "published_in", None)  # a later DigestItem field
    journal_version = (
        f"https://doi.org/{record.published_doi}"
        if record.published_doi and record.published_doi != record.ids.doi
        else None
    )
    return ItemView(
        item=item,
        number=number,
        title=highlight(_nfc(record.title) or "(untitled)", _matched(hits, "title")),
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
    )


def safe_url(url: str | None) -> bool:
    """Only http(s) URLs become links (a record's ``url`` could say ``javascript:…``)."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def highlight(text: str, matched: Iterable[str]) -> tuple[Segment, ...]:
    """``text`` cut into segments, the matched words marked; whole words only, any case."""
    words = sorted({m for m in matched if m}, key=len, reverse=True)
    if not words or not text:
        return (Segment(text),) if text else ()
    pattern = _pattern(tuple(words))
    out: list[Segment] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append(Segment(text[pos : m.start()]))
        out.append(Segment(m.group(), hit=True))
        pos = m.end()
    if pos < len(text):
        out.append(Segment(text[pos:]))
    return tuple(out)


@cache
def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _nfc(text: str | None) -> str | None:
    # Hit.matched is NFC (query.py), so the text it is found in must be NFC too
    return unicodedata.normalize("NFC", text) if text else text


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


def _excerpt(
    record: Record, matched: tuple[str, ...], limit: int
) -> tuple[tuple[AbstractPart, ...], bool]:
    """The abstract's sections, headings kept, cut at a word boundary after ``limit`` chars."""
    if record.abstract_sections:
        pieces = [(s.label, s.text) for s in record.abstract_sections if s.text.strip()]
    elif record.abstract:
        pieces = [(None, p) for p in record.abstract.split("\n\n") if p.strip()]
    else:
        return (), False
    pieces = [(label, _nfc(" ".join(text.split())) or "") for label, text in pieces]
    parts: list[AbstractPart] = []
    left = limit
    for index, (label, text) in enumerate(pieces):
        if left < MIN_PART and parts:  # no stub sections ("RESULTS: The …"); mark the cut
            last = parts[-1]
            parts[-1] = AbstractPart(last.label, (*last.segments, Segment(" …")))
            return _with_match(parts, pieces[index:], matched, limit), True
        cut = len(text) > left
        if cut:
            shown = text[:left].rsplit(" ", 1)[0].rstrip(" ,;:")
            rest = text[len(shown) :]
            parts.append(AbstractPart(label, highlight(shown + " …", matched)))
            return _with_match(parts, [(label, rest), *pieces[index + 1 :]], matched, limit), True
        parts.append(AbstractPart(label, highlight(text, matched)))
        left -= len(text)
    return tuple(parts), False


SNIPPET_CONTEXT = 120
"""Characters kept on each side of a matched term shown from beyond the excerpt's cut."""


def _with_match(
    parts: list[AbstractPart],
    rest: list[tuple[str | None, str]],
    matched: tuple[str, ...],
    limit: int,
) -> tuple[AbstractPart, ...]:
    """The excerpt, plus "… words around the term …" when the only matched term of the
    abstract lies beyond the cut: the "why" line says "in abstract", so the reader must see it."""
    if not matched or any(seg.hit for part in parts for seg in part.segments):
        return tuple(parts)
    # a short excerpt (a large digest) gets a short snippet
    context = max(40, min(SNIPPET_CONTEXT, limit // 4))
    pattern = _pattern(tuple(sorted(set(matched), key=len, reverse=True)))
    for label, text in rest:
        found = pattern.search(text)
        if found is None:
            continue
        start = max(0, found.start() - context)
        end = min(len(text), found.end() + context)
        if start > 0:  # whole words only
            start = text.find(" ", start, found.start()) + 1 or found.start()
        if end < len(text):
            space = text.rfind(" ", found.end(), end)
            end = space if space != -1 else found.end()
        snippet = text[start:end].strip(" ,;:")
        lead = "… " if start > 0 else ""
        tail = " …" if end < len(text) else ""
        return (*parts, AbstractPart(label, highlight(f"{lead}{snippet}{tail}", matched)))
    return tuple(parts)


__all__ = [
    "EXCERPT_CHARS",
    "AbstractPart",
    "DigestView",
    "ItemView",
    "Reason",
    "Segment",
    "SectionView",
    "backlog_note",
    "feed_command",
    "highlight",
    "safe_url",
    "view_digest",
    "view_item",
]
