"""An abstract cut to an excerpt, and text cut into segments with the matched words marked.

The excerpt keeps the abstract's section headings, cuts at a word boundary, drops a section
that would be a stub, and when the only matched term lies beyond the cut adds "… the words
around it …" (the "why" line says "in abstract": the reader must see it). Pure: imports only
the Record.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from harvester.records import Record

MIN_PART = 60
"""An abstract section with less room left than this is dropped, not cut to a stub."""


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


def nfc(text: str | None) -> str | None:
    # Hit.matched is NFC (query.py), so the text it is found in must be NFC too
    return unicodedata.normalize("NFC", text) if text else text


def excerpt(
    record: Record, matched: tuple[str, ...], limit: int
) -> tuple[tuple[AbstractPart, ...], bool]:
    """The abstract's sections, headings kept, cut at a word boundary after ``limit`` chars."""
    if record.abstract_sections:
        pieces = [(s.label, s.text) for s in record.abstract_sections if s.text.strip()]
    elif record.abstract:
        pieces = [(None, p) for p in record.abstract.split("\n\n") if p.strip()]
    else:
        return (), False
    pieces = [(label, nfc(" ".join(text.split())) or "") for label, text in pieces]
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


__all__ = ["MIN_PART", "AbstractPart", "Segment", "excerpt", "highlight", "nfc"]
