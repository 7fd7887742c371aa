"""Retraction / correction notices for the emulator, from the recorded single-work bodies.

No recorded Crossref *listing* for the ``update-type`` filter exists (see the retraction
section of ../shared/fixtures/PROVENANCE.md): the Crossref routes serve one built from the
recorded single-work bodies and work-lists of ``updates/crossref/`` in Crossref's own
work-list envelope, selected by their ``update-to`` types and their ``indexed`` dates, and
paged with cursors as every other listing. The TRIMMED bodies carry no ``indexed`` date;
they are served as indexed on the day they were captured (2026-10-08, per the collector's
README), unless a test re-indexes them (:meth:`NoticeCorpus.reindex`), as Crossref does when
a notice's metadata changes.

PubMed's notices are the recorded ``<PubmedArticle>``s of ``updates/pubmed/``, selected by
their ``PublicationType`` when the term names ``"…"[pt]`` and by their Entrez date, which a
test may move (:meth:`NoticeCorpus.enter`) to make "a day of notices".

Both are served only once a test asks for them (``include_updates()``), so the other tests'
corpora stay as recorded.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

TRIMMED_CAPTURED = "2026-10-08T00:00:00Z"
_PT_TERM = re.compile(r'"([^"]+)"\s*\[pt\]', re.IGNORECASE)
_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)


@functools.cache
def crossref_items(fixtures_dir: Path) -> tuple[dict[str, Any], ...]:
    """Every work of the recorded ``updates/crossref`` bodies (single works and lists)."""
    items: dict[str, dict[str, Any]] = {}
    for path in sorted((fixtures_dir / "updates" / "crossref").glob("*.json")):
        data = json.loads(path.read_text())
        message = data["message"]
        for item in message.get("items", [message] if data.get("message-type") == "work" else []):
            items.setdefault(item["DOI"].lower(), item)
    return tuple(items.values())


def indexed(item: dict[str, Any]) -> str:
    return str((item.get("indexed") or {}).get("date-time") or TRIMMED_CAPTURED)


def update_types(item: dict[str, Any]) -> set[str]:
    return {str(u.get("type")) for u in item.get("update-to") or () if isinstance(u, dict)}


def pt_terms(term: str) -> set[str]:
    """The publication types a term names (``"Retraction Notice"[pt]``), lower case."""
    return {m.group(1).strip().lower() for m in _PT_TERM.finditer(term)}


def publication_types(xml: bytes) -> set[str]:
    element = etree.fromstring(xml)
    return {
        " ".join((node.text or "").split()).lower()
        for node in element.iterfind("MedlineCitation/Article/PublicationTypeList/PublicationType")
    }


@functools.cache
def pubmed_articles(fixtures_dir: Path) -> tuple[tuple[str, datetime, bytes], ...]:
    """(pmid, Entrez date, raw article) of every recorded ``updates/pubmed`` article."""
    out = []
    for path in sorted((fixtures_dir / "updates" / "pubmed").glob("*.xml")):
        for match in _ARTICLE.finditer(path.read_bytes()):
            raw = match.group(0)
            element = etree.fromstring(raw)
            pmid = element.findtext("MedlineCitation/PMID")
            entrez = element.find('PubmedData/History/PubMedPubDate[@PubStatus="entrez"]')
            if pmid is None or entrez is None:
                continue
            parts = [
                int(entrez.findtext(t) or 0) for t in ("Year", "Month", "Day", "Hour", "Minute")
            ]
            out.append((pmid, datetime(*parts), raw))
    return tuple(out)
