"""A digest made ready to send: plain text, HTML and Slack Block Kit, from one view of it.

::

    Digest (digest.assemble_digest) ──▶ view_digest: per item the linked title, citation, badges,
        sources, abstract excerpt and *why it is here* (Query.match hits, highlighted)
      ──▶ render_digest ──▶ RenderedDigest(subject, text, html, slack payloads, key)
      ──▶ notifiers (email, slack) send it; ``--dry-run`` writes it (write_preview)

Everything here is pure: no store, no network. HTML is rendered by Jinja2 with autoescape on,
so record text (titles, abstracts) can never become markup; URLs are only linked when they are
http(s), so a record cannot smuggle a ``javascript:`` link into a digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email import quoprimime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from harvester.digests.assemble import (
    WRAP,
    Digest,
    DigestItem,
    citation_line,
    format_authors,
    record_links,
)
from harvester.digests.blocks import slack_payloads
from harvester.query.match import Hit, Match
from harvester.query.syntax import Query
from harvester.records import Record

EXCERPT_CHARS = 1500
"""How much of an abstract the HTML and Slack digests show; the full text is one click away."""
MIN_PART = 60
"""An abstract section with less room left than this is dropped, not cut to a stub."""
SUBJECT_TITLE_CHARS = 110
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


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """Everything a channel sends for one digest; also what ``--dry-run`` shows.

    ``key`` is stable for one stored digest (deployment, subscription, digest id, items): the
    email Message-ID is built from it, so a digest re-sent after an outage carries the same
    Message-ID and receivers can drop the duplicate, while another database's digest never
    shares it. ``slack`` holds the Block Kit payloads, already split to Slack's limits.
    """

    subscription: str
    digest_id: str
    key: str
    created: datetime
    subject: str
    count: int
    topics: tuple[str, ...]
    work_ids: tuple[int, ...]
    text: str
    html: str
    slack: tuple[dict[str, Any], ...]
    html_fits: bool = True
    # (topic, work) of each study, in order: what the __HV_FB_n__ placeholders of the links
    # to the web interface name; ``web`` is its base URL when the digest carries such links
    items: tuple[tuple[str, int], ...] = ()
    web: str | None = None

    def slack_json(self) -> str:
        """The Slack payloads as one pretty JSON array (for ``--dry-run``)."""
        return json.dumps(list(self.slack), indent=2, ensure_ascii=False)


# --- the view --------------------------------------------------------------------------------


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


# --- rendering -------------------------------------------------------------------------------


def digest_key(
    subscription: str,
    digest_id: str,
    *,
    deployment: str = "",
    items: Iterable[tuple[str, int]] = (),
) -> str:
    """A short stable hash of the digest's identity (used in the Message-ID): the database's
    deployment id, the subscription, the outbox's digest number and the digest's items. The
    same stored digest always gets the same key (a re-send after a crash is recognisably the
    same message); a digest of another database, or with other studies, never does."""
    contents = ",".join(f"{topic}/{work}" for topic, work in sorted(items))
    identity = "\x00".join((deployment, subscription, digest_id, contents))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def default_digest_id(digest: Digest) -> str:
    """When the outbox has not numbered the digest: its time and its works identify it."""
    works = ",".join(str(i.work_id) for i in digest.items)
    return f"{digest.created.isoformat()}/{hashlib.sha256(works.encode()).hexdigest()[:12]}"


def subject_line(view: DigestView) -> str:
    """ "harvester: 12 new studies — topic-a, topic-b"; a lone study also names its title;
    studies held back for later digests are counted: "50 new studies (550 more waiting)".

    The result is one line whatever the records hold (control characters and line breaks
    become spaces): titles come from APIs and must not be able to add mail headers.
    """
    n = view.count
    topics = ", ".join(view.topics) or "no topics"
    waiting = f" ({view.waiting} more waiting)" if view.waiting else ""
    if n == 0:
        text = f"harvester: nothing new{waiting} — {topics}"
    else:
        text = f"harvester: {n} new {'study' if n == 1 else 'studies'}{waiting} — {topics}"
    if n == 1:
        (item,) = (i for s in view.sections for i in s.items)
        title = one_line(item.title_text)
        if len(title) > SUBJECT_TITLE_CHARS:
            title = title[: SUBJECT_TITLE_CHARS - 1].rstrip() + "…"
        text = f"{text}: {title}"
    return one_line(text)


def one_line(text: str) -> str:
    """Control, format and line/paragraph-separator characters as spaces, whitespace collapsed."""
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text
    )
    return " ".join(cleaned.split())


@cache
def environment() -> jinja2.Environment:
    """The templates; autoescape is on for every template (the HTML one is ``*.html.j2``,
    which ``select_autoescape(["html"])`` would miss), and off only where we render text."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harvester.digests", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


