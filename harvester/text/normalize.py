"""Pure helpers that turn what an API says into the canonical values of a Record.

Identifiers (DOI, PMID, PMCID, arXiv, ORCID), names, partial dates, page ranges, language
codes and markup-to-text. No I/O; every function returns ``None`` rather than ``""``.
"""

from __future__ import annotations

import calendar
import html
import re
from urllib.parse import unquote

from bs4 import BeautifulSoup
from bs4.element import (
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    ProcessingInstruction,
    Tag,
)

from harvester.records import Section

# --- whitespace and markup -------------------------------------------------------------------


def collapse_whitespace(value: str | None) -> str | None:
    """Runs of whitespace (including non-breaking spaces) as one space; None when empty."""
    if value is None:
        return None
    return " ".join(value.split()) or None


# A "<" that cannot start a tag ("p<0.05", "< 5") is text; escaped so the HTML parser keeps it.
_STRAY_LT = re.compile(r"<(?![A-Za-z/!?])")
_SKIPPED_NODES = (Comment, Declaration, Doctype, ProcessingInstruction)
# Elements whose boundaries separate words (HTML and JATS block elements); inline ones
# (i, b, sub, sup, sc) join their neighbours: H<sub>2</sub>O.
_BLOCKS = frozenset(
    {
        "p", "div", "br", "hr", "li", "ul", "ol", "title", "sec", "label", "caption",
        "abstract", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "list",
        "list-item", "table", "def-item", "term", "def", "disp-formula",
    }
)  # fmt: skip
# MathML annotations repeat the formula as TeX or another markup; the presentation form is enough.
_MATH_SKIPPED = frozenset({"annotation", "annotation-xml", "none", "mprescripts"})


# Superscripts and subscripts (HTML/JATS <sup>/<sub>, MathML msup/msub/mmultiscripts) are
# written with Unicode's superscript and subscript characters when every character has one
# ("³He", "Ca²⁺", "H₂S", "F₁", "⁹⁹ᵐTc"), so "3He/129Xe" keeps its meaning and reads as it
# was printed; NFKD (which query matching and dedup apply) folds them back to "3He". Text
# that cannot be written so is marked instead: "^{1,2,3}", "_{O2}".
_SUPERSCRIPT = str.maketrans(
    "0123456789+-\u2212=()abcdefghijklmnoprstuvwxyz",
    "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ",
)
_SUBSCRIPT = str.maketrans(
    "0123456789+-\u2212=()aehijklmnoprstuvx",
    "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ",
)
_SUPERSCRIPTS = frozenset("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ")
_SUBSCRIPTS = frozenset("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")
# Signs printed raised anyway, kept as they are: "Tween<sup>®</sup>", "p<sup>*</sup>".
_RAISED_SIGNS = frozenset("®™©*†‡§°′″")


def superscript(text: str) -> str:
    """``text`` as superscript characters (``"2+"`` -> ``"²⁺"``), else ``"^{text}"``."""
    return _scripted(text, _SUPERSCRIPT, _SUPERSCRIPTS, "^")


def subscript(text: str) -> str:
    """``text`` as subscript characters (``"2"`` -> ``"₂"``), else ``"_{text}"``."""
    return _scripted(text, _SUBSCRIPT, _SUBSCRIPTS, "_")


def _scripted(text: str, table: dict[int, int], done: frozenset[str], mark: str) -> str:
    text = text.strip()
    if not text:
        return ""
    written = text.translate(table)
    if all(c in done or c in _RAISED_SIGNS for c in written):
        return written
    return f"{mark}{{{' '.join(text.split())}}}"


def markup_to_text(value: str | None) -> str | None:
    """Text of an HTML/JATS/MathML fragment: tags removed, entities unescaped, whitespace collapsed.

    ``<i>in vitro</i>`` -> ``in vitro``, ``H<sub>2</sub>O`` -> ``H₂O`` (see
    :func:`superscript`); MathML is written out compactly
    (``<mmultiscripts>He<mprescripts/><none/>3</mmultiscripts>`` -> ``³He``).
    Strings without ``<`` skip the parser.
    """
    if value is None:
        return None
    if "<" not in value:
        return collapse_whitespace(html.unescape(value))
    soup = BeautifulSoup(_STRAY_LT.sub("&lt;", value), "lxml")
    parts: list[str] = []
    _append_text(soup, parts)
    return collapse_whitespace("".join(parts))


