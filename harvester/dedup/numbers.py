"""Pure: a citation's numbers as deduplication compares them — first and last page (a range in
parts, MEDLINE's abbreviated end page, a spreadsheet's date for a range, a Cochrane number), a
volume's or issue's digits, a year.
"""

from __future__ import annotations

import re

from harvester.text.fields import month_of_name

_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
_DIGITS = re.compile(r"\d+")
# A first page: digits, or one letter and digits (S12 supplement, e1234/c1804 article numbers).
_PAGE = re.compile(r"^(?:pp?\.?|pages?)?\s*([a-z]?)(\d+)\b")
# How many pages a thesis or report has ("215 p", "12 pp."), not where a work starts.
_PAGE_COUNT = re.compile(r"^\d+\s*(?:p|pp|pages)\.?$")


def first_page(pages: str | None) -> str | None:
    """The first page (``"pp. 322-331."`` -> ``"322"``; a supplement's ``"S12-4"`` -> ``"12"``;
    an article number keeps its letter, ``"e12724"``); None when unreadable (``"Suppl-2"``)."""
    if not pages or _PAGE_COUNT.match(pages.strip().lower()):
        return None
    match = _PAGE.match(pages.strip().lower())
    if not match:
        return None
    letter, digits = match.groups()
    digits = digits.lstrip("0") or "0"
    return digits if letter in ("", "s") else letter + digits


_LAST_PAGE = re.compile(r"[-‐-―−]+\s*[a-z]?(\d+)\W*$")


def last_page(pages: str | None) -> str | None:
    """The digits of a range's last page (``"2097-2108"`` -> ``"2108"``); None for one page."""
    if not pages:
        return None
    match = _LAST_PAGE.search(pages.strip().lower())
    return match.group(1).lstrip("0") or "0" if match else None


def _expanded(first: str, last: str | None) -> str | None:
    # MEDLINE drops the last page's leading digits shared with the first: E329-36 is 329-336.
    digits = first.lstrip("abcdefghijklmnopqrstuvwxyz")
    if last is None or len(last) >= len(digits):
        return last
    return digits[: len(digits) - len(last)] + last


# A Cochrane review's number in the pages column ("CD008391"): the review's identity, compared
# like an article number (two reviews of one group differ in it).
_COCHRANE = re.compile(r"^(?:pp?\.?\s*)?(cd\d{6})\b")
# The parts of a range printed in pieces: "484-491 + 505", "532, 534-536, 538-540", "1-113,
# iii-iv" (a roman-numeral front matter part), in any order ("505, 484-491").
_PART_SEPARATOR = re.compile(r"\s*[,+;&]\s*|\s+and\s+")
_ROMAN_PART = re.compile(r"^[ivxlc]+(?:\s*[-‐-―−]+\s*[ivxlc]+)?$")
# A range a spreadsheet read as a date: "1-6" shown as "01-Jun", "6-13" as "Jun-13".
_DAY_MONTH = re.compile(r"^(\d{1,2})-([a-z]{3,9})\.?$")
_MONTH_DAY = re.compile(r"^([a-z]{3,9})-(\d{1,2})\.?$")


def page_span(pages: str | None) -> tuple[str | None, str | None]:
    """First and last page of a pages field, as :func:`features` compares them: the first page
    as :func:`first_page` reads it and the last with MEDLINE's abbreviation expanded
    (``"E329-36"`` -> ``("e329", "336")``); a range in several parts in any order spans its
    lowest first and highest last page (``"505, 484-491"`` and ``"484-491 + 505"`` are both
    ``("484", "505")``; a roman-numeral part is front matter and ignored); a range a spreadsheet
    made a date is read back (``"01-Jun"`` -> ``("1", "6")``); a Cochrane number is kept whole
    (``"CD008391"`` -> ``("cd008391", None)``)."""
    if not pages:
        return None, None
    text = pages.strip().lower()
    if cochrane := _COCHRANE.match(text):
        return cochrane.group(1), None
    if dated := _date_range(text):
        return dated
    parts = [p for p in _PART_SEPARATOR.split(text.rstrip(".")) if p]
    if len(parts) > 1:
        spans = [_one_span(p) for p in parts if not _ROMAN_PART.match(p)]
        numbered = [(f, last) for f, last in spans if f is not None and f[-1:].isdigit()]
        if len(numbered) > 1 or (numbered and numbered[0][1] is not None):
            first = min(numbered, key=lambda s: int(_digits_of(s[0])))[0]
            ends = [int(_digits_of(last or f)) for f, last in numbered]
            top = max(ends)
            return first, str(top) if top > int(_digits_of(first)) else None
    return _one_span(text)


def _one_span(text: str) -> tuple[str | None, str | None]:
    page = first_page(text)
    return page, (_expanded(page, last_page(text)) if page else None)


def _digits_of(page: str) -> str:
    return page.lstrip("abcdefghijklmnopqrstuvwxyz") or "0"


def _date_range(text: str) -> tuple[str, str | None] | None:
    for pattern, day_first in ((_DAY_MONTH, True), (_MONTH_DAY, False)):
        match = pattern.match(text)
        if not match:
            continue
        digits, name = match.groups() if day_first else match.groups()[::-1]
        month = month_of_name(name)
        if month is None:
            return None
        first, last = (int(digits), month) if day_first else (month, int(digits))
        return str(first), (str(last) if last > first else None)
    return None


def number(value: str | None) -> str | None:
    """The digits of a volume or issue (``"Vol. 7"`` -> ``"7"``; ``"UNKNOWN"`` -> None)."""
    if not value:
        return None
    match = _DIGITS.search(value)
    return match.group(0).lstrip("0") or "0" if match else None


def year_of(value: str | int | None) -> int | None:
    """A year from ``2011``, ``"1995,"``, ``"(1994)."`` or ``"2002.0"``."""
    if value is None or isinstance(value, int):
        return value
    match = _YEAR.search(value)
    return int(match.group(1)) if match else None