@cache
def _text_environment() -> jinja2.Environment:
    env = environment().overlay(autoescape=False)
    return env


LINK_LABELS: Mapping[str, str] = {
    "pubmed.ncbi.nlm.nih.gov": "PubMed",
    "arxiv.org": "arXiv",
    "doi.org": "DOI",
    "www.biorxiv.org": "bioRxiv",
    "www.medrxiv.org": "medRxiv",
}


def link_label(url: str) -> str:
    """A short name for a secondary link ("PMID 36328850" for a PubMed page, "arXiv:2101.1")
    : the HTML shows names, not URLs, which keeps a 50-study digest under Gmail's clipping
    size."""
    parts = urlsplit(url)
    host = parts.netloc.lower()
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if host == "pubmed.ncbi.nlm.nih.gov" and last:
        return f"PMID {last}"
    if host == "arxiv.org" and last:
        return f"arXiv:{last}"
    return LINK_LABELS.get(host, host or url)


def _ref(refs: Mapping[tuple[str, int], int] | None) -> Any:
    def ref(item: DigestItem) -> int:
        return (refs or {}).get((item.topic, item.work_id), -1)

    return ref


def render_html(
    view: DigestView,
    *,
    abstracts: bool = True,
    web: str | None = None,
    refs: Mapping[tuple[str, int], int] | None = None,
) -> str:
    """The HTML digest: table layout and inline CSS, as mail clients need. With ``web`` (the
    web interface's base URL) each study carries feedback links and the footer unsubscribe
    and topic-page links, with placeholders a sender fills per recipient."""
    template = environment().get_template("digest.html.j2")
    return template.render(
        view=view,
        abstracts=abstracts,
        subject=subject_line(view),
        link_label=link_label,
        web=web,
        ref=_ref(refs),
    )


def render_text(
    digest: Digest,
    view: DigestView,
    *,
    abstracts: bool = True,
    web: str | None = None,
    refs: Mapping[tuple[str, int], int] | None = None,
) -> str:
    """The plain-text digest: digest.txt.j2 plus why each study is there."""
    by_item = {(i.item.topic, i.item.work_id): i for s in view.sections for i in s.items}

    def explain(item: DigestItem) -> str:
        shown = by_item.get((item.topic, item.work_id))
        if shown is None or not shown.why:
            return ""
        # the template writes "    why: " first; wrap under it like the abstract paragraphs
        return fill(shown.why, indent=" " * 9).lstrip()

    def excerpt(item: DigestItem) -> tuple[str, ...]:
        # the same excerpt as the HTML part, so both parts of one email say the same
        shown = by_item.get((item.topic, item.work_id))
        if shown is None:
            return ()
        return tuple(
            fill(f"{p.label}: {p.text}" if p.label else p.text, indent="    ")
            for p in shown.abstract
        )

    sections = {s.topic: s for s in view.sections}

    def heading(topic: str) -> str:
        return sections[topic].heading

    def note(topic: str) -> str:
        text = sections[topic].note
        return fill(text, indent="") if text else ""

    template = _text_environment().get_template("digest.txt.j2")
    return template.render(
        digest=digest,
        abstracts=abstracts,
        explain=explain,
        excerpt=excerpt,
        heading=heading,
        note=note,
        web=web,
        ref=_ref(refs),
    )


def fill(text: str, *, indent: str, width: int = WRAP) -> str:
    """Greedy wrapping at spaces only (never inside a hyphenated word, a DOI or a URL);
    a plain loop, since textwrap is the slowest part of a large digest."""
    lines: list[str] = []
    line = indent
    for word in text.split():
        if len(line) + len(word) + (len(line) > len(indent)) > width and len(line) > len(indent):
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if len(line) > len(indent) else line + word
    lines.append(line)
    return "\n".join(lines)


