"""Pure: what deduplication compares — normalized titles, names, venues, pages — and blocking keys.

:func:`features` reduces a Record to the few normalized values the matcher compares (computed once
per record); :func:`blocking_keys` gives the short strings under which a record is filed, so that
only records sharing a key are ever compared (cost about linear in the number of records).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from harvester.dedup.numbers import number, page_span
from harvester.records import Author, Record
from harvester.text.fields import month_of_name
from harvester.text.identifiers import normalize_arxiv
from harvester.text.markup import markup_to_text

# Greek letters are written as symbols by some databases and spelled by others ("TNF-α" vs
# "TNF-alpha"); both become the spelled name.
_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu",
    "ξ": "xi", "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma", "τ": "tau",
    "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega", "µ": "mu", "ϐ": "beta",
    "ϑ": "theta", "ϕ": "phi", "ϵ": "epsilon",
}  # fmt: skip
# Letters NFKD does not decompose into a base letter plus a combining mark.
_FOLD = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ł": "l",
    "ı": "i",
}
_TRANSLATION = str.maketrans({**_GREEK, **_FOLD})
# "[German]", "[Article in French]", "[Chinese]": the language note databases append to a
# translated title; a whole title in brackets is the translated title itself (MEDLINE style).
_LANGUAGE_NOTE = re.compile(
    r"\s*[\[(](?:article in |in )?[a-z]+(?: with [a-z ]+ abstract)?[\])]\.?$"
)
_NON_WORD = re.compile(r"[\W_]+")
_COMBINING = dict.fromkeys(
    c for c in range(0x300, 0x370)
)  # combining diacritical marks, dropped after NFKD decomposition
_PREPRINT_DOI = ("10.1101/", "10.48550/")
PREPRINT_SOURCES = frozenset({"arxiv", "biorxiv", "medrxiv"})
_STOPWORDS = frozenset(
    {"a", "an", "and", "the", "of", "in", "on", "for", "to", "with", "by", "at", "from", "or",
     "de", "la", "le", "et", "der", "die", "und", "des", "du", "en"}
)  # fmt: skip

# Notices that refer to another work and are never merged into it. Matched at the start of the
# title (after normalization) or from the record type (Crossref/PubMed publication types).
_NOTICE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("erratum", "correction"), ("errata", "correction"), ("corrigendum", "correction"),
    ("correction", "correction"), ("corrections", "correction"), ("addendum", "correction"),
    ("notice of retraction", "retraction"), ("retraction", "retraction"),
    ("retracted", "retraction"), ("retraction note", "retraction"), ("withdrawn", "retraction"),
    ("expression of concern", "retraction"), ("reply", "reply"), ("in reply", "reply"),
    ("author reply", "reply"), ("authors reply", "reply"), ("response to", "reply"),
    ("comment on", "comment"), ("comments on", "comment"), ("commentary on", "comment"),
    ("re", "comment"), ("letter to the editor", "comment"),
)  # fmt: skip
_NOTICE_TYPES = {
    "erratum": "correction", "correction": "correction", "retraction": "retraction",
    "retracted-publication": "retraction", "comment": "comment", "reply": "reply",
}  # fmt: skip
# Titles that name a kind of piece rather than a work: shared by many different works.
GENERIC_TITLES = frozenset(
    {"editorial", "editorial introduction", "editorial notes", "editors notes", "editor s notes",
     "introduction", "preface", "foreword", "letter", "letters", "letter from the editor",
     "book review", "book reviews", "reviews", "news", "index", "author index", "subject index",
     "commentary", "comment", "reply", "response", "correspondence", "erratum", "correction",
     "obituary", "in memoriam", "abstracts", "conference report", "guest editorial",
     "from the editor", "from the editors", "editorial board", "contents", "table of contents",
     "acknowledgments", "acknowledgements", "announcements", "call for papers",
     "reminiscences on influential papers", "overview", "case report", "discussion",
     "book review column", "editors note", "editor s note", "chair s message", "chairs message",
     "report", "interview", "errata", "introduction to the special issue", "guest editors notes",
     "guest editor s introduction", "panel", "keynote", "tutorial", "message from the chair",
     "private correspondence", "personal communication", "unpublished manuscript"}
)  # fmt: skip


# Words of the titles of recurring pieces ("Editor's Comments", "Remarks from the Editor").
_GENERIC_WORDS = frozenset(
    {"editor", "editors", "editorial", "column", "preface", "foreword", "comments", "notes",
     "message", "news", "reviews", "remarks", "erratum", "errata", "corrigendum", "obituary",
     "letter", "letters", "announcement", "announcements", "reminiscences"}
)  # fmt: skip


# What kind of publication a venue names. A technical report, a conference paper and the
# journal article that grew out of them are different records (Rathbone 2015's definition, which
# the review benchmarks and Cora's labels follow), however alike their titles.
_REPORT_WORDS = frozenset(
    {"report", "rep", "tr", "manuscript", "unpublished", "thesis", "dissertation", "phd",
     "working", "memo", "draft", "submitted", "preparation"}
)  # fmt: skip
_CONFERENCE_WORDS = frozenset(
    {"proceedings", "proc", "conference", "conf", "symposium", "symp", "workshop", "congress",
     "meeting", "colloquium", "abstracts"}
)  # fmt: skip
_JOURNAL_WORDS = frozenset(
    {"journal", "j", "transactions", "trans", "magazine", "quarterly", "letters", "annals",
     "bulletin", "review", "reviews"}
)  # fmt: skip


def venue_kind(tokens: tuple[str, ...]) -> str | None:
    """``report``, ``conference`` or ``journal`` when the venue's words say so, else None."""
    words = set(tokens)
    if words & _REPORT_WORDS:
        return "report"
    if words & _CONFERENCE_WORDS:
        return "conference"
    if words & _JOURNAL_WORDS:
        return "journal"
    return None


