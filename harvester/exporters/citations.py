"""Stored works as RIS (rispy: Zotero, EndNote, Mendeley) and CSL-JSON (the Citation Style
Language's JSON, which Zotero, citation-js and Pandoc read)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TextIO

from harvester.exporters.kinds import type_of
from harvester.records import Author, StoredWork


def _page_range(pages: str | None) -> tuple[str | None, str | None]:
    if not pages:
        return None, None
    first, _, last = pages.partition("-")
    return first or None, last or None


def _ris_author(author: Author) -> str:
    """Writes "Family, Given" as RIS wants it. A collective name's commas become semicolons: Zotero
    and citation-js split an author at its first comma (into family and given names), and
    read a name without one as a single, institutional name."""
    if author.collective:
        return re.sub(r"\s*,\s*", "; ", author.collective)
    return ", ".join(p for p in (author.family, author.given) if p)


def _ris_ids_note(work: StoredWork) -> str | None:
    """The identifiers as one note line: readers keep N1 as the item's note (several N1 lines
    become several notes in Zotero, but an invalid list in citation-js)."""
    ids = work.record.ids
    parts = [f"{label}: {value}" for label, value in (
        ("PMID", ids.pmid), ("PMCID", ids.pmcid), ("arXiv", ids.arxiv)) if value]  # fmt: skip
    return "; ".join(parts) or None


def write_ris(works: Iterable[StoredWork], out: TextIO) -> int:
    """RIS, as rispy writes it (one reference per work, the work id as ID).

    Identifiers go where reference managers read them: the DOI in DO; the PMID in AN (the
    accession number, where EndNote's PubMed import puts it and Zotero keeps it as "Loc. in
    Archive"); for journal articles the PMCID in C2 (EndNote's "PMCID" field, which citation-js
    reads as PMCID); and PMID, PMCID and arXiv id together in one N1 note, which every reader
    keeps.
    """
    import rispy

    from harvester.dedup.files import PlainRisWriter

    entries = []
    for work in works:
        r = work.record
        kind = type_of(work)[0]
        start, end = _page_range(r.pages)
        entry: dict[str, object] = {
            "type_of_reference": kind,
            "id": str(work.id),
            "title": r.title,
            "authors": [_ris_author(a) for a in r.authors],
            "journal_name": r.venue,
            "year": str(r.year) if r.year else None,
            "date": r.published.replace("-", "/") if r.published else None,
            "volume": r.volume,
            "number": r.issue,
            "start_page": start,
            "end_page": end,
            "doi": r.ids.doi,
            "accession_number": r.ids.pmid,
            "custom2": r.ids.pmcid if kind == "JOUR" else None,
            "abstract": r.abstract,
            "language": r.language,
            "urls": [u for u in (r.url,) if u],
            "keywords": list(r.keywords),
            "notes": [n for n in (_ris_ids_note(work),) if n],
        }
        entries.append({k: v for k, v in entry.items() if v not in (None, [], "")})
    out.write(rispy.dumps(entries, implementation=PlainRisWriter))
    return len(entries)


def csl_item(work: StoredWork) -> dict[str, object]:
    """One work as a CSL-JSON item (https://citeproc-js.readthedocs.io/en/latest/csl-json/)."""
    r = work.record
    item: dict[str, object] = {"id": str(work.id), "type": type_of(work)[2]}
    if r.title:
        item["title"] = r.title
    authors = [
        {"literal": a.collective}
        if a.collective
        else {k: v for k, v in (("family", a.family), ("given", a.given)) if v}
        for a in r.authors
    ]
    if authors:
        item["author"] = authors
    if r.published or r.year:
        parts = [int(p) for p in (r.published or str(r.year)).split("-")]
        item["issued"] = {"date-parts": [parts]}
    for key, value in (
        ("container-title", r.venue),
        ("volume", r.volume),
        ("issue", r.issue),
        ("page", r.pages),
        ("DOI", r.ids.doi),
        ("PMID", r.ids.pmid),
        ("PMCID", r.ids.pmcid),
        ("URL", r.url),
        ("abstract", r.abstract),
        ("language", r.language),
    ):
        if value:
            item[key] = value
    return item


def write_csljson(works: Iterable[StoredWork], out: TextIO) -> int:
    items = [csl_item(w) for w in works]
    out.write(json.dumps(items, ensure_ascii=False, indent=1) + "\n")
    return len(items)


__all__ = ["csl_item", "write_csljson", "write_ris"]