HTML_LIMIT = 98_000
"""Bytes the HTML part of a digest may take on the wire (quoted-printable, as the email
notifier sends it below 256 KB). Gmail clips a message whose HTML passes about 102 KB and
hides the rest behind a link, so the budget stays under that with room for the part's
headers."""
TOKEN_ROOM = 140
"""Bytes a signed web token may add to a link over its placeholder (quoted-printable)."""
EXCERPT_STEPS = (EXCERPT_CHARS, 1000, 700, 450, 300, 200)
"""Abstract excerpts tried, longest first, until the HTML fits :data:`HTML_LIMIT`."""


def render_digest(
    digest: Digest,
    *,
    queries: Mapping[str, Query] | None = None,
    digest_id: str | int | None = None,
    abstracts: bool = True,
    deployment: str = "",
    html_limit: int | None = HTML_LIMIT,
    web: str | None = None,
    slack_feedback: Callable[[str, int], tuple[str, str]] | None = None,
) -> RenderedDigest:
    """Render ``digest`` for every channel. ``digest_id`` is the outbox's id for it and
    ``deployment`` the database's id (both go into the Message-ID). Abstract excerpts are
    shortened until the HTML fits ``html_limit`` bytes; ``html_fits`` says whether that was
    enough (else the sender should carry fewer studies). ``slack_feedback`` gives each
    study's signed feedback URLs for the Slack payloads (see :func:`blocks.slack_payloads`)."""
    ident = str(digest_id) if digest_id is not None else default_digest_id(digest)
    items = tuple((i.topic, i.work_id) for i in digest.items)
    refs = {pair: n for n, pair in enumerate(items)}
    if web and html_limit is not None:
        # the placeholders become signed tokens per recipient, each about this much longer
        html_limit -= TOKEN_ROOM * (2 * len(items) + 1 + len(digest.sections))
    view = view_digest(digest, queries=queries)
    html = render_html(view, abstracts=abstracts, web=web, refs=refs)
    fits = html_limit is None or html_size(html) <= html_limit
    for chars in EXCERPT_STEPS[1:]:
        if fits or not abstracts:
            break
        view = view_digest(digest, queries=queries, excerpt_chars=chars)
        html = render_html(view, abstracts=abstracts, web=web, refs=refs)
        fits = html_limit is None or html_size(html) <= html_limit
    return RenderedDigest(
        subscription=digest.subscription,
        digest_id=ident,
        key=digest_key(
            digest.subscription,
            ident,
            deployment=deployment,
            items=((i.topic, i.work_id) for i in digest.items),
        ),
        created=digest.created,
        subject=subject_line(view),
        count=view.count,
        topics=view.topics,
        work_ids=tuple(i.work_id for i in digest.items),
        text=render_text(digest, view, abstracts=abstracts, web=web, refs=refs),
        html=html,
        slack=slack_payloads(view, abstracts=abstracts, feedback=slack_feedback),
        html_fits=fits,
        items=items,
        web=web,
    )


def html_size(html: str) -> int:
    """The HTML's size as the email notifier encodes it (quoted-printable of its UTF-8)."""
    encoded = quoprimime.body_encode(html.encode("utf-8").decode("latin-1"))
    return len(encoded) + encoded.count("\n")  # CRLF line ends on the wire


def write_preview(rendered: RenderedDigest, directory: Path) -> tuple[Path, ...]:
    """``--dry-run``: write the text, the HTML and the Slack JSON to ``directory``; nothing is
    sent. File names start with the digest key, so several digests can share a directory."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"digest-{rendered.key}"
    files = {
        directory / f"{stem}.txt": f"Subject: {rendered.subject}\n\n{rendered.text}",
        directory / f"{stem}.html": rendered.html,
        directory / f"{stem}.slack.json": rendered.slack_json() + "\n",
    }
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    return tuple(files)


__all__ = [
    "AbstractPart",
    "DigestView",
    "ItemView",
    "Reason",
    "RenderedDigest",
    "Segment",
    "SectionView",
    "backlog_note",
    "digest_key",
    "highlight",
    "one_line",
    "render_digest",
    "render_html",
    "render_text",
    "safe_url",
    "subject_line",
    "view_digest",
    "write_preview",
]
