"""Indexed matching: many topics' queries on one record, without evaluating every pair.

::

    index = TopicIndex.build({"ppd": parse_query("postpartum AND depress*"), ...})
    for record in records:                       # each record is tokenized once
        topics = index.matching(record)          # ["ppd", ...], in the topics' order
        details = index.matches(record)          # {"ppd": Match(...)}: the evaluator's own

A *presearcher*: from each query's syntax tree alone it derives the words a matching record
must contain, files the query under them in an inverted index, and for a record looks up
only the topics filed under the record's own tokens. Every candidate is then screened on the
set of query words the record contains, and the ones that may hold are confirmed by the exact
evaluator (:meth:`Query.match`), so the result is the evaluator's on every pair, by
construction; ``tests/test_presearch.py`` checks it on every recorded record.

What a query needs (its *keys*; a key is a folded word, exact or a truncation prefix):

- a term needs every word of it: ``depress*`` a token starting with ``depress``,
  ``"self-help group*"`` the tokens ``self`` and ``help`` and one starting with ``group``;
- ``A OR B`` needs what A needs or what B needs (the union of their keys);
- ``A AND B`` needs both; the query is filed under the cheapest operand's keys (fewest,
  longest words: a long word is rarer than a short one, a prefix matches more than a word);
- ``NOT A`` bounds nothing (a record without A's words satisfies it). A query that needs
  nothing (its root a ``NOT``, which :func:`parse_query` refuses but a hand-built
  :class:`Query` may hold) is a candidate for every record.

The screen (:mod:`harvester.query.screen`) evaluates each candidate's tree on the keys
present in the record as two bounds, *may hold* and *certainly holds*. A candidate that cannot
hold is dropped; one that certainly holds (its deciding terms single words, whose presence is
exactly what the evaluator tests) is a match for :meth:`TopicIndex.matching` without
evaluating it; the rest are evaluated. :meth:`TopicIndex.matches` evaluates every candidate
that may hold, because it returns the evaluator's :class:`Match` (hits for highlighting and
scoring).

The record's tokens are the evaluator's own (:func:`index_record`, the same folding of case,
diacritics and punctuation), read once per record; the words of the queries are folded by the
same :func:`fold_tokens` the evaluator uses for them. Pure: no I/O; an index is immutable
once built except for a bounded cache of token → keys, safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from harvester.query.match import Match, RecordIndex, index_record
from harvester.query.screen import AllOf, AnyOf, NoneOf, Screen, Verdict, Words, compile_screen
from harvester.query.syntax import And, Node, Not, Query, Term
from harvester.records import Record
from harvester.text.fold import fold_tokens

K = TypeVar("K", bound=Hashable)

CACHE_LIMIT = 500_000
"""Most distinct record tokens whose keys are remembered (then the cache starts afresh): a
day's records hold a few hundred thousand distinct tokens; each entry is a token and a
tuple, most of them the shared empty tuple."""

# Function words make poor keys however long they are; a query naming one ("quality of
# life") is filed under its other words.
_COMMON = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into"),
        *("is", "it", "its", "of", "on", "or", "our", "that", "the", "their", "this"),
        *("to", "was", "we", "were", "with"),
    }
)


# --- what each term needs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Word:
    """One key: a folded word, or the stem of a truncation (``prefix``)."""

    text: str
    prefix: bool


def _term_words(term: Term) -> tuple[_Word, ...]:
    """The words the evaluator looks for (``Query._patterns``): every word exact, the last
    one a prefix when truncated."""
    words = fold_tokens(term.text)
    return tuple(_Word(w, term.truncated and i == len(words) - 1) for i, w in enumerate(words))


def _cost(word: _Word) -> float:
    """A guess at how often the word occurs: lower is rarer, the better key."""
    base = 1.0 if word.text in _COMMON else 0.5 ** max(0, len(word.text) - 3)
    return base * (8.0 if word.prefix else 1.0)


class _Compiler:
    """Numbers the queries' words and compiles each tree into its filing keys and screen."""

    def __init__(self) -> None:
        self.ids: dict[_Word, int] = {}

    def key(self, word: _Word) -> int:
        return self.ids.setdefault(word, len(self.ids))

    def screen(self, node: Node) -> Screen:
        if isinstance(node, Term):
            words = _term_words(node)
            return Words(tuple(self.key(w) for w in words), single=len(words) == 1)
        if isinstance(node, Not):
            return NoneOf(self.screen(node.child))
        kind = AllOf if isinstance(node, And) else AnyOf
        return kind(tuple(self.screen(c) for c in node.children))

    def filing(self, node: Node) -> tuple[frozenset[int], float] | None:
        """Keys at least one of which a record must contain for ``node`` to hold, with their
        summed cost; None when nothing bounds it (a NOT, or an OR with a NOT-only branch)."""
        if isinstance(node, Term):
            words = _term_words(node)
            if not words:  # folds to nothing: the evaluator never finds it
                return frozenset(), 0.0
            best = min(words, key=_cost)
            return frozenset({self.key(best)}), _cost(best)
        if isinstance(node, Not):
            return None
        found = [self.filing(c) for c in node.children]
        if isinstance(node, And):
            bounded = [f for f in found if f is not None]
            return min(bounded, key=lambda f: (f[1], len(f[0]))) if bounded else None
        if any(f is None for f in found):
            return None
        keys = frozenset().union(*(f[0] for f in found if f is not None))
        return keys, sum(f[1] for f in found if f is not None)