def _local_name(tag: Tag) -> str:
    # The HTML parser keeps prefixes as part of the name ("mml:math", "jats:p").
    return tag.name.rpartition(":")[2].lower()


def _append_text(node: Tag, parts: list[str]) -> None:
    for child in node.children:
        if isinstance(child, Tag):
            name = _local_name(child)
            if name in {"script", "style"}:
                continue
            if name == "math":
                parts.append(_math_text(child))
            elif name in _BLOCKS:
                parts.append(" ")
                _append_text(child, parts)
                parts.append(" ")
            elif name in _SCRIPTS:
                parts.append(_script_text(child, name))
            else:
                _append_text(child, parts)
        elif isinstance(child, NavigableString) and not isinstance(child, _SKIPPED_NODES):
            parts.append(str(child))


_SCRIPTS = frozenset({"sup", "sub"})


def _script_text(node: Tag, name: str) -> str:
    inner: list[str] = []
    _append_text(node, inner)
    text = "".join(inner)
    return superscript(text) if name == "sup" else subscript(text)


def _math_text(node: Tag) -> str:
    """MathML as one compact run: whitespace between tokens is layout, not content."""
    name = _local_name(node)
    if name in _MATH_SKIPPED:
        return ""
    if name in {"mi", "mn", "mo", "ms"}:
        return node.get_text().strip()
    if name == "mtext":
        return " ".join(node.get_text().split()) or " "
    children = [c for c in node.children if isinstance(c, Tag)]
    if name == "mmultiscripts":
        # base, (post-sub, post-sup)…, <mprescripts/>, (pre-sub, pre-sup)… : isotopes read
        # "³He", "¹²⁹Xe" (<none/> is an empty script).
        names = [_local_name(c) for c in children]
        cut = names.index("mprescripts") if "mprescripts" in names else len(children)
        base = _math_text(children[0]) if cut > 0 else ""
        return _script_pairs(children[cut + 1 :]) + base + _script_pairs(children[1:cut])
    texts = [_math_text(c) for c in children]
    if name in {"msup", "msub"} and len(texts) == 2:
        return texts[0] + (superscript if name == "msup" else subscript)(texts[1])
    if name == "msubsup" and len(texts) == 3:
        return texts[0] + subscript(texts[1]) + superscript(texts[2])
    if name == "mfrac" and len(texts) == 2:
        return f"{texts[0]}/{texts[1]}"
    if name == "msqrt":
        return f"√({''.join(texts)})"
    return "".join(texts)


def _script_pairs(children: list[Tag]) -> str:
    """MathML's (subscript, superscript) pairs of an mmultiscripts, written out."""
    parts = []
    for index in range(0, len(children), 2):
        parts.append(subscript(_math_text(children[index])))
        if index + 1 < len(children):
            parts.append(superscript(_math_text(children[index + 1])))
    return "".join(parts)


# --- identifiers -----------------------------------------------------------------------------

_DOI_PREFIX = re.compile(r"^(?:https?://)?(?:dx\.|www\.)?doi\.org/|^(?:info:)?doi[:/]\s*", re.I)
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")


def normalize_doi(value: str | None) -> str | None:
    """``10.xxxx/…`` in lower case (DOIs are case-insensitive) from a DOI, ``doi:`` or URL form."""
    if value is None:
        return None
    doi = unquote(value).strip()
    while (stripped := _DOI_PREFIX.sub("", doi, count=1).strip()) != doi:
        doi = stripped
    # A DOI cited at the end of a sentence keeps the sentence's punctuation.
    doi = doi.rstrip(".,;:").lower()
    return doi if _DOI.match(doi) else None


_PMID = re.compile(r"^(?:pmid:?|pubmed[:/])?\s*0*([1-9]\d{0,8})/?$", re.I)
_PUBMED_URL = re.compile(
    r"^https?://(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pubmed)/", re.I
)


def normalize_pmid(value: str | None) -> str | None:
    """PMID digits (no leading zeros) from ``123``, ``PMID: 123`` or a PubMed URL."""
    if value is None:
        return None
    match = _PMID.match(_PUBMED_URL.sub("", value.strip()))
    return match.group(1) if match else None


_PMCID = re.compile(r"^(?:.*/)?(?:pmcid:\s*)?(?:PMC)?(\d{1,9})(?:\.\d+)?/?$", re.I)


def normalize_pmcid(value: str | None) -> str | None:
    """``PMC123`` from ``PMC123``, ``pmc123``, ``123``, ``PMC123.1`` or a PMC article URL."""
    if value is None:
        return None
    match = _PMCID.match(value.strip())
    return f"PMC{int(match.group(1))}" if match and int(match.group(1)) else None


