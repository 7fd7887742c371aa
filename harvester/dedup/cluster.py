"""Batch deduplication for `harvester dedup`: which records of one file describe the same work.

::

    records ─▶ features ─▶ blocks (records sharing a blocking key)
            ─▶ rules.decide(a, b) for each candidate pair: duplicate / version / distinct
            ─▶ clusters: duplicates joined strongest first, never two different DOIs or PMIDs in one
            ─▶ merge.merge_records(cluster) for the work's record

The decision for a pair is :mod:`harvester.dedup.rules`, the same the store's page writer
applies to a record and its candidate works; what is batch-only here is the order (all pairs
strongest first) and the veto on chains (:class:`_Group`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from harvester.dedup.features import (
    Features,
    features,
    is_preprint,
    keys_of,
    venue_kind,
    venue_tokens,
)
from harvester.dedup.rules import YEAR_WINDOW, Decision, Verdict, decide, strongest_first
from harvester.records import Record

K = TypeVar("K", bound=Hashable)

# Blocks larger than this are compared within a sliding window over the block sorted by title,
# so one very common key ("ay:wang:2020") cannot make the cost quadratic.
MAX_BLOCK = 200
WINDOW = 30


@dataclass(frozen=True, slots=True)
class Clustering:
    """Result of :func:`cluster`: for each input record, the index of the record kept for its
    work; the preprint↔article links (index, index, reason); how many pairs were compared."""

    kept: tuple[int, ...]
    links: tuple[tuple[int, int, str], ...]
    compared: int


def candidate_pairs(feats: Sequence[Features]) -> set[tuple[int, int]]:
    """Pairs of record indices that share a blocking key (each pair once, ``i < j``)."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(feats):
        for key in keys_of(f):
            blocks[key].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        n = len(members)
        if n < 2:
            continue
        if n > MAX_BLOCK:
            members = sorted(members, key=lambda i: (feats[i].compact, feats[i].year or 0))
            width = WINDOW
        else:
            width = n
        for x in range(n):
            i = members[x]
            for y in range(x + 1, min(n, x + width + 1)):
                j = members[y]
                pairs.add((i, j) if i < j else (j, i))
    return pairs


@dataclass(frozen=True, slots=True)
class _Group:
    """What a cluster's records must agree on, so a chain of pairwise matches (A~B, B~C) cannot
    join works that no single comparison would: identifiers, a year span of at most one year,
    a common first or last page when both sides have pages, one kind of venue."""

    ids: dict[str, str]
    years: tuple[int, int] | None
    pages: frozenset[str]
    kind: str | None

    @classmethod
    def of(cls, f: Features) -> _Group:
        # A preprint's own DOI differs from its article's by design; it never vetoes a join.
        ids = {s: v for s, v in f.ids if not (s == "doi" and f.preprint)}
        years = (f.year, f.year) if f.year is not None else None
        # First and last pages; article numbers (e12724) do not compare with pages. A record
        # with pages is held by them; its venue kind constrains only records without pages.
        # A lone number with an issue but no volume may be the issue shifted into the pages
        # column (see _shifted); it holds nothing.
        numeric = (
            f.page is not None and f.page[0].isdigit()
            and (f.last_page is not None or f.volume is not None or f.issue is None)
        )  # fmt: skip
        pages = frozenset(p for p in (f.page, f.last_page) if p and numeric)
        return cls(ids, years, pages, None if f.page else f.kind)

    def join(self, other: _Group, *, repaged: bool = False) -> _Group | None:
        if any(other.ids.get(s, v) != v for s, v in self.ids.items()):
            return None
        # A shared identifier already outweighed the pages in rules.decide(): one database writes an
        # article number (106482) where another writes the page count (11).
        identified = any(other.ids.get(s) == v for s, v in self.ids.items())
        years = self.years or other.years
        if self.years and other.years:
            years = (min(self.years[0], other.years[0]), max(self.years[1], other.years[1]))
            if years[1] - years[0] > YEAR_WINDOW:
                return None
        if (
            self.pages and other.pages and not self.pages & other.pages
            and not identified and not repaged
        ):  # fmt: skip
            return None
        if self.kind and other.kind and self.kind != other.kind:
            return None
        pages = self.pages | other.pages
        return _Group({**other.ids, **self.ids}, years, pages, self.kind or other.kind)