@dataclass(slots=True)
class MatchStats:
    """Counts a caller may pass to :meth:`TopicIndex.matching` to see the index's work: per
    record, the topics filed under its words (``filed``), those whose screen says they may
    hold (``screened``), those the evaluator ran on (``evaluated``), and the matches."""

    records: int = 0
    filed: int = 0
    screened: int = 0
    evaluated: int = 0
    matched: int = 0


# --- the index -----------------------------------------------------------------------------


class TopicIndex(Generic[K]):
    """Topics' queries indexed by the words a matching record must contain.

    Build it once per set of topics (:meth:`build`); it answers the same as evaluating every
    topic's query on every record, in the order the topics were given.
    """

    __slots__ = (
        "topics",
        "_queries",
        "_screens",
        "_postings",
        "_always",
        "_exact",
        "_prefixes",
        "_lengths",
        "_cache",
        "_by_topic",
    )

    def __init__(
        self,
        topics: tuple[K, ...],
        queries: tuple[Query, ...],
        screens: tuple[Verdict, ...],
        postings: dict[int, tuple[int, ...]],
        always: tuple[int, ...],
        ids: Mapping[_Word, int],
    ) -> None:
        self.topics = topics
        self._queries = queries
        self._screens = screens
        self._postings = postings  # key -> positions of the topics filed under it
        self._always = always  # positions of the topics no key bounds
        self._exact = {w.text: k for w, k in ids.items() if not w.prefix}
        self._prefixes = {w.text: k for w, k in ids.items() if w.prefix}
        self._lengths = sorted({len(p) for p in self._prefixes})
        self._cache: dict[str, tuple[int, ...]] = {}
        self._by_topic = dict(zip(topics, queries, strict=True))

    @classmethod
    def build(cls, topics: Mapping[K, Query]) -> TopicIndex[K]:
        """Index ``topics`` (topic id → parsed query)."""
        compiler = _Compiler()
        names = tuple(topics)
        queries = tuple(topics[n] for n in names)
        screens = tuple(compile_screen(compiler.screen(q.root)) for q in queries)
        filed: dict[int, list[int]] = {}
        always: list[int] = []
        for position, query in enumerate(queries):
            filing = compiler.filing(query.root)
            if filing is None:
                always.append(position)
                continue
            for key in filing[0]:
                filed.setdefault(key, []).append(position)
        postings = {k: tuple(ps) for k, ps in filed.items()}
        return cls(names, queries, screens, postings, tuple(always), compiler.ids)

    def __len__(self) -> int:
        return len(self.topics)

    def query(self, topic: K) -> Query:
        """The query indexed for ``topic``."""
        return self._by_topic[topic]

    # --- a record's keys and candidates ---

    def _keys_of(self, token: str) -> tuple[int, ...]:
        keys = self._cache.get(token)
        if keys is None:
            found = []
            if (exact := self._exact.get(token)) is not None:
                found.append(exact)
            for length in self._lengths:
                if length > len(token):
                    break
                if (stem := self._prefixes.get(token[:length])) is not None:
                    found.append(stem)
            keys = tuple(found)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache = {}
            self._cache[token] = keys
        return keys

    def present(self, record: RecordIndex) -> set[int]:
        """The keys (numbered query words) the record's tokens contain."""
        tokens: set[str] = set()
        for _, fld in record.fields():
            tokens.update(fld.positions)
        present: set[int] = set()
        for token in tokens:
            if keys := self._keys_of(token):
                present.update(keys)
        return present

    def _screened(
        self, record: RecordIndex, stats: MatchStats | None = None
    ) -> Iterator[tuple[int, bool]]:
        """(topic position, certainly holds) for every topic whose query may hold, in order."""
        present = self.present(record)
        filed: set[int] = set(self._always)
        postings = self._postings
        for key in present:
            if (positions := postings.get(key)) is not None:
                filed.update(positions)
        if stats is not None:
            stats.records += 1
            stats.filed += len(filed)
        screens = self._screens
        for position in sorted(filed):
            if verdict := screens[position](present):
                yield position, verdict == 2

    def candidates(self, record: Record | RecordIndex) -> list[K]:
        """The topics whose query may hold on the record: those :meth:`matches` evaluates."""
        index = record if isinstance(record, RecordIndex) else index_record(record)
        return [self.topics[p] for p, _ in self._screened(index)]

    # --- matching ---

    def matching(self, record: Record | RecordIndex, stats: MatchStats | None = None) -> list[K]:
        """The topics whose query matches the record, in the topics' order."""
        index = record if isinstance(record, RecordIndex) else index_record(record)
        queries = self._queries
        if stats is None:
            return [
                self.topics[p]
                for p, certain in self._screened(index)
                if certain or queries[p].match(index) is not None
            ]
        found: list[K] = []
        for p, certain in self._screened(index, stats):
            stats.screened += 1
            if not certain:
                stats.evaluated += 1
            if certain or queries[p].match(index) is not None:
                found.append(self.topics[p])
        stats.matched += len(found)
        return found

    def matches(self, record: Record | RecordIndex) -> dict[K, Match]:
        """Each matching topic's :class:`Match` (the evaluator's own), in the topics' order."""
        index = record if isinstance(record, RecordIndex) else index_record(record)
        found: dict[K, Match] = {}
        for position, _ in self._screened(index):
            if (match := self._queries[position].match(index)) is not None:
                found[self.topics[position]] = match
        return found

    def partition(self, records: Iterable[Record]) -> dict[K, list[Record]]:
        """The records each topic matches, in the records' order; every topic is a key."""
        out: dict[K, list[Record]] = {t: [] for t in self.topics}
        for record in records:
            for topic in self.matching(record):
                out[topic].append(record)
        return out
