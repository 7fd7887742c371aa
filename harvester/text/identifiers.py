"""Canonical identifiers: DOI, PMID, PMCID, arXiv id and ORCID.

DOI lower case without its URL prefix, PMID and PMCID digits, arXiv id without its version,
ORCID checked by its check digit. No I/O; each returns ``None`` for what is not one.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

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