_ARXIV_PREFIX = re.compile(
    r"^(?:https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/|(?:10\.48550/)?arxiv[:.])", re.I
)
# New scheme (2007-): YYMM.NNNN(N); old scheme: archive(.SUBJECT-CLASS)/YYMMNNN.
# https://info.arxiv.org/help/arxiv_identifier.html
_ARXIV_NEW = re.compile(r"^(\d{4}\.\d{4,5})(?:v\d+)?$")
_ARXIV_OLD = re.compile(r"^([a-z][a-z-]*(?:\.[a-z]{2})?)/(\d{7})(?:v\d+)?$", re.I)


def normalize_arxiv(value: str | None) -> str | None:
    """arXiv id without version: ``2101.00001``, ``hep-th/9901001``, ``math.GT/0309136``."""
    if value is None:
        return None
    text = _ARXIV_PREFIX.sub("", value.strip()).removesuffix(".pdf").rstrip("/")
    if new := _ARXIV_NEW.match(text):
        return new.group(1)
    if old := _ARXIV_OLD.match(text):
        archive, _, subject = old.group(1).partition(".")
        subject = f".{subject.upper()}" if subject else ""
        return f"{archive.lower()}{subject}/{old.group(2)}"
    return None


_ORCID = re.compile(r"(?:^|/)(\d{4})[-\s]?(\d{4})[-\s]?(\d{4})[-\s]?(\d{3}[\dX])/?$", re.I)


def normalize_orcid(value: str | None) -> str | None:
    """``0000-0002-1825-0097`` from a bare or URL ORCID iD; None if its check digit is wrong."""
    if value is None:
        return None
    match = _ORCID.search(value.strip())
    if not match:
        return None
    digits = "".join(match.groups()).upper()
    return (
        "-".join(match.groups()).upper() if _orcid_check_digit(digits[:15]) == digits[15] else None
    )


def _orcid_check_digit(base: str) -> str:
    # ISO 7064 11,2, as specified by ORCID:
    # https://support.orcid.org/hc/en-us/articles/360006897674-Structure-of-the-ORCID-Identifier
    total = 0
    for digit in base:
        total = (total + int(digit)) * 2
    result = (12 - total % 11) % 11
    return "X" if result == 10 else str(result)


# --- languages -------------------------------------------------------------------------------

# ISO 639-2 (bibliographic, as MEDLINE and Europe PMC use) -> ISO 639-1, for the languages
# most common in MEDLINE; anything else keeps its three letters.
_ISO639_1 = {
    "afr": "af", "ara": "ar", "bul": "bg", "cat": "ca", "chi": "zh", "cze": "cs", "dan": "da",
    "dut": "nl", "eng": "en", "est": "et", "fin": "fi", "fre": "fr", "ger": "de", "gre": "el",
    "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "ice": "is", "ind": "id", "ita": "it",
    "jpn": "ja", "kor": "ko", "lav": "lv", "lit": "lt", "nor": "no", "per": "fa", "pol": "pl",
    "por": "pt", "rum": "ro", "rus": "ru", "slo": "sk", "slv": "sl", "spa": "es", "srp": "sr",
    "swe": "sv", "tha": "th", "tur": "tr", "ukr": "uk", "vie": "vi",
}  # fmt: skip


def language_code(value: str | None) -> str | None:
    """ISO 639-1 (``en``) for an ISO 639-2 code (``eng``); other codes lower-cased as given.

    ``und`` (undetermined) is None.
    """
    code = (value or "").strip().lower()
    if not code or code == "und":
        return None
    return _ISO639_1.get(code, code)


# --- dates -----------------------------------------------------------------------------------

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
# Seasons -> the first month of the season. Winter is 1, not 12: a "Winter 2020" issue is
# normally the first issue of volume-year 2020, and month 12 would date it after the year's
# Spring, Summer and Fall issues.
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 1}


