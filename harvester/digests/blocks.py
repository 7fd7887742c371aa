"""A digest as Slack Block Kit messages, split to stay inside Slack's limits.

Slack's rules this module follows (docs.slack.dev, "Formatting text" and "Block Kit reference"):

- mrkdwn text escapes exactly three characters: ``&`` → ``&amp;``, ``<`` → ``&lt;``,
  ``>`` → ``&gt;``; a link is ``<url|text>``;
- a message holds at most 50 blocks; a section's text at most 3,000 characters; a header's
  plain_text at most 150; a context block at most 10 elements;
- besides the documented limits, Slack refuses messages whose blocks hold roughly 13,000
  characters in all (``msg_blocks_too_long``; slackapi/bolt-js#2509), so a message is also
  capped at :data:`MESSAGE_CHARS`.

Each study is one section (title link, authors, citation, badges, why it is here, abstract
excerpt) and one context line (sources, notes); a study is never split across two messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from harvester.digests.view import AbstractPart, DigestView, ItemView

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
MESSAGE_CHARS = 12_000
NOTE_CHARS = 700
"""Room kept in a topic's first message for the note on studies held back for later digests."""
SLACK_EXCERPT_CHARS = 600
"""Slack shows an abstract excerpt, not the abstract: a channel is read at a glance."""
MIN_PART = 60
"""An abstract section with less room than this is left out rather than cut to a stub."""

Block = dict[str, Any]


