"""Real records and generated topic queries, for the indexed-matching tests and benchmark.

``recorded_records()`` parses every recorded response in ../shared/fixtures with its source's
own parser (pages a parser refuses, such as error documents, are left out) and keeps each
(source, source_id) once. ``vocabulary(records)`` is the title words, phrases (two or three
adjacent title words) and truncation stems of those records; ``generate_queries`` builds
portable queries from it (terms, phrases, truncation, OR groups, AND of concepts, NOT),
each checked by the real parser. ``varied(records, n)`` derives n records from the real ones
by replacing some title and abstract words with other words of the vocabulary: new
combinations of real words with real lengths, for the benchmark's volumes.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from harvester.errors import QuerySyntaxError
from harvester.query.syntax import Query, parse_query
from harvester.records import Record
from harvester.sources import SOURCES, Page
from harvester.text.fold import fold_tokens

SOURCE_DIRS = ("pubmed", "europepmc", "crossref", "openalex", "semanticscholar", "arxiv")
PREPRINTS = "biorxiv"  # bioRxiv and medRxiv share one parser and one fixture folder
_WORD = re.compile(r"[^\W_](?:[\w'\u2019-]*[^\W_])?")


def recorded_records(fixtures: Path) -> list[Record]:
    """Every record the sources' parsers read from the recordings, each (source, id) once."""
    found: dict[tuple[str, str], Record] = {}
    for name in (*SOURCE_DIRS, PREPRINTS):
        source = "biorxiv" if name == PREPRINTS else name
        for folder in (fixtures / name, fixtures / "updates" / name):
            for path in sorted(folder.glob("*")):
                page = Page(source=source, url=path.name, body=path.read_bytes())
                try:
                    result = SOURCES[source].parse(page)
                except Exception:  # an error document or a listing that holds no records
                    continue
                for record in result.records:
                    found.setdefault((record.source, record.source_id or ""), record)
    return list(found.values())


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]  # title words as written (case, hyphens, diacritics kept)
    cumulative: tuple[int, ...]  # running total of how many titles hold each word
    phrases: tuple[str, ...]  # 2-3 adjacent title words, as written
    stems: tuple[str, ...]  # truncation stems of 4+ letters, folded


def _plain(word: str) -> bool:
    """A word the parser takes as a term (not an operator, no underscore)."""
    return "_" not in word and word.upper() not in ("AND", "OR", "NOT")


def _usable(text: str) -> bool:
    try:
        parse_query(text)
    except QuerySyntaxError:
        return False
    return True


def vocabulary(records: list[Record]) -> Vocabulary:
    counts: Counter[str] = Counter()
    phrases: set[str] = set()
    for record in records:
        words = [w for w in _WORD.findall(record.title or "") if _plain(w)]
        counts.update(set(words))
        for n in (2, 3):
            for i in range(len(words) - n + 1):
                phrases.add(" ".join(words[i : i + n]))
    content = sorted(w for w in counts if len(fold_tokens(w)) == 1 and len(w) >= 3)
    stems = sorted(
        {f[:k] for w in content if len(f := fold_tokens(w)[0]) >= 6 for k in (4, 5, len(f) - 1)}
    )
    return Vocabulary(
        words=tuple(content),
        cumulative=tuple(itertools.accumulate(counts[w] for w in content)),
        phrases=tuple(sorted(phrases)),
        stems=tuple(s for s in stems if s.isalnum() and _usable(f"{s}*")),
    )


def _atom(rng: random.Random, vocab: Vocabulary) -> str:
    kind = rng.random()
    if kind < 0.45:  # a word, half the time drawn as often as titles use it
        if rng.random() < 0.5:
            return _common_word(rng, vocab)
        return rng.choice(vocab.words)
    if kind < 0.7:
        phrase = rng.choice(vocab.phrases)
        if rng.random() < 0.2 and _usable(f'"{phrase}*"'):
            return f'"{phrase}*"'
        return f'"{phrase}"'
    return rng.choice(vocab.stems) + "*"


def _concept(rng: random.Random, vocab: Vocabulary) -> str:
    atoms = [_atom(rng, vocab) for _ in range(rng.choice((1, 1, 2, 3, 4)))]
    return atoms[0] if len(atoms) == 1 else "(" + " OR ".join(atoms) + ")"


def generate_query(rng: random.Random, vocab: Vocabulary) -> Query:
    """One portable query: OR groups of atoms, ANDed (explicitly or by adjacency), maybe a
    NOT, sometimes a top-level OR of two such parts."""
    while True:
        concepts = [_concept(rng, vocab) for _ in range(rng.choice((1, 2, 2, 3)))]
        text = rng.choice((" AND ", " ")).join(concepts)
        if rng.random() < 0.3:
            text += " NOT " + _concept(rng, vocab)
        if rng.random() < 0.15:
            text = f"({text}) OR {_concept(rng, vocab)}"
        try:
            return parse_query(text)
        except QuerySyntaxError:  # a drawn word happened to be an operator or too short
            continue


def generate_queries(records: list[Record], count: int, *, seed: int = 13) -> list[Query]:
    rng = random.Random(seed)
    vocab = vocabulary(records)
    return [generate_query(rng, vocab) for _ in range(count)]


def _common_word(rng: random.Random, vocab: Vocabulary) -> str:
    """A title word, drawn as often as titles use it."""
    return rng.choices(vocab.words, cum_weights=vocab.cumulative)[0]


def _vary(text: str, rng: random.Random, vocab: Vocabulary, share: float) -> str:
    return _WORD.sub(lambda m: _common_word(rng, vocab) if rng.random() < share else m[0], text)


def varied(records: list[Record], count: int, *, seed: int = 7) -> list[Record]:
    """``count`` records derived from the real ones (taken source by source in turn, so the
    2,900 title-only Semantic Scholar records do not dominate): the first copy of each is
    the record itself, later copies have 20 % of their title and abstract words replaced by
    title words of the vocabulary (drawn as often as titles use them)."""
    rng = random.Random(seed)
    vocab = vocabulary(records)
    by_source: dict[str, list[Record]] = {}
    for record in records:
        by_source.setdefault(record.source, []).append(record)
    order: list[Record] = []
    queues = [list(rs) for rs in by_source.values()]
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    out: list[Record] = []
    copy = 0
    while len(out) < count:
        for record in order:
            if len(out) >= count:
                break
            if copy == 0:
                out.append(record)
                continue
            out.append(
                replace(
                    record,
                    source_id=f"{record.source_id}~{copy}",
                    title=_vary(record.title, rng, vocab, 0.2) if record.title else None,
                    abstract=_vary(record.abstract, rng, vocab, 0.2) if record.abstract else None,
                )
            )
        copy += 1
    return out
