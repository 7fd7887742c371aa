"""Deduplication, pure: which records describe the same work, and what the merged work says.

::

    records ─▶ features (matchkeys) ─▶ blocks (records sharing a blocking key)
            ─▶ decide(a, b) for each candidate pair: duplicate / version / distinct, with a reason
            ─▶ clusters: duplicates joined strongest first, never two different DOIs or PMIDs in one
            ─▶ merge_records(cluster) for the work's record

A false merge hides a study from a reviewer, a missed one only shows it twice, so every rule
errs towards "distinct": errata, replies and retraction notices never join their original,
records with different DOIs never join, a shared DOI with clearly different titles or pages
(a journal supplement's DOI carried by many abstracts) does not join, and a preprint and its
journal article are linked as versions of one study, not merged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from harvester.dedup.features import (
    Features,
    features,
    is_preprint,
    keys_of,
    title_tokens,
    venue_kind,
    venue_tokens,
)
from harvester.dedup.similarity import (
    author_overlap,
    first_author_agrees,
    pages_agree,
    printed_in,
    same_family,
    title_similarity,
    venues_agree,
)
from harvester.records import Identifiers, Record
from harvester.registry import SOURCE_PREFERENCE  # the registry: journals, aggregators, preprints

# Fuzzy evidence needed to call two records without a shared identifier one work: an exact
# title, the same first author and year (2 + 1 + 1) is enough; a lesser title needs pages,
# volume or a full author list on top. Tuned on the development sets (benchmarks/dedup_quality.py).
FUZZY_THRESHOLD = 4.0
# Generic titles ("Editorial") name a kind of piece: they need the same pages or issue as well.
GENERIC_THRESHOLD = 5.5
MIN_TITLE_SIMILARITY = 0.85
# A translated or reworded title still names the work when journal, volume and the whole page
# range agree (see _same_citation); unrelated titles are below this edit similarity.
MIN_CITATION_TITLE = 0.55
MAX_ARTICLE_PAGES = 60
# An online-first listing retitled in print (see _retitled_online_first): authors it must list
# and the share of the two titles' words (stopwords aside) both must have.
MIN_LISTED_AUTHORS = 4
MIN_SHARED_WORDS = 0.6
# Folded title length (without spaces) from which a title is distinctive: "onlineassociation
# rulemining" (27) is; "atypicalhemolyticuremicsyndrome" (31) is shared by 7 works in one set,
# but those records all have their years, which this length only stands in for when missing.
DISTINCTIVE_TITLE = 25
# An issue dated by year and month (see _dated_issue) is taken for the numbered one only under
# a title of this many words (stopwords aside), the same or behind a column heading of at most
# this many words in the other record: "How did it ... Upwork's CEO on how an introverted …".
MIN_HEADED_TITLE_WORDS = 6
MAX_HEADING_WORDS = 5
# A word of at least this many letters swapped for another in a bare record's title (see
# _words_substituted) makes it another study: "adult" and "adolescent".
MIN_SUBSTITUTED = 4
# One paper's versions in two venues (see _venue_version): the title similarity, the share of
# the shorter author list found in the other, and the years that may lie between them (a
# conference paper, its report and its journal version).
VERSION_TITLE = 0.95
MIN_VERSION_AUTHORS = 0.75
MAX_VERSION_YEARS = 3
# Blocks larger than this are compared within a sliding window over the block sorted by title,
# so one very common key ("ay:wang:2020") cannot make the cost quadratic.
MAX_BLOCK = 200
WINDOW = 30


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
    if _bare(a) and _bare(b) and _words_substituted(a.title, b.title):
        # Nothing but titles, authors and years to go on (trial registrations): a word swapped
        # for another is another study, not a typo.
        return _distinct("titles differ in a word")
    decision = _fuzzy(a, b, ts, version)
    if decision.verdict is Verdict.DISTINCT:
        return _venue_version(a, b, ts) or decision
    return decision


def _venue_version(a: Features, b: Features, ts: float) -> Decision | None:
    """One paper's versions in two venues, linked, not merged: a conference paper and its
    journal version or technical report (dblp_scholar: Chan et al., "Efficient filtering of XML
    documents with XPath expressions", VLDB J. 2002 and ICDE's proceedings), or a citation
    without year that could be either (Scholar's "Realm-based spatial data types: the ROSE
    algebra", no year, against VLDB J. 1995). The merge policy (and the Cora and review labels)
    keep such records apart; a reader still sees one study with its versions. Only under the
    same long title, with the same numbers in it (two parts of a series differ in one), and the
    same author list; and not two records of one venue that both have their year: one journal's
    two pieces under one title (an erratum printed without its heading, a paper in two parts)
    are not versions of each other."""
    if a.preprint != b.preprint or ts < VERSION_TITLE or a.generic or b.generic:
        return None
    if not a.venue and not b.venue:
        # Nothing to say where either was published: two registered trials of one sponsor.
        return None
    if min(len(a.compact), len(b.compact)) < DISTINCTIVE_TITLE:
        return None
    if _title_numbers(a.title) != _title_numbers(b.title):
        return None
    if first_author_agrees(a, b) is not True or author_overlap(a, b) < MIN_VERSION_AUTHORS:
        return None
    if (
        a.year is not None and b.year is not None
        and (abs(a.year - b.year) > MAX_VERSION_YEARS or venues_agree(a.venue, b.venue))
    ):  # fmt: skip
        return None
    return Decision(
        Verdict.VERSION, "one paper in two venues: same title and authors", 3.0 + ts,
        link=Link.VENUE,
    )  # fmt: skip


_ROMAN = frozenset({"i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "part"})


def _title_numbers(title: str) -> tuple[str, ...]:
    # "… Part I" and "… Part II", "… in 2001" and "… in 2002": different works one letter apart.
    return tuple(t for t in title.split() if t.isdigit() or t in _ROMAN)


def _same_citation(a: Features, b: Features, ts: float) -> Decision | None:
    """One article cited twice with a title worded differently: a translated title ("Review-
    Artikel: Zum aktuellen Stand des Plattformkapitalismus" and "Review article: The current
    situation of platform capitalism") or a reworded one, where journal, year, volume and the
    whole page range agree. No two articles share one journal volume's page range, so the
    citation stands in for the title; it needs a range short
    enough to be one article (a supplement's range, "499-711", is carried by all its abstracts).
    The first author may differ only when the titles are the same as well.
    """
    if a.preprint != b.preprint:
        return None
    if ts < MIN_CITATION_TITLE and not _translated_by_one(a, b):
        return None
    if not (a.page and a.last_page and a.page == b.page and a.last_page == b.last_page):
        return None
    if not a.page.isdigit() or not 0 < int(a.last_page) - int(a.page) <= MAX_ARTICLE_PAGES:
        return None
    if a.volume is None or a.volume != b.volume or a.year is None or a.year != b.year:
        return None
    if a.issue is not None and b.issue is not None and a.issue != b.issue:
        return None
    if not venues_agree(a.venue, b.venue):
        return None
    if not first_author_agrees(a, b) and ts < 0.95:
        # With the same title as well, a study group credited as first author by one database
        # ("ASCUS-LSIL Traige Study") and its writer by another ("Solomon, D") is no objection.
        return None
    return Decision(Verdict.DUPLICATE, "same journal, volume and page range", 6.0 + ts)


def _bare(f: Features) -> bool:
    """A record with no venue, volume or pages: a trial registration, or a bare citation."""
    return not f.venue and f.volume is None and f.page is None


def _words_substituted(x: str, y: str) -> bool:
    """Whether one title has a word the other lacks and the other a word in its place, neither
    a misspelling of the other (sra_haematology id_0000235 and id_0000237, one sponsor's trials
    "… Eculizumab in Adult Patients With Plasma Therapy-Resistant aHUS" and "… in Adolescent
    Patients …")."""
    only_x = set(x.split()) - set(y.split())
    only_y = set(y.split()) - set(x.split())
    if not only_x or not only_y:
        return False
    return any(
        len(w) >= MIN_SUBSTITUTED and all(not same_family(w, v) for v in only_y) for w in only_x
    ) and any(
        len(v) >= MIN_SUBSTITUTED and all(not same_family(v, w) for w in only_x) for v in only_y
    )


def _translated_by_one(a: Features, b: Features) -> bool:
    """One record gives its title as a translation ("[Observation on therapeutic effect of
    acupuncture …]. [Chinese]") and the other in another wording (the original language, or
    another English rendering), by the same author list in the same order: the citation, which
    _same_citation checks in full, then names the work whatever the titles say."""
    if a.translated == b.translated or len(a.families) != len(b.families):
        return False
    return len(a.families) >= 2 and all(map(same_family, a.families, b.families))


def _retitled_online_first(a: Features, b: Features) -> Decision | None:
    """An article listed online first, before it had volume and pages, under a title the print
    version reworded (sra_haematology: "Complement Blockade in Severe Shiga-Toxin-Associated
    HUS" online, "Eculizumab in severe Shiga-toxin-associated HUS" in NEJM 364(26) 2561-2563).
    The same team's other paper in that journal that year shares the authors too, so this asks
    for a lot: one record without volume and pages, the other with both; the same year and
    journal; at least four authors, the shorter list the start of the longer, in order; and
    most of the title's words.
    """
    early, late = (a, b) if a.volume is None and a.page is None else (b, a)
    if early.volume is not None or early.page is not None:
        return None
    if late.volume is None or late.page is None or a.preprint != b.preprint:
        return None
    if a.year is None or a.year != b.year or not venues_agree(a.venue, b.venue):
        return None
    if {a.kind, b.kind} - {None, "journal"}:
        return None
    short, long_ = sorted((a.families, b.families), key=len)
    if len(short) < MIN_LISTED_AUTHORS or not all(map(same_family, short, long_)):
        return None
    words_a, words_b = set(title_tokens(a.title)), set(title_tokens(b.title))
    if len(words_a & words_b) < MIN_SHARED_WORDS * len(words_a | words_b):
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
    if a.year is not None and b.year is not None and abs(a.year - b.year) > 1:
        return _distinct("years differ")
    pages = pages_agree(a, b)
    shifted = pages is False and (_shifted(a, b) or _shifted(b, a))
    if shifted:
        pages = None  # and the issues do not compare either
    repaged = pages is False and _abstract_paged_twice(a, b, ts)
    if pages is False and not repaged:
        return _distinct("pages differ")
    # The year in one record's volume column and the month in its issue column: the export dated
    # the issue instead of numbering it, so its "volume" says nothing against the real one.
    dated = _dated_issue(a, b) or _dated_issue(b, a)
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
    if a.issue is not None and b.issue is not None and not shifted:
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


def _abstract_paged_twice(a: Features, b: Features, ts: float) -> bool:
    """One meeting abstract that two databases give different pages: Embase files it under the
    meeting, another database under the journal's supplement (sra_haematology: Davin et al.,
    "Pediatric Transplantation.Conference: 6th Congress of the IPTA" p. 22 and "Pediatric
    Transplantation" p. 52, both volume 15, 2011), or the abstract's page and the poster
    listing's (sra_stroke: Yablon et al., Arch Phys Med Rehabil 91(10) e3 and e8-e9). Only with
    the same long title, the same author list and no more than two pages on each side: an
    article's erratum has the article's pages on one side, two abstracts of one meeting differ
    in title or authors, and a later issue's notice differs in the issue."""
    if ts < 0.95 or a.generic or b.generic or min(len(a.compact), len(b.compact)) < 40:
        return False
    if a.year is None or a.year != b.year or a.volume is None or a.volume != b.volume:
        return False
    if a.issue is not None and b.issue is not None:
        if a.issue != b.issue or not venues_agree(a.venue, b.venue):
            return False
    elif not printed_in(a.venue, b.venue):
        return False
    if not all(_abstract_length(f) for f in (a, b)):
        return False
    return len(a.families) == len(b.families) >= 2 and all(map(same_family, a.families, b.families))


def _abstract_length(f: Features) -> bool:
    """Whether a record's pages are one or two pages (a meeting abstract's), not an article's."""
    if f.page is None or f.last_page is None:
        return f.page is not None
    first = f.page.lstrip("abcdefghijklmnopqrstuvwxyz")
    return first.isdigit() and 0 <= int(f.last_page) - int(first) <= 1


def _dated_issue(a: Features, b: Features) -> bool:
    """Whether ``a`` dates its issue where ``b`` numbers it: ``a``'s volume is its own year and
    its issue a month name, and that month's number is ``b``'s issue (colrev_digital_work: Harvard
    Business Review 2016 volume "2016" issue "May", and volume 94 issue 5). A month is an issue's
    number only in some journals and a year-numbered volume is real in others ("Hematology"
    2008), so the dates alone prove nothing: this only stops them contradicting a record that
    already names the same piece, by the same first author in the same venue and year, under a
    long title that is the other's or the other's behind a column's short heading ("How did it
    ... Upwork's CEO on how an introverted engineer learned to lead")."""
    if a.year is None or a.year != b.year or a.volume != str(a.year) or a.month is None:
        return False
    if b.volume is None or b.volume == a.volume or b.issue != str(a.month):
        return False
    if not same_family(a.family, b.family) or venues_agree(a.venue, b.venue) is not True:
        return False
    if a.generic or b.generic:
        return False
    short, long_ = sorted((a, b), key=lambda f: len(f.compact))
    if short.compact != long_.compact:
        heading = long_.title.removesuffix(" " + short.title)
        if heading == long_.title or len(heading.split()) > MAX_HEADING_WORDS:
            return False
    return len(title_tokens(short.title)) >= MIN_HEADED_TITLE_WORDS


def _shifted(a: Features, b: Features) -> bool:
    """Whether ``a``'s numbers sit one column off ``b``'s, as an export that lost a field leaves
    them: no volume, the issue in the pages column and the volume in the issue column
    (sra_haematology's "pages 9, number 26" for volume 26, issue 9, page 1746)."""
    return (
        a.volume is None and a.last_page is None and a.page is not None
        and a.page == b.issue and a.issue is not None and a.issue == b.volume
    )  # fmt: skip


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
        # A shared identifier already outweighed the pages in decide(): one database writes an
        # article number (106482) where another writes the page count (11).
        identified = any(other.ids.get(s) == v for s, v in self.ids.items())
        years = self.years or other.years
        if self.years and other.years:
            years = (min(self.years[0], other.years[0]), max(self.years[1], other.years[1]))
            if years[1] - years[0] > 1:
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
    found.sort(key=lambda t: (-t[0], t[1], t[2]))
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
    parent: dict[int, int] = {}

    def root(k: int) -> int:
        while parent.get(k, k) != k:
            k = parent[k]
        return k

    for i, j, _ in result.links:
        ri, rj = root(result.kept[i]), root(result.kept[j])
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    studies: dict[int, list[int]] = defaultdict(list)
    for k in {k for i, j, _ in result.links for k in (result.kept[i], result.kept[j])}:
        studies[root(k)].append(k)
    head: dict[int, int] = {}
    for works in studies.values():
        if len(works) < 2:
            continue
        main = min(works, key=lambda k: _main_version_rank(records[k], k))
        head.update(dict.fromkeys(works, main))
    return tuple(head.get(k) for k in result.kept)


def _main_version_rank(record: Record, index: int) -> tuple[bool, int, int, int]:
    kind = venue_kind(venue_tokens(record.venue))
    order = {"journal": 0, None: 1, "conference": 2, "report": 3}[kind]
    return is_preprint(record), order, -_completeness(record), index


def _completeness(record: Record) -> int:
    values: Iterable[object] = (
        record.title, record.ids.doi, record.abstract, record.authors, record.venue,
        record.year, record.volume, record.issue, record.pages,
    )  # fmt: skip
    return sum(1 for v in values if v not in (None, "", ()))


def _rank(record: Record) -> tuple[bool, int]:
    try:
        rank = SOURCE_PREFERENCE.index(record.source)
    except ValueError:
        rank = len(SOURCE_PREFERENCE)
    return is_preprint(record), rank


def merge_records(records: Sequence[Record]) -> Record:
    """One record for a work: the best value of each field among its source records.

    The complete abstract (the longest, with its sections), the fullest author list, every
    identifier (the publisher's DOI before a preprint server's), and for the other fields
    (venue, volume, issue, pages…) the first present value in source preference order, journal
    records before preprints.
    """
    if not records:
        raise ValueError("merge_records needs at least one record")
    ordered = sorted(records, key=_rank)
    first = ordered[0]

    def pick(name: str) -> object:
        for r in ordered:
            value = getattr(r, name)
            if value not in (None, (), ""):
                return value
        return getattr(first, name)

    ids = Identifiers()
    for r in ordered:
        ids = ids.merged(r.ids)
    with_abstract = [r for r in ordered if r.abstract]
    abstract_from = (
        max(with_abstract, key=lambda r: len(r.abstract or "")) if with_abstract else first
    )
    authors_from = max(ordered, key=lambda r: len(r.authors))
    keywords = tuple(dict.fromkeys(k for r in ordered for k in r.keywords))
    others = tuple(dict.fromkeys(a for r in ordered for a in r.other_abstracts))
    return first.with_changes(
        ids=ids,
        title=pick("title"),
        abstract=abstract_from.abstract,
        abstract_sections=abstract_from.abstract_sections,
        other_abstracts=others,
        authors=authors_from.authors,
        venue=pick("venue"),
        year=pick("year"),
        volume=pick("volume"),
        issue=pick("issue"),
        pages=pick("pages"),
        published=pick("published"),
        type=pick("type"),
        language=pick("language"),
        url=pick("url"),
        keywords=keywords,
        published_doi=pick("published_doi"),
    )
