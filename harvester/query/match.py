"""The local evaluator's half of a query: a record's fields tokenized once (RecordIndex), the
terms found in them (Hit) and why a record matched (Match, with its score).

:meth:`harvester.query.syntax.Query.match` walks the syntax tree and asks this module where each
term occurs. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from harvester.records import Record
from harvester.text.fold import TOKEN, fold_token

Field = Literal["title", "abstract", "keywords"]

FIELD_WEIGHTS: dict[Field, float] = {"title": 3.0, "abstract": 2.0, "keywords": 1.0}
"""What one term found in a field adds to :attr:`Match.score`: title > abstract > keywords."""

_ASCII_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Hit:
    """One positive term found in one field; ``matched`` is the record's own text that matched
    (NFC-normalized), for highlighting."""

    term: str
    field: Field
    matched: str


@dataclass(frozen=True, slots=True)
class Match:
    """Why a record matched: the positive terms that hit, per field, in query order."""

    hits: tuple[Hit, ...]

    @property
    def score(self) -> float:
        """Sum of :data:`FIELD_WEIGHTS` over distinct (term, field) pairs; ranks digests."""
        return sum(
            FIELD_WEIGHTS[f] for f in {(h.term, h.field): h.field for h in self.hits}.values()
        )


class _FieldIndex:
    """One field's tokens; "" separates segments (keywords, abstracts) so no phrase spans two."""

    __slots__ = ("tokens", "found", "firsts", "texts", "positions")

    def __init__(self, segments: Iterable[str | None]) -> None:
        self.tokens: list[str] = []
        self.found: list[re.Match[str] | None] = []  # where each token is in its segment
        self.firsts: list[int] = []  # index of each segment's first token
        self.texts: list[str] = []
        for segment in segments:
            if not segment:
                continue
            if self.tokens:
                self.tokens.append("")
                self.found.append(None)
            self.firsts.append(len(self.tokens))
            if segment.isascii():  # fast path: offsets of the lower-cased text are the same
                self.texts.append(segment)
                matches = list(_ASCII_TOKEN.finditer(segment.lower()))
                self.tokens.extend([m.group() for m in matches])
                self.found.extend(matches)
                continue
            segment = unicodedata.normalize("NFC", segment)
            self.texts.append(segment)
            for m in TOKEN.finditer(segment.replace("_", " ")):  # \w includes "_"
                if folded := fold_token(m.group()):
                    self.tokens.append(folded)
                    self.found.append(m)
        self.positions: dict[str, list[int]] = {}
        for i, token in enumerate(self.tokens):
            if token:
                self.positions.setdefault(token, []).append(i)

    def find(self, words: tuple[str, ...], prefix: bool) -> list[str]:
        """The distinct texts where ``words`` occur as adjacent tokens (last one a prefix)."""
        if not words:
            return []
        n = len(words)
        if n == 1 and prefix:
            starts = sorted(
                i for t, ps in self.positions.items() if t.startswith(words[0]) for i in ps
            )
        else:
            starts = self.positions.get(words[0], [])
        found: list[str] = []
        tokens = self.tokens
        for i in starts:
            if n > 1:
                end = i + n - 1
                if end >= len(tokens) or tokens[i + 1 : end] != list(words[1:-1]):
                    continue
                last = tokens[end]
                if not (last.startswith(words[-1]) if prefix else last == words[-1]):
                    continue
            first, last_found = self.found[i], self.found[i + n - 1]
            assert first is not None and last_found is not None  # never a separator
            segment = self.texts[bisect_right(self.firsts, i) - 1]
            text = segment[first.start() : last_found.end()]
            if text not in found:
                found.append(text)
        return found


class RecordIndex:
    """A record's title, abstracts and keywords, tokenized once for matching."""

    __slots__ = ("title", "abstract", "keywords")

    def __init__(self, title: _FieldIndex, abstract: _FieldIndex, keywords: _FieldIndex) -> None:
        self.title = title
        self.abstract = abstract
        self.keywords = keywords

    def fields(self) -> tuple[tuple[Field, _FieldIndex], ...]:
        return (("title", self.title), ("abstract", self.abstract), ("keywords", self.keywords))


def index_record(record: Record) -> RecordIndex:
    """Tokenize the fields a query is matched on: title; abstract, its sections and the
    abstracts in other languages; keywords (author keywords and MeSH headings)."""
    abstracts: list[str | None] = [record.abstract]
    for section in record.abstract_sections:
        if section.text and section.text not in (record.abstract or ""):
            abstracts.append(section.text)
    for other in record.other_abstracts:
        abstracts.append(other.text)
        abstracts.extend(s.text for s in other.sections if s.text not in other.text)
    return RecordIndex(
        _FieldIndex([record.title]), _FieldIndex(abstracts), _FieldIndex(record.keywords)
    )


def term_hits(index: RecordIndex, term: str, words: tuple[str, ...], prefix: bool) -> list[Hit]:
    """Where the term (shown as ``term``; folded ``words``, the last a prefix when ``prefix``)
    occurs in the record's fields, as Hits in field order."""
    return [
        Hit(term, name, matched)
        for name, fld in index.fields()
        for matched in fld.find(words, prefix)
    ]


def in_query_order(hits: list[Hit], terms: Sequence[str]) -> list[Hit]:
    """The distinct ``hits`` ordered by their term's place in ``terms``, then by field."""
    rank = {t: i for i, t in enumerate(terms)}
    fields: tuple[Field, ...] = ("title", "abstract", "keywords")
    unique = list(dict.fromkeys(hits))
    return sorted(unique, key=lambda h: (rank[h.term], fields.index(h.field)))  # stable
