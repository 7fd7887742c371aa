"""The portable topic query: parse it and match it on a Record locally.

Syntax (DESIGN.md "One query, the same meaning everywhere")::

    ("self-help group*" OR "support group*" OR forum*) AND (online OR internet) NOT adolescen*

- a *term* is a word of Unicode letters and digits, joined by ``-`` or apostrophes
  (``self-help``, ``covid-19``, ``Parkinson's``); ``"double quotes"`` make a phrase;
- a trailing ``*`` truncates a term, or the last word of a phrase (``"self-help group*"``);
  the stem must have at least 4 letters or digits (PubMed's own rule, the strictest API);
- ``AND``, ``OR``, ``NOT`` are operators only in upper case; unquoted ``and``/``Or``/``not``
  are refused as ambiguous (``anxiety or depression`` must not silently mean three ANDed
  terms); quote them (``"or"``) to search for the word;
- precedence ``NOT`` > ``AND`` > ``OR``; adjacent operands are ANDed; parentheses group;
- ``NOT`` only excludes: it must be a conjunct beside a positive operand (``a NOT b``,
  ``a AND (NOT b)``), never a query, an ``OR`` branch or a ``NOT`` on its own, because no API
  can search "everything except".

Local matching is token based: case, diacritics (NFKD) and punctuation are folded away, so
``self-help`` matches "Self help" and "self-help"; phrase words must be adjacent in order and
a truncated word matches any token starting with its stem.

The translations to each API's syntax are in :mod:`harvester.query.translate`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from harvester.errors import QuerySyntaxError
from harvester.query.match import (
    Hit,
    Match,
    RecordIndex,
    in_query_order,
    index_record,
    term_hits,
)
from harvester.records import Record
from harvester.text.fold import TOKEN, fold_tokens

MIN_STEM = 4
"""Fewest letters/digits before a ``*``. PubMed Help: "At least four characters must be
provided in the truncated term." Shorter stems are also too broad to be useful."""

MAX_NESTING = 100
"""Deepest nesting of parentheses and ``NOT`` a query may have. The parser, the matcher and
the translators recurse once per level, so a deeper query (a pasted 50,000 ``(``) would
exhaust Python's stack; real queries nest a handful of levels."""

_JOINERS = "-'\u2019"  # may join words inside a term: self-help, Parkinson's, Parkinson’s