def escape(text: str) -> str:
    """mrkdwn text with Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, text: str) -> str:
    """``<url|text>``; the URL's own ``|``, ``<``, ``>`` and spaces are percent-encoded so they
    cannot end the link early, and the text is escaped."""
    safe = quote(url, safe="/:?#[]@!$&'()*+,;=%~-._")
    return f"<{escape(safe)}|{escape(text)}>"


def slack_payloads(
    view: DigestView,
    *,
    abstracts: bool = True,
    feedback: Callable[[str, int], tuple[str, str]] | None = None,
) -> tuple[dict[str, Any], ...]:
    """The incoming-webhook payloads for a digest, in order; each within Slack's limits.
    ``feedback`` (topic, work id) → (relevant URL, not relevant URL): the web interface's
    signed links, added to each study's context line. Their length depends only on what they
    sign (the token's timestamp has a fixed width), so every try of one digest packs the same
    parts."""
    title = _title(view)
    units: list[list[Block]] = []
    padding: dict[int, tuple[int, int]] = {}
    for n, section in enumerate(view.sections):
        head: list[Block] = [] if n == 0 else [{"type": "divider"}]
        head.append(_header(section.heading))
        if section.query:
            head.append(_context([f"query: `{escape(section.query)}`"]))
        # the note on held-back studies changes between two tries of one digest (more
        # studies arrive): it is packed as if it always took NOTE_CHARS and one block, so a
        # retry splits the digest into the same parts and skips exactly those posted
        padding[len(units)] = (1, NOTE_CHARS)
        note = section.note
        if note:
            if section.feed:  # the URL as a link, the rest escaped
                note = escape(note.removesuffix(section.feed)) + link(section.feed, "the feed")
            else:
                note = escape(note)
            text = f":hourglass: {_clip(note, NOTE_CHARS - 20)}"
            head.append(_context([text]))
            padding[len(units)] = (0, NOTE_CHARS - len(text))
        items = [
            _item_blocks(item, abstracts=abstracts, feedback=feedback) for item in section.items
        ]
        # a topic's heading travels with its first study, never alone at a message's end
        units.append(head + items[0] if items else [*head, _section("Nothing new.")])
        units.extend(items[1:])
    if not units:
        units.append([_section("Nothing new.")])
    messages = _pack(units, reserve=1, padding=padding)
    total = len(messages)
    payloads = []
    for k, blocks in enumerate(messages, start=1):
        label = title if total == 1 else f"{title} (part {k} of {total})"
        payloads.append(
            {
                # the top-level text is what notifications and screen readers show
                "text": escape(label),
                "blocks": [_context([f"*{escape(label)}*"]), *blocks],
                "unfurl_links": False,
                "unfurl_media": False,
            }
        )
    return tuple(payloads)


def _title(view: DigestView) -> str:
    topics = ", ".join(view.topics) or "no topics"
    waiting = f" ({view.waiting} more waiting)" if view.waiting else ""
    return f"harvester: {_count(view.count)}{waiting} — {topics}"


def _count(n: int) -> str:
    return "nothing new" if n == 0 else f"{n} new {'study' if n == 1 else 'studies'}"


def _header(text: str) -> Block:
    if len(text) > HEADER_TEXT:
        text = text[: HEADER_TEXT - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": False}}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(texts: Sequence[str]) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": t} for t in texts[:CONTEXT_ELEMENTS]],
    }


def _item_blocks(
    item: ItemView,
    *,
    abstracts: bool,
    feedback: Callable[[str, int], tuple[str, str]] | None = None,
) -> list[Block]:
    title = _clip(item.title_text, 400)
    head = [f"*{link(item.url, title)}*" if item.url else f"*{escape(title)}*"]
    if item.badges:
        head[0] += " " + " ".join(f"`{b}`" for b in item.badges)
    if item.authors:
        head.append(escape(_clip(item.authors, 300)))
    if item.citation:
        head.append(f"_{escape(_clip(item.citation, 300))}_")
    if item.reasons:
        why = " · ".join(f"*{escape(r.term)}* in {escape(r.places)}" for r in item.reasons)
        head.append(f":mag: {_clip(why, 600)}")
    text = "\n".join(head)
    if abstracts and item.abstract:
        budget = SECTION_TEXT - len(text) - 2
        text += "\n>" + _abstract(item.abstract, budget).replace("\n", "\n>")
    context = [f"found in {escape(item.found_in)}"]
    if item.published_in:
        context.append(f"now published in {escape(item.published_in)}")
    if item.journal_version:
        context.append(link(item.journal_version, "journal version"))
    if item.also_published_as:
        context.append(f"also published as {escape('; '.join(item.also_published_as))}")
    if feedback is not None:
        relevant, not_relevant = feedback(item.item.topic, item.item.work_id)
        context.append(f"{link(relevant, 'relevant')} · {link(not_relevant, 'not relevant')}")
    return [_section(text[:SECTION_TEXT]), _context(context)]


def _abstract(parts: Iterable[AbstractPart], budget: int) -> str:
    """The excerpt's sections as "*LABEL* text" lines, escaped, shortened to fit ``budget``."""
    parts = list(parts)
    raw = [(p.label, p.text) for p in parts]
    hits = [s.text for p in parts for s in p.segments if s.hit]
    limit = SLACK_EXCERPT_CHARS
    while True:
        lines: list[str] = []
        shown: list[str] = []
        left = limit
        for label, body in raw:
            if left < MIN_PART:
                if lines and not lines[-1].endswith("…"):
                    lines[-1] += " …"
                break
            if len(body) > left:
                body = body[:left].rsplit(" ", 1)[0] + " …"
            left -= len(body)
            shown.append(body)
            lines.append(f"*{escape(label)}:* {escape(body)}" if label else escape(body))
        if hits and not any(h in b for h in hits for b in shown):
            # the "why" line says "in abstract": show the words around the term it matched
            lines.append(escape(_around(raw, hits[0])))
        text = "\n".join(lines)
        if len(text) <= budget or limit <= 0:
            return text[: max(budget, 0)]
        limit -= max(len(text) - budget, 50)  # escaping grew it: cut the raw text further


def _around(raw: Sequence[tuple[str | None, str]], term: str, context: int = 100) -> str:
    """ "… words around TERM …" from the first section holding ``term``."""
    for _label, body in raw:
        at = body.find(term)
        if at == -1:
            continue
        start = max(0, at - context)
        if start:
            start = body.find(" ", start, at) + 1 or at
        end = min(len(body), at + len(term) + context)
        if end < len(body):
            space = body.rfind(" ", at + len(term), end)
            end = space if space != -1 else at + len(term)
        lead, tail = ("… " if start else ""), ("" if end >= len(body) else " …")
        return f"{lead}{body[start:end].strip()}{tail}"
    return ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _chars(blocks: Iterable[Block]) -> int:
    total = 0
    for block in blocks:
        if "text" in block:
            total += len(block["text"]["text"])
        for element in block.get("elements", ()):
            total += len(element["text"])
    return total


def _pack(
    units: Sequence[list[Block]],
    *,
    reserve: int,
    padding: Mapping[int, tuple[int, int]] | None = None,
) -> list[list[Block]]:
    """Consecutive units into messages of at most MAX_BLOCKS (less ``reserve``) blocks and
    MESSAGE_CHARS characters; a unit is never split (one study's blocks stay together).
    ``padding``: unit index → (blocks, characters) it is counted as holding beyond its own."""
    padding = padding or {}
    messages: list[list[Block]] = []
    current: list[Block] = []
    blocks = chars = 0
    for index, unit in enumerate(units):
        extra_blocks, extra_chars = padding.get(index, (0, 0))
        size = _chars(unit) + extra_chars
        count = len(unit) + extra_blocks
        fits = blocks + count <= MAX_BLOCKS - reserve and chars + size <= MESSAGE_CHARS
        if current and not fits:
            messages.append(current)
            current, blocks, chars = [], 0, 0
        if not current and unit and unit[0]["type"] == "divider":
            unit = unit[1:]  # a message does not start with a divider
        current.extend(unit)
        blocks += count
        chars += size
    if current:
        messages.append(current)
    return messages
