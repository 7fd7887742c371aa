"""Pure: the shapes of evidence beyond the fuzzy score, each a test on two records' features.

A translated or reworded title under the same citation, an online-first listing retitled in
print, one meeting abstract paged by two databases, an issue dated instead of numbered, numbers
one column off, a word swapped in a bare record's title, one paper in two venues. Each answers
yes or no; :mod:`harvester.dedup.rules` weighs the answers into a decision.
"""

from __future__ import annotations

from harvester.dedup.features import Features, title_tokens
from harvester.dedup.similarity import (
    author_overlap,
    first_author_agrees,
    printed_in,
    same_family,
    venues_agree,
)

# A translated or reworded title still names the work when journal, volume and the whole page
# range agree (see same_citation); unrelated titles are below this edit similarity.
MIN_CITATION_TITLE = 0.55
MAX_ARTICLE_PAGES = 60
# An online-first listing retitled in print (see retitled_online_first): authors it must list
# and the share of the two titles' words (stopwords aside) both must have.
MIN_LISTED_AUTHORS = 4
MIN_SHARED_WORDS = 0.6
# Folded title length (without spaces) from which a title is distinctive: "onlineassociation
# rulemining" (27) is; "atypicalhemolyticuremicsyndrome" (31) is shared by 7 works in one set,
# but those records all have their years, which this length only stands in for when missing.
DISTINCTIVE_TITLE = 25
# An issue dated by year and month (see dated_issue) is taken for the numbered one only under
# a title of this many words (stopwords aside), the same or behind a column heading of at most
# this many words in the other record: "How did it ... Upwork's CEO on how an introverted …".
MIN_HEADED_TITLE_WORDS = 6
MAX_HEADING_WORDS = 5
# A word of at least this many letters swapped for another in a bare record's title (see
# words_substituted) makes it another study: "adult" and "adolescent".
MIN_SUBSTITUTED = 4
# One paper's versions in two venues (see venue_version): the title similarity, the share of
# the shorter author list found in the other, and the years that may lie between them (a
# conference paper, its report and its journal version).
VERSION_TITLE = 0.95
MIN_VERSION_AUTHORS = 0.75
MAX_VERSION_YEARS = 3


def venue_version(a: Features, b: Features, ts: float) -> bool:
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
        return False
    if not a.venue and not b.venue:
        # Nothing to say where either was published: two registered trials of one sponsor.
        return False
    if min(len(a.compact), len(b.compact)) < DISTINCTIVE_TITLE:
        return False
    if title_numbers(a.title) != title_numbers(b.title):
        return False
    if first_author_agrees(a, b) is not True or author_overlap(a, b) < MIN_VERSION_AUTHORS:
        return False
    return not (
        a.year is not None and b.year is not None
        and (abs(a.year - b.year) > MAX_VERSION_YEARS or venues_agree(a.venue, b.venue))
    )  # fmt: skip


def may_be_venue_version(f: Features) -> bool:
    """Whether a record can be one of a paper's versions in two venues at all (what
    :func:`venue_version` asks of each side alone): a long title that is not a kind of piece,
    and a first author."""
    return not f.generic and len(f.compact) >= DISTINCTIVE_TITLE and bool(f.family)


_ROMAN = frozenset({"i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "part"})


def title_numbers(title: str) -> tuple[str, ...]:
    # "… Part I" and "… Part II", "… in 2001" and "… in 2002": different works one letter apart.
    return tuple(t for t in title.split() if t.isdigit() or t in _ROMAN)


def same_citation(a: Features, b: Features, ts: float) -> bool:
    """One article cited twice with a title worded differently: a translated title ("Review-
    Artikel: Zum aktuellen Stand des Plattformkapitalismus" and "Review article: The current
    situation of platform capitalism") or a reworded one, where journal, year, volume and the
    whole page range agree. No two articles share one journal volume's page range, so the
    citation stands in for the title; it needs a range short
    enough to be one article (a supplement's range, "499-711", is carried by all its abstracts).
    The first author may differ only when the titles are the same as well.
    """
    if a.preprint != b.preprint:
        return False
    if ts < MIN_CITATION_TITLE and not translated_by_one(a, b):
        return False
    if not (a.page and a.last_page and a.page == b.page and a.last_page == b.last_page):
        return False
    if not a.page.isdigit() or not 0 < int(a.last_page) - int(a.page) <= MAX_ARTICLE_PAGES:
        return False
    if a.volume is None or a.volume != b.volume or a.year is None or a.year != b.year:
        return False
    if a.issue is not None and b.issue is not None and a.issue != b.issue:
        return False
    if not venues_agree(a.venue, b.venue):
        return False
    # With the same title as well, a study group credited as first author by one database
    # ("ASCUS-LSIL Traige Study") and its writer by another ("Solomon, D") is no objection.
    return bool(first_author_agrees(a, b)) or ts >= 0.95


def bare(f: Features) -> bool:
    """A record with no venue, volume or pages: a trial registration, or a bare citation."""
    return not f.venue and f.volume is None and f.page is None


def words_substituted(x: str, y: str) -> bool:
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


def translated_by_one(a: Features, b: Features) -> bool:
    """One record gives its title as a translation ("[Observation on therapeutic effect of
    acupuncture …]. [Chinese]") and the other in another wording (the original language, or
    another English rendering), by the same author list in the same order: the citation, which
    same_citation checks in full, then names the work whatever the titles say."""
    if a.translated == b.translated or len(a.families) != len(b.families):
        return False
    return len(a.families) >= 2 and all(map(same_family, a.families, b.families))


def retitled_online_first(a: Features, b: Features) -> bool:
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
        return False
    if late.volume is None or late.page is None or a.preprint != b.preprint:
        return False
    if a.year is None or a.year != b.year or not venues_agree(a.venue, b.venue):
        return False
    if {a.kind, b.kind} - {None, "journal"}:
        return False
    short, long_ = sorted((a.families, b.families), key=len)
    if len(short) < MIN_LISTED_AUTHORS or not all(map(same_family, short, long_)):
        return False
    words_a, words_b = set(title_tokens(a.title)), set(title_tokens(b.title))
    return len(words_a & words_b) >= MIN_SHARED_WORDS * len(words_a | words_b)


def abstract_paged_twice(a: Features, b: Features, ts: float) -> bool:
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
    if not all(abstract_length(f) for f in (a, b)):
        return False
    return len(a.families) == len(b.families) >= 2 and all(map(same_family, a.families, b.families))


def abstract_length(f: Features) -> bool:
    """Whether a record's pages are one or two pages (a meeting abstract's), not an article's."""
    if f.page is None or f.last_page is None:
        return f.page is not None
    first = f.page.lstrip("abcdefghijklmnopqrstuvwxyz")
    return first.isdigit() and 0 <= int(f.last_page) - int(first) <= 1


def dated_issue(a: Features, b: Features) -> bool:
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


def shifted(a: Features, b: Features) -> bool:
    """Whether ``a``'s numbers sit one column off ``b``'s, as an export that lost a field leaves
    them: no volume, the issue in the pages column and the volume in the issue column
    (sra_haematology's "pages 9, number 26" for volume 26, issue 9, page 1746)."""
    return (
        a.volume is None and a.last_page is None and a.page is not None
        and a.page == b.issue and a.issue is not None and a.issue == b.volume
    )  # fmt: skip