def cluster(records: Sequence[Record]) -> Clustering:
    """Group records into works: duplicates joined, strongest evidence first."""
    feats = [features(r) for r in records]
    pairs = candidate_pairs(feats)
    found: list[tuple[float, int, int, Decision]] = []
    for i, j in pairs:
        decision = decide(feats[i], feats[j])
        if decision.verdict is not Verdict.DISTINCT:
            found.append((decision.score, i, j, decision))
    found.sort(key=lambda t: strongest_first(t[0], t[1], t[2]))
    parent = list(range(len(records)))
    groups = [_Group.of(f) for f in feats]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links: list[tuple[int, int, str]] = []
    for _, i, j, decision in found:
        if decision.verdict is Verdict.VERSION:
            links.append((i, j, decision.reason))
            continue
        ri, rj = root(i), root(j)
        if ri == rj:
            continue
        joined = groups[ri].join(groups[rj], repaged=decision.repaged)
        if joined is None:
            continue
        parent[rj] = ri
        groups[ri] = joined
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        members[root(i)].append(i)
    kept = [0] * len(records)
    for group in members.values():
        best = max(group, key=lambda i: (_completeness(records[i]), -i))
        for i in group:
            kept[i] = best
    return Clustering(kept=tuple(kept), links=tuple(links), compared=len(pairs))


def version_heads(records: Sequence[Record], result: Clustering) -> tuple[int | None, ...]:
    """For each record, the kept record of the main version of its study when its work is
    linked as a version to another work (preprint and article, conference and journal paper),
    else None. Linked works form one study (links chain: a report, its conference paper and
    their journal version); its main version is a journal's record before a conference's or a
    report's, a published one before a preprint, then the most complete, then the first."""
    linked = studies((result.kept[i], result.kept[j]) for i, j, _ in result.links)
    head: dict[int, int] = {}
    for works in set(linked.values()):
        if len(works) < 2:
            continue
        main = min(works, key=lambda k: (*version_rank(records[k]), k))
        head.update(dict.fromkeys(works, main))
    return tuple(head.get(k) for k in result.kept)


def studies(links: Iterable[tuple[K, K]]) -> dict[K, frozenset[K]]:
    """The works each linked work is one study with: the works joined to it by a chain of
    version links (a report, its conference paper and their journal version), itself
    included."""
    parent: dict[K, K] = {}

    def root(k: K) -> K:
        while (up := parent.get(k, k)) != k:
            k = up
        return k

    for a, b in links:
        ra, rb = root(a), root(b)
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        if ra != rb:
            parent[rb] = ra
    members: dict[K, set[K]] = defaultdict(set)
    for k in parent:
        members[root(k)].add(k)
    groups = {r: frozenset(m) for r, m in members.items()}
    return {k: groups[root(k)] for k in parent}


def version_rank(record: Record) -> tuple[bool, int, int]:
    """How a study's versions are ordered, main version first: published before a preprint;
    a journal's before a venue of no known kind, a conference's, then a report's; then the
    most complete record."""
    kind = venue_kind(venue_tokens(record.venue))
    order = {"journal": 0, None: 1, "conference": 2, "report": 3}[kind]
    return is_preprint(record), order, -_completeness(record)


def _completeness(record: Record) -> int:
    values: Iterable[object] = (
        record.title, record.ids.doi, record.abstract, record.authors, record.venue,
        record.year, record.volume, record.issue, record.pages,
    )  # fmt: skip
    return sum(1 for v in values if v not in (None, "", ()))