# --- the syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase; ``text`` is as typed, whitespace collapsed, without quotes or ``*``."""

    text: str
    phrase: bool = False
    truncated: bool = False

    def __str__(self) -> str:
        star = "*" if self.truncated else ""
        return f'"{self.text}{star}"' if self.phrase else f"{self.text}{star}"


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | And | Or | Not


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed portable query: the source ``text`` and the syntax tree ``root``."""

    text: str
    root: Node
    _patterns: dict[Term, tuple[tuple[str, ...], bool]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        patterns = {t: (tuple(fold_tokens(t.text)), t.truncated) for t in self.terms()}
        object.__setattr__(self, "_patterns", patterns)

    def __str__(self) -> str:
        return self.text

    def terms(self) -> tuple[Term, ...]:
        """Every distinct term, negated ones included, in order of appearance."""
        return tuple(dict.fromkeys(_walk_terms(self.root, negated=False, keep_negated=True)))

    def positive_terms(self) -> tuple[Term, ...]:
        """The distinct terms that are not under any ``NOT``, in order of appearance."""
        return tuple(dict.fromkeys(_walk_terms(self.root, negated=False, keep_negated=False)))

    def match(self, record: Record | RecordIndex) -> Match | None:
        """The query evaluated on the record's title, abstracts and keywords; None if no match.

        Pass a :class:`RecordIndex` (:func:`index_record`) to test one record against many
        queries while tokenizing it only once.
        """
        index = record if isinstance(record, RecordIndex) else index_record(record)
        cache: dict[Term, list[Hit]] = {}
        ok, hits = self._evaluate(self.root, index, cache)
        terms = [str(t) for t in self.terms()]
        return Match(hits=tuple(in_query_order(hits, terms))) if ok else None

    def _evaluate(
        self, node: Node, index: RecordIndex, cache: dict[Term, list[Hit]]
    ) -> tuple[bool, list[Hit]]:
        if isinstance(node, Term):
            if node not in cache:
                words, prefix = self._patterns[node]
                cache[node] = term_hits(index, str(node), words, prefix)
            return bool(cache[node]), cache[node]
        if isinstance(node, Not):
            ok, _ = self._evaluate(node.child, index, cache)
            return not ok, []
        hits: list[Hit] = []
        if isinstance(node, And):
            for child in node.children:
                ok, found = self._evaluate(child, index, cache)
                if not ok:
                    return False, []
                hits.extend(found)
            return True, hits
        any_ok = False
        for child in node.children:
            ok, found = self._evaluate(child, index, cache)
            if ok:
                any_ok = True
                hits.extend(found)
        return any_ok, hits


def _walk_terms(node: Node, *, negated: bool, keep_negated: bool) -> Iterator[Term]:
    if isinstance(node, Term):
        if keep_negated or not negated:
            yield node
    elif isinstance(node, Not):
        yield from _walk_terms(node.child, negated=True, keep_negated=keep_negated)
    else:
        for child in node.children:
            yield from _walk_terms(child, negated=negated, keep_negated=keep_negated)


# --- parsing ---------------------------------------------------------------------------------


_Kind = Literal["TERM", "AND", "OR", "NOT", "(", ")"]
OPERATORS: dict[str, _Kind] = {"AND": "AND", "OR": "OR", "NOT": "NOT"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    pos: int
    term: Term | None = None


def _is_term_char(c: str) -> bool:
    return c.isalnum() or c in _JOINERS or unicodedata.category(c).startswith("M")


def _check_word(word: str, pos: int, query: str, *, last: bool) -> bool:
    """Validate one word (``*`` allowed at its end if ``last``); return whether it is truncated."""

    def fail(reason: str, at: int) -> QuerySyntaxError:
        return QuerySyntaxError(reason, query=query, position=pos + at)

    star = word.find("*")
    if star != -1 and (star != len(word) - 1 or not last):
        raise fail("'*' may only end a term (or the last word of a phrase)", star)
    core = word.rstrip("*")
    if not core:
        raise fail("'*' must follow a word stem", 0)
    if core[0] == "-":
        raise fail("a term cannot start with '-' (use NOT to exclude a term)", 0)
    if not core[0].isalnum():
        raise fail("a term must start with a letter or digit", 0)
    if core[-1] == "-":
        raise fail("a term cannot end with '-'", len(core) - 1)
    if star == -1:
        return False
    if not core[-1].isalnum():
        raise fail("'*' must follow a letter or digit", star)
    stem = list(TOKEN.finditer(core))[-1]
    if sum(c.isalnum() for c in stem.group()) < MIN_STEM:
        raise fail(
            f"truncation stem {stem.group()!r} is too short (at least {MIN_STEM} "
            "letters, or it matches too much)",
            stem.start(),
        )
    return True


def _phrase(query: str, quote: int, end: int) -> Term:
    words: list[str] = []
    truncated = False
    matches = list(re.finditer(r"\S+", query[quote + 1 : end]))
    if not matches:
        raise QuerySyntaxError("empty phrase", query=query, position=quote)
    for n, m in enumerate(matches):
        pos = quote + 1 + m.start()
        for k, c in enumerate(m.group()):
            if c != "*" and not _is_term_char(c):
                raise QuerySyntaxError(
                    f"unexpected character {c!r} in a phrase", query=query, position=pos + k
                )
        last = n == len(matches) - 1
        truncated = _check_word(m.group(), pos, query, last=last)
        words.append(m.group().rstrip("*"))
    return Term(" ".join(words), phrase=True, truncated=truncated)


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    opened: list[int] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            if c == "(":
                opened.append(i)
            elif not opened:
                raise QuerySyntaxError("unmatched ')'", query=query, position=i)
            else:
                opened.pop()
            tokens.append(_Token("(" if c == "(" else ")", i))
            i += 1
        elif c == '"':
            end = query.find('"', i + 1)
            if end == -1:
                raise QuerySyntaxError("unterminated quote", query=query, position=i)
            tokens.append(_Token("TERM", i, _phrase(query, i, end)))
            i = end + 1
        elif c == "*" or _is_term_char(c):
            j = i
            while j < n and (query[j] == "*" or _is_term_char(query[j])):
                j += 1
            word = query[i:j]
            if word in OPERATORS:
                tokens.append(_Token(OPERATORS[word], i))
            elif word.upper() in OPERATORS:  # "a or b" would silently mean a AND or AND b
                raise QuerySyntaxError(
                    f"{word!r} is not an operator: write {word.upper()} for the operator, "
                    f'or "{word}" to search for the word',
                    query=query,
                    position=i,
                )
            else:
                truncated = _check_word(word, i, query, last=True)
                tokens.append(_Token("TERM", i, Term(word.rstrip("*"), truncated=truncated)))
            i = j
        else:
            hint = " (use straight double quotes)" if c in "\u201c\u201d\u201e" else ""
            raise QuerySyntaxError(f"unexpected character {c!r}{hint}", query=query, position=i)
    if opened:
        raise QuerySyntaxError("unclosed '('", query=query, position=opened[-1])
    return tokens


class _Parser:
    """Recursive descent: or := and (OR and)*; and := unary ((AND)? unary)*;
    unary := NOT unary | '(' or ')' | TERM."""

    def __init__(self, query: str, tokens: list[_Token]) -> None:
        self.query = query
        self.tokens = tokens
        self.i = 0
        self.depth = 0  # open parentheses and NOTs around the current token
        self.not_positions: dict[int, int] = {}  # id(Not node) -> offset of its NOT

    def error(self, reason: str, position: int) -> QuerySyntaxError:
        return QuerySyntaxError(reason, query=self.query, position=position)

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def operand_follows(self, op: _Token) -> None:
        nxt = self.peek()
        if nxt is None or nxt.kind in ("AND", "OR", ")"):
            raise self.error(f"{op.kind} needs a term after it", op.pos)

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.i += 1
            self.operand_follows(tok)
            children.append(self.parse_and())
        return _flat(Or, children)

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while (tok := self.peek()) is not None and tok.kind in ("AND", "NOT", "TERM", "("):
            if tok.kind == "AND":
                self.i += 1
                self.operand_follows(tok)
            children.append(self.parse_unary())
        return _flat(And, children)

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("a term is missing", len(self.query))
        self.i += 1
        if tok.kind == "TERM" and tok.term is not None:
            return tok.term
        if tok.kind in ("NOT", "(") and self.depth >= MAX_NESTING:
            raise self.error(
                f"nesting deeper than {MAX_NESTING} levels of parentheses and NOT", tok.pos
            )
        if tok.kind == "NOT":
            self.operand_follows(tok)
            self.depth += 1
            negation = Not(self.parse_unary())
            self.depth -= 1
            self.not_positions[id(negation)] = tok.pos
            return negation
        if tok.kind == "(":
            nxt = self.peek()
            if nxt is not None and nxt.kind == ")":
                raise self.error("empty parentheses", tok.pos)
            self.depth += 1
            node = self.parse_or()
            self.depth -= 1
            nxt = self.peek()
            if nxt is None or nxt.kind != ")":  # _lex balanced them; kept for safety
                raise self.error("unclosed '('", tok.pos)
            self.i += 1
            return node
        if tok.kind == ")":
            raise self.error("unmatched ')'", tok.pos)
        raise self.error(f"{tok.kind} needs a term before it", tok.pos)

    def misplaced_nots(self, node: Node, parent: Node | None) -> Iterator[int]:
        if isinstance(node, Not):
            beside_positive = isinstance(parent, And) and any(
                not isinstance(c, Not) for c in parent.children
            )
            if not beside_positive:
                yield self.not_positions[id(node)]
            yield from self.misplaced_nots(node.child, node)
        elif not isinstance(node, Term):
            for child in node.children:
                yield from self.misplaced_nots(child, node)


def _flat(kind: type[And] | type[Or], children: list[Node]) -> Node:
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(flat))


def parse_query(text: str) -> Query:
    """Parse a portable query; raise :class:`QuerySyntaxError` with the 0-based offset."""
    tokens = _lex(text)
    if not tokens:
        raise QuerySyntaxError("empty query", query=text, position=0)
    parser = _Parser(text, tokens)
    root = parser.parse_or()
    if (tok := parser.peek()) is not None:  # only a stray ')' can be left; _lex catches it
        raise parser.error(f"unexpected {tok.kind}", tok.pos)
    if bad := sorted(parser.misplaced_nots(root, None)):
        raise parser.error(
            "NOT needs a positive term beside it (write 'a NOT b'; NOT cannot stand alone, "
            "be an OR branch or follow another NOT)",
            bad[0],
        )
    return Query(text=text, root=root)