def is_generic(title: str) -> bool:
    """A title that names a kind of piece rather than a work, shared by many works."""
    words = title.split()
    return (
        title in GENERIC_TITLES
        or len(title) < 12
        or (len(words) <= 8 and any(w in _GENERIC_WORDS for w in words))
    )


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower case letters and digits separated by single spaces: diacritics, Greek letters,
    HTML entities and punctuation resolved; other scripts (Cyrillic, CJK) kept as they are.
    Cached: author and venue names repeat across a file."""
    if "&" in text:
        text = html.unescape(text)
    text = text.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_TRANSLATION))
        text = text.translate(_COMBINING)
    return _NON_WORD.sub(" ", text).strip()


# Bracketed notes MEDLINE and EndNote exports append: "[Review] [57 refs]", "[Erratum appears in
# …]" (cut short at the export's field limit, so the closing bracket may be missing).
_BRACKETED = re.compile(r"\s*\[([^\]]*)(?:\]|$)")


# The citation of the corrected article that bibliographic databases append to an erratum's
# title in place of "Erratum: ": Web of Science "Eculizumab for … (vol 360, pg 542, 2009)",
# Embase "Eculizumab for … (New England Journal of Medicine (2009) 360 (542-544))".
_CITED_ARTICLE = re.compile(
    r"\s*\((?:vol\.? \w+,? pg\.? \w+,? \d{4}|[^()]+\(\d{4}\)\s*\w+\s*\([\w\s-]+\))\)\W*$"
)


def cites_article(title: str | None) -> bool:
    """Whether a title ends with the citation of the article it corrects (an erratum)."""
    return bool(title and _CITED_ARTICLE.search(title.lower()))


def split_title(title: str | None) -> tuple[str, str]:
    """The comparable form of a title and of a bracketed alternative title (a translated
    title's original, ``"Working in … [Arbeiten in …]"``), folded; language notes, enclosing
    brackets and bracketed export notes removed."""
    if not title:
        return "", ""
    text = markup_to_text(title) if "<" in title else title
    text = _CITED_ARTICLE.sub("", (text or "").lower()).strip().rstrip(".").strip()
    text = _LANGUAGE_NOTE.sub("", text).strip().rstrip(".")
    if text.startswith("[") and "]" in text:
        # "[Indications and contraindications …]. [Spanish]": the translated title itself.
        inner, _, rest = text[1:].partition("]")
        text = inner + " " + rest
    alt = ""
    for note in _BRACKETED.findall(text):
        words = note.split()
        if len(words) >= 3 and not note.startswith(("erratum", "published erratum", "comment")):
            alt = alt or note
    text = _BRACKETED.sub(" ", text)
    folded = fold(text)
    return folded, fold(alt) if alt and folded else ""


def normalize_title(title: str | None) -> str:
    """The comparable form of a title (see :func:`split_title`)."""
    return split_title(title)[0]


def family_key(family: str | None) -> str:
    """A family name reduced to its letters (``"Cesa-Bianchi"`` -> ``"cesabianchi"``)."""
    return fold(family or "").replace(" ", "")


def venue_tokens(venue: str | None) -> tuple[str, ...]:
    return tuple(t for t in fold(venue or "").split() if t not in _STOPWORDS)


def notice_kind(title: str, type_: str | None) -> str | None:
    """``correction``/``retraction``/``comment``/``reply`` for a notice about another work."""
    if type_ and (kind := _NOTICE_TYPES.get(type_.lower())):
        return kind
    for prefix, kind in _NOTICE_PREFIXES:
        if title.startswith(prefix) and (len(title) == len(prefix) or title[len(prefix)] == " "):
            # "Correction" alone or "Reply" alone is a generic title, not a notice about a work.
            return kind if len(title) > len(prefix) else None
    return None


def is_preprint(record: Record) -> bool:
    """A preprint server's record (bioRxiv/medRxiv/arXiv), not the journal version of the work."""
    doi = record.ids.doi
    if doi and not doi.startswith(_PREPRINT_DOI):
        return False
    if record.source in PREPRINT_SOURCES or (doi and doi.startswith(_PREPRINT_DOI)):
        return True
    if (record.type or "").lower() in {"posted-content", "preprint"}:
        return True
    venue = (record.venue or "").lower()
    return "rxiv" in venue or "preprint" in venue


@dataclass(frozen=True, slots=True)
class Features:
    """The normalized values of one record that the matcher compares."""

    title: str
    compact: str
    alt: str
    generic: bool
    notice: str | None
    family: str
    families: tuple[str, ...]
    first_names: frozenset[str]
    year: int | None
    venue: tuple[str, ...]
    kind: str | None
    volume: str | None
    issue: str | None
    page: str | None
    last_page: str | None
    doi: str | None
    ids: tuple[tuple[str, str], ...]
    preprint: bool
    published_doi: str | None
    # The month an issue field names instead of a number (``issue`` is then None).
    month: int | None
    # The title is a translation (MEDLINE's "[Translated title]" or a language note): the
    # original-language record of the work may word it quite differently.
    translated: bool = False


def identifiers(record: Record) -> tuple[tuple[str, str], ...]:
    """``(scheme, value)`` pairs; arXiv's DataCite DOI ``10.48550/arxiv.X`` counts as arXiv id X."""
    out: list[tuple[str, str]] = []
    for scheme, value in record.ids.items():
        if scheme == "doi" and value.startswith("10.48550/arxiv."):
            arxiv = normalize_arxiv(value)
            if arxiv and (record.ids.arxiv in (None, arxiv)):
                out.append(("arxiv", arxiv))
                continue
        out.append((scheme, value))
    return tuple(dict.fromkeys(out))


def features(record: Record) -> Features:
    """Compute once per record what :func:`harvester.dedup.rules.decide` compares."""
    title, alt = split_title(record.title)
    venue = venue_tokens(record.venue)
    page, last = page_span(record.pages)
    ids = identifiers(record)
    families = tuple(f for f in (family_key(a.family or a.collective) for a in record.authors) if f)
    return Features(
        title=title,
        compact=title.replace(" ", ""),
        alt=alt.replace(" ", ""),
        generic=is_generic(title),
        notice=notice_kind(title, record.type)
        or ("correction" if cites_article(record.title) else None),
        family=families[0] if families else "",
        families=families,
        first_names=_name_words(record.authors[0]) if record.authors else frozenset(),
        year=record.year,
        venue=venue,
        kind=venue_kind(venue),
        volume=number(record.volume),
        issue=number(record.issue),
        page=page,
        # A last page without a readable first page is an export's mangled range ("Suppl-61").
        last_page=last,
        doi=dict(ids).get("doi"),
        ids=ids,
        preprint=is_preprint(record),
        published_doi=record.published_doi,
        month=month_of_name(record.issue),
        translated=is_translated(record.title),
    )


def is_translated(title: str | None) -> bool:
    """Whether a title is given as a translation: all in brackets (``"[Observation on …]"``,
    MEDLINE's form) or with a language note (``"… [Chinese]"``)."""
    text = (title or "").strip().lower().rstrip(".")
    note = _BRACKETED_NOTE.search(text)
    return text.startswith("[") or bool(note and note.group(1) not in _NOT_LANGUAGES)


# A language note in brackets at a title's end, and the other one-word notes exports append.
_BRACKETED_NOTE = re.compile(r"\[(?:article in |in )?([a-z]+)(?: with [a-z ]+ abstract)?\]$")
_NOT_LANGUAGES = frozenset({"review", "editorial", "letter", "comment", "abstract", "erratum"})


def _name_words(author: Author) -> frozenset[str]:
    # Every word of the first author's name, for exports that swap family and given names
    # ("Ching-yi, Wu" for Wu Ching-yi).
    text = fold(" ".join(p for p in (author.family, author.given, author.collective) if p))
    return frozenset(w for w in text.replace(" ", " ").split() if len(w) >= 2)


def title_tokens(title: str) -> list[str]:
    return [t for t in title.split() if t not in _STOPWORDS]


def keys_of(f: Features) -> tuple[str, ...]:
    """Blocking keys from features: see :func:`blocking_keys`."""
    keys: list[str] = [f"id:{scheme}:{value}" for scheme, value in f.ids]
    if f.published_doi:
        keys.append(f"id:doi:{f.published_doi}")
    if f.compact:
        # Start and end of the title without spaces: robust to word-splitting errors
        # ("Databasearchitecture") and to a subtitle or language note present in one record only.
        keys.append(f"ts:{f.compact[:14]}")
        if len(f.compact) > 20:
            keys.append(f"te:{f.compact[-14:]}")
        tokens = sorted(set(title_tokens(f.title)), key=lambda t: (-len(t), t))[:2]
        if len(tokens) == 2 and f.family:
            # The two longest words with the first author: catches a typo at both title ends.
            keys.append(f"tw:{f.family[:8]}:{'.'.join(sorted(tokens))}")
    if f.family and f.year:
        # Year and year+1: two records a year apart share one key, as the matcher allows ±1.
        keys.append(f"ay:{f.family[:12]}:{f.year}")
        keys.append(f"ay:{f.family[:12]}:{f.year + 1}")
    return tuple(keys)


def blocking_keys(record: Record) -> tuple[str, ...]:
    """Short strings under which a record is filed; two records that may be the same work share
    at least one. Identifier keys (``id:doi:…``, ``id:pmid:…``, a preprint's ``published_doi``),
    title start/end keys (``ts:``/``te:``), a title-words + author key (``tw:``) and first-author
    + year keys (``ay:family:year`` and ``ay:family:year+1``, so years ±1 meet)."""
    return keys_of(features(record))