def month_number(value: str | int | None) -> int | None:
    """1-12 from ``1``, ``"01"``, ``"Jan"``, ``"January"``, ``"Sept."`` or a season (see above)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 12 else None
    text = value.strip().rstrip(".").lower()
    if text.isdigit():
        return month_number(int(text))
    return _MONTHS.get(text) or _SEASONS.get(text)


def month_of_name(value: str | None) -> int | None:
    """1-12 from a month's name or abbreviation alone (``"May"``, ``"SEPT."``); None for
    anything else, numbers, seasons and ranges of months included."""
    if not value:
        return None
    return _MONTHS.get(value.strip().rstrip(".").lower())


def partial_date(
    year: str | int | None, month: str | int | None = None, day: str | int | None = None
) -> str | None:
    """ISO 8601 partial date: ``2020``, ``2020-06`` or ``2020-06-15``; parts that do not
    make a real date are dropped from the right."""
    year_number = _int(year)
    if year_number is None or not 1000 <= year_number <= 9999:
        return None
    month_no = month_number(month)
    if month_no is None:
        return f"{year_number:04d}"
    day_no = _int(day)
    if day_no is None or not 1 <= day_no <= calendar.monthrange(year_number, month_no)[1]:
        return f"{year_number:04d}-{month_no:02d}"
    return f"{year_number:04d}-{month_no:02d}-{day_no:02d}"


def _int(value: str | int | None) -> int | None:
    if isinstance(value, int):
        return value
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


# NLM MedlineDate: "the date when it does not fit the Year/Month/Day pattern", e.g.
# "1998 Dec-1999 Jan", "2000 Spring", "1975-1976", "2010 Jul 1-15"
# (https://www.nlm.nih.gov/bsd/mms/medlineelements.html#dp). Only the start is kept.
_MEDLINE_DATE = re.compile(r"^\s*(\d{4})(?:\s+([A-Za-z]+)\.?(?:\s+(\d{1,2})(?!\d))?)?")
_ANY_YEAR = re.compile(r"\b(\d{4})\b")


def parse_medline_date(text: str | None) -> tuple[int | None, str | None]:
    """``(year, partial ISO date of the start)`` of a PubMed MedlineDate string."""
    if not text:
        return None, None
    match = _MEDLINE_DATE.match(text)
    if match is None:
        found = _ANY_YEAR.search(text)
        year = int(found.group(1)) if found else None
        return year, partial_date(year)
    year_text, month, day = match.groups()
    published = partial_date(year_text, month, day)
    return int(year_text), published


# --- pages -----------------------------------------------------------------------------------

_DASHES = re.compile(r"\s*[-\u2010-\u2015\u2212]+\s*")
_PAGE = re.compile(r"^([A-Za-z]*)(\d+)([A-Za-z]*)$")
_RANGE = re.compile(r"\b([A-Za-z]*\d+[A-Za-z]*)-([A-Za-z]*\d+[A-Za-z]*)\b")


def normalize_pages(
    start: str | None, end: str | None = None, medline_pgn: str | None = None
) -> str | None:
    """``293-305`` from start/end pages, else from a MedlinePgn string.

    MedlinePgn drops repeated leading digits (``1148-63``) and prefixes (``S1-5``); both are
    written out (``1148-1163``, ``S1-S5``). Article numbers (``e1234``) stay as they are.
    """
    first = collapse_whitespace(start)
    last = collapse_whitespace(end)
    if first:
        return _expand_range(first, last) if last and last != first else first
    pgn = collapse_whitespace(medline_pgn)
    if pgn is None:
        return None
    # Every range in it ("1148-63; discussion 1164-5") is expanded.
    return _RANGE.sub(lambda m: _expand_range(m.group(1), m.group(2)), _DASHES.sub("-", pgn))


def _expand_range(first: str, last: str | None) -> str:
    if not last:
        return first
    begin, end = _PAGE.match(first), _PAGE.match(last)
    if begin is None or end is None:
        return f"{first}-{last}"
    prefix, digits, suffix = begin.groups()
    end_digits = end.group(2)
    if len(end_digits) < len(digits):
        end_digits = digits[: len(digits) - len(end_digits)] + end_digits
    if int(end_digits) < int(digits):
        return f"{first}-{last}"
    return f"{first}-{end.group(1) or prefix}{end_digits}{end.group(3) or suffix}"


# --- names -----------------------------------------------------------------------------------

_PARTICLES = frozenset(
    {"da", "das", "de", "del", "della", "der", "des", "di", "do", "dos", "du", "la", "le",
     "st", "ten", "ter", "van", "von"}
)  # fmt: skip
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_INITIALS = re.compile(r"^[A-Z]{1,3}$")


def split_name(full: str | None) -> tuple[str | None, str | None]:
    """``(family, given)`` from ``"Yip, Jesse W C"``, ``"Jesse W C Yip"`` or ``"Yip JWC"``.

    Lower-case particles stay with the family name (``"Ludwig van Beethoven"`` ->
    ``("van Beethoven", "Ludwig")``); generational suffixes (Jr, III) are dropped, as
    Record has no field for them.
    """
    text = collapse_whitespace(full)
    if text is None:
        return None, None
    if "," in text:
        family, _, rest = text.partition(",")
        given = ", ".join(
            p for p in (s.strip() for s in rest.split(",")) if p.lower() not in _SUFFIXES
        )
        return collapse_whitespace(family), collapse_whitespace(given)
    words = [w for w in text.split() if w.lower() not in _SUFFIXES] or text.split()
    if len(words) == 1:
        return words[0], None
    if _INITIALS.match(words[-1]):  # Vancouver style: family name, then initials
        return " ".join(words[:-1]), words[-1]
    cut = len(words) - 1
    while cut > 1 and words[cut - 1] in _PARTICLES:
        cut -= 1
    return " ".join(words[cut:]), " ".join(words[:cut])


# --- plain text with stray markup ------------------------------------------------------------

# HTML and JATS tags that turn up in preprint servers' plain-text fields (arXiv, bioRxiv).
# Only these are removed: a "<" that does not open one of them is text, as in LaTeX
# ("$n<k$", "$a <b$"), which markup_to_text would read as the start of an element.
_KNOWN_TAG = re.compile(
    r"</?(?P<name>i|b|u|em|strong|sub|sup|sc|span|font|a|tt|code|p|br|hr|div|li|ul|ol|h[1-6]"
    r"|italic|bold|underline|monospace|jats:[a-z-]+)(?:\s[^<>]*)?/?>",
    re.I,
)
_BLOCK_TAGS = frozenset({"p", "br", "hr", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4"})


def strip_markup(value: str | None) -> str | None:
    """Plain text of a field that is meant to be plain: known HTML/JATS tags removed,
    entities unescaped, whitespace collapsed; any other ``<`` (LaTeX) stays. MathML goes
    through :func:`markup_to_text`."""
    if value is None:
        return None
    if re.search(r"<(?:\w+:)?math[\s>]", value):
        return markup_to_text(value)

    def replace(match: re.Match[str]) -> str:
        name = match.group("name").lower()
        return " " if name.removeprefix("jats:") in _BLOCK_TAGS | {"title", "sec"} else ""

    if "<su" in value:
        value = _SCRIPT_TAG.sub(_scripted_match, value)
    return collapse_whitespace(html.unescape(_KNOWN_TAG.sub(replace, value)))


_SCRIPT_TAG = re.compile(r"<(sup|sub)(?:\s[^<>]*)?>([^<]*)</\1\s*>", re.I)


def _scripted_match(match: re.Match[str]) -> str:
    text = html.unescape(match.group(2))
    return (superscript if match.group(1).lower() == "sup" else subscript)(text)


# --- structured abstracts --------------------------------------------------------------------

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "title"})
_BOLD = frozenset({"b", "strong"})
# Containers in which a leading bold run reads as a section label ("<p><b>Methods:</b> …").
_LABEL_PARENTS = frozenset({"[document]", "html", "body", "p", "div", "sec", "abstract"})
_MAX_LABEL_CHARS = 60
# A first heading that only announces the abstract is not a section label
# (Crossref JATS: <jats:title>Abstract</jats:title>, Europe PMC <h4>Summary</h4>).
_ABSTRACT_HEADINGS = frozenset({"abstract", "summary", "graphical abstract"})


def markup_sections(value: str | None) -> tuple[Section, ...]:
    """Labelled Sections of an HTML or JATS abstract; plain text gives one unlabelled Section.

    Labels come from headings (``<h4>Background</h4>``, JATS ``<sec><title>Methods</title>``)
    and from a bold run opening a paragraph (``<p><b>Results:</b> …``); the trailing colon is
    dropped. Text before the first label is an unlabelled Section; an opening "Abstract"
    heading is dropped. Inline markup is removed as :func:`markup_to_text` does.
    """
    if value is None:
        return ()
    if "<" not in value:
        text = collapse_whitespace(html.unescape(value))
        return (Section(label=None, text=text),) if text else ()
    soup = BeautifulSoup(_STRAY_LT.sub("&lt;", value), "lxml")
    pieces: list[tuple[str | None, list[str]]] = [(None, [])]
    _split_sections(soup, pieces)
    sections: list[Section] = []
    for index, (label, parts) in enumerate(pieces):
        text = collapse_whitespace("".join(parts))
        if index == 1 and label is not None and label.lower() in _ABSTRACT_HEADINGS:
            label = None  # an opening "Abstract" heading (index 0 is the text before it)
        if text:
            sections.append(Section(label=label, text=text))
    return tuple(sections)


def _split_sections(node: Tag, pieces: list[tuple[str | None, list[str]]]) -> None:
    for child in node.children:
        if isinstance(child, Tag):
            name = _local_name(child)
            if name in {"script", "style"}:
                continue
            if name in _HEADINGS or (name in _BOLD and _opens_paragraph(child)):
                label = _label(child)
                if label is not None:
                    pieces.append((label, []))
                    continue
            parts = pieces[-1][1]
            if name == "math":
                parts.append(_math_text(child))
            elif name in _SCRIPTS:
                parts.append(_script_text(child, name))
            elif name in _BLOCKS:
                parts.append(" ")
                _split_sections(child, pieces)
                pieces[-1][1].append(" ")
            else:  # html/body wrappers and inline markup: headings may still be inside
                _split_sections(child, pieces)
        elif isinstance(child, NavigableString) and not isinstance(child, _SKIPPED_NODES):
            pieces[-1][1].append(str(child))


def _opens_paragraph(tag: Tag) -> bool:
    """A bold run that is the first thing in its paragraph, or follows a line break."""
    parent = tag.parent
    if parent is None or parent.name is None:
        return False
    if parent.name.rpartition(":")[2] not in _LABEL_PARENTS:
        return False
    previous = tag.previous_sibling
    while isinstance(previous, NavigableString) and not str(previous).strip():
        previous = previous.previous_sibling
    return previous is None or (isinstance(previous, Tag) and _local_name(previous) == "br")


def _label(tag: Tag) -> str | None:
    text = markup_to_text(str(tag.decode_contents()))
    if text is None:
        return None
    text = text.rstrip(":.").strip()
    if not text or len(text) > _MAX_LABEL_CHARS or not any(c.isalpha() for c in text):
        return None
    return text


# --- JSON values -----------------------------------------------------------------------------
# JSON APIs (OpenAlex, Semantic Scholar) send values whose type the parser must not trust:
# these read one value as the documented type or raise UnexpectedValue naming where it was,
# so the parser can skip that one record and say why.


class UnexpectedValue(ValueError):
    """A JSON value of another type than the API documents; the message says where."""


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "?")


def json_object(value: object, where: str) -> dict[str, object] | None:
    """``value`` if it is a JSON object, None if null; UnexpectedValue otherwise."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    raise UnexpectedValue(f"{where}: expected an object, got {_json_type(value)}")


