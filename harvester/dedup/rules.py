"""Pure: the one dedup decision, shared by the batch ``cluster`` and the store's page writer.

:func:`decide` says what two records are to each other: one work (duplicate), versions of one
study (a preprint and its article, a paper in two venues), or distinct, with the reason and a
score. :func:`choose` says which of a record's candidate works it joins (the best-scoring
duplicate, the earliest on a tie) and which it links as versions; :func:`beyond_year_window`
says from a candidate's year alone that it cannot be either.

A false merge hides a study from a reviewer, a missed one only shows it twice, so every rule
errs towards "distinct": errata, replies and retraction notices never join their original,
records with different DOIs never join, a shared DOI with clearly different titles or pages
(a journal supplement's DOI carried by many abstracts) does not join, and a preprint and its
journal article are linked as versions of one study, not merged.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from harvester.dedup.evidence import (
    DISTINCTIVE_TITLE,
    MAX_VERSION_YEARS,
    VERSION_TITLE,
    abstract_paged_twice,
    bare,
    dated_issue,
    may_be_venue_version,
    retitled_online_first,
    same_citation,
    shifted,
    venue_version,
    words_substituted,
)
from harvester.dedup.features import Features, features
from harvester.dedup.similarity import (
    author_overlap,
    first_author_agrees,
    near_title,
    pages_agree,
    printed_in,
    title_similarity,
    venues_agree,
)
from harvester.records import Record

# Fuzzy evidence needed to call two records without a shared identifier one work: an exact
# title, the same first author and year (2 + 1 + 1) is enough; a lesser title needs pages,
# volume or a full author list on top. Tuned on the development sets (benchmarks/dedup_quality.py).
FUZZY_THRESHOLD = 4.0
# Generic titles ("Editorial") name a kind of piece: they need the same pages or issue as well.
GENERIC_THRESHOLD = 5.5
MIN_TITLE_SIMILARITY = 0.85
# Years further apart than this are different works unless an identifier joins them (the fuzzy
# rule; a cluster's years span no more either).
YEAR_WINDOW = 1


class Verdict(StrEnum):
    DUPLICATE = "duplicate"
    # Versions of one study, linked, not merged: a preprint and its journal article, or a
    # paper's conference, journal and report versions (Decision.link says which).
    VERSION = "version"
    DISTINCT = "distinct"


class Link(StrEnum):
    """What a VERSION link joins: a preprint and its article, or one paper published in two
    venues (conference, journal, report, or a citation that could be either)."""

    PREPRINT = "preprint"
    VENUE = "venue"


@dataclass(frozen=True, slots=True)
class Decision:
    """What two records are to each other, why, and how strongly (for ordering merges)."""

    verdict: Verdict
    reason: str
    score: float = 0.0
    # The pages differ and the pair matched anyway (one meeting abstract paged by two
    # databases): clustering must not veto the join on the pages either.
    repaged: bool = False
    # For a VERSION: what the link joins (preprint and article, or two venues' versions).
    link: Link | None = None


def _distinct(reason: str) -> Decision:
    return Decision(Verdict.DISTINCT, reason)


def same_work(a: Record, b: Record) -> Decision:
    """Whether two records describe the same work (duplicate), versions of one study
    (preprint and article) or different works, with the reason."""
    return decide(features(a), features(b))


def decide(a: Features, b: Features) -> Decision:
    """:func:`same_work` on precomputed features."""
    if a.notice != b.notice:
        return _distinct(f"a {a.notice or b.notice} notice is not the work it refers to")
    version = a.preprint != b.preprint
    if version and (
        (a.published_doi and a.published_doi == b.doi)
        or (b.published_doi and b.published_doi == a.doi)
    ):
        return Decision(
            Verdict.VERSION, "the preprint names the article's DOI", 10.0, link=Link.PREPRINT
        )
    ids_b = dict(b.ids)
    shared: list[str] = []
    for scheme, value in a.ids:
        other = ids_b.get(scheme)
        if other is None:
            continue
        if other != value:
            if scheme == "doi" and not version:
                # Never one record; a conference paper and its journal version each have a DOI.
                found = _venue_version(a, b, title_similarity(a, b))
                return found if found else _distinct("different doi")
            if scheme != "doi":
                return _distinct(f"different {scheme}")
        else:
            shared.append(scheme)
    ts = title_similarity(a, b)
    if shared:
        return _identified(a, b, shared[0], ts, version)
    if not a.compact or not b.compact:
        return _distinct("no title to compare")
    if ts < MIN_TITLE_SIMILARITY:
        found = _same_citation(a, b, ts) or _retitled_online_first(a, b)
        return found if found else _distinct("titles differ")
    if bare(a) and bare(b) and words_substituted(a.title, b.title):
        # Nothing but titles, authors and years to go on (trial registrations): a word swapped
        # for another is another study, not a typo.
        return _distinct("titles differ in a word")
    decision = _fuzzy(a, b, ts, version)
    if decision.verdict is Verdict.DISTINCT:
        return _venue_version(a, b, ts) or decision
    return decision


def _venue_version(a: Features, b: Features, ts: float) -> Decision | None:
    # see evidence.venue_version
    if not venue_version(a, b, ts):
        return None
    return Decision(
        Verdict.VERSION, "one paper in two venues: same title and authors", 3.0 + ts,
        link=Link.VENUE,
    )  # fmt: skip


def _same_citation(a: Features, b: Features, ts: float) -> Decision | None:
    # see evidence.same_citation
    if not same_citation(a, b, ts):
        return None
    return Decision(Verdict.DUPLICATE, "same journal, volume and page range", 6.0 + ts)


def _retitled_online_first(a: Features, b: Features) -> Decision | None:
    # see evidence.retitled_online_first
    if not retitled_online_first(a, b):
        return None
    return Decision(Verdict.DUPLICATE, "online-first listing of the article, retitled", 5.0)


def _identified(a: Features, b: Features, scheme: str, ts: float, version: bool) -> Decision:
    # A shared identifier is strong evidence, not proof: a supplement's DOI is carried by
    # every abstract in it, each with its own title and pages.
    if a.compact and b.compact and (ts < 0.7 or (pages_agree(a, b) is False and ts < 0.9)):
        return _distinct(f"same {scheme} but different titles or pages")
    if version:
        return Decision(
            Verdict.VERSION, f"preprint and article share the {scheme}", 9.0, link=Link.PREPRINT
        )
    return Decision(Verdict.DUPLICATE, f"same {scheme}", 8.0 + ts)


def _fuzzy(a: Features, b: Features, ts: float, version: bool) -> Decision:
    author = first_author_agrees(a, b)
    if author is False:
        return _same_citation(a, b, ts) or _distinct("first authors differ")
    if a.year is not None and b.year is not None and abs(a.year - b.year) > YEAR_WINDOW:
        return _distinct("years differ")
    pages = pages_agree(a, b)
    moved = pages is False and (shifted(a, b) or shifted(b, a))
    if moved:
        pages = None  # and the issues do not compare either
    repaged = pages is False and abstract_paged_twice(a, b, ts)
    if pages is False and not repaged:
        return _distinct("pages differ")
    # The year in one record's volume column and the month in its issue column: the export dated
    # the issue instead of numbering it, so its "volume" says nothing against the real one.
    dated = dated_issue(a, b) or dated_issue(b, a)
    if a.volume is not None and b.volume is not None and a.volume != b.volume and not dated:
        return _distinct("volumes differ")
    if a.kind and b.kind and a.kind != b.kind and not pages and not printed_in(a.venue, b.venue):
        # With the same pages it is one record that two databases file differently (Embase
        # lists a journal supplement's abstract as a conference paper); so is a meeting's
        # abstract filed under the meeting by one database and under its journal by another.
        return _distinct(f"a {a.kind} and a {b.kind} version are different records")
    score = 2.0 if a.compact == b.compact else 1.5 if ts >= 0.95 else 1.0 if ts >= 0.9 else 0.5
    authors = False
    if author:
        score += 1.0
        if min(len(a.families), len(b.families)) >= 2 and author_overlap(a, b) >= 0.75:
            score += 0.5
            authors = True
    # A long title that is not a kind of piece ("Editorial") names one work by itself.
    distinctive = (
        ts >= 0.95 and not a.generic and not b.generic
        and min(len(a.compact), len(b.compact)) >= DISTINCTIVE_TITLE
    )  # fmt: skip
    # Not across venues that differ, nor from one kind of venue to another: a conference paper
    # and its journal version keep title and authors ("VLDB" 2000 and "The VLDB Journal" 2001).
    same_venue = venues_agree(a.venue, b.venue) is not False and (
        a.kind == b.kind or "journal" not in (a.kind, b.kind)
    )
    if a.year is not None and b.year is not None:
        if a.year == b.year:
            score += 1.0
        else:
            # A year apart: a conference paper's online date and its proceedings' year, or an
            # early-access article and its issue. With the same long title and the same author
            # list that is one work; with less it counts against.
            strong = (
                distinctive and authors and a.compact == b.compact and same_venue
                and bool(a.venue) == bool(b.venue)
            )  # fmt: skip
            score += 0.5 if strong else -0.5
    elif distinctive and author and same_venue and a.venue and b.venue:
        # No year on one side (Google Scholar's citations often have none): the title and the
        # first author carry the match, as the year would.
        score += 1.0
    if pages:
        score += 1.5
    if a.volume is not None and b.volume is not None and not dated:
        score += 0.5
    if dated:
        score += 0.5  # the month is the other record's issue number: as good as equal issues
    if a.issue is not None and b.issue is not None and not moved:
        if a.issue == b.issue:
            score += 0.5
        elif not pages:
            # Issues differ and no pages to overrule them: a recurring column ("Editor's
            # Comments" in every issue). With equal pages it is a database's slip.
            return _distinct("issues differ")
    # Venue names are written too differently across databases ("SIGMOD Conference" and
    # "International Conference on Management of Data") for a mismatch to count against.
    if venues_agree(a.venue, b.venue):
        score += 0.5
    needed = GENERIC_THRESHOLD if a.generic or b.generic else FUZZY_THRESHOLD
    if score < needed:
        return _distinct(f"too little evidence ({score:.1f} < {needed:.1f})")
    if version:
        return Decision(
            Verdict.VERSION, "preprint and article with matching details", score,
            link=Link.PREPRINT,
        )  # fmt: skip
    if repaged:
        return Decision(
            Verdict.DUPLICATE, f"one meeting abstract, paged by two databases ({score:.1f})", score,
            repaged=True,
        )  # fmt: skip
    return Decision(Verdict.DUPLICATE, f"matching details ({score:.1f})", score)


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Choice(Generic[K]):
    """What a record does with its candidate works: the one it joins (None: it starts a work of
    its own), and those it links as versions of its study, with the decision for each."""

    joins: K | None
    versions: tuple[tuple[K, Decision], ...]


def choose(
    f: Features, candidates: Iterable[tuple[K, Features]], order: Callable[[K], int]
) -> Choice[K]:
    """Which candidate work a record (features ``f``) joins, and which it links as versions:
    each candidate is judged with :func:`decide`; the best-scoring duplicate wins, the earliest
    by ``order`` on a tie (the work stored first); every VERSION is a link. ``candidates`` may
    be lazy (each decoded only when reached)."""
    best: tuple[tuple[float, ...], K] | None = None
    versions: list[tuple[K, Decision]] = []
    for key, other in candidates:
        decision = decide(f, other)
        if decision.verdict is Verdict.DUPLICATE:
            rank = strongest_first(decision.score, order(key))
            if best is None or rank < best[0]:
                best = (rank, key)
        elif decision.verdict is Verdict.VERSION:
            versions.append((key, decision))
    return Choice(best[1] if best else None, tuple(versions))


def strongest_first(score: float, *order: int) -> tuple[float, ...]:
    """The key that orders decisions for joining: the highest score first, then the earliest
    (the tie-break :func:`choose` applies to one record's candidates, and the batch ``cluster``
    to all pairs)."""
    return (-score, *order)


def beyond_year_window(f: Features, year: int | None, title: str | None = None) -> bool:
    """True when a record (features ``f``) and a work of ``year`` (and ``title``, if known)
    are too far apart for :func:`decide` to call them anything but DISTINCT, unless the two
    share an identifier or the record is a preprint naming the work's DOI (those lead past the
    year rules): years more than YEAR_WINDOW apart fail the fuzzy rule and every other
    duplicate rule without an identifier wants the same year; only a paper's venue versions
    are linked up to MAX_VERSION_YEARS apart, and only under the same long title (see
    :func:`evidence.venue_version`). Lets a caller (the page writer) skip a candidate from its
    year and title alone."""
    if f.year is None or year is None:
        return False
    gap = abs(f.year - year)
    if gap <= YEAR_WINDOW:
        return False
    if gap > MAX_VERSION_YEARS or not may_be_venue_version(f):
        return True
    return title is not None and not near_title(f, title, VERSION_TITLE)
