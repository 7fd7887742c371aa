"""Pure: how alike two records' normalized fields are (titles, author lists, venues)."""

from __future__ import annotations

from rapidfuzz.distance import Indel
from rapidfuzz.fuzz import token_set_ratio

from harvester.dedup.features import Features, split_title

# A title that is the whole start of the other (the main title without its subtitle) or its whole
# end (a series heading dropped: "MEDICAL PROGRESS Atypical…") counts as this similar, when it
# is long enough to name a work.
PREFIX_SIMILARITY = 0.9
MIN_PREFIX = 20


def _similar(x: str, y: str) -> float:
    score = Indel.normalized_similarity(x, y)
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    if (
        score < PREFIX_SIMILARITY
        and len(short) >= MIN_PREFIX
        and (long_.startswith(short) or long_.endswith(short))
    ):
        return PREFIX_SIMILARITY
    return score


def title_similarity(a: Features, b: Features) -> float:
    """0..1 edit similarity of the titles without spaces (robust to split or glued words);
    a bracketed alternative (original-language) title counts as the title too."""
    if not a.compact or not b.compact:
        return 0.0
    score = _similar(a.compact, b.compact)
    if score < 1.0 and (a.alt or b.alt):
        for x in filter(None, (a.compact, a.alt)):
            for y in filter(None, (b.compact, b.alt)):
                score = max(score, _similar(x, y))
    return score


def near_title(f: Features, title: str | None, threshold: float) -> bool:
    """Whether a title as stored (not normalized) is at least ``threshold`` like the record's,
    as :func:`title_similarity` scores the two records: the whole record need not be decoded
    to know."""
    folded, alt = split_title(title)
    compact, alt = folded.replace(" ", ""), alt.replace(" ", "")
    if not f.compact or not compact:
        return False
    score = _similar(f.compact, compact)
    if score < 1.0 and (f.alt or alt):
        for x in filter(None, (f.compact, f.alt)):
            for y in filter(None, (compact, alt)):
                score = max(score, _similar(x, y))
    return score >= threshold


def same_family(x: str, y: str) -> bool:
    """Family names that are equal up to a typo or a lost character (DBLP writes ``Kr?mer``)."""
    if x == y:
        return True
    if not x or not y:
        return False
    if min(len(x), len(y)) >= 4 and (
        x.startswith(y) or y.startswith(x) or x.endswith(y) or y.endswith(x)
    ):
        # A compound family name cut short ("garciamarquez" vs "garcia", "lequintrec" vs
        # "quintrec") or given names exported into it ("sihyunkang" vs "kang").
        return True
    return Indel.normalized_similarity(x, y) >= 0.8


def first_author_agrees(a: Features, b: Features) -> bool | None:
    """Whether the first authors agree; None when either record has none.

    Databases list authors in the same order, but a citation can drop or reorder the first one
    (DBLP and ACM disagree on the order of many papers) and an export can mangle one name, so
    the first author of one found among the other's first three, or half of the authors of the
    shorter list found in the other, also counts.
    """
    if not a.family or not b.family:
        return None
    if same_family(a.family, b.family):
        return True
    if any(same_family(a.family, f) for f in b.families[:3]) or any(
        same_family(b.family, f) for f in a.families[:3]
    ):
        return True
    if a.family in b.first_names or b.family in a.first_names:
        return True
    return min(len(a.families), len(b.families)) >= 2 and author_overlap(a, b) >= 0.5


def author_overlap(a: Features, b: Features) -> float:
    """Share of the shorter author list found in the other (0..1; 0 when either has none)."""
    if not a.families or not b.families:
        return 0.0
    short, long_ = sorted((a.families[:20], b.families[:20]), key=len)
    found = sum(1 for f in short if any(same_family(f, g) for g in long_))
    return found / len(short)


def pages_agree(a: Features, b: Features) -> bool | None:
    """Whether the pages are the same (True), different (False) or not comparable (None).

    An article number (``e12724``, ``c1804``) and a page range say nothing about each other; a
    single page that is the other's last page (``359`` and ``356-359``), or two ranges with the
    same last page and a slipped first digit (``2297-2108`` and ``2097-2108``), agree.
    """
    if a.page is None or b.page is None:
        return None
    if a.page == b.page:
        return True
    if a.page[0].isdigit() != b.page[0].isdigit():
        return None
    if (a.last_page is None and a.page == b.last_page) or (
        b.last_page is None and b.page == a.last_page
    ):
        return True
    return a.last_page is not None and a.last_page == b.last_page


def _abbreviates(short: tuple[str, ...], long_: tuple[str, ...]) -> bool:
    # "nat rev nephrol" abbreviates "nature reviews nephrology": each word is the start of the
    # next unused word of the long form, in order (ISO 4 abbreviations keep word order).
    i = 0
    for token in short:
        while i < len(long_) and not long_[i].startswith(token):
            i += 1
        if i == len(long_):
            return False
        i += 1
    return True


def venues_agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool | None:
    """Whether two venues can be the same (full, ISO-abbreviated or acronym); None if one is
    missing."""
    if not a or not b:
        return None
    if a == b:
        return True
    short, long_ = sorted((a, b), key=lambda t: (len(t), sum(map(len, t))))
    if _abbreviates(short, long_) or _abbreviates(long_, short):
        return True
    if len(short) == 1 and len(short[0]) >= 3 and short[0] == "".join(t[0] for t in long_):
        return True  # "vldb" is "very large data bases"
    if _glued_start(short, long_):
        return True
    for x, y in ((a, b), (b, a)):
        if len(x[0]) >= 4 and len(y) >= 4 and x[0] == "".join(t[0] for t in y):
            # A conference's acronym leading its theme: "ICIS - Transforming Society with
            # Digital Innovation" is the "International Conference on Information Systems".
            return True
    return token_set_ratio(" ".join(a), " ".join(b)) >= 90


# Letters (without spaces) a venue needs for its glued form to name the start of another.
MIN_GLUED_VENUE = 8


def _glued_start(short: tuple[str, ...], long_: tuple[str, ...]) -> bool:
    # A transliterated name written with its syllables joined or apart ("Zhongguo Zhenjiu" and
    # "Zhongguo zhen jiu [Chinese acupuncture & moxibustion]", sra_stroke id_0000231/232):
    # the one, without spaces, is the other's start up to a word's end (the rest a bracketed
    # translation or "= …" alternative title).
    glued = "".join(short)
    if len(glued) < MIN_GLUED_VENUE:
        return False
    end = 0
    for token in long_:
        end += len(token)
        if end >= len(glued):
            return end == len(glued) and "".join(long_)[:end] == glued
    return False


def printed_in(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether one venue is a meeting whose name begins with the other, a journal's, in full or
    ISO-abbreviated: "Scandinavian Journal of Immunology.Conference: 39th Meeting of …" is printed
    in "Scandinavian Journal of Immunology", "Journal of Thrombosis and Haemostasis.Conference:
    23rd Congress …" in "J Thromb Haemost" (Embase files a supplement's abstract under its
    meeting, MEDLINE under the journal)."""
    for journal, meeting in ((a, b), (b, a)):
        n = len(journal)
        if n and len(meeting) > n and _abbreviates(journal, meeting[:n]):
            return True
    return False