def json_list(value: object, where: str) -> list[object]:
    """``value`` if it is a JSON array, ``[]`` if null; UnexpectedValue otherwise."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise UnexpectedValue(f"{where}: expected an array, got {_json_type(value)}")


def json_text(value: object, where: str, *, numbers: bool = False) -> str | None:
    """``value`` if it is a string (numbers too when ``numbers``: volume 12), None if null."""
    if value is None or isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise UnexpectedValue(f"{where}: expected a string, got {_json_type(value)}")


def json_int(value: object, where: str) -> int | None:
    """``value`` if it is an integer (or a string of digits), None if null."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    # ASCII digits only ("²".isdigit() is true but int() refuses it), and few of them.
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    raise UnexpectedValue(f"{where}: expected an integer, got {_json_type(value)}")


# --- speed helpers (private) -----------------------------------------------------------------

# The whitespace other than " " that str.split() splits on: str.isspace(), none above U+3000.
_OTHER_SPACES = tuple(c for c in map(chr, range(0x3001)) if c.isspace() and c != " ")
_ASCII_OTHER_SPACES = tuple(c for c in _OTHER_SPACES if c.isascii())
# Below this length splitting and joining is as quick as looking for whitespace to collapse.
_SHORT_TEXT = 48


def _collapse_text(text: str) -> str | None:
    """``collapse_whitespace(text)`` for a str, quicker on text already collapsed (most text):
    looking for each kind of whitespace is quicker than splitting a long text into words."""
    if len(text) < _SHORT_TEXT or text[0] == " " or text[-1] == " " or "  " in text:
        return " ".join(text.split()) or None
    for space in _ASCII_OTHER_SPACES if text.isascii() else _OTHER_SPACES:
        if space in text:
            return " ".join(text.split()) or None
    return text
