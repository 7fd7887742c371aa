"""Bibliographic fields: language codes, partial dates, page ranges and personal names.

No I/O; every function returns ``None`` rather than ``""``.
"""

from __future__ import annotations

import calendar
import re

from harvester.text.fold import collapse_whitespace

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
