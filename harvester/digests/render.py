"""A digest made ready to send: plain text, HTML and Slack Block Kit, from one view of it.

::

    Digest (assemble.assemble_digest) ──▶ view.view_digest ──▶ DigestView
      ──▶ render_digest: text and HTML here (Jinja2), Slack payloads from blocks
      ──▶ RenderedDigest(subject, text, html, slack payloads, key)
      ──▶ notifiers (email, slack) send it; ``--dry-run`` writes it (write_preview)

Everything here is pure: no store, no network. HTML is rendered by Jinja2 with autoescape on,
so record text (titles, abstracts) can never become markup; the view only keeps http(s) URLs as
links (view.safe_url).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from harvester.digests.assemble import WRAP, Digest, DigestItem
from harvester.digests.blocks import slack_payloads
from harvester.digests.fit import HTML_LIMIT, FittedHtml, fit_html, token_room
from harvester.digests.notices import updates_subject
from harvester.digests.view import DigestView
from harvester.query.syntax import Query

SUBJECT_TITLE_CHARS = 110


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
    if view.updates:
        return one_line(updates_subject(view.updates, n, waiting, topics))
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
    fitted = fitted_html(
        digest, queries=queries, abstracts=abstracts, html_limit=html_limit, web=web
    )
    view, html, refs = fitted.view, fitted.html, _refs(digest)
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
        html_fits=fitted.fits,
        items=items,
        web=web,
    )


def fitted_html(
    digest: Digest,
    *,
    queries: Mapping[str, Query] | None = None,
    abstracts: bool = True,
    html_limit: int | None = HTML_LIMIT,
    web: str | None = None,
) -> FittedHtml:
    """The digest's HTML with the longest abstract excerpts that fit ``html_limit`` bytes (the
    shortest when none do): what :func:`render_digest` sends, without the text and Slack."""
    refs = _refs(digest)
    if web and html_limit is not None:
        # the placeholders become signed tokens per recipient, each a little longer
        html_limit -= token_room(digest)

    def render(view: DigestView) -> str:
        return render_html(view, abstracts=abstracts, web=web, refs=refs)

    part = environment().get_template("parts.html.j2").module.abstract_part  # type: ignore[attr-defined]
    return fit_html(
        digest, render, part, queries=queries, abstracts=abstracts, html_limit=html_limit
    )


def _refs(digest: Digest) -> dict[tuple[str, int], int]:
    return {(i.topic, i.work_id): n for n, i in enumerate(digest.items)}


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
    "RenderedDigest",
    "digest_key",
    "fitted_html",
    "link_label",
    "one_line",
    "render_digest",
    "render_html",
    "render_text",
    "subject_line",
    "write_preview",
]
